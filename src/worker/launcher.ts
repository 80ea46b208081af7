// The worker's side of bin/gantry-launcher: one small helper process per
// worker process starts every command, so the worker's big Node process never
// forks (Node's spawn forks the caller synchronously, and the fork costs more
// the bigger the caller is: it was most of the main thread's time per short
// command). The helper also is the supervisor of the jobs it starts: it kills
// a job when the worker stops renewing its lease, and every job when the
// worker dies (its stdin closes). Each job is the child subreaper of its own
// tree and the helper of what a finished job leaves: what a job started dies
// with it, daemons included. The helper applies a job's user and limits and
// reports its usage. If the helper dies, the worker kills the groups it knows of.
//
// Shared by the workers of a process (acquireLauncher/release); started on
// first use, again after a crash. Without Perl it is not usable and commands
// fall back to Node's spawn from the worker (runCommand.ts).
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import { signalGroup } from './processTree.js';
import type { CommandResult, RunCommandOptions } from './runCommand.js';
import { envChanges, usageOf } from './jobBounds.js';
import { launcherEnv } from './jobEnvironment.js';

/** The launcher script shipped with the package (bin/gantry-launcher). */
export const LAUNCHER_SCRIPT = fileURLToPath(new URL('../../bin/gantry-launcher', import.meta.url));

/** What the helper prints before it kills a job whose lease stopped being renewed (as gantry-supervise does). */
export const SUPERVISOR_KILL_LINE = 'gantry-supervise: the worker stopped renewing';

interface LaunchedJob {
  o: RunCommandOptions;
  /** the helper that started it (a released helper may still be ending while a new one runs) */
  helper: HelperProcess;
  /** its process group, once forked */
  pid: number | null;
  resolve: (r: CommandResult) => void;
  killTimer: NodeJS.Timeout | null;
  onAbort: () => void;
}

type HelperProcess = ChildProcessByStdio<Writable, Readable, null>;

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));
/** A signal's name from its number (as the launcher reports it). */
export const signalName = (n: number): NodeJS.Signals | null => SIGNAL_NAMES.get(n) ?? null;

const escapeField = (s: string) => (/[\\\t\n]/.test(s) ? s.replace(/[\\\t\n]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : '\\n')) : s);
export const unescapeField = (s: string) => (s.includes('\\') ? s.replace(/\\([\\tn])/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : '\\')) : s);
/** The lines of an `out`/`err` message: with no escaped backslash or tab in it, every backslash starts an escaped newline. */
const linesOf = (s: string) => (s.includes('\\\\') || s.includes('\\t') ? unescapeField(s).split('\n') : s.split('\\n'));

export class Launcher {
  private helper: HelperProcess | null = null;
  /** resolves true once the helper said `ready`, false if it could not start */
  private starting: Promise<boolean> | null = null;
  /** false once Perl turned out missing: commands are started by Node's spawn from then on */
  private usable = true;
  private readonly jobs = new Map<number, LaunchedJob>();
  private nextId = 1;
  private users = 0;
  /** jobs under way per helper: one with none does not keep the process alive */
  private readonly running = new Map<HelperProcess, number>();
  /** the environment the helper was started with: a job's is sent as its difference from it */
  private baseEnv: NodeJS.ProcessEnv = {};
  private baseEnvSize = 0;

  constructor(
    private readonly logger: Logger,
    private readonly command: string[] = ['perl', LAUNCHER_SCRIPT],
  ) {}

  acquire(): this {
    this.users++;
    return this;
  }

  /** The last user gone, the helper is let go (it exits when its stdin closes). */
  release(): void {
    if (--this.users > 0) return;
    this.users = 0;
    this.helper?.stdin.end();
    this.helper = null;
    this.starting = null;
  }

  /** The helper's pid while it runs (tests). */
  get pid(): number | null {
    return this.helper?.pid ?? null;
  }

  /** Whether commands can go through the helper; starts it if it is not running. */
  ready(): Promise<boolean> | boolean {
    if (!this.usable) return false;
    if (this.helper && !this.starting) return true;
    return (this.starting ??= this.start());
  }

