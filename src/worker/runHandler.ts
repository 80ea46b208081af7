// What a `handler: file#export` is given, and how it is loaded: in a handler
// host (handlerHostMain.ts), not in the worker. TypeScript files are loaded
// through tsx's loader API, JavaScript through plain import(). Modules are
// cached per host: a new version of a handler file takes effect in a new host
// (hosts exit when idle, and with their worker: drain, update, start).
import { importModule, modulePath } from '../spec/typescript.js';

export interface HandlerContext {
  params: Record<string, unknown>;
  /** output name → staging path to write */
  outputs: Record<string, string>;
  /** upstream task id → its final outputs and result */
  tasks: Record<string, { outputs: Record<string, string>; result: unknown }>;
  run: { id: string; date: string };
  job: { id: string; attempt: number };
  /** the task's `env:`, rendered (what a command gets in its environment) */
  env: Record<string, string>;
  /** the secrets the task names (`{{ secrets.NAME }}` in its env), opened for this job only; masked in its logs */
  secrets: Record<string, string>;
  item?: unknown;
  /** a chunk job's element (its fields, or `value`) with `index` */
  chunk?: unknown;
  /** a combine's chunks: each output as a list in chunk order, and their results */
  chunks?: { outputs: Record<string, string[]>; results: unknown[] };
  /** aborted on timeout, cancel or a lost lease: stop promptly */
  signal: AbortSignal;
  log: (message: string) => void;
  logger: { info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void };
  progress: (percent: number) => void;
  /** the job's last checkpoint (saved by an earlier attempt, or by this one since); null when it has none */
  lastCheckpoint: unknown;
  /**
   * Saves a checkpoint (any JSON value, at most 1 MiB of JSON; null clears it)
   * for the next attempt to resume from; resolves once it is stored. Rejects
   * when it was not (too large, or the attempt lost its job).
   */
  checkpoint: (data: unknown) => Promise<void>;
}

export type Handler = (ctx: HandlerContext) => unknown;

const modules = new Map<string, Promise<Record<string, unknown>>>();
/** handlers found before, by `file#export`: the next job of a chain calls its function without a turn of awaits */
const found = new Map<string, Handler>();

/** The function of a handler this host loaded before (undefined: not yet, load it with loadHandler). */
export function loadedHandler(file: string, exportName: string): Handler | undefined {
  return found.get(`${file}#${exportName}`);
}

export async function loadHandler(file: string, exportName: string): Promise<Handler> {
  let mod = modules.get(file);
  if (!mod) {
    mod = importModule(file);
    modules.set(file, mod);
    mod.catch(() => modules.delete(file)); // a fixed file can be retried without a restart
  }
  const m = await mod;
  // `exportName` may be a path inside an export: a TypeScript workflow's function handler is `default.tasks.id.handler`
  const fn = modulePath(m, exportName);
  if (typeof fn !== 'function') {
    const names = Object.keys(m).filter((k) => typeof m[k] === 'function');
    const what = exportName.includes('.') ? 'function at' : 'exported function';
    throw new Error(`${file} has no ${what} '${exportName}' (exported functions: ${names.join(', ') || 'none'})`);
  }
  found.set(`${file}#${exportName}`, fn as Handler);
  return fn as Handler;
}
