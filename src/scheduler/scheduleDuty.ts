// The scheduler's cron duty: starts the runs of due schedule ticks and of due
// deferred runs (`gantry run --at`). Only the leading scheduler runs it, but
// exactly-once does not rest on that: each tick is recorded under a unique key
// in the transaction that creates its run (Store.startScheduledRun), so a
// second scheduler racing on the same tick finds it taken.
//
// A pass is cheap when nothing is due: schedules, marks and the next deferred
// start are cached, and read again only when the store signals a change of
// definitions or deferred runs, when leadership changes hands, or once per
// `refreshMs` as a safety net for a missed signal.
import { logicalDateOf } from './planRun.js';
import { DEFAULT_CATCHUP_LIMIT, dueTicks, logicalDateIn, nextTick, scheduleKey } from './schedules.js';
import { InvalidRunRequest, prepareRun, withPlanErrors } from '../server/runs.js';
import { ConflictError, NotFoundError, systemClock, type Clock, type AuditNote, type DeferredRun, type ScheduleTick, type Store } from '../store/types.js';
import type { ScheduleSpec, WorkflowSpec } from '../spec/model.js';
import type { Logger } from '../log.js';

/** Labels a started run carries to say what started it. */
export const SCHEDULE_LABEL = 'gantry.schedule';
export const TICK_LABEL = 'gantry.tick';
export const DEFERRED_LABEL = 'gantry.deferred';

export interface ScheduleDutyOptions {
  logger: Logger;
  clock?: Clock;
  /** most missed ticks of one schedule that `catchup: true` creates after downtime: the latest ones, oldest first */
  catchupLimit?: number;
  /** longest time cached schedules are trusted without a change signal; also the longest sleep */
  refreshMs?: number;
  /** who the audit log says created catch-up runs (`scheduler:<id>`) */
  actor?: string;
}

interface Entry {
  namespace: string;
  workflow: string;
  key: string;
  spec: ScheduleSpec;
  /** when the schedule appeared (its definition's last update): no tick before it is due */
  since: number;
  /** the next tick not yet acted on; null: never again */
  next: number | null;
}

const DEFERRED_BATCH = 100;

export class ScheduleDuty {
  private entries: Entry[] = [];
  private marks = new Map<string, number>();
  private nextDeferred: number | null = null;
  private loadedAt = -Infinity;
  private stale = true;
  private readonly clock: Clock;

  constructor(private readonly store: Store, private readonly o: ScheduleDutyOptions) {
    this.clock = o.clock ?? systemClock;
  }

  private get refreshMs(): number {
    return this.o.refreshMs ?? 60_000;
  }

  /** Something changed (definitions, deferred runs, leadership): read it all again on the next pass. */
  invalidate(): void {
    this.stale = true;
  }

  /** Starts what is due; returns how long until the next start is due, in ms (at most `refreshMs`). */
  async pass(): Promise<number> {
    const now = this.clock.now();
    if (this.stale || now - this.loadedAt >= this.refreshMs) await this.load(now);
    for (const e of this.entries) if (e.next !== null && e.next <= now) await this.fire(e, now);
    if (this.nextDeferred !== null && this.nextDeferred <= now) await this.startDeferred(now);
    let next = now + this.refreshMs;
    for (const e of this.entries) if (e.next !== null) next = Math.min(next, e.next);
    if (this.nextDeferred !== null) next = Math.min(next, this.nextDeferred);
    return Math.max(0, next - now);
  }

  private async load(now: number): Promise<void> {
    // Cleared first: a change signalled while reading makes the next pass read again.
    this.stale = false;
    const [defs, marks, deferred] = await Promise.all([
      this.store.listDefinitions(),
      this.store.scheduleMarks(),
      this.store.listDeferredRuns({ state: 'waiting', limit: 1 }),
    ]);
    this.marks = new Map(marks.map((m) => [markKey(m.namespace, m.workflow, m.schedule), m.lastTick]));
    this.nextDeferred = deferred[0]?.dueAt ?? null;
    const entries: Entry[] = [];
    for (const d of defs) {
      if (d.definition.kind !== 'workflow') continue;
      const w: WorkflowSpec = d.definition;
      const seen = new Set<string>();
      for (const spec of w.schedules) {
        const key = scheduleKey(spec);
        // Two identical schedules are one: they would start the same run at the same tick.
        if (seen.has(key)) continue;
        seen.add(key);
        const e: Entry = { namespace: w.namespace, workflow: w.name, key, spec, since: d.updatedAt, next: null };
        try {
          e.next = nextTick(spec, this.after(e));
        } catch (err) {
          this.o.logger.error({ workflow: w.name, cron: spec.cron, err }, 'schedule cannot be computed; ignored');
          continue;
        }
        entries.push(e);
      }
    }
    this.entries = entries;
    this.loadedAt = now;
  }

