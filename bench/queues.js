// W1–W4 on the systems that run as separate worker processes: Gantry on
// PostgreSQL (the real `gantry worker` CLI), graphile-worker and pg-boss (on the
// same PostgreSQL server) and BullMQ (Redis) — side by side in the same run,
// each on a fresh database (a fresh Redis DB index, flushed) for every
// repetition of every workload. See bench/README.md for how each system is
// driven. Used by bench/run.js; the peers are dev dependencies of the bench only
// (bench/package.json), their worker processes bench/queue-worker.js.
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
import { now } from './marks.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

/** Every workload: worker processes × jobs in flight per process (the same for every system), jobs. */
export const WORKLOADS = {
  w1: { title: '10,000 no-op jobs', workers: 4, concurrency: 10, jobs: 10_000 },
  w2: { title: 'a chain of 200 no-op jobs', workers: 4, concurrency: 10, jobs: 200 },
  w3: { title: '1,000 parallel no-ops, then one join', workers: 4, concurrency: 10, jobs: 1_001, parts: 1_000 },
  w4: { title: '1,000 × `sh -c true`', workers: 1, concurrency: 4, jobs: 1_000 },
};
export const CHAIN = WORKLOADS.w2.jobs;
/** how often the bench's observer asks the store whether the jobs are done */
export const POLL_MS = 10;
/** pause between "every worker is ready" and the insertion (LISTEN connections settle) */
const SETTLE_MS = 300;
const DRAIN_TIMEOUT_MS = 180_000;
const PG_URL = process.env.GANTRY_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
/** a DB index of its own: it is flushed (FLUSHDB) before every BullMQ repetition */
const REDIS_URL = process.env.GANTRY_BENCH_REDIS ?? 'redis://127.0.0.1:6379/15';
// A handler must live in its workflow's folder: the modules are copied beside each workflow file.
const HANDLER_MODULES = ['noop.mjs', 'marks.mjs'];
const NOOP_HANDLER = './noop.mjs#noop';
const LINK_HANDLER = './marks.mjs#link';
const PEER_PACKAGES = ['graphile-worker', 'pg-boss', 'bullmq', 'ioredis'];
const TERMINAL_RUN = new Set(['succeeded', 'failed', 'cancelled']);
/** extra node flags for the worker processes, e.g. GANTRY_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" */
const NODE_ARGS = (process.env.GANTRY_BENCH_NODE_ARGS ?? process.env.GANTRY_BENCH_W1_NODE_ARGS ?? '').split(' ').filter(Boolean);
export const SYSTEMS_ALL = ['gantry', 'graphile', 'pgboss', 'bullmq'];
/** how Gantry's workers start commands: helper (the default) or spawn (the old way), GANTRY_BENCH_LAUNCHER */
const LAUNCHER = process.env.GANTRY_BENCH_LAUNCHER ?? 'helper';
export const SYSTEM_NAMES = { gantry: 'Gantry (PostgreSQL)', graphile: 'graphile-worker', pgboss: 'pg-boss', bullmq: 'BullMQ' };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Nearest-rank percentile. */
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const fail = (m) => {
  throw new Error(`benchmark sanity check failed: ${m}`);
};

// ------------------------------------------------------------ peer packages

function peersInstalled() {
  return PEER_PACKAGES.every((p) => fs.existsSync(path.join(here, 'node_modules', p, 'package.json')));
}

/**
 * The peers are dev dependencies of the bench only (bench/package.json and its
 * lock): installed with `npm ci --prefix bench` the first time. Returns null
 * when they are usable, else why not.
 */
