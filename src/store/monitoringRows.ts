// Rows of the monitoring reads (task duration history, attempt errors) and the
// SQL both stores share for them, with their mapping to the Store's types.
import { formatJobId } from './jobId.js';
import type { AttemptError, TaskDurationStats } from './types.js';

/** The run-time samples of a workflow's past runs: succeeded jobs, keyed by task (`task#` for chunks). */
export const PAST_DURATIONS_CTE = (p: { ns: string; wf: string; before: string; runs: string; keyExpr: string }) => `
  past AS (SELECT id FROM runs WHERE namespace = ${p.ns} AND workflow = ${p.wf} AND id < ${p.before} ORDER BY id DESC LIMIT ${p.runs}),
  d AS (
    SELECT j.run_id, ${p.keyExpr} AS k, (j.finished_at - j.started_at) AS ms
    FROM jobs j
    WHERE j.run_id IN (SELECT id FROM past) AND j.state = 'succeeded' AND j.started_at IS NOT NULL AND j.finished_at IS NOT NULL
  )`;

export interface TaskDurationRowDb {
  k: string;
  samples: number | string;
  runs: number | string;
  p10: number | string;
  p50: number | string;
  p90: number | string;
}

export function toTaskDurationStats(r: TaskDurationRowDb): TaskDurationStats {
  return { key: r.k, samples: Number(r.samples), runs: Number(r.runs), p10Ms: Math.round(Number(r.p10)), p50Ms: Math.round(Number(r.p50)), p90Ms: Math.round(Number(r.p90)) };
}

export interface AttemptErrorRowDb {
  id: number;
  run_id: number;
  task: string;
  chunk: number | null;
  namespace: string;
  workflow: string;
  number: number;
  worker: string;
  state: 'failed' | 'timed_out';
  started_at: number;
  finished_at: number | null;
  exit_code: number | null;
  error: string | null;
}

export function toAttemptError(r: AttemptErrorRowDb): AttemptError {
  return {
    fence: r.id,
    jobId: formatJobId(r.run_id, r.task, r.chunk),
    runId: r.run_id,
    namespace: r.namespace,
    workflow: r.workflow,
    number: r.number,
    worker: r.worker,
    state: r.state,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
    error: r.error ?? '',
  };
}

export interface EdgeRowDb {
  run_id: number;
  up_task: string;
  up_chunk: number | null;
  task: string;
  chunk: number | null;
}
export function toEdge(r: EdgeRowDb): [string, string] {
  return [formatJobId(r.run_id, r.up_task, r.up_chunk), formatJobId(r.run_id, r.task, r.chunk)];
}
