// Real headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core,
// for the web UI's end-to-end tests. Screenshots go to test-artifacts/ui/.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../e2e/helpers.js';

export const CHROMIUM = process.env.GANTRY_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'ui');
export const UI_BUILT = fs.existsSync(path.join(ROOT, 'dist', 'ui', 'index.html'));

/**
 * Why the UI tests cannot run here, or null. Outside CI a missing Chromium or
 * an unbuilt UI skips them with this notice; in CI (CI=true) they fail instead.
 */
export function uiTestsUnavailable(): string | null {
  if (process.env.CI === 'true' || process.env.GANTRY_REQUIRE_UI === '1') return null;
  if (!fs.existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (!UI_BUILT) return 'the web UI is not built (npm install && npm run build)';
  return null;
}

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 60_000,
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: false });
}
