// The pure time arithmetic of schedules (src/scheduler/schedules.ts): due ticks
// with and without catch-up, DST in Europe/Berlin, logical dates in a zone,
// schedule keys and `run --at` times. No store, no clock: times are given.
import { describe, it, expect } from 'vitest';
import { dueTicks, isoInZone, logicalDateIn, nextTick, parseStartTime, scheduleKey } from '../../src/scheduler/schedules.js';

const iso = (ms: number[]) => ms.map((t) => new Date(t).toISOString());
const at = (s: string) => Date.parse(s);
const berlin = { cron: '30 2 * * *', timezone: 'Europe/Berlin', catchup: true };

describe('schedule ticks across DST (Europe/Berlin, 30 2 * * *)', () => {
  it('spring forward (2026-03-29, 02:00 → 03:00): the missing 02:30 runs once, when the clock has jumped (03:00 CEST)', () => {
    const { ticks } = dueTicks(berlin, at('2026-03-27T12:00:00Z'), at('2026-03-31T12:00:00Z'));
    expect(iso(ticks)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z']);
    expect(ticks.map((t) => isoInZone(t, 'Europe/Berlin'))).toEqual([
      '2026-03-28T02:30:00+01:00',
      '2026-03-29T03:00:00+02:00',
      '2026-03-30T02:30:00+02:00',
      '2026-03-31T02:30:00+02:00',
    ]);
    expect(ticks.map((t) => logicalDateIn(t, 'Europe/Berlin'))).toEqual(['20260328', '20260329', '20260330', '20260331']);
  });

  it('fall back (2026-10-25, 03:00 → 02:00): 02:30 happens twice but runs once, at its first occurrence (CEST)', () => {
    const { ticks } = dueTicks(berlin, at('2026-10-23T12:00:00Z'), at('2026-10-27T12:00:00Z'));
    expect(iso(ticks)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
    expect(isoInZone(ticks[1]!, 'Europe/Berlin')).toBe('2026-10-25T02:30:00+02:00');
    expect(ticks.map((t) => logicalDateIn(t, 'Europe/Berlin'))).toEqual(['20261024', '20261025', '20261026', '20261027']);
  });

  it('an interval schedule (30 * * * *) runs on both occurrences of the repeated hour, and skips the missing one', () => {
    const hourly = { cron: '30 * * * *', timezone: 'Europe/Berlin', catchup: true };
    const fall = dueTicks(hourly, at('2026-10-24T23:00:00Z'), at('2026-10-25T02:00:00Z')).ticks;
    expect(fall.map((t) => isoInZone(t, 'Europe/Berlin'))).toEqual(['2026-10-25T01:30:00+02:00', '2026-10-25T02:30:00+02:00', '2026-10-25T02:30:00+01:00']);
    const spring = dueTicks(hourly, at('2026-03-28T23:00:00Z'), at('2026-03-29T02:00:00Z')).ticks;
    expect(spring.map((t) => isoInZone(t, 'Europe/Berlin'))).toEqual(['2026-03-29T00:30:00+01:00', '2026-03-29T01:30:00+01:00', '2026-03-29T03:30:00+02:00']);
  });

  it('computes the next start in the schedule zone', () => {
    expect(new Date(nextTick(berlin, at('2026-03-28T12:00:00Z'))!).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(nextTick({ cron: '0 0 1 1 *', timezone: 'UTC' }, at('2026-06-01T00:00:00Z'))).toBe(at('2027-01-01T00:00:00Z'));
  });
});

describe('due ticks after downtime', () => {
  const hourly = { cron: '0 * * * *', timezone: 'UTC' };
  const from = at('2026-11-24T12:00:00Z');
  const threeDays = from + 3 * 86_400_000;

  it('catchup: every missed tick, oldest first, up to the limit (the latest ones); passedOver says some were left', () => {
    const all = dueTicks({ ...hourly, catchup: true }, from, threeDays);
    expect(all.ticks).toHaveLength(72);
    expect(all.ticks[0]).toBe(from + 3_600_000);
    expect(all.ticks[71]).toBe(threeDays);
    expect(all.passedOver).toBe(false);
    const capped = dueTicks({ ...hourly, catchup: true }, from, threeDays, 10);
    expect(capped.ticks).toEqual(all.ticks.slice(-10));
    expect(capped.passedOver).toBe(true);
  });

  it('no catchup: only the latest due tick', () => {
    const r = dueTicks({ ...hourly, catchup: false }, from, threeDays - 60_000);
    expect(iso(r.ticks)).toEqual(['2026-11-27T11:00:00.000Z']);
    expect(r.passedOver).toBe(true);
  });

  it('a tick at exactly now is due; none before the first tick after `after`', () => {
    expect(dueTicks({ ...hourly, catchup: false }, from, from + 3_600_000).ticks).toEqual([from + 3_600_000]);
    expect(dueTicks({ ...hourly, catchup: false }, from, from + 3_599_999).ticks).toEqual([]);
    expect(dueTicks({ ...hourly, catchup: true }, from + 3_600_000, from + 3_600_000).ticks).toEqual([]);
  });
});

describe('logical dates and keys', () => {
  it('run.date is the tick day in the schedule zone', () => {
    const t = at('2026-11-24T23:30:00Z');
    expect(logicalDateIn(t, 'UTC')).toBe('20261124');
    expect(logicalDateIn(t, 'Asia/Tokyo')).toBe('20261125');
    expect(logicalDateIn(at('2026-11-25T03:00:00Z'), 'America/New_York')).toBe('20261124');
  });

  it('a schedule key follows what the schedule does, not its place or the order of its params', () => {
    const a = scheduleKey({ cron: '0 3 * * *', timezone: 'UTC', params: { wiki: 'enwiki', size: 'large' } });
    expect(scheduleKey({ cron: '0 3 * * *', timezone: 'UTC', params: { size: 'large', wiki: 'enwiki' } })).toBe(a);
    expect(scheduleKey({ cron: '0 4 * * *', timezone: 'UTC', params: { wiki: 'enwiki', size: 'large' } })).not.toBe(a);
    expect(scheduleKey({ cron: '0 3 * * *', timezone: 'Europe/Berlin', params: { wiki: 'enwiki', size: 'large' } })).not.toBe(a);
    expect(scheduleKey({ cron: '0 3 * * *', timezone: 'UTC', params: { wiki: 'dewiki', size: 'large' } })).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('gantry run --at TIME', () => {
  const now = at('2026-11-24T12:00:00Z');
  it('takes a delay from now or an ISO 8601 date-time', () => {
    expect(parseStartTime('+10m', now)).toBe(now + 600_000);
    expect(parseStartTime('+2h', now)).toBe(now + 7_200_000);
    expect(parseStartTime('+1d', now)).toBe(now + 86_400_000);
    expect(parseStartTime('+90s', now)).toBe(now + 90_000);
    expect(parseStartTime('2026-11-24T13:00:00Z', now)).toBe(at('2026-11-24T13:00:00Z'));
    expect(parseStartTime('2026-11-24T14:00+01:00', now)).toBe(at('2026-11-24T13:00:00Z'));
    expect(parseStartTime('2026-11-24 13:00:00Z', now)).toBe(at('2026-11-24T13:00:00Z'));
  });

  it('refuses anything else, saying what it takes', () => {
    for (const bad of ['tomorrow', '10m', '+10', '+10y', '1', 'March 7', '2026-13-01T00:00Z', '2026-11-24T25:00Z', ''])
      expect(() => parseStartTime(bad, now), bad).toThrow(/is not a time: use an ISO 8601 date-time .* or a delay from now \(\+10m/);
  });
});
