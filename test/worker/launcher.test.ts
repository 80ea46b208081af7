// Commands started through the launcher (bin/gantry-launcher, a real Perl
// process) behave as those started by Node's spawn: output lines, exit codes,
// spawn errors, a cancel that kills the whole process group; and the launcher
// is the jobs' supervisor: no renewal, or its own death, kills them.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Launcher } from '../../src/worker/launcher.js';
import { runCommand, type CommandResult, type LauncherKind, type RunCommandOptions } from '../../src/worker/runCommand.js';
import { processAlive } from '../../src/worker/processTree.js';
import { silentLogger } from '../../src/log.js';

const launchers: Launcher[] = [];
const pids: number[] = [];
afterEach(() => {
  for (const l of launchers.splice(0)) l.release();
  for (const p of pids.splice(0)) if (processAlive(p)) process.kill(p, 'SIGKILL');
});

function launcher(): Launcher {
  const l = new Launcher(silentLogger()).acquire();
  launchers.push(l);
  return l;
}

interface Ran {
  /** without its usage, which `usage` resolves to */
  result: Promise<CommandResult>;
  usage: Promise<CommandResult['usage']>;
  lines: string[];
  started: Promise<number>;
  renew: () => void;
  abort: AbortController;
}

function run(kind: LauncherKind, argv: string[], o: Partial<RunCommandOptions> = {}, l: Launcher | null = kind === 'helper' ? launcher() : null): Ran {
  const lines: string[] = [];
  const abort = new AbortController();
  let renewer: (() => void) | null = null;
  let started!: (pid: number) => void;
  const startedP = new Promise<number>((r) => (started = r));
  let usage!: (u: CommandResult['usage']) => void;
  const usageP = new Promise<CommandResult['usage']>((r) => (usage = r));
  const result = runCommand({
    argv,
    cwd: os.tmpdir(),
    env: { ...process.env },
    signal: abort.signal,
    killGraceMs: 300,
    launcher: l,
    onLine: (stream, line) => lines.push(`${stream}:${line}`),
    onSpawn: (pid, renew) => {
      renewer = renew;
      started(pid);
    },
    ...o,
  }).then(({ usage: u, ...r }) => {
    usage(u);
    return r;
  });
  return { result, lines, started: startedP, renew: () => renewer?.(), abort, usage: usageP };
}

