// End to end: crash recovery (SPEC §5) with a real `kill -9` of `gantry up`,
// and clean shutdown on SIGTERM / SIGINT.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  gantry,
  gantryJson,
  isAlive,
  lines,
  startRun,
  startUp,
  tempDir,
  trackPid,
  waitFor,
  waitForJobState,
  writeFile,
  type JobJson,
  type RunJson,
} from './helpers.js';

afterEach(cleanup);

const CHAIN = `
name: chain
tasks:
  a:
    run: echo a >> a-count
  b:
    needs: [a]
    outputs: { x: out/b.txt }
    run: |
      echo started >> b-starts
      echo $$ >> b-shell-pids
      echo "b starting"
      echo "partial of $$" > {{ outputs.x }}
      sleep 3 &
      echo $! >> b-sleep-pids
      wait
      echo "complete" >> {{ outputs.x }}
      echo finished >> b-finishes
  c:
    needs: [b]
    run: cat {{ tasks.b.outputs.x }}
`;

describe('crash recovery', () => {
  it('after kill -9 of gantry up, a restart on the same store finishes the run without rerunning what succeeded', async () => {
    const dir = tempDir();
    writeFile(dir, 'chain.yaml', CHAIN);
    const up1 = await startUp(dir, ['--lease', '1500', 'chain.yaml']);
    const id = await startRun(up1.url, 'chain', [], dir);

    // b is running, its process has started and its first log line is shipped
    await waitForJobState(up1.url, id, 'b', 'running');
    const shell1 = await waitFor('b to record its shell pid', () => Number(lines(path.join(dir, 'b-shell-pids'))[0]) || undefined);
    const sleep1 = await waitFor('b to record its sleep pid', () => Number(lines(path.join(dir, 'b-sleep-pids'))[0]) || undefined);
    trackPid(shell1);
    trackPid(sleep1);
    await waitFor('b to ship its first line', async () => (await gantry(['logs', `${id}:b`], { server: up1.url })).stdout.includes('b starting'));
    expect(lines(path.join(dir, 'a-count'))).toEqual(['a']);
    expect(isAlive(sleep1)).toBe(true);

    // kill -9: no shutdown code runs; b's processes are orphaned
    up1.proc.kill('SIGKILL');
    const gone = await up1.exited;
    expect(gone.signal).toBe('SIGKILL');

    const up2 = await startUp(dir, ['--lease', '1500']);
    // the orphan of the first attempt is killed, not left to finish (it would append to b-finishes)
    await waitFor('the orphaned sleep of the first attempt to be gone', () => !isAlive(sleep1) && !isAlive(shell1), { timeoutMs: 5_000 });

    const run = await waitFor(
      `run ${id} to succeed after the restart`,
      async () => {
        const { json } = await gantryJson<RunJson>(['status', String(id)], { server: up2.url });
        if (json.state === 'failed' || json.state === 'cancelled') throw new Error(`run ended ${json.state}: ${JSON.stringify(json.jobs)}`);
        return json.state === 'succeeded' ? json : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(Object.fromEntries(run.jobs!.map((j) => [j.task, j.state]))).toEqual({ a: 'succeeded', b: 'succeeded', c: 'succeeded' });

    // a ran once; b started twice and finished once
    expect(lines(path.join(dir, 'a-count'))).toEqual(['a']);
    expect(lines(path.join(dir, 'b-starts'))).toEqual(['started', 'started']);
    expect(lines(path.join(dir, 'b-finishes'))).toEqual(['finished']);

    const res = await fetch(`${up2.url}/api/v1/jobs/${encodeURIComponent(`${id}:b`)}`, { headers: { authorization: `Bearer ${up2.token}` } });
    expect(res.status).toBe(200);
    const job = (await res.json()) as JobJson & { attemptList: { number: number; state: string }[] };
    expect(job.state).toBe('succeeded');
    expect(job.attemptList.map((a) => a.state)).toEqual(['lost', 'succeeded']);
    expect(job.attemptList.map((a) => a.number)).toEqual([1, 2]);
    expect(job.attempts).toBe(2);

    // the output is the second attempt's, whole, and no staging is left behind
    const shell2 = Number(lines(path.join(dir, 'b-shell-pids'))[1]);
    expect(shell2).not.toBe(shell1);
    expect(fs.readFileSync(path.join(dir, 'out', 'b.txt'), 'utf8')).toBe(`partial of ${shell2}\ncomplete\n`);
    expect(fs.readdirSync(path.join(dir, 'out'))).toEqual(['b.txt']);

    // c read b's output; the logs of the lost attempt survived the crash
    const cLogs = await gantry(['logs', `${id}:c`], { server: up2.url });
    expect(cLogs.stdout).toContain('complete');
    const bLogs = await gantry(['logs', `${id}:b`], { server: up2.url });
    expect(bLogs.stdout.split('\n').filter((l) => l === 'b starting')).toHaveLength(2);

    await up2.stop();
  });
});

describe('shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} on an idle gantry up exits 0`, async () => {
      const dir = tempDir();
      const up = await startUp(dir, ['--lease', '1500']);
      const health = await fetch(`${up.url}/api/v1/health`);
      expect(health.status).toBe(200);
      const t0 = Date.now();
      up.proc.kill(signal);
      const exit = await Promise.race([
        up.exited,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 12_000)),
      ]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(12_000);
      expect(up.stderr()).toContain(`${signal}: stopping`);
      // the port is released and the store reopens fine
      await expect(fetch(`${up.url}/api/v1/health`)).rejects.toThrow();
      const again = await startUp(dir, ['--lease', '1500']);
      const r = await gantry(['runs'], { server: again.url });
      expect(r.code).toBe(0);
      await again.stop();
    });
  }
});
