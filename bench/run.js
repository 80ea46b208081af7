#!/usr/bin/env node
// Gantry's benchmark suite (bench/README.md says what each workload measures):
//
//   W1  10,000 no-op jobs, 4 worker processes × 10 (Gantry on SQLite: `gantry up`
//       in-process, 4 workers × 10 slots)                                → jobs/s
//   W2  a chain of 200 no-op jobs                                       → p50 hop
//   W3  1,000 parallel no-ops, then one join                            → total
//   W4  1,000 × `sh -c true` at parallelism 4, ÷ `xargs -P4`; a bare Node spawn pool
//   W5  one run of ~100,000 no-op handler jobs on `gantry up` (SQLite): creation,
//       drain, peak RSS, `gantry status` during the drain
//
// W1–W4 run on Gantry (SQLite and PostgreSQL) and, in the same run, on BullMQ
// (Redis), graphile-worker and pg-boss (PostgreSQL), each on a fresh store per
// repetition (bench/queues.js). Also kept from before: W4-lite and the chains of
// 200 (shell and handler) on Gantry-SQLite, the ~7,000-job scale case, and
// W1-PG's detail table.
//
//   npm run bench                  # build, then 3 repetitions per workload (medians), W5 once
//   node bench/run.js --quick      # one repetition, against the current dist/
//   node bench/run.js --skip-pg    # without PostgreSQL (Gantry-SQLite and BullMQ only)
//   node bench/run.js --only w2,w3 # some workloads only (w1 … w5, ui: the web UI's run view of 10,000 jobs)
//
// PostgreSQL: GANTRY_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test, a
// role allowed to create databases); Redis: GANTRY_BENCH_REDIS (default
// redis://127.0.0.1:6379/15 — that DB index is flushed, nothing else). A system
// whose server is not there is skipped with a loud message. The peers are dev
// dependencies of the bench only: bench/package.json, installed into
// bench/node_modules by `npm ci --prefix bench` the first time.
//
// Writes bench/results/latest.json and bench/results/latest.md.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startUp } from '../dist/up.js';
import { startRun } from '../dist/server/runs.js';
import { silentLogger } from '../dist/log.js';
import { queues, hopsOf, WORKLOADS, SYSTEM_NAMES } from './queues.js';
import { scale, w5 } from './scale.js';
import { now, takeMarks } from './marks.mjs';
import { uiRunView, uiRunViewTable } from './uiRunView.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const skipPg = process.argv.includes('--skip-pg');
const ALL_WORKLOADS = ['w1', 'w2', 'w3', 'w4', 'w5', 'ui'];
const ONLY = (() => {
  const i = process.argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
  if (i < 0) return null;
  const v = process.argv[i].includes('=') ? process.argv[i].slice('--only='.length) : process.argv[i + 1];
  const list = (v ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
  const bad = list.filter((x) => !ALL_WORKLOADS.includes(x));
  if (list.length === 0 || bad.length) {
    process.stderr.write(`--only takes a comma-separated list of ${ALL_WORKLOADS.join(', ')}${bad.length ? ` (not: ${bad.join(', ')})` : ''}\n`);
    process.exit(2);
  }
  return new Set(list);
})();
const want = (w) => !ONLY || ONLY.has(w);
const REPS = quick ? 1 : 3;
const SHELL_JOBS = 1000;
const PARALLELISM = 4;
const CHAIN = 200;
const RUN_TIMEOUT_MS = 180_000;
const TERMINAL_RUN = new Set(['succeeded', 'failed', 'cancelled']);
const NOOP_MODULE = path.join(here, 'noop.mjs');
// A handler must live in its workflow's folder: the modules are copied beside each workflow file.
const HANDLER_MODULES = ['noop.mjs', 'marks.mjs'];
const NOOP_HANDLER = './noop.mjs#noop';
const LINK_HANDLER = './marks.mjs#link';

// ------------------------------------------------------------------ helpers

function fail(message) {
  throw new Error(`benchmark sanity check failed: ${message}`);
}

function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile. */
function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function tmpDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `gantry-bench-${tag}-`));
}

function writeWorkflow(dir, name, tasks) {
  for (const m of HANDLER_MODULES) fs.copyFileSync(path.join(here, m), path.join(dir, m));
  const lines = [`name: ${name}`, 'tasks:'];
  for (const t of tasks) {
    lines.push(`  ${t.id}:`);
    if (t.needs) lines.push(`    needs: [${t.needs.join(', ')}]`);
    if (t.handler) lines.push(`    handler: ${JSON.stringify(t.handler)}`);
    else lines.push(`    run: ${JSON.stringify(t.run)}`);
  }
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const independentShell = (n) => Array.from({ length: n }, (_, i) => ({ id: `j${i}`, run: 'true' }));
const chainOf = (n, cmd) => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, needs: i ? [`t${i - 1}`] : undefined, ...cmd }));

/**
 * Resolves with the run once it is terminal. Woken only by the store's
 * after-commit `events` signals (no polling); each signal costs one indexed
 * read of the run's new events, and getRun() is called once a terminal run
 * event shows up (getRun() counts the jobs by state, too heavy for the ~2,000
 * signals of a 1,000-job run: it would bill the observer to Gantry).
 */
function waitForRun(store, runId, startEventId, stats) {
  return new Promise((resolve, reject) => {
    let after = startEventId;
    let settled = false;
    const done = (err, run) => {
      if (settled) return;
      settled = true;
      unsubscribe();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(run);
    };
    const check = async () => {
      try {
        for (;;) {
          const t = performance.now();
          const evs = await store.readEvents(after, { runId }, 1000);
          stats.observerMs += performance.now() - t;
          if (evs.length === 0) break;
          after = evs[evs.length - 1].id;
          if (evs.some((e) => e.kind === 'run' && TERMINAL_RUN.has(e.state))) {
            const run = await store.getRun(runId);
            if (run && TERMINAL_RUN.has(run.state)) return done(null, run);
          }
        }
      } catch (e) {
        done(e);
      }
    };
    // One check at a time: signals that come while one runs are answered by one more check after it
    // (a check per signal would read the same new events many times over, billed to Gantry).
    let checking = false;
    let again = false;
    const checkOnce = async () => {
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      do {
        again = false;
        await check();
      } while (again && !settled);
      checking = false;
    };
    const unsubscribe = store.subscribe((s) => {
      if (s.type === 'events') void checkOnce();
    });
    const timer = setTimeout(() => done(new Error(`run ${runId} not finished after ${RUN_TIMEOUT_MS / 1000} s`)), RUN_TIMEOUT_MS);
    void checkOnce(); // the run may already be over (it is not, but be safe)
  });
}