/** pids a shell script wrote to FILE, one a line, once there are `n` */
async function pidsIn(file: string, n: number): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    const got = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
    if (got.length >= n) {
      pids.push(...got);
      return got;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${file}: fewer than ${n} pids`);
}

async function gone(ps: number[], withinMs = 3_000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (ps.every((p) => !processAlive(p))) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-launcher-'));

describe('commands through the launcher, and through Node’s spawn, alike', () => {
  for (const kind of ['helper', 'spawn'] as const) {
    it(`${kind}: lines of both streams in order, the last one without a newline, tabs and backslashes intact; the exit code; the pid is the group's`, async () => {
      const script = 'printf "%s\\n" "$1"; sleep 0.1; echo err >&2; sleep 0.1; printf "multi\\nlast %s" "$X"; exit 3';
      const r = run(kind, ['/bin/sh', '-c', script, 'sh', 'a\tb\\c'], { env: { ...process.env, X: 'x\ty' } });
      const pid = await r.started;
      expect(await r.result).toEqual({ exitCode: 3, signal: null, spawnError: null });
      expect(r.lines).toEqual(['stdout:a\tb\\c', 'stderr:err', 'stdout:multi', 'stdout:last x\ty']);
      expect(pid).toBeGreaterThan(0);
    });

    it(`${kind}: the job's environment exactly: variables added, changed and removed`, async () => {
      const env: NodeJS.ProcessEnv = { ...process.env, GANTRY_TEST_ADDED: 'new=1', PATH: `/nonexistent-bin:${process.env.PATH}` };
      delete env.HOME;
      const r = run(kind, ['/bin/sh', '-c', 'echo "$GANTRY_TEST_ADDED|${HOME-unset}|${PATH%%:*}"'], { env });
      expect((await r.result).exitCode).toBe(0);
      expect(r.lines).toEqual(['stdout:new=1|unset|/nonexistent-bin']);
    });

    it(`${kind}: a program that does not exist, or a missing working directory, is a spawn error naming it; it never started`, async () => {
      const missing = run(kind, ['gantry-no-such-program-xyz']);
      expect(await missing.result).toEqual({ exitCode: null, signal: null, spawnError: 'cannot start gantry-no-such-program-xyz: spawn gantry-no-such-program-xyz ENOENT' });
      const noDir = run(kind, ['/bin/true'], { cwd: '/nonexistent-gantry-dir' });
      expect((await noDir.result).spawnError).toBe('cannot start /bin/true: spawn /bin/true ENOENT');
      expect(missing.lines).toEqual([]);
      let spawned = false;
      void missing.started.then(() => (spawned = true));
      await new Promise((r) => setTimeout(r, 10));
      expect(spawned).toBe(false);
    });

    it(`${kind}: a cancel kills the whole process group: SIGTERM, then SIGKILL after the grace period for what ignores it`, async () => {
      const dir = tmp();
      const file = path.join(dir, 'pids');
      const r = run(kind, ['/bin/sh', '-c', `echo $$ >> ${file}; sh -c 'trap "" TERM; echo $$ >> ${file}; sleep 60' & sleep 60 & echo $! >> ${file}; wait`]);
      const [shell, stubborn, sleeper] = await pidsIn(file, 3);
      r.abort.abort();
      // the shell and its sleep die of SIGTERM; the one that ignores it dies of the SIGKILL 300 ms later
      expect(await gone([shell!, sleeper!], 2_000)).toBe(true);
      expect(await gone([stubborn!], 3_000)).toBe(true);
      expect((await r.result).signal).toBe('SIGTERM');
    });

    it(`${kind}: what the command leaves running in its group dies when it exits`, async () => {
      const dir = tmp();
      const file = path.join(dir, 'pids');
      const r = run(kind, ['/bin/sh', '-c', `sleep 60 >/dev/null 2>&1 & echo $! >> ${file}`]);
      expect((await r.result).exitCode).toBe(0);
      const [left] = await pidsIn(file, 1);
      expect(await gone([left!])).toBe(true);
    });
  }
});

describe('output through the launcher', () => {
  it('many lines, some with backslashes, tabs or nothing, in both streams: the same lines as through Node’s spawn', async () => {
    const awk = `awk 'BEGIN { for (i = 0; i < 30000; i++) { if (i % 7 == 0) print "a\\\\\\\\n" i; else if (i % 11 == 0) print "t\\tb" i; else if (i % 13 == 0) print ""; else print i } print "err" i > "/dev/stderr"; printf "no newline" }'`;
    const helper = run('helper', ['/bin/sh', '-c', awk]);
    const spawned = run('spawn', ['/bin/sh', '-c', awk]);
    expect((await helper.result).exitCode).toBe(0);
    expect((await spawned.result).exitCode).toBe(0);
    expect(helper.lines).toHaveLength(30002);
    expect(helper.lines.slice(0, 3)).toEqual(['stdout:a\\\\n0', 'stdout:1', 'stdout:2']);
    expect(helper.lines).toContain('stdout:t\tb11');
    expect(helper.lines).toContain('stdout:');
    expect(helper.lines.filter((l) => l.startsWith('stderr:'))).toEqual(['stderr:err30000']);
    expect([...helper.lines].sort()).toEqual([...spawned.lines].sort());
    expect(helper.lines.filter((l) => l.startsWith('stdout:'))).toEqual(spawned.lines.filter((l) => l.startsWith('stdout:')));
  });
});

