// The HTTP API as a client sees it, on both stores, without workers: the state
// is driven through the store (claims, completions) with a controlled clock, so
// every number /metrics shows and every subset a filter returns is known.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/app.js';
import { ROUTES } from '../../src/server/openapi.js';
import { silentLogger } from '../../src/log.js';
import type { Clock, Job, Run, Store } from '../../src/store/types.js';
import { makeToken, onEveryStore, type StoreName } from '../helpers/cluster.js';
import { openTestStore } from '../helpers/testStore.js';
import { parsePrometheusText } from '../helpers/promText.js';

class Clock0 implements Clock {
  t = Date.now();
  now() {
    return this.t;
  }
}

interface Harness {
  store: Store;
  app: FastifyInstance;
  clock: Clock0;
  close(): Promise<void>;
}

async function harness(name: StoreName): Promise<Harness> {
  const clock = new Clock0();
  const { store, cleanup } = await openTestStore(name, { clock, prefix: 'gantry-api-' });
  const app = await buildApp({ store, logger: silentLogger(), clock });
  adminTokens.set(app, await makeToken(store));
  return {
    store,
    app,
    clock,
    async close() {
      await app.close();
      await store.close();
      await cleanup();
    },
  };
}

const WORKFLOW = `name: m
tasks:
  ok1: { run: "true" }
  ok2: { run: "true" }
  ok3: { run: "true" }
  bad: { run: "false" }
  db: { run: "sleep 100", pool: db }
  gpu1: { run: "true", queue: gpu }
  gpu2: { run: "true", queue: gpu }
`;

/** each app's admin token: every call presents it */
const adminTokens = new WeakMap<FastifyInstance, string>();

async function call<T = Record<string, unknown>>(app: FastifyInstance, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) {
  const r = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${adminTokens.get(app)}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: r.statusCode, body: (String(r.headers['content-type'] ?? '').startsWith('application/json') ? r.json() : r.body) as T, raw: r };
}

