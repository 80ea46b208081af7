// What `GET /api/v1/workflows` (and `gantry workflows`) says about a
// workflow's schedules: each one's key, rules, next start in its own time zone
// and in UTC, and the last tick acted on.
import type { WorkflowSpec, Overlap } from '../spec/model.js';
import type { ScheduleMark } from '../store/types.js';
import { isoInZone, nextTick, scheduleKey } from '../scheduler/schedules.js';

export interface ScheduleSummary {
  /** stable key of the schedule within its workflow; scheduled runs carry it as label `gantry.schedule` */
  key: string;
  cron: string;
  timezone: string;
  params: Record<string, unknown>;
  overlap: Overlap;
  catchup: boolean;
  /** next start, epoch ms; null when the cron never fires again */
  nextAt: number | null;
  /** next start in UTC (ISO 8601) */
  next: string | null;
  /** next start in the schedule's time zone, with its offset then */
  nextLocal: string | null;
  /** the last tick acted on (started, skipped or failed), epoch ms */
  lastTick: number | null;
}

export function workflowSchedules(w: WorkflowSpec, now: number, marks: ScheduleMark[]): ScheduleSummary[] {
  return w.schedules.map((s) => {
    const key = scheduleKey(s);
    let nextAt: number | null = null;
    try {
      nextAt = nextTick(s, now);
    } catch {
      // validated when applied; a zone or cron the runtime no longer knows shows no next start
    }
    const mark = marks.find((m) => m.namespace === w.namespace && m.workflow === w.name && m.schedule === key);
    return {
      key,
      cron: s.cron,
      timezone: s.timezone,
      params: s.params,
      overlap: s.overlap,
      catchup: s.catchup,
      nextAt,
      next: nextAt === null ? null : new Date(nextAt).toISOString(),
      nextLocal: nextAt === null ? null : isoInZone(nextAt, s.timezone),
      lastTick: mark?.lastTick ?? null,
    };
  });
}
