// W1-PG: 10,000 no-op jobs drained by 4 worker processes on PostgreSQL, for
// Gantry and, side by side in the same run on the same server, for
// graphile-worker and pg-boss (bench-only dev dependencies, bench/package.json).
// See bench/README.md for how each system is driven. Used by bench/run.js.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openStore } from '../dist/store/open.js';
import { startRun } from '../dist/server/runs.js';
import { loadDefinitionFiles } from '../dist/spec/parse.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

export const W1_JOBS = 10_000;
export const W1_WORKERS = 4;
/** jobs in flight per worker process, the same for the three systems */
export const W1_CONCURRENCY = 10;
/** how often the bench's observer asks the database whether the jobs are done */
export const W1_POLL_MS = 50;
/** pause between "every worker is ready" and the insertion (LISTEN connections settle) */
const SETTLE_MS = 300;
const DRAIN_TIMEOUT_MS = 180_000;
const PG_URL = process.env.GANTRY_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const NOOP_HANDLER = `${path.join(here, 'noop.mjs')}#noop`;
const PEERS = ['graphile-worker', 'pg-boss'];
const TERMINAL_RUN = new Set(['succeeded', 'failed', 'cancelled']);
/** extra node flags for the worker processes, e.g. GANTRY_BENCH_W1_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" */
const NODE_ARGS = (process.env.GANTRY_BENCH_W1_NODE_ARGS ?? '').split(' ').filter(Boolean);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fail = (m) => {
  throw new Error(`benchmark sanity check failed: W1-PG ${m}`);
};

// ------------------------------------------------------------ peer packages

function peersInstalled() {
  return PEERS.every((p) => fs.existsSync(path.join(here, 'node_modules', p, 'package.json')));
}

/**
 * The peers are dev dependencies of the bench only (bench/package.json and its
 * lock): installed with `npm ci --prefix bench` the first time. Returns null
 * when they are usable, else why not.
 */
export function ensurePeers(log) {
  if (peersInstalled()) return null;
  log('W1-PG: installing the peers (graphile-worker, pg-boss) into bench/node_modules: npm ci --prefix bench');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--prefix', here, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: ['ignore', 2, 2], timeout: 300_000 });
  if (r.status === 0 && peersInstalled()) return null;
  return `\`npm ci --prefix bench\` failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`;
}

function peerVersion(p) {
  try {
    return JSON.parse(fs.readFileSync(path.join(here, 'node_modules', p, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- database

function dbUrl(db) {
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

async function connect(url) {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

// ------------------------------------------------------------- cpu by pid

let clockTicks = null;
function ticksPerSecond() {
  if (clockTicks === null) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(r.stdout?.trim()) || 100;
  }
  return clockTicks;
}

/** user + system CPU of a process so far, from /proc (null where there is no /proc or the process is gone) */
function procCpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** CPU used since `before` (a Map pid → ms) by `pids`; a pid not in `before` counts from 0 */
function cpuSince(before, pids) {
  let total = 0;
  for (const pid of pids) {
    const now = procCpuMs(pid);
    if (now !== null) total += now - (before.get(pid) ?? 0);
  }
  return total;
}
const cpuSnapshot = (pids) => new Map(pids.map((p) => [p, procCpuMs(p) ?? 0]));

/** server processes of the database's sessions, except the observer's own */
async function backendPids(observer, db) {
  const r = await observer.query('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);
  return r.rows.map((x) => x.pid);
}

// ---------------------------------------------------------- worker processes

function startProcess(argv, { ipc, ready }) {
  const child = spawn(process.execPath, [...NODE_ARGS, ...argv], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
    env: { ...process.env, GANTRY_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const isReady = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`worker ${argv.join(' ')} not ready after 30 s: ${stderr}`)), 30_000);
    exited.then(({ code, signal }) => reject(new Error(`worker ${argv.slice(0, 3).join(' ')} exited ${code ?? signal} before it was ready: ${stderr}`)));
    ready(child, () => {
      clearTimeout(t);
      resolve();
    });
  });
  isReady.catch(() => undefined);
  return { child, pid: child.pid, exited, isReady, stderr: () => stderr };
}

/** `gantry worker` processes, the real CLI on the compiled dist/ */
function gantryWorkers(url) {
  return Array.from({ length: W1_WORKERS }, (_, k) =>
    startProcess([path.join(root, 'bin', 'gantry.js'), 'worker', '--db', url, '--slots', String(W1_CONCURRENCY), '--name', `w${k + 1}`], {
      ipc: false,
      ready: (child, done) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes(' running')) done();
        });
      },
    }),
  );
}

