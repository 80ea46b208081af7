// `gantry runs --watch`: state changes of runs and jobs as they happen, from
// the server's event stream (SSE). When the stream drops, it reconnects with
// the last event id it printed, so nothing is missed or printed twice.
import type { GantryClient } from '../client/client.js';
import { UnreachableError } from '../client/client.js';
import type { StoreEvent } from '../store/types.js';

const RECONNECT_MS = 1_000;

export async function watchEvents(
  client: GantryClient,
  filter: { namespace?: string; workflow?: string; label?: string[] },
  print: (e: StoreEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  let last: number | undefined;
  let connected = false;
  while (!signal.aborted) {
    try {
      for await (const e of client.events({ ...filter, lastEventId: last }, signal)) {
        connected = true;
        print(e);
        last = e.id;
      }
    } catch (e) {
      // The first connection failing is the user's problem (exit 3); later ones are a server restart: retry.
      if (!connected && e instanceof UnreachableError) throw e;
    }
    if (signal.aborted) return;
    connected = true;
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}
