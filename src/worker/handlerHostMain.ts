// A handler host: the process `handler: file#export` jobs run in, out of the
// worker's event loop. Started by the worker's pool (handlerHosts.ts), in the
// workflow's folder, as the leader of its own process group (so the worker, its
// launcher or its supervisor can kill it and whatever it started); it runs one
// handler at a time and is reused for the next job of the same namespace and
// folder. Modules stay loaded between jobs (a chain of handlers does not pay
// the import again); a new version of a file takes effect in a new host.
//
// Its stdout/stderr are the handler's console output (the job's log). The
// control channel is the Unix socket named in its environment (handlerProtocol.ts).
import net from 'node:net';
import { loadedHandler, loadHandler, type HandlerContext } from './runHandler.js';
import { END_MARK, lineReader, SOCKET_ENV, TOKEN_ENV, type FromHost, type ToHost } from './handlerProtocol.js';

const socketPath = process.env[SOCKET_ENV];
const token = process.env[TOKEN_ENV] ?? '';
// the handler sees the environment it was given, not the channel's
delete process.env[SOCKET_ENV];
delete process.env[TOKEN_ENV];
if (!socketPath) {
  process.stderr.write(`gantry handler host: ${SOCKET_ENV} is not set (this program is started by a worker)\n`);
  process.exit(2);
}

const sock = net.connect(socketPath);
const send = (m: FromHost, raw?: string): void => {
  sock.write(raw ?? JSON.stringify(m) + '\n');
};
sock.on('connect', () => send({ t: 'hello', token, pid: process.pid }));
// The worker is gone (or let this host go): nothing is left to report to.
sock.on('close', () => process.exit(0));
sock.on('error', () => process.exit(0));