/** Starts Gantry in a fresh temp dir, runs `workflow` once, returns timings and the store's records. */
async function gantryRun(tag, name, tasks, expectJobs, inspect, { workers = 1, slots = PARALLELISM, launcher = 'helper' } = {}) {
  const dir = tmpDir(tag);
  // handlers run in host processes: their W2 marks come back in files written when the hosts exit (bench/marks.mjs)
  process.env.GANTRY_BENCH_MARKS_DIR = dir;
  try {
    const yaml = writeWorkflow(dir, name, tasks);
    const up = await startUp({
      db: path.join(dir, 'bench.db'),
      host: '127.0.0.1',
      port: 0,
      workers,
      slots,
      launcher,
      apply: [yaml],
      stateDir: dir,
      // jobs get a built environment: the marks folder is passed to the handler hosts on purpose
      passEnv: ['GANTRY_BENCH_MARKS_DIR'],
      logger: silentLogger(),
    });
    try {
      const startEventId = await up.store.lastEventId();
      const stats = { observerMs: 0 };
      const cpu0 = process.cpuUsage();
      const h0 = now();
      const t0 = performance.now();
      const run0 = await startRun(up.store, { workflow: name });
      const createMs = performance.now() - t0;
      const run = await waitForRun(up.store, run0.id, startEventId, stats);
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (run.state !== 'succeeded') fail(`${name}: run ${run.id} ended ${run.state} (${JSON.stringify(run.counts)})`);
      if (run.counts.succeeded !== expectJobs)
        fail(`${name}: expected ${expectJobs} succeeded jobs, got ${JSON.stringify(run.counts)}`);
      const jobs = await up.store.listJobs({ runId: run.id, limit: expectJobs + 10 });
      if (jobs.length !== expectJobs || jobs.some((j) => j.state !== 'succeeded' || j.attempts !== 1))
        fail(`${name}: expected ${expectJobs} jobs all succeeded at their first attempt`);
      const extra = inspect ? await inspect(up.store, run) : {};
      // CPU of this Node process (main thread, libuv pool, GC) while the run went on.
      return { wallMs, createMs, h0, cpuMs: (cpu.user + cpu.system) / 1000, sysMs: cpu.system / 1000, observerMs: stats.observerMs, runId: run.id, ...extra };
    } finally {
      await up.stop();
      const marks = (globalThis.__gantryBenchMarks ??= []);
      for (const f of fs.readdirSync(dir).filter((x) => x.startsWith('marks-'))) marks.push(...JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
    }
  } finally {
    delete process.env.GANTRY_BENCH_MARKS_DIR;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Wall time of a shell pipeline, measured around spawnSync. */
function timeShell(cmd) {
  const t0 = performance.now();
  const r = spawnSync(cmd, { shell: '/bin/sh', stdio: 'ignore' });
  const ms = performance.now() - t0;
  if (r.status !== 0) fail(`baseline \`${cmd}\` exited ${r.status ?? r.signal}`);
  return ms;
}

/** `n` × /bin/sh -c true, `width` at a time, straight from child_process.spawn. */
function nodePool(n, width) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let started = 0;
    let finished = 0;
    const next = () => {
      if (started >= n) return;
      started++;
      const c = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
      c.on('error', reject);
      c.on('exit', (code) => {
        if (code !== 0) return reject(new Error(`sh -c true exited ${code}`));
        if (++finished === n) resolve(performance.now() - t0);
        else next();
      });
    };
    for (let i = 0; i < width; i++) next();
  });
}

/** Per-hop latency of a chain t0 → t1 → … from the attempts the store recorded. */
async function chainHops(store, run) {
  const attempts = [];
  for (let i = 0; i < CHAIN; i++) {
    const a = await store.listAttempts(`${run.id}:t${i}`);
    if (a.length !== 1 || a[0].state !== 'succeeded' || a[0].finishedAt === null) fail(`chain: t${i} has ${a.length} attempts (${a.map((x) => x.state)})`);
    attempts.push(a[0]);
  }
  const hops = [];
  for (let i = 0; i + 1 < CHAIN; i++) {
    const hop = attempts[i + 1].startedAt - attempts[i].finishedAt;
    if (hop < 0) fail(`chain: t${i + 1} started ${-hop} ms before t${i} finished`);
    hops.push(hop);
  }
  const durations = attempts.map((a) => a.finishedAt - a.startedAt);
  return { hops, attemptMs: median(durations) };
}

/** Share of all CPUs' time spent not idle over the next `ms` (everything on the machine). */
async function machineBusyPercent(ms) {
  const sample = () => os.cpus().reduce((acc, c) => {
    const t = c.times;
    acc.total += t.user + t.nice + t.sys + t.idle + t.irq;
    acc.idle += t.idle;
    return acc;
  }, { total: 0, idle: 0 });
  const a = sample();
  await new Promise((r) => setTimeout(r, ms));
  const b = sample();
  const total = b.total - a.total;
  return total > 0 ? Math.round((100 * (total - (b.idle - a.idle))) / total) : 0;
}

// --------------------------------------------------------------- workloads

