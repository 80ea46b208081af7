// The API reads behind the web UI: a run's graph (groups closed and opened,
// split tasks as one node) and the overview, on both stores; and how the
// server serves the UI's files next to the API.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cluster, makeToken, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { buildApp } from '../../src/server/app.js';
import { silentLogger } from '../../src/log.js';
import type { GraphNode, RunGraph } from '../../src/server/runGraph.js';
import type { Overview } from '../../src/server/overview.js';

const CHILD = `
name: child
params:
  wiki: { required: true }
tasks:
  stubs:
    run: echo stubs {{ params.wiki }}
  parts:
    needs: [stubs]
    split: echo '[1, 2, 3]'
    run: echo part {{ chunk.index }}
  publish:
    needs: [parts]
    run: echo publish
`;
const PARENT = `
name: parent
tasks:
  prep:
    run: echo prep
  dump:
    needs: [prep]
    workflow: child
    foreach: [a, b]
    with: { wiki: "{{ item }}" }
  broken:
    needs: [prep]
    run: echo oops >&2; exit 3
  index:
    needs: [dump]
    run: echo index
`;

type Graph = RunGraph & { lastEventId: number; run: { id: number; state: string } };

onEveryStore('web UI reads', (storeName) => {
  let c: Cluster;
  let runId: number;
  const graph = async (...expand: string[]) => {
    const qs = expand.map((e) => `expand=${encodeURIComponent(e)}`).join('&');
    const r = await c.app.inject({ method: 'GET', url: `/api/v1/runs/${runId}/graph${qs ? '?' + qs : ''}`, headers: { authorization: `Bearer ${c.token}` } });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as Graph;
  };
  const node = (g: Graph, id: string): GraphNode => {
    const n = g.nodes.find((x) => x.id === id);
    expect(n, `${id} in ${g.nodes.map((x) => x.id).join(', ')}`).toBeDefined();
    return n!;
  };
  const edges = (g: Graph) => g.edges.map((e) => `${e.from} -> ${e.to}`).sort();

  beforeAll(async () => {
    c = await cluster(storeName);
    c.write('child.yaml', CHILD);
    c.write('parent.yaml', PARENT);
    expect((await c.apply('child.yaml', 'parent.yaml')).status).toBe(200);
    const r = await c.startRun('parent');
    expect(r.status).toBe(201);
    runId = r.body.id;
    expect((await c.waitRun(runId)).state).toBe('failed');
  });
  afterAll(async () => {
    await c?.close();
  });

  it('a run graph: foreach and sub-workflow closed to one node with counts; edges between what is shown', async () => {
    const g = await graph();
    expect(g.run.id).toBe(runId);
    expect(g.nodes.map((n) => n.id)).toEqual(['prep', 'dump', 'broken', 'index']);
    const dump = node(g, 'dump');
    // 2 copies × (stubs, parts: its split step, 3 chunks and its combine, publish) = 2 × 7 jobs
    expect(dump).toMatchObject({ kind: 'foreach', children: 2, tasks: 6, jobs: 14, state: 'succeeded', counts: { succeeded: 14 }, progress: 100 });
    expect(node(g, 'broken')).toMatchObject({ kind: 'task', state: 'failed', tasks: 1, jobs: 1 });
    expect(edges(g)).toEqual(['dump -> index', 'prep -> broken', 'prep -> dump']);
    expect(g.expanded).toEqual([]);
    expect(g.lastEventId).toBeGreaterThan(0);
  });

  it('opening the foreach shows one node per copy; opening a copy shows its tasks, a split task as one node with chunks done/total', async () => {
    const one = await graph('dump');
    expect(one.nodes.map((n) => n.id)).toEqual(['prep', 'dump[a]', 'dump[b]', 'broken', 'index']);
    expect(node(one, 'dump[a]')).toMatchObject({ kind: 'pipeline', label: 'a', parent: 'dump', children: 3, jobs: 7 });
    expect(edges(one)).toEqual(['dump[a] -> index', 'dump[b] -> index', 'prep -> broken', 'prep -> dump[a]', 'prep -> dump[b]']);
    expect(one.expanded).toEqual([{ id: 'dump', kind: 'foreach', label: 'dump' }]);

    const two = await graph('dump', 'dump[a]');
    expect(two.nodes.map((n) => n.id)).toEqual(['prep', 'dump[a].stubs', 'dump[b]', 'dump[a].parts', 'dump[a].publish', 'broken', 'index'].sort((a, b) => two.nodes.findIndex((n) => n.id === a) - two.nodes.findIndex((n) => n.id === b)));
    expect(node(two, 'dump[a].parts')).toMatchObject({ kind: 'split', label: 'parts', parent: 'dump[a]', state: 'succeeded', chunks: { done: 3, total: 3, running: 0, failed: 0 }, jobs: 5 });
    expect(node(two, 'dump[a].stubs')).toMatchObject({ kind: 'task', label: 'stubs', state: 'succeeded', jobs: 1 });
    expect(edges(two)).toEqual(
      ['dump[a].parts -> dump[a].publish', 'dump[a].publish -> index', 'dump[a].stubs -> dump[a].parts', 'dump[b] -> index', 'prep -> broken', 'prep -> dump[a].stubs', 'prep -> dump[b]'].sort(),
    );
    // a copy opened inside a closed foreach stays closed
    expect((await graph('dump[a]')).nodes.map((n) => n.id)).toContain('dump');
  });

  it('a graph of an unknown run is a 404; a bad id a 400', async () => {
    expect((await c.app.inject({ method: 'GET', url: '/api/v1/runs/999999/graph', headers: { authorization: `Bearer ${c.token}` } })).statusCode).toBe(404);
    expect((await c.app.inject({ method: 'GET', url: '/api/v1/runs/x/graph', headers: { authorization: `Bearer ${c.token}` } })).statusCode).toBe(400);
  });

  it('the overview: runs by state, failures of the last 24 h, queues, pools, workers, jobs finished per minute', async () => {
    expect((await c.inject('PUT', '/api/v1/pools/dbstore', { slots: 3 })).status).toBe(200);
    const r = await c.app.inject({ method: 'GET', url: '/api/v1/overview', headers: { authorization: `Bearer ${c.token}` } });
    expect(r.statusCode).toBe(200);
    const o = r.json() as Overview;
    expect(o.runs).toEqual({ failed: 1 });
    expect(o.failures.count).toBe(1);
    expect(o.failures.latest.map((j) => j.id)).toEqual([`${runId}:broken`]);
    expect(o.failures.latest[0]!.exitCode).toBe(3);
    expect(o.pools).toEqual([{ name: 'dbstore', slots: 3, running: 0, queued: 0 }]);
    expect(o.workers).toMatchObject({ total: 1, busy: 0, idle: 1 });
    expect(o.queues).toEqual([]);
    // prep, broken, index, and 2 × 7 jobs of the copies: 17 finished, one of them failed (skipped jobs do not count)
    const total = o.throughput.series.reduce((n, s) => n + s.succeeded + s.failed, 0);
    expect(total).toBe(17);
    expect(o.throughput.series.reduce((n, s) => n + s.failed, 0)).toBe(1);
    for (const s of o.throughput.series) {
      expect(s.minute % 60_000).toBe(0);
      expect(s.minute).toBeGreaterThanOrEqual(o.throughput.since);
      expect(typeof s.worker).toBe('string');
    }
  });
});

