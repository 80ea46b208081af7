// A Gantry of one process on either store, driven through its HTTP API (by
// inject, no socket): the API, the scheduler and real workers running real
// processes. For tests that must hold on SQLite and on PostgreSQL alike.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { schedulerFor, workerFor } from '../../src/up.js';
import { silentLogger } from '../../src/log.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import type { Worker } from '../../src/worker/worker.js';
import type { Job, Run, Store } from '../../src/store/types.js';
import type { NotifyOptions } from '../../src/notify/duty.js';
import { PG_URL, dropSchema, postgresAvailable, uniqueSchema } from './postgres.js';
import { newToken } from '../../src/auth/tokens.js';
import { SecretKey } from '../../src/secrets/seal.js';
import type { Role } from '../../src/store/types.js';
import { waitForRun } from './embedded.js';
import { MODULE_FILE, loadWorkflowModule } from '../../src/spec/typescript.js';

export type StoreName = 'SQLite' | 'PostgreSQL';

/** A token made straight in the store (as `gantry token create --db` does); returns its text. */
export async function makeToken(store: Store, role: Role = 'admin', namespaces: string[] = [], name?: string): Promise<string> {
  const t = newToken({ role, namespaces, name });
  await store.createToken(t.record);
  return t.token;
}

export interface Cluster {
  store: Store;
  /** the store as `--db` names it, for gantry processes started by a test (a file path, or a postgres:// URL into the test's schema) */
  db: string;
  app: FastifyInstance;
  /** an admin token of the store: every request of this helper presents it */
  token: string;
  /** a request through the API (no socket), with the admin token unless `token` says otherwise (null: none) */
  inject<T = any>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, token?: string | null): Promise<{ status: number; body: T }>;
  /** a temp folder for the test's workflow files and outputs */
  dir: string;
  /** writes a file (relative to `dir`), returns its absolute path */
  write(rel: string, content: string): string;
  /** POST /api/v1/definitions with these files (paths relative to `dir`; TypeScript workflow files as their documents) */
  apply(...rels: string[]): Promise<{ status: number; body: { errors?: { message: string }[]; applied?: unknown[] } }>;
  /** POST /api/v1/runs */
  startRun(workflow: string, params?: Record<string, unknown>): Promise<{ status: number; body: Run & { error?: string; errors?: string[] } }>;
  /** POST /api/v1/runs/:id/retry */
  retry(runId: number, body: { failed?: boolean; force?: boolean }): Promise<{ status: number; body: { run: Run; reset: number } }>;
  waitRun(runId: number, timeoutMs?: number): Promise<Run>;
  /** the run's jobs by task id */
  jobs(runId: number): Promise<Record<string, Job>>;
  /** every row of a table of the store, read straight from the database (not through the Store) */
  rows: RawRows;
  /** a job's stdout lines */
  stdout(jobId: string): Promise<string[]>;
  close(): Promise<void>;
}

type RawRows = (table: string) => Promise<Record<string, unknown>[]>;

async function openStore(name: StoreName): Promise<{ store: Store; db: string; cleanup: () => Promise<void>; rows: RawRows }> {
  if (name === 'SQLite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-cluster-db-'));
    const file = path.join(dir, 'gantry.db');
    const store = new SqliteStore(file);
    await store.migrate();
    const rows: RawRows = async (table) => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare(`SELECT * FROM "${table.replace(/"/g, '')}"`).all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    };
    return { store, db: file, rows, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
  }
  const schema = uniqueSchema();
  const store = new PostgresStore(PG_URL, { schema, max: 8 });
  await store.migrate();
  const rows: RawRows = async (table) => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      return (await c.query(`SELECT * FROM "${schema}"."${table.replace(/"/g, '')}"`)).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  };
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return { store, db: url.toString(), rows, cleanup: () => dropSchema(schema) };
}

export async function cluster(
  name: StoreName,
  o: { slots?: number; leaseMs?: number; notify?: NotifyOptions; publicUrl?: string; worker?: Pick<Parameters<typeof workerFor>[1], 'launcher' | 'passEnv' | 'runAsDefault'> } = {},
): Promise<Cluster> {
  const { store, db, cleanup, rows } = await openStore(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-cluster-'));
  const logger = silentLogger();
  const leaseMs = o.leaseMs ?? 10_000;
  const { key: secretKey } = SecretKey.generate('test key');
  let scheduler: Scheduler | null = null;
  let worker: Worker | null = null;
  let app: FastifyInstance | null = null;
  try {
    scheduler = schedulerFor(store, leaseMs, logger, o.notify);
    scheduler.start();
    app = await buildApp({ store, logger, secretKey, publicUrl: o.publicUrl });
    worker = workerFor(store, { name: `w-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, queues: ['default'], slots: o.slots ?? 4, leaseMs, killGraceMs: 500, secretKey, logger, ...o.worker });
    await worker.start();
  } catch (e) {
    await worker?.stop({ graceful: false });
    await scheduler?.stop();
    await app?.close();
    await store.close();
    await cleanup();
    throw e;
  }
  const api = app;
  const token = await makeToken(store, 'admin', [], 'tests');
  const inject = async <T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, as: string | null = token): Promise<{ status: number; body: T }> => {
    const r = await api.inject({
      method,
      url,
      ...(as ? { headers: { authorization: `Bearer ${as}` } } : {}),
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    return { status: r.statusCode, body: r.json() as T };
  };
  return {
    store,
    db,
    app: api,
    token,
    inject,
    rows,
    dir,
    write(rel, content) {
      const file = path.join(dir, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
      return file;
    },
    // a TypeScript workflow file goes as the CLI sends it: each workflow it exports as a document
    apply: async (...rels) =>
      inject('POST', '/api/v1/definitions', {
        files: (await Promise.all(rels.map(async (rel) => {
          const file = path.join(dir, rel);
          if (!MODULE_FILE.test(file)) return [{ path: file, source: fs.readFileSync(file, 'utf8') }];
          const mod = await loadWorkflowModule(file);
          if (mod.error) throw new Error(`${rel}: ${mod.error}`);
          return mod.workflows.map((w) => ({ path: file, document: w.document }));
        }))).flat(),
      }),
    startRun: (workflow, params) => inject('POST', '/api/v1/runs', { workflow, ...(params ? { params } : {}) }),
    retry: (runId, body) => inject('POST', `/api/v1/runs/${runId}/retry`, body),
    waitRun: (runId, timeoutMs = 60_000) => waitForRun(store, runId, timeoutMs),
    jobs: async (runId) => Object.fromEntries((await store.listJobs({ runId })).map((j) => [j.task, j])),
    stdout: async (jobId) => (await store.readLogs({ jobId })).filter((l) => l.stream === 'stdout').map((l) => l.line),
    async close() {
      await worker!.stop({ graceful: false });
      await scheduler!.stop();
      await api.close();
      await store.close();
      await cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const pgAvailable = await postgresAvailable();

/**
 * Declares `body` once per store. PostgreSQL is skipped (with a visible notice)
 * only when unreachable, and fails instead under GANTRY_REQUIRE_POSTGRES=1.
 */
export function onEveryStore(title: string, body: (store: StoreName) => void): void {
  for (const name of ['SQLite', 'PostgreSQL'] as const) {
    if (name === 'PostgreSQL' && !pgAvailable) describe.skip(`${title} (PostgreSQL unreachable)`, () => it('skipped', () => undefined));
    else describe(`${title}: ${name}`, () => body(name));
  }
}
