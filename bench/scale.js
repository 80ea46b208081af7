// Large runs on `gantry up` (one process: API, scheduler, workers) on SQLite
// with no-op handlers, both a foreach over the 1,028 public wikis of
// ../shared/data/wikimedia/public.dblist. Used by bench/run.js.
//
// scale(): the dumps shape — each wiki a 5-stage pipeline (a sub-workflow)
// whose `articles` stage splits into 20 chunks for the 44 large wikis
// (large.dblist) and into none for the others (~7,000 jobs).
// w5(): ~100,000 jobs — each wiki a sub-workflow of 97 no-op tasks (one first
// task, 95 that need it, one that needs the 95): 1,028 × 97 = 99,716 jobs (a
// sub-workflow adds no job of its own).
//
// Measured: run creation (the API call), drain, peak RSS of the process, and
// how long `GET /api/v1/runs/:id` (what `gantry status RUN` asks) takes while
// the run drains; for W5 also the real `gantry status RUN` CLI (wall time and
// peak RSS of its process) a few times during the drain.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const DATA = path.resolve(root, '..', 'shared', 'data', 'wikimedia');
const DRAIN_TIMEOUT_MS = 600_000;
/** W5's sub-workflow: 97 tasks, so that 1,028 wikis make ~100,000 handler jobs */
export const W5_TASKS = 97;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

