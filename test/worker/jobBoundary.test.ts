// The job boundary as the command runner draws it, through both ways of
// starting commands (the launcher and Node's spawn of the keeper alone): a
// huge line cannot take the launcher's memory, nothing a job started outlives
// it (daemons that left its group included), a job runs as the user it is
// given and within its limits, and what its tree used is reported.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Launcher } from '../../src/worker/launcher.js';
import { runCommand, type CommandResult, type LauncherKind, type RunCommandOptions } from '../../src/worker/runCommand.js';
import { silentLogger } from '../../src/log.js';

const launchers: Launcher[] = [];
afterEach(() => {
  for (const l of launchers.splice(0)) l.release();
});

function launcher(): Launcher {
  const l = new Launcher(silentLogger()).acquire();
  launchers.push(l);
  return l;
}

interface Ran {
  result: Promise<CommandResult>;
  lines: string[];
  started: Promise<number>;
  abort: AbortController;
}

function run(kind: LauncherKind, argv: string[], o: Partial<RunCommandOptions> = {}, l: Launcher | null = kind === 'helper' ? launcher() : null): Ran {
  const lines: string[] = [];
  const abort = new AbortController();
  let started!: (pid: number) => void;
  const startedP = new Promise<number>((r) => (started = r));
  const result = runCommand({
    argv,
    cwd: os.tmpdir(),
    env: { ...process.env },
    signal: abort.signal,
    killGraceMs: 300,
    launcher: l,
    onLine: (stream, line) => lines.push(`${stream}:${line}`),
    onSpawn: (pid) => started(pid),
    ...o,
  });
  return { result, lines, started: startedP, abort };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sh = (script: string) => ['/bin/sh', '-c', script];

/** pids of the processes whose command line holds `marker` */
function withMarker(marker: string): number[] {
  const found: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) found.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const statusKb = (pid: number, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

let seq = 0;
const marker = () => `gantry-test-marker-${process.pid}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
/** A daemon that left the job's session (setsid), and a classic double fork, both tagged with `m`. */
const daemons = (m: string) => `setsid sh -c '(sh -c "sleep 600; :" ${m}-setsid &)'; (sh -c 'sleep 600; :' ${m}-double &) ; sleep 0.2`;

afterAll(() => {
  // nothing of these tests may be left: kill what a failed test left behind
  for (const p of withMarker(`gantry-test-marker-${process.pid}-`)) if (p !== process.pid) process.kill(p, 'SIGKILL');
});

for (const kind of ['helper', 'spawn'] as const) {
  describe(`${kind}: output cannot hurt the worker`, () => {
    it('a 100 MB line with no newline is cut at 16 KiB as it is read, with a mark; the line after it arrives; memory stays bounded', async () => {
      const l = kind === 'helper' ? launcher() : null;
      const rss0 = process.memoryUsage().rss;
      let peakNode = rss0;
      const sampler = setInterval(() => (peakNode = Math.max(peakNode, process.memoryUsage().rss)), 50);
      const r = run(kind, sh("head -c 100000000 /dev/zero | tr '\\0' x; echo; echo after; printf 'é%.0s' $(seq 9000)"), { killGraceMs: 1000 }, l);
      const res = await r.result;
      clearInterval(sampler);
      expect(res.exitCode).toBe(0);
      expect(r.lines).toHaveLength(3);
      expect(r.lines[0]).toBe(`stdout:${'x'.repeat(16384)} [gantry: line cut, ${100_000_000 - 16384} bytes dropped]`);
      expect(r.lines[1]).toBe('stdout:after');
      // 9,000 two-byte characters, no newline: cut on a character boundary
      expect(r.lines[2]).toBe(`stdout:${'é'.repeat(8192)} [gantry: line cut, ${18000 - 16384} bytes dropped]`);
      if (l) expect(statusKb(l.pid!, 'VmHWM')).toBeLessThan(64 * 1024);
      else expect(peakNode - rss0).toBeLessThan(64 * 1024 * 1024);
    }, 60_000);

    it('long lines among short ones, in pieces: the short ones intact and in order', async () => {
      const script = `awk 'BEGIN { for (i = 0; i < 50; i++) { print "s" i; s = ""; for (j = 0; j < 3000 * (i % 10); j++) s = s "y"; print s; } }'`;
      const r = run(kind, sh(script));
      expect((await r.result).exitCode).toBe(0);
      expect(r.lines).toHaveLength(100);
      for (let i = 0; i < 50; i++) {
        expect(r.lines[2 * i]).toBe(`stdout:s${i}`);
        const n = 3000 * (i % 10);
        expect(r.lines[2 * i + 1]).toBe(n > 16384 ? `stdout:${'y'.repeat(16384)} [gantry: line cut, ${n - 16384} bytes dropped]` : `stdout:${'y'.repeat(n)}`);
      }
    });
  });

  describe(`${kind}: nothing a job started outlives it`, () => {
    it('daemons that left its session, and double-forked ones, die when the job ends', async () => {
      const m = marker();
      const r = run(kind, sh(`${daemons(m)}; echo started`));
      const res = await r.result;
      expect(res.exitCode).toBe(0);
      expect(r.lines).toEqual(['stdout:started']);
      expect(withMarker(m)).toEqual([]);
    });

    it('…when the job is cancelled (or times out: the same abort), while they run', async () => {
      const m = marker();
      const r = run(kind, sh(`${daemons(m)}; echo started; sleep 600`));
      await until('the daemons', () => withMarker(m).length >= 2);
      r.abort.abort();
      expect((await r.result).signal).toBe('SIGTERM');
      expect(withMarker(m)).toEqual([]);
    });

    it('…when the job ignores SIGTERM and is killed after the grace period', async () => {
      const m = marker();
      const r = run(kind, sh(`trap '' TERM; ${daemons(m)}; echo started; sleep 600 & wait; wait`));
      await until('the daemons', () => withMarker(m).length >= 2);
      r.abort.abort();
      expect((await r.result).signal).toBe('SIGKILL');
      expect(withMarker(m)).toEqual([]);
    });
  });

  describe(`${kind}: limits`, () => {
    it('memory: an allocation past the limit fails', async () => {
      const r = run(kind, ['perl', '-e', '$x = "x" x (300 * 1024 * 1024); print "allocated\\n"'], { limits: { memoryBytes: 200 * 1024 * 1024 } });
      const res = await r.result;
      expect(res.exitCode).not.toBe(0);
      expect(r.lines).not.toContain('stdout:allocated');
      const free = run(kind, ['perl', '-e', '$x = "x" x (50 * 1024 * 1024); print "allocated\\n"'], { limits: { memoryBytes: 200 * 1024 * 1024 } });
      expect((await free.result).exitCode).toBe(0);
      expect(free.lines).toEqual(['stdout:allocated']);
    });

    it('open files: ulimit -n inside shows it', async () => {
      const r = run(kind, sh('ulimit -n'), { limits: { openFiles: 37 } });
      expect((await r.result).exitCode).toBe(0);
      expect(r.lines).toEqual(['stdout:37']);
    });

    it('cpu time: a spinning job is killed', async () => {
      const t0 = Date.now();
      const r = run(kind, sh('while :; do :; done'), { limits: { cpuSeconds: 1 } });
      const res = await r.result;
      expect(res.signal).toBe('SIGXCPU');
      // the kernel's limit counts exact run time; rusage's split into user and system, ticks: a little less
      expect(res.usage!.cpuMs).toBeGreaterThanOrEqual(700);
      expect(Date.now() - t0).toBeLessThan(30_000);
    }, 40_000);

    it('a wrong limit is a clear start error, and nothing starts', async () => {
      const r = run(kind, sh('echo ran'), { limits: { memoryBytes: -5 } });
      expect(await r.result).toEqual({ exitCode: null, signal: null, spawnError: 'cannot start /bin/sh: limits.memoryBytes must be a positive integer, got -5' });
      expect(r.lines).toEqual([]);
    });
  });

  describe(`${kind}: usage`, () => {
    it('CPU time of the whole tree', async () => {
      // two processes of ~0.5 s of CPU each: the tree's sum
      const burn = `perl -e 'while ((times)[0] + (times)[1] < 0.5) {}'`;
      const r = run(kind, sh(`${burn} & ${burn}; wait`));
      const res = await r.result;
      expect(res.exitCode).toBe(0);
      expect(res.usage!.cpuMs).toBeGreaterThanOrEqual(950);
      expect(res.usage!.cpuMs).toBeLessThan(3_000);
    });

    it('peak memory: one process holding ~100 MB; and two holding 70 MB each at once (summed from /proc)', async () => {
      const one = run(kind, ['perl', '-e', '$x = "x" x (100 * 1024 * 1024); sleep 1']);
      expect((await one.result).usage!.maxRssBytes).toBeGreaterThanOrEqual(100 * 1024 * 1024);
      const hold = `perl -e '$x = "x" x (70 * 1024 * 1024); sleep 3'`;
      const two = run(kind, sh(`${hold} & ${hold}; wait`));
      const u = (await two.result).usage!;
      expect(u.maxRssBytes).toBeGreaterThanOrEqual(140 * 1024 * 1024);
      expect(u.maxRssBytes).toBeLessThan(400 * 1024 * 1024);
    }, 20_000);
  });
}

describe('run as another user', () => {
  const name = `gtl${process.pid % 100000}`;
  const group = `${name}x`;
  let uid = 0;
  let gid = 0;
  let extra = 0;
  let secret = '';
  beforeAll(() => {
    execFileSync('groupadd', [group]);
    execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', '--groups', group, name]);
    uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    extra = Number(execFileSync('getent', ['group', group], { encoding: 'utf8' }).split(':')[2]);
    secret = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-runas-')), 'secret');
    fs.writeFileSync(secret, 'root only\n', { mode: 0o600 });
    fs.chmodSync(path.dirname(secret), 0o755);
  });
  afterAll(() => {
    execFileSync('userdel', [name]);
    execFileSync('groupdel', [group]);
    fs.rmSync(path.dirname(secret), { recursive: true, force: true });
  });

  for (const kind of ['helper', 'spawn'] as const) {
    it(`${kind}: the job has the user's uid, gid and groups, all three uids (no way back to root), and cannot read a root-only file`, async () => {
      const r = run(kind, sh(`id -u; id -g; id -G; grep -E '^(Uid|Gid)' /proc/self/status | tr -s '\\t' ' '; cat ${secret} || echo denied`), {
        runAs: { uid, gid, groups: [gid, extra] },
      });
      expect((await r.result).exitCode).toBe(0);
      expect(r.lines).toEqual([
        `stdout:${uid}`,
        `stdout:${gid}`,
        `stdout:${gid} ${extra}`,
        `stdout:Uid: ${uid} ${uid} ${uid} ${uid}`,
        `stdout:Gid: ${gid} ${gid} ${gid} ${gid}`,
        `stderr:cat: ${secret}: Permission denied`,
        'stdout:denied',
      ]);
    });

    it(`${kind}: processes: the user's processes are limited`, async () => {
      const script = 'sleep 1 & sleep 1 & sleep 1 & sleep 1 & sleep 1 & echo all started';
      const r = run(kind, sh(script), { runAs: { uid, gid, groups: [gid] }, limits: { processes: 3 } });
      expect((await r.result).exitCode).not.toBe(0);
      expect(r.lines).toEqual([expect.stringMatching(/^stderr:\/bin\/sh: \d+: Cannot fork$/)]);
      const unlimited = run(kind, sh(script), { runAs: { uid, gid, groups: [gid] } });
      expect((await unlimited.result).exitCode).toBe(0);
      expect(unlimited.lines).toEqual(['stdout:all started']);
    });

    it(`${kind}: a wrong user is a clear start error`, async () => {
      const r = run(kind, sh('echo ran'), { runAs: { uid: -1, gid, groups: [] } });
      expect((await r.result).spawnError).toBe('cannot start /bin/sh: runAs.uid must be a user id (an integer from 0), got -1');
      expect(r.lines).toEqual([]);
    });
  }
});
