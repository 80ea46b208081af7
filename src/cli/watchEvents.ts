// `gantry runs --watch`, `gantry workers --watch`, `gantry events`: state
// changes as they happen, from the server's event stream (SSE), of the kinds
// asked for only (a kind the server adds later is not printed). When the stream drops, it reconnects with
// the last event id it printed, so nothing is missed or printed twice.
import type { GantryClient } from '../client/client.js';
import { ApiError, UnreachableError } from '../client/client.js';
import type { EventKind, StoreEvent } from '../store/types.js';

const RECONNECT_MS = 1_000;

export async function watchEvents(
  client: GantryClient,
  /** what to ask the server for */
  filter: { namespace?: string; workflow?: string; label?: string[]; run?: number; kinds?: EventKind[] },
  /** what to print */
  show: readonly EventKind[],
  print: (e: StoreEvent) => void,
  signal: AbortSignal,
  /** called once, when the first connection is open: every change from then on is printed */
  onOpen?: () => void,
): Promise<void> {
  let last: number | undefined;
  let connected = false;
  while (!signal.aborted) {
    try {
      const opened = (after: number | undefined) => {
        if (!connected) onOpen?.();
        connected = true;
        last ??= after;
      };
      for await (const e of client.events({ ...filter, lastEventId: last }, signal, opened)) {
        connected = true;
        if (show.includes(e.kind)) print(e);
        last = e.id;
      }
    } catch (e) {
      // The first connection failing is the user's problem (exit 3, or 2 for a bad filter); later ones are a server restart: retry.
      if (!connected && (e instanceof UnreachableError || e instanceof ApiError)) throw e;
      // Away for longer than the event retention: say so, and go on from the oldest event kept.
      if (e instanceof ApiError && e.status === 410) {
        process.stderr.write(`gantry: ${e.message}\n`);
        const through = (e.body as { prunedThrough?: unknown }).prunedThrough;
        last = typeof through === 'number' ? through : undefined;
      }
    }
    if (signal.aborted) return;
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}