async function warmUp() {
  // JIT, module caches (the handler module is cached per process), fastify: not what we measure.
  await gantryRun('warmup', 'bench-warmup', [...independentShell(40), ...chainOf(20, { handler: NOOP_HANDLER })], 60);
  await gantryRun('warmup2', 'bench-warmup2', chainOf(20, { handler: LINK_HANDLER }), 20, null, { workers: 4, slots: 10 });
  takeMarks();
  timeShell('seq 20 | xargs -P4 -n1 sh -c true');
  await nodePool(20, PARALLELISM);
}

async function w4lite() {
  const reps = [];
  for (let r = 0; r < REPS; r++) {
    const xargsMs = timeShell(`seq ${SHELL_JOBS} | xargs -P${PARALLELISM} -n1 sh -c true`);
    const poolMs = await nodePool(SHELL_JOBS, PARALLELISM);
    // The default (commands started by bin/gantry-launcher) and the old way (Node's spawn from this
    // process, --launcher spawn), side by side, in turn first.
    const runs = {};
    for (const launcher of r % 2 ? ['spawn', 'helper'] : ['helper', 'spawn'])
      runs[launcher] = await gantryRun(`w4-${launcher}-${r}`, 'bench-shell', independentShell(SHELL_JOBS), SHELL_JOBS, null, { launcher });
    const g = runs.helper;
    const sp = runs.spawn;
    reps.push({ gantryMs: g.wallMs, gantryCpuMs: g.cpuMs, gantrySysMs: g.sysMs, observerMs: g.observerMs, spawnMs: sp.wallMs, spawnCpuMs: sp.cpuMs, xargsMs, nodePoolMs: poolMs });
    log(
      `  w4-lite rep ${r + 1}: gantry ${fmtS(g.wallMs)} (process CPU ${fmtS(g.cpuMs)}, of which sys ${fmtS(g.sysMs)}; observer ${fmtS(g.observerMs)}),` +
        ` gantry --launcher spawn ${fmtS(sp.wallMs)} (process CPU ${fmtS(sp.cpuMs)}), xargs ${fmtS(xargsMs)}, node pool ${fmtS(poolMs)}`,
    );
  }
  const gantryMs = median(reps.map((r) => r.gantryMs));
  const xargsMs = median(reps.map((r) => r.xargsMs));
  const nodePoolMs = median(reps.map((r) => r.nodePoolMs));
  const gantryCpuMs = median(reps.map((r) => r.gantryCpuMs));
  const observerMs = median(reps.map((r) => r.observerMs));
  const spawnMs = median(reps.map((r) => r.spawnMs));
  return {
    jobs: SHELL_JOBS,
    parallelism: PARALLELISM,
    reps,
    gantryMs,
    gantryCpuMs,
    observerMs,
    xargsMs,
    nodePoolMs,
    ratio: median(reps.map((r) => r.gantryMs / r.xargsMs)),
    spawnMs,
    spawnCpuMs: median(reps.map((r) => r.spawnCpuMs)),
    spawnRatio: median(reps.map((r) => r.spawnMs / r.xargsMs)),
    nodePoolRatio: nodePoolMs / xargsMs,
  };
}

async function chain(kind) {
  const cmd = kind === 'shell' ? { run: 'true' } : { handler: NOOP_HANDLER };
  const reps = [];
  for (let r = 0; r < REPS; r++) {
    let baselineMs;
    if (kind === 'shell') baselineMs = timeShell(`seq ${CHAIN} | xargs -P1 -n1 sh -c true`);
    else {
      const { noop } = await import(NOOP_MODULE);
      const t0 = performance.now();
      for (let i = 0; i < CHAIN; i++) await noop();
      baselineMs = performance.now() - t0;
    }
    const g = await gantryRun(`chain-${kind}-${r}`, `bench-chain-${kind}`, chainOf(CHAIN, cmd), CHAIN, chainHops);
    reps.push({
      wallMs: g.wallMs,
      cpuMs: g.cpuMs,
      baselineMs,
      hopMedianMs: median(g.hops),
      hopP95Ms: percentile(g.hops, 95),
      hopMaxMs: Math.max(...g.hops),
      attemptMedianMs: g.attemptMs,
    });
    log(`  chain-${kind} rep ${r + 1}: wall ${fmtS(g.wallMs)}, hop median ${median(g.hops)} ms, p95 ${percentile(g.hops, 95)} ms, attempt median ${g.attemptMs} ms`);
  }
  const pick = (k) => median(reps.map((r) => r[k]));
  return {
    kind,
    jobs: CHAIN,
    reps,
    wallMs: pick('wallMs'),
    baselineMs: pick('baselineMs'),
    ratio: pick('wallMs') / pick('baselineMs'),
    hopMedianMs: pick('hopMedianMs'),
    hopP95Ms: pick('hopP95Ms'),
    hopMaxMs: pick('hopMaxMs'),
    attemptMedianMs: pick('attemptMedianMs'),
    perJobMs: pick('wallMs') / CHAIN,
  };
}

/**
 * W1–W3 on Gantry-SQLite: `gantry up` in-process (startUp: API server,
 * scheduler, 4 workers × 10 slots = the 40 jobs in flight the other systems
 * get from 4 processes × 10), a fresh database per repetition. The figures are
 * those of the process systems (bench/queues.js): W1 = jobs ÷ (run terminal −
 * run created), W2 = hops between the links' handler marks, W3 = insertion
 * start → run terminal.
 */
