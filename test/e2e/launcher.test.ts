// The command launcher under a real `gantry up`: jobs die with their worker
// even unsupervised (SQLite's default), die with the launcher, and the old
// way (`--launcher spawn`) is still there.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, gantry, isAlive, lines, startRun, startUp, tempDir, trackPid, waitFor, waitForJobState, writeFile, type JobJson } from './helpers.js';

afterEach(cleanup);

const WF = `
name: longjob
tasks:
  long:
    run: |
      echo $$ >> pids
      sleep 30 &
      echo $! >> pids
      wait
`;

async function jobPids(dir: string): Promise<number[]> {
  const pids = await waitFor('the job pids', () => {
    const l = lines(path.join(dir, 'pids')).map(Number);
    return l.length >= 2 ? l : undefined;
  });
  pids.forEach(trackPid);
  return pids;
}

/** the launcher: the child of `gantry up` that runs bin/gantry-launcher */
function launcherOf(pid: number): number {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.includes('gantry-launcher'));
  if (!line) throw new Error(`no launcher among the children of ${pid}:\n${out}`);
  return Number(line.trim().split(/\s+/)[0]);
}

describe('the command launcher', () => {
  it('kill -9 of gantry up kills its running jobs at once, unsupervised too (their launcher sees it die)', async () => {
    const dir = tempDir();
    writeFile(dir, 'wf.yaml', WF);
    const up = await startUp(dir, ['--lease', '1500', 'wf.yaml']);
    await startRun(up.url, 'longjob', [], dir);
    const pids = await jobPids(dir);
    up.proc.kill('SIGKILL');
    await up.exited;
    await waitFor('the job processes to die with their worker', () => pids.every((p) => !isAlive(p)), { timeoutMs: 2_000 });
  });

  it('kill -9 of the launcher kills its jobs, which fail saying so; the next job starts through a new launcher', async () => {
    const dir = tempDir();
    writeFile(dir, 'wf.yaml', WF);
    const up = await startUp(dir, ['--lease', '1500', 'wf.yaml']);
    const id = await startRun(up.url, 'longjob', [], dir);
    const pids = await jobPids(dir);
    const launcher = launcherOf(up.proc.pid!);
    process.kill(launcher, 'SIGKILL');
    await waitFor('the job processes to die with their launcher', () => pids.every((p) => !isAlive(p)), { timeoutMs: 2_000 });
    const job: JobJson = await waitForJobState(up.url, id, 'long', 'failed');
    expect(job.error).toMatch(/^killed by SIGKILL: gantry: the command launcher \(pid \d+\) died \(killed by SIGKILL\): the job's processes were killed$/);
    const again = await startRun(up.url, 'longjob', [], dir);
    await waitForJobState(up.url, again, 'long', 'running');
    expect(launcherOf(up.proc.pid!)).not.toBe(launcher);
    await up.stop();
  });

  it('--launcher spawn starts commands from gantry up itself (no launcher, a keeper per command); a wrong --launcher is a usage error', async () => {
    const dir = tempDir();
    writeFile(dir, 'wf.yaml', WF);
    const up = await startUp(dir, ['--launcher', 'spawn', 'wf.yaml']);
    const id = await startRun(up.url, 'longjob', [], dir);
    const [shell] = await jobPids(dir);
    // its parent: the one-command keeper (gantry-launcher --job) that gantry up spawned
    const [keeper, keeperArgs] = execFileSync('ps', ['-o', 'ppid=', '-p', String(shell)], { encoding: 'utf8' }).trim().split(/\s+/, 1).map((p) => [Number(p), execFileSync('ps', ['-o', 'args=', '-p', p], { encoding: 'utf8' })])[0]!;
    expect(keeperArgs).toContain('gantry-launcher --job');
    expect(Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(keeper)], { encoding: 'utf8' }).trim())).toBe(up.proc.pid);
    await waitForJobState(up.url, id, 'long', 'running');
    await up.stop();
    const bad = await gantry(['up', '--launcher', 'fork'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--launcher <kind>' argument 'fork' is invalid");
  });
});
