// Shared helpers of the end-to-end tests: real `gantry up` processes on real
// SQLite files in fresh temp dirs, the real CLI as a child process, real shell
// jobs. Every process started here is tracked and killed by `cleanup()`
// (call it from afterEach/afterAll), together with the job processes a test
// registered with `trackPid` (orphans of a `kill -9`, say).
import { processAlive } from '../../src/worker/processTree.js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'gantry.js');

const children = new Set<ChildProcess>();

/** The environment of the test run without any GANTRY_* variable, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GANTRY_')) env[k] = v;
  return { ...env, ...extra };
}
const extraPids = new Set<number>();
/** each server's admin token (its gantry.token), by URL: `gantry()` presents it to that server */
const tokens = new Map<string, string>();

/** Remembers the admin token of the server at `url` for `gantry()` calls to it. */
export function rememberToken(url: string, token: string): void {
  tokens.set(url, token);
}
const dirs: string[] = [];

// ------------------------------------------------------------------ files

/** A fresh temp dir, removed by `cleanup()`. Real path (no symlinks), so paths printed by gantry match. */
export function tempDir(prefix = 'gantry-e2e-'): string {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  dirs.push(d);
  return d;
}

/** Writes `content` to `dir/rel` (creating folders); returns the absolute path. */
export function writeFile(dir: string, rel: string, content: string): string {
  const p = path.join(dir, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
}

/** Non-empty lines of a file; [] when it does not exist. */
export function lines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
}

// -------------------------------------------------------------- processes

/** Whether a process is alive; a zombie counts as dead (see processAlive). */
export const isAlive = processAlive;

/** Registers a pid (a job's process, a process-group leader) to be SIGKILLed by `cleanup()` if still alive. */
export function trackPid(pid: number): void {
  extraPids.add(pid);
}

function exitOf(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Kills every process started by these helpers, and the tracked pids; removes temp dirs. */
export async function cleanup(): Promise<void> {
  const procs = [...children];
  children.clear();
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => exitOf(p)));
  for (const pid of extraPids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  extraPids.clear();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export interface UpProcess {
  proc: ChildProcess;
  pid: number;
  url: string;
  dir: string;
  /** the admin token in dir/.gantry/gantry.token (made by the first start on this store) */
  token: string | undefined;
  stdout(): string;
  stderr(): string;
  /** resolves when the process has exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL when it is not gone after `graceMs` */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `gantry up --port 0 ...args` with `dir` as its cwd (so its state
 * directory is `dir/.gantry` and its store `dir/.gantry/gantry.db` unless args
 * say otherwise) and waits for its
 * `gantry is up at URL` line.
 */
export async function startUp(dir: string, args: string[] = [], timeoutMs = 20_000): Promise<UpProcess> {
  const proc = spawn(process.execPath, [BIN, 'up', '--port', '0', ...args], {
    cwd: dir,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = exitOf(proc);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gantry up did not come up within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`)), timeoutMs);
    const check = () => {
      const m = /gantry is up at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`gantry up exited (code ${code}, signal ${signal}) before it was up\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  const tokenFile = [path.join(dir, '.gantry', 'gantry.token'), path.join(dir, 'gantry.token')].find((f) => fs.existsSync(f)) ?? '';
  const token = fs.existsSync(tokenFile) ? fs.readFileSync(tokenFile, 'utf8').trim() : undefined;
  if (token) rememberToken(url, token);
  return {
    proc,
    pid: proc.pid!,
    url,
    dir,
    token,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(graceMs = 3_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      children.delete(proc);
    },
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** passed as `--server URL` before the subcommand */
  server?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /**
   * The token to present (as GANTRY_TOKEN); default: the one remembered for the
   * server (--server or GANTRY_SERVER); false: none (the CLI may still find ./gantry.token in cwd)
   */
  token?: string | false;
  /** written to the command's stdin (otherwise it has none) */
  input?: string;
}

/** Runs the real CLI (`node bin/gantry.js ...args`) to its end. */
export function gantry(args: string[], o: CliOptions = {}): Promise<CliResult> & { proc: ChildProcess } {
  const argv = [BIN, ...(o.server ? ['--server', o.server] : []), ...args];
  const server = o.server ?? o.env?.GANTRY_SERVER;
  const token = o.token === false ? undefined : (o.token ?? (server ? tokens.get(server) : undefined));
  const proc = spawn(process.execPath, argv, {
    cwd: o.cwd ?? os.tmpdir(),
    env: cleanEnv({ ...(token && !o.env?.GANTRY_TOKEN ? { GANTRY_TOKEN: token } : {}), ...o.env }),
    stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (o.input !== undefined) proc.stdin!.end(o.input);
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timeoutMs = o.timeoutMs ?? 30_000;
  const result = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`gantry ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return Object.assign(result, { proc });
}

/** Runs a CLI command with `--json` appended and parses its stdout. */
export async function gantryJson<T = any>(args: string[], o: CliOptions = {}): Promise<{ json: T; res: CliResult }> {
  const res = await gantry([...args, '--json'], o);
  let json: T;
  try {
    json = JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`gantry ${args.join(' ')} --json printed no JSON (exit ${res.code})\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
  }
  return { json, res };
}

/** Polls `fn` until it returns a value other than undefined/false/null; fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  o: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(o.intervalMs ?? 100);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A TCP port on 127.0.0.1 that nothing listens on (bound once, then released). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** The job of a run as `gantry jobs --run R --json` shows it. */
export interface JobJson {
  id: string;
  runId: number;
  task: string;
  chunk: number | null;
  state: string;
  attempts: number;
  worker: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  [k: string]: unknown;
}
export interface RunJson {
  id: number;
  workflow: string;
  state: string;
  params: Record<string, unknown>;
  labels: Record<string, string>;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  jobs?: JobJson[];
  [k: string]: unknown;
}

/** Starts a run without waiting; returns its id. */
export async function startRun(server: string, workflow: string, extra: string[] = [], cwd?: string): Promise<number> {
  const { json, res } = await gantryJson<RunJson>(['run', workflow, ...extra], { server, cwd });
  if (res.code !== 0) throw new Error(`gantry run ${workflow} exited ${res.code}: ${res.stderr}`);
  return json.id;
}

/** Polls `gantry jobs --run R --json` until job `task` is in `state`. */
export function waitForJobState(server: string, runId: number, task: string, state: string, timeoutMs = 10_000): Promise<JobJson> {
  return waitFor(
    `job ${runId}:${task} to be ${state}`,
    async () => {
      const { json } = await gantryJson<JobJson[]>(['jobs', '--run', String(runId)], { server });
      return json.find((j) => j.task === task && j.state === state);
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/** Polls `gantry status R --json` until the run is in `state`. */
export function waitForRunState(server: string, runId: number, state: string, timeoutMs = 10_000): Promise<RunJson> {
  return waitFor(
    `run ${runId} to be ${state}`,
    async () => {
      const { json } = await gantryJson<RunJson>(['status', String(runId)], { server });
      return json.state === state ? json : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}
