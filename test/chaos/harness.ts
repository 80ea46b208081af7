// Harness of the chaos tests: a Gantry cluster of real processes (`gantry
// server`, `gantry scheduler`, `gantry worker`) on a database of its own on the
// real PostgreSQL, real shell jobs that stamp what they do into files, and the
// checks that read those stamps back.
//
// Every process started here (and every job process found under a cluster's
// folder) is killed by `destroyClusters()`, which the test files call from
// afterEach, so a failed test leaves nothing running; the database is dropped.
//
// The proof never relies on the store's view alone: each job runs
// stamp-job.sh, which appends to a file of its own execution
// (`stamps/<task>.<attempt>.<pid>`):
//   start <task> <attempt> <ns>     when it starts
//   hb <task> <attempt> <ns>        every ~20 ms while it runs
//   end <task> <attempt> <ns>       when it is done (exit 0)
//   fail <task> <attempt> <ns>      when it fails on purpose (exit 1)
// An execution killed before its end is taken to have ended at its last stamp.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { expect } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { processAlive } from '../../src/worker/processTree.js';
import { freePort } from '../e2e/helpers.js';
import type { Attempt, Job, Run } from '../../src/store/types.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** the gantry command (GANTRY_CHAOS_BIN: another build of it, e.g. to try a fix) */
export const BIN = process.env.GANTRY_CHAOS_BIN ?? path.join(ROOT, 'bin', 'gantry.js');
export const PG_HOST_URL = process.env.GANTRY_CHAOS_PG ?? 'postgres://postgres@127.0.0.1:5432';
const ADMIN_URL = `${PG_HOST_URL}/postgres`;

const run = promisify(execFile);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

// ------------------------------------------------------------------ PostgreSQL

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
    try {
      await c.connect();
    } catch (e) {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline) throw e;
      await sleep(250); // restarting, or all connections taken: try again
      continue;
    }
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

export async function createDatabase(): Promise<{ name: string; url: string }> {
  const name = `chaos_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  return { name, url: `${PG_HOST_URL}/${name}` };
}

export async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/**
 * Restarts the PostgreSQL cluster (fast shutdown: every connection is cut);
 * with `downMs`, stops it and starts it again that much later. Resolves once it
 * accepts connections again.
 */
export async function restartPostgres(o: { downMs?: number } = {}): Promise<{ tookMs: number; downMs: number }> {
  const t0 = Date.now();
  // the installed major version, as .ci/run finds it (`ls /etc/postgresql`)
  const version = fs.readdirSync('/etc/postgresql').sort().at(-1) ?? '15';
  const ctl = (action: string) => run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action], { timeout: 60_000 });
  let down = 0;
  if (o.downMs === undefined) await ctl('restart');
  else {
    try {
      await ctl('stop');
      const t = Date.now();
      await sleep(o.downMs);
      down = Date.now() - t;
    } finally {
      await ctl('start');
    }
  }
  await admin((c) => c.query('SELECT 1'));
  return { tookMs: Date.now() - t0, downMs: down };
}

/** Terminates every connection to `db` but the caller's; returns how many. */
export async function terminateBackends(db: string): Promise<number> {
  return admin(async (c) => {
    const r = await c.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db]);
    return r.rows.filter((x: { ok: boolean }) => x.ok).length;
  });
}

export async function queryAdmin<T = Record<string, unknown>>(sql: string, args: unknown[] = []): Promise<T[]> {
  return admin(async (c) => (await c.query(sql, args)).rows as T[]);
}

// ------------------------------------------------------------------ processes

/** The environment of the test run without any GANTRY_* variable. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GANTRY_')) env[k] = v;
  return env;
}

export { freePort };

/** One `gantry <role>` process; its stdout and stderr go to `<dir>/logs/<label>.log`. */
export class GantryProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly logFile: string;
  constructor(
    readonly label: string,
    readonly args: string[],
    dir: string,
  ) {
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    this.logFile = path.join(dir, 'logs', `${label}.log`);
    const fd = fs.openSync(this.logFile, 'a');
    this.proc = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: cleanEnv(), stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.pid = this.proc.pid!;
    this.exited = new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) resolve({ code: this.proc.exitCode, signal: this.proc.signalCode });
      else this.proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
  /** Waits for a line of its output to match. */
  async waitForOutput(re: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.log());
      if (m) return m;
      if (!this.running) throw new Error(`${this.label} exited (${this.proc.exitCode ?? this.proc.signalCode}) before printing ${re}:\n${this.log().slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`${this.label} did not print ${re} within ${timeoutMs} ms:\n${this.log().slice(-3000)}`);
      await sleep(50);
    }
  }
  /** set once the test killed or stopped it: any other exit is a crash */
  killedByTest = false;
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    if (sig === 'SIGKILL' || sig === 'SIGTERM' || sig === 'SIGINT') this.killedByTest = true;
    this.proc.kill(sig);
  }
  /** Why it exited, when it exited without being killed by the test (a crash); null while running or when killed. */
  crash(): string | null {
    if (this.running || this.killedByTest) return null;
    const log = this.log();
    const i = log.search(/Unhandled|Error|error/);
    return `${this.label} exited by itself (code ${this.proc.exitCode}, signal ${this.proc.signalCode}): ${log.slice(Math.max(0, i), i + 400).trim()}`;
  }
  async kill9(): Promise<void> {
    if (this.running) {
      this.killedByTest = true;
      this.proc.kill('SIGCONT'); // a paused process gets the SIGKILL as well, but let it not linger stopped
      this.proc.kill('SIGKILL');
    }
    await this.exited;
  }
}

