"""Tests of gantry_client.py against a real running Gantry.

Run by test/clients/python.test.ts (so `npm test` runs them), which starts a
Gantry, applies the workflows below, and sets GANTRY_SERVER (and GANTRY_TOKEN
when the server needs one) and GANTRY_TEST_DIR (a scratch folder). By hand:

    gantry up clients/python/testdata &     # or any server with those workflows
    GANTRY_SERVER=http://127.0.0.1:7070 GANTRY_TEST_DIR=$(mktemp -d) \\
        python3 -m unittest -v clients/python/test_gantry_client.py

Workflows used (clients/python/testdata/): py-hello (who), py-ticks, py-sleep, py-flaky (marker).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gantry_client import (  # noqa: E402
    ApiError,
    BadRequest,
    GantryClient,
    GantryError,
    NotFound,
    Unauthorized,
    Unreachable,
)

SERVER = os.environ.get("GANTRY_SERVER")
SCRATCH = os.environ.get("GANTRY_TEST_DIR") or tempfile.mkdtemp(prefix="gantry-py-")
TIMEOUT = 60.0


def needs_server(cls):
    return unittest.skipUnless(SERVER, "GANTRY_SERVER is not set: no Gantry to test against")(cls)


@needs_server
class RunsTest(unittest.TestCase):
    def setUp(self):
        self.g = GantryClient(SERVER)

    def test_health_and_workflows(self):
        self.assertTrue(self.g.health()["ok"])
        names = {w["name"] for w in self.g.workflows()}
        self.assertLessEqual({"py-hello", "py-ticks", "py-sleep", "py-flaky"}, names)

    def test_start_with_params_and_labels_then_status_and_list(self):
        run = self.g.start_run("py-hello", {"who": "ada; rm -rf /"}, labels={"suite": "python", "case": "start"})
        self.assertIsInstance(run["id"], int)
        self.assertEqual(run["workflow"], "py-hello")
        self.assertEqual(run["params"]["who"], "ada; rm -rf /")
        done = self.g.wait(run["id"], timeout=TIMEOUT)
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(sorted(j["task"] for j in done["jobs"]), ["after", "greet"])
        self.assertTrue(all(j["state"] == "succeeded" for j in done["jobs"]))

        status = self.g.status(run["id"])
        # the workflow's own labels, and the run's
        self.assertEqual(status["labels"], {"client": "python", "suite": "python", "case": "start"})
        for key in ("id", "workflow", "state", "params", "labels", "createdAt", "startedAt", "finishedAt", "jobs"):
            self.assertIn(key, status)

        listed = self.g.runs("py-hello", labels={"suite": "python", "case": "start"})
        self.assertEqual([r["id"] for r in listed], [run["id"]])
        self.assertIn(run["id"], [r["id"] for r in self.g.runs(state="succeeded", labels=["suite=python"])])
        self.assertEqual(self.g.runs("py-hello", labels={"case": "no-such-case"}), [])

    def test_jobs_and_job(self):
        run = self.g.start_run("py-hello", {"who": "jobs"})
        self.g.wait(run["id"], timeout=TIMEOUT)
        jobs = self.g.jobs(run["id"])
        self.assertEqual(sorted(j["id"] for j in jobs), [f"{run['id']}:after", f"{run['id']}:greet"])
        for key in ("id", "runId", "task", "chunk", "state", "attempts", "worker", "startedAt", "finishedAt", "error"):
            self.assertIn(key, jobs[0])
        job = self.g.job(f"{run['id']}:greet")
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(len(job["attemptList"]), 1)
        self.assertIn(job["id"], [j["id"] for j in self.g.jobs(state="succeeded", workflow="py-hello")])

    def test_logs_of_a_run_and_of_a_job(self):
        run = self.g.start_run("py-hello", {"who": "logs"})
        self.g.wait(run["id"], timeout=TIMEOUT)
        run_lines = [l["line"] for l in self.g.logs(run["id"]) if l["stream"] == "stdout"]
        self.assertEqual(run_lines, ["hello logs", "second line", "done"])
        job_lines = [l["line"] for l in self.g.logs(job=f"{run['id']}:after") if l["stream"] == "stdout"]
        self.assertEqual(job_lines, ["done"])

    def test_logs_follow_until_the_run_ends(self):
        run = self.g.start_run("py-ticks")
        lines = [l["line"] for l in self.g.logs(run["id"], follow=True) if l["stream"] == "stdout"]
        self.assertEqual(lines, [f"tick {i}" for i in range(1, 6)])
        self.assertEqual(self.g.run(run["id"])["state"], "succeeded")

    def test_cancel_a_running_run(self):
        run = self.g.start_run("py-sleep")
        for event in self.g.events(run=run["id"]):
            if event.kind == "job" and event.state == "running":
                break
        cancelled = self.g.cancel(run["id"])
        self.assertEqual(cancelled["id"], run["id"])
        self.assertEqual(self.g.wait(run["id"], timeout=TIMEOUT)["state"], "cancelled")

    def test_retry_the_failed_jobs(self):
        marker = os.path.join(SCRATCH, f"flaky-{time.time_ns()}")
        run = self.g.start_run("py-flaky", {"marker": marker})
        failed = self.g.wait(run["id"], timeout=TIMEOUT)
        self.assertEqual(failed["state"], "failed")
        self.assertTrue(failed["jobs"][0]["error"])
        answer = self.g.retry(run["id"])
        self.assertEqual(answer["reset"], 1)
        again = self.g.wait(run["id"], timeout=TIMEOUT)
        self.assertEqual(again["state"], "succeeded")
        self.assertEqual(again["jobs"][0]["attempts"], 2)


@needs_server
class EventsTest(unittest.TestCase):
    def setUp(self):
        self.g = GantryClient(SERVER)

    def test_a_runs_events_from_its_start_and_resuming_after_an_id(self):
        run = self.g.start_run("py-hello", {"who": "events"})
        self.g.wait(run["id"], timeout=TIMEOUT)
        seen = []
        for event in self.g.events(run=run["id"]):
            seen.append(event)
            if event.kind == "run" and event.state == "succeeded":
                break
        self.assertEqual(seen[-1].data["runId"], run["id"])
        job_states = [(e.data["jobId"], e.state) for e in seen if e.kind == "job"]
        self.assertIn((f"{run['id']}:greet", "succeeded"), job_states)
        self.assertIn((f"{run['id']}:after", "succeeded"), job_states)
        ids = [e.id for e in seen]
        self.assertEqual(ids, sorted(ids))

        # resume (Last-Event-ID) after the first two: the same events from the third on, none twice
        resumed = []
        for event in self.g.events(run=run["id"], after=seen[1].id):
            resumed.append(event)
            if event.id == seen[-1].id:
                break
        self.assertEqual([e.id for e in resumed], ids[2:])

    def test_live_events_of_a_new_run(self):
        got: list = []
        ready = threading.Event()

        def follow():
            stream = self.g.events()
            ready.set()
            for event in stream:
                got.append(event)
                if event.kind == "run" and event.state == "succeeded" and event.data["runId"] == started["id"]:
                    return

        started = {"id": -1}
        t = threading.Thread(target=follow, daemon=True)
        t.start()
        ready.wait(5)
        time.sleep(0.5)  # the stream is connected before the run starts: it begins "now"
        started.update(self.g.start_run("py-hello", {"who": "live"}))
        t.join(TIMEOUT)
        self.assertFalse(t.is_alive(), "the run's events did not arrive")
        self.assertIn(("run", "succeeded"), [(e.kind, e.state) for e in got if e.data["runId"] == started["id"]])


@needs_server
class ErrorsTest(unittest.TestCase):
    def setUp(self):
        self.g = GantryClient(SERVER)

    def test_unknown_workflow_is_not_found_naming_it(self):
        with self.assertRaises(NotFound) as caught:
            self.g.start_run("py-no-such-workflow")
        self.assertEqual(caught.exception.status, 404)
        self.assertIn("py-no-such-workflow", str(caught.exception))

    def test_missing_parameter_is_a_bad_request_naming_it(self):
        with self.assertRaises(BadRequest) as caught:
            self.g.start_run("py-hello")
        self.assertIn("who", str(caught.exception))

    def test_bad_filter_names_the_field(self):
        with self.assertRaises(BadRequest) as caught:
            self.g.runs(state="sleeping")
        self.assertIn("query.state", [i["path"] for i in caught.exception.issues])

    def test_unknown_run_and_job_are_not_found(self):
        with self.assertRaises(NotFound):
            self.g.run(987654321)
        with self.assertRaises(NotFound):
            self.g.job("987654321:nope")
        with self.assertRaises(ApiError):
            self.g.cancel(987654321)

    def test_unreachable_server(self):
        g = GantryClient("http://127.0.0.1:9", timeout=5)
        with self.assertRaises(Unreachable) as caught:
            g.health()
        self.assertIsInstance(caught.exception, GantryError)
        self.assertIn("127.0.0.1:9", str(caught.exception))

    @unittest.skipUnless(os.environ.get("GANTRY_TOKEN"), "the server takes no token")
    def test_a_wrong_token_is_refused(self):
        g = GantryClient(SERVER, token="not-a-real-token")
        with self.assertRaises(Unauthorized):
            g.start_run("py-hello", {"who": "intruder"})


class TokenTest(unittest.TestCase):
    """Where the token comes from: the argument, then $GANTRY_TOKEN, then ./gantry.token."""

    def setUp(self):
        self.saved = {k: os.environ.get(k) for k in ("GANTRY_TOKEN", "GANTRY_SERVER")}
        self.cwd = os.getcwd()
        self.dir = tempfile.mkdtemp(prefix="gantry-py-token-")
        os.chdir(self.dir)

    def tearDown(self):
        os.chdir(self.cwd)
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def test_precedence(self):
        os.environ.pop("GANTRY_TOKEN", None)
        os.environ.pop("GANTRY_SERVER", None)
        self.assertIsNone(GantryClient().token)
        self.assertEqual(GantryClient().server, "http://127.0.0.1:7070")
        with open("gantry.token", "w") as f:
            f.write("from-file\n")
        self.assertEqual(GantryClient().token, "from-file")
        os.environ["GANTRY_TOKEN"] = "from-env"
        os.environ["GANTRY_SERVER"] = "http://example.invalid:1/"
        self.assertEqual(GantryClient().token, "from-env")
        self.assertEqual(GantryClient().server, "http://example.invalid:1")
        self.assertEqual(GantryClient(token="from-arg").token, "from-arg")

    def test_the_token_is_sent_as_a_bearer_header(self):
        os.environ.pop("GANTRY_TOKEN", None)
        self.assertEqual(GantryClient("http://127.0.0.1:1", token="t0k")._headers()["authorization"], "Bearer t0k")
        self.assertNotIn("authorization", GantryClient("http://127.0.0.1:1")._headers())

if __name__ == "__main__":
    unittest.main()
