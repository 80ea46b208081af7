// "What is broken?" in one answer (GET /api/v1/broken, `gantry broken`): the
// run series whose latest run failed (since when, how many failed in a row),
// the jobs still failed in them, claims that went stale, lost workers, jobs no
// live worker could ever take, and series that flap between failing and not.
//
// A series is a workflow's runs with the same labels (scheduler bookkeeping
// labels `gantry.*` aside): `dumps` for lang=de and for lang=en are two series,
// so one wiki failing is not hidden by another succeeding.
import type { Job, Run, RunState, WorkerRow } from '../store/types.js';

/** A series flaps when its last FLAP_WINDOW finished runs changed between succeeded and failed at least FLAP_CHANGES times. */
export const FLAP_WINDOW = 10;
export const FLAP_CHANGES = 3;

export interface RunSeries {
  namespace: string;
  workflow: string;
  /** the labels that tell the series apart (without `gantry.*`) */
  labels: Record<string, string>;
}

export interface FailingSeries extends RunSeries {
  latestRun: Run;
  /** how many of its latest finished runs failed in a row */
  failedInARow: number;
  /** when the first of those failed runs was created: broken since */
  failingSince: number;
  /** when its last succeeded run finished (null: none among the runs read) */
  lastSucceededAt: number | null;
}

export interface FlappingSeries extends RunSeries {
  /** its latest finished runs' outcomes, newest first */
  recent: RunState[];
  changes: number;
}

export interface BrokenReport {
  failing: FailingSeries[];
  /** jobs still failed in the failing series' latest runs */
  failedJobs: Job[];
  /** claimed but not running: the lease lapsed or the process never started */
  staleClaims: Job[];
  /** not stopped, but silent for longer than the worker timeout */
  lostWorkers: WorkerRow[];
  /** queued jobs that no live worker could ever take (see Job.waitingReason) */
  unplaceable: Job[];
  flapping: FlappingSeries[];
}

function seriesOf(r: Run): RunSeries & { key: string } {
  const labels = Object.fromEntries(Object.entries(r.labels).filter(([k]) => !k.startsWith('gantry.')).sort(([a], [b]) => a.localeCompare(b)));
  return { namespace: r.namespace, workflow: r.workflow, labels, key: JSON.stringify([r.namespace, r.workflow, labels]) };
}

/** Failing and flapping series from runs listed newest first (a pure function of them). */
export function failingSeries(runsNewestFirst: readonly Run[]): { failing: FailingSeries[]; flapping: FlappingSeries[] } {
  const bySeries = new Map<string, { series: RunSeries; runs: Run[] }>();
  for (const r of runsNewestFirst) {
    if (r.state !== 'succeeded' && r.state !== 'failed') continue; // running, queued or cancelled runs say nothing about health
    const { key, ...series } = seriesOf(r);
    (bySeries.get(key) ?? bySeries.set(key, { series, runs: [] }).get(key)!).runs.push(r);
  }
  const failing: FailingSeries[] = [];
  const flapping: FlappingSeries[] = [];
  for (const { series, runs } of bySeries.values()) {
    let streak = 0;
    while (streak < runs.length && runs[streak]!.state === 'failed') streak++;
    if (streak > 0) {
      const lastOk = runs[streak];
      failing.push({
        ...series,
        latestRun: runs[0]!,
        failedInARow: streak,
        failingSince: runs[streak - 1]!.createdAt,
        lastSucceededAt: lastOk ? (lastOk.finishedAt ?? lastOk.createdAt) : null,
      });
    }
    const recent = runs.slice(0, FLAP_WINDOW).map((r) => r.state);
    let changes = 0;
    for (let i = 1; i < recent.length; i++) if (recent[i] !== recent[i - 1]) changes++;
    if (changes >= FLAP_CHANGES) flapping.push({ ...series, recent, changes });
  }
  failing.sort((a, b) => a.failingSince - b.failingSince);
  return { failing, flapping };
}