async function gantrySqlite(workload) {
  const wl = WORKLOADS[workload];
  let tasks;
  if (workload === 'w1') tasks = Array.from({ length: wl.jobs }, (_, i) => ({ id: `j${i}`, handler: NOOP_HANDLER }));
  if (workload === 'w2') tasks = chainOf(wl.jobs, { handler: LINK_HANDLER });
  if (workload === 'w3') {
    tasks = Array.from({ length: wl.parts }, (_, i) => ({ id: `p${i}`, handler: NOOP_HANDLER }));
    tasks.push({ id: 'join', needs: tasks.map((t) => t.id), handler: NOOP_HANDLER });
  }
  const reps = [];
  for (let r = 0; r < REPS; r++) {
    takeMarks();
    const g = await gantryRun(`${workload}-sqlite-${r}`, `bench-${workload}`, tasks, wl.jobs, null, { workers: wl.workers, slots: wl.concurrency });
    const x = { insertMs: g.createMs, drainMs: g.wallMs - g.createMs, totalMs: g.wallMs, cpuMs: g.cpuMs, observerMs: g.observerMs };
    if (workload === 'w1') x.jobsPerSec = (wl.jobs * 1000) / x.drainMs;
    if (workload === 'w2') {
      const hops = hopsOf(takeMarks(), 'gantry-sqlite w2');
      Object.assign(x, { hopP50Ms: percentile(hops, 50), hopP95Ms: percentile(hops, 95), hopMaxMs: Math.max(...hops) });
    }
    reps.push(x);
    const fig =
      workload === 'w1'
        ? `${Math.round(x.jobsPerSec)} jobs/s (drain ${fmtS(x.drainMs)}, run creation ${fmtS(x.insertMs)})`
        : workload === 'w2'
          ? `hop p50 ${x.hopP50Ms.toFixed(2)} ms, p95 ${x.hopP95Ms.toFixed(2)} ms, total ${fmtS(x.totalMs)}`
          : `total ${fmtS(x.totalMs)} (run creation ${fmtS(x.insertMs)})`;
    log(`  ${workload} rep ${r + 1} gantry-sqlite: ${fig}; process CPU ${fmtS(x.cpuMs)}`);
  }
  return medianFields(reps);
}

// ------------------------------------------------------------------ output

function log(s) {
  process.stderr.write(s + '\n');
}
const fmtS = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`);
const fmtMs = (ms) => `${Number.isInteger(ms) ? ms : ms.toFixed(1)} ms`;
const fmtX = (x) => `${x.toFixed(2)}×`;
const fmtRate = (x) => `${Math.round(x).toLocaleString('en-US')} jobs/s`;
const PEER_NAMES = { graphile: 'graphile-worker', pgboss: 'pg-boss' };
const peerLabel = (w, s) => `${PEER_NAMES[s]} ${s === 'graphile' ? w.versions.graphileWorker : w.versions.pgBoss}`;

/** W1-PG's view of the W1 results (Gantry-PG, graphile-worker, pg-boss), as the detail rows have shown it since the start */
function w1pgView(q) {
  const w = q?.w1;
  if (!q || !w) return null;
  if (!w.gantry && !w.graphile && !w.pgboss) return { skipped: w.skipped?.gantry ?? 'not run' };
  const view = { jobs: w.jobs, workers: w.workers, concurrency: w.concurrency, pollMs: q.pollMs, server: q.pgServer, versions: q.versions, peersSkipped: w.skipped?.graphile ?? null };
  for (const s of ['gantry', 'graphile', 'pgboss']) {
    if (!w[s]) continue;
    view[s] = { ...w[s], totalJobsPerSec: (w.jobs * 1000) / w[s].totalMs, workerCpuMsPerJob: w[s].workerCpuMs / w.jobs, serverCpuMsPerJob: w[s].serverCpuMs / w.jobs };
  }
  const peers = ['graphile', 'pgboss'].filter((s) => w[s]);
  view.bestPeer = peers.length ? peers.reduce((a, b) => (w[a].jobsPerSec >= w[b].jobsPerSec ? a : b)) : null;
  if (view.peersSkipped && view.bestPeer) view.peersSkipped = null;
  return view;
}

function w1pgRows(w) {
  if (!w) return [];
  const head = `W1-PG: ${WORKLOADS.w1.jobs.toLocaleString('en-US')} no-op jobs, ${WORKLOADS.w1.workers} worker processes × ${WORKLOADS.w1.concurrency}, PostgreSQL`;
  if (w.skipped) return [[head, '—', `skipped: ${w.skipped}`, '—']];
  const rows = [];
  for (const s of ['graphile', 'pgboss']) {
    if (!w[s]) continue;
    const best = s === w.bestPeer;
    const ratio = w.gantry ? w.gantry.jobsPerSec / w[s].jobsPerSec : NaN;
    rows.push([
      `${head} ${w.versions.postgres.split(' ')[0]}: Gantry vs ${peerLabel(w, s)}`,
      w.gantry ? fmtRate(w.gantry.jobsPerSec) : '— (not run)',
      `${fmtRate(w[s].jobsPerSec)} (${PEER_NAMES[s]}${best ? ', the faster peer' : ''})`,
      !Number.isFinite(ratio) ? '—' : best ? `${fmtX(ratio)} of its rate (target ≥ 1.00×)` : `${fmtX(ratio)} of its rate`,
    ]);
  }
  if (w.peersSkipped && w.gantry) rows.push([`${head}: Gantry`, fmtRate(w.gantry.jobsPerSec), `peers skipped: ${w.peersSkipped}`, '—']);
  if (w.gantry)
    rows.push([
      `W1-PG: putting the ${w.jobs.toLocaleString('en-US')} jobs in (not in the rates)`,
      `${fmtS(w.gantry.insertMs)} run creation; ${fmtS(w.gantry.validateMs)} validating the ${w.jobs.toLocaleString('en-US')}-task file`,
      ['graphile', 'pgboss'].filter((s) => w[s]).map((s) => `${PEER_NAMES[s]} ${fmtS(w[s].insertMs)}`).join(', ') || '—',
      '—',
    ]);
  return rows;
}

/** the detail table of the workloads kept from before (W4-lite, the chains, the scale case, W1-PG) */
function detailTable(res) {
  const { w4lite: w4, chainShell, chainHandler, scale: sc } = res.workloads;
  const rows = [
    ['Workload', 'Gantry', 'Baseline', 'Ratio'],
    ['---', '---:', '---:', '---:'],
  ];
  if (w4)
    rows.push(
      [`W4-lite: ${SHELL_JOBS.toLocaleString('en-US')} × \`sh -c true\`, ${PARALLELISM} slots`, fmtS(w4.gantryMs), `${fmtS(w4.xargsMs)} (xargs -P${PARALLELISM})`, `${fmtX(w4.ratio)} (target ≤ 1.30×)`],
      [`W4-lite, the old way: \`--launcher spawn\` (Node's spawn from the worker's process)`, fmtS(w4.spawnMs), `${fmtS(w4.xargsMs)} (xargs -P${PARALLELISM})`, fmtX(w4.spawnRatio)],
      [`Reference: bare Node spawn pool, ${PARALLELISM} at a time`, '—', `${fmtS(w4.nodePoolMs)} (vs xargs ${fmtS(w4.xargsMs)})`, fmtX(w4.nodePoolRatio)],
    );
  if (chainShell)
    rows.push(
      [`Chain of ${CHAIN}, shell \`true\`: total`, fmtS(chainShell.wallMs), `${fmtS(chainShell.baselineMs)} (xargs -P1)`, fmtX(chainShell.ratio)],
      [`Chain of ${CHAIN}, shell: hop median / p95`, `${fmtMs(chainShell.hopMedianMs)} / ${fmtMs(chainShell.hopP95Ms)}`, 'target < 10 ms', '—'],
    );
  if (chainHandler)
    rows.push(
      [`Chain of ${CHAIN}, no-op handler: total`, fmtS(chainHandler.wallMs), `${fmtS(chainHandler.baselineMs)} (${CHAIN} awaited calls)`, '—'],
      [`Chain of ${CHAIN}, handler: hop median / p95`, `${fmtMs(chainHandler.hopMedianMs)} / ${fmtMs(chainHandler.hopP95Ms)}`, 'target < 10 ms', '—'],
    );
  if (sc) rows.push(...scaleRows(sc));
  rows.push(...w1pgRows(w1pgView(res.workloads.queues)));
  return rows.length > 2 ? rows.map((r) => `| ${r.join(' | ')} |`).join('\n') : '';
}

