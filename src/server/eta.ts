// When will a running run finish? An estimate from how long the same tasks
// took in the workflow's past runs, with its basis and a range.
//
// The model (deliberately simple, and said out loud in `basis`):
// - History: for each task, the run time (finished − started) of its succeeded
//   jobs in the last PAST_RUNS runs of the workflow (fewer for big runs, so that
//   about HISTORY_JOBS jobs are read at most: 2 past runs for a run of 100,000
//   jobs), kept for HISTORY_TTL_MS per run; a split task's chunks are
//   sampled one per chunk under the key `task#`. p10 / p50 / p90 of those give
//   the low / likely / high cases (store.taskDurations, in SQL).
// - The remaining work is a DAG of groups: the unfinished jobs of one task
//   (its own job, or its chunks) form one group; a group waits for the groups
//   its jobs depend on (the run's job_deps). Finished jobs weigh nothing.
// - A group's time, per case with per-job duration d:
//     running job:  max(0, d − elapsed), or, when it reports progress p%,
//                   elapsed·(100−p)/p (the likely case; low/high take the
//                   smaller/larger of the two);
//     retrying job: the rest of its retry delay, then d;
//     waiting job (pending/queued): d, in ⌈W / C⌉ waves, where W is the
//                   group's waiting jobs and C how many can run at once: the
//                   smallest of its pool's slots, its task's `concurrency`
//                   (when given), and the live workers' slots (none known:
//                   unlimited).
//   The group takes the longest of its running jobs' remainders and its waves.
// - The run ends when the longest chain of groups (the critical path) does.
//   ETA = now + that length, for each case; the critical path shown is the
//   likely case's.
// - A split task whose chunks do not exist yet (its split has not run) gets
//   as many chunks as its past runs had on average.
// - Jobs of other runs competing for the same pool or workers are not
//   modelled; nor are retries that have not happened yet.
// - A task without history (and without progress) counts as taking no time and
//   is named in `basis.tasksWithoutHistory`; with no history at all there is no
//   ETA (null), never a made-up number.

import type { Job, Run, Store, TaskDurationStats, TaskHistory } from '../store/types.js';

/** How many of the workflow's latest runs the history is taken from. */
export const PAST_RUNS = 20;
/** About how many past jobs one estimate reads at most. */
export const HISTORY_JOBS = 200_000;
/** How long a run's history is reused (it changes only as other runs finish jobs). */
export const HISTORY_TTL_MS = 30_000;

/** Past durations per run, reused for HISTORY_TTL_MS: `gantry status` polled on a big run reads them once. */
export class HistoryCache {
  private readonly entries = new Map<number, { at: number; history: Promise<TaskHistory> }>();
  constructor(private readonly store: Store) {}

  get(run: Run, jobCount: number, now: number): Promise<TaskHistory> {
    for (const [id, e] of this.entries) if (now - e.at > HISTORY_TTL_MS) this.entries.delete(id);
    const hit = this.entries.get(run.id);
    if (hit) return hit.history;
    const runs = Math.max(1, Math.min(PAST_RUNS, Math.floor(HISTORY_JOBS / Math.max(1, jobCount))));
    const history = this.store.taskDurations({ namespace: run.namespace, workflow: run.workflow, beforeRunId: run.id, runs });
    this.entries.set(run.id, { at: now, history });
    history.catch(() => this.entries.delete(run.id));
    return history;
  }
}

export interface EtaRange {
  /** epoch ms */
  likely: number;
  low: number;
  high: number;
}

export interface RunEta {
  /** null: the run has ended, or nothing in its history tells */
  eta: EtaRange | null;
  basis: {
    /** past runs of the workflow whose jobs gave durations */
    pastRuns: number;
    /** which percentiles of past run times the range is made of */
    percentiles: { low: 'p10'; likely: 'p50'; high: 'p90' };
    /** unfinished tasks with no past duration (counted as taking no time) */
    tasksWithoutHistory: string[];
    /** the chain of unfinished tasks that ends last (likely case), first to last; chunks as `task#` */
    criticalPath: string[];
    /** why there is no ETA, when there is none */
    reason?: string | undefined;
  };
}

/**
 * The ETA of a run from the store: its jobs, dependency edges, the workflow's
 * history, pools and live workers' slots. Null `eta` for a finished run.
 */
