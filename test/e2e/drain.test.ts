// Workers going away politely, as an operator does it with real processes on
// one SQLite store: SIGTERM on `gantry worker` drains it (running job finishes,
// nothing new is claimed, `gantry workers` shows draining, the process exits);
// the deploy (drain, update, start) loses no job; `gantry drain` / `gantry
// stop` from another process reach a worker within a second or two.
import { it, expect, afterAll } from 'vitest';
import path from 'node:path';
import { cleanup, gantry, gantryJson, sleep, startRun, startUp, tempDir, waitFor, waitForJobState, waitForRunState, writeFile, type UpProcess } from './helpers.js';

afterAll(cleanup);

function worker(dir: string, name: string, extra: string[] = []) {
  return gantry(['worker', '--db', path.join(dir, '.gantry', 'gantry.db'), '--name', name, '--slots', '2', '--lease', '3000', ...extra], { cwd: dir, timeoutMs: 60_000 });
}
async function stateOf(server: string, name: string): Promise<string | undefined> {
  const { json } = await gantryJson<{ name: string; state: string }[]>(['workers'], { server });
  return json.find((w) => w.name === name)?.state;
}

it('SIGTERM drains a worker (the running job finishes, nothing new is claimed), it exits; a new worker takes the queued run', async () => {
  const dir = tempDir();
  writeFile(dir, 'wf.yaml', `name: slow\ntasks:\n  a: { run: "sleep 2; echo done" }\n`);
  writeFile(dir, 'long.yaml', `name: long\ntasks:\n  a: { run: 'if [ "$GANTRY_ATTEMPT" = 1 ]; then sleep 30; fi; echo done' }\n`);
  let up: UpProcess | null = null;
  try {
    up = await startUp(dir, ['--workers', '0']);
    expect((await gantry(['apply', 'wf.yaml', 'long.yaml'], { server: up.url, cwd: dir })).code).toBe(0);
    const wA = worker(dir, 'wA', ['--grace', '30s']);
    const r1 = await startRun(up.url, 'slow');
    await waitForJobState(up.url, r1, 'a', 'running', 15_000);
    wA.proc.kill('SIGTERM');
    await waitFor('wA draining', async () => (await stateOf(up!.url, 'wA')) === 'draining', { timeoutMs: 5_000 });
    const r2 = await startRun(up.url, 'slow');
    await waitForRunState(up.url, r1, 'succeeded', 15_000);
    const exit = await wA;
    expect(exit.code).toBe(0);
    expect(exit.stdout).toContain('gantry worker wA stopped');
    expect(await stateOf(up.url, 'wA')).toBe('stopped');
    await sleep(500);
    const queued = await gantryJson<{ task: string; state: string }[]>(['jobs', '--run', String(r2)], { server: up.url });
    expect(queued.json[0]!.state).toBe('queued');
    // the "update" is done: start the worker again, under the same name
    const wA2 = worker(dir, 'wA');
    await waitForRunState(up.url, r2, 'succeeded', 15_000);
    expect(await stateOf(up.url, 'wA')).toBe('active');

    // gantry drain / gantry stop from another process
    const r3 = await startRun(up.url, 'long');
    await waitForJobState(up.url, r3, 'a', 'running', 15_000);
    const drained = await gantry(['drain', 'wA'], { server: up.url });
    expect(drained.code).toBe(0);
    expect(drained.stdout).toMatch(/worker wA draining/);
    const t0 = Date.now();
    const stopped = await gantry(['stop', 'wA', '--terminate'], { server: up.url });
    expect(stopped.code).toBe(0);
    const exit2 = await wA2;
    expect(Date.now() - t0).toBeLessThan(5_000); // within a second or two, not after a lease
    expect(exit2.code).toBe(0);
    const jobs = await gantryJson<{ state: string; worker: string | null }[]>(['jobs', '--run', String(r3)], { server: up.url });
    expect(jobs.json[0]!.state).toBe('queued'); // requeued (lost), not failed
    const wB = worker(dir, 'wB');
    await waitForRunState(up.url, r3, 'succeeded', 15_000);
    wB.proc.kill('SIGTERM');
    expect((await wB).code).toBe(0);
  } finally {
    await up?.stop();
  }
}, 90_000);
