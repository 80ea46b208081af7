// The web UI on a big run (`node bench/run.js --only ui`, or `node bench/uiRunView.mjs`):
// a run of 10,000 jobs (a foreach over 1,000 wikis × a 10-task sub-workflow)
// on `gantry up` (SQLite, in-process; no worker by default, so that the figure
// is the view's, not a drain's: `workers: N` drains it meanwhile), its run
// view opened in headless Chromium (Debian's, through playwright-core).
//
// Measured, median of `reps` cold page loads (a fresh browser context each):
// - openMs: navigation start → the DAG drawn (the collapsed foreach node on screen);
// - clickMs: a click on that node → the foreach opened (the server counts and
//   groups 10,000 jobs; the page draws the first 100 copies, those in trouble or
//   at work first, and the other 900 as one node);
// - interactiveMs: openMs + clickMs: the page open and its first click answered. Target < 2 s.
// - graphApiColdMs / graphApiMs: GET /api/v1/runs/:id/graph alone (the closed view), the first call and
//   the median of 4 more (answered from the server's cache while no event happened, 2 s at most).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';
import { startUp } from '../dist/up.js';
import { startRun } from '../dist/server/runs.js';
import { silentLogger } from '../dist/log.js';
import { loadDefinitionFiles } from '../dist/spec/parse.js';

export const UI_WIKIS = 1000;
export const UI_TASKS = 10;
const TARGET_MS = 2000;
const CHROMIUM = process.env.GANTRY_CHROMIUM ?? '/usr/bin/chromium';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

function writeWorkflows(dir) {
  fs.writeFileSync(path.join(dir, 'steps.mjs'), 'export async function noop() {}\n');
  fs.writeFileSync(
    path.join(dir, 'all.yaml'),
    `name: ui-all
params: { wikis: { required: true } }
tasks:
  prep: { handler: "steps.mjs#noop" }
  dump:
    needs: [prep]
    workflow: ui-wiki
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}" }
  index: { needs: [dump], handler: "steps.mjs#noop" }
`,
  );
  // 10 tasks per wiki: stubs, 7 stages that need it, checksums that needs them, publish
  const mid = ['articles', 'abstracts', 'meta', 'history', 'logs', 'titles', 'redirects'];
  const lines = ['name: ui-wiki', 'params: { wiki: { required: true } }', 'defaults: { retries: 0 }', 'tasks:', '  stubs: { handler: "steps.mjs#noop" }'];
  for (const t of mid) lines.push(`  ${t}: { needs: [stubs], handler: "steps.mjs#noop" }`);
  lines.push(`  checksums: { needs: [${mid.join(', ')}], handler: "steps.mjs#noop" }`);
  lines.push('  publish: { needs: [checksums], handler: "steps.mjs#noop" }');
  fs.writeFileSync(path.join(dir, 'one.yaml'), lines.join('\n') + '\n');
}

