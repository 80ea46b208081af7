#!/usr/bin/env node
// Gantry's benchmark: scheduling overhead of the embedded system (`gantry up`
// in-process: API server, scheduler, one worker) against plain process
// launchers, and throughput on PostgreSQL against graphile-worker and pg-boss
// (W1-PG, bench/w1pg.js). See bench/README.md for what each workload measures.
//
//   npm run bench                # build, then 3 repetitions per workload (medians)
//   node bench/run.js --quick    # one repetition, against the current dist/
//   node bench/run.js --skip-pg  # without W1-PG (no PostgreSQL needed)
//
// W1-PG needs PostgreSQL (GANTRY_BENCH_PG, default postgres://postgres@127.0.0.1:5432/test;
// skipped with a loud message when there is none) and the peers, dev dependencies
// of the bench only: bench/package.json, installed into bench/node_modules by
// `npm ci --prefix bench` the first time.
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
import { w1pg, W1_CONCURRENCY, W1_JOBS, W1_WORKERS } from './w1pg.js';
import { scale } from './scale.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const skipPg = process.argv.includes('--skip-pg');
const REPS = quick ? 1 : 3;
const SHELL_JOBS = 1000;
const PARALLELISM = 4;
const CHAIN = 200;
const RUN_TIMEOUT_MS = 120_000;
const TERMINAL_RUN = new Set(['succeeded', 'failed', 'cancelled']);
const NOOP_MODULE = path.join(here, 'noop.mjs');
const NOOP_HANDLER = `${NOOP_MODULE}#noop`;

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
    const unsubscribe = store.subscribe((s) => {
      if (s.type === 'events') void check();
    });
    const timer = setTimeout(() => done(new Error(`run ${runId} not finished after ${RUN_TIMEOUT_MS / 1000} s`)), RUN_TIMEOUT_MS);
    void check(); // the run may already be over (it is not, but be safe)
  });
}

/** Starts Gantry in a fresh temp dir, runs `workflow` once, returns timings and the store's records. */
async function gantryRun(tag, name, tasks, expectJobs, inspect) {
  const dir = tmpDir(tag);
  try {
    const yaml = writeWorkflow(dir, name, tasks);
    const up = await startUp({
      db: path.join(dir, 'bench.db'),
      host: '127.0.0.1',
      port: 0,
      workers: 1,
      slots: PARALLELISM,
      apply: [yaml],
      logger: silentLogger(),
    });
    try {
      const startEventId = await up.store.lastEventId();
      const stats = { observerMs: 0 };
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const run0 = await startRun(up.store, { workflow: name });
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
      return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, sysMs: cpu.system / 1000, observerMs: stats.observerMs, runId: run.id, ...extra };
    } finally {
      await up.stop();
    }
  } finally {
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
  timeShell('seq 20 | xargs -P4 -n1 sh -c true');
  await nodePool(20, PARALLELISM);
}