function dblist(name) {
  return fs
    .readFileSync(path.join(DATA, name), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** VmHWM: the peak resident set of a live process, in bytes. */
function peakRss(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function writeScaleWorkflows(dir, large) {
  fs.writeFileSync(
    path.join(dir, 'steps.mjs'),
    `const LARGE = new Set(${JSON.stringify(large)});
export async function noop() {}
export async function plan(ctx) { return LARGE.has(ctx.params.wiki) ? Array.from({ length: 20 }, (_, i) => ({ part: i })) : []; }
`,
  );
  fs.writeFileSync(
    path.join(dir, 'all.yaml'),
    `name: dumps-all
params: { wikis: { required: true } }
tasks:
  dump:
    workflow: dumps-one
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}" }
`,
  );
  fs.writeFileSync(
    path.join(dir, 'one.yaml'),
    `name: dumps-one
params: { wiki: { required: true } }
defaults: { retries: 0 }
tasks:
  stubs: { handler: "steps.mjs#noop" }
  articles:
    needs: [stubs]
    split: { handler: "steps.mjs#plan" }
    handler: "steps.mjs#noop"
  meta: { needs: [stubs], handler: "steps.mjs#noop" }
  compress: { needs: [articles], handler: "steps.mjs#noop" }
  publish: { needs: [compress, meta], handler: "steps.mjs#noop" }
`,
  );
}

function writeW5Workflows(dir) {
  fs.writeFileSync(path.join(dir, 'steps.mjs'), 'export async function noop() {}\n');
  fs.writeFileSync(
    path.join(dir, 'all.yaml'),
    `name: w5-all
params: { wikis: { required: true } }
tasks:
  wiki:
    workflow: w5-wiki
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}" }
`,
  );
  const mid = Array.from({ length: W5_TASKS - 2 }, (_, i) => `s${i + 1}`);
  const lines = ['name: w5-wiki', 'params: { wiki: { required: true } }', 'defaults: { retries: 0 }', 'tasks:', '  s0: { handler: "steps.mjs#noop" }'];
  for (const t of mid) lines.push(`  ${t}: { needs: [s0], handler: "steps.mjs#noop" }`);
  lines.push(`  s${W5_TASKS - 1}: { needs: [${mid.join(', ')}], handler: "steps.mjs#noop" }`);
  fs.writeFileSync(path.join(dir, 'one.yaml'), lines.join('\n') + '\n');
}

/**
 * `gantry status RUN` (the real CLI, output thrown away) under GNU time: wall ms and peak RSS bytes of its
 * process. It runs in the server's folder, as an operator would, and so presents that server's gantry.token.
 */
function cliStatus(server, runId, dir) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, path.join(root, 'bin', 'gantry.js'), '--server', server, 'status', String(runId)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 1 << 20,
    cwd: dir,
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`gantry status ${runId} exited ${r.status ?? r.signal}: ${r.stderr?.slice(-500)}`);
  const kb = Number(r.stderr.trim().split('\n').pop());
  return { ms, rssBytes: Number.isFinite(kb) ? kb * 1024 : NaN };
}

/**
 * Starts `gantry up` on `dir`, creates a run of `workflow` over every public wiki
 * through the API, polls the run (cheaply, by the runs list) until it is over,
 * and every `statusEveryMs` times `GET /runs/:id`; returns the figures.
 */
async function upRun({ log, tag, dir, workflow, expectedJobs, workers, slots, statusEveryMs, cliEvery = 0, heapCapMb = null }) {
  const wikis = dblist('public.dblist');
  const port = await freePort();
  const server = `http://127.0.0.1:${port}`;
  const base = `${server}/api/v1`;
  const child = spawn(
    process.execPath,
    [path.join(root, 'bin', 'gantry.js'), 'up', dir, '--db', path.join(dir, 'gantry.db'), '--port', String(port), '--workers', String(workers), '--slots', String(slots)],
    {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, GANTRY_LOG_LEVEL: 'warn', ...(heapCapMb ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${heapCapMb}`.trim() } : {}) },
    },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-8000)));
  let out;
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`gantry up exited: ${stderr}`);
      const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 600) throw new Error('gantry up did not become ready in 60 s');
      await sleep(100);
    }
    const rssBefore = peakRss(child.pid);
    const t0 = performance.now();
    // the admin token its first start wrote into its working directory
    const token = fs.readFileSync(path.join(dir, 'gantry.token'), 'utf8').trim();
    const res = await fetch(`${base}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ workflow, params: { wikis } }),
    });
    const createMs = performance.now() - t0;
    const rssAfterCreate = peakRss(child.pid);
    const run = await res.json();
    if (res.status !== 201) throw new Error(`creating the run failed: ${res.status} ${JSON.stringify(run)}`);
    log(`  ${tag}: run ${run.id} created in ${Math.round(createMs)} ms (${wikis.length} wikis)`);
    const statusMs = [];
    const statusBytes = [];
    const statusJobCounts = [];
    const listedModes = new Set();
    const cli = [];
    let state = run.state;
    let lastStatus = performance.now();
    let endMs = NaN;
    while (!['succeeded', 'failed', 'cancelled'].includes(state)) {
      if (performance.now() - t0 > DRAIN_TIMEOUT_MS) throw new Error(`the ${tag} run did not finish in ${DRAIN_TIMEOUT_MS / 60_000} minutes`);
      await sleep(100);
      // is it over? (the runs list: one row and its job counts, cheap next to the run's status)
      const list = await (await fetch(`${base}/runs?workflow=${workflow}&limit=1`)).json();
      state = list.runs?.[0]?.id === run.id ? list.runs[0].state : state;
      if (['succeeded', 'failed', 'cancelled'].includes(state)) {
        endMs = performance.now();
        break;
      }
      if (performance.now() - lastStatus < statusEveryMs) continue;
      if (cliEvery && statusMs.length % cliEvery === cliEvery - 1) cli.push(cliStatus(server, run.id, dir));
      const s0 = performance.now();
      const r = await fetch(`${base}/runs/${run.id}`);
      const text = await r.text();
      statusMs.push(performance.now() - s0);
      statusBytes.push(text.length);
      const st = JSON.parse(text);
      statusJobCounts.push(st.jobs?.length);
      listedModes.add(st.jobsListed ?? 'all');
      state = st.state;
      lastStatus = performance.now();
      if (['succeeded', 'failed', 'cancelled'].includes(state)) endMs = performance.now();
    }
    const totalMs = endMs - t0;
    // the same call once the run is over: what it costs without the drain competing for the process
    const i0 = performance.now();
    const body = await (await fetch(`${base}/runs/${run.id}`)).json();
    const statusIdleMs = performance.now() - i0;
    const rss = peakRss(child.pid);
    if (state !== 'succeeded') throw new Error(`benchmark sanity check failed: the ${tag} run ended ${state}`);
    const statusJobs = body.jobs?.length;
    out = {
      runId: run.id,
      wikis: wikis.length,
      jobs: body.counts?.succeeded,
      counts: body.counts,
      statusJobs,
      createMs,
      totalMs,
      drainMs: totalMs - createMs,
      peakRssBytes: rss,
      idleRssBytes: rssBefore,
      peakRssAfterCreateBytes: rssAfterCreate,
      statusSamples: statusMs.length,
      statusMedianMs: pct(statusMs, 50),
      statusP95Ms: pct(statusMs, 95),
      statusMaxMs: statusMs.length ? Math.max(...statusMs) : NaN,
      statusBytes: pct(statusBytes, 50),
      statusJobsListed: pct(statusJobCounts, 50),
      statusListing: [...listedModes].join('/'),
      heapCapMb,
      statusIdleMs,
      ...(cliEvery
        ? { cliStatusSamples: cli.length, cliStatusMedianMs: pct(cli.map((c) => c.ms), 50), cliStatusMaxMs: Math.max(...cli.map((c) => c.ms)), cliPeakRssBytes: Math.max(...cli.map((c) => c.rssBytes)) }
        : {}),
    };
    log(
      `  ${tag}: ${out.jobs} jobs in ${(totalMs / 1000).toFixed(1)} s; peak RSS ${Math.round(rss / 2 ** 20)} MB; ` +
        `status during the drain: median ${Math.round(out.statusMedianMs)} ms, p95 ${Math.round(out.statusP95Ms)} ms, max ${Math.round(out.statusMaxMs)} ms (${statusMs.length} calls, ${(out.statusBytes / 2 ** 20).toFixed(1)} MB each); after it: ${Math.round(statusIdleMs)} ms` +
        (cliEvery ? `; \`gantry status\` CLI: median ${Math.round(out.cliStatusMedianMs)} ms, peak RSS ${Math.round(out.cliPeakRssBytes / 2 ** 20)} MB (${cli.length} calls)` : ''),
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  }
  // Every job ran exactly once: read from the database once `gantry up` is gone (the API's
  // run status lists at most 10,000 jobs).
  const db = new Database(path.join(dir, 'gantry.db'), { readonly: true });
  try {
    const r = db
      .prepare(
        `SELECT count(*) AS n, sum(state = 'succeeded') AS ok, sum(attempts > 1) AS retried, (SELECT count(*) FROM attempts) AS attempts,
                (SELECT count(*) FROM (SELECT job_id FROM attempts GROUP BY job_id HAVING count(*) > 1)) AS twice FROM jobs`,
      )
      .get();
    if (r.n !== expectedJobs || r.ok !== expectedJobs || r.retried !== 0 || r.twice !== 0)
      throw new Error(
        `benchmark sanity check failed: the ${tag} run has ${r.n} jobs, ${r.ok} succeeded, ${r.retried} retried, ${r.twice} with more than one attempt; expected ${expectedJobs} succeeded at their first attempt`,
      );
    if (out.jobs !== expectedJobs) throw new Error(`benchmark sanity check failed: the ${tag} run's status counts ${out.jobs} succeeded jobs, expected ${expectedJobs}`);
    out.attempts = r.attempts;
  } finally {
    db.close();
  }
  return out;
}

