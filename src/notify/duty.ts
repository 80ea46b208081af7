// The notify duty of the scheduler (leader only): collect (collect.ts) turns
// new outbox events and audit entries into deliveries; then due deliveries are
// claimed and sent (send.ts), each outcome recorded: sent, retried with
// exponential backoff (capped), or failed after the last attempt. It runs in a
// loop of its own beside the scheduler's, so a slow SMTP server or webhook never
// delays retries and lease reaping. Exactly-once per (event, target) as far as
// the store can tell: deliveries are unique per event and target, and a claim
// is a lease (another scheduler takes a delivery over only when it lapsed).
import type { Delivery, Store } from '../store/types.js';
import type { Logger } from '../log.js';
import { collectDeliveries } from './collect.js';
import { PermanentFailure, Sender, type SenderOptions } from './send.js';

export interface NotifyOptions extends SenderOptions {
  /** first retry delay of a failed delivery; doubled at each attempt (default 30 s) */
  retryDelayMs?: number;
  /** longest retry delay (default 1 h) */
  maxRetryDelayMs?: number;
  /** attempts before a delivery fails for good (default 8) */
  maxAttempts?: number;
  /** longest sleep between passes when nothing wakes it (default 2 s) */
  pollMs?: number;
}

const SEND_BATCH = 20;

export class NotifyDuty {
  private readonly sender: Sender;
  private stopping = false;
  private wake: (() => void) | null = null;
  private done: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly store: Store,
    private readonly isLeader: () => boolean,
    private readonly o: NotifyOptions & { logger: Logger },
  ) {
    this.sender = new Sender(store, o);
  }

  start(): void {
    // state changes and new audit rows are in the outbox: look soon (a poll backs this up)
    this.unsubscribe = this.store.subscribe((s) => {
      if (s.type === 'events') this.wake?.();
    });
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.unsubscribe?.();
    this.wake?.();
    await this.done;
    this.sender.close();
  }

  /** One pass (if leading): collect everything new, send what is due. Returns when the next delivery is due (null: none). */
  async pass(): Promise<number | null> {
    if (!this.isLeader()) return null;
    while ((await collectDeliveries(this.store)) > 0 && !this.stopping) {
      // a backlog is read batch by batch
    }
    for (;;) {
      const due = await this.store.claimDeliveries(SEND_BATCH, this.claimMs);
      if (due.length === 0) break;
      await Promise.all(due.map((d) => this.deliver(d)));
      if (due.length < SEND_BATCH || this.stopping) break;
    }
    return this.store.nextDeliveryAt();
  }

  private get claimMs(): number {
    return (this.o.timeoutMs ?? 10_000) * 2 + 5_000;
  }

  /** Delay before attempt n+1 after n failed attempts. */
  retryDelay(attempts: number): number {
    return Math.min((this.o.retryDelayMs ?? 30_000) * 2 ** (attempts - 1), this.o.maxRetryDelayMs ?? 3_600_000);
  }

  private async deliver(d: Delivery): Promise<void> {
    try {
      await this.sender.send(d);
      await this.store.settleDelivery(d.id, d.attempts, { sent: true });
      this.o.logger.info({ delivery: d.id, event: d.event, target: d.target }, 'notification sent');
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      const last = e instanceof PermanentFailure || d.attempts >= (this.o.maxAttempts ?? 8);
      const retryAt = last ? null : Date.now() + this.retryDelay(d.attempts);
      await this.store.settleDelivery(d.id, d.attempts, { sent: false, error, retryAt });
      this.o.logger.warn({ delivery: d.id, event: d.event, target: d.target, attempt: d.attempts, err: error }, last ? 'notification failed for good' : 'notification failed; will retry');
    }
  }

  private async loop(): Promise<void> {
    let failures = 0;
    const poll = this.o.pollMs ?? 2_000;
    while (!this.stopping) {
      let next = Date.now() + poll;
      try {
        const due = await this.pass();
        if (due !== null) next = Math.min(next, Math.max(due, Date.now() + 50));
        failures = 0;
      } catch (e) {
        failures++;
        next = Date.now() + Math.min(poll * 2 ** Math.min(failures, 4), 30_000);
        this.o.logger.error({ err: e }, 'notify duty failed; continuing');
      }
      if (this.stopping) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.max(0, next - Date.now()));
        // wake-ups come in bursts (a run's jobs): a short pause gathers them into one pass
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.wake = () => {
          this.wake = null;
          clearTimeout(t);
          setTimeout(resolve, 100);
        };
      });
      this.wake = null;
    }
  }
}