  private after(e: Entry): number {
    return this.marks.get(markKey(e.namespace, e.workflow, e.key)) ?? e.since;
  }

  private async fire(e: Entry, now: number): Promise<void> {
    const due = dueTicks(e.spec, this.after(e), now, this.o.catchupLimit ?? DEFAULT_CATCHUP_LIMIT);
    if (due.passedOver)
      this.o.logger.warn(
        { workflow: e.workflow, schedule: e.key, cron: e.spec.cron, firstRun: new Date(due.ticks[0]!).toISOString() },
        e.spec.catchup ? 'missed ticks beyond the catch-up limit are not run' : 'missed ticks are not run (catchup: false): only the latest',
      );
    const latest = due.ticks[due.ticks.length - 1];
    for (const at of due.ticks) {
      // A tick older than another one already due is a missed one, run late (catchup: true).
      await this.startTick(e, at, at === latest ? undefined : this.catchupNote(e, at, latest!, due.ticks.length - 1));
      this.marks.set(markKey(e.namespace, e.workflow, e.key), at);
    }
    e.next = nextTick(e.spec, Math.max(this.after(e), now));
  }

  private catchupNote(e: Entry, at: number, latest: number, missed: number): AuditNote {
    return {
      actor: this.o.actor ?? 'scheduler',
      action: 'catchup.run_created',
      reason: `schedule ${e.spec.cron} (${e.spec.timezone}) of ${e.workflow} missed its tick of ${new Date(at).toISOString()}: run created late (catchup: true, ${missed} missed)`,
      namespace: e.namespace,
      subject: e.key,
      details: { workflow: e.workflow, schedule: e.key, tick: at, latestTick: latest },
    };
  }

  private async startTick(e: Entry, at: number, note?: AuditNote): Promise<void> {
    const tick: ScheduleTick = { namespace: e.namespace, workflow: e.workflow, schedule: e.key, at };
    const log = { workflow: e.workflow, namespace: e.namespace, schedule: e.key, tick: new Date(at).toISOString() };
    try {
      const input = await prepareRun(
        this.store,
        {
          workflow: e.workflow,
          namespace: e.namespace,
          params: e.spec.params,
          labels: { [SCHEDULE_LABEL]: e.key, [TICK_LABEL]: new Date(at).toISOString() },
        },
        logicalDateIn(at, e.spec.timezone),
      );
      const r = await withPlanErrors(e.workflow, () => this.store.startScheduledRun(tick, e.spec.overlap, input, note));
      if (r.outcome === 'started') this.o.logger.info({ ...log, run: r.run.id, cancelled: r.cancelled }, 'scheduled run started');
      else if (r.outcome === 'skipped') this.o.logger.info({ ...log, running: r.running }, 'tick skipped: a run of this schedule is still running (overlap: skip)');
    } catch (err) {
      // A tick that can never start (params no longer resolve, a sub-workflow gone) is recorded, not retried forever.
      if (!(err instanceof InvalidRunRequest || err instanceof NotFoundError)) throw err;
      await this.store.skipScheduleTick(tick, err.message);
      this.o.logger.error({ ...log, err: err.message }, 'scheduled run could not start');
    }
  }

  private async startDeferred(now: number): Promise<void> {
    for (const d of await this.store.listDeferredRuns({ state: 'waiting', dueBy: now, limit: DEFERRED_BATCH })) await this.startOne(d);
    this.nextDeferred = (await this.store.listDeferredRuns({ state: 'waiting', limit: 1 }))[0]?.dueAt ?? null;
  }

  private async startOne(d: DeferredRun): Promise<void> {
    const log = { workflow: d.workflow, namespace: d.namespace, deferred: d.id };
    try {
      const input = await prepareRun(
        this.store,
        { workflow: d.workflow, namespace: d.namespace, params: d.params, labels: { ...d.labels, [DEFERRED_LABEL]: String(d.id) }, priority: d.priority, force: d.force },
        logicalDateOf(d.dueAt),
      );
      const run = await withPlanErrors(d.workflow, () => this.store.startDeferredRun(d.id, input));
      if (run) this.o.logger.info({ ...log, run: run.id }, 'deferred run started');
    } catch (err) {
      if (!(err instanceof InvalidRunRequest || err instanceof NotFoundError)) throw err;
      this.o.logger.error({ ...log, err: err.message }, 'deferred run could not start');
      await this.store.endDeferredRun(d.id, 'failed', err.message).catch((e: unknown) => {
        if (!(e instanceof ConflictError)) throw e; // started or cancelled meanwhile
      });
    }
  }
}

function markKey(namespace: string, workflow: string, schedule: string): string {
  return `${namespace}\u0000${workflow}\u0000${schedule}`;
}
