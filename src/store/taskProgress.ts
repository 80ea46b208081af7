// How far along each task of a run is, from its jobs: what `gantry status` and
// the API's run status show next to the job list. A split task is many jobs
// (its chunks and its main job) under one task id; its chunks are counted.
import type { Job, JobState } from './types.js';

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
