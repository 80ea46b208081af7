// Schema-checked file contents → the typed model: built-in defaults, the
// file's `defaults:` merged into each task, durations in ms, memory in bytes.

import { parseDuration, parseMemory } from './duration.js';
import { toCommand } from './command.js';
import type {
  JobLimits,
  Command, NotifySpec, ParamSpec, Resources, RetryPolicy, ScheduleSpec, ServiceSpec, StepSpec, TaskSpec,
  TriggerRule, WorkflowSpec,
} from './model.js';
import type { LimitsFile, ResourcesFile, RetriesFile, ServiceFile, StepFile, WorkflowFile } from './schema.js';

export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_QUEUE = 'default';
export const DEFAULT_RETRIES: RetryPolicy = { max: 0, delayMs: 10_000, backoff: 2, maxDelayMs: 600_000 };
export const DEFAULT_RESTART = { delayMs: 5_000, maxDelayMs: 300_000 };
export const DEFAULT_TIMEZONE = 'UTC';

/** Where each part of the model came from in its file (1-based lines). */
export interface Lines {
  /** line of a task's key */
  task(id: string): number;
  /** line of `tasks.<id>.workflow` */
  workflowRef(id: string): number;
  schedule(index: number): number;
  /** line of `name:` / `service:` */
  name(): number;
}

const list = (v: string | string[] | undefined): string[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v : [v];

const env = (e: Record<string, string | number | boolean> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(e ?? {}).map(([k, v]) => [k, String(v)]));

/** Integer shorthand means `max`; objects merge field-wise over the layers before. */
function retries(...layers: Array<RetriesFile | undefined>): RetryPolicy {
  const r = { ...DEFAULT_RETRIES };
  for (const layer of layers) {
    if (layer === undefined) continue;
    if (typeof layer === 'number') {
      r.max = layer;
      continue;
    }
    if (layer.max !== undefined) r.max = layer.max;
    if (layer.delay !== undefined) r.delayMs = parseDuration(layer.delay);
    if (layer.backoff !== undefined) r.backoff = layer.backoff;
    if (layer.max_delay !== undefined) r.maxDelayMs = parseDuration(layer.max_delay);
  }
  return r;
}

function resources(...layers: Array<ResourcesFile | undefined>): Resources {
  const r: Resources = { cpu: 1, memoryBytes: null, custom: {} };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer ?? {})) {
      if (value === undefined) continue;
      if (key === 'cpu') r.cpu = value as number;
      else if (key === 'memory') r.memoryBytes = parseMemory(value as string | number);
      else r.custom[key] = value as number;
    }
  }
  return r;
}

function limits(...layers: Array<LimitsFile | undefined>): JobLimits {
  const l: JobLimits = { cpuTimeMs: null, openFiles: null, processes: null };
  for (const layer of layers) {
    if (layer?.cpu_time !== undefined) l.cpuTimeMs = parseDuration(layer.cpu_time);
    if (layer?.open_files !== undefined) l.openFiles = layer.open_files;
    if (layer?.processes !== undefined) l.processes = layer.processes;
  }
  return l;
}

function step(s: StepFile | undefined, baseDir: string): StepSpec | null {
  if (s === undefined) return null;
  if (typeof s === 'string') return { command: { kind: 'shell', script: s }, outputs: {} };
  return { command: toCommand(s, baseDir) as Command, outputs: s.outputs ?? {} };
}

function notify(n: { on: string | string[]; to: string | string[] } | undefined): NotifySpec | null {
  return n ? { on: list(n.on)!, to: list(n.to)! } : null;
}

const optDuration = (v: string | number | undefined): number | null => (v === undefined ? null : parseDuration(v));

export function buildWorkflow(f: WorkflowFile, file: string, baseDir: string, lines: Lines): WorkflowSpec {
  const d = f.defaults ?? {};
  const tasks: TaskSpec[] = Object.entries(f.tasks).map(([id, t]) => ({
    id,
    line: lines.task(id),
    needs: [...new Set(list(t.needs) ?? [])],
    trigger: (t.trigger ?? d.trigger ?? 'all_success') as TriggerRule,
    command: toCommand(t, baseDir),
    outputs: t.outputs ?? {},
    queue: list(t.queue) ?? list(d.queue) ?? [DEFAULT_QUEUE],
    priority: t.priority ?? d.priority ?? 0,
    retries: retries(d.retries, t.retries),
    timeoutMs: optDuration(t.timeout ?? d.timeout),
    stallTimeoutMs: optDuration(t.stall_timeout ?? d.stall_timeout),
    resources: resources(d.resources, t.resources),
    limits: limits(d.limits, t.limits),
    pool: t.pool ?? d.pool ?? null,
    env: { ...env(d.env), ...env(t.env) },
    workflow: t.workflow === undefined ? null : {
      name: t.workflow,
      with: t.with ?? {},
      foreach: t.foreach ?? null,
      line: lines.workflowRef(id),
    },
    split: step(t.split, baseDir),
    combine: step(t.combine, baseDir),
    concurrency: t.concurrency ?? null,
  }));
  const schedules = f.schedule === undefined ? [] : Array.isArray(f.schedule) ? f.schedule : [f.schedule];
  return {
    kind: 'workflow',
    name: f.name,
    namespace: f.namespace ?? DEFAULT_NAMESPACE,
    description: f.description ?? '',
    params: Object.fromEntries(Object.entries(f.params ?? {}).map(([k, p]): [string, ParamSpec] => {
      const spec: ParamSpec = { required: p.required ?? false };
      if (p.default !== undefined) spec.default = p.default;
      if (p.enum !== undefined) spec.enum = p.enum;
      if (p.description !== undefined) spec.description = p.description;
      return [k, spec];
    })),
    labels: Object.fromEntries(Object.entries(f.labels ?? {}).map(([k, v]) => [k, String(v)])),
    schedules: schedules.map((s, i): ScheduleSpec => ({
      cron: s.cron,
      timezone: s.timezone ?? DEFAULT_TIMEZONE,
      params: s.params ?? {},
      overlap: s.overlap ?? 'skip',
      catchup: s.catchup ?? false,
      line: lines.schedule(i),
    })),
    maxActiveRuns: f.max_active_runs ?? null,
    notify: notify(f.notify),
    tasks,
    file,
    baseDir,
    line: lines.name(),
  };
}

export function buildService(f: ServiceFile, file: string, baseDir: string, lines: Lines): ServiceSpec {
  return {
    kind: 'service',
    name: f.service,
    namespace: f.namespace ?? DEFAULT_NAMESPACE,
    command: toCommand(f, baseDir) as Command,
    resources: resources(f.resources),
    limits: limits(f.limits),
    restart: {
      delayMs: f.restart?.delay !== undefined ? parseDuration(f.restart.delay) : DEFAULT_RESTART.delayMs,
      maxDelayMs: f.restart?.max_delay !== undefined ? parseDuration(f.restart.max_delay) : DEFAULT_RESTART.maxDelayMs,
    },
    notify: notify(f.notify),
    env: env(f.env),
    queue: list(f.queue) ?? [DEFAULT_QUEUE],
    file,
    baseDir,
    line: lines.name(),
  };
}
