// The API server on either store with a controlled clock and no workers: tests
// drive state through the store (claims, completions) at known times, so every
// answer the API gives is known. `call` is the one place requests are made
// (inject, no socket); `listen()` opens a real port for streams (SSE).
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { buildApp, type AppOptions } from '../../src/server/app.js';
import { silentLogger } from '../../src/log.js';
import type { Clock, Run, Store } from '../../src/store/types.js';
import { makeToken, type StoreName } from './cluster.js';
import { openTestStore } from './testStore.js';

export class TestClock implements Clock {
  constructor(public t = Date.now()) {}
  now() {
    return this.t;
  }
}

export interface ApiHarness {
  store: Store;
  app: FastifyInstance;
  clock: TestClock;
  /** the admin token every call presents */
  token: string;
  call<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown): Promise<{ status: number; body: T }>;
  apply(source: string, file?: string): Promise<void>;
  startRun(workflow: string, o?: { namespace?: string; labels?: Record<string, string>; params?: Record<string, unknown> }): Promise<Run>;
  /** listens on 127.0.0.1 (any free port); returns the base URL */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export async function apiHarness(name: StoreName, o: { clock?: TestClock; workerTimeoutMs?: number; eventStream?: AppOptions['eventStream'] } = {}): Promise<ApiHarness> {
  const clock = o.clock ?? new TestClock();
  const { store, cleanup } = await openTestStore(name, { clock, prefix: 'gantry-api-' });
  const app = await buildApp({ store, logger: silentLogger(), clock, workerTimeoutMs: o.workerTimeoutMs, eventStream: o.eventStream });
  // every call presents an admin token (mutations need one)
  const token = await makeToken(store, 'admin', [], 'tests');
  const call: ApiHarness['call'] = async <T>(method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
    const r = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
    return { status: r.statusCode, body: (String(r.headers['content-type'] ?? '').startsWith('application/json') ? r.json() : r.body) as T };
  };
  return {
    store,
    app,
    clock,
    token,
    call,
    async apply(source, file = '/defs/wf.yaml') {
      const r = await call('POST', '/api/v1/definitions', { files: [{ path: file, source }] });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    },
    async startRun(workflow, x = {}) {
      const r = await call<Run>('POST', '/api/v1/runs', { workflow, ...x });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body;
    },
    async listen() {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const addr = app.server.address();
      if (!addr || typeof addr === 'string') throw new Error('no address');
      return `http://127.0.0.1:${addr.port}`;
    },
    async close() {
      await app.close();
      await store.close();
      await cleanup();
    },
  };
}