/** ~7,000 jobs: the dumps shape over every public wiki (bench/run.js: "Scale") */
export async function scale({ log }) {
  const large = dblist('large.dblist');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-scale-'));
  try {
    writeScaleWorkflows(dir, large);
    const wikis = dblist('public.dblist').length;
    const out = await upRun({ log, tag: 'scale', dir, workflow: 'dumps-all', expectedJobs: wikis * 6 + large.length * 20, workers: 2, slots: 8, statusEveryMs: 250 });
    return { ...out, large: large.length };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** W5: ~100,000 no-op handler jobs, 4 workers × 10 slots; `GET /runs/:id` every 2 s, the CLI every 3rd time */
export async function w5({ log }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-w5-'));
  try {
    writeW5Workflows(dir);
    const wikis = dblist('public.dblist').length;
    // V8 grows its heap lazily: uncapped, the process holds ~400 MB of garbage at the end of this
    // drain although its live heap fits in 160 MB (measured with --max-old-space-size=160). The
    // README advises this cap for big runs; the table states it.
    const out = await upRun({ log, tag: 'w5', dir, workflow: 'w5-all', expectedJobs: wikis * W5_TASKS, workers: 4, slots: 10, statusEveryMs: 2000, cliEvery: 3, heapCapMb: 256 });
    return { ...out, tasksPerWiki: W5_TASKS };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
