// `gantry validate` and `gantry apply` of a 50 MB file are refused at once,
// before the file is read, naming the file and the limit (exit 2): the API
// refuses such a body the same way (10 MiB).
import { it, expect, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { gantry, tempDir, cleanup, startUp } from './helpers.js';

afterEach(cleanup);

it('a 50 MB workflow file: validate and apply exit 2 naming the file and the 10 MiB limit, quickly', async () => {
  const dir = tempDir('gantry-large-');
  const up = await startUp(dir, ['--workers', '0']);
  const file = path.join(dir, 'huge.yaml');
  fs.writeFileSync(file, `name: huge\ntasks:\n  a: { run: 'true' }\n# ${'x'.repeat(50 * 1024 * 1024)}\n`);
  for (const cmd of ['validate', 'apply']) {
    const t = Date.now();
    const r = await gantry([cmd, file], { cwd: dir, server: up.url });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/huge\.yaml.*file is 50 MiB: a definition file may be at most 10 MiB/);
    expect(Date.now() - t).toBeLessThan(5_000);
  }
  await up.stop();
}, 30_000);
