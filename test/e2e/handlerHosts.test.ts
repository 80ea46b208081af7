// Handlers run in host processes, out of the worker's event loop: a CPU-bound
// handler delays no API answer and dies at its timeout; a paused worker's
// handler stops before its job runs elsewhere; an import error is a failed
// try; hosts are reused per namespace and folder.
import { describe, it, expect, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BIN, cleanup, isAlive, lines, sleep, startRun, startUp, tempDir, trackPid, waitFor, waitForJobState, writeFile } from './helpers.js';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import pg from 'pg';
import { PG_URL, dropSchema, postgresAvailable, uniqueSchema } from '../helpers/postgres.js';

afterEach(cleanup);

const pgAvailable = await postgresAvailable();

const SPIN = `
import fs from 'node:fs';
export async function spin(ctx) {
  fs.appendFileSync('host-pids', process.pid + '\\n');
  while (true) {}
}
export async function pid() {
  fs.appendFileSync('host-pids', process.pid + '\\n');
  return process.pid;
}
`;

const SPIN_WF = `
name: spin
tasks:
  spin:
    timeout: 2s
    handler: ./spin.mjs#spin
`;
const AFTER_WF = `
name: after
tasks:
  pid:
    handler: ./spin.mjs#pid
`;

async function jobOf(url: string, token: string | undefined, id: string): Promise<{ state: string; error: string | null; attemptList: { state: string; error: string | null; startedAt: number; finishedAt: number | null }[] }> {
  const res = await fetch(`${url}/api/v1/jobs/${encodeURIComponent(id)}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return (await res.json()) as never;
}

describe('a CPU-bound handler under gantry up', () => {
  const stores: Array<[string, () => Promise<{ args: string[]; done: () => Promise<void> }>]> = [
    ['SQLite', async () => ({ args: [], done: async () => undefined })],
    // hosts started by Node's spawn rather than the launcher
    ['SQLite, --launcher spawn', async () => ({ args: ['--launcher', 'spawn'], done: async () => undefined })],
  ];
  if (pgAvailable)
    stores.push([
      'PostgreSQL',
      async () => {
        const schema = uniqueSchema();
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`CREATE SCHEMA "${schema}"`);
        await c.end();
        const url = new URL(PG_URL);
        url.searchParams.set('options', `-c search_path=${schema}`);
        return { args: ['--db', url.toString()], done: () => dropSchema(schema) };
      },
    ]);
  for (const [name, open] of stores)
    it(`leaves the API answering, is killed at its timeout, and its host is replaced (${name})`, async () => {
      const dir = tempDir();
      writeFile(dir, 'spin.mjs', SPIN);
      writeFile(dir, 'spin.yaml', SPIN_WF);
      writeFile(dir, 'after.yaml', AFTER_WF);
      const db = await open();
      try {
        const up = await startUp(dir, [...db.args, 'spin.yaml', 'after.yaml']);
        const id = await startRun(up.url, 'spin', [], dir);
        const host = await waitFor('the spinning host', () => Number(lines(path.join(dir, 'host-pids'))[0]) || undefined);
        trackPid(host);
        // while it spins, the API answers at once
        const slowest: number[] = [];
        for (let i = 0; i < 10; i++) {
          const t0 = performance.now();
          const res = await fetch(`${up.url}/api/v1/health`, { signal: AbortSignal.timeout(2_000) });
          expect(res.status).toBe(200);
          await res.text();
          slowest.push(performance.now() - t0);
          await sleep(100);
        }
        expect(Math.max(...slowest)).toBeLessThan(200);
        expect(host).not.toBe(up.pid);
        const detail = await waitFor(
          'the spinning job to end',
          async () => {
            const j = await jobOf(up.url, up.token, `${id}:spin`);
            return j.state !== 'running' && j.state !== 'queued' ? j : undefined;
          },
          { timeoutMs: 10_000 },
        );
        // a failed try at its timeout, not a success once it gave up
        expect(['failed', 'timed_out']).toContain(detail.state);
        expect(detail.attemptList).toHaveLength(1);
        expect(detail.attemptList[0]!.state).toBe('timed_out');
        const a = detail.attemptList[0]!;
        expect(a.error).toMatch(/timed out after 2s/);
        // at its timeout (plus the moment it takes to see the host does not answer), not when it gave up spinning
        expect(a.finishedAt! - a.startedAt).toBeLessThan(3_500);
        await waitFor('the spinning host to be gone', () => !isAlive(host), { timeoutMs: 3_000 });
        // a later handler job runs, in a new host
        const id2 = await startRun(up.url, 'after', [], dir);
        await waitForJobState(up.url, id2, 'pid', 'succeeded', 15_000);
        const pids = lines(path.join(dir, 'host-pids')).map(Number);
        expect(pids).toHaveLength(2);
        expect(pids[1]).not.toBe(host);
        await up.stop();
      } finally {
        await db.done();
      }
    }, 60_000);
});

const APPEND = `
import fs from 'node:fs';
// Appends "attempt time" every 100 ms; the first attempt ignores its signal and runs long.
export async function append(ctx) {
  const end = Date.now() + (ctx.job.attempt === 1 ? 20_000 : 2_000);
  while (Date.now() < end) {
    fs.appendFileSync(ctx.params.file, ctx.job.attempt + ' ' + Date.now() + '\\n');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { attempt: ctx.job.attempt };
}
`;

describe.skipIf(!pgAvailable)('a paused worker on PostgreSQL', () => {
  it("has its handler killed when it loses its lease: no side effect of attempt 1 once attempt 2 started, none after it resumes", async () => {
    const g = await cluster('PostgreSQL', { leaseMs: 2_000 });
    const workers: ReturnType<typeof spawn>[] = [];
    const startWorker = (name: string) => {
      const w = spawn(process.execPath, [BIN, 'worker', '--db', g.db, '--name', name, '--queues', 'hq', '--slots', '1', '--lease', '2000'], { stdio: 'ignore' });
      workers.push(w);
      return w;
    };
    try {
      const file = path.join(g.dir, 'appends');
      g.write('append.mjs', APPEND);
      g.write('append.yaml', `name: append\nparams: { file: { required: true } }\ntasks:\n  a:\n    queue: hq\n    retries: { max: 2, delay: 0s }\n    handler: ./append.mjs#append\n`);
      expect((await g.apply('append.yaml')).status).toBe(200);
      const w1 = startWorker('w1');
      const run = (await g.startRun('append', { file })).body;
      await waitFor('attempt 1 to append', () => lines(file).length >= 3, { timeoutMs: 15_000 });
      const stoppedAt = Date.now();
      w1.kill('SIGSTOP');
      try {
        startWorker('w2');
        await waitFor('attempt 2 to append', () => lines(file).some((l) => l.startsWith('2 ')), { timeoutMs: 20_000 });
        const rows = lines(file).map((l) => l.split(' ').map(Number) as [number, number]);
        const lastOf1 = Math.max(...rows.filter(([n]) => n === 1).map(([, t]) => t));
        const firstOf2 = Math.min(...rows.filter(([n]) => n === 2).map(([, t]) => t));
        expect(lastOf1).toBeLessThan(firstOf2);
        // it stopped within the supervise fraction of the lease (0.8 × 2 s) after its worker was paused, give or take a write
        expect(lastOf1 - stoppedAt).toBeLessThan(1_600 + 400);
      } finally {
        w1.kill('SIGCONT');
      }
      const done = await g.waitRun(run.id, 30_000);
      expect(done.state).toBe('succeeded');
      await sleep(1_000);
      const rows = lines(file).map((l) => l.split(' ').map(Number) as [number, number]);
      const firstOf2 = Math.min(...rows.filter(([n]) => n === 2).map(([, t]) => t));
      expect(rows.filter(([n, t]) => n === 1 && t >= firstOf2)).toEqual([]);
      const job = (await g.jobs(run.id)).a!;
      expect(job.attempts).toBe(2);
      expect(job.result).toEqual({ attempt: 2 });
      const attempts = await g.store.listAttempts(job.id);
      expect(attempts.map((a) => a.state)).toEqual(['lost', 'succeeded']);
    } finally {
      for (const w of workers) {
        w.kill('SIGCONT');
        w.kill('SIGKILL');
      }
      await g.close();
    }
  }, 90_000);
});

