// GET /api/v1/acct on both stores: known usage gives known groups and total,
// bad grouping or times are a 400 naming the field, a maintainer's token sums
// only its namespaces, and jobs carry their latest attempt's figures.
import { it, expect, beforeEach, afterEach } from 'vitest';
import { onEveryStore, makeToken } from '../helpers/cluster.js';
import { apiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import type { AcctReport } from '../../src/server/acctSchemas.js';
import type { Job } from '../../src/store/types.js';

const W = { name: 'w1', host: 'h', queues: ['default'] };
const MiB = 1024 * 1024;

onEveryStore('API acct', (name) => {
  let h: ApiHarness;
  let runA: number;

  beforeEach(async () => {
    h = await apiHarness(name);
    await h.apply(`name: etl\nnamespace: a\ntasks:\n  x: { run: "true" }\n  y: { run: "true" }\n`, '/defs/a.yaml');
    await h.apply(`name: etl\nnamespace: b\ntasks:\n  x: { run: "true" }\n`, '/defs/b.yaml');
    runA = (await h.startRun('etl', { namespace: 'a' })).id;
    await h.startRun('etl', { namespace: 'b' });
    const usage: Record<string, { cpuMs: number; maxRssBytes: number }> = {
      [`${runA}:x`]: { cpuMs: 1200, maxRssBytes: 30 * MiB },
      [`${runA}:y`]: { cpuMs: 800, maxRssBytes: 10 * MiB },
    };
    for (const c of await h.store.claimJobs(W, 10, 60_000)) {
      h.clock.t += 1000;
      const u = usage[c.job.id] ?? { cpuMs: 7, maxRssBytes: 2 * MiB };
      await h.store.completeAttempt(c.fence, { state: 'succeeded', exitCode: 0, usage: u });
    }
  });
  afterEach(async () => h.close());

  it('sums per namespace and task, with the total', async () => {
    const r = await h.call<AcctReport>('GET', '/api/v1/acct?by=task');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.by).toEqual(['namespace', 'workflow', 'task']);
    expect(r.body.groups.map((g) => [g.namespace, g.workflow, g.task, g.attempts, g.cpuMs, g.maxRssBytes])).toEqual([
      ['a', 'etl', 'x', 1, 1200, 30 * MiB],
      ['a', 'etl', 'y', 1, 800, 10 * MiB],
      ['b', 'etl', 'x', 1, 7, 2 * MiB],
    ]);
    expect(r.body.total).toMatchObject({ attempts: 3, succeeded: 3, failed: 0, cpuMs: 2007, measured: 3, maxRssBytes: 30 * MiB, meanRssBytes: 14 * MiB });
    const byNs = await h.call<AcctReport>('GET', '/api/v1/acct');
    expect(byNs.body.groups.map((g) => [g.namespace, g.cpuMs])).toEqual([['a', 2000], ['b', 7]]);
    const total = await h.call<AcctReport>('GET', '/api/v1/acct?by=');
    expect(total.body.groups).toEqual([expect.objectContaining({ attempts: 3, cpuMs: 2007 })]);
    const later = await h.call<AcctReport>('GET', `/api/v1/acct?since=${h.clock.t + 1}`);
    expect(later.body.groups).toEqual([]);
  });

  it('answers 400 naming a bad grouping or time', async () => {
    const bad = await h.call<{ error: string; issues: { path: string; message: string }[] }>('GET', '/api/v1/acct?by=namespace,queue');
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0]).toMatchObject({ path: 'query.by' });
    expect(bad.body.issues[0]!.message).toContain("'queue'");
    const when = await h.call<{ issues: { path: string }[] }>('GET', '/api/v1/acct?since=yesterdayish');
    expect(when.status).toBe(400);
    expect(when.body.issues[0]!.path).toBe('query.since');
  });

  it("sums only the namespaces a maintainer's or viewer's token may view", async () => {
    const get = async (token: string, url: string) => {
      const r = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
      return { status: r.statusCode, body: r.json<AcctReport>() };
    };
    const maintainer = await makeToken(h.store, 'maintainer', ['a'], 'a-owner');
    const viewer = await makeToken(h.store, 'viewer', ['b'], 'b-viewer');
    expect((await get(maintainer, '/api/v1/acct')).body.groups.map((g) => g.namespace)).toEqual(['a']);
    expect((await get(viewer, '/api/v1/acct?by=worker')).body.total).toMatchObject({ attempts: 1, cpuMs: 7 });
    expect((await get(maintainer, '/api/v1/acct?namespace=b')).status).toBe(403);
  });

  it("lists jobs with their latest attempt's CPU time and peak memory", async () => {
    const r = await h.call<{ jobs: Job[] }>('GET', `/api/v1/jobs?run=${runA}`);
    expect(r.body.jobs.map((j) => [j.task, j.cpuMs, j.maxRssBytes])).toEqual([
      ['x', 1200, 30 * MiB],
      ['y', 800, 10 * MiB],
    ]);
    // the run's status lists them the same way
    const st = await h.call<{ jobs: Job[] }>('GET', `/api/v1/runs/${runA}`);
    expect(st.body.jobs.map((j) => [j.task, j.cpuMs, j.maxRssBytes])).toEqual([
      ['x', 1200, 30 * MiB],
      ['y', 800, 10 * MiB],
    ]);
    const job = await h.call<{ attemptList: { cpuMs: number | null }[] }>('GET', `/api/v1/jobs/${runA}:x`);
    expect(job.body.attemptList.map((a) => a.cpuMs)).toEqual([1200]);
    const doc = await h.call<{ paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>('GET', '/api/v1/openapi.json');
    expect(doc.body.paths['/api/v1/acct']).toBeDefined();
    expect(doc.body.components.schemas.AcctRow).toBeDefined();
  });
});
