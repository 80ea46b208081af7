// How far along each task of a run is, from its jobs: what `gantry status` and
// the API's run status show next to the job list. A split task is many jobs
// (its chunks and its main job) under one task id; its chunks are counted.
import type { Job, JobState, StageCount } from './types.js';

export interface TaskProgress {
  task: string;
  /** the task's own job (a split task's main job: its combine); its first job if it has none */
  state: JobState;
  /** a split task's chunks, once created: done (succeeded, or skipped as done) out of total, and how many run now */
  chunks: { done: number; total: number; running: number; failed: number } | null;
  /**
   * 0–100: a running job's last reported progress; for chunks, done ones count
   * whole and running ones by what they reported. Null when nothing tells.
   */
  progress: number | null;
  /**
   * A stage of a run too big to list task by task (`dumps[*].stubs`: every
   * foreach copy of one task): its copies done / total, running, failed.
   */
  copies?: { done: number; total: number; running: number; failed: number };
}

const isDone = (j: Job) => j.state === 'succeeded' || j.state === 'skipped';

/** One entry per task, in the order the jobs come (the run's order). */
export function taskProgress(jobs: readonly Job[]): TaskProgress[] {
  const byTask = new Map<string, Job[]>();
  for (const j of jobs) {
    const list = byTask.get(j.task);
    if (list) list.push(j);
    else byTask.set(j.task, [j]);
  }
  return [...byTask].map(([task, list]) => {
    const main = list.find((j) => j.chunk === null) ?? list[0]!;
    const chunkJobs = list.filter((j) => j.chunk !== null);
    if (chunkJobs.length === 0)
      return { task, state: main.state, chunks: null, progress: main.state === 'running' ? main.progress : isDone(main) ? 100 : null };
    const done = chunkJobs.filter(isDone).length;
    const running = chunkJobs.filter((j) => j.state === 'running');
    const failed = chunkJobs.filter((j) => j.state === 'failed').length;
    const reported = running.reduce((sum, j) => sum + (j.progress ?? 0), 0);
    return {
      task,
      state: main.state,
      chunks: { done, total: chunkJobs.length, running: running.length, failed },
      progress: Math.floor((done * 100 + reported) / chunkJobs.length),
    };
  });
}

/** A group of a run's jobs in one state and stage, as both stores read it from their index. */
export interface StageCountRow {
  state: JobState;
  stage: string;
  /** jobs that are not chunks */
  own: number;
  chunks: number;
  /** the lowest job id: stages come in the run's order */
  first: number;
}

/** `Store.stageCounts` from the grouped rows and the progress the running ones reported (summed per stage and chunk-ness). */
export function stageCountsFrom(rows: readonly StageCountRow[], reported: readonly { stage: string; chunk: boolean; progress: number }[]): StageCount[] {
  const progress = new Map(reported.map((r) => [`${r.chunk ? 1 : 0} ${r.stage}`, r.progress]));
  const firstOf = new Map<string, number>();
  for (const r of rows) firstOf.set(r.stage, Math.min(firstOf.get(r.stage) ?? Infinity, r.first));
  const out: StageCount[] = [];
  for (const r of [...rows].sort((a, b) => firstOf.get(a.stage)! - firstOf.get(b.stage)! || a.first - b.first))
    for (const chunk of [false, true]) {
      const jobs = chunk ? r.chunks : r.own;
      if (jobs) out.push({ stage: r.stage, chunk, state: r.state, jobs, progress: r.state === 'running' ? (progress.get(`${chunk ? 1 : 0} ${r.stage}`) ?? 0) : 0 });
    }
  return out;
}

/** Which state a stage of many jobs shows: the most telling one any of them is in. */
const STAGE_STATE_ORDER: readonly JobState[] = ['running', 'retrying', 'failed', 'queued', 'pending', 'cancelled', 'succeeded', 'skipped'];
const DONE_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'skipped']);

/**
 * Progress per stage from `Store.stageCounts`: the status of a run too big to
 * list. A stage that is one task reads as `taskProgress` would show it; a
 * stage of several foreach copies also gets `copies`.
 */
export function stageProgress(rows: readonly StageCount[]): TaskProgress[] {
  const byStage = new Map<string, StageCount[]>();
  for (const r of rows) {
    const list = byStage.get(r.stage);
    if (list) list.push(r);
    else byStage.set(r.stage, [r]);
  }
  const tally = (list: StageCount[]) => {
    let done = 0, total = 0, running = 0, failed = 0, reported = 0;
    for (const r of list) {
      total += r.jobs;
      if (DONE_STATES.has(r.state)) done += r.jobs;
      if (r.state === 'running') (running += r.jobs), (reported += r.progress);
      if (r.state === 'failed') failed += r.jobs;
    }
    return { done, total, running, failed, reported };
  };
  return [...byStage].map(([stage, list]) => {
    const own = list.filter((r) => !r.chunk);
    const chunkRows = list.filter((r) => r.chunk);
    const main = tally(own.length ? own : chunkRows);
    const state =
      main.done === main.total ? (own.some((r) => r.state === 'succeeded') || !own.length ? 'succeeded' : 'skipped') : STAGE_STATE_ORDER.find((s) => (own.length ? own : chunkRows).some((r) => r.state === s && r.jobs > 0))!;
    const c = chunkRows.length ? tally(chunkRows) : null;
    const progress = c
      ? Math.floor((c.done * 100 + c.reported) / c.total)
      : main.total > 1 || main.done || main.running
        ? Math.floor((main.done * 100 + main.reported) / main.total)
        : null;
    const entry: TaskProgress = {
      task: stage,
      state,
      chunks: c && { done: c.done, total: c.total, running: c.running, failed: c.failed },
      progress,
    };
    if (main.total > 1) entry.copies = { done: main.done, total: main.total, running: main.running, failed: main.failed };
    return entry;
  });
}
