// Runs one command as the leader of its own process group, streams its output
// line by line (each cut at 16 KiB as it is read), and kills the whole group on
// abort (timeout, cancel, lost lease): SIGTERM first, SIGKILL after a grace
// period. Whatever the command left running when it exits is killed, daemons
// that left its group or session included (child subreapers: see
// bin/gantry-launcher): a job's processes do not outlive the job. Its limits
// and user are applied before exec, and what its tree used is reported. A
// supervised job (distributed stores) is also killed when the worker stops
// renewing its lease.
//
// Two ways to start it, same behaviour: through the process's launcher
// (launcher.ts, the default: a small helper forks, and supervises), or with
// Node's spawn from this process of a one-command keeper,
// `gantry-launcher --job` (`--launcher spawn`). Where Perl cannot be run at all
// the command is spawned bare, under bin/gantry-supervise when supervised:
// no keeper, so no subreaper, no usage, and no user or limits (refused).
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { signalGroup } from './processTree.js';
import { LAUNCHER_SCRIPT, signalName, unescapeField, type Launcher } from './launcher.js';
import { LineCutter } from './lineCutter.js';
import { launcherEnv } from './jobEnvironment.js';
import { boundsFields, envChanges, usageOf, type CommandLimits, type CommandUsage, type RunAs } from './jobBounds.js';

export type { CommandLimits, CommandUsage, RunAs } from './jobBounds.js';

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** set when the spawn itself failed (e.g. no such program, a user it cannot switch to) */
  spawnError: string | null;
  /** CPU and peak memory of the command's whole process tree; null or absent where not measured */
  usage?: CommandUsage | null;
}

export interface RunCommandOptions {
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  killGraceMs: number;
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
  /** `renew`, when the command runs under gantry-supervise: tells it the lease was renewed */
  onSpawn?: (pid: number, renew: (() => void) | null) => void;
  /** seconds without a renewal after which the job is killed; null: not supervised */
  superviseSeconds?: number | null;
  /** starts the command; null or absent: Node's spawn from this process */
  launcher?: Launcher | null;
  /** run as this user (the worker must be root to switch); null or absent: as the worker */
  runAs?: RunAs | null;
  /** rlimits of the command (and of what it starts) */
  limits?: CommandLimits | null;
}

/** How a worker starts commands: `helper` (bin/gantry-launcher, the default) or `spawn` (Node's spawn, the old way). */
export type LauncherKind = 'helper' | 'spawn';
export const LAUNCHER_KINDS: readonly LauncherKind[] = ['helper', 'spawn'];

/** The supervisor script shipped with the package (bin/gantry-supervise): the bare spawn's, without Perl. */
export const SUPERVISE_SCRIPT = fileURLToPath(new URL('../../bin/gantry-supervise', import.meta.url));

export function runCommand(o: RunCommandOptions): Promise<CommandResult> {
  const fields = boundsFields(o.runAs, o.limits);
  if ('error' in fields) return Promise.resolve({ exitCode: null, signal: null, spawnError: `cannot start ${o.argv[0]}: ${fields.error}` });
  const launcher = o.launcher;
  if (launcher) {
    const ready = launcher.ready();
    if (ready === true) return launcher.run(o, fields);
    if (ready !== false) return ready.then((ok) => (ok ? launcher.run(o, fields) : spawnCommand(o, fields)));
  }
  return spawnCommand(o, fields);
}

let perl: string | null | undefined;
/** perl's path in the worker's PATH, looked up once; null: none. */
function perlPath(): string | null {
  if (perl !== undefined) return perl;
  perl = null;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', 'perl');
    try {
      accessSync(p, fsConstants.X_OK);
      perl = p;
      break;
    } catch {
      // not there
    }
  }
  return perl;
}

/** What a command's stream brings, as lines cut at 16 KiB. */
function pipeLines(o: RunCommandOptions, stream: 'stdout' | 'stderr', source: Readable): void {
  const cutter = new LineCutter((line) => o.onLine(stream, line));
  source.on('data', (chunk: Buffer) => cutter.push(chunk));
  source.on('end', () => cutter.end());
}

