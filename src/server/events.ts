// Server-sent events over the store's outbox: every state change of runs, jobs,
// workers and services (the SSE `event` is its kind), with
// its outbox id as the SSE id so a client resumes with Last-Event-ID. New rows
// are read when the store signals; a slow timer guards against a missed signal
// (e.g. a change committed by another process on the same SQLite file).
//
// Memory stays bounded whatever clients do: a batch is written only once the
// previous one has drained to the socket; a client that reads nothing for
// `stallMs`, or whose unsent output passes `maxBufferedBytes`, is cut off (it
// resumes with Last-Event-ID). A resume point below what retention pruned
// answers 410 naming the oldest kept event, rather than skipping events silently.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { EventFilter, Store, StoreSignal } from '../store/types.js';
import { onlyRunEvents } from '../store/eventRows.js';

const FALLBACK_MS = 2_000;
const KEEPALIVE_MS = 15_000;
const BATCH = 500;
/** unsent bytes a stream writes ahead before it waits for the client: small, as every client may hold this much */
const WRITE_AHEAD = 64 * 1024;

export interface StreamLimits {
  /** unsent output of one client past which it is cut off (default 1 MiB) */
  maxBufferedBytes?: number;
  /** how long a client may read nothing while output waits for it before it is cut off (default 30 s) */
  stallMs?: number;
}
export const STREAM_DEFAULTS = { maxBufferedBytes: 1024 * 1024, stallMs: 30_000 } as const;

/** A resume point older than the kept history: 410, with the error shape of a 400. */
export class EventsGone extends Error {
  readonly issues: { path: string; message: string }[];
  constructor(readonly where: string, readonly after: number, readonly prunedThrough: number, readonly oldest: number | null) {
    const message =
      `${where}: events up to ${prunedThrough} were pruned (event retention), so the events after ${after} are no longer all there; ` +
      (oldest === null ? 'no older event is kept: follow from now (no after)' : `the oldest kept event is ${oldest}: resume with after=${oldest - 1}, or follow from now (no after)`);
    super(message);
    this.issues = [{ path: where, message }];
  }
}

/**
 * Starts listening now for the next signal of one of the given types; `promise`
 * resolves on it, after timeoutMs, or when the request closes. Created before a
 * read, it catches a change that lands between the read and the wait.
 */
export function signalWaiter(
  store: Store,
  types: StoreSignal['type'][],
  timeoutMs: number,
  req?: IncomingMessage,
): { promise: Promise<void>; cancel: () => void } {
  let done!: () => void;
  const promise = new Promise<void>((resolve) => {
    done = () => {
      clearTimeout(t);
      off();
      req?.off('close', done);
      resolve();
    };
  });
  const t = setTimeout(done, timeoutMs);
  const off = store.subscribe((s) => {
    if (types.includes(s.type)) done();
  });
  req?.on('close', done);
  return { promise, cancel: done };
}

/**
 * Streams the outbox's events matching `filter` (run, namespace, workflow,
 * labels) after `after`; without it, from now (a run's events: from its start).
 * The SSE id is the outbox id: a client that reconnects with Last-Event-ID gets
 * exactly the events it missed, each once, in order.
 */
export async function streamEvents(
  store: Store,
  reply: FastifyReply,
  o: { filter: EventFilter; after?: number; afterFrom?: string; limits?: StreamLimits },
): Promise<void> {
  const limits = { ...STREAM_DEFAULTS, ...o.limits };
  if (o.after !== undefined) {
    const h = await store.eventHorizon();
    if (o.after < h.prunedThrough) throw new EventsGone(o.afterFrom ?? 'query.after', o.after, h.prunedThrough, h.oldest);
  }
  // The starting point is fixed before the answer's head goes out: a client that has the head sees every later change.
  let last = o.after ?? (await latestEventId(store, o.filter));
  reply.hijack();
  const res = reply.raw;
  // x-gantry-after: where the stream starts, so a client that reconnects before any event still resumes from there.
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-gantry-after': String(last) });
  let closed = false;
  // A client that does not keep up is dropped with what is buffered for it; it reconnects with Last-Event-ID.
  const cutOff = () => {
    closed = true;
    res.destroy();
  };
  const write = (text: string) => {
    if (closed) return;
    res.write(text);
    if (res.writableLength > limits.maxBufferedBytes) cutOff();
  };
  write(': gantry events\n\n');
  let pending: Promise<void> | null = null;
  let again = false;
  const pump = async () => {
    if (pending) {
      again = true;
      return;
    }
    pending = (async () => {
      do {
        again = false;
        for (;;) {
          // more is read only once what was written has gone out: an idle reader holds a socket buffer's worth at most
          if (res.writableNeedDrain && !(await drained(res, limits.stallMs))) return cutOff();
          if (closed) return;
          const events = await store.readEvents(last, o.filter, BATCH);
          let sent = 0;
          // one event at a time, up to WRITE_AHEAD bytes unsent: the rest is read again once it drained
          for (const e of events) {
            if (closed || res.writableLength >= WRITE_AHEAD) break;
            write(`id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
            last = e.id;
            sent++;
          }
          if (closed || (events.length < BATCH && sent === events.length)) break;
        }
      // output still waiting for the client: watch it drain (or cut it off) even when no new event comes
      } while ((again || res.writableNeedDrain) && !closed);
    })()
      .catch(() => undefined)
      .finally(() => (pending = null));
  };
  const off = store.subscribe((s) => {
    if (s.type === 'events') void pump();
  });
  const fallback = setInterval(() => void pump(), FALLBACK_MS);
  const keepalive = setInterval(() => write(': keepalive\n\n'), KEEPALIVE_MS);
  res.on('close', () => {
    closed = true;
    off();
    clearInterval(fallback);
    clearInterval(keepalive);
  });
  void pump();
}

/** Resolves true when the response drained, false after `ms` without (or when it closed). */
function drained(res: ServerResponse, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(t);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const t = setTimeout(() => done(false), ms);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/** Without a starting point a stream begins now (a run's own events: from its start). */
async function latestEventId(store: Store, filter: EventFilter): Promise<number> {
  return filter.runId !== undefined && onlyRunEvents(filter) ? 0 : store.lastEventId();
}