describe('the web UI beside the API', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-ui-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function appWith(uiDir: string) {
    const { SqliteStore } = await import('../../src/store/sqlite/index.js');
    const store = new SqliteStore(path.join(dir, `s-${Math.random()}.db`));
    await store.migrate();
    const app = await buildApp({ store, logger: silentLogger(), uiDir });
    const token = await makeToken(store, 'admin');
    return { app, token, close: async () => (await app.close(), await store.close()) };
  }

  it('without a build, / says how to build it; the API is unchanged', async () => {
    const { app, close } = await appWith(path.join(dir, 'none'));
    try {
      const r = await app.inject({ method: 'GET', url: '/' });
      expect(r.statusCode).toBe(200);
      expect(r.body).toContain('npm run build');
      expect((await app.inject({ method: 'GET', url: '/api/v1/health' })).json()).toMatchObject({ ok: true });
      const missing = await app.inject({ method: 'GET', url: '/api/v1/nothing-here' });
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toMatchObject({ error: expect.stringContaining('/api/v1/nothing-here') });
    } finally {
      await close();
    }
  });

  it('with a build: files as they are, client routes fall back to index.html, /api/v1/* and /metrics never do', async () => {
    const ui = path.join(dir, 'built');
    fs.mkdirSync(path.join(ui, 'assets'), { recursive: true });
    fs.writeFileSync(path.join(ui, 'index.html'), '<!doctype html><div id="root"></div>');
    fs.writeFileSync(path.join(ui, 'assets', 'app-1234.js'), 'console.log(1)');
    const { app, token, close } = await appWith(ui);
    try {
      const root = await app.inject({ method: 'GET', url: '/' });
      expect(root.statusCode).toBe(200);
      expect(root.body).toContain('id="root"');
      const asset = await app.inject({ method: 'GET', url: '/assets/app-1234.js' });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['content-type']).toMatch(/javascript/);
      expect(asset.headers['cache-control']).toContain('immutable');
      for (const client of ['/runs/17', '/runs?state=failed', '/workers'])
        expect((await app.inject({ method: 'GET', url: client })).body, client).toContain('id="root"');
      const api = await app.inject({ method: 'GET', url: '/api/v1/runs/17', headers: { authorization: `Bearer ${token}` } });
      expect(api.statusCode).toBe(404);
      expect(api.json()).toMatchObject({ error: 'no run 17' });
      expect((await app.inject({ method: 'GET', url: '/api/v1/unknown' })).headers['content-type']).toMatch(/json/);
      expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toContain('gantry_');
      expect((await app.inject({ method: 'POST', url: '/runs/17' })).statusCode).toBe(404);
    } finally {
      await close();
    }
  });
});