function w1pgNotes(w) {
  if (!w || w.skipped) return [];
  const systems = ['gantry', 'graphile', 'pgboss'].filter((s) => w[s]);
  const name = (s) => (s === 'gantry' ? 'Gantry' : PEER_NAMES[s]);
  return [
    `- W1-PG: rate = ${w.jobs.toLocaleString('en-US')} ÷ drain time, from the end of the insertion to the moment the bench's observer (one query every ${w.pollMs} ms on its own connection) sees every job done; ` +
      `each system on a fresh database of the same server (${w.server}), its ${w.workers} worker processes started and idle before the insertion. ` +
      `Drain: ${systems.map((s) => `${name(s)} ${fmtS(w[s].drainMs)}`).join(', ')}; insertion + drain: ${systems.map((s) => `${name(s)} ${fmtRate(w[s].totalJobsPerSec)}`).join(', ')}.`,
    `- W1-PG CPU per job during the drain (worker processes / PostgreSQL server processes of their sessions): ` +
      systems.map((s) => `${name(s)} ${fmtMs(round2(w[s].workerCpuMsPerJob))} / ${fmtMs(round2(w[s].serverCpuMsPerJob))}`).join('; ') +
      (w.gantry ? `. Gantry's store: applying the ${w.jobs.toLocaleString('en-US')}-task definition ${fmtS(w.gantry.putDefinitionsMs)}.` : '.'),
  ];
}
const round2 = (x) => Math.round(x * 100) / 100;

function scaleRows(x) {
  const what = `Scale: ${x.wikis.toLocaleString('en-US')} wikis × 5 stages, ${x.large} large split into 20 chunks (${x.jobs.toLocaleString('en-US')} jobs), \`gantry up\` on SQLite`;
  return [
    [`${what}: run creation`, fmtS(x.createMs), 'target < 3 s', '—'],
    [`${what}: creation + drain`, fmtS(x.totalMs), '—', '—'],
    [`${what}: peak RSS of the process (API, scheduler, 2 workers)`, `${Math.round(x.peakRssBytes / 2 ** 20)} MB`, 'target < 300 MB', '—'],
    [`${what}: \`GET /runs/:id\` (\`gantry status\`) during the drain, median / p95`, `${fmtMs(x.statusMedianMs)} / ${fmtMs(x.statusP95Ms)}`, 'target < 200 ms', '—'],
  ];
}

/** median of each numeric field over the repetitions */
function medianFields(reps) {
  const out = { ...reps[0] };
  for (const [k, v] of Object.entries(reps[0])) if (typeof v === 'number') out[k] = median(reps.map((r) => r[k]));
  return { ...out, reps };
}

function notes(res) {
  const { w4lite: w4, chainShell, chainHandler } = res.workloads;
  return [
    ...(w4
      ? [
          `- W4-lite Gantry: ${fmtS(w4.gantryMs / w4.jobs)} per job at ${w4.parallelism} slots (xargs: ${fmtS(w4.xargsMs / w4.jobs)}); ` +
            `the Gantry process used ${fmtS(w4.gantryCpuMs)} of CPU during the ${fmtS(w4.gantryMs)} run (${fmtS(w4.gantryCpuMs / w4.jobs)} per job), ` +
            `${fmtS(w4.observerMs)} of it the benchmark's own run-completion check; with \`--launcher spawn\`: ${fmtS(w4.spawnCpuMs)} of CPU ` +
            `(the launcher's own CPU and the commands' are not the process's).`,
        ]
      : []),
    ...(chainShell ? [`- Chain, shell: ${fmtS(chainShell.perJobMs)} per link; median attempt (claim → completion recorded) ${fmtMs(chainShell.attemptMedianMs)}, hop max ${fmtMs(chainShell.hopMaxMs)}.`] : []),
    ...(chainHandler
      ? [
          `- Chain, handler: ${fmtS(chainHandler.perJobMs)} per link; median attempt ${fmtMs(chainHandler.attemptMedianMs)}, hop max ${fmtMs(chainHandler.hopMaxMs)}.`,
          `- These chain hops come from the store's attempt timestamps (ms resolution): start of t(i+1) − finish of t(i). W2's hops (above) come from the handlers' own marks (µs).`,
        ]
      : []),
    ...w1pgNotes(w1pgView(res.workloads.queues)),
  ].join('\n');
}

