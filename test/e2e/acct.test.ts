// Accounting end to end under a real `gantry up`: a shell job that burns CPU
// shows its CPU time and peak memory in `gantry jobs --json` and in
// `gantry acct`, a sleeping one next to nothing; both launchers report it.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, gantry, gantryJson, startRun, startUp, tempDir, waitForRunState, writeFile, type JobJson } from './helpers.js';

afterEach(cleanup);

const WF = `
name: usage
tasks:
  burn:
    run: |
      i=0
      while [ $i -lt 400000 ]; do i=$((i+1)); done
  nap:
    run: sleep 1
`;

interface AcctJson {
  by: string[];
  groups: { namespace?: string; workflow?: string; task?: string; worker?: string; attempts: number; succeeded: number; cpuMs: number; wallMs: number; measured: number; maxRssBytes: number | null }[];
  total: { attempts: number; cpuMs: number };
}

describe('gantry acct', () => {
  for (const launcher of ['helper', 'spawn'] as const)
    it(`a job burning CPU shows its CPU time and peak memory in gantry jobs and gantry acct (--launcher ${launcher})`, async () => {
      const dir = tempDir();
      writeFile(dir, 'wf.yaml', WF);
      const up = await startUp(dir, ['--launcher', launcher, 'wf.yaml']);
      const id = await startRun(up.url, 'usage', [], dir);
      await waitForRunState(up.url, id, 'succeeded', 60_000);

      const { json: jobs } = await gantryJson<JobJson[]>(['jobs', '--run', String(id)], { server: up.url });
      const burn = jobs.find((j) => j.task === 'burn')!;
      const nap = jobs.find((j) => j.task === 'nap')!;
      expect(burn.cpuMs).toBeGreaterThan(100);
      expect(burn.maxRssBytes).toBeGreaterThan(100 * 1024);
      // sleeping costs next to no CPU however long it takes
      expect(nap.cpuMs).toBeGreaterThanOrEqual(0);
      expect(nap.cpuMs as number).toBeLessThan(burn.cpuMs as number);

      const { json: acct } = await gantryJson<AcctJson>(['acct', '--by', 'task'], { server: up.url });
      expect(acct.by).toEqual(['namespace', 'workflow', 'task']);
      const byTask = Object.fromEntries(acct.groups.map((g) => [g.task, g]));
      expect(byTask.burn).toMatchObject({ namespace: 'default', workflow: 'usage', attempts: 1, succeeded: 1, measured: 1, cpuMs: burn.cpuMs, maxRssBytes: burn.maxRssBytes });
      expect(byTask.nap!.wallMs).toBeGreaterThanOrEqual(1000);
      expect(acct.total).toMatchObject({ attempts: 2, cpuMs: (burn.cpuMs as number) + (nap.cpuMs as number) });

      // the tables: CPU and peak memory in human units
      const table = await gantry(['jobs', '--run', String(id)], { server: up.url });
      expect(table.stdout.split('\n')[0]).toMatch(/\bCPU\s+MAXRSS\b/);
      expect(table.stdout).toMatch(/burn\s.*\d+(\.\d)?(ms|s)\s+\d+(\.\d)? (KiB|MiB)/);
      const text = await gantry(['acct', '--by', 'namespace,worker'], { server: up.url });
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/^NAMESPACE\s+WORKER\s+ATTEMPTS\s+OK\s+FAILED\s+WALL\s+CPU\s+MAXRSS\s+MEANRSS/);
      expect(text.stdout).toMatch(/\ndefault\s+\S+\s+2\s+2\s+0\s/);
    }, 90_000);

  it('refuses an unknown grouping with exit 2 naming it', async () => {
    const r = await gantry(['acct', '--by', 'task,queue'], { server: 'http://127.0.0.1:9' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot group by 'queue'");
  });
});