/** bench/w1pg-worker.js processes: graphile-worker or pg-boss with a no-op task */
function peerWorkers(system, url) {
  return Array.from({ length: W1_WORKERS }, () => {
    const w = startProcess([path.join(here, 'w1pg-worker.js'), system, url, String(W1_CONCURRENCY)], {
      ipc: true,
      ready: (child, done) => child.on('message', (m) => m?.type === 'ready' && done()),
    });
    w.child.stdout.resume();
    w.result = new Promise((resolve) => w.child.on('message', (m) => m?.type === 'stopped' && resolve(m)));
    return w;
  });
}

async function stopGantryWorkers(ws) {
  for (const w of ws) w.child.kill('SIGTERM');
  const ends = await Promise.all(ws.map((w) => Promise.race([w.exited, sleep(15_000).then(() => null)])));
  ends.forEach((e, i) => {
    if (e === null) ws[i].child.kill('SIGKILL');
  });
}

async function stopPeerWorkers(ws) {
  for (const w of ws) if (w.child.connected) w.child.send({ type: 'stop' });
  const results = await Promise.all(ws.map((w) => Promise.race([w.result, sleep(15_000).then(() => null)])));
  await Promise.all(ws.map((w) => Promise.race([w.exited, sleep(5_000)])));
  for (const w of ws) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  return results;
}

// ------------------------------------------------------------------ systems

