// Monitoring with the real CLI against real processes on one SQLite store:
// `gantry up --workers 0` (API + scheduler) and separate `gantry worker`
// processes. `gantry logs RUN -f` follows a run whose jobs run on two workers;
// a worker killed with -9 mid-job keeps the lines it shipped, and the job is
// retried on another worker; `gantry runs --watch` prints state changes live;
// the monitoring commands answer with --json and exit 2 on bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { cleanup, gantry, gantryJson, startRun, startUp, tempDir, trackPid, waitFor, waitForJobState, waitForRunState, writeFile, type UpProcess } from './helpers.js';

afterAll(cleanup);

let dir: string;
let up: UpProcess;

function worker(name: string, extra: string[] = []) {
  return gantry(['worker', '--db', path.join(dir, '.gantry', 'gantry.db'), '--name', name, '--slots', '1', '--lease', '3000', ...extra], { cwd: dir, timeoutMs: 120_000 });
}

beforeAll(async () => {
  dir = tempDir();
  // p and q wait for each other to start: they run at once, so on both workers (1 slot each); end waits for both
  writeFile(
    dir,
    'pair.yaml',
    `name: pair
tasks:
  p: { run: 'touch p.started; for i in $(seq 1 300); do [ -e q.started ] && break; sleep 0.1; done; for i in 1 2 3 4 5; do echo "p tick $i"; sleep 0.2; done' }
  q: { run: 'touch q.started; for i in $(seq 1 300); do [ -e p.started ] && break; sleep 0.1; done; for i in 1 2 3 4 5; do echo "q tick $i"; sleep 0.2; done' }
  end: { run: 'echo end', needs: [p, q] }
`,
  );
  // the first attempt prints five lines, then hangs (it is killed with its worker); the second finishes
  writeFile(
    dir,
    'victim.yaml',
    `name: victim
tasks:
  v: { run: 'for i in 1 2 3 4 5; do echo "attempt $GANTRY_ATTEMPT line $i"; done; echo "pid $$"; if [ "$GANTRY_ATTEMPT" = 1 ]; then sleep 120; fi; echo finished' }
`,
  );
  writeFile(dir, 'flop.yaml', `name: flop\ntasks:\n  f: { run: 'echo "no space left" >&2; exit 3', retries: { max: 1, delay: 1s } }\n`);
  up = await startUp(dir, ['--workers', '0']);
  const applied = await gantry(['apply', 'pair.yaml', 'victim.yaml', 'flop.yaml'], { server: up.url, cwd: dir });
  expect(applied.code, applied.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await up?.stop();
});

describe('central logs across workers', () => {
  it('gantry logs RUN -f follows every job of a run whose jobs run on two workers, to its end', async () => {
    const wA = worker('wA');
    const wB = worker('wB');
    try {
      // both workers up before the run: each takes one of p and q (1 slot each)
      await waitFor(
        'wA and wB to be active',
        async () => {
          const { json } = await gantryJson<{ name: string; state: string }[]>(['workers'], { server: up.url });
          return ['wA', 'wB'].every((n) => json.some((w) => w.name === n && w.state === 'active'));
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      const run = await startRun(up.url, 'pair');
      const follow = await gantry(['logs', String(run), '-f'], { server: up.url, timeoutMs: 60_000 });
      expect(follow.code, follow.stderr).toBe(0);
      // job lines, without the worker's own ([gantry] attempt …, succeeded)
      const lines = follow.stdout.split('\n').filter((l) => l && !l.includes(': [gantry] '));
      for (const t of ['p', 'q']) expect(lines.filter((l) => l.startsWith(`${run}:${t}: `)).map((l) => l.split(': ')[1])).toEqual([1, 2, 3, 4, 5].map((i) => `${t} tick ${i}`));
      expect(lines).toContain(`${run}:end: end`);
      const { json: jobs } = await gantryJson<{ task: string; worker: string }[]>(['jobs', '--run', String(run)], { server: up.url });
      const byTask = Object.fromEntries(jobs.map((j) => [j.task, j.worker]));
      expect(new Set([byTask.p, byTask.q])).toEqual(new Set(['wA', 'wB']));
    } finally {
      wA.proc.kill('SIGTERM');
      wB.proc.kill('SIGTERM');
      await Promise.all([wA, wB]);
    }
  }, 90_000);

  it('a worker killed with -9 mid-job: the lines it shipped are kept, the job is retried on another worker', async () => {
    const wK = worker('wK');
    const run = await startRun(up.url, 'victim');
    const jobId = `${run}:v`;
    // every line of the first attempt has reached the store
    const shipped = await waitFor(
      'the first attempt to ship its lines',
      async () => {
        const r = await gantry(['logs', jobId], { server: up.url });
        return r.stdout.includes('pid ') ? r.stdout : null;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const jobPid = Number(/pid (\d+)/.exec(shipped)![1]);
    trackPid(jobPid);
    wK.proc.kill('SIGKILL');
    await wK;
    const wL = worker('wL');
    try {
      await waitForRunState(up.url, run, 'succeeded', 60_000);
      // `logs --json` prints one object per line
      const r = await gantry(['logs', jobId, '--json'], { server: up.url });
      const logs = { json: r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { attempt: number; stream: string; line: string }).filter((l) => l.stream !== 'system') };
      const first = logs.json.filter((l) => l.attempt === 1).map((l) => l.line);
      const second = logs.json.filter((l) => l.attempt === 2).map((l) => l.line);
      expect(first.slice(0, 6)).toEqual([1, 2, 3, 4, 5].map((i) => `attempt 1 line ${i}`).concat(`pid ${jobPid}`));
      expect(second).toEqual(expect.arrayContaining([1, 2, 3, 4, 5].map((i) => `attempt 2 line ${i}`).concat('finished')));
      const { json: job } = await gantryJson<{ attempts: number; worker: string; state: string }[]>(['jobs', '--run', String(run)], { server: up.url });
      expect(job[0]).toMatchObject({ state: 'succeeded', attempts: 2, worker: 'wL' });
    } finally {
      wL.proc.kill('SIGTERM');
      await wL;
    }
  }, 120_000);
});

describe('monitoring commands', () => {
  it('gantry runs --watch prints each state change live; errors, failures, broken, eta answer with --json; bad input exits 2', async () => {
    const watch = gantry(['runs', '--watch', '--workflow', 'flop'], { server: up.url, timeoutMs: 90_000 });
    let out = '';
    let err = '';
    watch.proc.stdout!.on('data', (c: string) => (out += c));
    watch.proc.stderr!.on('data', (c: string) => (err += c));
    await waitFor('the watch to connect', () => err.includes('watching state changes'), { timeoutMs: 15_000 });
    const other = await startRun(up.url, 'pair'); // not watched
    // No worker is up: the pair run waits, estimated from the earlier pair run.
    const pairEta = await gantryJson<{ run: number; eta: { likely: number } | null; basis: { pastRuns: number; criticalPath: string[] } }>(['eta', 'pair'], { server: up.url });
    expect(pairEta.json.run).toBe(other);
    expect(pairEta.json.basis.pastRuns).toBe(1);
    expect(pairEta.json.eta).not.toBeNull();
    expect(pairEta.json.basis.criticalPath.at(-1)).toBe('end');
    const status = await gantry(['status', String(other)], { server: up.url });
    expect(status.stdout).toMatch(/ETA \S+ \(\S+–\S+\), from 1 past run, critical path [pq] → end/);
    const wA = worker('wA');
    try {
      const run = await startRun(up.url, 'flop');
      await waitForRunState(up.url, run, 'failed', 30_000);
      await waitFor('the watch to print the run failing', () => out.includes(`run ${run} failed`), { timeoutMs: 10_000 });
      const lines = out.split('\n').filter(Boolean).map((l) => l.replace(/^\S+ /, ''));
      expect(lines).toEqual([
        `run ${run} queued`,
        `run ${run} running`,
        `job ${run}:f queued`,
        `job ${run}:f running`,
        `job ${run}:f retrying`,
        `job ${run}:f queued`,
        `job ${run}:f running`,
        `job ${run}:f failed`,
        `run ${run} failed`,
      ]);
      expect(out).not.toContain(`run ${other} `);

      const errors = await gantryJson<{ errors: { jobId: string; number: number; exitCode: number }[]; summary: { count: number }[] }>(['errors', '--workflow', 'flop'], { server: up.url });
      expect(errors.res.code).toBe(0);
      expect(errors.json.errors.map((e) => [e.jobId, e.number, e.exitCode])).toEqual([
        [`${run}:f`, 2, 3],
        [`${run}:f`, 1, 3],
      ]);
      const failures = await gantry(['failures', '--workflow', 'flop'], { server: up.url });
      expect(failures.stdout).toMatch(new RegExp(`${run}:f\\s+2\\s+1\\s+wA`));
      const broken = await gantryJson<{ failing: { workflow: string; failedInARow: number }[] }>(['broken'], { server: up.url });
      expect(broken.json.failing.map((f) => [f.workflow, f.failedInARow])).toEqual([['flop', 1]]);
      const brokenText = await gantry(['broken'], { server: up.url });
      expect(brokenText.stdout).toMatch(/failing \(latest run failed\):[\s\S]*flop/);

      // eta: a finished run has none
      const eta = await gantryJson<{ eta: unknown; basis: { pastRuns: number } }>(['eta', String(run)], { server: up.url });
      expect(eta.json.eta).toBeNull();

      const bad = [
        ['errors', '--since', 'soon'],
        ['failures', '--label', 'nokey'],
        ['broken', '--label', 'x'],
        ['eta', 'no-such-workflow'],
        ['runs', '--watch', '--state', 'failed'],
        ['runs', '--watch', '--label', 'x'],
        ['workflows', 'no-such-workflow'],
      ];
      const results = await Promise.all(bad.map((args) => gantry(args, { server: up.url })));
      results.forEach((r, i) => expect(r.code, `${bad[i]!.join(' ')}: ${r.stderr}`).toBe(2));
    } finally {
      watch.proc.kill('SIGTERM');
      wA.proc.kill('SIGTERM');
      await wA;
    }
    const ended = await watch;
    expect(ended.code).toBe(0);
  }, 120_000);
});
