// gantry-supervise: a job whose worker stops renewing its lease (killed,
// paused) is killed by its supervisor before the lease can be handed on, so no
// job runs twice at once, whichever host takes it over.
import { describe, it, expect, afterEach } from 'vitest';
import path from 'node:path';
import { cleanup, isAlive, lines, startRun, startUp, tempDir, trackPid, waitFor, waitForJobState, waitForRunState, writeFile } from './helpers.js';

afterEach(cleanup);

const WF = `
name: sup
tasks:
  long:
    retries: { max: 1, delay: 0s }
    run: |
      echo $$ >> shell-pids
      sleep 30 &
      echo $! >> sleep-pids
      wait
  steady:
    run: sleep 4; echo done >> steady-done
`;

async function pidsOf(dir: string): Promise<{ shell: number; sleeper: number }> {
  const shell = await waitFor('the job shell pid', () => Number(lines(path.join(dir, 'shell-pids')).at(-1)) || undefined);
  const sleeper = await waitFor('the job sleep pid', () => Number(lines(path.join(dir, 'sleep-pids')).at(-1)) || undefined);
  trackPid(shell);
  trackPid(sleeper);
  return { shell, sleeper };
}

describe('supervised jobs', () => {
  it('keep running past their lease while the worker renews it', async () => {
    const dir = tempDir();
    writeFile(dir, 'sup.yaml', WF);
    const up = await startUp(dir, ['--lease', '1500', '--supervise', 'sup.yaml']);
    const id = await startRun(up.url, 'sup', [], dir);
    await waitForJobState(up.url, id, 'steady', 'succeeded', 15_000);
    expect(lines(path.join(dir, 'steady-done'))).toEqual(['done']);
  });

  it('die at once when their worker is killed with kill -9, with nothing restarted', async () => {
    const dir = tempDir();
    writeFile(dir, 'sup.yaml', WF);
    const up = await startUp(dir, ['--lease', '1500', '--supervise', 'sup.yaml']);
    await startRun(up.url, 'sup', [], dir);
    const { shell, sleeper } = await pidsOf(dir);
    up.proc.kill('SIGKILL');
    await up.exited;
    await waitFor('the job processes to die with their worker', () => !isAlive(shell) && !isAlive(sleeper), { timeoutMs: 2_000 });
  });

  it('die within their lease when their worker is paused (SIGSTOP), and are retried once it resumes', async () => {
    const dir = tempDir();
    writeFile(dir, 'sup.yaml', WF);
    const up = await startUp(dir, ['--lease', '1500', '--supervise', 'sup.yaml']);
    const id = await startRun(up.url, 'sup', [], dir);
    const first = await pidsOf(dir);
    const stoppedAt = Date.now();
    up.proc.kill('SIGSTOP');
    try {
      await waitFor('the job processes to die while their worker is paused', () => !isAlive(first.shell) && !isAlive(first.sleeper), { timeoutMs: 3_000 });
      // killed before the 1.5 s lease could be handed on
      expect(Date.now() - stoppedAt).toBeLessThan(1_500 + 400);
    } finally {
      up.proc.kill('SIGCONT');
    }
    await waitFor('a second attempt', () => lines(path.join(dir, 'shell-pids')).length === 2 || undefined, { timeoutMs: 10_000 });
    const res = await fetch(`${up.url}/api/v1/jobs/${encodeURIComponent(`${id}:long`)}`, { headers: { authorization: `Bearer ${up.token}` } });
    const job = (await res.json()) as { attemptList: { state: string; error: string | null }[] };
    expect(job.attemptList).toHaveLength(2);
    // the first attempt is lost (not a failed try): given back by its worker, or reaped; never left running
    expect(job.attemptList[0]!.state).toBe('lost');
    expect(job.attemptList[0]!.error).toMatch(/^(killed by its supervisor: the lease was not renewed for |lease expired|worker )/);
    expect(job.attemptList[1]!.state).toBe('running');
    await waitForRunState(up.url, id, 'running');
  });
});
