// Test helpers: an embedded Gantry (store + scheduler + workers + API) on a
// real SQLite file in a temp dir, and waiting for runs to end without polling.
import { processAlive } from '../../src/worker/processTree.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startUp, type Up } from '../../src/up.js';
import { silentLogger } from '../../src/log.js';
import { startRun, type StartRunRequest } from '../../src/server/runs.js';
import type { Job, Run, Store } from '../../src/store/types.js';

export interface Embedded {
  up: Up;
  dir: string;
  /** the admin token the first start made (also in dir/gantry.token) */
  token: string;
  /** writes a workflow file into the temp dir and applies it */
  define(name: string, yaml: string): Promise<string>;
  run(req: StartRunRequest, timeoutMs?: number): Promise<{ run: Run; jobs: Record<string, Job> }>;
  close(): Promise<void>;
}

export async function embedded(o: { slots?: number; workers?: number; leaseMs?: number; killGraceMs?: number } = {}): Promise<Embedded> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-test-'));
  const up = await startUp({
    db: path.join(dir, 'gantry.db'),
    host: '127.0.0.1',
    port: 0,
    workers: o.workers ?? 1,
    slots: o.slots ?? 4,
    leaseMs: o.leaseMs,
    killGraceMs: o.killGraceMs ?? 1000,
    stateDir: dir,
    logger: silentLogger(),
  });
  return {
    up,
    dir,
    token: up.adminToken!,
    async define(name, yaml) {
      const file = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(file, yaml);
      const { loadDefinitionFiles } = await import('../../src/spec/parse.js');
      const { definitions, errors } = loadDefinitionFiles([file]);
      if (errors.length) throw new Error(errors.map((e) => `${e.line}: ${e.message}`).join('\n'));
      await up.store.putDefinitions(definitions);
      return file;
    },
    async run(req, timeoutMs = 30_000) {
      const run = await startRun(up.store, req);
      const done = await waitForRun(up.store, run.id, timeoutMs);
      const jobs = Object.fromEntries((await up.store.listJobs({ runId: run.id })).map((j) => [j.task, j]));
      return { run: done, jobs };
    },
    async close() {
      await up.stop(0);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when the run has ended (woken by store signals, not by polling). */
export function waitForRun(store: Store, runId: number, timeoutMs = 30_000): Promise<Run> {
  return waitFor(store, async () => {
    const r = await store.getRun(runId);
    return r && ['succeeded', 'failed', 'cancelled'].includes(r.state) ? r : null;
  }, timeoutMs, `run ${runId} to end`);
}

/** Re-checks `probe` on every store signal until it returns a value. */
export function waitFor<T>(store: Store, probe: () => Promise<T | null | undefined>, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    let busy = false;
    let again = false;
    const check = async () => {
      if (busy) return void (again = true);
      busy = true;
      try {
        do {
          again = false;
          const v = await probe();
          if (v !== null && v !== undefined) {
            finish();
            return resolve(v);
          }
        } while (again);
      } catch (e) {
        finish();
        reject(e);
      } finally {
        busy = false;
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    // a slow tick as well: some changes (pids, files) raise no store signal
    const tick = setInterval(() => void check(), 100);
    const off = store.subscribe(() => void check());
    const finish = () => {
      clearTimeout(timer);
      clearInterval(tick);
      off();
    };
    void check();
  });
}

/** Whether a process is alive; a zombie counts as dead (see processAlive). */
export const alive = processAlive;
