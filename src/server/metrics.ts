// GET /metrics (SPEC §4): Prometheus text format, collected on scrape from the
// store with a handful of aggregate queries (never a query per job). The
// duration histograms observe the jobs that finished since the last scrape,
// read from the event outbox through a cursor, at most MAX_EVENTS_PER_SCRAPE
// events a scrape so a backlog cannot make one scrape slow.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { JOB_STATES } from './schemas.js';
import type { Store } from '../store/types.js';

const EVENT_BATCH = 5_000;
const MAX_EVENTS_PER_SCRAPE = 50_000;
/** A worker not heard from for this long counts as lost, neither busy nor idle. */
const DEFAULT_WORKER_TIMEOUT_MS = 60_000;

export interface MetricsOptions {
  workerTimeoutMs?: number;
  now?: () => number;
}

export class ApiMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private cursor: number;
  /** scrapes run one at a time: two at once would read the same events twice */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;

  private readonly jobs: Gauge<'state' | 'queue'>;
  private readonly queueDepth: Gauge<'queue'>;
  private readonly poolSlots: Gauge<'pool'>;
  private readonly poolUsed: Gauge<'pool'>;
  private readonly poolFree: Gauge<'pool'>;
  private readonly poolQueued: Gauge<'pool'>;
  private readonly workers: Gauge<'state'>;
  private readonly workerSlots: Gauge<'worker'>;
  private readonly workerRunning: Gauge<'worker'>;
  private readonly duration: Histogram<'queue' | 'state'>;
  private readonly queueWait: Histogram<'queue'>;
  private readonly schedulerLag: Gauge;
  private readonly skipped: Counter;

  /** Starts the finished-jobs cursor at the store's latest event: histograms cover what finishes from now on. */
  static async create(store: Store, o: MetricsOptions = {}): Promise<ApiMetrics> {
    return new ApiMetrics(store, await store.lastEventId(), o);
  }

  private constructor(private readonly store: Store, cursor: number, private readonly o: MetricsOptions) {
    this.cursor = cursor;
    this.now = o.now ?? Date.now;
    const registers = [this.registry];
    this.jobs = new Gauge({ name: 'gantry_jobs', help: 'Jobs by state and queue (all runs kept in the store).', labelNames: ['state', 'queue'], registers });
    this.queueDepth = new Gauge({ name: 'gantry_queue_depth', help: 'Queued jobs (ready, waiting for a worker) per queue.', labelNames: ['queue'], registers });
    this.poolSlots = new Gauge({ name: 'gantry_pool_slots', help: 'Slots of each pool with a limit.', labelNames: ['pool'], registers });
    this.poolUsed = new Gauge({ name: 'gantry_pool_slots_used', help: 'Running jobs of each pool.', labelNames: ['pool'], registers });
    this.poolFree = new Gauge({ name: 'gantry_pool_slots_free', help: 'Free slots of each pool with a limit.', labelNames: ['pool'], registers });
    this.poolQueued = new Gauge({ name: 'gantry_pool_queued', help: 'Queued jobs of each pool.', labelNames: ['pool'], registers });
    this.workers = new Gauge({
      name: 'gantry_workers',
      help: 'Workers by state: busy (running jobs), idle, lost (no heartbeat lately); stopped workers are not counted.',
      labelNames: ['state'],
      registers,
    });
    this.workerSlots = new Gauge({ name: 'gantry_worker_slots', help: 'Slots of each live worker.', labelNames: ['worker'], registers });
    this.workerRunning = new Gauge({ name: 'gantry_worker_running_jobs', help: 'Jobs each live worker runs.', labelNames: ['worker'], registers });
    this.duration = new Histogram({
      name: 'gantry_job_duration_seconds',
      help: 'Run time of the last attempt of jobs that finished since the server started, by queue and outcome.',
      labelNames: ['queue', 'state'],
      buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400],
      registers,
    });
    this.queueWait = new Histogram({
      name: 'gantry_job_queue_wait_seconds',
      help: 'Time from queued to claimed of jobs that finished since the server started, by queue.',
      labelNames: ['queue'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400],
      registers,
    });
    this.schedulerLag = new Gauge({
      name: 'gantry_scheduler_lag_seconds',
      help: 'How late the oldest overdue scheduler duty is (a retry or a deferred run past its time); 0 when none is.',
      registers,
    });
    this.skipped = new Counter({
      name: 'gantry_metrics_events_skipped_total',
      help: 'Outbox events skipped because more than a scrape reads piled up; their jobs are missing from the histograms.',
      registers,
    });
  }

  /** The exposition text; collects first. */
  async render(): Promise<string> {
    const run = this.chain.then(() => this.collect());
    this.chain = run.catch(() => undefined);
    await run;
    return this.registry.metrics();
  }

  private async collect(): Promise<void> {
    const now = this.now();
    const [counts, pools, workers, nextRetry, overdueDeferred] = await Promise.all([
      this.store.jobCounts(),
      this.store.listPools(),
      this.store.listWorkers(),
      this.store.nextRetryAt(),
      this.store.listDeferredRuns({ state: 'waiting', dueBy: now, limit: 1 }),
    ]);

    // Reset first: a queue, pool or worker that is gone must not keep its last value.
    this.jobs.reset();
    this.queueDepth.reset();
    const queues = new Set(counts.map((c) => c.queue));
    // Every state of every known queue, zeros included: a rate or an alert on a series that appears late misfires.
    for (const queue of queues) {
      for (const state of JOB_STATES) this.jobs.set({ state, queue }, 0);
      this.queueDepth.set({ queue }, 0);
    }
    for (const c of counts) {
      this.jobs.set({ state: c.state, queue: c.queue }, c.count);
      if (c.state === 'queued') this.queueDepth.set({ queue: c.queue }, c.count);
    }

    for (const g of [this.poolSlots, this.poolUsed, this.poolFree, this.poolQueued]) g.reset();
    for (const p of pools) {
      this.poolUsed.set({ pool: p.name }, p.running);
      this.poolQueued.set({ pool: p.name }, p.queued);
      if (p.slots !== null) {
        this.poolSlots.set({ pool: p.name }, p.slots);
        this.poolFree.set({ pool: p.name }, Math.max(0, p.slots - p.running));
      }
    }

    const timeout = this.o.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS;
    const byState = { busy: 0, idle: 0, lost: 0 };
    this.workerSlots.reset();
    this.workerRunning.reset();
    for (const w of workers) {
      if (w.state === 'stopped') continue;
      if (now - w.heartbeatAt > timeout) {
        byState.lost++;
        continue;
      }
      byState[w.running.length > 0 ? 'busy' : 'idle']++;
      this.workerSlots.set({ worker: w.name }, w.slots);
      this.workerRunning.set({ worker: w.name }, w.running.length);
    }
    for (const [state, n] of Object.entries(byState)) this.workers.set({ state }, n);

    const overdue = [nextRetry, overdueDeferred[0]?.dueAt ?? null].filter((t): t is number => t !== null && t <= now);
    this.schedulerLag.set(overdue.length ? (now - Math.min(...overdue)) / 1000 : 0);

    await this.observeFinished();
  }

  private async observeFinished(): Promise<void> {
    let read = 0;
    for (;;) {
      const before = this.cursor;
      const { lastEventId, jobs } = await this.store.finishedJobTimings(this.cursor, EVENT_BATCH);
      this.cursor = lastEventId;
      for (const j of jobs) {
        if (j.startedAt !== null && j.finishedAt !== null && j.finishedAt >= j.startedAt)
          this.duration.observe({ queue: j.queue, state: j.state }, (j.finishedAt - j.startedAt) / 1000);
        if (j.enqueuedAt !== null && j.startedAt !== null && j.startedAt >= j.enqueuedAt)
          this.queueWait.observe({ queue: j.queue }, (j.startedAt - j.enqueuedAt) / 1000);
      }
      // Caught up when a read moves the cursor no more (one empty range scan per scrape).
      if (lastEventId === before) return;
      read += EVENT_BATCH;
      if (read >= MAX_EVENTS_PER_SCRAPE) {
        const latest = await this.store.lastEventId();
        if (latest > this.cursor) {
          this.skipped.inc(latest - this.cursor);
          this.cursor = latest;
        }
        return;
      }
    }
  }
}