export async function runEta(
  store: Store,
  run: Run,
  jobs: readonly Job[],
  now: number,
  o: { workerTimeoutMs?: number; cache?: HistoryCache } = {},
): Promise<RunEta> {
  const workerTimeoutMs = o.workerTimeoutMs ?? 60_000;
  const finished = run.state === 'succeeded' || run.state === 'failed' || run.state === 'cancelled';
  if (finished) return estimateRun({ now, runFinished: true, jobs: [], edges: [], history: { pastRuns: 0, tasks: [] }, pools: new Map(), workerSlots: null });
  const [edges, history, pools, workers] = await Promise.all([
    store.runEdges(run.id),
    (o.cache ?? new HistoryCache(store)).get(run, jobs.length, now),
    store.listPools(),
    store.listWorkers(),
  ]);
  const live = workers.filter((w) => w.state !== 'stopped' && now - w.heartbeatAt < workerTimeoutMs);
  return estimateRun({
    now,
    runFinished: false,
    jobs,
    edges,
    history,
    pools: new Map(pools.map((p) => [p.name, p.slots])),
    workerSlots: live.length ? live.reduce((n, w) => n + w.slots, 0) : null,
  });
}

/** What estimateRun needs of a job. */
export type EtaJob = Pick<Job, 'id' | 'task' | 'chunk' | 'state' | 'startedAt' | 'progress' | 'pool' | 'runAfter' | 'chunked'> & {
  /** its task's `concurrency` (chunks), when set */
  chunkLimit?: number | null;
};

export interface EtaInput {
  now: number;
  runFinished: boolean;
  jobs: readonly EtaJob[];
  /** [upstream job id, dependent job id] */
  edges: readonly (readonly [string, string])[];
  history: { pastRuns: number; tasks: readonly TaskDurationStats[] };
  /** pool name → its slots (null: unlimited) */
  pools: ReadonlyMap<string, number | null>;
  /** slots of the live workers together; null: unknown (unlimited) */
  workerSlots: number | null;
}

type Case = 'low' | 'likely' | 'high';
const CASES: Case[] = ['low', 'likely', 'high'];
const PCT: Record<Case, 'p10Ms' | 'p50Ms' | 'p90Ms'> = { low: 'p10Ms', likely: 'p50Ms', high: 'p90Ms' };
const UNFINISHED = new Set(['pending', 'queued', 'running', 'retrying']);

const groupOf = (j: Pick<Job, 'task' | 'chunk'>) => (j.chunk === null ? j.task : `${j.task}#`);

