// Reads are scoped (issue 14, item 8), on both stores: every read of a
// namespace's runs, jobs, logs, events, feed, audit and errors needs a token
// that may view it; a maintainer of A and a viewer of B each see only their
// own; without a token nothing is readable until an admin makes a namespace
// public, and then only that namespace, and nothing can be done in it.
import { it, expect, beforeAll, afterAll } from 'vitest';
import { apiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { makeToken, onEveryStore } from '../helpers/cluster.js';
import { OPEN_READ_ROUTES, ROUTES } from '../../src/server/openapi.js';
import type { AuditEntry, Job, Run, StoreEvent } from '../../src/store/types.js';

const W = { name: 'w1', host: 'test-host', queues: ['default'] };
const wf = (name: string, namespace: string) => `name: ${name}\nnamespace: ${namespace}\ntasks:\n  x: { run: "true", retries: { max: 1, delay: 0s } }\n`;

onEveryStore('reads are scoped', (storeName) => {
  let h: ApiHarness;
  let url: string;
  let admin: string;
  let maintainerA: string;
  let viewerB: string;
  let runA: Run;
  let runB: Run;

  const get = async <T = Record<string, unknown>>(path: string, token: string | null): Promise<{ status: number; body: T; text: string }> => {
    const r = await h.app.inject({ method: 'GET', url: path, headers: token ? { authorization: `Bearer ${token}` } : {} });
    const json = String(r.headers['content-type'] ?? '').startsWith('application/json');
    return { status: r.statusCode, body: (json ? r.json() : null) as T, text: r.body };
  };
  const send = async (method: 'POST' | 'PUT', path: string, payload: object, token: string | null) => {
    const r = await h.app.inject({ method, url: path, payload, headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: r.statusCode, body: r.json() as Record<string, unknown> };
  };
  /** the run and job events a stream from the start shows this token */
  const events = async (token: string | null): Promise<{ status: number; events: StoreEvent[] }> => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 1_500);
    const r = await fetch(`${url}/api/v1/events?after=0`, { signal: ac.signal, headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (r.status !== 200) {
      clearTimeout(timer);
      return { status: r.status, events: [] };
    }
    let text = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of r.body!) text += decoder.decode(chunk as Uint8Array, { stream: true });
    } catch {
      // aborted: the stream stays open by design
    }
    const list = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as StoreEvent);
    return { status: 200, events: list.filter((e) => e.kind === 'run' || e.kind === 'job') };
  };

  beforeAll(async () => {
    h = await apiHarness(storeName);
    url = await h.listen();
    admin = await makeToken(h.store, 'admin', [], 'admin');
    maintainerA = await makeToken(h.store, 'maintainer', ['a'], 'maintainer of a');
    viewerB = await makeToken(h.store, 'viewer', ['b'], 'viewer of b');
    await h.apply(wf('wa', 'a'), '/defs/a.yaml');
    await h.apply(wf('wb', 'b'), '/defs/b.yaml');
    runA = await h.startRun('wa', { namespace: 'a' });
    runB = await h.startRun('wb', { namespace: 'b' });
    // each job runs, says something and fails twice (audit entries, errors, a failed run in the feed)
    for (const attempt of [1, 2]) {
      if (attempt === 2) await h.store.promoteDueRetries();
      for (const c of await h.store.claimJobs(W, 10, 60_000)) {
        const ns = c.job.runId === runA.id ? 'a' : 'b';
        if (attempt === 1) await h.store.appendLogs(c.fence, [{ stream: 'stdout', ts: Date.now(), line: `private line of ${ns}` }]);
        await h.store.completeAttempt(c.fence, { state: 'failed', exitCode: 3, error: `exit code 3: boom in ${ns}` });
      }
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it('without a token and with nothing public, every read of the API but health, openapi, whoami and /metrics is a 401', async () => {
    const reads = Object.keys(ROUTES).filter((k) => k.startsWith('GET ') && !OPEN_READ_ROUTES.includes(k));
    expect(reads.length).toBeGreaterThan(20);
    for (const key of reads) {
      const template = key.slice(4);
      const path = template
        .replace('/jobs/:id', `/jobs/${runA.id}:x`)
        .replace(':id', String(runA.id))
        .replace(':namespace', 'a')
        .replace(/:\w+/g, 'x');
      const query = template === '/api/v1/logs' ? `?run=${runA.id}` : '';
      const r = await get<{ error: string }>(path + query, null);
      expect(r.status, key).toBe(401);
      expect(r.text, key).toMatch(/token/);
    }
    for (const key of OPEN_READ_ROUTES) expect((await get(key.slice(4), null)).status, key).toBe(200);
    // /metrics stays open: counts by state, queue, pool and worker, no namespace, workflow, run or job
    const metrics = (await get('/metrics', null)).text;
    expect(metrics).toMatch(/gantry_jobs\{/);
    expect(metrics).not.toMatch(/namespace=|workflow=|run=|"wa"|"wb"/);
  });

  for (const who of ['maintainer of a', 'viewer of b'] as const) {
    it(`a ${who} sees its own namespace's runs, jobs, logs, events, feed, audit and errors, and is refused the other's (403)`, async () => {
      const [token, mine, other, theirs] = who === 'maintainer of a' ? [maintainerA, runA, runB, 'b'] : [viewerB, runB, runA, 'a'];
      const myNs = mine.namespace;
      expect((await get<{ runs: Run[] }>('/api/v1/runs', token)).body.runs.map((r) => r.id)).toEqual([mine.id]);
      expect((await get<{ workflows: { namespace: string }[] }>('/api/v1/workflows', token)).body.workflows.map((w) => w.namespace)).toEqual([myNs]);
      expect((await get(`/api/v1/runs/${mine.id}`, token)).status).toBe(200);
      const refused = await get<{ error: string }>(`/api/v1/runs/${other.id}`, token);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatch(new RegExp(`namespace '${theirs}' is not one this token may read`));
      for (const path of [`/api/v1/runs/${other.id}/eta`, `/api/v1/runs/${other.id}/graph`, `/api/v1/jobs/${other.id}:x`, `/api/v1/jobs?run=${other.id}`, `/api/v1/logs?run=${other.id}`, `/api/v1/logs?job=${other.id}:x`, `/api/v1/audit?namespace=${theirs}`, `/api/v1/runs?namespace=${theirs}`, `/api/v1/errors?run=${other.id}`, `/api/v1/namespaces/${theirs}`])
        expect((await get(path, token)).status, path).toBe(403);

      const jobs = (await get<{ jobs: Job[] }>('/api/v1/jobs', token)).body.jobs;
      expect(jobs.map((j) => j.runId)).toEqual([mine.id]);
      const logs = await get<{ lines: { line: string }[] }>(`/api/v1/logs?run=${mine.id}`, token);
      expect(logs.body.lines.map((l) => l.line)).toEqual([`private line of ${myNs}`]);
      const audit = (await get<{ entries: AuditEntry[] }>('/api/v1/audit', token)).body.entries;
      expect(audit.length).toBeGreaterThan(0);
      expect(new Set(audit.map((e) => e.namespace))).toEqual(new Set([myNs]));
      const errors = (await get<{ errors: { runId: number; error: string }[] }>('/api/v1/errors', token)).body.errors;
      expect(errors.map((e) => e.error)).toEqual([`exit code 3: boom in ${myNs}`, `exit code 3: boom in ${myNs}`]);
      const feed = (await get('/api/v1/feed.atom', token)).text;
      expect(feed).toContain(`w${myNs}`);
      expect(feed).not.toContain(`w${theirs}`);
      const stream = await events(token);
      expect(stream.status).toBe(200);
      expect(stream.events.length).toBeGreaterThan(0);
      expect(new Set(stream.events.map((e) => e.runId))).toEqual(new Set([mine.id]));
      // what an admin sees, for contrast
      expect(new Set((await events(admin)).events.map((e) => e.runId))).toEqual(new Set([runA.id, runB.id]));
    });
  }

  it('a public namespace is readable by anyone (and only it), and still refuses every action without a token or with a token of another namespace', async () => {
    expect((await send('PUT', '/api/v1/namespaces/a', { public: true }, maintainerA)).status).toBe(403);
    expect((await send('PUT', '/api/v1/namespaces/a', { public: true }, admin)).body).toMatchObject({ namespace: 'a', public: true });
    try {
      expect((await get<{ runs: Run[] }>('/api/v1/runs', null)).body.runs.map((r) => r.id)).toEqual([runA.id]);
      expect((await get(`/api/v1/runs/${runA.id}`, null)).status).toBe(200);
      expect((await get<{ lines: { line: string }[] }>(`/api/v1/logs?run=${runA.id}`, null)).body.lines.map((l) => l.line)).toEqual(['private line of a']);
      const hidden = await get<{ error: string }>(`/api/v1/runs/${runB.id}`, null);
      expect(hidden.status).toBe(401);
      expect(hidden.body.error).toMatch(/namespace 'b' is not public/);
      expect((await get(`/api/v1/logs?run=${runB.id}`, null)).status).toBe(401);
      expect((await get<{ jobs: Job[] }>('/api/v1/jobs', null)).body.jobs.map((j) => j.runId)).toEqual([runA.id]);
      expect(new Set((await events(null)).events.map((e) => e.runId))).toEqual(new Set([runA.id]));
      const audit = (await get<{ entries: AuditEntry[] }>('/api/v1/audit', null)).body.entries;
      expect(audit.length).toBeGreaterThan(0);
      expect(audit.every((e) => e.namespace === 'a')).toBe(true);
      // a viewer of b reads a too now
      expect((await get(`/api/v1/runs/${runA.id}`, viewerB)).status).toBe(200);
      // reading is all: acting still needs a token of the namespace
      expect((await send('POST', `/api/v1/runs/${runA.id}/retry`, {}, null)).status).toBe(401);
      expect((await send('POST', `/api/v1/runs/${runA.id}/cancel`, {}, viewerB)).status).toBe(403);
      expect((await send('POST', '/api/v1/runs', { workflow: 'wa', namespace: 'a' }, null)).status).toBe(401);
      expect((await h.store.getRun(runA.id))!.state).toBe('failed');
    } finally {
      expect((await send('PUT', '/api/v1/namespaces/a', { public: false }, admin)).status).toBe(200);
    }
    // private again, at once
    expect((await get('/api/v1/runs', null)).status).toBe(401);
  });

  it('namespace settings: set by an admin only, user and group checked as Unix names, roots as absolute folders; shown to the namespace’s readers', async () => {
    const bad = async (body: object, field: string) => {
      const r = await send('PUT', '/api/v1/namespaces/a', body, admin);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(String(r.body.error), JSON.stringify(body)).toContain(field);
    };
    await bad({ user: 'bad name' }, 'body.user');
    await bad({ user: '-rf' }, 'body.user');
    await bad({ group: 'x;y', user: 'tools.a' }, 'body.group');
    await bad({ outputRoots: ['relative/dir'] }, 'body.outputRoots.0');
    await bad({ outputRoots: ['/srv/../etc'] }, 'body.outputRoots.0');
    await bad({ public: 'yes' }, 'body.public');
    await bad({ colour: 'red' }, 'body');
    await bad({ group: 'tools' }, 'body.group'); // a group with no user
    expect((await get('/api/v1/namespaces/a', admin)).body).toEqual({ namespace: 'a', user: null, group: null, public: false, outputRoots: [] });
    const set = await send('PUT', '/api/v1/namespaces/a', { user: 'tools.a', group: 'tools', outputRoots: ['/srv/a', '/srv/shared'] }, admin);
    expect(set.body).toEqual({ namespace: 'a', user: 'tools.a', group: 'tools', public: false, outputRoots: ['/srv/a', '/srv/shared'] });
    await send('PUT', '/api/v1/namespaces/b', { user: 'tools.b' }, admin);
    expect((await get('/api/v1/namespaces/a', maintainerA)).body).toEqual(set.body);
    expect((await get<{ namespaces: { namespace: string }[] }>('/api/v1/namespaces', maintainerA)).body.namespaces.map((n) => n.namespace)).toEqual(['a']);
    expect((await get<{ namespaces: { namespace: string }[] }>('/api/v1/namespaces', admin)).body.namespaces.map((n) => n.namespace)).toEqual(['a', 'b']);
    expect((await send('PUT', '/api/v1/namespaces/b', { user: 'root' }, viewerB)).status).toBe(403);
    expect((await get('/api/v1/namespaces/b', admin)).body).toMatchObject({ user: 'tools.b' });
  });
});
