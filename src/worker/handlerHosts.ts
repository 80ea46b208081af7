// A worker's handler hosts: the processes its `handler:` jobs run in
// (handlerHostMain.ts), so that a handler that spins, leaks or blocks cannot
// delay the worker's heartbeats, its API or its other jobs, and can be killed.
//
// A host is started like a command (runCommand: through the process's
// launcher, or Node's spawn under gantry-supervise), as the leader of its own
// process group, supervised when the worker supervises: while it runs a job,
// the job's lease renewals are its renewals (the worker's heartbeat calls the
// renew it was given in onStart), so a paused or cut-off worker's handler is
// killed before its lease can go to another worker; idle, the pool renews it.
//
// Hosts are kept per key (namespace, workflow folder, run-as identity): a job
// takes an idle host of its key or starts one; a host runs one job at a time;
// one killed (timeout, cancel, crash) is not reused, the next job starts a new
// one; an idle host exits after `idleMs`, and all of them when the pool closes.
//
// Aborting a job (its AbortSignal) aborts ctx.signal in the host. A host that
// does not answer the abort at once is stuck (a CPU-bound handler) and is
// killed at once; one that answers has the kill grace to finish, then is killed.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import { SUPERVISOR_KILL_LINE, type Launcher } from './launcher.js';
import { runCommand, type CommandResult, type RunCommandOptions } from './runCommand.js';
import type { RunAs } from './jobBounds.js';
import { END_MARK, lineReader, SOCKET_ENV, TOKEN_ENV, type FromHost, type HandlerJobData, type ToHost } from './handlerProtocol.js';

/** The host program (compiled: a worker running from sources starts the built one). */
export const HANDLER_HOST_MAIN = fileURLToPath(new URL('../../dist/worker/handlerHostMain.js', import.meta.url));

export interface HandlerHostKey {
  namespace: string;
  /** the workflow's folder: the host's working directory */
  folder: string;
  /** who the host runs as (a root worker, a namespace mapped to a user); absent: the worker's own user */
  runAs?: RunAs | null;
}

export interface HandlerHostPoolOptions {
  /** the process's launcher, when commands go through one; null: Node's spawn */
  launcher: () => Launcher | null;
  /** after SIGTERM, how long before SIGKILL; also how long an aborted handler has to finish */
  killGraceMs: number;
  /** a host not renewed for this long is killed by its supervisor; null: not supervised */
  superviseSeconds: number | null;
  /** an idle host exits after this long (default 60 s) */
  idleMs?: number;
  /** how long a host may take to start and connect (default 30 s) */
  startTimeoutMs?: number;
  logger: Logger;
  /** the host program's argv (default: this Node, HANDLER_HOST_MAIN) */
  command?: string[];
}

export interface HandlerRun {
  key: HandlerHostKey;
  /** the environment of a host started for this job (a host already running keeps the one it was started with) */
  env: NodeJS.ProcessEnv;
  module: string;
  exportName: string;
  /** a larger JSON result fails the attempt (checked in the host: it is not sent) */
  resultLimit: number;
  data: HandlerJobData;
  /** timeout, cancel, lost lease, shutdown */
  signal: AbortSignal;
  /** console output (the host's stdout/stderr) and ctx.log / ctx.logger */
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
  onProgress: (percent: number) => void;
  /** stores a checkpoint; rejects with why it was not */
  onCheckpoint: (data: unknown) => Promise<void>;
  /** the host's process group, and how to tell its supervisor the lease was renewed (null: not supervised) */
  onStart: (pid: number, renew: (() => void) | null) => void;
}

export type HandlerOutcome =
  | { ok: true; result: unknown }
  | {
      ok: false;
      error: string;
      /** the handler's stack, for the log */
      stack?: string;
      /** retrying will not help (the result is too large, or not JSON) */
      final?: boolean;
      /** its host's supervisor killed it: the worker stopped renewing its lease */
      supervisorKilled?: boolean;
    };

/** An abort the host does not answer within this is one its handler cannot notice: killed at once. */
const ABORT_ANSWER_MS = 250;
/** How long a job's end marks may lag behind its result (they come by another pipe). */
const END_MARK_WAIT_MS = 2_000;

interface Job {
  j: number;
  run: HandlerRun;
  resolve: (o: HandlerOutcome) => void;
  /** the result, once it came */
  outcome: HandlerOutcome | null;
  /** the streams whose end mark is still awaited */
  marks: Set<'stdout' | 'stderr'>;
  timers: NodeJS.Timeout[];
  onAbort: () => void;
}

