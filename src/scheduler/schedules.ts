// Pure time arithmetic of schedules (SPEC §2 `schedule`): which ticks of a cron
// schedule are due, a tick's logical date in its time zone, and how to show a
// time in a zone. No I/O and no clock of its own: callers pass `now`.
//
// DST follows croner (the same rules as Vixie cron): a fixed-time schedule
// (`30 2 * * *`) whose time falls in a spring-forward gap runs when the clock
// has jumped (03:00 local), and a time that occurs twice (fall back) runs once,
// at its first occurrence; interval schedules (`*/15 * * * *`) skip the gap and
// run on both occurrences of a repeated hour.
import { createHash } from 'node:crypto';
import { Cron } from 'croner';
import type { ScheduleSpec } from '../spec/model.js';

/** The most missed ticks `catchup: true` creates after downtime, unless configured otherwise. */
export const DEFAULT_CATCHUP_LIMIT = 100;

function cronOf(s: Pick<ScheduleSpec, 'cron' | 'timezone'>): Cron {
  return new Cron(s.cron, { paused: true, timezone: s.timezone });
}

/**
 * A stable name for a schedule within its workflow: what it runs and when
 * (cron, time zone, params), not its place in the list, so reordering the list
 * keeps each schedule's history. Editing the cron makes a new schedule, which
 * starts from the time of that edit (no catch-up of the old cron's ticks).
 */
export function scheduleKey(s: Pick<ScheduleSpec, 'cron' | 'timezone' | 'params'>): string {
  const text = JSON.stringify([s.cron.trim(), s.timezone, canonical(s.params)]);
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

export interface DueTicks {
  /** ticks to act on, oldest first (epoch ms) */
  ticks: number[];
  /** due ticks older than those, not run: `catchup: false`, or past the catch-up cap */
  passedOver: boolean;
}

/**
 * The ticks in (after, now] to act on: with catchup, the latest `limit` of them
 * (oldest first), else only the latest one. `after` is the last tick already
 * acted on (or when the schedule appeared).
 */
export function dueTicks(s: Pick<ScheduleSpec, 'cron' | 'timezone' | 'catchup'>, after: number, now: number, limit = DEFAULT_CATCHUP_LIMIT): DueTicks {
  if (now <= after) return { ticks: [], passedOver: false };
  const cron = cronOf(s);
  // Walk back from now, not forward from `after`: after a long outage of a frequent
  // schedule, only the ticks kept are computed. +1 ms: a tick at exactly `now` is due.
  const n = s.catchup ? Math.max(1, limit) : 1;
  const recent = cron
    .previousRuns(n, new Date(now + 1))
    .map((d) => d.getTime())
    .filter((t) => t > after && t <= now)
    .reverse();
  if (recent.length === 0) return { ticks: [], passedOver: false };
  const first = cron.nextRun(new Date(after))?.getTime();
  return { ticks: recent, passedOver: first !== undefined && first < recent[0]! };
}

/** The first tick after `after`, or null when the schedule never fires again. */
export function nextTick(s: Pick<ScheduleSpec, 'cron' | 'timezone'>, after: number): number | null {
  return cronOf(s).nextRun(new Date(after))?.getTime() ?? null;
}

/** `{{ run.date }}` of a tick: its calendar day in the schedule's time zone, as YYYYMMDD. */
export function logicalDateIn(ms: number, timezone: string): string {
  const p = parts(ms, timezone);
  return `${p.year}${p.month}${p.day}`;
}

/** A time as ISO 8601 in a zone, with that zone's offset then (`2026-03-29T03:00:00+02:00`). */
export function isoInZone(ms: number, timezone: string): string {
  const p = parts(ms, timezone);
  const offset = p.offset === 'GMT' ? '+00:00' : p.offset.replace('GMT', '');
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}${offset}`;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function parts(ms: number, timeZone: string): Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'offset', string> {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
    formats.set(timeZone, f);
  }
  const out: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(ms))) out[p.type === 'timeZoneName' ? 'offset' : p.type] = p.value;
  return out as Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'offset', string>;
}

/**
 * When `gantry run --at TIME` should start: an ISO 8601 date-time (with a zone
 * offset or `Z`; without one it is read as the local time of the machine
 * parsing it), or a delay from now such as `+10m`, `+2h`, `+1d`, `+90s`.
 * Throws an Error saying what is accepted.
 */
export function parseStartTime(text: string, now: number): number {
  const t = text.trim();
  const rel = /^\+(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(t);
  if (rel) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return now + Math.round(Number(rel[1]) * unit);
  }
  // Date.parse alone accepts things like "1" or "March 7": only ISO 8601 date-times pass.
  if (/^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$/i.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  throw new Error(`'${text}' is not a time: use an ISO 8601 date-time (2026-11-24T13:00:00Z, 2026-11-24T14:00+01:00) or a delay from now (+10m, +2h, +1d)`);
}
