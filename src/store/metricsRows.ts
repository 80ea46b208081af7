// Rows of the metrics and web UI reads (Store.jobCounts, finishedJobTimings, runTaskCounts), shared by both stores.
import type { FinishedJobTiming, JobState, TaskStateCount } from './types.js';

/** One outbox event, with its job's timings when it is a job that finished (the LEFT JOIN matched). */
export interface FinishedTimingRowDb {
  id: number;
  state: string;
  queue: string | null;
  enqueued_at: number | null;
  started_at: number | null;
  finished_at: number | null;
}

export function finishedTimings(afterEventId: number, rows: FinishedTimingRowDb[]): { lastEventId: number; jobs: FinishedJobTiming[] } {
  const jobs: FinishedJobTiming[] = [];
  for (const r of rows)
    if (r.queue !== null && (r.state === 'succeeded' || r.state === 'failed'))
      jobs.push({ eventId: r.id, state: r.state, queue: r.queue, enqueuedAt: r.enqueued_at, startedAt: r.started_at, finishedAt: r.finished_at });
  return { lastEventId: rows.length ? rows[rows.length - 1]!.id : afterEventId, jobs };
}

/** One row of Store.runTaskCounts as both stores read it (PostgreSQL casts its counts to integers). */
export interface TaskCountRowDb {
  task: string;
  state: JobState;
  is_chunk: number | boolean;
  chunked: number;
  count: number;
  started_at: number | string | null;
  finished_at: number | string | null;
  progress: number;
}

export function toTaskStateCount(r: TaskCountRowDb): TaskStateCount {
  return {
    task: r.task,
    state: r.state,
    chunk: Boolean(r.is_chunk),
    chunked: Boolean(r.chunked),
    count: Number(r.count),
    startedAt: r.started_at === null ? null : Number(r.started_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    progress: Number(r.progress),
  };
}
