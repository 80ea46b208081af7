// Every monitoring question of the README's "question → command" table, asked
// of the API against one scenario with known answers, on both stores. State is
// driven through the store with a controlled clock (no workers), so times,
// durations, percentiles and the ETA are exact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, Run, StoreEvent } from '../../src/store/types.js';
import type { RunEta } from '../../src/server/eta.js';
import type { BrokenReport } from '../../src/server/broken.js';
import type { AttemptError } from '../../src/store/types.js';
import type { ErrorSummary } from '../../src/server/errors.js';
import { onEveryStore } from '../helpers/cluster.js';
import { apiHarness, TestClock, type ApiHarness } from '../helpers/apiHarness.js';
import { GantryClient } from '../../src/client/client.js';

const S = 1000;
const T0 = Date.parse('2026-06-01T10:00:00Z');

const DUMP = `name: dump
params:
  lang: { default: de }
schedule: { cron: "0 3 * * *", timezone: UTC }
defaults:
  retries: { max: 1, delay: 1s }
tasks:
  a: { run: "true" }
  b: { run: "true", needs: [a] }
  c: { run: "true", needs: [b] }
`;
const OTHER = `name: other\ntasks:\n  x: { run: "true" }\n`;
const FLAKY = `name: flaky\ndefaults:\n  retries: { max: 1, delay: 1s }\ntasks:\n  f: { run: "true" }\n`;
const SOLO = `name: solo\ntasks:\n  s: { run: "true" }\n`;
const HUGE = `name: huge\ntasks:\n  h: { run: "true", resources: { cpu: 64 } }\n`;

const worker = (name: string) => ({ name, host: 'test-host', pid: process.pid, queues: ['default'], slots: 8, resources: { cpu: 8, memoryBytes: null, custom: {} } });

interface Scenario {
  runs: Record<'de1' | 'de2' | 'de3' | 'en4' | 'other5' | 'solo6' | 'huge7', Run>;
  flaky: Run[];
  /** when 4:a (the en run's failed job) started and stopped */
  en4a: { startedAt: number; finishedAt: number };
  /** after the errors of the de runs, before those of the others */
  midErrors: number;
}

/**
 * The scenario, in time order (clock starts at T0):
 * - dump lang=de runs 1 and 2 succeed: a 10 s / 20 s, b 100 s / 200 s (run 2's b
 *   fails once with "disk full" first), c 10 s / 30 s;
 * - dump lang=de run 3: a took 20 s, b is running on w1 for 5 s now;
 * - dump lang=en run 4: a fails for good ("boom") → run failed; other (lang=de) run 5 succeeds;
 * - flaky: ok, failed, ok, failed (each failure after 1 retry, "flake");
 * - solo run 6: claimed by w2, whose lease lapsed and who went silent;
 * - huge run 7: needs 64 cpus, no worker has them.
 */
