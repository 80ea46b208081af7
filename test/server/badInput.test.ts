// Bad input to the API gets a 400 naming what is wrong, never a 500 or a hang,
// and changes nothing (both stores): a NUL character in a parameter, a label
// or an exec argument; a parameter too large for a process environment; a
// parameter nested 100,000 deep. The store unreachable answers 503 with
// Retry-After: PostgreSQL behind a proxy that goes away, SQLite locked by
// another writer past its busy timeout.
import { it, expect, beforeEach, afterEach, describe } from 'vitest';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { onEveryStore } from '../helpers/cluster.js';
import { apiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { buildApp } from '../../src/server/app.js';
import { silentLogger } from '../../src/log.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { PG_URL, dropSchema, postgresAvailable, uniqueSchema } from '../helpers/postgres.js';
import { openTestStore } from '../helpers/testStore.js';
import { makeToken } from '../helpers/cluster.js';

const WF = `name: p\nparams:\n  x: { required: true }\ntasks:\n  a: { run: 'echo {{ params.x }}' }\n`;
type Err = { error: string; errors?: string[]; issues?: { path: string; message: string }[] };

onEveryStore('bad input', (storeName) => {
  let h: ApiHarness;
  beforeEach(async () => {
    h = await apiHarness(storeName);
    await h.apply(WF);
  });
  afterEach(async () => {
    await h.close();
  });
  const runs = async () => (await h.store.listRuns({})).length;

  it('a NUL character in a parameter, a label or an exec argument: 400 naming it', async () => {
    const p = await h.call<Err>('POST', '/api/v1/runs', { workflow: 'p', params: { x: 'a\u0000b' } });
    expect(p.status).toBe(400);
    expect(p.body.error).toMatch(/parameter 'x' contains a NUL character/);
    const nested = await h.call<Err>('POST', '/api/v1/runs', { workflow: 'p', params: { x: { list: ['ok', 'b\u0000'] } } });
    expect(nested.status).toBe(400);
    expect(nested.body.error).toMatch(/parameter 'x' contains a NUL/);
    const label = await h.call<Err>('POST', '/api/v1/runs', { workflow: 'p', params: { x: 'ok' }, labels: { wiki: 'de\u0000' } });
    expect(label.status).toBe(400);
    expect(label.body.issues![0]!.path).toBe('body.labels.wiki');
    const argv = await h.call<Err>('POST', '/api/v1/exec', { argv: ['echo', 'a\u0000b'] });
    expect(argv.status).toBe(400);
    expect(argv.body.issues![0]).toMatchObject({ path: 'body.argv.1', message: expect.stringMatching(/NUL character/) });
    expect(await runs()).toBe(0);
  });

  it('a NUL character in a query filter (workflow, label, the feed): 400 naming the field, never a 500', async () => {
    for (const url of ['/api/v1/runs?workflow=a%00b', '/api/v1/runs?label=k%3Dv%00', '/api/v1/errors?workflow=%00', '/api/v1/feed.atom?workflow=%00']) {
      const r = await h.call<Err>('GET', url);
      expect(r.status, url).toBe(400);
      expect(r.body.error, url).toMatch(/query\.(workflow|label): contains a NUL character/);
    }
  });

  it('a parameter too large for the environment: 400 naming it and the limit', async () => {
    const r = await h.call<Err>('POST', '/api/v1/runs', { workflow: 'p', params: { x: 'y'.repeat(200 * 1024) } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/parameter 'x' is \d+ bytes in the environment \(GANTRY_PARAM_X\); the limit is 131071/);
    expect(await runs()).toBe(0);
  });

  it('a parameter nested 100,000 deep: 400, not a stack overflow', async () => {
    const depth = 100_000;
    const body = `{"workflow":"p","params":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const token = await makeToken(h.store, 'admin', [], 'deep');
    const r = await h.app.inject({ method: 'POST', url: '/api/v1/runs', payload: body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatch(/parameter 'x' is nested more than 64 levels deep/);
    expect(await runs()).toBe(0);
  });
});

describe('the store unavailable: 503 with Retry-After', () => {
  it('PostgreSQL gone (its proxy closed)', async () => {
    if (!(await postgresAvailable())) return;
    const target = new URL(PG_URL);
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((c) => {
      const up = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(c).add(up);
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const via = new URL(PG_URL);
    via.hostname = '127.0.0.1';
    via.port = String((proxy.address() as net.AddressInfo).port);
    const schema = uniqueSchema();
    const store = new PostgresStore(via.toString(), { schema, max: 2 });
    await store.migrate();
    const app = await buildApp({ store, logger: silentLogger() });
    const token = await makeToken(store, 'admin', [], 'tests');
    try {
      expect((await app.inject({ method: 'GET', url: '/api/v1/runs', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
      proxy.close();
      for (const s of sockets) s.destroy();
      const r = await app.inject({ method: 'GET', url: '/api/v1/runs', headers: { authorization: `Bearer ${token}` } });
      expect(r.statusCode).toBe(503);
      expect(r.headers['retry-after']).toBe('5');
      expect(r.json().error).toMatch(/the store is unavailable/);
    } finally {
      await app.close();
      await store.close().catch(() => undefined);
      await dropSchema(schema);
    }
  }, 30_000);

  it('SQLite locked by another writer past its busy timeout', async () => {
    const { store, dir, cleanup } = await openTestStore('SQLite');
    const app = await buildApp({ store, logger: silentLogger() });
    const token = await makeToken(store, 'admin', [], 'tests');
    const other = new Database(path.join(dir, 'gantry.db'));
    try {
      other.exec('BEGIN EXCLUSIVE');
      const r = await app.inject({
        method: 'POST',
        url: '/api/v1/definitions',
        headers: { authorization: `Bearer ${token}` },
        payload: { files: [{ path: '/d/wf.yaml', source: `name: w\ntasks:\n  a: { run: 'true' }\n` }] },
      });
      expect(r.statusCode).toBe(503);
      expect(r.headers['retry-after']).toBe('5');
      other.exec('ROLLBACK');
    } finally {
      other.close();
      await app.close();
      await store.close();
      await cleanup();
    }
  }, 30_000);
});