export function ensurePeers(log) {
  if (peersInstalled()) return null;
  log(`installing the peers (${PEER_PACKAGES.join(', ')}) into bench/node_modules: npm ci --prefix bench`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--prefix', here, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: ['ignore', 2, 2], timeout: 300_000 });
  if (r.status === 0 && peersInstalled()) return null;
  return `\`npm ci --prefix bench\` failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`;
}

export function peerVersion(p) {
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

function redisOptions() {
  const u = new URL(REDIS_URL);
  return { host: u.hostname, port: Number(u.port || 6379), db: Number(u.pathname.slice(1) || 0) };
}

async function redisClient() {
  const { default: Redis } = await import('ioredis');
  const r = new Redis({ ...redisOptions(), lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on('error', () => undefined);
  await r.connect();
  return r;
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
    const n = procCpuMs(pid);
    if (n !== null) total += n - (before.get(pid) ?? 0);
  }
  return total;
}
const cpuSnapshot = (pids) => new Map(pids.map((p) => [p, procCpuMs(p) ?? 0]));

// ---------------------------------------------------------- worker processes

function startProcess(argv, { ipc, ready, env }) {
  const child = spawn(process.execPath, [...NODE_ARGS, ...argv], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
    env: { ...process.env, GANTRY_LOG_LEVEL: 'warn', ...env },
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
function gantryWorkers(url, wl, env) {
  return Array.from({ length: wl.workers }, (_, k) =>
    startProcess([path.join(root, 'bin', 'gantry.js'), 'worker', '--db', url, '--slots', String(wl.concurrency), '--name', `w${k + 1}`, '--launcher', LAUNCHER, '--pass-env', 'GANTRY_BENCH_MARKS_DIR'], {
      ipc: false,
      env,
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

/** bench/queue-worker.js processes: a peer's own worker loop */
function peerWorkers(system, workload, url, wl) {
  return Array.from({ length: wl.workers }, () => {
    const w = startProcess([path.join(here, 'queue-worker.js'), system, workload, url, String(wl.concurrency), String(CHAIN)], {
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
  return ws.map(() => null);
}

async function stopPeerWorkers(ws) {
  for (const w of ws) if (w.child.connected) w.child.send({ type: 'stop' });
  const results = await Promise.all(ws.map((w) => Promise.race([w.result, sleep(15_000).then(() => null)])));
  await Promise.all(ws.map((w) => Promise.race([w.exited, sleep(5_000)])));
  for (const w of ws) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  return results;
}

// --------------------------------------------------------------- workflows

/** Gantry's workflow of each workload, as YAML */
function gantryWorkflow(workload) {
  const lines = [`name: bench-${workload}`, 'tasks:'];
  const task = (id, body, needs) => {
    lines.push(`  ${id}:`);
    if (needs) lines.push(`    needs: [${needs.join(', ')}]`);
    lines.push(`    ${body}`);
  };
  if (workload === 'w1') for (let i = 0; i < WORKLOADS.w1.jobs; i++) task(`j${i}`, `handler: ${JSON.stringify(NOOP_HANDLER)}`);
  if (workload === 'w2') for (let i = 0; i < CHAIN; i++) task(`t${i}`, `handler: ${JSON.stringify(LINK_HANDLER)}`, i ? [`t${i - 1}`] : null);
  if (workload === 'w3') {
    const parts = Array.from({ length: WORKLOADS.w3.parts }, (_, i) => `p${i}`);
    for (const p of parts) task(p, `handler: ${JSON.stringify(NOOP_HANDLER)}`);
    task('join', `handler: ${JSON.stringify(NOOP_HANDLER)}`, parts);
  }
  if (workload === 'w4') for (let i = 0; i < WORKLOADS.w4.jobs; i++) task(`j${i}`, 'run: "true"');
  return lines.join('\n') + '\n';
}
export { gantryWorkflow };

/** W2: hops (start of link i+1 − end of link i, ms) from the links' marks [i, start, end]; checks each link ran once */
export function hopsOf(marks, who) {
  const byLink = new Array(CHAIN);
  for (const [i, start, end] of marks) {
    if (!(i >= 0 && i < CHAIN)) fail(`${who}: a mark of link ${i}, outside 0…${CHAIN - 1}`);
    if (byLink[i]) fail(`${who}: link ${i} ran twice`);
    byLink[i] = { start, end };
  }
  const hops = [];
  for (let i = 0; i < CHAIN; i++) {
    if (!byLink[i]) fail(`${who}: link ${i} never ran`);
    if (i === 0) continue;
    const hop = byLink[i].start - byLink[i - 1].end;
    if (hop < 0) fail(`${who}: link ${i} started ${(-hop).toFixed(3)} ms before link ${i - 1} ended`);
    hops.push(hop);
  }
  return hops;
}

// ------------------------------------------------------------------ systems

const QUEUE_OF = { w1: ['noop'], w2: ['link'], w3: ['part', 'join'], w4: ['sh'] };
const BULL_QUEUE = { w1: 'noop', w2: 'chain', w3: 'w3', w4: 'sh' };

/**
 * Every system: prepare the fresh store, start its workers, insert the
 * workload's jobs, tell when they are done, verify that each ran exactly once.
 */
const SYSTEMS = {
  gantry: {
    kind: 'pg',
    prefix: 'gantry',
    async setup(url, workload) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-queues-'));
      const file = path.join(dir, `bench-${workload}.yaml`);
      fs.writeFileSync(file, gantryWorkflow(workload));
      for (const m of HANDLER_MODULES) fs.copyFileSync(path.join(here, m), path.join(dir, m));
      let t = performance.now();
      const { definitions, errors } = loadDefinitionFiles([file]);
      const validateMs = performance.now() - t;
      if (errors.length) fail(`gantry ${workload}: workflow invalid: ${errors[0].message}`);
      const store = await openStore(url); // migrates
      t = performance.now();
      await store.putDefinitions(definitions);
      return { store, dir, extra: { validateMs, putDefinitionsMs: performance.now() - t } };
    },
    workers: (url, workload, wl, ctx) => gantryWorkers(url, wl, { GANTRY_BENCH_MARKS_DIR: ctx.dir }),
    async insert(ctx, workload) {
      ctx.run = await startRun(ctx.store, { workflow: `bench-${workload}` });
    },
    async done(ctx, observer) {
      const r = await observer.query('SELECT state FROM runs WHERE id = $1', [ctx.run.id]);
      return TERMINAL_RUN.has(r.rows[0]?.state);
    },
    async verify(ctx, observer, results, workload, wl) {
      const run = await ctx.store.getRun(ctx.run.id);
      if (run.state !== 'succeeded' || run.counts.succeeded !== wl.jobs) fail(`gantry ${workload}: run ${run.id} ended ${run.state} (${JSON.stringify(run.counts)})`);
      const once = await observer.query(`SELECT count(*)::int AS n FROM jobs WHERE run_id = $1 AND state = 'succeeded' AND attempts = 1`, [run.id]);
      if (once.rows[0].n !== wl.jobs) fail(`gantry ${workload}: ${wl.jobs - once.rows[0].n} jobs took more than one attempt`);
      const by = await observer.query(`SELECT worker, count(*)::int AS n FROM jobs WHERE run_id = $1 GROUP BY worker ORDER BY worker`, [run.id]);
      let marks = [];
      const extra = {};
      if (workload === 'w2') {
        for (const f of fs.readdirSync(ctx.dir).filter((x) => x.startsWith('marks-'))) marks = marks.concat(JSON.parse(fs.readFileSync(path.join(ctx.dir, f), 'utf8')));
        // the same hops as Gantry's store records them (ms): attempt finished → next attempt started
        const a = await observer.query(
          `SELECT substr(j.task, 2)::int AS i, a.started_at::float8 AS s, a.finished_at::float8 AS f FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.run_id = $1 ORDER BY 1`,
          [run.id],
        );
        const storeHops = a.rows.slice(1).map((r, k) => r.s - a.rows[k].f);
        extra.storeHopP50Ms = percentile(storeHops, 50);
      }
      return { perWorker: by.rows.map((r) => r.n), marks, extra };
    },
    async close(ctx) {
      await ctx.store.close();
      fs.rmSync(ctx.dir, { recursive: true, force: true });
    },
    stopWorkers: stopGantryWorkers,
  },

  graphile: {
    kind: 'pg',
    prefix: 'graphile',
    async setup(url, workload, wl) {
      const { makeWorkerUtils } = await import('graphile-worker');
      const utils = await makeWorkerUtils({ connectionString: url });
      await utils.migrate();
      if (workload === 'w3') await counterTable(url, wl.parts);
      return { utils, extra: {} };
    },
    workers: (url, workload, wl) => peerWorkers('graphile', workload, url, wl),
    async insert(ctx, workload, wl) {
      if (workload === 'w2') await ctx.utils.addJob('link', { i: 0 });
      // one statement: graphile_worker.add_jobs() with every spec
      else await ctx.utils.addJobs(Array.from({ length: workload === 'w3' ? wl.parts : wl.jobs }, () => ({ identifier: QUEUE_OF[workload][0], payload: {} })));
    },
    async done(ctx, observer) {
      // a finished job is deleted; a failed one would stay (with a later run_at); the chain's
      // next link and the join are added before the job that adds them is deleted
      const r = await observer.query('SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS busy');
      return !r.rows[0].busy;
    },
    verify: (ctx, observer, results, workload, wl) => verifyHandled('graphile-worker', results, workload, wl),
    async close(ctx) {
      await ctx.utils.release();
    },
    stopWorkers: stopPeerWorkers,
  },

  pgboss: {
    kind: 'pg',
    prefix: 'pgboss',
    async setup(url, workload, wl) {
      const { default: PgBoss } = await import('pg-boss');
      const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
      boss.on('error', () => undefined);
      await boss.start(); // migrates
      for (const q of QUEUE_OF[workload]) await boss.createQueue(q);
      if (workload === 'w3') await counterTable(url, wl.parts);
      return { boss, extra: {} };
    },
    workers: (url, workload, wl) => peerWorkers('pgboss', workload, url, wl),
    async insert(ctx, workload, wl) {
      if (workload === 'w2') await ctx.boss.send('link', { i: 0 });
      // one statement: INSERT … SELECT FROM json_to_recordset($1)
      else await ctx.boss.insert(Array.from({ length: workload === 'w3' ? wl.parts : wl.jobs }, () => ({ name: QUEUE_OF[workload][0], data: {} })));
    },
    afterInsert(workers) {
      for (const w of workers) if (w.child.connected) w.child.send({ type: 'wake' });
    },
    async done(ctx, observer, workload, wl) {
      const r = await observer.query(
        `SELECT count(*) FILTER (WHERE state < 'completed')::int AS busy, count(*)::int AS n FROM pgboss.job WHERE name = ANY($1)`,
        [QUEUE_OF[workload]],
      );
      return r.rows[0].busy === 0 && r.rows[0].n >= wl.jobs;
    },
    async verify(ctx, observer, results, workload, wl) {
      const r = await observer.query(
        `SELECT count(*) FILTER (WHERE state = 'completed' AND retry_count = 0)::int AS ok, count(*)::int AS n FROM pgboss.job WHERE name = ANY($1)`,
        [QUEUE_OF[workload]],
      );
      if (r.rows[0].ok !== wl.jobs || r.rows[0].n !== wl.jobs) fail(`pg-boss ${workload}: ${r.rows[0].ok} of ${r.rows[0].n} jobs completed at their first try, expected ${wl.jobs}`);
      return verifyHandled('pg-boss', results, workload, wl);
    },
    async close(ctx) {
      await ctx.boss.stop({ graceful: false, wait: true });
    },
    stopWorkers: stopPeerWorkers,
  },

  bullmq: {
    kind: 'redis',
    async setup(url, workload, wl) {
      const { Queue, FlowProducer } = await import('bullmq');
      const connection = redisOptions();
      const queue = new Queue(BULL_QUEUE[workload], { connection });
      const flow = new FlowProducer({ connection });
      await queue.waitUntilReady();
      return { queue, flow, extra: {} };
    },
    workers: (url, workload, wl) => peerWorkers('bullmq', workload, url, wl),
    async insert(ctx, workload, wl) {
      const q = BULL_QUEUE[workload];
      if (workload === 'w2') {
        // a flow: link i is the parent of link i-1, so link 0 (the deepest child) runs first
        let node = { name: 'link', queueName: q, data: { i: 0 } };
        for (let i = 1; i < CHAIN; i++) node = { name: 'link', queueName: q, data: { i }, children: [node] };
        await ctx.flow.add(node);
      } else if (workload === 'w3') {
        await ctx.flow.add({ name: 'join', queueName: q, data: {}, children: Array.from({ length: wl.parts }, () => ({ name: 'part', queueName: q, data: {} })) });
      } else {
        // one MULTI of every job
        await ctx.queue.addBulk(Array.from({ length: wl.jobs }, () => ({ name: q, data: {} })));
      }
    },
    async done(ctx, observer, workload, wl) {
      const q = BULL_QUEUE[workload];
      const [[, completed], [, failed]] = await observer.multi().zcard(`bull:${q}:completed`).zcard(`bull:${q}:failed`).exec();
      if (failed > 0) fail(`BullMQ ${workload}: ${failed} jobs failed`);
      return completed >= wl.jobs;
    },
    async verify(ctx, observer, results, workload, wl) {
      const q = BULL_QUEUE[workload];
      const [[, completed], [, failed]] = await observer.multi().zcard(`bull:${q}:completed`).zcard(`bull:${q}:failed`).exec();
      if (completed !== wl.jobs || failed !== 0) fail(`BullMQ ${workload}: ${completed} jobs completed and ${failed} failed, expected ${wl.jobs} completed`);
      return verifyHandled('BullMQ', results, workload, wl);
    },
    async close(ctx) {
      await ctx.flow.close();
      await ctx.queue.close();
    },
    stopWorkers: stopPeerWorkers,
  },
};

async function counterTable(url, n) {
  const c = await connect(url);
  try {
    await c.query('CREATE TABLE bench_w3 (n int NOT NULL)');
    await c.query('INSERT INTO bench_w3 VALUES ($1)', [n]);
  } finally {
    await c.end();
  }
}

/** the peers' workers count what they ran: their sum must be the number of jobs (each completed, so each ran once) */
function verifyHandled(name, results, workload, wl) {
  const handled = results.map((r) => r?.handled ?? NaN);
  const sum = handled.reduce((a, b) => a + b, 0);
  const joins = results.reduce((a, r) => a + (r?.joins ?? NaN), 0);
  const expected = workload === 'w3' ? wl.parts : wl.jobs;
  if (sum !== expected) fail(`${name} ${workload}: the workers ran ${sum} jobs, expected ${expected}`);
  if (workload === 'w3' && joins !== 1) fail(`${name} w3: the join ran ${joins} times`);
  return { perWorker: handled, marks: results.flatMap((r) => r?.marks ?? []) };
}

async function serverPids(system, observer, db) {
  if (system === 'bullmq') {
    const info = await observer.info('server');
    return [Number(/process_id:(\d+)/.exec(info)?.[1])].filter(Boolean);
  }
  const r = await observer.query('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);
  return r.rows.map((x) => x.pid);
}

async function runSystem(name, workload, admin, rep, xargs) {
  const sys = SYSTEMS[name];
  const wl = WORKLOADS[workload];
  let url;
  let db = null;
  if (sys.kind === 'pg') {
    db = `${sys.prefix}_${workload}_bench_${process.pid}_${rep}`;
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${db}`);
    url = dbUrl(db);
  } else {
    const r = await redisClient();
    await r.flushdb(); // this DB index only (GANTRY_BENCH_REDIS, default db 15), never FLUSHALL
    await r.quit();
    url = REDIS_URL;
  }
  let observer = null;
  try {
    let t = performance.now();
    const ctx = await sys.setup(url, workload, wl);
    const setupMs = performance.now() - t;
    try {
      t = performance.now();
      const workers = sys.workers(url, workload, wl, ctx);
      try {
        await Promise.all(workers.map((w) => w.isReady));
        const workersReadyMs = performance.now() - t;
        // the fresh database's creation and migration wrote WAL: flush it now rather than in a
        // checkpoint during the measurement (the same for the three PostgreSQL systems)
        if (sys.kind === 'pg') await admin.query('CHECKPOINT').catch(() => undefined);
        await sleep(SETTLE_MS);
        // W4: xargs timed here, with this system's workers idle and ready, right before its run
        const xargsMs = xargs ? xargs() : undefined;
        observer = sys.kind === 'pg' ? await connect(url) : await redisClient();
        const workerPids = workers.map((w) => w.pid);
        const server0 = await serverPids(name, observer, db);
        const workerCpu0 = cpuSnapshot(workerPids);
        const serverCpu0 = cpuSnapshot(server0);
        const h0 = now();
        const t0 = performance.now();
        await sys.insert(ctx, workload, wl);
        const t1 = performance.now();
        sys.afterInsert?.(workers);
        let polls = 0;
        for (;;) {
          polls++;
          if (await sys.done(ctx, observer, workload, wl)) break;
          if (performance.now() - t1 > DRAIN_TIMEOUT_MS) fail(`${name} ${workload}: not done after ${DRAIN_TIMEOUT_MS / 1000} s`);
          await sleep(POLL_MS);
        }
        const t2 = performance.now();
        const allServer = [...new Set([...server0, ...(await serverPids(name, observer, db))])];
        const workerCpuMs = cpuSince(workerCpu0, workerPids);
        const serverCpuMs = cpuSince(serverCpu0, allServer);
        const results = await sys.stopWorkers(workers);
        const failedExit = workers.find((w) => w.child.exitCode !== 0 && w.child.exitCode !== null);
        if (failedExit) fail(`${name} ${workload}: a worker exited ${failedExit.child.exitCode}: ${failedExit.stderr()}`);
        const { perWorker, marks, extra } = await sys.verify(ctx, observer, results, workload, wl);
        const out = {
          setupMs,
          workersReadyMs,
          insertMs: t1 - t0,
          drainMs: t2 - t1,
          totalMs: t2 - t0,
          workerCpuMs,
          serverCpuMs,
          polls,
          perWorker,
          ...ctx.extra,
          ...extra,
          ...(xargsMs !== undefined ? { xargsMs } : {}),
        };
        if (workload === 'w1') out.jobsPerSec = (wl.jobs * 1000) / out.drainMs;
        if (workload === 'w2') {
          const hops = hopsOf(marks, `${name} w2`);
          Object.assign(out, { hopP50Ms: percentile(hops, 50), hopP95Ms: percentile(hops, 95), hopMaxMs: Math.max(...hops), firstStartMs: Math.min(...marks.map((m) => m[1])) - h0 });
        }
        return out;
      } finally {
        if (workers.some((w) => w.child.exitCode === null && w.child.signalCode === null)) await sys.stopWorkers(workers).catch(() => undefined);
      }
    } finally {
      await sys.close(ctx).catch(() => undefined);
    }
  } finally {
    if (observer) await (sys.kind === 'pg' ? observer.end() : observer.quit()).catch(() => undefined);
    if (db) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  }
}

/** the figure of each workload (and its direction), per repetition */
export const METRIC = {
  w1: { key: 'jobsPerSec', higherIsBetter: true },
  w2: { key: 'hopP50Ms', higherIsBetter: false },
  w3: { key: 'totalMs', higherIsBetter: false },
  w4: { key: 'totalMs', higherIsBetter: false },
};

function summarise(reps, systems) {
  const summary = {};
  for (const s of systems) {
    const rs = reps.map((rep) => rep[s]).filter(Boolean);
    if (rs.length === 0) continue;
    const out = {};
    for (const k of Object.keys(rs[0])) if (typeof rs[0][k] === 'number') out[k] = median(rs.map((r) => r[k]));
    summary[s] = out;
  }
  return summary;
}

/**
 * Runs the given workloads on the process-based systems, `reps` times each (the
 * systems' order rotates per repetition). A system whose store is not there
 * (no PostgreSQL, no Redis) or whose package did not install is skipped with a
 * loud message, and the result says why.
 */
export async function queues({ reps, log, workloads, systems: wanted = SYSTEMS_ALL, skipPg = false, xargs }) {
  const res = { pgServer: new URL(PG_URL).host, redis: REDIS_URL, pollMs: POLL_MS, skipped: {}, versions: {} };
  let admin = null;
  if (!skipPg) {
    try {
      admin = await connect(PG_URL);
      res.versions.postgres = (await admin.query('SHOW server_version')).rows[0].server_version;
    } catch (e) {
      const why = `no PostgreSQL at ${new URL(PG_URL).host} (${e.message}); set GANTRY_BENCH_PG=postgres://… to run it`;
      log(`\n!!! Gantry (PostgreSQL), graphile-worker and pg-boss SKIPPED: ${why}\n`);
      for (const s of ['gantry', 'graphile', 'pgboss']) res.skipped[s] = why;
    }
  } else for (const s of ['gantry', 'graphile', 'pgboss']) res.skipped[s] = '--skip-pg';
  try {
    const peersMissing = ensurePeers(log);
    if (peersMissing) {
      log(`\n!!! graphile-worker, pg-boss and BullMQ SKIPPED: ${peersMissing}\n`);
      for (const s of ['graphile', 'pgboss', 'bullmq']) res.skipped[s] ??= peersMissing;
    } else {
      try {
        const r = await redisClient();
        res.versions.redis = /redis_version:(\S+)/.exec(await r.info('server'))?.[1];
        await r.quit();
      } catch (e) {
        const why = `no Redis at ${REDIS_URL} (${e.message}); set GANTRY_BENCH_REDIS=redis://host:port/db to run it`;
        log(`\n!!! BullMQ SKIPPED: ${why}\n`);
        res.skipped.bullmq = why;
      }
    }
    Object.assign(res.versions, { graphileWorker: peerVersion('graphile-worker'), pgBoss: peerVersion('pg-boss'), bullmq: peerVersion('bullmq'), ioredis: peerVersion('ioredis') });
    const systems = wanted.filter((s) => !res.skipped[s]);
    res.systems = systems;
    for (const workload of workloads) {
      const wl = WORKLOADS[workload];
      log(`${workload.toUpperCase()}: ${wl.title}, ${wl.workers} worker process(es) × ${wl.concurrency}: ${systems.map((s) => SYSTEM_NAMES[s]).join(', ') || 'no system to run'}`);
      const repsOut = [];
      for (let r = 0; r < reps; r++) {
        const rep = {};
        for (const s of systems.map((_, i) => systems[(i + r) % systems.length])) {
          rep[s] = await runSystem(s, workload, admin, r, workload === 'w4' ? xargs : null);
          const x = rep[s];
          const fig =
            workload === 'w1'
              ? `${Math.round(x.jobsPerSec)} jobs/s (drain ${(x.drainMs / 1000).toFixed(2)} s, insert ${Math.round(x.insertMs)} ms)`
              : workload === 'w2'
                ? `hop p50 ${x.hopP50Ms.toFixed(2)} ms, p95 ${x.hopP95Ms.toFixed(2)} ms, total ${Math.round(x.totalMs)} ms`
                : workload === 'w3'
                  ? `total ${Math.round(x.totalMs)} ms (insert ${Math.round(x.insertMs)} ms)`
                  : `total ${Math.round(x.totalMs)} ms = ${(x.totalMs / x.xargsMs).toFixed(2)}× xargs (${Math.round(x.xargsMs)} ms)`;
          log(`  ${workload} rep ${r + 1} ${s}: ${fig}; CPU: workers ${(x.workerCpuMs / 1000).toFixed(2)} s, server ${(x.serverCpuMs / 1000).toFixed(2)} s; per worker ${x.perWorker.join('/')}`);
          if (workload === 'w4') x.xargsRatio = x.totalMs / x.xargsMs;
        }
        repsOut.push(rep);
      }
      res[workload] = { ...wl, skipped: { ...res.skipped }, reps: repsOut, ...summarise(repsOut, systems) };
    }
    return res;
  } finally {
    await admin?.end().catch(() => undefined);
  }
}