// ------------------------------------------------------------ the summary

const SYSTEM_COLUMNS = ['sqlite', 'gantry', 'bullmq', 'graphile', 'pgboss'];
const PEERS = ['bullmq', 'graphile', 'pgboss'];

/** per workload and system, the median figure (and for W4, the ratio to xargs) */
function figuresOf(res) {
  const q = res.workloads.queues ?? {};
  const f = {};
  for (const w of ['w1', 'w2', 'w3', 'w4']) {
    f[w] = {};
    const key = { w1: 'jobsPerSec', w2: 'hopP50Ms', w3: 'totalMs', w4: 'xargsRatio' }[w];
    if (w === 'w4') {
      // each run ÷ the xargs timed right before it, in the same conditions (median of those ratios): on
      // this shared VM xargs takes ~0.5 s or ~1 s depending on what else runs, for a minute at a time,
      // and the ratios of adjacent pairs are steadier than either figure alone
      const xs = [...(res.workloads.w4lite?.reps ?? []).map((r) => r.xargsMs), ...(q.w4?.reps ?? []).flatMap((rep) => Object.values(rep).map((x) => x?.xargsMs))].filter(Number.isFinite);
      f.w4xargs = { xargsMs: median(xs), samples: xs.length };
      for (const s of ['gantry', ...PEERS]) if (q.w4?.[s]) f.w4[s] = { value: q.w4[s].xargsRatio, totalMs: q.w4[s].totalMs };
      const lite = res.workloads.w4lite;
      if (lite) {
        f.w4.sqlite = { value: median(lite.reps.map((r) => r.gantryMs / r.xargsMs)), totalMs: lite.gantryMs };
        f.w4xargs.nodePoolRatio = median(lite.reps.map((r) => r.nodePoolMs / r.xargsMs));
        if (lite.spawnRatio) f.w4xargs.spawnRatio = lite.spawnRatio;
      }
      continue;
    }
    for (const s of ['gantry', ...PEERS]) if (q[w]?.[s]) f[w][s] = { value: q[w][s][key], totalMs: q[w][s].totalMs };
    const sq = res.workloads[`${w}Sqlite`];
    if (sq) f[w].sqlite = { value: sq[key], totalMs: sq.totalMs };
  }
  return f;
}

const TARGETS = {
  w1: { sqlite: (v) => v >= 15_000, gantry: (v) => v >= 7_000, text: 'SQLite ≥ 15,000; PG ≥ 7,000' },
  w2: { sqlite: (v) => v <= 0.5, gantry: (v) => v <= 1.5, text: 'SQLite ≤ 0.5 ms; PG ≤ 1.5 ms' },
  w3: { sqlite: (v) => v <= 270, gantry: (v) => v <= 800, text: 'SQLite ≤ 270 ms; PG ≤ 800 ms' },
  w4: { sqlite: (v) => v <= 1.3, gantry: (v) => v <= 1.3, text: '≤ 1.30×' },
};

