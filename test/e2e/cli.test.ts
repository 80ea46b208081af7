// End to end: the `gantry` command line (SPEC §3) against a real `gantry up`
// process on a real SQLite file, running real shell jobs.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ROOT,
  cleanup,
  freePort,
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
  waitForRunState,
  writeFile,
  type JobJson,
  type RunJson,
  type UpProcess,
} from './helpers.js';

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('gantry validate (no server)', () => {
  afterAll(cleanup);

  it('accepts a good file with exit 0', async () => {
    const dir = tempDir();
    const file = writeFile(dir, 'good.yaml', 'name: good\ntasks:\n  a:\n    run: echo a\n  b:\n    needs: [a]\n    run: echo b\n');
    const r = await gantry(['validate', file, path.join(ROOT, 'examples/hello.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok\s+workflow good\b/m);
    expect(r.stdout).toMatch(/^ok\s+workflow hello\b/m);
  });

  it('lists every problem with file:line and exits 2', async () => {
    const dir = tempDir();
    const source = [
      'name: bad', //                         1
      'tasks:', //                            2
      '  a:', //                              3
      '    run: echo a', //                   4
      '    colour: red', //                   5  unknown field
      '  b:', //                              6
      '    needs: [nope]', //                 7  unknown needs
      '    run: echo b', //                   8
      '  c:', //                              9
      '    needs: [d]', //                    10 cycle c -> d -> c
      '    run: echo c', //                   11
      '  d:', //                              12
      '    needs: [c]', //                    13
      '    run: echo d', //                   14
      '  e:', //                              15
      '    run: echo e', //                   16
      '    timeout: 5 minutes', //            17 bad duration
      '',
    ].join('\n');
    const file = writeFile(dir, 'bad.yaml', source);
    const r = await gantry(['validate', file]);
    expect(r.code).toBe(2);
    const f = escapeRe(file);
    expect(r.stderr).toMatch(new RegExp(`^${f}:5:\\d+: .*colour`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^${f}:7:\\d+: .*nope`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^${f}:(10|13):\\d+: .*cycle`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^${f}:17:\\d+: .*5 minutes`, 'm'));
    expect(r.stderr).toMatch(/\b4 errors\b/);
    expect(r.stdout).not.toMatch(/^ok/m);
  });

  it('--json reports the errors as objects, still exiting 2', async () => {
    const dir = tempDir();
    const file = writeFile(dir, 'bad.yaml', 'name: bad\ntasks:\n  a:\n    run: echo a\n    needs: [ghost]\n');
    const { json, res } = await gantryJson<{ ok: boolean; errors: { file: string; line: number; message: string }[] }>(['validate', file]);
    expect(res.code).toBe(2);
    expect(json.ok).toBe(false);
    expect(json.errors).toEqual([expect.objectContaining({ file, line: 5, message: expect.stringContaining('ghost') })]);
  });
});

describe('gantry against a running server', () => {
  let dir: string;
  let up: UpProcess;
  let server: string;
  const cli = (args: string[]) => gantry(args, { server, cwd: dir });
  const cliJson = <T = any>(args: string[]) => gantryJson<T>(args, { server, cwd: dir });

  const workflows: Record<string, string> = {
    'ok.yaml': `
name: e2e-ok
labels: { suite: e2e }
params:
  who: { default: world }
tasks:
  greet:
    run: echo "hello" {{ params.who }}
  second:
    needs: [greet]
    run: echo second
`,
    'fails.yaml': `
name: e2e-fails
tasks:
  good:
    run: echo fine
  bad:
    needs: [good]
    run: |
      echo "about to fail" >&2
      exit 3
  after:
    needs: [bad]
    run: echo never
`,
    'args.yaml': `
name: e2e-args
params:
  msg: { required: true }
tasks:
  show:
    run: |
      printf '<%s>\\n' {{ params.msg }}
      set -- {{ params.msg }}
      echo "argc=$#"
`,
    'ticker.yaml': `
name: e2e-ticker
tasks:
  tick:
    run: |
      for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.3; done
`,
    'sleeper.yaml': `
name: e2e-sleeper
tasks:
  nap:
    run: |
      echo $$ > nap-{{ run.id }}.shpid
      sleep 30 &
      echo $! > nap-{{ run.id }}.pid
      wait
`,
    'pair.yaml': `
name: e2e-pair
tasks:
  x:
    run: |
      echo $$ > x-{{ run.id }}.shpid
      sleep 30 &
      echo $! > x-{{ run.id }}.pid
      wait
  y:
    run: |
      echo $$ > y-{{ run.id }}.shpid
      sleep 30 &
      echo $! > y-{{ run.id }}.pid
      wait
`,
    'retry.yaml': `
name: e2e-retry
tasks:
  a:
    run: echo ran >> a-count-{{ run.id }}
  b:
    needs: [a]
    run: |
      if [ -e b-marker-{{ run.id }} ]; then echo "b: second time lucky"; exit 0; fi
      : > b-marker-{{ run.id }}
      echo "b: failing the first time" >&2
      exit 1
  c:
    needs: [b]
    run: echo c ran
`,
  };

  beforeAll(async () => {
    dir = tempDir();
    for (const [name, content] of Object.entries(workflows)) writeFile(dir, name, content);
    fs.copyFileSync(path.join(ROOT, 'examples/hello.yaml'), path.join(dir, 'hello.yaml'));
    up = await startUp(dir, ['--lease', '1500', '--slots', '4']);
    server = up.url;
    const r = await cli(['apply', ...Object.keys(workflows), 'hello.yaml']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
  afterAll(async () => {
    await up?.stop();
    await cleanup();
  });

  /** Reads the pid a job wrote to `dir/name`, waiting for the file; registers it for cleanup. */
  const pidFrom = async (name: string) => {
    const pid = await waitFor(`${name} to be written`, () => {
      const l = lines(path.join(dir, name));
      return l.length ? Number(l[0]) : undefined;
    });
    trackPid(pid);
    return pid;
  };

  describe('apply', () => {
    it('creates a workflow, then reports it unchanged', async () => {
      const file = writeFile(dir, 'fresh.yaml', 'name: e2e-fresh\ntasks:\n  only:\n    run: echo fresh\n');
      const first = await cli(['apply', file]);
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^created\s+workflow e2e-fresh$/m);
      const again = await cli(['apply', file]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/^unchanged\s+workflow e2e-fresh$/m);
      const { json } = await cliJson<{ name: string }[]>(['workflows']);
      expect(json.map((w) => w.name)).toContain('e2e-fresh');
    });

    it('rejects an invalid file with exit 2 and stores nothing of it, nor of the files given with it', async () => {
      const bad = writeFile(dir, 'invalid.yaml', 'name: e2e-invalid\ntasks:\n  a:\n    run: echo a\n    needs: [ghost]\n');
      const good = writeFile(dir, 'companion.yaml', 'name: e2e-companion\ntasks:\n  a:\n    run: echo a\n');
      const r = await cli(['apply', good, bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${bad}:5:`);
      expect(r.stderr).toContain('ghost');
      const { json, res } = await cliJson<{ name: string }[]>(['workflows']);
      expect(res.code).toBe(0);
      const names = json.map((w) => w.name);
      expect(names).toContain('e2e-ok');
      expect(names).not.toContain('e2e-invalid');
      expect(names).not.toContain('e2e-companion');
    });
  });

  describe('run', () => {
    it('gantry run hello --wait exits 0', async () => {
      const r = await cli(['run', 'hello', '--wait']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^run \d+ succeeded$/m);
    });

    it('--wait --json prints the finished run with its jobs', async () => {
      const { json: run, res } = await cliJson<RunJson>(['run', 'e2e-ok', '--wait', '-p', 'who=Ada', '--label', 'team=blue']);
      expect(res.code).toBe(0);
      expect(run).toMatchObject({
        id: expect.any(Number),
        workflow: 'e2e-ok',
        state: 'succeeded',
        params: { who: 'Ada' },
        labels: { team: 'blue', suite: 'e2e' },
        createdAt: expect.any(Number),
        startedAt: expect.any(Number),
        finishedAt: expect.any(Number),
      });
      expect(run.finishedAt!).toBeGreaterThanOrEqual(run.startedAt!);
      expect(run.jobs).toHaveLength(2);
      for (const task of ['greet', 'second']) {
        const j = run.jobs!.find((x) => x.task === task)!;
        expect(j).toMatchObject({
          id: `${run.id}:${task}`,
          runId: run.id,
          task,
          chunk: null,
          state: 'succeeded',
          attempts: 1,
          worker: expect.any(String),
          startedAt: expect.any(Number),
          finishedAt: expect.any(Number),
          error: null,
        });
      }
      const logs = await cli(['logs', `${run.id}:greet`]);
      expect(logs.stdout).toMatch(/^hello Ada$/m);
    });

    it('a failing workflow exits 1 and ends failed', async () => {
      const { json: run, res } = await cliJson<RunJson>(['run', 'e2e-fails', '--wait']);
      expect(res.code).toBe(1);
      expect(run.state).toBe('failed');
      const byTask = Object.fromEntries(run.jobs!.map((j) => [j.task, j]));
      expect(byTask.good!.state).toBe('succeeded');
      expect(byTask.bad!.state).toBe('failed');
      expect(byTask.bad!.error).toMatch(/exit code 3/);
      expect(byTask.after!.state).toBe('skipped');

      const text = await cli(['run', 'e2e-fails', '--wait']);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/^run \d+ failed$/m);
    });

    it('an unknown workflow exits 2 naming it', async () => {
      const r = await cli(['run', 'no-such-workflow']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('no-such-workflow');
      const w = await cli(['run', 'no-such-workflow', '--wait']);
      expect(w.code).toBe(2);
    });

    it('an unknown or missing parameter exits 2 naming it, and starts nothing', async () => {
      const before = (await cliJson<RunJson[]>(['runs', '--limit', '1000'])).json.length;
      const unknown = await cli(['run', 'e2e-ok', '-p', 'colour=red', '--wait']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('colour');
      const missing = await cli(['run', 'e2e-args', '--wait']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/\bmsg\b/);
      const after = (await cliJson<RunJson[]>(['runs', '--limit', '1000'])).json.length;
      expect(after).toBe(before);
    });

    it('a -p value full of shell syntax reaches the job as one literal argument', async () => {
      const value = `a b; touch pwned1 $(touch pwned2) \`touch pwned3\` && echo INJECTED | cat > pwned4 "q" 'x' $HOME * \\ end`;
      const { json: run, res } = await cliJson<RunJson>(['run', 'e2e-args', '-p', `msg=${value}`, '--wait']);
      expect(res.code).toBe(0);
      expect(run.params.msg).toBe(value);
      const logs = await cli(['logs', `${run.id}:show`]);
      expect(logs.code).toBe(0);
      const out = logs.stdout.split('\n');
      expect(out).toContain(`<${value}>`);
      expect(out).toContain('argc=1');
      expect(out).not.toContain('INJECTED');
      for (const f of ['pwned1', 'pwned2', 'pwned3', 'pwned4']) expect(fs.existsSync(path.join(dir, f))).toBe(false);
    });
  });

  describe('status, runs, jobs, logs', () => {
    let okRun: number;
    let failedRun: number;
    let labelled: number;
    beforeAll(async () => {
      okRun = (await cliJson<RunJson>(['run', 'e2e-ok', '--wait'])).json.id;
      failedRun = (await cliJson<RunJson>(['run', 'e2e-fails', '--wait'])).json.id;
      labelled = (await cliJson<RunJson>(['run', 'e2e-ok', '--wait', '--label', 'owner=status-test', '--label', 'env=e2e'])).json.id;
    });

    it('status RUN: text and --json', async () => {
      const text = await cli(['status', String(okRun)]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`^run ${okRun}\\s+e2e-ok\\s+succeeded`, 'm'));
      expect(text.stdout).toMatch(new RegExp(`^${okRun}:greet\\s+succeeded`, 'm'));
      expect(text.stdout).toMatch(new RegExp(`^${okRun}:second\\s+succeeded`, 'm'));

      const { json, res } = await cliJson<RunJson>(['status', String(okRun)]);
      expect(res.code).toBe(0);
      expect(json).toMatchObject({ id: okRun, workflow: 'e2e-ok', state: 'succeeded', params: { who: 'world' } });
      expect(json.jobs!.map((j) => j.id).sort()).toEqual([`${okRun}:greet`, `${okRun}:second`]);

      const failed = await cli(['status', String(failedRun)]);
      expect(failed.code).toBe(1);
      expect(failed.stdout).toMatch(new RegExp(`^${failedRun}:bad\\s+failed`, 'm'));

      const none = await cli(['status', '99999']);
      expect(none.code).toBe(2);
    });

    it('status RUN --active: what a run too big to list shows — progress per stage and only the jobs that need attention', async () => {
      const failed = await cli(['status', String(failedRun), '--active']);
      expect(failed.code).toBe(1);
      // the failed job is listed, the succeeded and skipped ones are only counted in their stage's line
      expect(failed.stdout).toMatch(new RegExp(`^${failedRun}:bad\\s+failed`, 'm'));
      expect(failed.stdout).toMatch(/the 1 running, retrying and failed jobs of \d+/);
      expect(failed.stdout).toMatch(/^  bad: failed$/m);
      const ok = await cli(['status', String(okRun), '--active']);
      expect(ok.stdout).toMatch(/^  greet: succeeded$/m);
      expect(ok.stdout).not.toMatch(new RegExp(`^${okRun}:greet`, 'm'));
      expect((await cli(['status', String(okRun), '--active', '--all'])).code).toBe(2);
    });

    it('runs --workflow W --json and runs --label k=v', async () => {
      const { json, res } = await cliJson<RunJson[]>(['runs', '--workflow', 'e2e-ok']);
      expect(res.code).toBe(0);
      expect(json.length).toBeGreaterThanOrEqual(2);
      expect(json.every((r) => r.workflow === 'e2e-ok')).toBe(true);
      expect(json.map((r) => r.id)).toEqual(expect.arrayContaining([okRun, labelled]));
      expect(json.map((r) => r.id)).not.toContain(failedRun);

      const byLabel = await cliJson<RunJson[]>(['runs', '--label', 'owner=status-test']);
      expect(byLabel.json.map((r) => r.id)).toEqual([labelled]);
      const both = await cliJson<RunJson[]>(['runs', '--label', 'owner=status-test', '--label', 'env=e2e']);
      expect(both.json.map((r) => r.id)).toEqual([labelled]);
      const mismatch = await cliJson<RunJson[]>(['runs', '--label', 'owner=status-test', '--label', 'env=prod']);
      expect(mismatch.json).toEqual([]);

      const text = await cli(['runs', '--label', 'owner=status-test']);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`^${labelled}\\s+e2e-ok\\s+succeeded`, 'm'));
      expect(text.stdout).not.toMatch(new RegExp(`^${okRun}\\s`, 'm'));
    });

    it('jobs --run R --state failed --json', async () => {
      const { json, res } = await cliJson<JobJson[]>(['jobs', '--run', String(failedRun), '--state', 'failed']);
      expect(res.code).toBe(0);
      expect(json).toHaveLength(1);
      expect(json[0]).toMatchObject({
        id: `${failedRun}:bad`,
        runId: failedRun,
        task: 'bad',
        chunk: null,
        state: 'failed',
        attempts: 1,
        worker: expect.any(String),
        startedAt: expect.any(Number),
        finishedAt: expect.any(Number),
        error: expect.stringContaining('exit code 3'),
      });
      const all = await cliJson<JobJson[]>(['jobs', '--run', String(failedRun)]);
      expect(all.json.map((j) => `${j.task}=${j.state}`).sort()).toEqual(['after=skipped', 'bad=failed', 'good=succeeded']);
    });

    it('logs RUN shows the lines of every job, prefixed with the job id', async () => {
      const r = await cli(['logs', String(okRun)]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${okRun}:greet: hello world$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^${okRun}:second: second$`, 'm'));
      const failed = await cli(['logs', String(failedRun)]);
      expect(failed.stdout).toMatch(new RegExp(`^${failedRun}:good: fine$`, 'm'));
      expect(failed.stdout).toMatch(new RegExp(`^${failedRun}:bad: .*about to fail$`, 'm'));
      expect(failed.stdout).not.toContain('never');
    });

    it('logs RUN:TASK -f follows a running job until it ends', async () => {
      const id = await startRun(server, 'e2e-ticker', [], dir);
      await waitForJobState(server, id, 'tick', 'running');
      const started = Date.now();
      const follow = await gantry(['logs', `${id}:tick`, '-f'], { server, cwd: dir, timeoutMs: 20_000 });
      const ended = Date.now();
      expect(follow.code).toBe(0);
      const ticks = follow.stdout.split('\n').filter((l) => l.startsWith('tick '));
      expect(ticks).toEqual(['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5']);
      const { json } = await cliJson<JobJson[]>(['jobs', '--run', String(id)]);
      expect(json.map((j) => j.state)).toEqual(['succeeded']);
      // it was following while the job ran, and stopped on its own once the job had ended
      expect(json[0]!.finishedAt!).toBeGreaterThan(started);
      expect(ended).toBeGreaterThanOrEqual(json[0]!.finishedAt!);
      expect(ended - json[0]!.finishedAt!).toBeLessThan(3_000); // a missed wake-up would take the 10 s long poll
    });
  });

  describe('cancel', () => {
    it('cancel RUN kills its running job within seconds', async () => {
      const id = await startRun(server, 'e2e-sleeper', [], dir);
      const shell = await pidFrom(`nap-${id}.shpid`);
      const sleeper = await pidFrom(`nap-${id}.pid`);
      expect(isAlive(shell)).toBe(true);
      expect(isAlive(sleeper)).toBe(true);
      const t0 = Date.now();
      const r = await cli(['cancel', String(id)]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`run ${id} cancelled`));
      const run = await waitForRunState(server, id, 'cancelled', 2_000);
      expect(run.jobs![0]!.state).toBe('cancelled');
      await waitFor('the job shell to be gone', () => !isAlive(shell), { timeoutMs: 2_000 });
      await waitFor('the sleep to be gone', () => !isAlive(sleeper), { timeoutMs: 2_000 });
      expect(Date.now() - t0).toBeLessThan(4_000);
      expect(() => process.kill(shell, 0)).toThrow();
      const status = await cli(['status', String(id)]);
      expect(status.code).toBe(1); // a cancelled run did not succeed
    });

    it('cancel RUN:TASK cancels one job and leaves the others running', async () => {
      const id = await startRun(server, 'e2e-pair', [], dir);
      const xShell = await pidFrom(`x-${id}.shpid`);
      const xSleep = await pidFrom(`x-${id}.pid`);
      const yShell = await pidFrom(`y-${id}.shpid`);
      const ySleep = await pidFrom(`y-${id}.pid`);
      const r = await cli(['cancel', `${id}:x`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`job ${id}:x cancelled`));
      await waitForJobState(server, id, 'x', 'cancelled', 2_000);
      await waitFor('x to be gone', () => !isAlive(xShell) && !isAlive(xSleep), { timeoutMs: 2_000 });
      expect(() => process.kill(xShell, 0)).toThrow();
      const { json } = await cliJson<JobJson[]>(['jobs', '--run', String(id), '--state', 'running']);
      expect(json.map((j) => j.id)).toEqual([`${id}:y`]);
      expect(isAlive(yShell)).toBe(true);
      expect(isAlive(ySleep)).toBe(true);
      expect((await cliJson<RunJson>(['status', String(id)])).json.state).toBe('running');

      const all = await cli(['cancel', String(id)]);
      expect(all.code).toBe(0);
      await waitFor('y to be gone', () => !isAlive(yShell) && !isAlive(ySleep), { timeoutMs: 2_000 });
      await waitForRunState(server, id, 'cancelled', 2_000);
    });
  });

  describe('retry', () => {
    it('retry RUN --failed --wait reruns the failed job and what it skipped, not what succeeded', async () => {
      const { json: first, res } = await cliJson<RunJson>(['run', 'e2e-retry', '--wait']);
      expect(res.code).toBe(1);
      expect(first.state).toBe('failed');
      expect(Object.fromEntries(first.jobs!.map((j) => [j.task, j.state]))).toEqual({ a: 'succeeded', b: 'failed', c: 'skipped' });

      const r = await cli(['retry', String(first.id), '--failed', '--wait']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^run ${first.id} succeeded$`, 'm'));

      const { json: done } = await cliJson<RunJson>(['status', String(first.id)]);
      expect(done.state).toBe('succeeded');
      const byTask = Object.fromEntries(done.jobs!.map((j) => [j.task, j]));
      expect(byTask.a).toMatchObject({ state: 'succeeded', attempts: 1 });
      expect(byTask.b).toMatchObject({ state: 'succeeded', attempts: 2 });
      expect(byTask.c).toMatchObject({ state: 'succeeded', attempts: 1 });
      expect(lines(path.join(dir, `a-count-${first.id}`))).toEqual(['ran']);
      const logs = await cli(['logs', `${first.id}:c`]);
      expect(logs.stdout).toMatch(/^c ran$/m);
    });
  });

  describe('exit codes', () => {
    it('exit 3 when the server cannot be reached', async () => {
      const port = await freePort();
      const commands = [
        ['workflows'],
        ['apply', 'ok.yaml'],
        ['run', 'e2e-ok'],
        ['run', 'e2e-ok', '--wait'],
        ['status', '1'],
        ['status'],
        ['runs'],
        ['jobs', '--run', '1'],
        ['logs', '1'],
        ['logs', '1:a', '-f'],
        ['cancel', '1'],
        ['cancel', '1:a'],
        ['retry', '1', '--failed'],
        ['workers'],
      ];
      const results = await Promise.all([
        // port 1: fetch refuses it outright; the free port: connection refused
        ...[['runs'], ['status', '1'], ['apply', 'ok.yaml']].map((c) => gantry(c, { server: 'http://127.0.0.1:1', cwd: dir })),
        ...commands.map((c) => gantry(c, { server: `http://127.0.0.1:${port}`, cwd: dir })),
        gantry(['runs'], { env: { GANTRY_SERVER: `http://127.0.0.1:${port}` }, cwd: dir }),
      ]);
      for (const r of results) {
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 3, stderr: expect.stringMatching(/cannot reach/i) });
      }
    });

    it('GANTRY_SERVER picks the server', async () => {
      const r = await gantry(['runs', '--workflow', 'e2e-ok'], { env: { GANTRY_SERVER: server }, cwd: dir });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/e2e-ok/);
    });

    it('usage errors exit 2', async () => {
      const cases = [
        ['runs', '--no-such-option'],
        ['run'], // missing WORKFLOW
        ['cancel'], // missing RUN|JOB
        ['no-such-command'],
        ['status', 'abc'],
        ['jobs', '--run', 'abc'],
        ['run', 'e2e-ok', '-p', 'novalue'],
        ['run', 'e2e-ok', '--label', '=x'],
        ['logs', 'not a target'],
        ['validate'],
      ];
      const countRuns = async () => (await cliJson<RunJson[]>(['runs', '--limit', '10000'])).json.length;
      const before = await countRuns();
      const results = await Promise.all(cases.map((c) => cli(c)));
      results.forEach((r, i) => {
        expect({ args: cases[i], code: r.code }).toEqual({ args: cases[i], code: 2 });
        expect(r.stderr.trim()).not.toBe('');
      });
      expect(await countRuns()).toBe(before); // none of them started anything
    });

    it('a --server that is not a URL is bad usage: exit 2 with a message, no stack trace', async () => {
      for (const env of [{}, { GANTRY_SERVER: 'not-a-url' }] as Record<string, string>[]) {
        const r = await gantry(env.GANTRY_SERVER ? ['runs'] : ['--server', 'not-a-url', 'runs'], { env, cwd: dir });
        expect(r.code).toBe(2);
        expect(r.stderr).toContain('not-a-url');
        expect(r.stderr).not.toMatch(/^\s+at /m);
      }
    });

    it('a number option given a non-number exits 2 and says why', async () => {
      for (const args of [['runs', '--limit', 'many'], ['run', 'e2e-ok', '--priority', 'high']]) {
        const r = await cli(args);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`'${args[args.length - 1]}' is not a whole number`);
      }
    });
  });
});
