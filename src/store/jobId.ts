// The public id of a job: `RUN:TASK`, and `RUN:TASK#CHUNK` for one chunk of a split task.

export function formatJobId(runId: number, task: string, chunk: number | null): string {
  return chunk === null ? `${runId}:${task}` : `${runId}:${task}#${chunk}`;
}

export function parseJobId(id: string): { runId: number; task: string; chunk: number | null } | null {
  const m = /^(\d+):(.+?)(?:#(\d+))?$/.exec(id);
  if (!m) return null;
  return { runId: Number(m[1]), task: m[2]!, chunk: m[3] === undefined ? null : Number(m[3]) };
}

/** `17` → a run, `17:stubs` → a job: what `gantry cancel RUN|JOB` accepts. */
export function parseTarget(s: string): { kind: 'run'; runId: number } | { kind: 'job'; jobId: string } | null {
  if (/^\d+$/.test(s)) return { kind: 'run', runId: Number(s) };
  return parseJobId(s) ? { kind: 'job', jobId: s } : null;
}

/** A split task's split step is the job `TASK.split`; the task's own id is its combine (or the join of its chunks). */
export const SPLIT_SUFFIX = '.split';
export function splitJobId(taskId: string): string {
  return `${taskId}${SPLIT_SUFFIX}`;
}

/**
 * A task id with every foreach item replaced by `[*]`: `dumps[enwiki].stubs` →
 * `dumps[*].stubs`, the stage the copies share (PostgreSQL: the same rule as
 * a generated column, see its migrations).
 */
const STAGE_RE = /\[[^\]]*\]/g;
export function stageOf(task: string): string {
  return task.includes('[') ? task.replace(STAGE_RE, '[*]') : task;
}
