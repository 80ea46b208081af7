import { describe, it, expect } from 'vitest';
import { retryDelayMs, partitionSettled, runOutcome } from '../../src/store/rules.js';

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
});