export function estimateRun(input: EtaInput): RunEta {
  const basis: RunEta['basis'] = {
    pastRuns: input.history.pastRuns,
    percentiles: { low: 'p10', likely: 'p50', high: 'p90' },
    tasksWithoutHistory: [],
    criticalPath: [],
  };
  if (input.runFinished) return { eta: null, basis: { ...basis, reason: 'the run has ended' } };
  const stats = new Map(input.history.tasks.map((t) => [t.key, t]));
  const byId = new Map(input.jobs.map((j) => [j.id, j]));
  const open = input.jobs.filter((j) => UNFINISHED.has(j.state));

  // Groups of unfinished jobs, and the edges between groups.
  const groups = new Map<string, EtaJob[]>();
  for (const j of open) {
    const g = groupOf(j);
    (groups.get(g) ?? groups.set(g, []).get(g)!).push(j);
  }
  const ups = new Map<string, Set<string>>();
  const link = (up: string, down: string) => {
    if (up !== down) (ups.get(down) ?? ups.set(down, new Set()).get(down)!).add(up);
  };
  for (const [u, d] of input.edges) {
    const uj = byId.get(u);
    const dj = byId.get(d);
    if (uj && dj && UNFINISHED.has(uj.state) && UNFINISHED.has(dj.state)) link(groupOf(uj), groupOf(dj));
  }
  // Split tasks not split yet: their chunks-to-be, as many as past runs had, between the split and the main job.
  const virtualChunks = new Map<string, { count: number; job: EtaJob }>();
  for (const j of open) {
    if (!j.chunked || j.chunk !== null || groups.has(`${j.task}#`)) continue;
    const s = stats.get(`${j.task}#`);
    if (!s || s.runs === 0) continue;
    const g = `${j.task}#`;
    virtualChunks.set(g, { count: Math.max(1, Math.round(s.samples / s.runs)), job: j });
    groups.set(g, []);
    link(g, j.task);
    if (groups.has(`${j.task}.split`)) link(`${j.task}.split`, g);
  }

  if (input.history.pastRuns === 0 && !open.some((j) => j.state === 'running' && progressOf(j) !== null)) {
    basis.tasksWithoutHistory = [...new Set(open.map(groupOf))].sort();
    return { eta: null, basis: { ...basis, reason: 'no past run of this workflow has finished a job: nothing to estimate from' } };
  }

  const noHistory = new Set<string>();
  const weight = (g: string, c: Case): number => {
    const s = stats.get(g);
    const d = s ? s[PCT[c]] : null;
    const jobs = groups.get(g)!;
    const virtual = virtualChunks.get(g);
    let longestRunning = 0;
    let waiting = virtual ? virtual.count : 0;
    let retryWait = 0;
    for (const j of jobs) {
      if (j.state === 'running') {
        const elapsed = Math.max(0, input.now - (j.startedAt ?? input.now));
        const byHistory = d === null ? null : Math.max(0, d - elapsed);
        const p = progressOf(j);
        const byProgress = p === null ? null : (elapsed * (100 - p)) / p;
        let rest: number;
        if (byProgress === null) rest = byHistory ?? 0;
        else if (byHistory === null || c === 'likely') rest = byProgress;
        else rest = c === 'low' ? Math.min(byProgress, byHistory) : Math.max(byProgress, byHistory);
        if (byHistory === null && byProgress === null) noHistory.add(g);
        longestRunning = Math.max(longestRunning, rest);
      } else {
        waiting++;
        if (j.state === 'retrying' && j.runAfter !== null) retryWait = Math.max(retryWait, j.runAfter - input.now);
      }
    }
    if (waiting === 0) return longestRunning;
    if (d === null) {
      noHistory.add(g);
      return longestRunning;
    }
    const capacity = capacityOf(virtual?.job ?? jobs[0]!, input);
    const waves = Number.isFinite(capacity) ? Math.ceil(waiting / Math.max(1, capacity)) : 1;
    return Math.max(longestRunning, retryWait + waves * d);
  };

  const order = topological([...groups.keys()], ups);
  const result: Partial<Record<Case, number>> = {};
  for (const c of CASES) {
    const finish = new Map<string, number>();
    const via = new Map<string, string | null>();
    for (const g of order) {
      let start = 0;
      let from: string | null = null;
      for (const u of ups.get(g) ?? []) {
        const f = finish.get(u) ?? 0;
        if (from === null || f > start) (start = f), (from = u);
      }
      finish.set(g, start + weight(g, c));
      via.set(g, from);
    }
    let end = 0;
    let last: string | null = null;
    for (const [g, f] of finish) if (last === null || f > end) (end = f), (last = g);
    result[c] = end;
    if (c === 'likely') {
      const path: string[] = [];
      for (let g = last; g !== null; g = via.get(g) ?? null) path.unshift(g);
      basis.criticalPath = path;
    }
  }
  basis.tasksWithoutHistory = [...noHistory].sort();
  // Monotone by construction for jobs with history; kept ordered when progress makes low exceed likely.
  const low = Math.min(result.low!, result.likely!);
  const high = Math.max(result.high!, result.likely!);
  return { eta: { likely: Math.round(input.now + result.likely!), low: Math.round(input.now + low), high: Math.round(input.now + high) }, basis };
}

function progressOf(j: EtaJob): number | null {
  return j.progress !== null && j.progress > 0 && j.progress < 100 ? j.progress : null;
}

/** How many jobs of this job's group can run at once. */
function capacityOf(j: EtaJob, input: EtaInput): number {
  let c = Number.POSITIVE_INFINITY;
  const pool = j.pool === null ? undefined : input.pools.get(j.pool);
  if (pool !== undefined && pool !== null) c = Math.min(c, pool);
  if (j.chunkLimit) c = Math.min(c, j.chunkLimit);
  if (input.workerSlots !== null) c = Math.min(c, input.workerSlots);
  return c;
}

/** Kahn's order of the groups (upstreams first); a cycle (never in a valid run) keeps its remaining nodes in input order. */
function topological(nodes: string[], ups: Map<string, Set<string>>): string[] {
  const downs = new Map<string, string[]>();
  const indeg = new Map(nodes.map((n) => [n, 0]));
  for (const [d, us] of ups)
    for (const u of us) {
      if (!indeg.has(u) || !indeg.has(d)) continue;
      (downs.get(u) ?? downs.set(u, []).get(u)!).push(d);
      indeg.set(d, indeg.get(d)! + 1);
    }
  const out: string[] = [];
  const ready = nodes.filter((n) => indeg.get(n) === 0);
  while (ready.length) {
    const n = ready.shift()!;
    out.push(n);
    for (const d of downs.get(n) ?? []) {
      indeg.set(d, indeg.get(d)! - 1);
      if (indeg.get(d) === 0) ready.push(d);
    }
  }
  for (const n of nodes) if (!out.includes(n)) out.push(n);
  return out;
}
