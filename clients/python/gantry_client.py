"""A Python client of Gantry's HTTP API (SPEC §4), in one file, standard library only.

Copy this file next to your script (Python 3.11+)::

    from gantry_client import GantryClient

    g = GantryClient()                      # GANTRY_SERVER, GANTRY_TOKEN, ./.gantry/gantry.token or ./gantry.token
    run = g.start_run("dumps", params={"wiki": "enwiki"}, labels={"by": "cron"})
    for line in g.logs(run=run["id"], follow=True):
        print(line["line"])
    print(g.wait(run["id"])["state"])       # succeeded | failed | cancelled

Every call returns the API's JSON objects (dicts): a run has ``id``,
``workflow``, ``state``, ``params``, ``labels``, ``createdAt``, ``startedAt``,
``finishedAt``; ``status`` adds ``jobs``. Errors are exceptions: ``ApiError``
(the server said no; ``BadRequest``, ``Unauthorized``, ``NotFound``,
``Conflict`` by status) and ``Unreachable`` (no answer), both ``GantryError``.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

__all__ = [
    "GantryClient",
    "Event",
    "GantryError",
    "ApiError",
    "BadRequest",
    "Unauthorized",
    "NotFound",
    "Conflict",
    "Unreachable",
    "DEFAULT_SERVER",
]

DEFAULT_SERVER = "http://127.0.0.1:7070"
TERMINAL_RUN_STATES = frozenset({"succeeded", "failed", "cancelled"})


class GantryError(Exception):
    """Anything this client raises."""


class Unreachable(GantryError):
    """The server did not answer (down, wrong address, timed out)."""

    def __init__(self, url: str, reason: object):
        super().__init__(f"cannot reach the Gantry server at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(GantryError):
    """The server answered with an error status. ``body`` is its JSON answer
    (``error``, and ``issues`` naming the fields of a bad request, or ``errors``)."""

    def __init__(self, status: int, message: str, body: Mapping[str, Any] | None = None):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body: Mapping[str, Any] = body or {}

    @property
    def issues(self) -> list[dict[str, Any]]:
        """``[{path, message}]`` of a 400: which field was wrong, and why."""
        issues = self.body.get("issues")
        return list(issues) if isinstance(issues, list) else []


class BadRequest(ApiError):
    """400: invalid input; nothing was changed."""


class Unauthorized(ApiError):
    """401/403: no token, a wrong one, or one without the right for this."""


class NotFound(ApiError):
    """404: no such run, job, workflow…"""


class Conflict(ApiError):
    """409: not possible in the current state."""


_BY_STATUS: dict[int, type[ApiError]] = {400: BadRequest, 401: Unauthorized, 403: Unauthorized, 404: NotFound, 409: Conflict}


@dataclass(frozen=True)
class Event:
    """One server-sent event: a state change of a run, a job, a worker or a service."""

    id: int
    #: ``run``, ``job``, ``worker`` or ``service`` (ignore kinds you do not know)
    kind: str
    #: the event as the server sent it: ``id``, ``ts``, ``kind``, ``runId``, ``jobId``, ``state``;
    #: workers' and services' also ``worker``, ``service``, ``reason``, ``exit``, ``restarts``
    data: dict[str, Any]

    @property
    def state(self) -> str | None:
        return self.data.get("state")


def _read_token_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


class GantryClient:
    """A client of one Gantry server.

    ``server``: the base URL (default: ``$GANTRY_SERVER``, else http://127.0.0.1:7070).
    ``token``: the bearer token (default: ``$GANTRY_TOKEN``, else the file
    ``.gantry/gantry.token`` or ``gantry.token`` in the current directory, else none). ``timeout``: seconds
    per request.
    """

    def __init__(self, server: str | None = None, token: str | None = None, timeout: float = 30.0):
        self.server = (server or os.environ.get("GANTRY_SERVER") or DEFAULT_SERVER).rstrip("/")
        self.token = token or os.environ.get("GANTRY_TOKEN") or _read_token_file(os.path.join(".gantry", "gantry.token")) or _read_token_file("gantry.token")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GantryClient({self.server!r}, token={'set' if self.token else 'none'})"

    # ------------------------------------------------------------------ HTTP

    def _url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        pairs: list[tuple[str, str]] = []
        for key, value in (query or {}).items():
            if value is None or value is False:
                continue
            for item in value if isinstance(value, (list, tuple)) else [value]:
                pairs.append((key, "true" if item is True else str(item)))
        return self.server + path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"accept": "application/json", "user-agent": "gantry-client-python"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def _open(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None,
              headers: Mapping[str, str] | None = None, timeout: float | None = None):
        data = None
        extra = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            extra["content-type"] = "application/json"
        req = urllib.request.Request(self._url(path, query), data=data, method=method, headers=self._headers(extra))
        try:
            return urllib.request.urlopen(req, timeout=self.timeout if timeout is None else timeout)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {"error": raw.decode(errors="replace")}
            if not isinstance(answer, dict):
                answer = {"error": str(answer)}
            message = str(answer.get("error") or e.reason or f"HTTP {e.code}")
            raise _BY_STATUS.get(e.code, ApiError)(e.code, message, answer) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as e:
            raise Unreachable(self.server, getattr(e, "reason", e)) from None

    def _call(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None,
              timeout: float | None = None) -> Any:
        with self._open(method, path, query, body, timeout=timeout) as res:
            raw = res.read()
        return json.loads(raw) if raw else {}

    @staticmethod
    def _labels(labels: Mapping[str, str] | list[str] | None) -> list[str] | None:
        if labels is None:
            return None
        if isinstance(labels, Mapping):
            return [f"{k}={v}" for k, v in labels.items()]
        return list(labels)

    # ------------------------------------------------------------------ server

    def health(self) -> dict[str, Any]:
        """``{"ok": true, ...}`` once the server is ready (no token needed)."""
        return self._call("GET", "/api/v1/health")

    def workflows(self) -> list[dict[str, Any]]:
        """Registered workflows, with their parameters and schedules."""
        return self._call("GET", "/api/v1/workflows")["workflows"]

    # ------------------------------------------------------------------ runs

    def runs(self, workflow: str | None = None, *, namespace: str | None = None, state: str | None = None,
             labels: Mapping[str, str] | list[str] | None = None, latest: bool = False, worker: str | None = None,
             since: str | int | None = None, until: str | int | None = None, limit: int | None = None,
             offset: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first. ``labels``: ``{"k": "v"}`` or ``["k=v"]``, all must match;
        ``since``/``until``: epoch ms, ISO 8601, or a duration ago (``"2h"``)."""
        q = {"workflow": workflow, "namespace": namespace, "state": state, "label": self._labels(labels),
             "latest": latest, "worker": worker, "since": since, "until": until, "limit": limit, "offset": offset}
        return self._call("GET", "/api/v1/runs", q)["runs"]

    def start_run(self, workflow: str, params: Mapping[str, Any] | None = None, *,
                  labels: Mapping[str, str] | None = None, namespace: str | None = None,
                  priority: int | None = None, force: bool = False) -> dict[str, Any]:
        """Starts a run; returns it (``id``, ``state``…). An unknown workflow or a
        missing/invalid parameter raises BadRequest and starts nothing."""
        body: dict[str, Any] = {"workflow": workflow}
        if namespace is not None:
            body["namespace"] = namespace
        if params:
            body["params"] = dict(params)
        if labels:
            body["labels"] = {k: str(v) for k, v in labels.items()}
        if priority is not None:
            body["priority"] = priority
        if force:
            body["force"] = True
        return self._call("POST", "/api/v1/runs", body=body)

    def run(self, run_id: int) -> dict[str, Any]:
        """A run with its ``jobs`` (and per-task progress as ``tasks``)."""
        return self._call("GET", f"/api/v1/runs/{int(run_id)}")

    #: a run's status: the run and its jobs (what ``gantry status`` shows)
    status = run

    def cancel(self, run_id: int, *, clean: bool = False) -> dict[str, Any]:
        """Cancels a run: its running jobs are killed wherever they run."""
        return self._call("POST", f"/api/v1/runs/{int(run_id)}/cancel", body={"clean": True} if clean else {})

    def retry(self, run_id: int, *, failed: bool = True, force: bool = False) -> dict[str, Any]:
        """Reruns the failed jobs of a run (``failed=False``: all of it). Returns ``{"run", "reset"}``."""
        return self._call("POST", f"/api/v1/runs/{int(run_id)}/retry", body={"failed": failed, "force": force})

    def wait(self, run_id: int, timeout: float | None = None) -> dict[str, Any]:
        """Blocks until the run has ended (following its events); returns the finished run with its jobs.
        Raises TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.run(run_id)
            if current["state"] in TERMINAL_RUN_STATES:
                return current
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"run {run_id} still {current['state']} after {timeout} s")
            try:
                # the run's events from its start: a state change since the read above is not missed
                for event in self.events(run=run_id, reconnect=False, timeout=min(remaining or 15.0, 15.0)):
                    if event.kind == "run" and event.state in TERMINAL_RUN_STATES:
                        break
            except Unreachable:
                pass  # the read timed out quietly: look again

    # ------------------------------------------------------------------ jobs

    def jobs(self, run: int | None = None, *, worker: str | None = None, state: str | None = None,
             stale: bool = False, workflow: str | None = None, namespace: str | None = None,
             labels: Mapping[str, str] | list[str] | None = None, since: str | int | None = None,
             until: str | int | None = None, limit: int | None = None, offset: int | None = None) -> list[dict[str, Any]]:
        """Jobs, filtered. ``stale``: claimed but not running."""
        q = {"run": run, "worker": worker, "state": state, "stale": stale, "workflow": workflow, "namespace": namespace,
             "label": self._labels(labels), "since": since, "until": until, "limit": limit, "offset": offset}
        return self._call("GET", "/api/v1/jobs", q)["jobs"]

    def job(self, job_id: str) -> dict[str, Any]:
        """A job (``RUN:TASK``) with its ``attemptList``."""
        return self._call("GET", f"/api/v1/jobs/{urllib.parse.quote(job_id, safe='')}")

    def cancel_job(self, job_id: str, *, clean: bool = False) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/jobs/{urllib.parse.quote(job_id, safe='')}/cancel", body={"clean": True} if clean else {})

    # ------------------------------------------------------------------ logs and events

    def logs(self, run: int | None = None, *, job: str | None = None, follow: bool = False,
             after: int = 0) -> Iterator[dict[str, Any]]:
        """The log lines of a run or of a job (``RUN:TASK``), oldest first: dicts with
        ``line``, ``stream`` (stdout/stderr/system), ``jobId``, ``ts``, ``id``.
        ``follow``: keep waiting for new lines until the run or job has finished."""
        if (run is None) == (job is None):
            raise ValueError("give exactly one of run or job")
        while True:
            q = {"run": run, "job": job, "after": after or None, "wait": 20 if follow else None}
            page = self._call("GET", "/api/v1/logs", q, timeout=max(self.timeout, 30.0) if follow else None)
            yield from page["lines"]
            after = page["next"]
            if page["finished"] or (not follow and not page["lines"]):
                return
            if not follow and page["lines"]:
                continue  # a full page: there may be more

    def events(self, run: int | None = None, *, after: int | None = None, reconnect: bool = True,
               timeout: float = 60.0, **filters: Any) -> Iterator[Event]:
        """Server-sent events (every state change of runs, jobs, workers and
        services), as they happen; ``kinds="worker,service"`` and the other
        filters of ``GET /api/v1/events`` go as keywords.
        ``run``: only that run's, from its start; otherwise from now, or after
        event id ``after``. A dropped connection is resumed where it stopped
        (``Last-Event-ID``) when ``reconnect``. Stop by leaving the loop."""
        last = after
        while True:
            headers = {"accept": "text/event-stream"}
            if last is not None:
                headers["last-event-id"] = str(last)
            query = {"run": run, **filters}
            try:
                res = self._open("GET", "/api/v1/events", query, headers=headers, timeout=timeout)
            except Unreachable:
                if not reconnect:
                    raise
                time.sleep(1.0)
                continue
            try:
                for event in _parse_sse(res):
                    last = event.id
                    yield event
            except (OSError, ValueError) as e:  # dropped or timed out mid-stream
                if not reconnect:
                    raise Unreachable(self.server, e) from None
            finally:
                res.close()
            if not reconnect:
                return
            time.sleep(0.2)


def _parse_sse(stream) -> Iterator[Event]:
    """Reads ``id:``/``event:``/``data:`` blocks, one event per blank line."""
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for raw in stream:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                payload = json.loads("\n".join(data))
                yield Event(id=int(event_id) if event_id else int(payload.get("id", 0)), kind=kind, data=payload)
            event_id, kind, data = None, "message", []
        elif line.startswith(":"):
            continue  # a comment: keepalive
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "event":
                kind = value
            elif field == "data":
                data.append(value)