function summaryTable(res) {
  const f = figuresOf(res);
  const v = res.versions ?? {};
  const label = {
    sqlite: 'Gantry SQLite',
    gantry: 'Gantry PG',
    bullmq: `BullMQ ${v.bullmq ?? ''}`.trim(),
    graphile: `graphile-worker ${v.graphileWorker ?? ''}`.trim(),
    pgboss: `pg-boss ${v.pgBoss ?? ''}`.trim(),
  };
  const fmt = {
    w1: (x) => Math.round(x.value).toLocaleString('en-US'),
    w2: (x) => `${x.value.toFixed(2)} ms`,
    w3: (x) => `${Math.round(x.value).toLocaleString('en-US')} ms`,
    w4: (x) => `${x.value.toFixed(2)}× (${fmtS(x.totalMs)})`,
  };
  const title = {
    w1: 'W1: 10,000 no-op jobs, 40 in flight, jobs/s ↑',
    w2: 'W2: chain of 200, p50 hop (end of N → start of N+1) ↓',
    w3: 'W3: 1,000 parallel no-ops + join, total ↓',
    w4: 'W4: 1,000 × `sh -c true`, parallelism 4, ÷ `xargs -P4` ↓',
  };
  const rows = [
    ['Workload', ...SYSTEM_COLUMNS.map((s) => label[s]), 'Floor', 'Gantry ÷ best peer (SQLite / PG)', 'Target (Gantry SQLite; PG)'],
    ['---', ...SYSTEM_COLUMNS.map(() => '---:'), '---:', '---:', '---'],
  ];
  const out = {};
  res.xargsMs = f.w4xargs?.xargsMs ?? null;
  for (const w of ['w1', 'w2', 'w3', 'w4']) {
    if (Object.keys(f[w]).length === 0) continue;
    const peers = PEERS.filter((s) => f[w][s] && Number.isFinite(f[w][s].value));
    const higher = w === 'w1';
    const best = peers.length ? peers.reduce((a, b) => ((higher ? f[w][a].value >= f[w][b].value : f[w][a].value <= f[w][b].value) ? a : b)) : null;
    const ratio = (s) => (best && f[w][s] ? f[w][s].value / f[w][best].value : NaN);
    out[w] = { best, sqliteRatio: ratio('sqlite'), pgRatio: ratio('gantry') };
    const cell = (s) => {
      if (!f[w][s]) return res.workloads.queues?.skipped?.[s] ? '— (skipped)' : '—';
      const mark = (s === 'sqlite' || s === 'gantry') && TARGETS[w][s] ? (TARGETS[w][s](f[w][s].value) ? ' ✓' : ' ✗') : '';
      return `${s === best ? '**' : ''}${fmt[w](f[w][s])}${s === best ? '**' : ''}${mark}`;
    };
    const floor =
      w === 'w4'
        ? `1.00× (xargs ${fmtS(f.w4xargs.xargsMs)}, median of ${f.w4xargs.samples})${f.w4xargs.nodePoolRatio ? `; Node spawn pool ${fmtX(f.w4xargs.nodePoolRatio)}` : ''}${f.w4xargs.spawnRatio ? `; Gantry SQLite the old way (\`--launcher spawn\`) ${fmtX(f.w4xargs.spawnRatio)}` : ''}`
        : '—';
    const r = (x) => (Number.isFinite(x) ? fmtX(x) : '—');
    rows.push([title[w], ...SYSTEM_COLUMNS.map(cell), floor, best ? `${r(out[w].sqliteRatio)} / ${r(out[w].pgRatio)} of ${label[best]}` : '—', TARGETS[w].text]);
  }
  res.ratios = out;
  return rows.length > 2 ? rows.map((x) => `| ${x.join(' | ')} |`).join('\n') : '';
}

function w5Table(x) {
  if (!x) return '';
  const mb = (b) => `${Math.round(b / 2 ** 20)} MB`;
  const ok = (c) => (c ? ' ✓' : ' ✗');
  return [
    `| W5: ${x.jobs.toLocaleString('en-US')} no-op handler jobs (a foreach over ${x.wikis.toLocaleString('en-US')} wikis × a ${x.tasksPerWiki}-task sub-workflow), \`gantry up\` on SQLite, 4 workers × 10 | Gantry | Target |`,
    '| --- | ---: | --- |',
    `| run creation (\`POST /runs\`) | ${fmtS(x.createMs)}${ok(x.createMs <= 5000)} | ≤ 5 s |`,
    `| drain (created → run succeeded) | ${fmtS(x.drainMs)} (${fmtRate((x.jobs * 1000) / x.drainMs)}) | — |`,
    `| peak RSS: \`gantry up\` (API, scheduler, workers${x.heapCapMb ? `; \`NODE_OPTIONS=--max-old-space-size=${x.heapCapMb}\`` : ''}; ${mb(x.idleRssBytes)} before the run, ${mb(x.peakRssAfterCreateBytes)} once created) / \`gantry status\` CLI | ${mb(x.peakRssBytes)}${ok(x.peakRssBytes <= 300 * 2 ** 20)} / ${x.cliPeakRssBytes ? mb(x.cliPeakRssBytes) : '—'}${x.cliPeakRssBytes ? ok(x.cliPeakRssBytes <= 300 * 2 ** 20) : ''} | ≤ 300 MB each |`,
    `| \`GET /api/v1/runs/:id\` during the drain: median / max (${x.statusSamples} calls, ${(x.statusBytes / 2 ** 20).toFixed(1)} MB of JSON listing ${x.statusListing === 'active' ? `its active jobs (median ${x.statusJobsListed?.toLocaleString('en-US')}) and progress per stage` : `${x.statusJobsListed?.toLocaleString('en-US')} of the ${x.jobs.toLocaleString('en-US')} jobs`}) | ${fmtS(x.statusMedianMs)} / ${fmtS(x.statusMaxMs)}${ok(x.statusMedianMs <= 200)} | ≤ 200 ms |`,
    `| \`gantry status RUN\` (the CLI, end to end) during the drain: median (${x.cliStatusSamples ?? 0} calls) | ${x.cliStatusSamples ? fmtS(x.cliStatusMedianMs) : '—'} | ≤ 200 ms |`,
    `| \`GET /api/v1/runs/:id\` once the run is over | ${fmtS(x.statusIdleMs)} | — |`,
  ].join('\n');
}

function queueNotes(res) {
  const q = res.workloads.queues;
  const lines = [];
  if (q) {
    for (const [s, why] of Object.entries(q.skipped ?? {})) lines.push(`- **${SYSTEM_NAMES[s]} skipped:** ${why}.`);
    for (const w of ['w1', 'w2', 'w3', 'w4']) {
      if (!q[w]) continue;
      const parts = (q.systems ?? [])
        .filter((s) => q[w][s])
        .map((s) => {
          const x = q[w][s];
          return `${SYSTEM_NAMES[s]} insert ${fmtS(x.insertMs)}, total ${fmtS(x.totalMs)}, CPU/job ${round2(x.workerCpuMs / q[w].jobs)} ms workers + ${round2(x.serverCpuMs / q[w].jobs)} ms ${s === 'bullmq' ? 'redis' : 'postgres'}${w === 'w2' ? `, hop p95 ${x.hopP95Ms.toFixed(2)} ms` : ''}`;
        });
      if (parts.length) lines.push(`- ${w.toUpperCase()} (${q[w].workers} process${q[w].workers > 1 ? 'es' : ''} × ${q[w].concurrency}): ${parts.join('; ')}.`);
    }
  }
  for (const w of ['w1', 'w2', 'w3']) {
    const x = res.workloads[`${w}Sqlite`];
    if (x) lines.push(`- ${w.toUpperCase()} Gantry SQLite (in-process, 4 workers × 10 slots): run creation ${fmtS(x.insertMs)}, total ${fmtS(x.totalMs)}, process CPU ${fmtS(x.cpuMs)}${w === 'w2' ? `, hop p95 ${x.hopP95Ms.toFixed(2)} ms` : ''}.`);
  }
  return lines.join('\n');
}

// -------------------------------------------------------------------- main