async function scenario(h: ApiHarness): Promise<Scenario> {
  const { store, clock } = h;
  await h.apply(DUMP, '/defs/dump.yaml');
  await h.apply(OTHER, '/defs/other.yaml');
  await h.apply(FLAKY, '/defs/flaky.yaml');
  await h.apply(SOLO, '/defs/solo.yaml');
  await h.apply(HUGE, '/defs/huge.yaml');
  await store.registerWorker(worker('w1'));
  await store.registerWorker(worker('w2'));
  const claim = async (w = 'w1', leaseMs = 3_600_000) => {
    const [c] = await store.claimJobs({ name: w, host: 'test-host', queues: ['default'] }, 1, leaseMs);
    expect(c, 'a job to claim').toBeDefined();
    await store.setAttemptPid(c!.fence, process.pid);
    return c!;
  };
  const run = async (seconds: number, outcome: 'ok' | string = 'ok', retryable = true) => {
    const c = await claim();
    clock.t += seconds * S;
    if (outcome === 'ok') await store.completeAttempt(c.fence, { state: 'succeeded', exitCode: 0 });
    else await store.completeAttempt(c.fence, { state: 'failed', exitCode: 1, error: `${outcome}\nmore detail`, retryable });
    return c;
  };
  const retryDue = async () => {
    clock.t += 2 * S; // past the 1 s delay and its jitter
    expect(await store.promoteDueRetries()).toBe(1);
  };

  clock.t = T0;
  const de1 = await h.startRun('dump', { labels: { lang: 'de', project: 'dewiki' } });
  await run(10);
  await run(100);
  await run(10);
  clock.t += 60 * S;
  const de2 = await h.startRun('dump', { labels: { lang: 'de', project: 'dewiki' } });
  await run(20);
  await run(7, 'disk full');
  await retryDue();
  await run(200);
  await run(30);
  clock.t += 60 * S;
  const midErrors = clock.t;
  const de3 = await h.startRun('dump', { labels: { lang: 'de', project: 'dewiki' } });
  await run(20);
  await claim(); // b, running from here
  const en4 = await h.startRun('dump', { labels: { lang: 'en', project: 'enwiki' } });
  const before = clock.t;
  await run(3, 'boom', false);
  const en4a = { startedAt: before, finishedAt: clock.t };
  const other5 = await h.startRun('other', { labels: { lang: 'de', project: 'dewiki' } });
  await run(1);
  const flaky: Run[] = [];
  for (const ok of [true, false, true, false]) {
    flaky.push(await h.startRun('flaky'));
    if (ok) await run(1);
    else {
      await run(1, 'flake');
      await retryDue();
      await run(1, 'flake');
    }
  }
  const solo6 = await h.startRun('solo');
  await claim('w2', 10_000);
  const huge7 = await h.startRun('huge');
  clock.t += 15 * S; // w2's 10 s lease on run 6 has lapsed
  return { runs: { de1, de2, de3, en4, other5, solo6, huge7 }, flaky, en4a, midErrors };
}