interface Host {
  id: number;
  keyText: string;
  key: HandlerHostKey;
  /** aborted: the host's group is killed (SIGTERM, then SIGKILL) */
  kill: AbortController;
  pid: number | null;
  renew: (() => void) | null;
  conn: net.Socket | null;
  job: Job | null;
  /** killed or closing: no more jobs */
  retired: boolean;
  supervisorKilled: boolean;
  idleTimer: NodeJS.Timeout | null;
  exited: Promise<CommandResult>;
  /** the host's last stderr lines before it was ready (why it could not start) */
  startErr: string[];
}

const keyText = (k: HandlerHostKey) => JSON.stringify([k.namespace, k.folder, k.runAs ? [k.runAs.uid, k.runAs.gid, k.runAs.groups] : null]);

export class HandlerHostPool {
  private readonly hosts = new Set<Host>();
  private readonly idle = new Map<string, Host[]>();
  private nextId = 1;
  private nextJob = 1;
  private root: Promise<string> | null = null;
  private closed = false;
  private renewTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: HandlerHostPoolOptions) {
    if (o.superviseSeconds !== null) {
      // Idle and starting hosts are renewed by the pool (a paused worker renews nothing: its hosts die).
      this.renewTimer = setInterval(() => {
        for (const h of this.hosts) if (!h.job) h.renew?.();
      }, Math.max(50, (o.superviseSeconds * 1000) / 4));
      this.renewTimer.unref();
    }
  }

  /** Hosts running (tests, metrics). */
  get size(): number {
    return this.hosts.size;
  }

  /** Runs one handler job in a host of its key; never rejects. */
  async run(r: HandlerRun): Promise<HandlerOutcome> {
    if (this.closed) return { ok: false, error: 'the worker is stopping: no handler host' };
    const text = keyText(r.key);
    let host: Host | undefined;
    const idle = this.idle.get(text);
    while (idle?.length && !host) {
      const h = idle.pop()!;
      if (!h.retired) host = h;
    }
    if (host) {
      if (host.idleTimer) clearTimeout(host.idleTimer);
      host.idleTimer = null;
    } else {
      try {
        host = await this.start(r.key, text, r.env);
      } catch (e) {
        return { ok: false, error: e instanceof Error ? e.message : String(e) };
      }
    }
    return this.dispatch(host, r);
  }

  private dispatch(host: Host, r: HandlerRun): Promise<HandlerOutcome> {
    return new Promise((resolve) => {
      const job: Job = { j: this.nextJob++, run: r, resolve, outcome: null, marks: new Set(), timers: [], onAbort: () => undefined };
      host.job = job;
      this.send(host, { t: 'run', j: job.j, module: r.module, exportName: r.exportName, resultLimit: r.resultLimit, data: r.data });
      // What the start records (the host's pid, for killing a lost attempt's processes; a renewal) waits for the
      // next turn of the loop: the write above can let the host run the job at once on this CPU, and its `done`
      // is then read first. A job that ended by then needs neither: its host is idle, and exits if this worker dies.
      setImmediate(() => {
        if (host.job !== job || job.outcome) return;
        host.renew?.(); // the claim just renewed the lease
        r.onStart(host.pid!, host.renew);
      });
      job.onAbort = () => {
        this.send(host, { t: 'abort', j: job.j });
        job.timers.push(setTimeout(() => this.killHost(host, `did not answer the abort within ${ABORT_ANSWER_MS} ms`), ABORT_ANSWER_MS));
      };
      if (r.signal.aborted) job.onAbort();
      else r.signal.addEventListener('abort', job.onAbort, { once: true });
    });
  }

  private send(host: Host, m: ToHost): void {
    if (host.conn && !host.conn.destroyed) host.conn.write(JSON.stringify(m) + '\n');
  }

  private message(host: Host, m: FromHost): void {
    const job = host.job;
    if (!job || !('j' in m) || m.j !== job.j || job.outcome) {
      // a late message of an earlier job: its attempt is over
      if (m.t === 'cp') this.send(host, { t: 'cp', j: m.j, id: m.id, error: 'the attempt is over' });
      return;
    }
    switch (m.t) {
      case 'log':
        for (const line of m.m.split('\n')) job.run.onLine(m.s, line);
        break;
      case 'progress':
        if (Number.isFinite(m.n)) job.run.onProgress(m.n);
        break;
      case 'cp':
        job.run.onCheckpoint(m.data).then(
          () => this.send(host, { t: 'cp', j: m.j, id: m.id, error: null }),
          (e: unknown) => this.send(host, { t: 'cp', j: m.j, id: m.id, error: e instanceof Error ? e.message : String(e) }),
        );
        break;
      case 'aborting':
        // it noticed: the kill grace to finish, then killed
        for (const t of job.timers) clearTimeout(t);
        job.timers = [setTimeout(() => this.killHost(host, `did not stop within ${this.o.killGraceMs} ms of being aborted`), this.o.killGraceMs)];
        break;
      case 'done': {
        job.outcome =
          m.error === undefined
            ? { ok: true, result: m.result }
            : { ok: false, error: m.error, ...(m.stack ? { stack: m.stack } : {}), ...(m.final ? { final: true } : {}) };
        if (!m.marked) return this.settle(host, job);
        // its console output may still be on its way: wait for the end marks (not for ever)
        job.marks = new Set(['stdout', 'stderr']);
        job.timers.push(setTimeout(() => this.settle(host, job), END_MARK_WAIT_MS));
        break;
      }
    }
  }

  private line(host: Host, stream: 'stdout' | 'stderr', line: string): void {
    const job = host.job;
    if (line.startsWith(END_MARK)) {
      if (job && job.outcome && line === `${END_MARK}${job.j}`) {
        job.marks.delete(stream);
        if (job.marks.size === 0) this.settle(host, job);
      }
      return;
    }
    if (line.startsWith(SUPERVISOR_KILL_LINE)) host.supervisorKilled = true;
    if (job) job.run.onLine(stream, line);
    else if (!host.conn) {
      host.startErr.push(line);
      if (host.startErr.length > 20) host.startErr.shift();
    } else this.o.logger.debug({ host: host.pid, stream, line }, 'handler host output outside a job');
  }

  /** The job is over: the host goes back to the idle hosts of its key (unless it is being killed), then the job's caller hears. */
  private settle(host: Host, job: Job, outcome?: HandlerOutcome): void {
    if (host.job !== job) return;
    host.job = null;
    for (const t of job.timers) clearTimeout(t);
    job.run.signal.removeEventListener('abort', job.onAbort);
    // a host whose job was aborted is not reused: a lost attempt's group may still be killed by another worker of this machine
    if (!host.retired && !this.closed && !job.run.signal.aborted) {
      const list = this.idle.get(host.keyText) ?? [];
      list.push(host);
      this.idle.set(host.keyText, list);
      host.idleTimer = setTimeout(() => this.retire(host), this.o.idleMs ?? 60_000);
      host.idleTimer.unref();
    } else if (!host.retired) this.retire(host);
    job.resolve(outcome ?? job.outcome ?? { ok: false, error: 'the handler host ended without a result' });
  }

  private killHost(host: Host, why: string): void {
    if (host.job) host.job.run.onLine('stderr', `gantry: the handler ${why}: its host (pid ${host.pid}) is killed`);
    host.retired = true;
    this.dropIdle(host);
    host.kill.abort();
  }

  /** Asks an idle host to exit (it may write what it keeps for its exit), and kills it if it does not. */
  private retire(host: Host): void {
    if (host.job) return;
    host.retired = true;
    this.dropIdle(host);
    if (host.idleTimer) clearTimeout(host.idleTimer);
    this.send(host, { t: 'exit' });
    const t = setTimeout(() => host.kill.abort(), this.o.killGraceMs);
    t.unref();
    void host.exited.finally(() => clearTimeout(t));
  }

  private dropIdle(host: Host): void {
    const list = this.idle.get(host.keyText);
    if (!list) return;
    const i = list.indexOf(host);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(host.keyText);
  }

  /** The private folder the hosts' sockets are made in: 0711, so a run-as user reaches its own 0700 subfolder. */
  private rootDir(): Promise<string> {
    this.root ??= (async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gantry-handlers-'));
      await fs.chmod(dir, 0o711);
      return dir;
    })();
    return this.root;
  }

  private async start(key: HandlerHostKey, text: string, env: NodeJS.ProcessEnv): Promise<Host> {
    const id = this.nextId++;
    const dir = path.join(await this.rootDir(), `h${id}`);
    await fs.mkdir(dir, { mode: 0o700 });
    if (key.runAs) await fs.chown(dir, key.runAs.uid, key.runAs.gid);
    const socketPath = path.join(dir, 's');
    const token = crypto.randomBytes(16).toString('hex');
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    server.unref();
    // connecting to a socket needs write permission on it: the run-as user's host must own it
    if (key.runAs) await fs.chown(socketPath, key.runAs.uid, key.runAs.gid);

    const host: Host = {
      id,
      keyText: text,
      key,
      kill: new AbortController(),
      pid: null,
      renew: null,
      conn: null,
      job: null,
      retired: false,
      supervisorKilled: false,
      idleTimer: null,
      exited: Promise.resolve({ exitCode: null, signal: null, spawnError: null }),
      startErr: [],
    };
    let spawned!: () => void;
    // the launcher tells the pid by its own pipe: the host's hello may come first
    const hasPid = new Promise<void>((r) => (spawned = r));
    const opts: RunCommandOptions = {
      argv: this.o.command ?? [process.execPath, HANDLER_HOST_MAIN],
      cwd: key.folder,
      env: { ...env, [SOCKET_ENV]: socketPath, [TOKEN_ENV]: token },
      signal: host.kill.signal,
      killGraceMs: this.o.killGraceMs,
      superviseSeconds: this.o.superviseSeconds,
      launcher: this.o.launcher(),
      onLine: (stream, line) => this.line(host, stream, line),
      onSpawn: (pid, renew) => {
        host.pid = pid;
        host.renew = renew;
        spawned();
      },
      runAs: key.runAs ?? null,
    };
    this.hosts.add(host);
    host.exited = runCommand(opts);

    const cleanup = () => {
      server.close();
      void fs.rm(dir, { recursive: true, force: true });
    };
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          host.kill.abort();
          reject(new Error(`the handler host did not start within ${this.o.startTimeoutMs ?? 30_000} ms`));
        }, this.o.startTimeoutMs ?? 30_000);
        server.on('connection', (sock) => {
          if (host.conn) return sock.destroy();
          let hello = true;
          sock.on(
            'data',
            lineReader((line) => {
              let m: FromHost;
              try {
                m = JSON.parse(line) as FromHost;
              } catch {
                return;
              }
              if (hello) {
                hello = false;
                if (m.t !== 'hello' || m.token !== token) return sock.destroy();
                host.conn = sock;
                clearTimeout(timer);
                void hasPid.then(resolve);
                return;
              }
              if (host.conn === sock) this.message(host, m);
            }),
          );
          sock.on('error', () => undefined);
          sock.on('close', () => {
            // the host closed its end: it is ending (its exit settles its job)
            if (host.conn === sock) host.retired = true;
          });
        });
        void host.exited.then((r) => {
          clearTimeout(timer);
          const how = r.spawnError ?? (r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`);
          const err = host.startErr.filter((l) => l.trim()).slice(-3).join(' / ');
          reject(new Error(`cannot start a handler host in ${key.folder}: ${how}${err ? `: ${err}` : ''}`));
        });
      });
    } catch (e) {
      cleanup();
      this.hosts.delete(host);
      throw e;
    }
    cleanup();
    void host.exited.then((r) => this.exited(host, r));
    return host;
  }

  private exited(host: Host, r: CommandResult): void {
    host.retired = true;
    this.hosts.delete(host);
    this.dropIdle(host);
    if (host.idleTimer) clearTimeout(host.idleTimer);
    host.conn?.destroy();
    const job = host.job;
    if (!job) return;
    if (job.outcome) return this.settle(host, job); // its result came; only end marks were awaited
    const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`;
    const outcome: HandlerOutcome = host.supervisorKilled
      ? { ok: false, error: `its handler host was killed by its supervisor (${how})`, supervisorKilled: true }
      : { ok: false, error: `the handler host exited (${how}) before the handler returned` };
    this.settle(host, job, outcome);
  }

  /** Lets every host go (the worker stops): idle ones exit, and the pool waits for all of them. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.renewTimer) clearInterval(this.renewTimer);
    const all = [...this.hosts];
    for (const h of all) if (!h.job) this.retire(h);
    await Promise.all(all.map((h) => h.exited));
    if (this.root) await fs.rm(await this.root, { recursive: true, force: true }).catch(() => undefined);
  }
}