describe('buildRunGraph: an opened foreach of many copies', () => {
  it('shows 100 copies, failed and running first, the others as one node; `all` shows every copy', async () => {
    const { buildRunGraph, MAX_CHILDREN } = await import('../../src/server/runGraph.js');
    const rows = [];
    const edges = [];
    for (let i = 0; i < 150; i++) {
      const state = i === 140 ? 'failed' : i === 120 ? 'running' : 'succeeded';
      for (const t of ['a', 'b']) rows.push({ task: `w[c${i}].${t}`, state, chunk: false, chunked: false, count: 1, startedAt: 1000 + i, finishedAt: 2000 + i, progress: 0 } as const);
      edges.push({ from: `w[c${i}].a`, to: `w[c${i}].b` }, { from: `w[c${i}].b`, to: 'end' });
    }
    rows.push({ task: 'end', state: 'pending', chunk: false, chunked: false, count: 1, startedAt: null, finishedAt: null, progress: 0 } as const);
    const g = buildRunGraph(rows, edges, ['w']);
    const copies = g.nodes.filter((n) => n.kind === 'pipeline');
    expect(copies).toHaveLength(MAX_CHILDREN);
    // kept in the run's order: the failed and the running copy past the first 100 are among them
    expect(copies.filter((n) => n.state !== 'succeeded').map((n) => [n.id, n.state])).toEqual([['w[c120]', 'running'], ['w[c140]', 'failed']]);
    const more = g.nodes.find((n) => n.kind === 'more')!;
    expect(more).toMatchObject({ id: 'w…', parent: 'w', children: 50, jobs: 100, tasks: 100, state: 'succeeded', counts: { succeeded: 100 } });
    expect(g.edges).toContainEqual({ from: 'w…', to: 'end' });
    expect(g.edges.filter((e) => e.to === 'end')).toHaveLength(MAX_CHILDREN + 1);
    const everything = buildRunGraph(rows, edges, ['w'], ['w']);
    expect(everything.nodes.filter((n) => n.kind === 'pipeline')).toHaveLength(150);
    expect(everything.nodes.some((n) => n.kind === 'more')).toBe(false);
  });
});
