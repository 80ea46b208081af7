// The scheduler: a loop of small duties over the store — move retrying jobs
// whose delay is over back to the queue, reap attempts whose lease expired or
// whose worker is known dead, and note queued jobs no live worker could ever
// fit; start the runs of schedules and of `gantry run --at` when due
// (scheduleDuty.ts); prune the event outbox past its retention (pruneDuty.ts). Safe to run as several copies: one leads (a lease row in
// the store, renewed every second), the others wait and take over within
// `leaderTtlMs` when it dies. It sleeps until the next retry or start is due, a
// new retry, a change of definitions or deferred runs, the lease-check interval
// or the leadership renewal, whichever is first.
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Clock, Store } from '../store/types.js';
import type { Logger } from '../log.js';
import { killLostAttempt, processAlive } from '../worker/processTree.js';
import { ScheduleDuty } from './scheduleDuty.js';
import { formatDuration } from '../spec/duration.js';
import { NotifyDuty, type NotifyOptions } from '../notify/duty.js';
import { PruneDuty, type EventRetention } from './pruneDuty.js';

export interface SchedulerOptions {
  /** how often leases are checked */
  reapIntervalMs: number;
  /** a worker silent for this long is dead */
  workerTimeoutMs: number;
  /** a leader silent for this long is replaced */
  leaderTtlMs?: number;
  logger: Logger;
  /** the time schedules are computed in (tests drive it) */
  clock?: Clock;
  /** most missed ticks of one schedule that `catchup: true` creates (default 100) */
  catchupLimit?: number;
  /** notifications (SMTP, retries of deliveries); webhooks need nothing */
  notify?: NotifyOptions;
  /** how long and how many outbox events are kept (pruneDuty.ts) */
  eventRetention?: EventRetention;
}

const ROLE = 'scheduler';
const WAITING_NOTES_MS = 5_000;

export class Scheduler {
  readonly id = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
  private stopping = false;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly host = os.hostname();
  private leading = false;
  private lastWaitingNotes = 0;
  private readonly schedules: ScheduleDuty;
  /** notifications: a loop of its own while this copy leads (src/notify/duty.ts) */
  readonly notify: NotifyDuty;
  /** event retention: passes in the background while this copy leads */
  readonly prune: PruneDuty;

  constructor(private readonly store: Store, private readonly o: SchedulerOptions) {
    this.schedules = new ScheduleDuty(store, { logger: o.logger, clock: o.clock, catchupLimit: o.catchupLimit, actor: `scheduler:${this.id}` });
    this.prune = new PruneDuty(store, o.eventRetention, o.logger.child({ duty: 'prune' }));
    this.notify = new NotifyDuty(store, () => this.leading, { ...o.notify, logger: o.logger.child({ duty: 'notify' }) });
  }

  private get ttl(): number {
    return this.o.leaderTtlMs ?? 4_000;
  }
  private get renewMs(): number {
    return Math.max(100, Math.floor(this.ttl / 4));
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.unsubscribe = this.store.subscribe((s) => {
      // only a new retry, or new definitions or deferred runs, change when the next duty is due; other changes need no pass
      if (s.type === 'retrying') this.wake?.();
      else if (s.type === 'schedules') {
        this.schedules.invalidate();
        this.wake?.();
      }
    });
    this.loopDone = this.loop();
    this.notify.start();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.unsubscribe?.();
    await this.loopDone;
    await this.notify.stop();
    await this.prune.settle();
    if (this.leading) await this.store.releaseLeadership(ROLE, this.id).catch(() => undefined);
    this.leading = false;
  }