function writeWorkflow(dir) {
  const lines = ['name: bench-w1pg', 'tasks:'];
  for (let i = 0; i < W1_JOBS; i++) lines.push(`  j${i}:`, `    handler: ${JSON.stringify(NOOP_HANDLER)}`);
  const file = path.join(dir, 'bench-w1pg.yaml');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Every system: prepare the fresh database, start workers, insert, time the drain, verify. */
const SYSTEMS = {
  gantry: {
    prefix: 'gantry',
    async setup(url) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-w1pg-'));
      try {
        const file = writeWorkflow(dir);
        let t = performance.now();
        const { definitions, errors } = loadDefinitionFiles([file]);
        const validateMs = performance.now() - t;
        if (errors.length) fail(`workflow invalid: ${errors[0].message}`);
        const store = await openStore(url); // migrates
        t = performance.now();
        await store.putDefinitions(definitions);
        return { store, extra: { validateMs, putDefinitionsMs: performance.now() - t } };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    workers: gantryWorkers,
    async insert(ctx) {
      ctx.run = await startRun(ctx.store, { workflow: 'bench-w1pg' });
    },
    async done(ctx, observer) {
      const r = await observer.query('SELECT state FROM runs WHERE id = $1', [ctx.run.id]);
      return TERMINAL_RUN.has(r.rows[0]?.state);
    },
    async verify(ctx, observer) {
      const run = await ctx.store.getRun(ctx.run.id);
      if (run.state !== 'succeeded' || run.counts.succeeded !== W1_JOBS) fail(`gantry: run ${run.id} ended ${run.state} (${JSON.stringify(run.counts)})`);
      const once = await observer.query(`SELECT count(*)::int AS n FROM jobs WHERE run_id = $1 AND state = 'succeeded' AND attempts = 1`, [run.id]);
      if (once.rows[0].n !== W1_JOBS) fail(`gantry: ${W1_JOBS - once.rows[0].n} jobs took more than one attempt`);
      const by = await observer.query(`SELECT worker, count(*)::int AS n FROM jobs WHERE run_id = $1 GROUP BY worker ORDER BY worker`, [run.id]);
      return by.rows.map((r) => r.n);
    },
    async close(ctx) {
      await ctx.store.close();
    },
    stopWorkers: stopGantryWorkers,
  },

  graphile: {
    prefix: 'graphile',
    async setup(url) {
      const { makeWorkerUtils } = await import('graphile-worker');
      const utils = await makeWorkerUtils({ connectionString: url });
      await utils.migrate();
      return { utils, extra: {} };
    },
    workers: (url) => peerWorkers('graphile', url),
    async insert(ctx) {
      // one statement: graphile_worker.add_jobs() with 10,000 specs
      await ctx.utils.addJobs(Array.from({ length: W1_JOBS }, () => ({ identifier: 'noop', payload: {} })));
    },
    async done(ctx, observer) {
      // a finished job is deleted; a failed one would stay (with a later run_at)
      const r = await observer.query('SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS busy');
      return !r.rows[0].busy;
    },
    async verify(ctx, observer, results) {
      const handled = results.map((r) => r?.handled ?? NaN);
      const sum = handled.reduce((a, b) => a + b, 0);
      if (sum !== W1_JOBS) fail(`graphile-worker: the workers ran ${sum} jobs, expected ${W1_JOBS}`);
      return handled;
    },
    async close(ctx) {
      await ctx.utils.release();
    },
    stopWorkers: stopPeerWorkers,
  },

  pgboss: {
    prefix: 'pgboss',
    async setup(url) {
      const { default: PgBoss } = await import('pg-boss');
      const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
      boss.on('error', () => undefined);
      await boss.start(); // migrates
      await boss.createQueue('noop');
      return { boss, extra: {} };
    },
    workers: (url) => peerWorkers('pgboss', url),
    async insert(ctx) {
      // one statement: INSERT … SELECT FROM json_to_recordset($1)
      await ctx.boss.insert(Array.from({ length: W1_JOBS }, () => ({ name: 'noop', data: {} })));
    },
    afterInsert(workers) {
      for (const w of workers) if (w.child.connected) w.child.send({ type: 'wake' });
    },
    async done(ctx, observer) {
      const r = await observer.query(`SELECT EXISTS (SELECT 1 FROM pgboss.job WHERE name = 'noop' AND state < 'completed') AS busy`);
      return !r.rows[0].busy;
    },
    async verify(ctx, observer, results) {
      const r = await observer.query(
        `SELECT count(*) FILTER (WHERE state = 'completed' AND retry_count = 0)::int AS ok, count(*)::int AS n FROM pgboss.job WHERE name = 'noop'`,
      );
      if (r.rows[0].ok !== W1_JOBS || r.rows[0].n !== W1_JOBS) fail(`pg-boss: ${r.rows[0].ok} of ${r.rows[0].n} jobs completed at their first try, expected ${W1_JOBS}`);
      const handled = results.map((x) => x?.handled ?? NaN);
      const sum = handled.reduce((a, b) => a + b, 0);
      if (sum !== W1_JOBS) fail(`pg-boss: the workers ran ${sum} jobs, expected ${W1_JOBS}`);
      return handled;
    },
    async close(ctx) {
      await ctx.boss.stop({ graceful: false, wait: true });
    },
    stopWorkers: stopPeerWorkers,
  },
};

async function runSystem(name, admin, rep) {
  const sys = SYSTEMS[name];
  const db = `${sys.prefix}_bench_${process.pid}_${rep}`;
  await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${db}`);
  const url = dbUrl(db);
  let observer = null;
  try {
    let t = performance.now();
    const ctx = await sys.setup(url);
    const setupMs = performance.now() - t;
    try {
      t = performance.now();
      const workers = sys.workers(url);
      let results = [];
      try {
        await Promise.all(workers.map((w) => w.isReady));
        const workersReadyMs = performance.now() - t;
        await sleep(SETTLE_MS);
        observer = await connect(url);
        const workerPids = workers.map((w) => w.pid);
        const t0 = performance.now();
        await sys.insert(ctx);
        const t1 = performance.now();
        sys.afterInsert?.(workers);
        // CPU of the drain: the worker processes and the server processes of the database's sessions.
        const serverPids0 = await backendPids(observer, db);
        const workerCpu0 = cpuSnapshot(workerPids);
        const serverCpu0 = cpuSnapshot(serverPids0);
        const observerCpu0 = process.cpuUsage();
        let polls = 0;
        for (;;) {
          polls++;
          if (await sys.done(ctx, observer)) break;
          if (performance.now() - t1 > DRAIN_TIMEOUT_MS) fail(`${name}: not drained after ${DRAIN_TIMEOUT_MS / 1000} s`);
          await sleep(W1_POLL_MS);
        }
        const t2 = performance.now();
        const serverPids = [...new Set([...serverPids0, ...(await backendPids(observer, db))])];
        const workerCpuMs = cpuSince(workerCpu0, workerPids);
        const serverCpuMs = cpuSince(serverCpu0, serverPids);
        const oc = process.cpuUsage(observerCpu0);
        const drainMs = t2 - t1;
        const perWorker = await (async () => {
          results = await sys.stopWorkers(workers);
          return sys.verify(ctx, observer, results);
        })();
        const failedExit = workers.find((w) => w.child.exitCode !== 0 && w.child.exitCode !== null);
        if (failedExit) fail(`${name}: a worker exited ${failedExit.child.exitCode}: ${failedExit.stderr()}`);
        return {
          setupMs,
          workersReadyMs,
          insertMs: t1 - t0,
          drainMs,
          jobsPerSec: (W1_JOBS * 1000) / drainMs,
          totalJobsPerSec: (W1_JOBS * 1000) / (t2 - t0),
          workerCpuMs,
          serverCpuMs,
          benchProcessCpuMs: (oc.user + oc.system) / 1000,
          polls,
          perWorker,
          ...ctx.extra,
        };
      } finally {
        if (workers.some((w) => w.child.exitCode === null && w.child.signalCode === null)) await sys.stopWorkers(workers).catch(() => undefined);
      }
    } finally {
      await sys.close(ctx).catch(() => undefined);
    }
  } finally {
    await observer?.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  }
}

/**
 * Runs W1-PG `reps` times (the systems' order rotates per repetition).
 * Returns { skipped } when there is no PostgreSQL to run on.
 */
export async function w1pg({ reps, log }) {
  const base = { jobs: W1_JOBS, workers: W1_WORKERS, concurrency: W1_CONCURRENCY, pollMs: W1_POLL_MS, server: new URL(PG_URL).host };
  let admin;
  try {
    admin = await connect(PG_URL);
  } catch (e) {
    const why = `no PostgreSQL at ${new URL(PG_URL).host} (${e.message}); set GANTRY_BENCH_PG=postgres://… to run W1-PG`;
    log(`\n!!! W1-PG SKIPPED: ${why}\n`);
    return { ...base, skipped: why };
  }
  try {
    const postgres = (await admin.query('SHOW server_version')).rows[0].server_version;
    const peersMissing = ensurePeers(log);
    if (peersMissing) log(`\n!!! W1-PG: graphile-worker and pg-boss SKIPPED: ${peersMissing}; Gantry runs alone\n`);
    // GANTRY_BENCH_W1_SYSTEMS=gantry (comma-separated) runs a subset, for investigations.
    const only = process.env.GANTRY_BENCH_W1_SYSTEMS?.split(',').map((s) => s.trim()).filter(Boolean);
    const systems = (peersMissing ? ['gantry'] : ['gantry', 'graphile', 'pgboss']).filter((s) => !only || only.includes(s));
    if (systems.length === 0) throw new Error(`GANTRY_BENCH_W1_SYSTEMS=${process.env.GANTRY_BENCH_W1_SYSTEMS} names none of gantry, graphile, pgboss`);
    const versions = { postgres, graphileWorker: peerVersion('graphile-worker'), pgBoss: peerVersion('pg-boss') };
    const repsOut = [];
    for (let r = 0; r < reps; r++) {
      const order = systems.map((_, i) => systems[(i + r) % systems.length]);
      const rep = {};
      for (const s of order) {
        rep[s] = await runSystem(s, admin, r);
        const x = rep[s];
        log(
          `  w1-pg rep ${r + 1} ${s}: ${Math.round(x.jobsPerSec)} jobs/s (drain ${(x.drainMs / 1000).toFixed(2)} s, insert ${Math.round(x.insertMs)} ms;` +
            ` CPU: workers ${(x.workerCpuMs / 1000).toFixed(1)} s, postgres ${(x.serverCpuMs / 1000).toFixed(1)} s; per worker ${x.perWorker.join('/')})`,
        );
      }
      repsOut.push(rep);
    }
    const summary = {};
    for (const s of systems) {
      const pick = (k) => median(repsOut.map((rep) => rep[s][k]));
      summary[s] = {
        jobsPerSec: pick('jobsPerSec'),
        drainMs: pick('drainMs'),
        insertMs: pick('insertMs'),
        totalJobsPerSec: pick('totalJobsPerSec'),
        workerCpuMsPerJob: pick('workerCpuMs') / W1_JOBS,
        serverCpuMsPerJob: pick('serverCpuMs') / W1_JOBS,
        ...(s === 'gantry' ? { validateMs: pick('validateMs'), putDefinitionsMs: pick('putDefinitionsMs') } : {}),
      };
    }
    const peers = systems.filter((s) => s !== 'gantry');
    const bestPeer = peers.length ? peers.reduce((a, b) => (summary[a].jobsPerSec >= summary[b].jobsPerSec ? a : b)) : null;
    const ratio = bestPeer && summary.gantry ? summary.gantry.jobsPerSec / summary[bestPeer].jobsPerSec : null;
    return {
      ...base,
      versions,
      peersSkipped: peersMissing,
      reps: repsOut,
      ...summary,
      bestPeer,
      ratio,
    };
  } finally {
    await admin.end().catch(() => undefined);
  }
}