/** Pids of live processes whose command line mentions `needle` (the job processes of a cluster: they name its folder). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes(needle) && processAlive(pid)) out.push(pid);
  }
  return out;
}

// ------------------------------------------------------------------ the job script

const STAMP_JOB = `#!/bin/bash
# stamp-job.sh STAMPDIR TASK DURATION_MS [MODE]
#   MODE ok (default): runs DURATION_MS, then exits 0
#   MODE fail-first:   fails (exit 1) unless STAMPDIR/../markers/TASK exists, which it then creates
dir=$1 task=$2 dur=$3 mode=\${4:-ok}
f="$dir/$task.$GANTRY_ATTEMPT.$$"
t=\${EPOCHREALTIME/./}
echo "start $task $GANTRY_ATTEMPT \${t}000" >> "$f"
end=$((t + dur * 1000))
if (( dur > 0 )); then
  exec {sl}<> <(:)            # a pipe nobody writes to: read -t on it sleeps without a fork
  while :; do
    read -t 0.02 -u $sl
    t=\${EPOCHREALTIME/./}
    (( t >= end )) && break
    echo "hb $task $GANTRY_ATTEMPT \${t}000" >> "$f"
  done
fi
if [[ $mode == fail-first ]]; then
  marker="$dir/../markers/$task"
  if [[ ! -e $marker ]]; then
    : > "$marker"
    t=\${EPOCHREALTIME/./}
    echo "fail $task $GANTRY_ATTEMPT \${t}000" >> "$f"
    exit 1
  fi
fi
t=\${EPOCHREALTIME/./}
echo "end $task $GANTRY_ATTEMPT \${t}000" >> "$f"
`;

// The same stamps from handlers (run inside the worker process): for jobs by the
// thousand, where a process per job would take too long on this machine.
const HANDLERS = (stampDir: string) => `import fs from 'node:fs';
const dir = ${JSON.stringify(stampDir)};
const ns = () => String(Math.round((performance.timeOrigin + performance.now()) * 1000)) + '000';
function file(ctx) {
  const task = ctx.job.id.slice(ctx.job.id.indexOf(':') + 1);
  return [task, dir + '/' + task + '.' + ctx.job.attempt + '.' + process.pid];
}
/** stamps its start and end */
export async function stamp(ctx) {
  const [task, f] = file(ctx);
  fs.appendFileSync(f, 'start ' + task + ' ' + ctx.job.attempt + ' ' + ns() + '\\n');
  fs.appendFileSync(f, 'end ' + task + ' ' + ctx.job.attempt + ' ' + ns() + '\\n');
}
/** fails unless its marker exists, which it then creates */
export async function failFirst(ctx) {
  const [task, f] = file(ctx);
  fs.appendFileSync(f, 'start ' + task + ' ' + ctx.job.attempt + ' ' + ns() + '\\n');
  const marker = dir + '/../markers/' + task;
  if (!fs.existsSync(marker)) {
    fs.writeFileSync(marker, '');
    fs.appendFileSync(f, 'fail ' + task + ' ' + ctx.job.attempt + ' ' + ns() + '\\n');
    throw new Error('first attempt fails on purpose');
  }
  fs.appendFileSync(f, 'end ' + task + ' ' + ctx.job.attempt + ' ' + ns() + '\\n');
}
`;

export interface TaskDef {
  id: string;
  /** how long the job runs (shell jobs; handlers take no time) */
  ms: number;
  /** a shell job (stamp-job.sh, default) or a handler in the worker */
  kind?: 'shell' | 'handler';
  pool?: string;
  mode?: 'ok' | 'fail-first';
  /** extra YAML lines of the task (already indented by 4) */
  extra?: string[];
}

// ------------------------------------------------------------------ the cluster

export interface ClusterOptions {
  /** lease of the workers and the scheduler, ms */
  lease: number;
  label?: string;
}

const clusters = new Set<Cluster>();

/** Kills every process of every cluster, drops their databases, removes their folders. For afterEach. */
export async function destroyClusters(): Promise<void> {
  const all = [...clusters];
  clusters.clear();
  for (const c of all) await c.destroy();
}

export class Cluster {
  readonly processes: GantryProcess[] = [];
  readonly workers = new Map<string, GantryProcess>();
  readonly schedulers: GantryProcess[] = [];
  server: GantryProcess | null = null;
  serverUrl = '';
  readonly stampDir: string;
  readonly script: string;
  private storeInstance: PostgresStore | null = null;
  private seq = 0;
  private destroyed = false;

  private constructor(
    readonly dir: string,
    readonly db: string,
    readonly url: string,
    readonly o: ClusterOptions,
  ) {
    this.stampDir = path.join(dir, 'stamps');
    fs.mkdirSync(this.stampDir, { recursive: true });
    fs.mkdirSync(path.join(dir, 'markers'), { recursive: true });
    this.script = path.join(dir, 'stamp-job.sh');
    fs.writeFileSync(this.script, STAMP_JOB, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'handlers.mjs'), HANDLERS(this.stampDir));
  }

  static async create(o: ClusterOptions): Promise<Cluster> {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `gantry-chaos-${o.label ?? 'x'}-`)));
    const { name, url } = await createDatabase();
    const c = new Cluster(dir, name, url, o);
    clusters.add(c);
    // Migrate once up front (the processes would too, one after the other).
    await c.store.migrate();
    return c;
  }

  /** The test's own view of the store (reads only). */
  get store(): PostgresStore {
    if (this.destroyed) throw new Error('the cluster is gone');
    this.storeInstance ??= new PostgresStore(this.url, { max: 3 });
    return this.storeInstance;
  }

  private spawn(label: string, args: string[]): GantryProcess {
    const p = new GantryProcess(`${label}.${++this.seq}`, args, this.dir);
    this.processes.push(p);
    return p;
  }

  async startServer(): Promise<GantryProcess> {
    const port = await freePort();
    const p = this.spawn('server', ['server', '--db', this.url, '--port', String(port)]);
    await p.waitForOutput(/gantry server listening at (http:\/\/\S+)/);
    this.server = p;
    this.serverUrl = `http://127.0.0.1:${port}`;
    return p;
  }

  startScheduler(wait = true): Promise<GantryProcess> | GantryProcess {
    const p = this.spawn('scheduler', ['scheduler', '--db', this.url, '--lease', String(this.o.lease)]);
    this.schedulers.push(p);
    if (!wait) return p;
    return p.waitForOutput(/gantry scheduler running/).then(() => p);
  }

  /** Starts `gantry worker --name NAME`; `extra` are more flags (--slots defaults to 4). */
  startWorker(name: string, extra: string[] = [], wait = true): Promise<GantryProcess> {
    const args = ['worker', '--db', this.url, '--name', name, '--lease', String(this.o.lease)];
    if (!extra.includes('--slots')) args.push('--slots', '4');
    const p = this.spawn(`worker-${name}`, [...args, ...extra]);
    this.workers.set(name, p);
    if (!wait) return Promise.resolve(p);
    return p.waitForOutput(/gantry worker \S+ running/).then(() => p);
  }

  /** Runs the real CLI against the server; rejects on a non-zero exit. */
  async cli(args: string[], timeoutMs = 60_000): Promise<string> {
    const r = await run(process.execPath, [BIN, '--server', this.serverUrl, ...args], {
      cwd: this.dir,
      env: cleanEnv(),
      timeout: timeoutMs,
      maxBuffer: 256 * 1024 * 1024,
    }).catch((e: { code?: number; stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`gantry ${args.join(' ')} failed (exit ${e.code}): ${e.stderr || e.message}\n${(e.stdout ?? '').slice(0, 2000)}`);
    });
    return r.stdout;
  }

  /** The YAML of a flat workflow of stamping jobs. */
  workflowYaml(name: string, tasks: TaskDef[], head: string[] = []): string {
    const out = [`name: ${name}`, ...head, 'tasks:'];
    for (const t of tasks) {
      out.push(`  ${t.id}:`);
      if (t.kind === 'handler') out.push(`    handler: ./handlers.mjs#${t.mode === 'fail-first' ? 'failFirst' : 'stamp'}`);
      else out.push(`    run: [bash, ${JSON.stringify(this.script)}, ${JSON.stringify(this.stampDir)}, ${t.id}, "${t.ms}", ${t.mode ?? 'ok'}]`);
      if (t.pool) out.push(`    pool: ${t.pool}`);
      for (const l of t.extra ?? []) out.push(l);
    }
    return out.join('\n') + '\n';
  }

  /** Writes and applies a workflow file through the CLI. */
  async apply(name: string, yaml: string): Promise<void> {
    const file = path.join(this.dir, `${name}.yaml`);
    fs.writeFileSync(file, yaml);
    await this.cli(['apply', file], 120_000);
  }

  /** `gantry run W --json`; returns the run id. */
  async startRun(workflow: string, extra: string[] = []): Promise<number> {
    const out = await this.cli(['run', workflow, ...extra, '--json'], 120_000);
    return (JSON.parse(out) as { id: number }).id;
  }

  /** Reads the store until `fn` holds, through store errors (a restarting database). */
  async waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, intervalMs = 200): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    for (;;) {
      try {
        const v = await fn();
        if (v !== null && v !== undefined && v !== false) return v;
      } catch (e) {
        last = e;
      }
      if (this.destroyed) throw new Error(`gave up waiting for ${what}: the cluster is gone`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
      await sleep(intervalMs);
    }
  }

  /** Waits for a run to end; fails at once if it ends other than succeeded. */
  async waitRunSucceeded(id: number, timeoutMs: number): Promise<Run> {
    const r = await this.waitFor(
      `run ${id} to end`,
      async () => {
        const r = await this.store.getRun(id);
        return r && ['succeeded', 'failed', 'cancelled'].includes(r.state) ? r : null;
      },
      timeoutMs,
      250,
    );
    if (r.state !== 'succeeded') {
      const bad = (await this.jobs(id)).filter((j) => j.state !== 'succeeded');
      throw new Error(
        `run ${id} ended ${r.state}; ${bad.length} job(s) did not succeed, e.g.:\n` +
          bad
            .slice(0, 10)
            .map((j) => `  ${j.id} ${j.state} attempts=${j.attempts} failures=${j.failures} error=${j.error}`)
            .join('\n'),
      );
    }
    return r;
  }

  async jobs(runId: number): Promise<Job[]> {
    return this.store.listJobs({ runId, limit: 1_000_000 });
  }

  /** Every attempt of the run's jobs, by task. */
  async attempts(runId: number): Promise<Map<string, Attempt[]>> {
    const jobs = await this.jobs(runId);
    const out = new Map<string, Attempt[]>();
    for (let i = 0; i < jobs.length; i += 20) {
      const part = jobs.slice(i, i + 20);
      const lists = await Promise.all(part.map((j) => this.store.listAttempts(j.id)));
      part.forEach((j, k) => out.set(j.task, lists[k]!));
    }
    return out;
  }

  /** Kills the worker with kill -9 (its jobs are orphaned, as on a crash). */
  async kill9Worker(name: string): Promise<void> {
    const p = this.workers.get(name);
    if (p) await p.kill9();
  }

  /** Gantry processes that exited without the test killing them (crashed). */
  crashes(): string[] {
    return this.processes.map((p) => p.crash()).filter((x): x is string => x !== null);
  }

  /** Job processes (shells of stamp-job.sh, their supervisors) still alive. */
  jobProcesses(): number[] {
    return processesMentioning(this.stampDir);
  }

  async destroy(): Promise<void> {
    clusters.delete(this);
    this.destroyed = true;
    await Promise.all(this.processes.map((p) => p.kill9()));
    for (const pid of this.jobProcesses()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await this.storeInstance?.close().catch(() => undefined);
    this.storeInstance = null;
    await dropDatabase(this.db).catch((e) => console.warn(`could not drop ${this.db}: ${String(e)}`));
    if (process.env.GANTRY_CHAOS_KEEP) console.warn(`kept ${this.dir}`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ reading the stamps

export interface Execution {
  file: string;
  task: string;
  attempt: number;
  pid: number;
  /** µs since the epoch */
  start: number;
  /** its `end` stamp, its `fail` stamp, or (killed) its last stamp */
  stop: number;
  outcome: 'end' | 'fail' | 'killed';
}

export function readExecutions(stampDir: string): Execution[] {
  const out: Execution[] = [];
  for (const file of fs.readdirSync(stampDir)) {
    const m = /^(.+)\.(\d+)\.(\d+)$/.exec(file);
    if (!m) continue;
    const text = fs.readFileSync(path.join(stampDir, file), 'utf8');
    let start: number | null = null;
    let last: number | null = null;
    let outcome: Execution['outcome'] = 'killed';
    for (const line of text.split('\n')) {
      const p = /^(start|hb|end|fail) (\S+) (\d+) (\d{16,})$/.exec(line);
      if (!p) continue; // an empty or torn last line
      const us = Number(BigInt(p[4]!) / 1000n);
      if (p[1] === 'start') start = us;
      last = us;
      if (p[1] === 'end') outcome = 'end';
      if (p[1] === 'fail') outcome = 'fail';
    }
    if (start === null) {
      // killed before its first line was complete: it left no time behind; count it with no duration
      const st = fs.statSync(path.join(stampDir, file));
      start = last = Math.round(st.mtimeMs * 1000);
    }
    out.push({ file, task: m[1]!, attempt: Number(m[2]), pid: Number(m[3]), start, stop: last ?? start, outcome });
  }
  return out;
}

export interface Overlap {
  task: string;
  a: Execution;
  b: Execution;
  overlapMs: number;
}

/** Pairs of executions of the same task that ran at the same time. */
export function overlaps(execs: Execution[]): Overlap[] {
  const byTask = new Map<string, Execution[]>();
  for (const e of execs) byTask.set(e.task, [...(byTask.get(e.task) ?? []), e]);
  const out: Overlap[] = [];
  for (const [task, list] of byTask) {
    list.sort((x, y) => x.start - y.start);
    for (let i = 0; i < list.length; i++)
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (b.start >= a.stop) continue;
        out.push({ task, a, b, overlapMs: (Math.min(a.stop, b.stop) - b.start) / 1000 });
      }
  }
  return out;
}

/** The most executions running at one moment, and when. */
export function maxConcurrent(execs: Execution[]): { max: number; at: number; running: string[] } {
  const ev: { t: number; d: number; e: Execution }[] = [];
  for (const e of execs) {
    ev.push({ t: e.start, d: +1, e });
    ev.push({ t: e.stop, d: -1, e });
  }
  // an execution that stops at the very moment another starts did not run with it
  ev.sort((a, b) => a.t - b.t || a.d - b.d);
  let n = 0;
  let best = { max: 0, at: 0, running: [] as string[] };
  const now = new Set<Execution>();
  for (const x of ev) {
    n += x.d;
    if (x.d > 0) now.add(x.e);
    else now.delete(x.e);
    if (n > best.max) best = { max: n, at: x.t, running: [...now].map((e) => e.file) };
  }
  return best;
}

export interface RunProof {
  tasks: number;
  executions: number;
  /** executions that ended without an end or fail stamp */
  killed: number;
  /** executions that failed on purpose */
  failedOnPurpose: number;
  /** executions with an end stamp whose attempt the store recorded lost: the job ran to its end, its worker died before reporting it */
  endedButLost: number;
  attempts: number;
  attemptsByState: Record<string, number>;
  problems: string[];
}

/**
 * Checks a run against the stamps its jobs wrote: every job succeeded in the
 * store and has an `end` stamp from its final attempt; no other execution of it
 * ended, except one whose attempt the store recorded lost (it finished, but its
 * worker died before reporting it); no two executions of one job overlapped;
 * no execution of an unknown task; no (task, attempt) executed twice.
 */
export async function proveRun(c: Cluster, runId: number, taskIds: string[], execs: Execution[]): Promise<RunProof> {
  const problems: string[] = [];
  const jobs = await c.jobs(runId);
  const attempts = await c.attempts(runId);
  const known = new Set(taskIds);
  const jobByTask = new Map(jobs.map((j) => [j.task, j]));
  if (jobs.length !== taskIds.length) problems.push(`the store has ${jobs.length} jobs in run ${runId}, the workflow ${taskIds.length} tasks`);
  const mine = execs.filter((e) => known.has(e.task));
  const byTask = new Map<string, Execution[]>();
  for (const e of mine) byTask.set(e.task, [...(byTask.get(e.task) ?? []), e]);
  let endedButLost = 0;
  const attemptsByState: Record<string, number> = {};
  let attemptCount = 0;
  for (const t of taskIds) {
    const j = jobByTask.get(t);
    const list = byTask.get(t) ?? [];
    const atts = attempts.get(t) ?? [];
    attemptCount += atts.length;
    for (const a of atts) attemptsByState[a.state] = (attemptsByState[a.state] ?? 0) + 1;
    if (!j) {
      problems.push(`${t}: no job in the store`);
      continue;
    }
    if (j.state !== 'succeeded') problems.push(`${t}: ${j.state} in the store (attempts ${j.attempts}, error ${j.error})`);
    const seen = new Set<number>();
    for (const e of list) {
      if (seen.has(e.attempt)) problems.push(`${t}: attempt ${e.attempt} executed more than once (${list.filter((x) => x.attempt === e.attempt).map((x) => x.file).join(', ')})`);
      seen.add(e.attempt);
    }
    const ended = list.filter((e) => e.outcome === 'end');
    const final = ended.filter((e) => e.attempt === j.attempts);
    if (final.length !== 1) problems.push(`${t}: ${final.length} end stamps from its final attempt ${j.attempts} (executions: ${list.map((e) => `${e.file}:${e.outcome}`).join(', ') || 'none'})`);
    const finalAttempt = atts.find((a) => a.number === j.attempts);
    if (j.state === 'succeeded' && finalAttempt?.state !== 'succeeded') problems.push(`${t}: its final attempt ${j.attempts} is ${finalAttempt?.state} in the store`);
    for (const e of ended) {
      if (e.attempt === j.attempts) continue;
      const a = atts.find((x) => x.number === e.attempt);
      if (a?.state === 'lost') endedButLost++;
      else problems.push(`${t}: attempt ${e.attempt} also ended (stamp), but the store recorded it ${a?.state ?? 'nowhere'}`);
    }
    for (const e of list)
      if (!atts.some((a) => a.number === e.attempt)) problems.push(`${t}: an execution of attempt ${e.attempt} the store has no record of`);
  }
  for (const o of overlaps(mine))
    problems.push(`${o.task}: executions ${o.a.file} (${o.a.outcome}) and ${o.b.file} (${o.b.outcome}) overlapped by ${o.overlapMs.toFixed(1)} ms`);
  return {
    tasks: taskIds.length,
    executions: mine.length,
    killed: mine.filter((e) => e.outcome === 'killed').length,
    failedOnPurpose: mine.filter((e) => e.outcome === 'fail').length,
    endedButLost,
    attempts: attemptCount,
    attemptsByState,
    problems,
  };
}

export function summary(p: RunProof): string {
  return (
    `${p.tasks} jobs, ${p.executions} executions (${p.killed} killed, ${p.failedOnPurpose} failed on purpose, ${p.endedButLost} ended but lost before reporting), ` +
    `${p.attempts} attempts in the store (${Object.entries(p.attemptsByState)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')})`
  );
}

/** Fails with the first problems (all counted). */
export function assertProof(p: RunProof): void {
  if (p.problems.length) throw new Error(`${p.problems.length} problem(s):\n  ${p.problems.slice(0, 25).join('\n  ')}\n(${summary(p)})`);
}

// ------------------------------------------------------------------ scenario helpers

/** lease of the scenarios (workers and scheduler), ms */
export const LEASE_MS = 2_000;

/** `n` stamping jobs `<prefix>000…` of random durations in [lo, hi] ms. */
export function tasks(prefix: string, n: number, lo: number, hi: number, extra: Partial<TaskDef> = {}): TaskDef[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${String(i).padStart(3, '0')}`, ms: rand(lo, hi), ...extra }));
}

/** Server, scheduler(s) and workers w1..wN on a fresh database. */
export async function cluster(label: string, o: { workers?: number; slots?: number; schedulers?: number; lease?: number } = {}): Promise<Cluster> {
  const c = await Cluster.create({ lease: o.lease ?? LEASE_MS, label });
  await c.startServer();
  await Promise.all([
    ...Array.from({ length: o.schedulers ?? 1 }, () => c.startScheduler()),
    ...Array.from({ length: o.workers ?? 2 }, (_, i) => c.startWorker(`w${i + 1}`, ['--slots', String(o.slots ?? 4)])),
  ]);
  return c;
}

/** Succeeded jobs of a run (store view), through store errors. */
export async function succeeded(c: Cluster, runId: number): Promise<number> {
  return (await c.store.getRun(runId))?.counts.succeeded ?? 0;
}

/** proveRun from the stamps, logged; throws on the first problems. */
export async function prove(c: Cluster, runId: number, ts: TaskDef[]): Promise<void> {
  const proof = await proveRun(
    c,
    runId,
    ts.map((t) => t.id),
    readExecutions(c.stampDir),
  );
  console.log(`${expect.getState().currentTestName}: ${summary(proof)}`);
  assertProof(proof);
}

/** Throws at once when a Gantry process died by itself. */
export function noCrashes(c: Cluster): void {
  const crashes = c.crashes();
  if (crashes.length) throw new Error(`Gantry processes died by themselves:\n${crashes.join('\n')}`);
}

/** Waits for a run to succeed; with `guard`, fails at once when a Gantry process dies by itself. */
export async function waitRun(c: Cluster, id: number, timeoutMs: number, guard = true) {
  if (!guard) return c.waitRunSucceeded(id, timeoutMs);
  // the wait ends early, with the crash as the reason, when a Gantry process dies by itself
  let stop = false;
  const watch = (async () => {
    while (!stop) {
      noCrashes(c);
      await sleep(200);
    }
  })();
  try {
    return await Promise.race([c.waitRunSucceeded(id, timeoutMs), watch.then(() => null as never)]);
  } finally {
    stop = true;
    await watch.catch(() => undefined);
  }
}