  /** Takes or keeps leadership; a follower does nothing else. */
  private async lead(): Promise<boolean> {
    const was = this.leading;
    this.leading = await this.store.acquireLeadership(ROLE, this.id, this.ttl);
    if (!this.leading) {
      // A leader of this host whose process is gone (kill -9, then a restart) need not be waited out.
      const current = await this.store.currentLeader(ROLE);
      const m = current && /^(.*)-(\d+)-[0-9a-f]{6}$/.exec(current.holder);
      if (m && m[1] === this.host && !processAlive(Number(m[2])))
        this.leading = await this.store.acquireLeadership(ROLE, this.id, this.ttl, current!.holder);
    }
    if (this.leading && !was) {
      this.o.logger.info({ scheduler: this.id }, 'leading the scheduler duties');
      // what the previous leader did (ticks, deferred starts) is in the store, not in this copy's cache
      this.schedules.invalidate();
    }
    if (!this.leading && was) this.o.logger.warn({ scheduler: this.id }, 'lost the scheduler leadership');
    return this.leading;
  }

  /** One pass of every duty (if leading); returns when the next pass is due. */
  async tick(): Promise<number> {
    const now = Date.now();
    const nextRenew = now + this.renewMs;
    if (!(await this.lead())) return nextRenew;
    await this.store.promoteDueRetries();
    await this.reap();
    await this.store.finishIdleRuns();
    this.prune.maybeStart();
    // Grouping every queued job is not free on a deep queue: now and then is enough for a note meant for people.
    if (now - this.lastWaitingNotes >= WAITING_NOTES_MS) {
      this.lastWaitingNotes = now;
      await this.store.updateWaitingReasons(this.o.workerTimeoutMs);
    }
    const nextStart = now + (await this.schedules.pass());
    const nextRetry = await this.store.nextRetryAt();
    const next = Math.min(now + this.o.reapIntervalMs, nextRenew, nextStart);
    return nextRetry === null ? next : Math.min(nextRetry, next);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let next = Date.now() + this.renewMs;
      try {
        next = await this.tick();
        failures = 0;
      } catch (e) {
        // e.g. the database restarting: back off, keep going
        failures++;
        next = Date.now() + Math.min(this.renewMs * 2 ** Math.min(failures, 4), 5_000);
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
    const workers = await this.store.listWorkers();
    const found = workers.flatMap((w) => {
      if (w.state === 'stopped') return [];
      if (w.host === this.host && !processAlive(w.pid)) return [{ name: w.name, reason: `its process ${w.pid} on ${w.host} is gone` }];
      const silent = now - w.heartbeatAt;
      if (silent > this.o.workerTimeoutMs) return [{ name: w.name, reason: `no heartbeat for ${formatDuration(silent)} (the limit is ${formatDuration(this.o.workerTimeoutMs)})` }];
      return [];
    });
    const dead = found.map((d) => d.name);
    // Marked stopped (a `dead` event and an audit entry each) before their jobs and services move on.
    const marked = await this.store.declareWorkersDead(found, `scheduler:${this.id}`);
    for (const d of found) if (marked.includes(d.name)) this.o.logger.warn({ worker: d.name, reason: d.reason }, 'worker declared dead');
    // Services of dead workers: their instances died with them (gantry-supervise), so they are free to move at once.
    const moved = await this.store.reapLostServices(dead);
    for (const m of moved) this.o.logger.warn({ service: `${m.namespace}/${m.name}`, state: m.state, reason: m.lastExit?.reason }, 'service lost its worker: moved');
    const lost = await this.store.findLostAttempts(dead);
    if (lost.length === 0) return;
    // Before a job goes back to the queue, the processes of its lost attempt must be gone. A worker
    // process that is gone from this host left orphans: kill them here. A worker still alive (slow,
    // paused, cut off) is not second-guessed: its job's supervisor kills the job before the lease
    // runs out, and the worker gives it back as lost (a kill from here would read as a failure).
    const processGone = (name: string) => {
      const w = workers.find((x) => x.name === name);
      return !w || w.host !== this.host || !processAlive(w.pid);
    };
    for (const l of lost) {
      if (l.host !== this.host || l.pid === null || !processGone(l.worker)) continue;
      await killLostAttempt(l);
    }
    const reaped = await this.store.reapLostAttempts(
      dead,
      lost.map((l) => l.fence),
      `scheduler:${this.id}`,
    );
    for (const r of reaped) this.o.logger.warn({ job: r.jobId, fence: r.fence, host: r.host }, 'attempt lost: job requeued');
  }
}
