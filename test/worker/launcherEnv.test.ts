// The processes that start commands (the launcher, or a command's keeper under
// `--launcher spawn`) run with a minimal environment, not the worker's: a job
// that may read its parent's /proc/PID/environ (a job run as root, the worker's
// own user) finds no key, token or store URL of the grid there.
import { it, expect, afterEach, describe } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, type Cluster } from '../helpers/cluster.js';

process.env.GANTRY_CANARY_SECRET = 'canary-value';

let g: Cluster;
afterEach(async () => {
  await g.close();
});

describe.each(['helper', 'spawn'] as const)('--launcher %s', (launcher) => {
  it("a job reading its parent's environment finds nothing of the worker's", async () => {
    g = await cluster('SQLite', { slots: 1, worker: { launcher } });
    fs.writeFileSync(
      path.join(g.dir, 'w.yaml'),
      `name: w\ntasks:\n  t:\n    run: tr '\\0' '\\n' < /proc/$PPID/environ | grep -c CANARY || true\n`,
    );
    expect((await g.apply('w.yaml')).status).toBe(200);
    const started = await g.inject('POST', '/api/v1/runs', { workflow: 'w' });
    const run = await g.waitRun(started.body.id, 30_000);
    const jobs = await g.jobs(run.id);
    expect(jobs.t!.state, jobs.t!.error ?? '').toBe('succeeded');
    expect(await g.stdout(jobs.t!.id)).toEqual(['0']);
  });
});
