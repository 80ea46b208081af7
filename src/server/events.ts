// Server-sent events over the store's outbox: every state change of runs, jobs,
// workers and services (the SSE `event` is its kind), with
// its outbox id as the SSE id so a client resumes with Last-Event-ID. New rows
// are read when the store signals; a slow timer guards against a missed signal
// (e.g. a change committed by another process on the same SQLite file).
import type { IncomingMessage } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { EventFilter, Store, StoreSignal } from '../store/types.js';
import { onlyRunEvents } from '../store/eventRows.js';

const FALLBACK_MS = 2_000;
const KEEPALIVE_MS = 15_000;

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
export async function streamEvents(store: Store, reply: FastifyReply, o: { filter: EventFilter; after?: number }): Promise<void> {
  // The starting point is fixed before the answer's head goes out: a client that has the head sees every later change.
  let last = o.after ?? (await latestEventId(store, o.filter));
  reply.hijack();
  const res = reply.raw;
  // x-gantry-after: where the stream starts, so a client that reconnects before any event still resumes from there.
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-gantry-after': String(last) });
  res.write(': gantry events\n\n');
  let closed = false;
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
          const events = await store.readEvents(last, o.filter, 500);
          for (const e of events) res.write(`id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
          if (events.length) last = events[events.length - 1]!.id;
          if (events.length < 500 || closed) break;
        }
      } while (again && !closed);
    })()
      .catch(() => undefined)
      .finally(() => (pending = null));
  };
  const off = store.subscribe((s) => {
    if (s.type === 'events') void pump();
  });
  const fallback = setInterval(() => void pump(), FALLBACK_MS);
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  res.on('close', () => {
    closed = true;
    off();
    clearInterval(fallback);
    clearInterval(keepalive);
  });
  void pump();
}

/** Without a starting point a stream begins now (a run's own events: from its start). */
async function latestEventId(store: Store, filter: EventFilter): Promise<number> {
  return filter.runId !== undefined && onlyRunEvents(filter) ? 0 : store.lastEventId();
}
