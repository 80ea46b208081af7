// Scale: one run of the dumps shape over every public Wikimedia wiki — a
// foreach over the 1,028 wikis of ../shared/data/wikimedia/public.dblist, each
// a 5-stage pipeline (a sub-workflow) whose `articles` stage splits into 20
// chunks for the 44 large wikis (large.dblist) and into none for the others —
// created and drained by `gantry up` (one process: API, scheduler, workers) on
// SQLite with no-op handlers. Measured: run creation (the API call), drain,
// peak RSS of the process, and how long `GET /api/v1/runs/:id` (what `gantry
// status RUN` asks) takes while the run drains. Used by bench/run.js.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const DATA = path.resolve(root, '..', 'shared', 'data', 'wikimedia');
const STATUS_EVERY_MS = 250;
const DRAIN_TIMEOUT_MS = 600_000;

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

function writeWorkflows(dir, large) {
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

export async function scale({ log }) {
  const wikis = dblist('public.dblist');
  const large = dblist('large.dblist');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-scale-'));
  writeWorkflows(dir, large);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}/api/v1`;
  const child = spawn(
    process.execPath,
    [path.join(root, 'bin', 'gantry.js'), 'up', dir, '--db', path.join(dir, 'gantry.db'), '--port', String(port), '--workers', '2', '--slots', '8'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, GANTRY_LOG_LEVEL: 'warn' } },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`gantry up exited: ${stderr}`);
      const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 600) throw new Error('gantry up did not become ready in 60 s');
      await sleep(100);
    }
    const t0 = performance.now();
    const res = await fetch(`${base}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow: 'dumps-all', params: { wikis } }) });
    const createMs = performance.now() - t0;
    const run = await res.json();
    if (res.status !== 201) throw new Error(`creating the run failed: ${res.status} ${JSON.stringify(run)}`);
    log(`  scale: run ${run.id} created in ${Math.round(createMs)} ms (${wikis.length} wikis, ${large.length} large)`);
    const statusMs = [];
    let state = run.state;
    let jobs = 0;
    while (!['succeeded', 'failed', 'cancelled'].includes(state)) {
      if (performance.now() - t0 > DRAIN_TIMEOUT_MS) throw new Error('the scale run did not finish in 10 minutes');
      await sleep(STATUS_EVERY_MS);
      const s0 = performance.now();
      const r = await fetch(`${base}/runs/${run.id}`);
      const body = await r.json();
      statusMs.push(performance.now() - s0);
      state = body.state;
      jobs = body.jobs?.length ?? jobs;
    }
    const totalMs = performance.now() - t0;
    // the same call once the run is over: what it costs without the drain competing for the process
    const i0 = performance.now();
    await (await fetch(`${base}/runs/${run.id}`)).json();
    const statusIdleMs = performance.now() - i0;
    const rss = peakRss(child.pid);
    if (state !== 'succeeded') throw new Error(`benchmark sanity check failed: the scale run ended ${state}`);
    const expected = wikis.length * 6 + large.length * 20;
    if (jobs !== expected) throw new Error(`benchmark sanity check failed: the scale run has ${jobs} jobs, expected ${expected}`);
    const out = {
      wikis: wikis.length,
      large: large.length,
      jobs,
      createMs,
      totalMs,
      drainMs: totalMs - createMs,
      peakRssBytes: rss,
      statusSamples: statusMs.length,
      statusMedianMs: pct(statusMs, 50),
      statusP95Ms: pct(statusMs, 95),
      statusMaxMs: Math.max(...statusMs),
      statusIdleMs,
    };
    log(
      `  scale: ${jobs} jobs in ${(totalMs / 1000).toFixed(1)} s; peak RSS ${Math.round(rss / 2 ** 20)} MB; ` +
        `status during the drain: median ${Math.round(out.statusMedianMs)} ms, p95 ${Math.round(out.statusP95Ms)} ms, max ${Math.round(out.statusMaxMs)} ms (${statusMs.length} calls); after it: ${Math.round(statusIdleMs)} ms`,
    );
    return out;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