async function apply(app: FastifyInstance, source: string, file = '/defs/wf.yaml') {
  const r = await call(app, 'POST', '/api/v1/definitions', { files: [{ path: file, source }] });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

async function startRun(app: FastifyInstance, workflow: string, labels: Record<string, string> = {}): Promise<Run> {
  const r = await call<Run>(app, 'POST', '/api/v1/runs', { workflow, labels });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

const worker = (name: string, queues = ['default']) => ({
  name,
  host: 'test-host',
  pid: process.pid,
  queues,
  slots: 8,
  resources: { cpu: 8, memoryBytes: null, custom: {} },
});

onEveryStore('GET /metrics', (storeName) => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(storeName);
  });
  afterEach(async () => {
    await h.close();
  });

  it('3 succeeded, 1 failed, 1 running in a pool of 3, 2 queued on gpu: gauges, histograms and workers as Prometheus reads them', async () => {
    const { app, store, clock } = h;
    expect((await call(app, 'PUT', '/api/v1/pools/db', { slots: 3 })).status).toBe(200);
    await apply(app, WORKFLOW);
    await startRun(app, 'm');
    await store.registerWorker(worker('w-busy'));
    await store.registerWorker(worker('w-idle'));
    clock.t += 2_000; // every default job waits 2 s in its queue
    const claimed = await store.claimJobs({ name: 'w-busy', host: 'test-host', queues: ['default'] }, 10, 60_000);
    const byTask = Object.fromEntries(claimed.map((c) => [c.job.task, c.fence]));
    expect(Object.keys(byTask).sort()).toEqual(['bad', 'db', 'ok1', 'ok2', 'ok3']);
    clock.t += 5_000; // the three ok jobs run 5 s
    for (const t of ['ok1', 'ok2', 'ok3']) await store.completeAttempt(byTask[t]!, { state: 'succeeded', exitCode: 0 });
    clock.t += 55_000; // bad runs 60 s
    await store.completeAttempt(byTask.bad!, { state: 'failed', exitCode: 1, error: 'boom', retryable: false });
    await store.heartbeat('w-busy', [], 60_000);
    await store.heartbeat('w-idle', [], 60_000);

    const r = await app.inject({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parsePrometheusText(r.body);

    expect(m.types.get('gantry_jobs')).toBe('gauge');
    expect(m.get('gantry_jobs', { state: 'succeeded', queue: 'default' })).toBe(3);
    expect(m.get('gantry_jobs', { state: 'failed', queue: 'default' })).toBe(1);
    expect(m.get('gantry_jobs', { state: 'running', queue: 'default' })).toBe(1);
    expect(m.get('gantry_jobs', { state: 'queued', queue: 'gpu' })).toBe(2);
    expect(m.get('gantry_jobs', { state: 'queued', queue: 'default' })).toBe(0);
    expect(m.get('gantry_queue_depth', { queue: 'gpu' })).toBe(2);
    expect(m.get('gantry_queue_depth', { queue: 'default' })).toBe(0);

    expect(m.get('gantry_pool_slots', { pool: 'db' })).toBe(3);
    expect(m.get('gantry_pool_slots_used', { pool: 'db' })).toBe(1);
    expect(m.get('gantry_pool_slots_free', { pool: 'db' })).toBe(2);

    expect(m.get('gantry_workers', { state: 'busy' })).toBe(1);
    expect(m.get('gantry_workers', { state: 'idle' })).toBe(1);
    expect(m.get('gantry_workers', { state: 'lost' })).toBe(0);
    expect(m.get('gantry_worker_running_jobs', { worker: 'w-busy' })).toBe(1);
    expect(m.get('gantry_worker_slots', { worker: 'w-idle' })).toBe(8);

    expect(m.types.get('gantry_job_duration_seconds')).toBe('histogram');
    const ok = { queue: 'default', state: 'succeeded' };
    expect(m.get('gantry_job_duration_seconds_count', ok)).toBe(3);
    expect(m.get('gantry_job_duration_seconds_sum', ok)).toBeCloseTo(15);
    expect(m.get('gantry_job_duration_seconds_bucket', { ...ok, le: '1' })).toBe(0);
    expect(m.get('gantry_job_duration_seconds_bucket', { ...ok, le: '5' })).toBe(3);
    expect(m.get('gantry_job_duration_seconds_bucket', { ...ok, le: '+Inf' })).toBe(3);
    const failed = { queue: 'default', state: 'failed' };
    expect(m.get('gantry_job_duration_seconds_count', failed)).toBe(1);
    expect(m.get('gantry_job_duration_seconds_sum', failed)).toBeCloseTo(60);
    expect(m.get('gantry_job_duration_seconds_bucket', { ...failed, le: '30' })).toBe(0);
    expect(m.get('gantry_job_duration_seconds_bucket', { ...failed, le: '60' })).toBe(1);
    expect(m.get('gantry_job_queue_wait_seconds_count', { queue: 'default' })).toBe(4);
    expect(m.get('gantry_job_queue_wait_seconds_sum', { queue: 'default' })).toBeCloseTo(8);
    expect(m.get('gantry_scheduler_lag_seconds')).toBe(0);

    // Buckets only grow, and +Inf is the count: a histogram Prometheus can use.
    const buckets = m.samples.filter((s) => s.name === 'gantry_job_duration_seconds_bucket' && s.labels.state === 'succeeded').map((s) => s.value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));

    // A second scrape observes nothing twice; a job finishing in between is observed once.
    const db = byTask.db!;
    clock.t += 1_000;
    await store.completeAttempt(db, { state: 'succeeded', exitCode: 0 });
    const m2 = parsePrometheusText((await app.inject({ method: 'GET', url: '/metrics' })).body);
    expect(m2.get('gantry_job_duration_seconds_count', ok)).toBe(4);
    expect(m2.get('gantry_job_duration_seconds_count', failed)).toBe(1);
    expect(m2.get('gantry_pool_slots_used', { pool: 'db' })).toBe(0);
    expect(m2.get('gantry_workers', { state: 'busy' })).toBe(0);
    expect(m2.get('gantry_workers', { state: 'idle' })).toBe(2);
  });

  it('scheduler lag: a retry overdue by 30 s shows 30 s; a worker without heartbeat for long is lost', async () => {
    const { app, store, clock } = h;
    await apply(app, `name: r\ntasks:\n  a: { run: "false", retries: { max: 2, delay: 10s } }\n`);
    await startRun(app, 'r');
    await store.registerWorker(worker('w1'));
    const [c] = await store.claimJobs({ name: 'w1', host: 'test-host', queues: ['default'] }, 1, 60_000);
    await store.completeAttempt(c!.fence, { state: 'failed', exitCode: 1, error: 'x' });
    clock.t += 40_000; // due 10 s after the failure; no scheduler promoted it
    const m = parsePrometheusText((await app.inject({ method: 'GET', url: '/metrics' })).body);
    // retry delays carry a little jitter: about 30 s
    expect(m.get('gantry_scheduler_lag_seconds')).toBeGreaterThan(27);
    expect(m.get('gantry_scheduler_lag_seconds')).toBeLessThan(33);
    expect(m.get('gantry_jobs', { state: 'retrying', queue: 'default' })).toBe(1);
    expect(m.get('gantry_workers', { state: 'idle' })).toBe(1);
    clock.t += 60_000; // w1's heartbeat is 100 s old now
    const m2 = parsePrometheusText((await app.inject({ method: 'GET', url: '/metrics' })).body);
    expect(m2.get('gantry_workers', { state: 'lost' })).toBe(1);
    expect(m2.get('gantry_workers', { state: 'idle' })).toBe(0);
    expect(m2.get('gantry_scheduler_lag_seconds')).toBeGreaterThan(87);
    expect(m2.get('gantry_worker_slots', { worker: 'w1' })).toBeUndefined();
  });
});