onEveryStore('monitoring questions against a known scenario', (storeName) => {
  let h: ApiHarness;
  let s: Scenario;
  beforeAll(async () => {
    h = await apiHarness(storeName, { clock: new TestClock(T0) });
    s = await scenario(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when will the next run of dump start: GET /workflows (gantry workflows dump)', async () => {
    const r = await h.call<{ workflows: { name: string; schedules: { nextAt: number | null }[] }[] }>('GET', '/api/v1/workflows');
    const dump = r.body.workflows.find((w) => w.name === 'dump')!;
    const next = new Date();
    next.setUTCHours(3, 0, 0, 0);
    if (next.getTime() <= Date.now()) next.setUTCDate(next.getUTCDate() + 1);
    expect(dump.schedules[0]!.nextAt).toBe(next.getTime());
  });

  it('when will the current run of dump finish: the ETA from p10/p50/p90 of past runs along the critical path (GET /runs/:id, /runs/:id/eta)', async () => {
    const de3 = s.runs.de3;
    const b = (await h.store.listJobs({ runId: de3.id })).find((j) => j.task === 'b')!;
    const elapsed = h.clock.t - b.startedAt!;
    // history (runs 1 and 2): a 10, 20 → p10 11, p50 15, p90 19; b 100, 200 → 110, 150, 190; c 10, 30 → 12, 20, 28
    const expected = {
      likely: h.clock.t + (150 * S - elapsed) + 20 * S,
      low: h.clock.t + (110 * S - elapsed) + 12 * S,
      high: h.clock.t + (190 * S - elapsed) + 28 * S,
    };
    const status = await h.call<Run & { eta: RunEta; jobs: Job[] }>('GET', `/api/v1/runs/${de3.id}`);
    expect(status.status).toBe(200);
    expect(status.body.eta.eta).toEqual(expected);
    expect(status.body.eta.basis).toEqual({ pastRuns: 2, percentiles: { low: 'p10', likely: 'p50', high: 'p90' }, tasksWithoutHistory: [], criticalPath: ['b', 'c'] });
    const eta = await h.call<RunEta>('GET', `/api/v1/runs/${de3.id}/eta`);
    expect(eta.body).toEqual(status.body.eta);
    // the history in SQL: percentile_cont on PostgreSQL, its interpolation by hand on SQLite
    const hist = await h.store.taskDurations({ namespace: 'default', workflow: 'dump', beforeRunId: de3.id, runs: 20 });
    expect(hist.tasks.map((t) => [t.key, t.samples, t.p10Ms, t.p50Ms, t.p90Ms])).toEqual([
      ['a', 2, 11 * S, 15 * S, 19 * S],
      ['b', 2, 110 * S, 150 * S, 190 * S],
      ['c', 2, 12 * S, 20 * S, 28 * S],
    ]);
    // finished runs have none; a run with no history says so
    expect((await h.call<RunEta>('GET', `/api/v1/runs/${s.runs.de1.id}/eta`)).body.eta).toBeNull();
    const solo = await h.call<RunEta>('GET', `/api/v1/runs/${s.runs.solo6.id}/eta`);
    expect(solo.body.eta).toBeNull();
    expect(solo.body.basis.reason).toMatch(/no past run/);
    expect((await h.call('GET', '/api/v1/runs/99999/eta')).status).toBe(404);
  });

  it('which tasks of it are done, and what is it doing right now: GET /runs/:id (gantry status)', async () => {
    const r = await h.call<Run & { jobs: Job[]; tasks: { task: string; state: string }[] }>('GET', `/api/v1/runs/${s.runs.de3.id}`);
    expect(r.body.tasks.map((t) => [t.task, t.state])).toEqual([
      ['a', 'succeeded'],
      ['b', 'running'],
      ['c', 'pending'],
    ]);
    const running = r.body.jobs.filter((j) => j.state === 'running');
    expect(running.map((j) => [j.id, j.worker])).toEqual([[`${s.runs.de3.id}:b`, 'w1']]);
  });

  it('the latest runs for label lang=de, and for project dewiki across its labels: GET /runs?label=…&latest', async () => {
    const ids = async (q: string) => (await h.call<{ runs: Run[] }>('GET', `/api/v1/runs${q}`)).body.runs.map((r) => r.id);
    // the latest lang=de run of each workflow, although dump's latest run overall is lang=en
    expect(await ids('?label=lang=de&latest')).toEqual([s.runs.other5.id, s.runs.de3.id]);
    expect(await ids('?label=lang=en&latest')).toEqual([s.runs.en4.id]);
    expect(await ids('?label=project=dewiki&latest')).toEqual([s.runs.other5.id, s.runs.de3.id]);
    expect(await ids('?label=project=dewiki')).toEqual([s.runs.other5.id, s.runs.de3.id, s.runs.de2.id, s.runs.de1.id]);
    // latest first, then the state: dump's latest lang=de run is running, so none of them has failed
    expect(await ids('?label=lang=de&latest&state=failed')).toEqual([]);
  });

  it('what is broken: failing series since when, their failed jobs, stale claims, lost workers, unplaceable jobs, flapping (GET /broken)', async () => {
    await h.store.heartbeat('w1', [], 3_600_000); // w1 is alive; w2 fell silent when it claimed run 6
    await h.store.updateWaitingReasons(60_000);
    const r = await h.call<BrokenReport>('GET', '/api/v1/broken');
    expect(r.status).toBe(200);
    const b = r.body;
    expect(b.failing.map((f) => [f.workflow, f.labels, f.latestRun.id, f.failedInARow, f.failingSince, f.lastSucceededAt])).toEqual([
      ['dump', { lang: 'en', project: 'enwiki' }, s.runs.en4.id, 1, s.runs.en4.createdAt, null],
      ['flaky', {}, s.flaky[3]!.id, 1, s.flaky[3]!.createdAt, (await h.store.getRun(s.flaky[2]!.id))!.finishedAt],
    ]);
    expect(b.failedJobs.map((j) => j.id).sort()).toEqual([`${s.runs.en4.id}:a`, `${s.flaky[3]!.id}:f`].sort());
    expect(b.staleClaims.map((j) => [j.id, j.worker])).toEqual([[`${s.runs.solo6.id}:s`, 'w2']]);
    expect(b.lostWorkers.map((w) => w.name)).toEqual(['w2']);
    expect(b.unplaceable.map((j) => j.id)).toEqual([`${s.runs.huge7.id}:h`]);
    expect(b.flapping.map((f) => [f.workflow, f.recent, f.changes])).toEqual([['flaky', ['failed', 'succeeded', 'failed', 'succeeded'], 3]]);
    // filtered: only lang=de runs → nothing of theirs is failing
    const de = (await h.call<BrokenReport>('GET', '/api/v1/broken?label=lang=de')).body;
    expect(de.failing).toEqual([]);
    expect(de.flapping).toEqual([]);
    expect((await h.call('GET', '/api/v1/broken?label=nokey')).status).toBe(400);
  });

  it('which errors were raised: every failed attempt, grouped by message (GET /errors)', async () => {
    const r = await h.call<{ errors: AttemptError[]; summary: ErrorSummary[] }>('GET', '/api/v1/errors');
    expect(r.status).toBe(200);
    expect(r.body.summary.map((x) => [x.error, x.count, x.jobs])).toEqual([
      ['flake', 4, 2],
      ['boom', 1, 1],
      ['disk full', 1, 1],
    ]);
    expect(r.body.errors).toHaveLength(6);
    const disk = r.body.errors.find((e) => e.error.startsWith('disk full'))!;
    expect(disk).toMatchObject({ jobId: `${s.runs.de2.id}:b`, number: 1, worker: 'w1', state: 'failed', exitCode: 1, workflow: 'dump', error: 'disk full\nmore detail' });
    const since = await h.call<{ errors: AttemptError[] }>('GET', `/api/v1/errors?since=${s.midErrors}`);
    expect(since.body.errors.map((e) => e.error.split('\n')[0])).not.toContain('disk full');
    expect(since.body.errors).toHaveLength(5);
    const dump = await h.call<{ errors: AttemptError[] }>('GET', '/api/v1/errors?workflow=dump&label=lang=en');
    expect(dump.body.errors.map((e) => e.jobId)).toEqual([`${s.runs.en4.id}:a`]);
    expect((await h.call('GET', '/api/v1/errors?since=soon')).status).toBe(400);
  });

  it('which jobs failed, how many retries each made, when they started and stopped (GET /jobs?state=failed)', async () => {
    const r = await h.call<{ jobs: Job[] }>('GET', '/api/v1/jobs?state=failed');
    const byId = Object.fromEntries(r.body.jobs.map((j) => [j.id, j]));
    expect(Object.keys(byId).sort()).toEqual([`${s.runs.en4.id}:a`, `${s.flaky[1]!.id}:f`, `${s.flaky[3]!.id}:f`].sort());
    expect(byId[`${s.runs.en4.id}:a`]).toMatchObject({ attempts: 1, error: 'boom\nmore detail', ...s.en4a });
    expect(byId[`${s.flaky[1]!.id}:f`]!.attempts).toBe(2); // one retry
  });

  it('what runs on worker w1; which jobs did w2 claim that are not running and not done (GET /jobs?worker=…&state=running, &stale)', async () => {
    const running = await h.call<{ jobs: Job[] }>('GET', '/api/v1/jobs?worker=w1&state=running');
    expect(running.body.jobs.map((j) => j.id)).toEqual([`${s.runs.de3.id}:b`]);
    const stale = await h.call<{ jobs: Job[] }>('GET', '/api/v1/jobs?worker=w2&stale');
    expect(stale.body.jobs.map((j) => j.id)).toEqual([`${s.runs.solo6.id}:s`]);
    expect((await h.call<{ jobs: Job[] }>('GET', '/api/v1/jobs?worker=w1&stale')).body.jobs).toEqual([]);
  });
});

onEveryStore('event stream (SSE): filters and resume', (storeName) => {
  let h: ApiHarness;
  let url: string;
  beforeAll(async () => {
    h = await apiHarness(storeName);
    url = await h.listen();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Reads events from the stream until `until` holds for what was read; aborts the stream then. */
  async function read(q: Parameters<GantryClient['events']>[0], until: (seen: StoreEvent[]) => boolean, ready?: () => Promise<void>) {
    const ac = new AbortController();
    const seen: StoreEvent[] = [];
    const timer = setTimeout(() => ac.abort(), 20_000);
    const gen = new GantryClient(url, h.token).events(q, ac.signal);
    try {
      const first = gen.next(); // connects
      if (ready) {
        // the stream starts "now" when the connection is made: give it a moment to register before changes happen
        await new Promise((r) => setTimeout(r, 300));
        await ready();
      }
      let n = await first;
      while (!n.done) {
        seen.push(n.value);
        if (until(seen)) break;
        n = await gen.next();
      }
    } finally {
      ac.abort();
      clearTimeout(timer);
      await gen.return(undefined);
    }
    return seen;
  }

  it('namespace, workflow and label filters; a reconnect with Last-Event-ID gets exactly the missed events, once each, in order', async () => {
    await h.apply(`name: ev\ntasks:\n  a: { run: "true" }\n  b: { run: "true", needs: [a] }\n`, '/defs/ev.yaml');
    await h.apply(`name: ev2\nnamespace: other\ntasks:\n  a: { run: "true" }\n`, '/defs/ev2.yaml');
    await h.store.registerWorker(worker('w1'));
    const finishOne = async () => {
      const [c] = await h.store.claimJobs({ name: 'w1', host: 'test-host', queues: ['default'] }, 1, 60_000);
      await h.store.completeAttempt(c!.fence, { state: 'succeeded', exitCode: 0 });
    };

    // Filters: a stream of lang=de events of ev sees its run only, not the lang=fr run nor the other namespace's.
    let de!: Run;
    const onlyDe = await read({ workflow: 'ev', label: ['lang=de'] }, (seen) => seen.some((e) => e.jobId === null && e.state === 'succeeded'), async () => {
      await h.startRun('ev', { labels: { lang: 'fr' } });
      await h.startRun('ev2', { namespace: 'other', labels: { lang: 'de' } });
      de = await h.startRun('ev', { labels: { lang: 'de' } });
      // claims in enqueue order: fr's a, ev2's a, de's a, fr's b, de's b
      for (let i = 0; i < 5; i++) await finishOne();
    });
    // exactly the run's events, every one of them from its creation to its end, in order
    const deEvents = await h.store.readEvents(0, { runId: de.id });
    expect(onlyDe.map((e) => e.id)).toEqual(deEvents.map((e) => e.id));
    expect(deEvents.length).toBeGreaterThan(6);
    expect(await h.store.readEvents(0, { workflow: 'ev', labels: { lang: 'de' } })).toEqual(deEvents);
    const other = await h.store.readEvents(0, { namespace: 'other' });
    expect(other.length).toBeGreaterThan(0);
    expect(other.every((e) => e.runId !== de.id)).toBe(true);

    // Resume: read three events of a new run, drop the connection, let more happen, reconnect with the last id.
    const start = await h.store.lastEventId();
    const r = await h.startRun('ev', { labels: { lang: 'de' } });
    const firstThree = await read({ run: r.id }, (seen) => seen.length === 3);
    expect(firstThree).toHaveLength(3);
    await finishOne();
    await finishOne();
    const all = await h.store.readEvents(start, { runId: r.id });
    expect(all.at(-1)!.state).toBe('succeeded'); // the run ended while no one listened
    const rest = await read({ run: r.id, lastEventId: firstThree.at(-1)!.id }, (seen) => seen.at(-1)!.kind === 'run' && seen.at(-1)!.state === 'succeeded');
    expect([...firstThree, ...rest].map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(new Set(rest.map((e) => e.id)).size).toBe(rest.length);
    // the query's `after` does the same as the header
    const after = await read({ run: r.id, after: firstThree.at(-1)!.id }, (seen) => seen.length === rest.length);
    expect(after.map((e) => e.id)).toEqual(rest.map((e) => e.id));
  });

  it('a bad filter is a 400 naming the field', async () => {
    expect((await h.call<{ error: string }>('GET', '/api/v1/events?label=x')).body.error).toContain('query.label');
    expect((await h.call<{ error: string }>('GET', '/api/v1/events?run=x')).body.error).toContain('query.run');
  });
});

describe('README lists every monitoring question with its command', () => {
  it('has the table', async () => {
    const fs = await import('node:fs');
    const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const cmd of ['gantry workflows', 'gantry eta', 'gantry status', 'gantry broken', 'gantry errors', 'gantry failures', 'gantry runs --label lang=de --latest', 'gantry jobs --worker W --stale'])
      expect(readme, cmd).toContain(cmd);
  });
});
