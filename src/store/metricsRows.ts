// Rows of the metrics reads (Store.jobCounts, Store.finishedJobTimings), shared by both stores.
import type { FinishedJobTiming } from './types.js';

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