async function main() {
  const started = performance.now();
  // A peer library's pool may still hold a query on a connection to the database the bench
  // just dropped: its rejection is reported, not fatal (the figures were taken already).
  process.on('unhandledRejection', (e) => {
    if (e?.code === '57P01' || /not queryable|Connection terminated/.test(e?.message ?? '')) log(`  (ignored a peer's connection error after its database was dropped: ${e.message})`);
    else {
      process.stderr.write(`${e?.stack ?? e}\n`);
      process.exit(1);
    }
  });
  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    // Other work on the machine skews everything: how busy it was in the second
    // before the benchmark is recorded, so that a bad run can be told apart.
    busyPercentAtStart: await machineBusyPercent(1000),
  };
  log(`gantry bench: ${REPS} repetition(s)${quick ? ' (--quick)' : ''}${ONLY ? ` of ${[...ONLY].join(', ')}` : ''} on ${machine.cpu} × ${machine.cpus}, node ${machine.node}`);
  const busy = machine.busyPercentAtStart > 20;
  if (busy) log(`warning: the machine was ${machine.busyPercentAtStart}% busy before the start: other work will skew the figures`);
  const workloads = {};
  const q = { reps: REPS, log, skipPg };
  const queueRes = { skipped: {}, systems: [] };
  const runQueues = async (w) => {
    const r = await queues({ ...q, workloads: [w], xargs: () => timeShell(`seq ${SHELL_JOBS} | xargs -P${PARALLELISM} -n1 sh -c true`) });
    for (const [k, v] of Object.entries(r)) if (!['w1', 'w2', 'w3', 'w4', 'skipped', 'systems', 'versions'].includes(k)) queueRes[k] = v;
    // a server may be there for one workload and not for another: keep every reason, and every version seen
    for (const [s, why] of Object.entries(r.skipped)) queueRes.skipped[s] = queueRes.skipped[s] && queueRes.skipped[s] !== why ? `${queueRes.skipped[s]}; ${w}: ${why}` : why;
    queueRes.systems = [...new Set([...queueRes.systems, ...r.systems])];
    queueRes.versions = { ...queueRes.versions, ...Object.fromEntries(Object.entries(r.versions).filter(([, v]) => v)) };
    queueRes[w] = r[w];
    workloads.queues = queueRes;
  };
  await warmUp();
  // W4 first: Node's spawn forks the bench process, which costs more the bigger the process
  // is (page tables) — after W1–W3 have run in it, W4-lite and the Node pool were ~2× slower.
  if (want('w4')) {
    log('W4-lite: 1,000 no-op shell jobs at parallelism 4 — Gantry SQLite (gantry up in-process, 1 worker × 4 slots), xargs -P4, a Node spawn pool');
    workloads.w4lite = await w4lite();
    await runQueues('w4');
  }
  if (want('w1')) {
    log('W1: 10,000 no-op jobs, 40 in flight — Gantry SQLite (gantry up in-process, 4 workers × 10 slots)');
    workloads.w1Sqlite = await gantrySqlite('w1');
    await runQueues('w1');
  }
  if (want('w2')) {
    log('W2: a chain of 200 no-op handler jobs — Gantry SQLite (gantry up in-process, 4 workers × 10 slots)');
    workloads.w2Sqlite = await gantrySqlite('w2');
    await runQueues('w2');
    log('Chain of 200 on Gantry SQLite (1 worker × 4 slots): shell');
    workloads.chainShell = await chain('shell');
    log('Chain of 200 on Gantry SQLite (1 worker × 4 slots): handler');
    workloads.chainHandler = await chain('handler');
  }
  if (want('w3')) {
    log('W3: 1,000 parallel no-ops, then a join — Gantry SQLite (gantry up in-process, 4 workers × 10 slots)');
    workloads.w3Sqlite = await gantrySqlite('w3');
    await runQueues('w3');
  }
  if (want('w5')) {
    log('Scale: the 1,028 public wikis × 5 stages, 44 large ones split into 20 chunks, on gantry up (SQLite)');
    const scaleReps = [];
    for (let r = 0; r < REPS; r++) scaleReps.push(await scale({ log }));
    workloads.scale = medianFields(scaleReps);
    log('W5: one run of ~100,000 no-op handler jobs (1,028 wikis × 97 tasks) on gantry up (SQLite), 4 workers × 10 slots');
    workloads.w5 = await w5({ log });
  }
  if (want('ui')) {
    log('UI: the run view of a 10,000-job run (1,000 wikis × 10 tasks) in headless Chromium, on gantry up (SQLite)');
    workloads.ui = await uiRunView({ log, reps: REPS, workers: 0 });
  }
  const res = { ...machine, repetitions: REPS, quick, only: ONLY ? [...ONLY] : null, versions: queueRes.versions ?? {}, workloads, ratios: null, totalSeconds: 0 };
  res.totalSeconds = Math.round((performance.now() - started) / 100) / 10;

  const summary = summaryTable(res);
  const md = [
    `## Gantry benchmark — ${machine.date.slice(0, 10)}`,
    '',
    `${machine.cpu}, ${machine.cpus} CPUs, ${machine.memory}, Node ${machine.node}, ${machine.platform}` +
      `${res.versions.postgres ? `, PostgreSQL ${res.versions.postgres.split(' ')[0]}` : ''}${res.versions.redis ? `, Redis ${res.versions.redis}` : ''}; ` +
      `${REPS === 1 ? 'one repetition' : `median of ${REPS} repetitions`}, fresh database each${want('w5') ? ' (W5: one run)' : ''}; machine ${machine.busyPercentAtStart}% busy in the second before the start; ${res.totalSeconds} s in all.`,
    '',
    ...(summary ? [summary, '', 'Bold: the best peer. ✓/✗: Gantry against its target. Ratios: Gantry ÷ the best peer (W1: higher is better; W2–W4: lower is better).', ''] : []),
    ...(workloads.w5 ? [w5Table(workloads.w5), ''] : []),
    ...(workloads.ui ? [uiRunViewTable(workloads.ui), ''] : []),
    ...(busy ? [`**Warning:** other work kept the machine ${machine.busyPercentAtStart}% busy at the start; treat these figures with care.`, ''] : []),
    queueNotes(res),
    '',
    '### Kept from before: W4-lite, the chains, the scale case, W1-PG',
    '',
    detailTable(res),
    '',
    notes(res),
    '',
  ].join('\n');
  process.stdout.write(md);
  const outDir = path.join(here, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(res, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'latest.md'), md);
  log(`\nwrote bench/results/latest.{json,md} in ${res.totalSeconds} s`);
  // peer libraries may keep sockets or timers for a while
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
