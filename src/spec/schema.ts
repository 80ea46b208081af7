// Zod schemas for the file format of SPEC §2: the shape of workflow and
// service files, field by field. Unknown fields are errors. Cross-field and
// cross-task rules live in validate.ts, which runs even when this fails.

import { z } from 'zod';
import { parseDuration, parseMemory } from './duration.js';
import { TRIGGER_RULES } from './model.js';
import { unknownFieldMessage } from './suggest.js';

/** Task ids; dots and brackets are reserved for sub-workflow prefixes (`a.b`, `a[x].b`). */
export const TASK_ID = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;
/** Workflow, service and namespace names; `/` separates a namespace in references. */
export const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export const WORKFLOW_EVENTS = ['started', 'succeeded', 'failed', 'cancelled', 'retries_exhausted'] as const;
export const SERVICE_EVENTS = ['started', 'stopped', 'failed', 'restarted', 'flapping'] as const;
export const OVERLAPS = ['skip', 'queue', 'cancel_running'] as const;

/** Separates per-key messages of one unrecognized_keys issue (see parse.ts). */
export const KEY_MESSAGE_SEPARATOR = '\u0000';

/** A strict object whose unknown-key message names each key, with a suggestion. */
function strict<T extends z.ZodRawShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? iss.keys.map((k) => unknownFieldMessage(k, known)).join(KEY_MESSAGE_SEPARATOR)
        : undefined,
  });
}

type Shapes = Partial<Record<'string' | 'number' | 'boolean' | 'array' | 'object', z.ZodType>>;

/**
 * A field that may take several shapes (`queue: a` or `queue: [a, b]`). Unlike
 * z.union, the branch is picked by the value's type, so the errors reported are
 * those of the shape the author evidently meant.
 */