export async function uiRunView({ log = () => {}, reps = 3, workers = 0 } = {}) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-ui-'));
  writeWorkflows(dir);
  const up = await startUp({ db: path.join(dir, 'gantry.db'), host: '127.0.0.1', port: 0, workers, slots: 4, stateDir: dir, logger: silentLogger() });
  let browser = null;
  try {
    const { definitions, errors } = loadDefinitionFiles([path.join(dir, 'all.yaml'), path.join(dir, 'one.yaml')]);
    if (errors.length) throw new Error(errors.map((e) => e.message).join('\n'));
    await up.store.putDefinitions(definitions);
    const wikis = Array.from({ length: UI_WIKIS }, (_, i) => `wiki${String(i).padStart(4, '0')}`);
    const t0 = performance.now();
    const run = await startRun(up.store, { workflow: 'ui-all', params: { wikis } });
    const createMs = performance.now() - t0;
    const jobs = (await up.store.runTaskCounts(run.id)).reduce((n, r) => n + r.count, 0);
    log(`  run ${run.id}: ${jobs.toLocaleString('en-US')} jobs, created in ${Math.round(createMs)} ms`);

    const apiMs = [];
    for (let i = 0; i < 5; i++) {
      const a = performance.now();
      const r = await fetch(`${up.url}/api/v1/runs/${run.id}/graph`);
      await r.json();
      apiMs.push(performance.now() - a);
    }

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    const samples = [];
    for (let i = 0; i < reps; i++) {
      const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
      const page = await context.newPage();
      const start = Date.now();
      await page.goto(`${up.url}/runs/${run.id}`, { waitUntil: 'commit' });
      await page.waitForSelector('[data-node="dump"]', { state: 'visible', timeout: 60_000 });
      const navStart = await page.evaluate(() => performance.timeOrigin);
      const openMs = Date.now() - Math.min(start, navStart);
      const c = Date.now();
      await page.click('[data-node="dump"]');
      await page.waitForSelector('[data-node="dump[wiki0000]"]', { state: 'attached', timeout: 60_000 });
      await page.waitForSelector('[data-node="dump…"]', { state: 'attached', timeout: 60_000 });
      const clickMs = Date.now() - c;
      const fetchMs = await page.evaluate(() => {
        const e = performance.getEntriesByType('resource').filter((r) => r.name.includes('expand=dump'));
        return e.length ? Math.round(e[0].duration) : null;
      });
      const openFetchMs = await page.evaluate(() => {
        const e = performance.getEntriesByType('resource').filter((r) => /\/graph$/.test(r.name));
        return e.length ? Math.round(e[0].duration) : null;
      });
      log(`    graph fetch on open ${openFetchMs} ms, on click ${fetchMs} ms`);
      samples.push({ openMs, clickMs, interactiveMs: openMs + clickMs });
      log(`  rep ${i + 1}: drawn ${openMs} ms after navigation, click answered in ${clickMs} ms`);
      await context.close();
    }
    const state = (await up.store.getRun(run.id)).state;
    return {
      workers,
      jobs,
      wikis: UI_WIKIS,
      tasksPerWiki: UI_TASKS,
      runState: state,
      createMs: Math.round(createMs),
      graphApiColdMs: Math.round(apiMs[0]),
      graphApiMs: Math.round(median(apiMs.slice(1))),
      openMs: median(samples.map((s) => s.openMs)),
      clickMs: median(samples.map((s) => s.clickMs)),
      interactiveMs: median(samples.map((s) => s.interactiveMs)),
      targetMs: TARGET_MS,
      reps: samples,
    };
  } finally {
    await browser?.close();
    await up.stop(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The bench report's lines for this workload. */
export function uiRunViewTable(x) {
  const ok = x.interactiveMs < x.targetMs ? '✓' : '✗';
  return [
    `| UI: the run view of a ${x.jobs.toLocaleString('en-US')}-job run (foreach over ${x.wikis.toLocaleString('en-US')} wikis × ${x.tasksPerWiki} tasks) in headless Chromium | Gantry | Target |`,
    '|---|---|---|',
    `| open → DAG drawn | ${x.openMs} ms | |`,
    `| click on the collapsed foreach → opened (100 copies drawn, ${(x.wikis - 100).toLocaleString('en-US')} as one node) | ${x.clickMs} ms | |`,
    `| interactive (drawn + first click answered) | ${x.interactiveMs} ms ${ok} | < ${x.targetMs} ms |`,
    `| GET /api/v1/runs/:id/graph (closed view): first, then again (nothing changed: answered from its cache) | ${x.graphApiColdMs} ms, ${x.graphApiMs} ms | |`,
  ].join('\n');
}

// on its own: node bench/uiRunView.mjs
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await uiRunView({ log: (s) => process.stderr.write(s + '\n'), workers: Number(process.env.UI_BENCH_WORKERS ?? 0) });
  process.stdout.write(uiRunViewTable(r) + '\n');
  process.exit(0);
}
