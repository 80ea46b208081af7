// The event retention duty of the scheduler (leader only): now and then, the
// outbox loses its events older than `maxAgeMs` or beyond the newest
// `maxCount`, in batches (one transaction each, so a big backlog never holds a
// long lock), never one the notify duty has not read yet. A stream that asks
// to resume below what was pruned is answered 410 by the server.
import type { Store } from '../store/types.js';
import type { Logger } from '../log.js';

export interface EventRetention {
  /** events older than this go (default 7 days) */
  maxAgeMs?: number;
  /** at most this many of the newest events are kept (default 1,000,000) */
  maxCount?: number;
  /** how often a pass runs (default 1 min) */
  intervalMs?: number;
  /** events deleted per transaction (default 10,000) */
  batch?: number;
}

export const RETENTION_DEFAULTS = { maxAgeMs: 7 * 86_400_000, maxCount: 1_000_000, intervalMs: 60_000, batch: 10_000 } as const;

/** Most batches of one pass: the rest waits for the next pass, so one pass stays short. */
const MAX_BATCHES = 100;

export class PruneDuty {
  private lastPass = 0;
  private running: Promise<void> | null = null;
  private readonly o: Required<EventRetention>;

  constructor(private readonly store: Store, o: EventRetention | undefined, private readonly logger: Logger, private readonly now: () => number = Date.now) {
    this.o = { ...RETENTION_DEFAULTS, ...Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) };
  }

  /** Starts a pass in the background when one is due and none is running; the scheduler's tick does not wait for it. */
  maybeStart(): void {
    const t = this.now();
    if (this.running || t - this.lastPass < this.o.intervalMs) return;
    this.lastPass = t;
    this.running = this.pass()
      .then(() => undefined)
      .catch((e: unknown) => this.logger.error({ err: e }, 'event pruning failed; next pass later'))
      .finally(() => (this.running = null));
  }

  /** Deletes what is past retention, batch by batch; returns how many events went. */
  async pass(): Promise<number> {
    let total = 0;
    let through = 0;
    for (let i = 0; i < MAX_BATCHES; i++) {
      const r = await this.store.pruneEvents({ before: this.now() - this.o.maxAgeMs, keep: this.o.maxCount, limit: this.o.batch });
      total += r.deleted;
      through = r.through;
      if (r.deleted < this.o.batch) break;
    }
    if (total) this.logger.info({ deleted: total, prunedThrough: through }, 'events pruned (retention)');
    return total;
  }

  /** Waits for a pass under way (the scheduler stopping). */
  async settle(): Promise<void> {
    await this.running;
  }
}
