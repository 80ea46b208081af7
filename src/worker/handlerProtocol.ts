// The control channel between a worker and a handler host (handlerHosts.ts,
// handlerHostMain.ts): JSON, one message a line, over a Unix socket the worker
// listens on in a private directory. One job at a time per host; per job one
// message each way (`run`, `done`) plus the handler's logs, progress and
// checkpoints. Every message about a job carries its number `j`, so that a
// late message of an earlier job (a stray timer of its handler) is told apart.
//
// The handler's console output does not go through here: it is the host's
// stdout/stderr, which reach the job's log as a command's output does.
import type { HandlerContext } from './runHandler.js';

/** What the host's handler gets in its ctx, as data (the functions are the host's). */
export type HandlerJobData = Omit<HandlerContext, 'signal' | 'log' | 'logger' | 'progress' | 'checkpoint'>;

export type ToHost =
  | { t: 'run'; j: number; module: string; exportName: string; resultLimit: number; data: HandlerJobData }
  /** the attempt was aborted (timeout, cancel, lost lease, shutdown): abort ctx.signal */
  | { t: 'abort'; j: number }
  /** answer to a checkpoint: stored, or why not */
  | { t: 'cp'; j: number; id: number; error: string | null }
  /** idle too long, or the worker stops: exit */
  | { t: 'exit' };

export type FromHost =
  | { t: 'hello'; token: string; pid: number }
  | { t: 'log'; j: number; s: 'stdout' | 'stderr'; m: string }
  | { t: 'progress'; j: number; n: number }
  | { t: 'cp'; j: number; id: number; data: unknown }
  /** ctx.signal was aborted: the handler is told (a host that does not say this is stuck in a loop) */
  | { t: 'aborting'; j: number }
  | {
      t: 'done';
      j: number;
      /** the handler's return value (absent: it returned nothing) */
      result?: unknown;
      /** set when the attempt failed */
      error?: string;
      stack?: string;
      /** the failure is the result's (too large, not JSON): retrying will not help */
      final?: boolean;
      /** the host wrote to its stdout/stderr during the job: wait for its end marks there */
      marked?: boolean;
    };

/** Written by the host to stdout and stderr after a job that printed: the job's output ends here. */
export const END_MARK = '\u001egantry-handler-end ';

/** The host's environment variables for the channel; the host removes them before loading handlers. */
export const SOCKET_ENV = 'GANTRY_HANDLER_SOCKET';
export const TOKEN_ENV = 'GANTRY_HANDLER_TOKEN';

/** Splits a stream of bytes into lines; calls `onLine` with each complete one. */
export function lineReader(onLine: (line: string) => void): (chunk: Buffer) => void {
  let rest: Buffer | null = null;
  return (chunk) => {
    const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      onLine(buf.toString('utf8', start, nl));
      start = nl + 1;
    }
    rest = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
  };
}
