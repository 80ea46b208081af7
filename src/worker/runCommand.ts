// Runs one command as the leader of its own process group, streams its output
// line by line, and kills the whole group on abort (timeout, cancel, lost
// lease): SIGTERM first, SIGKILL after a grace period. Whatever the command
// left running in its group when it exits is killed too: a job's processes do
// not outlive the job. A supervised job (distributed stores) is also killed
// when the worker stops renewing its lease.
//
// Two ways to start it, same behaviour: through the process's launcher
// (launcher.ts, the default: a small helper forks, and supervises), or with
// Node's spawn from this process under bin/gantry-supervise (`--launcher
// spawn`, and the fallback when the helper cannot run).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { signalGroup } from './processTree.js';
import type { Launcher } from './launcher.js';

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** set when the spawn itself failed (e.g. no such program) */
  spawnError: string | null;
  /** CPU time (user + system) and peak resident memory of the job's whole process tree; null/absent: not measured */
  usage?: { cpuMs: number; maxRssBytes: number } | null;
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
}

/** How a worker starts commands: `helper` (bin/gantry-launcher, the default) or `spawn` (Node's spawn, the old way). */
export type LauncherKind = 'helper' | 'spawn';
export const LAUNCHER_KINDS: readonly LauncherKind[] = ['helper', 'spawn'];

/** The supervisor script shipped with the package (bin/gantry-supervise). */
export const SUPERVISE_SCRIPT = fileURLToPath(new URL('../../bin/gantry-supervise', import.meta.url));

/** Characters of an unfinished line held at most before they are passed on as a line. */
const MAX_PENDING_LINE = 1024 * 1024;

export function runCommand(o: RunCommandOptions): Promise<CommandResult> {
  const launcher = o.launcher;
  if (launcher) {
    const ready = launcher.ready();
    if (ready === true) return launcher.run(o);
    if (ready !== false) return ready.then((ok) => (ok ? launcher.run(o) : spawnCommand(o)));
  }
  return spawnCommand(o);
}

/** The command started by Node's spawn from this process (under gantry-supervise when supervised). */
function spawnCommand(o: RunCommandOptions): Promise<CommandResult> {
  return new Promise((resolve) => {
    const supervised = o.superviseSeconds !== undefined && o.superviseSeconds !== null;
    const argv = supervised ? ['bash', SUPERVISE_SCRIPT, o.superviseSeconds!.toFixed(3), ...o.argv] : o.argv;
    const child = spawn(argv[0]!, argv.slice(1), { cwd: o.cwd, env: o.env, detached: true, stdio: [supervised ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    child.stdin?.on('error', () => undefined); // the job may be gone when a renewal is written
    let spawnError: string | null = null;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let killTimer: NodeJS.Timeout | null = null;

    const pipeLines = (stream: 'stdout' | 'stderr', source: NodeJS.ReadableStream) => {
      let rest = '';
      source.setEncoding('utf8');
      source.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const p of parts) o.onLine(stream, p);
        // output that never ends a line (a service running for months) is passed on in pieces, not held
        if (rest.length > MAX_PENDING_LINE) {
          o.onLine(stream, rest);
          rest = '';
        }
      });
      source.on('end', () => {
        if (rest) o.onLine(stream, rest);
        rest = '';
      });
    };
    pipeLines('stdout', child.stdout!);
    pipeLines('stderr', child.stderr!);

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
