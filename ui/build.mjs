// `npm run build` (and so `npm install`) builds the web UI into dist/ui: its
// TypeScript is checked, then vite bundles it. In a checkout whose
// node_modules predates the UI (vite not installed), it says so and leaves the
// UI unbuilt instead of failing the server's build: the server then answers `/`
// with how to build it.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
let vite;
try {
  require.resolve('react');
  vite = await import('vite');
} catch {
  console.warn('gantry: the web UI is not built: its build tools are not installed (run `npm install`, then `npm run build`)');
  process.exit(0);
}
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', fileURLToPath(new URL('./tsconfig.json', import.meta.url))], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
await vite.build({ configFile: fileURLToPath(new URL('./vite.config.ts', import.meta.url)), logLevel: 'warn' });
