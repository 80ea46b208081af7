// GET /api/v1/overview: what the web UI's first page shows, in one answer:
// runs by state, failures of the last 24 h, queue depths, pool use, workers
// busy/idle and jobs finished per worker and minute. Every part is one
// set-based query (counts and groups in SQL), however many jobs there are.
import type { JobState, Store } from '../store/types.js';
import type { z } from 'zod';
import type { overviewResponse } from './schemas.js';

export type Overview = z.infer<typeof overviewResponse>;

const DAY_MS = 24 * 3_600_000;
const HOUR_MS = 3_600_000;
const LATEST_FAILURES = 10;

export async function overview(store: Store, now: number): Promise<Overview> {
  const failSince = now - DAY_MS;
  const seriesSince = Math.floor((now - HOUR_MS) / 60_000) * 60_000;
  const [runCounts, failures, jobCounts, pools, workers, series] = await Promise.all([
    store.runCounts(),
    store.failedJobsSince(failSince, LATEST_FAILURES),
    store.jobCounts(),
    store.listPools(),
    store.listWorkers(),
    store.finishedPerMinute(seriesSince),
  ]);
  const queues = new Map<string, Partial<Record<JobState, number>>>();
  for (const c of jobCounts) {
    if (c.state !== 'pending' && c.state !== 'queued' && c.state !== 'running' && c.state !== 'retrying') continue;
    const q = queues.get(c.queue) ?? {};
    q[c.state] = (q[c.state] ?? 0) + Number(c.count);
    queues.set(c.queue, q);
  }
  const live = workers.filter((w) => w.state !== 'stopped');
  const busy = live.filter((w) => w.running.length > 0).length;
  return {
    now,
    runs: Object.fromEntries(runCounts.map((r) => [r.state, Number(r.count)])),
    failures: { since: failSince, count: failures.count, latest: failures.jobs },
    queues: [...queues].sort(([a], [b]) => a.localeCompare(b)).map(([queue, counts]) => ({ queue, counts })),
    pools,
    workers: {
      total: workers.length,
      busy,
      idle: live.length - busy,
      draining: workers.filter((w) => w.state === 'draining').length,
      stopped: workers.length - live.length,
    },
    throughput: { since: seriesSince, series: series.map((s) => ({ ...s, minute: Number(s.minute), succeeded: Number(s.succeeded), failed: Number(s.failed) })) },
  };
}
