// Which step of its task a claimed job is, and what that step runs. A plain
// task is one job. A split task is a split step (`TASK.split`, prints or
// returns a JSON array), one job per element (`TASK#i`, the task's `run`), and
// the task's main job `TASK` (its `combine`, or a join that just succeeds).
import path from 'node:path';
import type { Command, TemplateContext } from '../spec/model.js';
import type { ExpandedTask } from '../spec/expand.js';
import { renderLiteral } from '../spec/template.js';
import { SPLIT_SUFFIX } from '../store/jobId.js';
import type { ChunkPlan, Job } from '../store/types.js';

export type StepKind = 'task' | 'split' | 'chunk' | 'combine';

export interface JobStep {
  kind: StepKind;
  /** the task as expanded for the run, its command replaced by the step's (null: a join, nothing to run) */
  expanded: ExpandedTask;
  command: Command | null;
}

export function jobStep(plan: Map<string, ExpandedTask>, job: Pick<Job, 'task' | 'chunk' | 'chunked'>): JobStep | undefined {
  const own = plan.get(job.task);
  if (own) {
    const split = own.task.split;
    if (!split) return { kind: 'task', expanded: own, command: own.task.command };
    if (job.chunk !== null) return { kind: 'chunk', expanded: own, command: own.task.command };
    return { kind: 'combine', expanded: own, command: own.task.combine?.command ?? null };
  }
  if (job.task.endsWith(SPLIT_SUFFIX)) {
    const base = plan.get(job.task.slice(0, -SPLIT_SUFFIX.length));
    if (base?.task.split) return { kind: 'split', expanded: base, command: base.task.split.command };
  }
  return undefined;
}

/**
 * What `{{ chunk.* }}` sees: the element's fields (an object) or the element
 * as `chunk.value`, with `chunk.index` (0-based) either way.
 */
export function chunkContext(index: number, value: unknown): Record<string, unknown> {
  const fields = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
  return { ...fields, index };
}

/** A split step's array, from what it returned or wrote to $GANTRY_RESULT, else from its stdout. */
export function splitArray(result: unknown, stdout: string): unknown[] | { error: string } {
  let value = result;
  if (value === undefined) {
    const text = stdout.trim();
    if (text === '') return { error: 'split printed nothing: it must print (or write to $GANTRY_RESULT, or return) a JSON array' };
    try {
      value = JSON.parse(text) as unknown;
    } catch {
      return { error: `split output is not JSON: ${text.slice(0, 120)}${text.length > 120 ? '…' : ''}` };
    }
  }
  if (!Array.isArray(value)) return { error: `split must yield a JSON array, got ${value === null ? 'null' : typeof value}` };
  return value;
}

/** Each element's job: its element and its outputs, rendered for its chunk and made absolute against the task's folder. */
export function planChunks(expanded: ExpandedTask, base: TemplateContext, values: unknown[]): ChunkPlan[] {
  const templates = Object.entries(expanded.task.outputs);
  const seen = new Map<string, number>();
  return values.map((value, index) => {
    const ctx: TemplateContext = { ...base, outputs: {}, chunk: chunkContext(index, value) };
    const outputs: Record<string, string> = {};
    for (const [name, tpl] of templates) {
      const p = path.resolve(expanded.scope.baseDir, renderLiteral(tpl, ctx));
      // two chunks writing one file would overwrite each other's work
      const other = seen.get(p);
      if (other !== undefined) throw new Error(`chunks ${other} and ${index} would both write ${p}: put {{ chunk.index }} (or a chunk field) in outputs.${name}`);
      seen.set(p, index);
      outputs[name] = p;
    }
    return { value, outputs };
  });
}
