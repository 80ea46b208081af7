// `defineWorkflow({...})` (SPEC §2): a workflow written in TypeScript, in the
// shape of a YAML workflow file, where a handler may be a function. The types
// check what TypeScript can (task ids in `needs`, parameter names and types
// inside handlers); everything else is checked by the same validator as YAML
// files when the file is validated, applied or loaded by `gantry up`
// (src/spec/typescript.ts turns the result into a document for it).
//
// A function handler runs in a worker: the worker imports the workflow's
// module (which must export the result, as default or by name) and calls the
// function with the context every handler gets.
import { WORKFLOW_BRAND } from '../spec/typescript.js';
import type { HandlerContext } from '../worker/runHandler.js';

type Scalar = string | number | boolean;
type Duration = string | number;
type OneOrMore<T> = T | readonly T[];

export interface ParamDefinition {
  required?: boolean;
  default?: unknown;
  enum?: readonly unknown[];
  description?: string;
}

/** A parameter's type inside handlers: its enum's values, else its default's type, else unknown. */
export type ParamValue<D> = D extends { enum: readonly (infer E)[] }
  ? E
  : D extends { default: infer V }
    ? V extends string ? string : V extends number ? number : V extends boolean ? boolean : V
    : unknown;
type AlwaysSet<D> = D extends { required: true } ? true : D extends { default: unknown } ? true : false;

/** The `params` a handler sees: required parameters and those with a default are always set. */
export type ParamValues<P> = {
  -readonly [K in keyof P as AlwaysSet<P[K]> extends true ? K : never]: ParamValue<P[K]>;
} & {
  -readonly [K in keyof P as AlwaysSet<P[K]> extends true ? never : K]?: ParamValue<P[K]>;
};

/** What a function handler gets: HandlerContext, with its workflow's parameters and task ids. */
export interface WorkflowHandlerContext<P, Id extends string> extends Omit<HandlerContext, 'params' | 'tasks'> {
  params: ParamValues<P>;
  /** upstream tasks by id: their final outputs and result */
  tasks: { [K in Id]?: { outputs: Record<string, string>; result: unknown } };
}

export type WorkflowHandler<P, Id extends string> = (ctx: WorkflowHandlerContext<P, Id>) => unknown;

export interface RetriesDefinition {
  max?: number;
  delay?: Duration;
  backoff?: number;
  max_delay?: Duration;
}

export interface ResourcesDefinition {
  cpu?: number;
  memory?: string | number;
  /** custom resources, matched against what workers offer */
  [name: string]: number | string | undefined;
}

/** What `defaults:` holds, and every task may set for itself. */
export interface TaskDefaults {
  queue?: OneOrMore<string>;
  priority?: number;
  retries?: number | RetriesDefinition;
  timeout?: Duration;
  stall_timeout?: Duration;
  resources?: ResourcesDefinition;
  /** rlimits of the command: CPU time, open files, processes (resources.memory limits its address space) */
  limits?: { cpu_time?: Duration; open_files?: number; processes?: number };
  pool?: string;
  trigger?: 'all_success' | 'all_done' | 'any_failed';
  env?: Record<string, Scalar>;
}

/** A `split` or `combine` step: a command string, or `run` / `handler` with its own outputs. */
export type StepDefinition<P, Id extends string> =
  | string
  | { run?: string | readonly Scalar[]; handler?: string | WorkflowHandler<P, Id>; outputs?: Record<string, string> };

export interface TaskDefinition<P, Id extends string> extends TaskDefaults {
  /** ids of tasks of this workflow */
  needs?: OneOrMore<Id>;
  /** a shell string (`/bin/sh -c`, template values shell-quoted) or an argv list */
  run?: string | readonly Scalar[];
  /** a function, or `path#export` relative to the workflow file */
  handler?: string | WorkflowHandler<P, Id>;
  /** a sub-workflow: its name (or namespace/name) */
  workflow?: string;
  with?: Record<string, unknown>;
  foreach?: readonly unknown[] | string;
  outputs?: Record<string, string>;
  split?: StepDefinition<P, Id>;
  combine?: StepDefinition<P, Id>;
  concurrency?: number;
}

export interface ScheduleDefinition {
  cron: string;
  timezone?: string;
  params?: Record<string, unknown>;
  overlap?: 'skip' | 'queue' | 'cancel_running';
  catchup?: boolean;
}

export interface WorkflowDefinition<P extends Record<string, ParamDefinition>, T> {
  name: string;
  namespace?: string;
  description?: string;
  params?: P;
  labels?: Record<string, Scalar>;
  schedule?: ScheduleDefinition | readonly ScheduleDefinition[];
  max_active_runs?: number;
  notify?: { on: OneOrMore<string>; to: OneOrMore<string> };
  defaults?: TaskDefaults;
  tasks: { [K in keyof T]: TaskDefinition<P, Extract<keyof T, string>> };
}

/** What defineWorkflow returns: the definition as given, marked for the loader. Export it from the module. */
export type Workflow<P extends Record<string, ParamDefinition>, T> = Readonly<WorkflowDefinition<P, T>> & { readonly [WORKFLOW_BRAND]: true };

/** Any defineWorkflow result, whatever its parameters and tasks (e.g. for a list of them). */
export interface AnyWorkflow {
  readonly name: string;
  readonly namespace?: string;
  readonly description?: string;
  readonly [WORKFLOW_BRAND]: true;
}

/**
 * A workflow in TypeScript, same model as a YAML file (same field names).
 * Export the result from a `*.workflow.ts` file; `gantry validate`, `gantry apply`
 * and `gantry up DIR` load it and check it like YAML.
 */
export function defineWorkflow<const P extends Record<string, ParamDefinition> = Record<never, ParamDefinition>, const T = Record<string, unknown>>(
  definition: WorkflowDefinition<P, T>,
): Workflow<P, T> {
  const workflow = { ...definition };
  Object.defineProperty(workflow, WORKFLOW_BRAND, { value: true, enumerable: false });
  return workflow as Workflow<P, T>;
}