async function w4lite() {
  const reps = [];
  for (let r = 0; r < REPS; r++) {
    const xargsMs = timeShell(`seq ${SHELL_JOBS} | xargs -P${PARALLELISM} -n1 sh -c true`);
    const poolMs = await nodePool(SHELL_JOBS, PARALLELISM);
    const g = await gantryRun(`w4-${r}`, 'bench-shell', independentShell(SHELL_JOBS), SHELL_JOBS);
    reps.push({ gantryMs: g.wallMs, gantryCpuMs: g.cpuMs, gantrySysMs: g.sysMs, observerMs: g.observerMs, xargsMs, nodePoolMs: poolMs });
    log(
      `  w4-lite rep ${r + 1}: gantry ${fmtS(g.wallMs)} (process CPU ${fmtS(g.cpuMs)}, of which sys ${fmtS(g.sysMs)}; observer ${fmtS(g.observerMs)}),` +
        ` xargs ${fmtS(xargsMs)}, node pool ${fmtS(poolMs)}`,
    );
  }
  const gantryMs = median(reps.map((r) => r.gantryMs));
  const xargsMs = median(reps.map((r) => r.xargsMs));
  const nodePoolMs = median(reps.map((r) => r.nodePoolMs));
  const gantryCpuMs = median(reps.map((r) => r.gantryCpuMs));
  const observerMs = median(reps.map((r) => r.observerMs));
  return {
    jobs: SHELL_JOBS,
    parallelism: PARALLELISM,
    reps,
    gantryMs,
    gantryCpuMs,
    observerMs,
    xargsMs,
    nodePoolMs,
    ratio: gantryMs / xargsMs,
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

function w1pgRows(w) {
  const head = `W1-PG: ${W1_JOBS.toLocaleString('en-US')} no-op jobs, ${W1_WORKERS} worker processes × ${W1_CONCURRENCY}, PostgreSQL`;
  if (!w || w.skipped) return [[head, '—', `skipped: ${w?.skipped ?? 'not run (--skip-pg)'}`, '—']];
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
  if (w.peersSkipped) rows.push([`${head}: Gantry`, fmtRate(w.gantry.jobsPerSec), `peers skipped: ${w.peersSkipped}`, '—']);
  if (w.gantry) rows.push([
    `W1-PG: putting the ${w.jobs.toLocaleString('en-US')} jobs in (not in the rates)`,
    `${fmtS(w.gantry.insertMs)} run creation; ${fmtS(w.gantry.validateMs)} validating the ${w.jobs.toLocaleString('en-US')}-task file`,
    ['graphile', 'pgboss'].filter((s) => w[s]).map((s) => `${PEER_NAMES[s]} ${fmtS(w[s].insertMs)}`).join(', ') || '—',
    '—',
  ]);
  return rows;
}

function table(res) {
  const { w4, chainShell, chainHandler } = res.workloads;
  const rows = [
    ['Workload', 'Gantry', 'Baseline', 'Ratio'],
    ['---', '---:', '---:', '---:'],
    [`W4-lite: ${SHELL_JOBS.toLocaleString('en-US')} × \`sh -c true\`, ${PARALLELISM} slots`, fmtS(w4.gantryMs), `${fmtS(w4.xargsMs)} (xargs -P${PARALLELISM})`, `${fmtX(w4.ratio)} (target ≤ 1.30×)`],
    [`Reference: bare Node spawn pool, ${PARALLELISM} at a time`, '—', `${fmtS(w4.nodePoolMs)} (vs xargs ${fmtS(w4.xargsMs)})`, fmtX(w4.nodePoolRatio)],
    [`Chain of ${CHAIN}, shell \`true\`: total`, fmtS(chainShell.wallMs), `${fmtS(chainShell.baselineMs)} (xargs -P1)`, fmtX(chainShell.ratio)],
    [`Chain of ${CHAIN}, shell: hop median / p95`, `${fmtMs(chainShell.hopMedianMs)} / ${fmtMs(chainShell.hopP95Ms)}`, 'target < 10 ms', '—'],
    [`Chain of ${CHAIN}, no-op handler: total`, fmtS(chainHandler.wallMs), `${fmtS(chainHandler.baselineMs)} (${CHAIN} awaited calls)`, '—'],
    [`Chain of ${CHAIN}, handler: hop median / p95`, `${fmtMs(chainHandler.hopMedianMs)} / ${fmtMs(chainHandler.hopP95Ms)}`, 'target < 10 ms', '—'],
    ...scaleRows(res.workloads.scale),
    ...w1pgRows(res.workloads.w1pg),
  ];
  return rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
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
  const { w4, chainShell, chainHandler } = res.workloads;
  return [
    `- W4-lite Gantry: ${fmtS(w4.gantryMs / w4.jobs)} per job at ${w4.parallelism} slots (xargs: ${fmtS(w4.xargsMs / w4.jobs)}); ` +
      `the Gantry process used ${fmtS(w4.gantryCpuMs)} of CPU during the ${fmtS(w4.gantryMs)} run (${fmtS(w4.gantryCpuMs / w4.jobs)} per job), ` +
      `${fmtS(w4.observerMs)} of it the benchmark's own run-completion check.`,
    `- Chain, shell: ${fmtS(chainShell.perJobMs)} per link; median attempt (claim → completion recorded) ${fmtMs(chainShell.attemptMedianMs)}, hop max ${fmtMs(chainShell.hopMaxMs)}.`,
    `- Chain, handler: ${fmtS(chainHandler.perJobMs)} per link; median attempt ${fmtMs(chainHandler.attemptMedianMs)}, hop max ${fmtMs(chainHandler.hopMaxMs)}.`,
    `- Hops come from the store's attempt timestamps (ms resolution): start of t(i+1) − finish of t(i).`,
    ...w1pgNotes(res.workloads.w1pg),
  ].join('\n');
}

// -------------------------------------------------------------------- main

async function main() {
  const started = performance.now();
  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    // Other work on the machine skews everything: how busy it was in the second
    // before the benchmark is recorded, so that a bad run can be told apart.
    busyPercentAtStart: await machineBusyPercent(1000),
  };
  log(`gantry bench: ${REPS} repetition(s)${quick ? ' (--quick)' : ''} on ${machine.cpu} × ${machine.cpus}, node ${machine.node}`);
  const busy = machine.busyPercentAtStart > 20;
  if (busy) log(`warning: the machine was ${machine.busyPercentAtStart}% busy before the start: other work will skew the figures`);
  await warmUp();
  log('W4-lite: 1,000 no-op shell jobs at parallelism 4');
  const w4 = await w4lite();
  log('Chain of 200: shell');
  const chainShell = await chain('shell');
  log('Chain of 200: handler');
  const chainHandler = await chain('handler');
  log('Scale: the 1,028 public wikis × 5 stages, 44 large ones split into 20 chunks, on gantry up (SQLite)');
  const scaleReps = [];
  for (let r = 0; r < REPS; r++) scaleReps.push(await scale({ log }));
  const scaleRes = medianFields(scaleReps);
  let w1 = null;
  if (!skipPg) {
    log('W1-PG: 10,000 no-op jobs, 4 worker processes, PostgreSQL: Gantry, graphile-worker, pg-boss');
    w1 = await w1pg({ reps: REPS, log });
  }
  const res = { ...machine, repetitions: REPS, quick, workloads: { w4, chainShell, chainHandler, scale: scaleRes, w1pg: w1 }, totalSeconds: 0 };
  res.totalSeconds = Math.round((performance.now() - started) / 100) / 10;

  const md = [
    `## Gantry benchmark — ${machine.date.slice(0, 10)}`,
    '',
    `${machine.cpu}, ${machine.cpus} CPUs, Node ${machine.node}, ${machine.platform}; ${REPS === 1 ? 'one repetition' : `median of ${REPS} repetitions`}, fresh database each; machine ${machine.busyPercentAtStart}% busy in the second before the start.`,
    '',
    table(res),
    '',
    ...(busy ? [`**Warning:** other work kept the machine ${machine.busyPercentAtStart}% busy at the start; treat these figures with care.`, ''] : []),
    notes(res),
    '',
  ].join('\n');
  process.stdout.write(md);
  const outDir = path.join(here, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(res, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'latest.md'), md);
  log(`\nwrote bench/results/latest.{json,md} in ${res.totalSeconds} s`);
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