onEveryStore('lists: pagination and filters', (storeName) => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(storeName);
  });
  afterEach(async () => {
    await h.close();
  });

  it('runs by workflow, label, state, worker and created time; limit/offset pages; jobs by workflow, label, worker, state and started time', async () => {
    const { app, store, clock } = h;
    await apply(app, `name: a\ntasks:\n  x: { run: "true" }\n  y: { run: "true", needs: [x] }\n`, '/defs/a.yaml');
    await apply(app, `name: b\ntasks:\n  x: { run: "true" }\n`, '/defs/b.yaml');
    const t0 = clock.t;
    const a1 = await startRun(app, 'a', { lang: 'de' });
    clock.t += 60_000;
    const a2 = await startRun(app, 'a', { lang: 'fr' });
    clock.t += 60_000;
    const b1 = await startRun(app, 'b', { lang: 'de' });
    clock.t += 60_000;
    const a3 = await startRun(app, 'a', { lang: 'de', project: 'z' });

    // w1 takes the x of a1 (started at t0+3m+10s), w2 those of b1 and a3 (t0+4m)
    clock.t += 10_000;
    await store.claimJobs({ name: 'w1', host: 'h', queues: ['default'] }, 1, 60_000);
    clock.t += 50_000;
    await store.claimJobs({ name: 'w2', host: 'h', queues: ['default'] }, 10, 60_000);

    const runIds = async (q: string) => {
      const r = await call<{ runs: Run[] }>(app, 'GET', `/api/v1/runs${q}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.runs.map((x) => x.id);
    };
    expect(await runIds('')).toEqual([a3.id, b1.id, a2.id, a1.id]);
    expect(await runIds('?workflow=a')).toEqual([a3.id, a2.id, a1.id]);
    expect(await runIds('?label=lang=de')).toEqual([a3.id, b1.id, a1.id]);
    expect(await runIds('?label=lang=de&label=project=z')).toEqual([a3.id]);
    expect(await runIds('?workflow=a&label=lang=de')).toEqual([a3.id, a1.id]);
    expect(await runIds('?worker=w1')).toEqual([a1.id]);
    expect(await runIds('?worker=w2')).toEqual([a3.id, b1.id, a2.id]);
    expect(await runIds(`?since=${t0 + 60_000}`)).toEqual([a3.id, b1.id, a2.id]);
    expect(await runIds(`?until=${new Date(t0 + 120_000).toISOString()}`)).toEqual([a2.id, a1.id]);
    expect(await runIds(`?since=${t0 + 60_000}&until=${t0 + 180_000}`)).toEqual([b1.id, a2.id]);
    expect(await runIds('?since=1h')).toEqual([a3.id, b1.id, a2.id, a1.id]); // a duration ago (of the real clock: runs are minutes old)
    // pages
    expect(await runIds('?limit=2')).toEqual([a3.id, b1.id]);
    expect(await runIds('?limit=2&offset=2')).toEqual([a2.id, a1.id]);
    expect(await runIds('?limit=2&offset=4')).toEqual([]);
    expect(await runIds('?state=running&workflow=b')).toEqual([b1.id]);

    const jobIds = async (q: string) => {
      const r = await call<{ jobs: Job[] }>(app, 'GET', `/api/v1/jobs${q}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.jobs.map((j) => j.id).sort();
    };
    expect(await jobIds('?workflow=b')).toEqual([`${b1.id}:x`].sort());
    expect(await jobIds('?label=lang=de&state=pending')).toEqual([`${a1.id}:y`, `${a3.id}:y`].sort());
    expect(await jobIds('?label=project=z')).toEqual([`${a3.id}:x`, `${a3.id}:y`].sort());
    expect(await jobIds('?worker=w2&state=running')).toEqual([`${a2.id}:x`, `${a3.id}:x`, `${b1.id}:x`].sort());
    expect(await jobIds('?worker=w2&workflow=a')).toEqual([`${a2.id}:x`, `${a3.id}:x`].sort());
    expect(await jobIds(`?since=${t0 + 200_000}`)).toEqual([`${a2.id}:x`, `${a3.id}:x`, `${b1.id}:x`].sort());
    expect(await jobIds(`?until=${t0 + 200_000}`)).toEqual([`${a1.id}:x`].sort());
    expect(await jobIds(`?run=${a1.id}&limit=1&offset=1`)).toEqual([`${a1.id}:y`].sort());
    expect((await jobIds('?limit=3')).length).toBe(3);
  });

  it('a bad filter value is a 400 naming the field', async () => {
    const { app } = h;
    const cases: [string, string][] = [
      ['/api/v1/runs?limit=-1', 'query.limit'],
      ['/api/v1/runs?limit=abc', 'query.limit'],
      ['/api/v1/runs?limit=10001', 'query.limit'],
      ['/api/v1/runs?offset=1.5', 'query.offset'],
      ['/api/v1/runs?state=exploded', 'query.state'],
      ['/api/v1/runs?since=yesterday', 'query.since'],
      ['/api/v1/runs?until=2026-13-45T99:00', 'query.until'],
      ['/api/v1/runs?label=nokey', 'query.label'],
      ['/api/v1/runs?latest=maybe', 'query.latest'],
      ['/api/v1/jobs?run=x', 'query.run'],
      ['/api/v1/jobs?state=done', 'query.state'],
      ['/api/v1/jobs?since=tomorrow', 'query.since'],
      ['/api/v1/jobs?label==v', 'query.label'],
      ['/api/v1/jobs?stale=perhaps', 'query.stale'],
      ['/api/v1/deferred-runs?state=gone', 'query.state'],
      ['/api/v1/runs/abc', 'path.id'],
    ];
    for (const [url, field] of cases) {
      const r = await call<{ error: string }>(app, 'GET', url);
      expect(r.status, url).toBe(400);
      expect(r.body.error, url).toContain(field);
    }
  });
});