function byType<T>(shapes: Shapes, expected: string): z.ZodType<T> {
  return z.unknown().superRefine((v, ctx) => {
    const kind = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
    const schema = shapes[kind as keyof Shapes];
    if (!schema) {
      ctx.addIssue({ code: 'custom', message: `must be ${expected}` });
      return;
    }
    const r = schema.safeParse(v);
    if (!r.success) for (const issue of r.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
  }).transform((v) => v as T);
}

function parsedBy(parse: (s: string | number) => number, expected: string) {
  return byType<string | number>({ string: z.string(), number: z.number() }, expected).superRefine((v, ctx) => {
    try {
      parse(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });
}

const duration = parsedBy(parseDuration, 'a duration such as 30s, 10m, 6h, 2d');
const memory = parsedBy(parseMemory, 'a memory size such as 512M or 2G');
const scalar = z.union([z.string(), z.number(), z.boolean()], { error: 'must be a string, number or boolean' });
const name = z.string().regex(NAME, 'must be letters, digits, _, - or . (and not start with - or .)');
const nonEmpty = z.string().min(1, 'must not be empty');
const stringOrList = (what: string, min = 1) =>
  byType<string | string[]>(
    { string: nonEmpty, array: z.array(nonEmpty).min(min, `must list at least one ${what}`) },
    `a ${what} or a list of them`,
  );

const runSchema = byType<string | Array<string | number | boolean>>(
  { string: nonEmpty, array: z.array(scalar).min(1, 'must not be an empty list') },
  'a shell command string or a list of arguments',
);
// `#export` or a property path inside an export (`#handlers.sync`; TypeScript workflows' function handlers are `#default.tasks.id.handler`)
const handlerSchema = z.string().regex(/^[^#]+#[A-Za-z_$][\w$]*(\.[\w$-]+)*$/, 'must be path#export, e.g. ./handlers/sync.ts#syncToMirror');
const outputsSchema = z.record(z.string(), z.string({ error: 'must be a path (string)' }));

const stepObject = strict({ run: runSchema.optional(), handler: handlerSchema.optional(), outputs: outputsSchema.optional() });
const stepSchema = byType<string | z.infer<typeof stepObject>>(
  { string: nonEmpty, object: stepObject },
  'a command string or an object with run or handler and outputs',
);

const retriesObject = strict({
  max: z.int().min(0).optional(),
  delay: duration.optional(),
  backoff: z.number().min(1, 'must be at least 1').optional(),
  max_delay: duration.optional(),
});
const retriesSchema = byType<number | z.infer<typeof retriesObject>>(
  { number: z.int().min(0, 'must be 0 or more'), object: retriesObject },
  'a number of retries or an object {max, delay, backoff, max_delay}',
);

const resourcesSchema = z
  .object({ cpu: z.number().min(0).optional(), memory: memory.optional() })
  .catchall(z.number({ error: 'a custom resource must be a number' }).min(0));

const envSchema = z.record(z.string(), scalar);
// rlimits of a command beyond resources.memory (its address-space limit)
const limitsSchema = strict({
  cpu_time: duration.optional(),
  open_files: z.int({ error: 'must be a whole number' }).min(1, 'must be at least 1').optional(),
  processes: z.int({ error: 'must be a whole number' }).min(1, 'must be at least 1').optional(),
});
const triggerSchema = z.enum(TRIGGER_RULES as [string, ...string[]], { error: `must be one of ${TRIGGER_RULES.join(', ')}` });

const notifySchema = (events: readonly string[]) =>
  strict({
    on: byType<string | string[]>(
      {
        string: z.enum(events as [string, ...string[]], { error: `must be one of ${events.join(', ')}` }),
        array: z.array(z.enum(events as [string, ...string[]], { error: `must be one of ${events.join(', ')}` })).min(1),
      },
      `an event or a list of events (${events.join(', ')})`,
    ),
    to: byType<string | string[]>(
      {
        string: z.string().regex(/^(mailto:|https?:\/\/)/, 'must be a mailto: or http(s):// address'),
        array: z.array(z.string().regex(/^(mailto:|https?:\/\/)/, 'must be a mailto: or http(s):// address')).min(1),
      },
      'a target or a list of targets',
    ),
  });

const scheduleObject = strict({
  cron: z.string({ error: 'a schedule needs a cron expression' }),
  timezone: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  overlap: z.enum(OVERLAPS, { error: `must be one of ${OVERLAPS.join(', ')}` }).optional(),
  catchup: z.boolean().optional(),
});

const paramSchema = strict({
  required: z.boolean().optional(),
  default: z.unknown().optional(),
  enum: z.array(z.unknown()).min(1, 'must list at least one value').optional(),
  description: z.string().optional(),
});

const common = {
  queue: stringOrList('queue name').optional(),
  priority: z.int({ error: 'must be a whole number' }).optional(),
  retries: retriesSchema.optional(),
  timeout: duration.optional(),
  stall_timeout: duration.optional(),
  resources: resourcesSchema.optional(),
  limits: limitsSchema.optional(),
  pool: nonEmpty.optional(),
  trigger: triggerSchema.optional(),
  env: envSchema.optional(),
};

export const taskSchema = strict({
  ...common,
  needs: stringOrList('task id', 0).optional(),
  run: runSchema.optional(),
  handler: handlerSchema.optional(),
  workflow: z.string().regex(/^([A-Za-z0-9_][A-Za-z0-9_.-]*\/)?[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'must be a workflow name (or namespace/name)').optional(),
  with: z.record(z.string(), z.unknown()).optional(),
  foreach: byType<unknown[] | string>({ array: z.array(z.unknown()), string: nonEmpty }, 'a list or a template naming a list parameter').optional(),
  outputs: outputsSchema.optional(),
  split: stepSchema.optional(),
  combine: stepSchema.optional(),
  concurrency: z.int().min(1, 'must be at least 1').optional(),
});

export const defaultsSchema = strict(common);

export const workflowSchema = strict({
  name,
  namespace: name.optional(),
  description: z.string().optional(),
  params: z.record(z.string(), paramSchema).optional(),
  labels: z.record(z.string(), scalar).optional(),
  schedule: byType<z.infer<typeof scheduleObject> | Array<z.infer<typeof scheduleObject>>>(
    { object: scheduleObject, array: z.array(scheduleObject) },
    'a schedule {cron, ...} or a list of them',
  ).optional(),
  max_active_runs: z.int().min(1, 'must be at least 1').optional(),
  notify: notifySchema(WORKFLOW_EVENTS).optional(),
  defaults: defaultsSchema.optional(),
  // undefined falls through to zod's message, which parse.ts turns into "missing required field"
  tasks: z.record(z.string(), taskSchema, { error: (iss) => (iss.input === undefined ? undefined : 'must be a map of task id → task') }),
});

export const serviceSchema = strict({
  service: name,
  namespace: name.optional(),
  description: z.string().optional(),
  run: runSchema.optional(),
  handler: handlerSchema.optional(),
  resources: resourcesSchema.optional(),
  limits: limitsSchema.optional(),
  restart: strict({ delay: duration.optional(), max_delay: duration.optional() }).optional(),
  notify: notifySchema(SERVICE_EVENTS).optional(),
  env: envSchema.optional(),
  queue: stringOrList('queue name').optional(),
});

export type WorkflowFile = z.infer<typeof workflowSchema>;
export type ServiceFile = z.infer<typeof serviceSchema>;
export type TaskFile = z.infer<typeof taskSchema>;
export type DefaultsFile = z.infer<typeof defaultsSchema>;
export type RetriesFile = z.infer<typeof retriesSchema>;
export type ResourcesFile = z.infer<typeof resourcesSchema>;
export type LimitsFile = z.infer<typeof limitsSchema>;
export type StepFile = z.infer<typeof stepSchema>;