describe('the launcher as supervisor', () => {
  it('kills a supervised job whose lease stops being renewed, saying so on its stderr; renewed, it runs on', async () => {
    const renewed = run('helper', ['/bin/sh', '-c', 'sleep 0.8; echo done'], { superviseSeconds: 0.3 });
    await renewed.started;
    const timer = setInterval(() => renewed.renew(), 100);
    const abandoned = run('helper', ['/bin/sh', '-c', 'sleep 30'], { superviseSeconds: 0.3 });
    await abandoned.started;
    const t0 = Date.now();
    const r = await abandoned.result;
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(r.signal).toBe('SIGKILL');
    expect(abandoned.lines).toEqual(["stderr:gantry-supervise: the worker stopped renewing this job's lease: killing the job"]);
    expect(await renewed.result).toEqual({ exitCode: 0, signal: null, spawnError: null });
    clearInterval(timer);
    expect(renewed.lines).toEqual(['stdout:done']);
  });

  it('reports a supervised job killed by a signal as gantry-supervise did: exit code 128 + the signal', async () => {
    const r = run('helper', ['/bin/sh', '-c', 'kill -9 $$'], { superviseSeconds: 5 });
    expect(await r.result).toEqual({ exitCode: 137, signal: null, spawnError: null });
  });

  it('dies with kill -9, and its jobs with it: their whole groups are killed and they fail saying so; the next command starts a new launcher', async () => {
    const l = launcher();
    const dir = tmp();
    const file = path.join(dir, 'pids');
    const r = run('helper', ['/bin/sh', '-c', `echo $$ >> ${file}; sleep 60 & echo $! >> ${file}; wait`], {}, l);
    const procs = await pidsIn(file, 2);
    const helperPid = l.pid!;
    expect(helperPid).toBeGreaterThan(0);
    process.kill(helperPid, 'SIGKILL');
    const res = await r.result;
    expect(res).toEqual({ exitCode: null, signal: 'SIGKILL', spawnError: null });
    expect(r.lines.at(-1)).toMatch(/^stderr:gantry: the command launcher \(pid \d+\) died \(killed by SIGKILL\): the job's processes were killed$/);
    expect(await gone(procs)).toBe(true);
    const next = run('helper', ['/bin/echo', 'again'], {}, l);
    expect(await next.result).toEqual({ exitCode: 0, signal: null, spawnError: null });
    expect(l.pid).not.toBe(helperPid);
  });

  it('kills every job, supervised or not, when its worker is gone (its stdin closes), and exits', async () => {
    const l = launcher();
    const dir = tmp();
    const file = path.join(dir, 'pids');
    const script = `echo $$ >> ${file}; sleep 60 & echo $! >> ${file}; wait`;
    void run('helper', ['/bin/sh', '-c', script], {}, l).result;
    void run('helper', ['/bin/sh', '-c', script], { superviseSeconds: 60 }, l).result;
    const procs = await pidsIn(file, 4);
    const helperPid = l.pid!;
    l.release(); // what the worker's death does: the launcher's stdin closes
    launchers.splice(launchers.indexOf(l), 1);
    expect(await gone([...procs, helperPid])).toBe(true);
  });

  it('let go and taken again at once (gantry up stopped and started in one process): the old launcher ending leaves the new one’s jobs alone', async () => {
    const l = launcher();
    expect((await run('helper', ['/bin/true'], {}, l).result).exitCode).toBe(0);
    const old = l.pid!;
    l.release();
    l.acquire();
    const r = run('helper', ['/bin/sh', '-c', 'sleep 0.5; echo ok'], {}, l);
    await r.started;
    expect(l.pid).not.toBe(old);
    expect(await r.result).toEqual({ exitCode: 0, signal: null, spawnError: null });
    expect(r.lines).toEqual(['stdout:ok']);
    expect(processAlive(old)).toBe(false);
  });

  it('without Perl, commands fall back to Node’s spawn', async () => {
    const l = new Launcher(silentLogger(), ['gantry-no-such-perl-xyz']).acquire();
    launchers.push(l);
    const r = run('helper', ['/bin/sh', '-c', 'echo fine'], {}, l);
    expect(await r.result).toEqual({ exitCode: 0, signal: null, spawnError: null });
    expect(r.lines).toEqual(['stdout:fine']);
  });
});