describe('API on SQLite: OpenAPI document, body limits, invalid bodies', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness('SQLite');
  });
  afterEach(async () => {
    await h.close();
  });

  it('GET /api/v1/openapi.json: OpenAPI 3.1 with every route, its parameters, bodies and responses; every $ref resolves', async () => {
    const r = await h.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    const doc = JSON.parse(r.body) as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { summary: string; parameters?: { name: string; in: string; required: boolean }[]; requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBe('Gantry');

    const expected = [
      'GET /api/v1/health', 'GET /api/v1/openapi.json', 'GET /metrics', 'POST /api/v1/definitions', 'GET /api/v1/workflows',
      'POST /api/v1/runs', 'GET /api/v1/runs', 'GET /api/v1/runs/{id}', 'POST /api/v1/runs/{id}/cancel', 'POST /api/v1/runs/{id}/retry',
      'GET /api/v1/deferred-runs', 'POST /api/v1/deferred-runs/{id}/cancel', 'GET /api/v1/jobs', 'GET /api/v1/jobs/{id}',
      'POST /api/v1/jobs/{id}/cancel', 'GET /api/v1/logs', 'GET /api/v1/events', 'GET /api/v1/workers', 'GET /api/v1/pools', 'PUT /api/v1/pools/{name}',
      'POST /api/v1/workers/{name}/drain', 'POST /api/v1/workers/{name}/stop', 'GET /api/v1/runs/{id}/graph', 'GET /api/v1/overview',
      'GET /api/v1/auth/whoami', 'POST /api/v1/tokens', 'GET /api/v1/tokens', 'DELETE /api/v1/tokens/{id}',
      'GET /api/v1/secrets', 'PUT /api/v1/secrets/{namespace}/{name}', 'DELETE /api/v1/secrets/{namespace}/{name}',
      'GET /api/v1/services', 'GET /api/v1/services/{name}', 'GET /api/v1/services/{name}/logs', 'POST /api/v1/services/{name}/start', 'POST /api/v1/services/{name}/stop',
      'POST /api/v1/exec',
      'GET /api/v1/runs/{id}/eta', 'GET /api/v1/errors', 'GET /api/v1/broken', 'GET /api/v1/acct',
      'GET /api/v1/audit', 'GET /api/v1/subscriptions', 'POST /api/v1/subscriptions', 'DELETE /api/v1/subscriptions/{id}',
      'GET /api/v1/deliveries', 'POST /api/v1/namespaces/{namespace}/webhook-secret', 'GET /api/v1/feed.atom',
      'GET /api/v1/namespaces', 'GET /api/v1/namespaces/{namespace}', 'PUT /api/v1/namespaces/{namespace}',
    ];
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual([...expected].sort());
    // every route the server has is described (a route added without a description shows as undocumented)
    for (const [p, ops] of Object.entries(doc.paths))
      for (const [m, op] of Object.entries(ops)) {
        expect(op.summary, `${m} ${p}`).not.toBe('(undocumented)');
        expect(h.app.hasRoute({ method: m.toUpperCase() as 'GET', url: p.replace(/\{(\w+)\}/g, ':$1') }), `${m} ${p}`).toBe(true);
        for (const name of [...p.matchAll(/\{(\w+)\}/g)].map((x) => x[1]))
          expect(op.parameters?.find((x) => x.in === 'path' && x.name === name)?.required, `${m} ${p}: path parameter ${name}`).toBe(true);
        expect(Object.keys(op.responses).length, `${m} ${p}`).toBeGreaterThan(0);
      }
    expect(Object.keys(ROUTES).length).toBe(expected.length);

    const q = (p: string, m = 'get') => (doc.paths[p]![m]!.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name).sort();
    expect(q('/api/v1/runs')).toEqual(['label', 'latest', 'limit', 'namespace', 'offset', 'since', 'state', 'until', 'worker', 'workflow']);
    expect(q('/api/v1/jobs')).toEqual(['label', 'limit', 'namespace', 'offset', 'run', 'since', 'stale', 'state', 'until', 'worker', 'workflow']);
    for (const [p, m] of [['/api/v1/definitions', 'post'], ['/api/v1/runs', 'post'], ['/api/v1/runs/{id}/retry', 'post'], ['/api/v1/pools/{name}', 'put']] as const)
      expect(doc.paths[p]![m]!.requestBody?.content['application/json'], `${m} ${p}`).toBeDefined();
    const runBody = (doc.paths['/api/v1/runs']!.post!.requestBody!.content['application/json'] as { schema: { properties: Record<string, unknown>; required: string[] } }).schema;
    expect(Object.keys(runBody.properties).sort()).toEqual(['at', 'force', 'labels', 'namespace', 'params', 'priority', 'workflow']);
    expect(runBody.required).toEqual(['workflow']);

    // every $ref points at a component that exists
    const refs = [...r.body.matchAll(/"\$ref":"([^"]+)"/g)].map((x) => x[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of new Set(refs)) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[ref.slice('#/components/schemas/'.length)], ref).toBeDefined();
    }
    const job = doc.components.schemas.Job as { properties: Record<string, unknown> };
    expect(Object.keys(job.properties)).toEqual(expect.arrayContaining(['id', 'runId', 'task', 'chunk', 'state', 'attempts', 'worker', 'startedAt', 'finishedAt', 'error']));
  });

  it('a body over the limit is a 413 with a JSON error, not a 500; definitions take up to 10 MiB', async () => {
    const { app } = h;
    const big = JSON.stringify({ workflow: 'x', params: { blob: 'a'.repeat(2 * 1024 * 1024) } });
    const r = await call<{ error: string }>(app, 'POST', '/api/v1/runs', JSON.parse(big));
    expect(r.status).toBe(413);
    expect(r.body.error).toMatch(/request body too large: POST \/api\/v1\/runs takes at most 1 MiB/);

    const source = `name: big\ndescription: "${'d'.repeat(3 * 1024 * 1024)}"\ntasks:\n  a: { run: "true" }\n`;
    const ok = await call<{ applied: { name: string }[] }>(app, 'POST', '/api/v1/definitions', { files: [{ path: '/d/big.yaml', source }] });
    expect(ok.status, JSON.stringify(ok.body).slice(0, 300)).toBe(200);
    expect(ok.body.applied.map((a) => a.name)).toEqual(['big']);

    const huge = await call<{ error: string }>(app, 'POST', '/api/v1/definitions', { files: [{ path: '/d/huge.yaml', source: 'x'.repeat(11 * 1024 * 1024) }] });
    expect(huge.status).toBe(413);
    expect(huge.body.error).toMatch(/at most 10 MiB/);
    expect((await call(app, 'GET', '/api/v1/health')).status).toBe(200);
  });

  it('invalid bodies are 400 with the field paths', async () => {
    const { app } = h;
    const cases: [string, string, unknown, string[]][] = [
      ['POST', '/api/v1/definitions', { files: [{ path: '', source: 1 }] }, ['body.files.0.path', 'body.files.0.source']],
      ['POST', '/api/v1/definitions', { files: [] }, ['body.files']],
      ['POST', '/api/v1/runs', { workflow: 5, priority: 1.5, extra: true }, ['body.workflow', 'body.priority', 'body']],
      ['POST', '/api/v1/runs', { workflow: 'x', labels: { a: 1 } }, ['body.labels.a']],
      ['POST', '/api/v1/runs/1/retry', { failed: 'yes' }, ['body.failed']],
      ['PUT', '/api/v1/pools/db', { slots: -1 }, ['body.slots']],
      ['PUT', '/api/v1/pools/db', {}, ['body.slots']],
    ];
    for (const [method, url, payload, paths] of cases) {
      const r = await call<{ error: string; issues: { path: string }[] }>(app, method as 'POST', url, payload);
      expect(r.status, `${method} ${url} ${JSON.stringify(payload)}`).toBe(400);
      expect(r.body.issues.map((i) => i.path), `${method} ${url}`).toEqual(expect.arrayContaining(paths));
    }
    const notJson = await app.inject({
      method: 'POST',
      url: '/api/v1/runs',
      payload: '{"workflow":',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminTokens.get(app)}` },
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toHaveProperty('error');
  });
});

onEveryStore('run status of a run too big to list job by job', (storeName) => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(storeName);
  });
  afterEach(async () => {
    await h.close();
  });

  it('`?jobs=active` lists running/retrying/failed jobs and per-stage progress that agrees with the full listing', async () => {
    const { app, store } = h;
    // a pipeline per wiki (fetch → parse, parse splits into 3 chunks), then one report over all of them
    await apply(app, `name: wiki\nparams: { w: { required: true } }\ntasks:\n  fetch: { run: "true" }\n  parse: { run: "true", needs: [fetch], split: "echo '[1,2,3]'" }\n`, '/defs/wiki.yaml');
    await apply(
      app,
      `name: all\nparams: { wikis: { default: [a, b, c, d] } }\ntasks:\n  w: { workflow: wiki, foreach: "{{ params.wikis }}", with: { w: "{{ item }}" } }\n  report: { run: "true", needs: [w] }\n`,
      '/defs/all.yaml',
    );
    const run = await startRun(app, 'all');
    const w = { name: 'w1', host: 'h', queues: ['default'] };
    // the four fetches: a succeeds and its split makes 3 chunks, one of which runs (40 %)
    const fetches = Object.fromEntries((await store.claimJobs(w, 4, 60_000)).map((c) => [c.job.task, c.fence]));
    expect(Object.keys(fetches).sort()).toEqual(['w[a].fetch', 'w[b].fetch', 'w[c].fetch', 'w[d].fetch']);
    await store.completeAttempt(fetches['w[a].fetch']!, { state: 'succeeded', exitCode: 0 });
    const [split] = await store.claimJobs(w, 1, 60_000);
    expect(split!.job.task).toBe('w[a].parse.split');
    await store.completeAttempt(split!.fence, { state: 'succeeded', exitCode: 0, chunks: [1, 2, 3].map((value) => ({ value, outputs: {} })) });
    const [chunk] = await store.claimJobs(w, 1, 60_000);
    expect(chunk!.job.chunk).not.toBeNull();
    await store.heartbeat('w1', [{ fence: chunk!.fence, progress: 40 }], 60_000);
    // then b succeeds, c fails for good (its pipeline is skipped), d keeps running
    await store.completeAttempt(fetches['w[b].fetch']!, { state: 'succeeded', exitCode: 0 });
    await store.completeAttempt(fetches['w[c].fetch']!, { state: 'failed', exitCode: 1, error: 'boom', retryable: false });

    const all = await call<{ jobs: Job[]; jobsListed: string; tasks: Record<string, unknown>[]; counts: Record<string, number> }>(app, 'GET', `/api/v1/runs/${run.id}?jobs=all`);
    const active = await call<typeof all.body>(app, 'GET', `/api/v1/runs/${run.id}?jobs=active`);
    expect(all.status).toBe(200);
    expect(active.status, JSON.stringify(active.body)).toBe(200);
    expect(all.body.jobsListed).toBe('all');
    expect(active.body.jobsListed).toBe('active');
    // a small run lists everything by default
    expect((await call<typeof all.body>(app, 'GET', `/api/v1/runs/${run.id}`)).body.jobsListed).toBe('all');
    expect(active.body.counts).toEqual(all.body.counts);

    // active: exactly the running and failed jobs of the full listing
    const pick = (jobs: Job[]) => jobs.filter((j) => ['running', 'retrying', 'failed'].includes(j.state)).map((j) => `${j.id} ${j.state}`).sort();
    expect(active.body.jobs.map((j) => `${j.id} ${j.state}`).sort()).toEqual(pick(all.body.jobs));
    expect(pick(active.body.jobs)).toEqual([`${run.id}:w[c].fetch failed`, `${run.id}:w[d].fetch running`, `${chunk!.job.id} running`].sort());

    const stage = (t: string) => active.body.tasks.find((x) => x.task === t);
    expect(active.body.tasks.map((t) => t.task)).toEqual(['w[*].fetch', 'w[*].parse.split', 'w[*].parse', 'report']);
    expect(stage('w[*].fetch')).toMatchObject({ state: 'running', copies: { done: 2, total: 4, running: 1, failed: 1 }, chunks: null, progress: 50 });
    // done: a's (succeeded) and c's (skipped, as everything downstream of a failure); b's waits in the queue
    expect(stage('w[*].parse.split')).toMatchObject({ state: 'queued', copies: { done: 2, total: 4, running: 0, failed: 0 } });
    // a's parse: 3 chunks, none done, one at 40 %; c's parse skipped, the others wait
    expect(stage('w[*].parse')).toMatchObject({ state: 'pending', chunks: { done: 0, total: 3, running: 1, failed: 0 }, progress: 13, copies: { done: 1, total: 4 } });
    expect(stage('report')).toMatchObject({ state: 'pending', progress: null });
    expect(stage('report')!.copies).toBeUndefined();

    expect((await call(app, 'GET', `/api/v1/runs/${run.id}?jobs=some`)).status).toBe(400);
  });
});
