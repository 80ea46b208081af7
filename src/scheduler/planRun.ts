// Turns a validated workflow plus concrete parameters into the jobs of a run.
// Pure: no I/O. Output paths are rendered here (they may use params, run.id and
// run.date) and made absolute against the workflow file's folder.
import path from 'node:path';
import type { Command, TaskSpec, TemplateContext, WorkflowSpec } from '../spec/model.js';
import { renderLiteral, templateRefs } from '../spec/template.js';
import type { JobPlan } from '../store/types.js';

export function logicalDateOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

export function planRun(
  spec: WorkflowSpec,
  params: Record<string, unknown>,
  run: { id: number; date: string; priority: number; extraLabels: Record<string, string> },
): { jobs: JobPlan[]; labels: Record<string, string> } {
  const base: TemplateContext = { params, run: { id: String(run.id), date: run.date }, outputs: {}, tasks: {} };
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.labels)) labels[k] = renderLiteral(v, base);
  Object.assign(labels, run.extraLabels);
  const jobs = spec.tasks.map((t): JobPlan => {
    const outputs: Record<string, string> = {};
    for (const [name, tpl] of Object.entries(t.outputs)) outputs[name] = path.resolve(spec.baseDir, renderLiteral(tpl, base));
    return {
      task: t.id,
      needs: t.needs,
      trigger: t.trigger,
      priority: t.priority + run.priority,
      queues: t.queue.length ? t.queue : ['default'],
      resources: { cpu: t.resources.cpu, memoryBytes: t.resources.memoryBytes, custom: t.resources.custom },
      pool: t.pool,
      outputs,
      refs: [...new Set([...t.needs, ...referencedTasks(t)])],
      maxRetries: t.retries.max,
      retryDelayMs: t.retries.delayMs,
      retryBackoff: t.retries.backoff,
      retryMaxDelayMs: t.retries.maxDelayMs,
    };
  });
  return { jobs, labels };
}

/** Task ids a task's command and env templates read through `tasks.<id>…`. */
export function referencedTasks(t: TaskSpec): string[] {
  const found = new Set<string>();
  for (const tpl of [...commandTemplates(t.command), ...Object.values(t.env)])
    for (const ref of templateRefs(tpl)) if (ref.path[0] === 'tasks' && ref.path[1]) found.add(ref.path[1]);
  return [...found];
}

function commandTemplates(c: Command | null): string[] {
  if (!c) return [];
  if (c.kind === 'shell') return [c.script];
  if (c.kind === 'argv') return c.argv;
  return [];
}
