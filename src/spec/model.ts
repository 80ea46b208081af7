// The typed model of workflow and service files (SPEC §2). The parser turns YAML
// into these; the store snapshots them into runs; the worker renders their
// templates. Durations are milliseconds, memory is bytes, paths are absolute.

export type TriggerRule = 'all_success' | 'all_done' | 'any_failed';
export const TRIGGER_RULES: readonly TriggerRule[] = ['all_success', 'all_done', 'any_failed'];

export type Overlap = 'skip' | 'queue' | 'cancel_running';

/** What a job runs. Templates inside are rendered by the worker at claim time. */
export type Command =
  /** `run: "..."` — run by /bin/sh -c; template values are shell-quoted. */
  | { kind: 'shell'; script: string }
  /** `run: [a, b]` — exec'd without a shell; each element rendered literally. */
  | { kind: 'argv'; argv: string[] }
  /** `handler: path#export` — `module` is absolute (resolved against the file's folder). */
  | { kind: 'handler'; module: string; exportName: string };

export interface RetryPolicy {
  /** retries after the first attempt; 0 = no retry */
  max: number;
  delayMs: number;
  backoff: number;
  maxDelayMs: number;
}

export interface Resources {
  cpu: number;
  memoryBytes: number | null;
  /** any other resource name, matched against what workers offer */
  custom: Record<string, number>;
}

/** rlimits of a command (`limits:`); with resources.memory, its address-space limit. null: none. */
export interface JobLimits {
  cpuTimeMs: number | null;
  openFiles: number | null;
  processes: number | null;
}

/** A `split` or `combine` step: a command plus its own outputs. */
export interface StepSpec {
  command: Command;
  outputs: Record<string, string>;
}

export interface SubWorkflowRef {
  name: string;
  with: Record<string, unknown>;
  /** a literal list, or a template naming a list parameter (`{{ params.wikis }}`) */
  foreach: unknown[] | string | null;
  /** 1-based line of the `workflow:` key, for messages about the reference */
  line?: number;
}

export interface TaskSpec {
  id: string;
  /** 1-based line of the task's key in its file, for messages */
  line: number;
  needs: string[];
  trigger: TriggerRule;
  /** absent only for sub-workflow tasks */
  command: Command | null;
  /** output name → path template */
  outputs: Record<string, string>;
  /** queues in order of preference; at least one */
  queue: string[];
  priority: number;
  retries: RetryPolicy;
  timeoutMs: number | null;
  stallTimeoutMs: number | null;
  resources: Resources;
  /** absent in runs created before limits existed */
  limits?: JobLimits;
  pool: string | null;
  env: Record<string, string>;
  workflow: SubWorkflowRef | null;
  split: StepSpec | null;
  combine: StepSpec | null;
  /** max chunks of this task running at once */
  concurrency: number | null;
}

export interface ParamSpec {
  required: boolean;
  default?: unknown;
  enum?: unknown[];
  description?: string;
}

export interface ScheduleSpec {
  cron: string;
  timezone: string;
  params: Record<string, unknown>;
  overlap: Overlap;
  catchup: boolean;
  line: number;
}

export interface NotifySpec {
  on: string[];
  to: string[];
}

export interface WorkflowSpec {
  kind: 'workflow';
  name: string;
  namespace: string;
  description: string;
  params: Record<string, ParamSpec>;
  /** label → template (rendered with params/run when a run is created) */
  labels: Record<string, string>;
  schedules: ScheduleSpec[];
  maxActiveRuns: number | null;
  notify: NotifySpec | null;
  /** in file order */
  tasks: TaskSpec[];
  /** absolute path of the file it came from ('' for TypeScript-defined workflows) */
  file: string;
  /** absolute folder that relative handler paths were resolved against; NO_FOLDER: none (its jobs run in a scratch folder) */
  baseDir: string;
  /** 1-based line of `name:` in its file, for cross-file messages */
  line?: number;
}

/**
 * What a run stores as its definition: the workflow as it was when the run was
 * created, plus every workflow its sub-workflow tasks use at any depth, as they
 * were then (a snapshot: later edits of a child change only later runs).
 */
export interface RunSnapshot extends WorkflowSpec {
  /** by `namespace/name`; absent when the workflow uses no sub-workflow */
  subworkflows?: Record<string, WorkflowSpec>;
}

export interface ServiceSpec {
  kind: 'service';
  name: string;
  namespace: string;
  command: Command;
  resources: Resources;
  limits?: JobLimits;
  restart: { delayMs: number; maxDelayMs: number };
  notify: NotifySpec | null;
  env: Record<string, string>;
  queue: string[];
  file: string;
  baseDir: string;
  /** 1-based line of `service:` in its file, for cross-file messages */
  line?: number;
}

export type Definition = WorkflowSpec | ServiceSpec;

/** One problem found in a file; every problem of a file is reported together. */
export interface SpecError {
  file: string;
  /** 1-based; 0 when the problem is not tied to a line (e.g. a missing file) */
  line: number;
  column: number;
  /** dotted location inside the document, e.g. `tasks.stubs.needs[0]`; '' for the whole file */
  path: string;
  message: string;
}

export class SpecValidationError extends Error {
  constructor(readonly errors: SpecError[]) {
    super(errors.map(formatSpecError).join('\n'));
    this.name = 'SpecValidationError';
  }
}

/** `file:line:column: path: message` — the one format every surface prints. */
export function formatSpecError(e: SpecError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}:${e.column}` : e.file;
  return e.path ? `${where}: ${e.path}: ${e.message}` : `${where}: ${e.message}`;
}

/** Values a template can see. Missing keys are errors at render time, not empty strings. */
export interface TemplateContext {
  params: Record<string, unknown>;
  run: { id: string; date: string };
  outputs: Record<string, string>;
  tasks: Record<string, { outputs: Record<string, string>; result: unknown }>;
  item?: unknown;
  chunk?: unknown;
  chunks?: { outputs: Record<string, string[]>; results: unknown[] };
  secrets?: Record<string, string>;
}

/** The baseDir of a workflow or service that has no folder (`gantry exec` without --cwd): the worker runs its jobs in a fresh scratch folder. */
export const NO_FOLDER = '';