onEveryStore('handler hosts', (storeName) => {
  let g: Cluster;
  const withCluster = (fn: () => Promise<void>) => async () => {
    g = await cluster(storeName);
    try {
      await fn();
    } finally {
      await g.close();
    }
  };

  it(
    'fail the attempt with the cause of an import error, counted as a try',
    withCluster(async () => {
      g.write('ok.mjs', 'export async function there() {}\n');
      // there when the workflow is applied (apply checks it), gone when the job runs
      const gone = g.write('nope.mjs', 'export async function run() {}\n');
      g.write(
        'imports.yaml',
        `name: imports\ntasks:\n  missing:\n    retries: { max: 1, delay: 0s }\n    handler: ./nope.mjs#run\n  noexport:\n    retries: { max: 1, delay: 0s }\n    handler: ./ok.mjs#absent\n`,
      );
      expect((await g.apply('imports.yaml')).status).toBe(200);
      fs.rmSync(gone);
      const run = (await g.startRun('imports')).body;
      expect((await g.waitRun(run.id)).state).toBe('failed');
      const jobs = await g.jobs(run.id);
      expect(jobs.missing!.state).toBe('failed');
      expect(jobs.missing!.attempts).toBe(2);
      expect(jobs.missing!.error).toMatch(/nope\.mjs/);
      expect(jobs.missing!.error).toMatch(/Cannot find module/);
      expect(jobs.noexport!.attempts).toBe(2);
      expect(jobs.noexport!.error).toMatch(/has no exported function 'absent'.*there/);
      const attempts = await g.store.listAttempts(jobs.missing!.id);
      expect(attempts.map((a) => a.state)).toEqual(['failed', 'failed']);
    }),
    60_000,
  );

  it(
    'are reused by the jobs of one namespace and folder, and not shared with another namespace',
    withCluster(async () => {
      g.write('pid.mjs', 'export async function pid() { return process.pid; }\n');
      g.write('a.yaml', `name: chain\ntasks:\n  one:\n    handler: ./pid.mjs#pid\n  two:\n    needs: [one]\n    handler: ./pid.mjs#pid\n`);
      g.write('b.yaml', `name: chain\nnamespace: other\ntasks:\n  one:\n    handler: ./pid.mjs#pid\n`);
      expect((await g.apply('a.yaml', 'b.yaml')).status).toBe(200);
      const a = (await g.startRun('chain')).body;
      expect(a.error).toBeUndefined();
      expect((await g.waitRun(a.id)).state).toBe('succeeded');
      const aj = await g.jobs(a.id);
      const pid = aj.one!.result as number;
      expect(pid).not.toBe(process.pid); // not in the worker
      expect(aj.two!.result).toBe(pid);
      const b = (await g.inject<{ id: number; error?: string }>('POST', '/api/v1/runs', { workflow: 'chain', namespace: 'other' })).body;
      expect(b.error).toBeUndefined();
      expect((await g.waitRun(b.id)).state).toBe('succeeded');
      const other = (await g.jobs(b.id)).one!.result as number;
      expect(typeof other).toBe('number');
      expect(other).not.toBe(pid);
      // and the first namespace's host is still the one it had
      const a2 = (await g.startRun('chain')).body;
      expect((await g.waitRun(a2.id)).state).toBe('succeeded');
      expect((await g.jobs(a2.id)).one!.result).toBe(pid);
    }),
    60_000,
  );
});