/** The command started by Node's spawn from this process, under its keeper (gantry-launcher --job). */
function spawnCommand(o: RunCommandOptions, fields: { runAs: string; limits: string }): Promise<CommandResult> {
  const perlBin = perlPath();
  if (!perlBin) {
    if (fields.runAs || fields.limits)
      return Promise.resolve({ exitCode: null, signal: null, spawnError: `cannot start ${o.argv[0]}: a user or limits need perl (bin/gantry-launcher), which is not in PATH` });
    return spawnBare(o);
  }
  return new Promise((resolve) => {
    const supervised = o.superviseSeconds !== undefined && o.superviseSeconds !== null;
    // The keeper runs with the allow-list of the worker's environment (a job's PERL5OPT must not reach
    // a process that is still root, nor the worker's keys a job that reads its parent's environ); the
    // job's is passed as changes to it, applied just before exec.
    const keeperEnv = launcherEnv();
    const env = envChanges(keeperEnv, Object.keys(keeperEnv).length, o.env);
    const args = [LAUNCHER_SCRIPT, '--job', supervised ? o.superviseSeconds!.toFixed(3) : '', fields.runAs, fields.limits, o.cwd, String(env.length), ...env, ...o.argv];
    const child = spawn(perlBin, args, { cwd: '/', env: keeperEnv, detached: true, stdio: [supervised ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'] });
    child.stdin?.on('error', () => undefined); // the job may be gone when a renewal is written
    let spawnError: string | null = null;
    let reported: { code: number | null; signal: NodeJS.Signals | null; usage: CommandUsage | null } | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    pipeLines(o, 'stdout', child.stdout!);
    pipeLines(o, 'stderr', child.stderr!);

    // The keeper's report: started PID | failed MESSAGE | exit CODE SIGNUM CPU_MS MAX_RSS_BYTES
    const report = child.stdio[3] as Readable;
    let rest = '';
    report.setEncoding('utf8');
    report.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const f = line.split('\t');
        if (f[0] === 'started') o.onSpawn?.(Number(f[1]), supervised ? () => child.stdin?.write('\n') : null);
        else if (f[0] === 'failed') spawnError = `cannot start ${o.argv[0]}: ${unescapeField(f[1] ?? '')}`;
        else if (f[0] === 'exit') reported = { code: f[1] ? Number(f[1]) : null, signal: f[2] ? signalName(Number(f[2])) : null, usage: usageOf(f[3], f[4]) };
      }
    });

    // SIGTERM through the keeper to the command's group; SIGUSR1 makes the keeper kill the whole tree.
    const kill = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGUSR1'), o.killGraceMs);
      killTimer.unref();
    };
    if (o.signal.aborted) kill();
    else o.signal.addEventListener('abort', kill, { once: true });

    child.on('error', (e) => {
      spawnError = `cannot start ${o.argv[0]}: cannot run the command's keeper (${perlBin}): ${e.message}`;
      if (child.pid === undefined) finish(null);
    });
    let done = false;
    const finish = (e: { code: number | null; signal: NodeJS.Signals | null } | null) => {
      if (done) return;
      done = true;
      if (killTimer) clearTimeout(killTimer);
      o.signal.removeEventListener('abort', kill);
      if (spawnError) return resolve({ exitCode: null, signal: null, spawnError });
      const r = reported as typeof reported;
      if (r) return resolve({ exitCode: r.code, signal: r.signal, spawnError: null, usage: r.usage });
      // The keeper itself died (killed from outside): what it said is all we know.
      o.onLine('stderr', `gantry: the job's keeper process (pid ${child.pid}) died (${e?.signal ?? `exit code ${e?.code}`})`);
      resolve({ exitCode: null, signal: 'SIGKILL', spawnError: null, usage: null });
    };
    child.on('close', (code, signal) => finish({ code, signal }));
  });
}

/** The command spawned bare, where Perl cannot be run: under gantry-supervise (bash) when supervised. */
function spawnBare(o: RunCommandOptions): Promise<CommandResult> {
  return new Promise((resolve) => {
    const supervised = o.superviseSeconds !== undefined && o.superviseSeconds !== null;
    const argv = supervised ? ['bash', SUPERVISE_SCRIPT, o.superviseSeconds!.toFixed(3), ...o.argv] : o.argv;
    const child = spawn(argv[0]!, argv.slice(1), { cwd: o.cwd, env: o.env, detached: true, stdio: [supervised ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    child.stdin?.on('error', () => undefined); // the job may be gone when a renewal is written
    let spawnError: string | null = null;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    pipeLines(o, 'stdout', child.stdout!);
    pipeLines(o, 'stderr', child.stderr!);

    const kill = () => {
      if (child.pid === undefined) return;
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), o.killGraceMs);
      killTimer.unref();
    };
    if (o.signal.aborted) kill();
    else o.signal.addEventListener('abort', kill, { once: true });

    child.on('spawn', () => {
      if (child.pid !== undefined) o.onSpawn?.(child.pid, supervised ? () => child.stdin?.write('\n') : null);
    });
    child.on('error', (e) => {
      spawnError = `cannot start ${o.argv[0]}: ${e.message}`;
      if (child.pid === undefined) finish({ code: null, signal: null });
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Leftover processes of the group (background children) die with the job.
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    });
    let done = false;
    const finish = (e: { code: number | null; signal: NodeJS.Signals | null }) => {
      if (done) return;
      done = true;
      if (killTimer) clearTimeout(killTimer);
      o.signal.removeEventListener('abort', kill);
      resolve({ exitCode: e.code, signal: e.signal, spawnError });
    };
    child.on('close', (code, signal) => finish(exit ?? { code, signal }));
  });
}
