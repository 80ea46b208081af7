import { describe, it, expect } from 'vitest';
import Database from 'better-sqlite3';
import { retryDelayMs, partitionSettled, runOutcome, SETTLE_VERDICT_SQL } from '../../src/store/rules.js';

const policy = { retry_delay_ms: 10_000, retry_backoff: 2, retry_max_delay_ms: 60_000 };

describe('state machine rules', () => {
  it('grows retry delays by the backoff, caps them at max_delay, and spreads them by ±10 %', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(policy, n, () => 0.5))).toEqual([10_000, 20_000, 40_000, 60_000]);
    expect(retryDelayMs(policy, 1, () => 0)).toBe(9_000);
    expect(retryDelayMs(policy, 1, () => 1)).toBe(11_000);
    expect(retryDelayMs(policy, 4, () => 1)).toBe(60_000); // never past max_delay
    // a thousand jobs failing at once come back spread over a fifth of the delay, not all at once
    const delays = new Set(Array.from({ length: 1000 }, () => retryDelayMs(policy, 1)));
    expect(delays.size).toBeGreaterThan(500);
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(1_500);
  });

  it('queues or skips settled jobs by trigger rule', () => {
    const r = partitionSettled([
      { id: 1, trigger_rule: 'all_success', deps_bad: 0 },
      { id: 2, trigger_rule: 'all_success', deps_bad: 1 },
      { id: 3, trigger_rule: 'all_done', deps_bad: 2 },
      { id: 4, trigger_rule: 'any_failed', deps_bad: 1 },
      { id: 5, trigger_rule: 'any_failed', deps_bad: 0 },
    ]);
    expect(r).toEqual({ queued: [1, 3, 4], skipUpstream: [2], skipTrigger: [5] });
  });

  it('ends a run failed if any job failed, else cancelled if any was cancelled', () => {
    expect(runOutcome({ succeeded: 3, failed: 1, cancelled: 1 })).toBe('failed');
    expect(runOutcome({ succeeded: 3, cancelled: 1 })).toBe('cancelled');
    expect(runOutcome({ succeeded: 3, skipped: 2 })).toBe('succeeded');
  });
  it('settles dependents the same way in SQL (PostgreSQL settles in one statement) as in code', () => {
    const db = new Database(':memory:');
    const rows = ['all_success', 'all_done', 'any_failed'].flatMap((rule) => [0, 1, 3].map((bad, i) => ({ id: rowId(rule, i), trigger_rule: rule, deps_bad: bad })));
    const { queued, skipUpstream, skipTrigger } = partitionSettled(rows);
    const expected = new Map<number, string>([...queued.map((id) => [id, 'queued'] as const), ...skipUpstream.map((id) => [id, 'upstream'] as const), ...skipTrigger.map((id) => [id, 'trigger'] as const)]);
    for (const r of rows) {
      const got = db.prepare(`SELECT ${SETTLE_VERDICT_SQL} AS verdict FROM (SELECT ? AS trigger_rule, ? AS deps_bad)`).get(r.trigger_rule, r.deps_bad) as { verdict: string };
      expect([r.trigger_rule, r.deps_bad, got.verdict]).toEqual([r.trigger_rule, r.deps_bad, expected.get(r.id)]);
    }
    db.close();
  });
});

function rowId(rule: string, i: number): number {
  return ['all_success', 'all_done', 'any_failed'].indexOf(rule) * 10 + i;
}
