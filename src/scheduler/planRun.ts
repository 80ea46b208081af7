// Turns a run's snapshot plus concrete parameters into the jobs of a run.
// Pure: no I/O. Sub-workflows are inlined here (spec/expand.ts); output paths
// are rendered (they may use the copy's params, item, run.id and run.date) and
// made absolute against the folder of the file the task is written in.
import path from 'node:path';
import type { RunSnapshot, TemplateContext } from '../spec/model.js';
import { expandWorkflow, referencedTasks, type ExpandedTask, type TaskScope } from '../spec/expand.js';
import { snapshotLookup } from '../spec/snapshot.js';
import { renderLiteral, TemplateError } from '../spec/template.js';
import type { JobPlan } from '../store/types.js';
import { splitJobId } from '../store/jobId.js';

export function logicalDateOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

export function planRun(
  spec: RunSnapshot,
  params: Record<string, unknown>,
  run: { id: number; date: string; priority: number; extraLabels: Record<string, string> },
): { jobs: JobPlan[]; labels: Record<string, string>; expanded: ExpandedTask[] } {
  const runCtx = { id: String(run.id), date: run.date };
  const base: TemplateContext = { params, run: runCtx, outputs: {}, tasks: {} };
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.labels)) labels[k] = renderLiteral(v, base);
  Object.assign(labels, run.extraLabels);
  const contexts = new Map<TaskScope, TemplateContext>();
  const expanded = expandWorkflow(spec, snapshotLookup(spec), params, runCtx);
  const jobs = expanded.flatMap((e): JobPlan[] => {
    let ctx = contexts.get(e.scope);
    if (!ctx) contexts.set(e.scope, (ctx = scopeContext(e.scope, runCtx)));
    return e.task.split ? planSplitTask(e, ctx, run.priority) : [planJob(e, ctx, run.priority)];
  });
  return { jobs, labels, expanded };
}

/** What templates of a task in `scope` see before it runs (no outputs or upstream yet). */
export function scopeContext(scope: TaskScope, run: { id: string; date: string }): TemplateContext {
  const ctx: TemplateContext = { params: scope.params, run, outputs: {}, tasks: {} };
  if (scope.item) ctx.item = scope.item.value;
  return ctx;
}

/**
 * A split task is two jobs when the run is created: its split step, then its
 * main job (the combine, or a join when there is none), which downstream tasks
 * wait for. The chunks come between them, created when the split succeeds.
 */
function planSplitTask(e: ExpandedTask, ctx: TemplateContext, runPriority: number): JobPlan[] {
  const t = e.task;
  const split = planJob({ ...e, id: splitJobId(e.id), task: { ...t, command: t.split!.command, outputs: t.split!.outputs } }, ctx, runPriority);
  // Chunks copy the main job's refs: they include what the task's `run` reads, and the task's own
  // needs (a chunk or combine handler reads its upstream from ctx.tasks, with no template to say so).
  const main = planJob(
    { ...e, needs: [split.task], trigger: 'all_success', task: { ...t, command: t.combine?.command ?? null, outputs: t.combine?.outputs ?? {} } },
    ctx,
    runPriority,
  );
  main.refs = [...new Set([...main.refs, ...e.needs, ...referencedTasks(t).flatMap((local) => e.scope.taskIds[local] ?? [])])];
  main.chunked = true;
  main.chunkLimit = t.concurrency;
  return [split, main];
}

function planJob(e: ExpandedTask, ctx: TemplateContext, runPriority: number): JobPlan {
  const t = e.task;
  const outputs: Record<string, string> = {};
  for (const [name, tpl] of Object.entries(t.outputs)) {
    try {
      outputs[name] = path.resolve(e.scope.baseDir, renderLiteral(tpl, ctx));
    } catch (err) {
      // name the task: in a run of inlined sub-workflows the local id alone is ambiguous
      if (err instanceof TemplateError && e.scope.prefix) throw new TemplateError(`task '${e.id}': outputs.${name}: ${err.message}`);
      throw err;
    }
  }
  const refs = referencedTasks(t).flatMap((local) => e.scope.taskIds[local] ?? []);
  return {
    task: e.id,
    needs: e.needs,
    trigger: e.trigger,
    priority: t.priority + runPriority,
    queues: t.queue.length ? t.queue : ['default'],
    resources: { cpu: t.resources.cpu, memoryBytes: t.resources.memoryBytes, custom: t.resources.custom },
    pool: t.pool,
    outputs,
    refs: [...new Set([...e.needs, ...refs])],
    maxRetries: t.retries.max,
    retryDelayMs: t.retries.delayMs,
    retryBackoff: t.retries.backoff,
    retryMaxDelayMs: t.retries.maxDelayMs,
  };
}
