// The scheduler: a loop of small duties over the store. Today: move retrying
// jobs whose delay is over back to the queue, and reap attempts whose lease
// expired or whose worker is known dead (killing their orphaned process groups
// and staging folders when they ran on this host). It sleeps until the next
// retry is due, a store signal, or the lease-check interval, whichever is first.
import os from 'node:os';
import type { Store } from '../store/types.js';
import type { Logger } from '../log.js';
import { processAlive, signalGroup } from '../worker/processTree.js';
import { discardStaging } from '../worker/outputs.js';

export interface SchedulerOptions {
  /** how often leases are checked */
  reapIntervalMs: number;
  /** a worker silent for this long is dead */
  workerTimeoutMs: number;
  logger: Logger;
}

export class Scheduler {
  private stopping = false;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly host = os.hostname();

  constructor(private readonly store: Store, private readonly o: SchedulerOptions) {}

  start(): void {
    this.unsubscribe = this.store.subscribe((s) => {
      // only a new retry changes when the next duty is due; other changes need no pass
      if (s.type === 'retrying') this.wake?.();
    });
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.unsubscribe?.();
    await this.loopDone;
  }

  /** One pass of every duty; returns when the next pass is due. */
  async tick(): Promise<number> {
    const now = Date.now();
    await this.store.promoteDueRetries();
    await this.reap();
    const nextRetry = await this.store.nextRetryAt();
    const nextReap = now + this.o.reapIntervalMs;
    return nextRetry === null ? nextReap : Math.min(nextRetry, nextReap);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let next = Date.now() + this.o.reapIntervalMs;
      try {
        next = await this.tick();
      } catch (e) {
        this.o.logger.error({ err: e }, 'scheduler duty failed; continuing');
      }
      const delay = Math.max(0, next - Date.now());
      if (this.stopping) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  private async reap(): Promise<void> {
    const now = Date.now();
    const dead = (await this.store.listWorkers())
      .filter((w) => w.state !== 'stopped')
      .filter((w) => (w.host === this.host && !processAlive(w.pid)) || now - w.heartbeatAt > this.o.workerTimeoutMs)
      .map((w) => w.name);
    const reaped = await this.store.reapLostAttempts(dead);
    for (const r of reaped) {
      this.o.logger.warn({ job: r.jobId, fence: r.fence }, 'attempt lost: job requeued');
      if (r.host !== this.host) continue;
      // The attempt's processes may have outlived their worker (kill -9): stop them and drop their staging.
      if (r.pid !== null) signalGroup(r.pid, 'SIGKILL');
      const job = await this.store.getJob(r.jobId);
      if (job) await discardStaging(job.outputs, r.fence).catch(() => undefined);
    }
  }
}