/** Whether the running job wrote to stdout/stderr, and how its last write ended (a mark must start a line). */
let wrote = false;
const lastChar = { stdout: '\n', stderr: '\n' };
for (const name of ['stdout', 'stderr'] as const) {
  const stream = process[name];
  const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const s = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : '';
    if (s.length > 0) {
      wrote = true;
      lastChar[name] = s[s.length - 1]!;
    }
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

interface Running {
  j: number;
  abort: AbortController;
  checkpoints: Map<number, { resolve: () => void; reject: (e: Error) => void }>;
  finished: boolean;
}
let running: Running | null = null;
let nextCheckpoint = 1;

sock.on(
  'data',
  lineReader((line) => {
    let m: ToHost;
    try {
      m = JSON.parse(line) as ToHost;
    } catch {
      return;
    }
    switch (m.t) {
      case 'run':
        void runJob(m);
        break;
      case 'abort':
        if (running && running.j === m.j && !running.finished) {
          running.abort.abort();
          send({ t: 'aborting', j: m.j });
        }
        break;
      case 'cp': {
        const waiting = running?.j === m.j ? running.checkpoints.get(m.id) : undefined;
        running?.checkpoints.delete(m.id);
        if (waiting) {
          if (m.error === null) waiting.resolve();
          else waiting.reject(new Error(m.error));
        }
        break;
      }
      case 'exit':
        process.exit(0);
    }
  }),
);

async function runJob(m: Extract<ToHost, { t: 'run' }>): Promise<void> {
  const job: Running = { j: m.j, abort: new AbortController(), checkpoints: new Map(), finished: false };
  running = job;
  wrote = false;
  const { data } = m;
  const live = () => running === job && !job.finished;
  const log = (s: 'stdout' | 'stderr') => (message: string) => {
    if (live()) send({ t: 'log', j: job.j, s, m: String(message) });
  };
  const ctx: HandlerContext = {
    params: data.params,
    outputs: data.outputs,
    tasks: data.tasks,
    run: data.run,
    job: data.job,
    env: data.env,
    secrets: data.secrets,
    signal: job.abort.signal,
    log: log('stdout'),
    logger: { info: log('stdout'), warn: log('stderr'), error: log('stderr') },
    progress: (n) => {
      if (live()) send({ t: 'progress', j: job.j, n: Number(n) });
    },
    lastCheckpoint: data.lastCheckpoint,
    checkpoint: (cp) =>
      new Promise<void>((resolve, reject) => {
        if (!live()) return reject(new Error('the attempt is over: checkpoint not saved'));
        const id = nextCheckpoint++;
        const value = cp === undefined ? null : cp;
        job.checkpoints.set(id, {
          resolve: () => {
            ctx.lastCheckpoint = value;
            resolve();
          },
          reject,
        });
        send({ t: 'cp', j: job.j, id, data: value });
      }),
  };
  if ('item' in data) ctx.item = data.item;
  if ('chunk' in data) ctx.chunk = data.chunk;
  if (data.chunks) ctx.chunks = data.chunks;

  let raw: string;
  try {
    raw = resultMessage(job, await runHandler(m.module, m.exportName, ctx), m.resultLimit);
  } catch (e) {
    raw = e instanceof ImportError ? done(job, { error: e.message }) : done(job, { error: e instanceof Error ? e.message : String(e), stack: e instanceof Error && e.stack ? e.stack : String(e) });
  } finally {
    finish(job);
  }
  send({ t: 'done', j: job.j }, raw);
}

class ImportError extends Error {}

function runHandler(module: string, exportName: string, ctx: HandlerContext): unknown {
  // a module loaded before: called at once (in this turn), not after the awaits of a load
  const known = loadedHandler(module, exportName);
  return known ? known(ctx) : loadAndRun(module, exportName, ctx);
}

async function loadAndRun(module: string, exportName: string, ctx: HandlerContext): Promise<unknown> {
  let fn;
  try {
    fn = await loadHandler(module, exportName);
  } catch (e) {
    // "… imported from <gantry's loader>" names our file, not the user's
    const message = (e instanceof Error ? e.message : String(e)).replace(/ imported from \S+$/, '');
    throw new ImportError(message.startsWith(module) ? message : `cannot load handler ${module}#${exportName}: ${message}`);
  }
  return fn(ctx);
}

function done(job: Running, fields: Omit<Extract<FromHost, { t: 'done' }>, 't' | 'j' | 'marked'>): string {
  return JSON.stringify({ t: 'done', j: job.j, ...fields, ...(wrote ? { marked: true } : {}) }) + '\n';
}

/** The result, stringified once: its size is checked here, and the message is built around its JSON. */
function resultMessage(job: Running, result: unknown, limit: number): string {
  if (result === undefined) return done(job, {});
  let json: string | undefined;
  try {
    json = JSON.stringify(result);
  } catch (e) {
    return done(job, { error: `the handler's result is not JSON: ${e instanceof Error ? e.message : String(e)}`, final: true });
  }
  if (json === undefined) return done(job, {});
  const size = Buffer.byteLength(json);
  if (size > limit) return done(job, { error: `result too large: the handler returned ${size} bytes of JSON, the limit is ${limit}`, final: true });
  return `{"t":"done","j":${job.j}${wrote ? ',"marked":true' : ''},"result":${json}}\n`;
}

/** The job is over: late calls of its ctx go nowhere; its output is closed with a mark on each stream. */
function finish(job: Running): void {
  job.finished = true;
  for (const w of job.checkpoints.values()) w.reject(new Error('the attempt is over: checkpoint not saved'));
  job.checkpoints.clear();
  if (wrote) {
    for (const name of ['stdout', 'stderr'] as const) process[name].write(`${lastChar[name] === '\n' ? '' : '\n'}${END_MARK}${job.j}\n`);
  }
  if (running === job) running = null;
}

// A handler's stray error (a promise nobody awaited, a throwing timer) would end Node: fail its job
// with it, and let this host end (the worker starts a fresh one).
const fatal = (e: unknown) => {
  const text = e instanceof Error && e.stack ? e.stack : String(e);
  process.stderr.write(`${text}\n`);
  const job = running;
  if (job && !job.finished) {
    finish(job);
    send({ t: 'done', j: job.j }, done(job, { error: e instanceof Error ? e.message : String(e) }));
  }
  sock.end(() => process.exit(1));
  setTimeout(() => process.exit(1), 1000).unref();
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