  private start(): Promise<boolean> {
    return new Promise((resolve) => {
      this.baseEnv = launcherEnv();
      this.baseEnvSize = Object.keys(this.baseEnv).length;
      const helper = spawn(this.command[0]!, this.command.slice(1), {
        env: this.baseEnv,
        stdio: ['pipe', 'pipe', 'inherit'],
        // its own session: a terminal's Ctrl-C or Ctrl-Z goes to the worker, not to the jobs' supervisor
        detached: true,
      });
      let ready = false;
      helper.stdin.on('error', () => undefined); // it died: its 'exit' tells
      helper.on('error', (e) => {
        if (ready) return;
        this.usable = false;
        this.starting = null;
        this.logger.warn({ err: e }, `cannot start the command launcher (${this.command.join(' ')}): commands are started by Node's spawn instead`);
        resolve(false);
      });
      helper.on('exit', (code, signal) => {
        if (this.helper === helper) this.helper = null;
        if (!ready) {
          if (this.usable) this.logger.warn({ code, signal }, "the command launcher exited before it was ready: commands are started by Node's spawn instead");
          this.usable = false;
          this.starting = null;
          resolve(false);
          return;
        }
        this.lost(helper, code, signal);
      });
      let rest: Buffer | null = null;
      helper.stdout.on('data', (chunk: Buffer) => {
        if (!ready) {
          ready = true;
          this.helper = helper;
          this.starting = null;
          if (!this.running.get(helper)) this.idle(helper);
          resolve(true);
        }
        const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
        let start = 0;
        for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
          this.message(buf.toString('utf8', start, nl));
          start = nl + 1;
        }
        rest = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
      });
      // Until it is ready, a command waits for it: its stdout keeps the process alive until then.
      helper.unref();
    });
  }

  /** A helper with no job does not keep the process alive; one with jobs does, as their child processes did. */
  private idle(helper: HelperProcess): void {
    (helper.stdout as Readable & { unref?: () => void }).unref?.();
  }

  private busy(helper: HelperProcess): void {
    (helper.stdout as Readable & { ref?: () => void }).ref?.();
  }

  /** To the helper that started the job, while it runs. */
  private send(job: LaunchedJob, fields: string[]): boolean {
    if (job.helper.exitCode !== null || job.helper.signalCode !== null || job.helper.stdin.writableEnded) return false;
    job.helper.stdin.write(fields.join('\t') + '\n');
    return true;
  }

  /** Runs one command through the helper (call only once ready() said true); `bounds`: its RUN_AS and LIMITS fields. */
  run(o: RunCommandOptions, bounds: { runAs: string; limits: string } = { runAs: '', limits: '' }): Promise<CommandResult> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      const helper = this.helper;
      if (!helper) return resolve({ exitCode: null, signal: null, spawnError: `cannot start ${o.argv[0]}: the command launcher is not running` });
      const job: LaunchedJob = { o, helper, pid: null, resolve, killTimer: null, onAbort: () => undefined };
      const supervised = o.superviseSeconds !== undefined && o.superviseSeconds !== null;
      const fields = ['run', String(id), supervised ? o.superviseSeconds!.toFixed(3) : '', bounds.runAs, bounds.limits, escapeField(o.cwd), String(o.argv.length)];
      for (const a of o.argv) fields.push(escapeField(a));
      for (const kv of envChanges(this.baseEnv, this.baseEnvSize, o.env)) fields.push(escapeField(kv));
      const n = this.running.get(helper) ?? 0;
      if (n === 0) this.busy(helper);
      this.running.set(helper, n + 1);
      this.jobs.set(id, job);
      this.send(job, fields);
      // SIGTERM to the whole group, SIGKILL after the grace period
      job.onAbort = () => {
        this.signal(id, job, 'TERM');
        job.killTimer = setTimeout(() => this.signal(id, job, 'KILL'), o.killGraceMs);
        job.killTimer.unref();
      };
      if (o.signal.aborted) job.onAbort();
      else o.signal.addEventListener('abort', job.onAbort, { once: true });
    });
  }

  private signal(id: number, job: LaunchedJob, signal: 'TERM' | 'KILL'): void {
    // Through the helper, which knows when the pid stops being the job's; directly if it is gone.
    if (!this.send(job, ['kill', String(id), signal]) && job.pid !== null) signalGroup(job.pid, `SIG${signal}`);
  }

  private finish(id: number, job: LaunchedJob, r: CommandResult): void {
    if (!this.jobs.delete(id)) return;
    if (job.killTimer) clearTimeout(job.killTimer);
    job.o.signal.removeEventListener('abort', job.onAbort);
    const n = (this.running.get(job.helper) ?? 1) - 1;
    if (n > 0) this.running.set(job.helper, n);
    else {
      this.running.delete(job.helper);
      this.idle(job.helper);
    }
    job.resolve(r);
  }

  private message(line: string): void {
    const f = line.split('\t');
    const id = Number(f[1]);
    const job = this.jobs.get(id);
    if (!job) return; // `ready`, or a job already given up
    switch (f[0]) {
      case 'out':
      case 'err': {
        const stream = f[0] === 'out' ? 'stdout' : 'stderr';
        for (const text of linesOf(f[2] ?? '')) job.o.onLine(stream, text);
        break;
      }
      case 'forked':
        job.pid = Number(f[2]);
        break;
      case 'started':
        job.o.onSpawn?.(job.pid!, job.o.superviseSeconds != null ? () => void this.send(job, ['renew', String(id)]) : null);
        break;
      case 'failed':
        this.finish(id, job, { exitCode: null, signal: null, spawnError: `cannot start ${job.o.argv[0]}: ${unescapeField(f[2] ?? '')}` });
        break;
      case 'exit':
        this.finish(id, job, { exitCode: f[2] ? Number(f[2]) : null, signal: f[3] ? signalName(Number(f[3])) : null, spawnError: null, usage: usageOf(f[4], f[5]) });
        break;
    }
  }

  /** The helper died under its jobs: they must not run on unsupervised, so their groups are killed. */
  private lost(helper: HelperProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    const orphans = [...this.jobs].filter(([, job]) => job.helper === helper);
    if (orphans.length > 0) this.logger.error({ pid: helper.pid, code, signal, jobs: orphans.length }, 'the command launcher died: killing its jobs');
    for (const [id, job] of orphans) {
      if (job.pid !== null) signalGroup(job.pid, 'SIGKILL');
      job.o.onLine('stderr', `gantry: the command launcher (pid ${helper.pid}) died (${how}): the job's processes were killed`);
      this.finish(id, job, { exitCode: null, signal: 'SIGKILL', spawnError: null });
    }
  }
}

let shared: Launcher | null = null;

/** The process's launcher, shared by its workers; call release() when done with it. */
export function acquireLauncher(logger: Logger): Launcher {
  shared ??= new Launcher(logger);
  return shared.acquire();
}
