// The web UI end to end, in real headless Chromium against a real `gantry up`
// (2 workers, the bundled examples copied to a temp dir): start the dumps
// example from the params form and watch its tasks turn green live, open a
// collapsed foreach pipeline, read a job's log, cancel a running job, change a
// pool's slots in place, and check that a viewer token cannot act.
// Screenshots of every page: test-artifacts/ui/.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ROOT, cleanup, startUp, tempDir, writeFile, type UpProcess } from '../e2e/helpers.js';
import { launch, screenshot, uiTestsUnavailable } from './browser.js';

const unavailable = uiTestsUnavailable();
const T = 30_000;

describe.skipIf(unavailable !== null)(`web UI in Chromium${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let up: UpProcess;
  let browser: Browser;
  let page: Page;
  let adminToken: string | null = null;
  let authAvailable = false;

  const api = async <B = unknown>(method: string, p: string, body?: unknown, tok = adminToken): Promise<{ status: number; body: B }> => {
    const r = await fetch(up.url + p, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as B };
  };

  const login = async (tok: string) => {
    await page.goto(`${up.url}/login`);
    await page.fill('[data-testid="token-input"]', tok);
    await page.click('[data-testid="login-submit"]');
    await page.waitForSelector('[data-testid="overview"]', { timeout: T });
  };

  beforeAll(async () => {
    const dir = tempDir('gantry-ui-');
    // the examples write their outputs next to themselves: a fresh copy, so nothing is skipped as already done
    // (the YAML ones: the TypeScript example imports the `gantry` package, which a temp dir cannot resolve)
    fs.cpSync(path.join(ROOT, 'examples'), path.join(dir, 'examples'), {
      recursive: true,
      filter: (src) => !src.includes(`${path.sep}out`) && !src.includes(`${path.sep}sdk`),
    });
    writeFile(
      dir,
      'examples/slow.yaml',
      `name: slow
tasks:
  nap:
    run: echo napping; sleep 120
    pool: naps
`,
    );
    up = await startUp(dir, ['--workers', '2', '--slots', '3', path.join(dir, 'examples')], 60_000);
    const tokenFile = path.join(dir, '.gantry', 'gantry.token');
    if (fs.existsSync(tokenFile)) adminToken = fs.readFileSync(tokenFile, 'utf8').trim();
    authAvailable = (await api('GET', '/api/v1/auth/whoami')).status !== 404;
    expect((await api('PUT', '/api/v1/pools/naps', { slots: 2 })).status).toBe(200);
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
    page.on('dialog', (d) => void d.accept());
    page.setDefaultTimeout(T);
    // logged in as `gantry up` says: the link it prints (reads need a token: nothing is public)
    const link = /log in a browser: (\S+)/.exec(up.stdout())?.[1];
    expect(link, up.stdout()).toBe(`${up.url}/?token=${adminToken}`);
    await page.goto(link!);
    await page.waitForSelector('[data-testid="overview"]', { timeout: T });
  }, 120_000);

  it('the login link gantry up prints logs the browser in: admin, the token out of the address bar, live updates flowing', async () => {
    await page.waitForSelector('[data-testid="who"]');
    expect(await page.textContent('[data-testid="who"]')).toContain('admin');
    expect(page.url()).not.toContain('token=');
    // the event stream carries the token too (it is refused without one)
    await page.waitForSelector('[data-testid="live"].on');
    // a fresh browser without the link sees nothing: the API refuses it
    const stranger = await browser.newPage();
    await stranger.goto(`${up.url}/runs`);
    await stranger.waitForSelector('[data-testid="who"]');
    expect(await stranger.textContent('[data-testid="who"]')).toContain('not logged in');
    await stranger.waitForSelector('text=/needs an API token/');
    await screenshot(stranger, 'not-logged-in');
    await stranger.close();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await up?.stop();
    await cleanup();
  });

  it('starts the dumps example from the params form and watches its tasks turn green live', async () => {
    await page.goto(`${up.url}/workflows`);
    await page.click('[data-testid="start-dumps"]');
    await page.waitForSelector('[data-testid="start-run-form"]');
    await page.fill('[data-param="wiki"]', 'uiwiki');
    await page.fill('[data-param="pages"]', '3000');
    await screenshot(page, 'workflows-start-run');
    await page.click('[data-testid="start-run-submit"]');
    await page.waitForSelector('[data-testid="run"]');
    expect(page.url()).toMatch(/\/runs\/\d+/);
    // the page is not reloaded from here on: the states arrive over the event stream
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
    await page.waitForSelector('[data-node="stubs"]');
    const first = await page.getAttribute('[data-node="publish"]', 'data-state');
    expect(first).not.toBe('succeeded');
    await page.waitForSelector('[data-node="stubs"][data-state="succeeded"]', { timeout: 60_000 });
    await screenshot(page, 'run-graph-live');
    await page.waitForSelector('[data-testid="run"][data-run-state="succeeded"]', { timeout: 90_000 });
    for (const t of ['stubs', 'articles', 'abstracts', 'compress', 'checksums', 'publish'])
      expect(await page.getAttribute(`[data-node="${t}"]`, 'data-state'), t).toBe('succeeded');
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
    await screenshot(page, 'run-graph-succeeded');
    await page.click('[data-testid="tab-timeline"]');
    await page.waitForSelector('[data-testid="timeline"] .tl-bar.bg-succeeded');
    await screenshot(page, 'run-timeline');
    await page.click('[data-testid="tab-jobs"]');
    await page.waitForSelector('[data-testid="jobs-list"] [data-job$=":publish"]');
    await screenshot(page, 'run-jobs');
  }, 150_000);

  it("opens a collapsed foreach pipeline, then a job's log", async () => {
    const r = await api<{ id: number }>('POST', '/api/v1/runs', { workflow: 'dumps-many', params: { wikis: ['alpha', 'beta'], pages: 1000 } });
    expect(r.status).toBe(201);
    await page.goto(`${up.url}/runs/${r.body.id}`);
    await page.waitForSelector('[data-node="dump"][data-kind="foreach"]');
    expect(await page.locator('[data-node="dump[alpha]"]').count()).toBe(0);
    await page.click('[data-node="dump"]');
    await page.waitForSelector('[data-node="dump[alpha]"][data-kind="pipeline"]');
    await page.waitForSelector('[data-node="dump[beta]"]');
    await page.click('[data-node="dump[alpha]"]');
    await page.waitForSelector('[data-node="dump[alpha].stubs"]');
    await page.waitForSelector('[data-node="dump[alpha].publish"]');
    await screenshot(page, 'run-pipeline-expanded');
    await page.waitForSelector('[data-node="dump[alpha].stubs"][data-state="succeeded"]', { timeout: 60_000 });
    await page.click('[data-node="dump[alpha].stubs"]');
    await page.waitForSelector(`[data-testid="job-panel"][data-job="${r.body.id}:dump[alpha].stubs"]`);
    await page.waitForFunction(() => /attempt 1 of/.test(document.querySelector('[data-testid="log"]')?.textContent ?? ''));
    await screenshot(page, 'job-log');
    await page.waitForSelector('[data-testid="run"][data-run-state="succeeded"]', { timeout: 90_000 });
  }, 150_000);

  it('cancels a running job from its panel', async () => {
    const r = await api<{ id: number }>('POST', '/api/v1/runs', { workflow: 'slow' });
    expect(r.status).toBe(201);
    await page.goto(`${up.url}/runs/${r.body.id}?job=${encodeURIComponent(`${r.body.id}:nap`)}`);
    await page.waitForSelector('[data-node="nap"][data-state="running"]', { timeout: 60_000 });
    await page.waitForFunction(() => /napping/.test(document.querySelector('[data-testid="log"]')?.textContent ?? ''));
    await screenshot(page, 'job-running');
    await page.click('[data-testid="cancel-job"]');
    await page.waitForSelector('[data-node="nap"][data-state="cancelled"]');
    await page.waitForSelector('[data-testid="job-panel"][data-state="cancelled"]');
    await page.waitForSelector('[data-testid="run"][data-run-state="cancelled"]');
    expect((await api<{ state: string }>('GET', `/api/v1/jobs/${encodeURIComponent(`${r.body.id}:nap`)}`)).body.state).toBe('cancelled');
    await screenshot(page, 'job-cancelled');
  }, 120_000);

  it("changes a pool's slots in place", async () => {
    await page.goto(`${up.url}/pools`);
    await page.waitForSelector('[data-testid="slots-naps"]:text-is("2")');
    await page.click('[data-testid="edit-slots-naps"]');
    await page.fill('[data-testid="slots-input-naps"]', '5');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid="slots-naps"]:text-is("5")');
    const pools = (await api<{ pools: { name: string; slots: number | null }[] }>('GET', '/api/v1/pools')).body.pools;
    expect(pools.find((p) => p.name === 'naps')?.slots).toBe(5);
    await screenshot(page, 'pools');
  }, 60_000);

  it('shows every other page: overview, runs filtered by label, workers, services', async () => {
    await page.goto(`${up.url}/`);
    await page.waitForSelector('[data-testid="throughput"]');
    expect(Number(await page.textContent('[data-testid="runs-succeeded"]'))).toBeGreaterThanOrEqual(2);
    await screenshot(page, 'overview');
    await page.goto(`${up.url}/runs?label=project%3Duiwiki`);
    await page.waitForSelector('[data-testid="runs"] tr[data-run]');
    expect(await page.locator('[data-testid="runs"] tr[data-run]').count()).toBe(1);
    await screenshot(page, 'runs');
    await page.goto(`${up.url}/workers`);
    await page.waitForSelector('[data-testid="workers"] tr[data-worker]');
    expect(await page.locator('[data-testid="workers"] tr[data-worker]').count()).toBe(2);
    await screenshot(page, 'workers');
    await page.goto(`${up.url}/services`);
    await page.waitForSelector('[data-testid="services"] .empty, [data-testid="services"] table');
    await screenshot(page, 'services');
  }, 60_000);

  it('a viewer token cannot act: no action is offered, and the API refuses it', async (ctx) => {
    if (!authAvailable) {
      ctx.skip('auth is not on this server yet (GET /api/v1/auth/whoami is 404): every action is allowed');
      return;
    }
    const created = await api<{ token: string }>('POST', '/api/v1/tokens', { namespace: 'default', role: 'viewer' });
    expect(created.status, JSON.stringify(created.body)).toBeLessThan(300);
    const viewer = created.body.token;
    await login(viewer);
    expect(await page.textContent('[data-testid="who"]')).toContain('viewer');
    await page.goto(`${up.url}/workflows`);
    await page.waitForSelector('[data-workflow="dumps"]');
    expect(await page.locator('[data-testid="start-dumps"]').count()).toBe(0);
    await page.goto(`${up.url}/pools`);
    await page.waitForSelector('[data-pool="naps"]');
    expect(await page.locator('[data-testid="edit-slots-naps"]').count()).toBe(0);
    await page.goto(`${up.url}/workers`);
    await page.waitForSelector('[data-testid="workers"] tr[data-worker]');
    expect(await page.locator('[data-testid^="drain-"]').count()).toBe(0);
    const run = await api<{ id: number }>('POST', '/api/v1/runs', { workflow: 'slow' });
    await page.goto(`${up.url}/runs/${run.body.id}?job=${encodeURIComponent(`${run.body.id}:nap`)}`);
    await page.waitForSelector('[data-testid="job-panel"][data-state]');
    expect(await page.locator('[data-testid="cancel-run"], [data-testid="cancel-job"], [data-testid="force-rerun"]').count()).toBe(0);
    await screenshot(page, 'viewer-run');
    expect((await api('PUT', '/api/v1/pools/naps', { slots: 1 }, viewer)).status).toBe(403);
    expect((await api('POST', `/api/v1/runs/${run.body.id}/cancel`, {}, viewer)).status).toBe(403);
    await api('POST', `/api/v1/runs/${run.body.id}/cancel`, {});
  }, 90_000);
});
