// The pure rules of the state machine, shared by every Store implementation so
// the dialects differ only in SQL: trigger rules, retry delays, run outcomes.
import { CheckpointTooLargeError, MAX_CHECKPOINT_BYTES, type JobState, type RunState } from './types.js';

/**
 * Once every upstream of a pending job has settled ("bad" = failed, cancelled,
 * or skipped for any reason but outputs_exist):
 *   all_success  queue if no upstream is bad, else skip (reason: upstream)
 *   all_done     always queue
 *   any_failed   queue if some upstream is bad, else skip (reason: trigger)
 */
export function partitionSettled<T extends { id: number; trigger_rule: string; deps_bad: number }>(
  rows: T[],
): { queued: number[]; skipUpstream: number[]; skipTrigger: number[] } {
  const queued: number[] = [];
  const skipUpstream: number[] = [];
  const skipTrigger: number[] = [];
  for (const r of rows) {
    if (r.trigger_rule === 'all_done') queued.push(r.id);
    else if (r.trigger_rule === 'any_failed') (r.deps_bad > 0 ? queued : skipTrigger).push(r.id);
    else (r.deps_bad === 0 ? queued : skipUpstream).push(r.id);
  }
  return { queued, skipUpstream, skipTrigger };
}

/**
 * partitionSettled as a SQL expression over a settled job's `trigger_rule` and
 * `deps_bad`: 'queued', 'upstream' or 'trigger' (the skip reasons). The two must
 * agree (test/unit/rules.test.ts checks them against each other).
 */
export const SETTLE_VERDICT_SQL = `CASE
    WHEN trigger_rule = 'all_done' THEN 'queued'
    WHEN trigger_rule = 'any_failed' THEN CASE WHEN deps_bad > 0 THEN 'queued' ELSE 'trigger' END
    ELSE CASE WHEN deps_bad = 0 THEN 'queued' ELSE 'upstream' END
  END`;

export const SKIP_MESSAGES = {
  upstream: 'an upstream job did not succeed',
  trigger: 'no upstream job failed (trigger: any_failed)',
} as const;

/** Retry delays are spread by ±RETRY_JITTER so that many jobs failing at once do not all come back at once. */
export const RETRY_JITTER = 0.1;

/**
 * Delay before retry number `failures` (1-based): delay × backoff^(failures−1),
 * at most max_delay, then spread by ±10 % (never past max_delay).
 */
export function retryDelayMs(
  j: { retry_delay_ms: number; retry_backoff: number; retry_max_delay_ms: number },
  failures: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(j.retry_delay_ms * Math.pow(j.retry_backoff, failures - 1), j.retry_max_delay_ms);
  return Math.round(Math.min(base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random()), j.retry_max_delay_ms));
}

/** A run whose jobs have all ended: failed if any failed, else cancelled if any was cancelled, else succeeded. */
export function runOutcome(counts: Partial<Record<JobState, number>>): RunState {
  return (counts.failed ?? 0) > 0 ? 'failed' : (counts.cancelled ?? 0) > 0 ? 'cancelled' : 'succeeded';
}

/** A checkpoint as its column holds it: JSON, or null for none (null/undefined clear it). Throws past MAX_CHECKPOINT_BYTES. */
export function checkpointJson(data: unknown): string | null {
  if (data === null || data === undefined) return null;
  const json = JSON.stringify(data) as string | undefined;
  if (json === undefined) throw new TypeError(`a checkpoint must be a JSON value, not a ${typeof data}`);
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_CHECKPOINT_BYTES) throw new CheckpointTooLargeError(bytes);
  return json;
}

/**
 * The SET clause of a rerun for the checkpoint columns (same SQL in both
 * dialects). `--force` starts every job afresh; otherwise a job whose work was
 * done (succeeded, skipped) starts afresh and an unfinished one (failed,
 * cancelled) resumes from its checkpoint, ahead of fresh jobs (`resume`).
 */
export function rerunCheckpointSql(force: boolean): string {
  if (force) return 'checkpoint = NULL, resume = 0';
  const done = `state IN ('succeeded', 'skipped')`;
  return `checkpoint = CASE WHEN ${done} THEN NULL ELSE checkpoint END, resume = CASE WHEN ${done} OR checkpoint IS NULL THEN 0 ELSE 1 END`;
}
