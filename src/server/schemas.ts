// The API's request and response schemas, defined once with zod: the routes
// (app.ts) parse requests with them, and the OpenAPI document (openapi.ts) is
// generated from them. Response schemas mirror the store's types; the
// compile-time checks at the end fail the build when the two drift apart.
import { z } from 'zod';
import type { Attempt, AttemptError, DeferredRun, FinishedPerMinute, Job, PoolRow, Run, ServiceLogLine, StoreEvent, StoredLogLine, WorkerRow } from '../store/types.js';
import { SERVICE_LOG_INSTANCES } from '../store/serviceRows.js';
import type { GraphEdge, GraphNode } from './runGraph.js';
import type { ApiToken, SecretInfo } from '../store/types.js';
import { EVENT_KINDS, ROLES, type EventKind } from '../store/types.js';
import { parseMemory } from '../spec/duration.js';
import { SECRET_NAME } from '../secrets/names.js';
import type { RunEta } from './eta.js';
import type { BrokenReport } from './broken.js';
import type { TaskProgress } from '../store/taskProgress.js';
import type { SpecError } from '../spec/model.js';
import type { ScheduleSummary } from './schedules.js';

export const JOB_STATES = ['pending', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled', 'skipped'] as const;
export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const DEFERRED_STATES = ['waiting', 'started', 'failed', 'cancelled'] as const;

/** Largest request body in general, and for POST /api/v1/definitions (workflow files can be big). */
export const BODY_LIMIT = 1024 * 1024;
export const DEFINITIONS_BODY_LIMIT = 10 * 1024 * 1024;

// ---------------------------------------------------------------- parameters

export const intParam = z.coerce.number().int().nonnegative();
const boolParam = z
  .enum(['true', 'false', '1', '0', ''])
  .meta({ description: 'true, 1 or empty (the bare flag) for yes; false or 0 for no' })
  .transform((v) => v === 'true' || v === '1' || v === '');

const RELATIVE = /^-?(\d+(?:\.\d+)?)(s|m|h|d)$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$/i;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A point in time for a list filter: epoch milliseconds, an ISO 8601 date-time,
 * or a duration ago (`2h` or `-2h`: two hours before now). Null when it is none of them.
 */
export function parseTimeFilter(text: string, now: number): number | null {
  const t = text.trim();
  if (/^\d{10,}$/.test(t)) return Number(t);
  const rel = RELATIVE.exec(t);
  if (rel) return now - Math.round(Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS]);
  if (ISO_DATE_TIME.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  return null;
}

export const timeParam = z
  .string()
  .meta({ description: 'epoch ms, an ISO 8601 date-time, or a duration ago such as 30m, 2h, 7d' })
  .transform((text, ctx) => {
    const ms = parseTimeFilter(text, Date.now());
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `'${text}' is not a time: use epoch ms, an ISO 8601 date-time or a duration ago (30m, 2h, 7d)` });
      return z.NEVER;
    }
    return ms;
  });

export const labelParam = z
  .union([z.string(), z.array(z.string())])
  .meta({ description: 'key=value; repeat for several labels (all must match)' });

// ------------------------------------------------------------------ requests

// A file is its text (YAML), or a document: the YAML shape as JSON, which is what a TypeScript
// workflow file's defineWorkflow comes to (the CLI imports the module and sends each workflow).
const definitionFile = z
  .object({
    path: z.string().min(1),
    source: z.string().optional().meta({ description: 'the file\'s text (YAML)' }),
    document: z.record(z.string(), z.unknown()).optional().meta({ description: 'a workflow or service as data, in the YAML shape (checked like a file)' }),
  })
  .strict()
  .superRefine((f, ctx) => {
    if ((f.source === undefined) === (f.document === undefined)) ctx.addIssue({ code: 'custom', message: 'give exactly one of source and document' });
  });
export const applyBody = z
  .object({ files: z.array(definitionFile).min(1) })
  .strict()
  .meta({ description: 'workflow and service files to register, with their paths (for error messages and relative references): each as its text, or as a document' });
/** A file to apply: its text, or a document. */
export type DefinitionFile = { path: string; source: string } | { path: string; document: Record<string, unknown> };
/** Text that reaches a job or the database as is: a NUL character can be carried by neither. */
const NUL_MESSAGE = 'contains a NUL character (\\u0000), which no environment, argument or database text can carry';
const jobText = z.string().refine((v) => !v.includes('\u0000'), NUL_MESSAGE);
const labelsRecord = z.record(jobText, jobText);
export const runBody = z
  .object({
    workflow: z.string().min(1),
    namespace: z.string().min(1).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    labels: labelsRecord.optional(),
    priority: z.number().int().optional(),
    force: z.boolean().optional(),
    at: z.string().min(1).optional().meta({ description: 'defer the start: an ISO 8601 date-time, or a delay such as +10m (answered 202 with the deferred run)' }),
  })
  .strict();
export const retryBody = z.object({ failed: z.boolean().optional(), force: z.boolean().optional() }).strict();
export const poolBody = z.object({ slots: z.number().int().min(0).nullable().meta({ description: 'null: no limit' }) }).strict();

export const listQuery = z.object({
  limit: intParam.max(10_000).optional(),
  offset: intParam.optional(),
});
export const runsQuery = listQuery.extend({
  workflow: z.string().optional(),
  namespace: z.string().optional(),
  state: z.enum(RUN_STATES).optional(),
  label: labelParam.optional(),
  latest: boolParam.optional().meta({ description: 'only the latest run of each workflow' }),
  worker: z.string().optional().meta({ description: 'runs with a job claimed by this worker' }),
  since: timeParam.optional().meta({ description: 'created at or after this time: epoch ms, ISO 8601, or a duration ago (30m, 2h, 7d)' }),
  until: timeParam.optional().meta({ description: 'created before this time' }),
});
export const deferredQuery = listQuery.extend({
  workflow: z.string().optional(),
  namespace: z.string().optional(),
  state: z.enum(DEFERRED_STATES).optional(),
});
export const jobsQuery = listQuery.extend({
  run: intParam.optional(),
  worker: z.string().optional(),
  state: z.enum(JOB_STATES).optional(),
  stale: boolParam.optional().meta({ description: 'claimed but not running (lease lapsed, or the process never started)' }),
  workflow: z.string().optional(),
  namespace: z.string().optional(),
  label: labelParam.optional().meta({ description: "labels of the job's run: key=value, repeatable" }),
  since: timeParam.optional().meta({ description: 'started at or after this time (jobs never started do not match): epoch ms, ISO 8601, or a duration ago (30m, 2h, 7d)' }),
  until: timeParam.optional().meta({ description: 'started before this time' }),
});
export const logsQuery = z.object({
  run: intParam.optional(),
  job: z.string().optional(),
  after: intParam.optional().meta({ description: 'the `next` of the previous answer' }),
  limit: intParam.max(50_000).optional(),
  wait: z.coerce.number().min(0).max(60).optional().meta({ description: 'long poll: wait up to this many seconds for new lines when there are none' }),
});
/** `kinds=worker,service` (or repeated): a list of event kinds, each checked. */
const kindsParam = z
  .union([z.string(), z.array(z.string())])
  .meta({ description: `event kinds, comma-separated or repeated: ${EVENT_KINDS.join(', ')}` })
  .transform((v, ctx) => {
    const names = (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
    const bad = names.filter((n) => !(EVENT_KINDS as readonly string[]).includes(n));
    if (bad.length || names.length === 0) {
      ctx.addIssue({ code: 'custom', message: `${bad.length ? `unknown kind ${bad.map((b) => `'${b}'`).join(', ')}` : 'no kind given'}: use ${EVENT_KINDS.join(', ')}` });
      return z.NEVER;
    }
    return [...new Set(names)] as EventKind[];
  });
export const eventsQuery = z.object({
  run: intParam.optional().meta({ description: 'only events of this run and its jobs (from its start)' }),
  namespace: z.string().optional().meta({ description: 'only events of runs and services of this namespace (worker events belong to none: they come only when `kinds` names them)' }),
  workflow: z.string().optional().meta({ description: 'only events of runs of this workflow' }),
  label: labelParam.optional().meta({ description: 'only events of runs with this label: key=value, repeatable (all must match)' }),
  kinds: kindsParam.optional().meta({
    description:
      'only events of these kinds (default: all). Without it, run, namespace, workflow and label drop the kinds that lack the field (a worker event has none of them, a service event only a namespace); a kind named here comes even so: `?namespace=bots&kinds=service,worker` is the bots services and every worker',
  }),
  after: intParam.optional().meta({ description: 'resume after this event id (or send Last-Event-ID)' }),
});
export const graphQuery = z.object({
  expand: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .meta({ description: 'a group to show opened (a sub-workflow `task`, a foreach `task` or one copy `task[item]`); repeat for several' }),
  all: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .meta({ description: 'an opened group to show every child of: past 100, the others are one `more` node (GROUP…) unless it is named here' }),
});
export const errorsQuery = listQuery.extend({
  run: intParam.optional(),
  workflow: z.string().optional(),
  namespace: z.string().optional(),
  label: labelParam.optional().meta({ description: "labels of the job's run: key=value, repeatable" }),
  since: timeParam.optional().meta({ description: 'ended at or after this time: epoch ms, ISO 8601, or a duration ago (30m, 2h, 7d)' }),
  until: timeParam.optional().meta({ description: 'ended before this time' }),
});
export const brokenQuery = z.object({
  workflow: z.string().optional(),
  namespace: z.string().optional(),
  label: labelParam.optional().meta({ description: 'only runs (and their jobs) with this label: key=value, repeatable' }),
});
export const idParam = z.object({ id: intParam });
/** Above this many jobs a run's status lists only its active ones (see runStatusQuery). */
export const RUN_STATUS_LIST_ALL_UP_TO = 10_000;
export const runStatusQuery = z.object({
  jobs: z
    .enum(['all', 'active'])
    .optional()
    .meta({
      description: `which jobs to list: \`all\`, or \`active\` (running, retrying, failed; at most 1,000 each) with per-stage progress. Default: all up to ${RUN_STATUS_LIST_ALL_UP_TO.toLocaleString('en-US')} jobs, active above`,
    }),
});
export const jobIdParam = z.object({ id: z.string().min(1).meta({ description: 'RUN:TASK, or RUN:TASK#CHUNK' }) });
export const workerParam = z.object({ name: z.string().min(1) });
export const cancelBody = z
  .object({ clean: z.boolean().optional().meta({ description: "also delete the partial final-path outputs of the jobs cancelled while running (completed jobs' outputs stay)" }) })
  .strict();
export const stopWorkerBody = z
  .object({ terminate: z.boolean().optional().meta({ description: 'kill its running jobs now and requeue them (lost, not failed), instead of letting them finish' }) })
  .strict();
export const serviceParam = z.object({ name: z.string().min(1) });
export const serviceQuery = z.object({ namespace: z.string().min(1).optional().meta({ description: 'default: default' }) });
export const servicesQuery = z.object({ namespace: z.string().min(1).optional().meta({ description: 'only this namespace' }) });
export const serviceLogsQuery = z.object({
  namespace: z.string().min(1).optional().meta({ description: 'default: default' }),
  restarts: intParam
    .max(SERVICE_LOG_INSTANCES)
    .optional()
    .meta({ description: `also the lines of this many instances before the last one (each start or restart is an instance; the last ${SERVICE_LOG_INSTANCES} are kept)` }),
  instance: intParam.max(Number.MAX_SAFE_INTEGER).optional().meta({ description: 'only this instance (its fencing token, as `instance` of a line or `lastExit.instance`)' }),
  tail: intParam.min(1).max(50_000).optional().meta({ description: 'only the last this many lines' }),
  after: intParam.max(Number.MAX_SAFE_INTEGER).optional().meta({ description: 'the `next` of the previous answer' }),
  limit: intParam.min(1).max(50_000).optional(),
  wait: z.coerce.number().min(0).max(60).optional().meta({ description: 'long poll: wait up to this many seconds for new lines when there are none' }),
});
const memorySize = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  try {
    parseMemory(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});
export const execBody = z
  .object({
    argv: z.array(jobText).min(1, 'give the command to run').meta({ description: 'the command and its arguments (no shell)' }),
    namespace: z.string().min(1).optional(),
    queue: z.string().min(1).optional().meta({ description: 'default: default' }),
    cpu: z.number().min(0).optional().meta({ description: 'cpus it needs (default 1)' }),
    memory: memorySize.optional().meta({ description: 'memory it needs, such as 512M or 2G' }),
    cwd: z.string().startsWith('/', 'must be an absolute path').optional().meta({ description: 'where it runs, on the worker (default: a fresh scratch folder, removed when the job ends)' }),
    labels: labelsRecord.optional(),
  })
  .strict();
export const poolParam = z.object({ name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'a pool name: letters, digits, _ . -') });

/** A namespace name as workflows have it (spec/schema.ts NAME), or '*' for all of them. */
const NAMESPACE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
export const namespaceName = z.string().regex(NAMESPACE, 'a namespace name: letters, digits, _ . -');
export const tokenBody = z
  .object({
    namespaces: z
      .array(z.union([z.literal('*'), namespaceName]))
      .default([])
      .meta({ description: "the namespaces a maintainer (or viewer) token is for; '*': all. An admin acts everywhere" }),
    /** one namespace: the same as namespaces: [it] */
    namespace: z.union([z.literal('*'), namespaceName]).optional().meta({ description: 'one namespace: the same as `namespaces: [it]`' }),
    role: z.enum(ROLES).default('maintainer'),
    name: z.string().min(1).max(200).optional().meta({ description: 'who or what holds it, shown in lists' }),
  })
  .strict()
  .transform(({ namespace, ...b }) => ({ ...b, namespaces: namespace === undefined ? b.namespaces : [...b.namespaces, namespace] }))
  .refine((b) => b.role === 'admin' || b.namespaces.length > 0, { path: ['namespaces'], message: 'a maintainer or viewer token needs at least one namespace' });
export const tokenParam = z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, 'a token id: 12 hex digits, as gantry token list shows it') });

/** Secret names are what `{{ secrets.NAME }}` can name. */
export { SECRET_NAME };
/** Largest secret value, in bytes of UTF-8. */
export const MAX_SECRET_BYTES = 64 * 1024;
export const secretParam = z.object({ namespace: namespaceName, name: z.string().regex(SECRET_NAME, 'a secret name: letters, digits, _ -') });
export const secretBody = z
  .object({
    value: z
      .string()
      .refine((v) => Buffer.byteLength(v) <= MAX_SECRET_BYTES, `at most ${MAX_SECRET_BYTES} bytes`)
      .meta({ description: 'the clear value: stored sealed with AES-256-GCM, never shown again' }),
  })
  .strict();
export const secretsQuery = z.object({ namespace: namespaceName.optional() });

// ----------------------------------------------------------------- responses
// Registered with an id: they become components of the OpenAPI document.

// A registry of their own, not zod's global one: ids there must be unique per process, and
// descriptions (.meta) stay in the global one, where toJSONSchema reads them.
export const schemaRegistry = z.registry<{ id: string; description?: string }>();
export const componentSchemas = new Map<string, z.ZodType>();
export function component<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  schemaRegistry.add(schema, { id, description });
  componentSchemas.set(id, schema);
  return schema;
}

const ms = z.number().meta({ description: 'epoch milliseconds' });
const jobState = z.enum(JOB_STATES);
const capacity = component(
  'Capacity',
  z.object({ cpu: z.number(), memoryBytes: z.number().nullable(), custom: z.record(z.string(), z.number()) }),
  'cpu, memory and custom resources (memory null: not limited / not declared)',
);

export const errorSchema = component(
  'Error',
  z.object({
    error: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional().meta({ description: 'bad fields, e.g. body.files.0.path' }),
    errors: z.array(z.unknown()).optional().meta({ description: 'definition errors (file, line, column, path, message) or run request errors' }),
  }),
);

export const specErrorSchema = component(
  'SpecError',
  z.object({ file: z.string(), line: z.number(), column: z.number(), path: z.string(), message: z.string() }),
);

export const runSchema = component(
  'Run',
  z.object({
    id: z.number().int(),
    namespace: z.string(),
    workflow: z.string(),
    state: z.enum(RUN_STATES),
    params: z.record(z.string(), z.unknown()),
    labels: z.record(z.string(), z.string()),
    priority: z.number(),
    force: z.boolean(),
    logicalDate: z.string(),
    createdAt: ms,
    startedAt: ms.nullable(),
    finishedAt: ms.nullable(),
    counts: z.partialRecord(jobState, z.number()).meta({ description: 'job counts by state' }),
  }),
);

export const jobSchema = component(
  'Job',
  z.object({
    id: z.string().meta({ description: 'RUN:TASK (chunks: RUN:TASK#N)' }),
    key: z.number().int(),
    runId: z.number().int(),
    task: z.string(),
    chunk: z.number().int().nullable(),
    state: jobState,
    skipReason: z.enum(['outputs_exist', 'upstream', 'trigger']).nullable(),
    priority: z.number(),
    queue: z.string(),
    queues: z.array(z.string()),
    pool: z.string().nullable(),
    resources: capacity,
    waitingReason: z.string().nullable(),
    attempts: z.number().int(),
    failures: z.number().int(),
    maxRetries: z.number().int(),
    worker: z.string().nullable(),
    enqueuedAt: ms.nullable(),
    startedAt: ms.nullable(),
    finishedAt: ms.nullable(),
    runAfter: ms.nullable(),
    error: z.string().nullable(),
    exitCode: z.number().int().nullable(),
    outputs: z.record(z.string(), z.string()),
    result: z.unknown(),
    progress: z.number().nullable(),
    force: z.boolean(),
    chunkValue: z.unknown().optional(),
    chunked: z.boolean(),
    checkpoint: z.unknown(),
    cpuMs: z.number().nullable().meta({ description: "CPU time (user + system, ms) of its latest finished attempt's process tree; null while it runs or when not measured" }),
    maxRssBytes: z.number().nullable().meta({ description: "peak resident memory (bytes) of its latest finished attempt's process tree; null as cpuMs" }),
  }),
);

export const attemptSchema = component(
  'Attempt',
  z.object({
    fence: z.number().int(),
    jobId: z.string(),
    number: z.number().int(),
    worker: z.string(),
    host: z.string(),
    pid: z.number().int().nullable(),
    state: z.enum(['running', 'succeeded', 'failed', 'skipped', 'lost', 'cancelled', 'timed_out']),
    startedAt: ms,
    finishedAt: ms.nullable(),
    exitCode: z.number().int().nullable(),
    error: z.string().nullable(),
    cpuMs: z.number().nullable().meta({ description: 'CPU time (user + system, ms) of its process tree; null while it runs or when not measured' }),
    maxRssBytes: z.number().nullable().meta({ description: 'peak resident memory (bytes) of its process tree; null as cpuMs' }),
  }),
);

export const taskProgressSchema = component(
  'TaskProgress',
  z.object({
    task: z.string(),
    state: jobState,
    chunks: z.object({ done: z.number(), total: z.number(), running: z.number(), failed: z.number() }).nullable(),
    progress: z.number().nullable(),
    copies: z.object({ done: z.number(), total: z.number(), running: z.number(), failed: z.number() }).optional(),
  }),
);

export const runEtaSchema = component(
  'RunEta',
  z.object({
    eta: z
      .object({ likely: ms, low: ms, high: ms })
      .nullable()
      .meta({ description: 'when the run should end (epoch ms): likely from the p50 of past run times, low/high from p10/p90; null when the run has ended or nothing in its history tells' }),
    basis: z.object({
      pastRuns: z.number().int().meta({ description: 'past runs of the workflow whose jobs gave durations (the latest 20 at most)' }),
      percentiles: z.object({ low: z.literal('p10'), likely: z.literal('p50'), high: z.literal('p90') }),
      tasksWithoutHistory: z.array(z.string()).meta({ description: 'unfinished tasks with no past duration: counted as taking no time' }),
      criticalPath: z.array(z.string()).meta({ description: 'the chain of unfinished tasks that ends last, first to last (a split task\'s chunks as task#)' }),
      reason: z.string().optional().meta({ description: 'why there is no ETA' }),
    }),
  }),
  "a run's estimated end, with what it is based on (see src/server/eta.ts for the model)",
);

export const runWithJobsSchema = component(
  'RunStatus',
  runSchema.extend({
    jobs: z.array(jobSchema),
    /** `all`: every job is in `jobs` and `tasks` is per task; `active`: only running/retrying/failed ones, and `tasks` is per stage */
    jobsListed: z.enum(['all', 'active']),
    tasks: z.array(taskProgressSchema),
    eta: runEtaSchema,
  }),
);
export const jobWithAttemptsSchema = component('JobWithAttempts', jobSchema.extend({ attemptList: z.array(attemptSchema) }));

export const deferredRunSchema = component(
  'DeferredRun',
  z.object({
    id: z.number().int(),
    namespace: z.string(),
    workflow: z.string(),
    params: z.record(z.string(), z.unknown()),
    labels: z.record(z.string(), z.string()),
    priority: z.number(),
    force: z.boolean(),
    dueAt: ms,
    state: z.enum(DEFERRED_STATES),
    createdAt: ms,
    runId: z.number().int().nullable(),
    error: z.string().nullable(),
  }),
  'a run deferred with `at` (gantry run --at): started by the scheduler when due',
);

export const logLineSchema = component(
  'LogLine',
  z.object({
    id: z.number().int(),
    jobId: z.string(),
    attempt: z.number().int(),
    stream: z.enum(['stdout', 'stderr', 'system']),
    ts: ms,
    line: z.string(),
  }),
);

export const workerSchema = component(
  'Worker',
  z.object({
    name: z.string(),
    host: z.string(),
    pid: z.number().int(),
    queues: z.array(z.string()),
    slots: z.number().int(),
    resources: capacity,
    state: z.enum(['active', 'draining', 'stopped']),
    startedAt: ms,
    heartbeatAt: ms,
    running: z.array(z.string()).meta({ description: 'ids of the jobs it runs' }),
    used: capacity,
  }),
);

export const poolSchema = component(
  'Pool',
  z.object({ name: z.string(), slots: z.number().int().nullable().meta({ description: 'null: no limit' }), running: z.number().int(), queued: z.number().int() }),
);

export const serviceLogLineSchema = component(
  'ServiceLogLine',
  z.object({
    id: z.number().int(),
    instance: z.number().int().meta({ description: 'the instance that wrote it (its fencing token): each start or restart is a new one' }),
    stream: z.enum(['stdout', 'stderr', 'system']),
    ts: ms,
    line: z.string(),
  }),
  "a line of a service's output; `system` lines are Gantry's (an instance started, ended, lost, output dropped)",
);
export const serviceLogsResponse = z.object({
  lines: z.array(serviceLogLineSchema),
  next: z.number().int().meta({ description: 'pass as `after` to read on' }),
  finished: z.boolean().meta({ description: 'the service is down (stopped) and every line was read: no more will come' }),
});

export const serviceStatusSchema = component(
  'Service',
  z.object({
    namespace: z.string(),
    name: z.string(),
    desired: z.enum(['up', 'down']).meta({ description: 'what was asked: service start / stop' }),
    state: z.enum(['down', 'starting', 'up', 'backoff', 'flapping', 'stopping']),
    flapping: z.boolean().meta({ description: 'it died quickly over and over: restarted at its max_delay until an instance stays up' }),
    worker: z.string().nullable(),
    host: z.string().nullable(),
    pid: z.number().int().nullable(),
    startedAt: ms.nullable().meta({ description: 'when the running instance started' }),
    uptimeMs: z.number().nullable().meta({ description: 'how long the running instance has been up' }),
    restarts: z.number().int(),
    lastExit: z
      .object({
        code: z.number().int().nullable(),
        signal: z.string().nullable(),
        at: ms,
        reason: z.string().nullable(),
        instance: z.number().int().nullable().meta({ description: 'the instance that ended (GET services/NAME/logs?instance=)' }),
      })
      .nullable(),
    lastExitLines: z
      .array(serviceLogLineSchema)
      .optional()
      .meta({ description: 'one service (GET services/NAME) that is not up, or is flapping: the last lines of the instance that ended last' }),
    nextStartAt: ms.nullable().meta({ description: 'when a waiting service starts again' }),
    command: z.string().nullable().meta({ description: 'what it runs (null: never started)' }),
    queues: z.array(z.string()),
    resources: capacity.nullable(),
    restart: z.object({ delayMs: z.number(), maxDelayMs: z.number() }).nullable(),
  }),
);
export type ServiceStatus = z.infer<typeof serviceStatusSchema>;
export const servicesResponse = z.object({ services: z.array(serviceStatusSchema) });
export const execResponse = z.object({ run: runSchema, job: z.string().meta({ description: 'the id of its one job, RUN:exec' }) });

export const eventSchema = component(
  'Event',
  z.object({
    id: z.number().int(),
    ts: ms,
    kind: z.enum(EVENT_KINDS),
    runId: z.number().int().meta({ description: '0 for a worker or service event' }),
    jobId: z.string().nullable(),
    state: z.string().meta({
      description:
        "the run's, job's or service's new state; a worker's: online (registered), draining (drain, stop or terminate asked), stopped (it exited) or dead (declared dead: heartbeat lost or process gone; its jobs and services go to others)",
    }),
    service: z.string().optional().meta({ description: 'a service event: namespace/name' }),
    worker: z.string().optional().meta({ description: 'a worker event: the worker; a service event: the worker its instance runs (or ran) on' }),
    reason: z.string().optional().meta({ description: 'a worker or service event: what happened, in words (an exit and its restart delay, a lost worker, …)' }),
    exit: z
      .object({ code: z.number().int().nullable(), signal: z.string().nullable() })
      .optional()
      .meta({ description: 'a service event whose instance ended: its exit code or signal' }),
    restarts: z.number().int().optional().meta({ description: 'a service event: restarts so far' }),
  }),
);

export const scheduleSchema = component(
  'Schedule',
  z.object({
    key: z.string(),
    cron: z.string(),
    timezone: z.string(),
    params: z.record(z.string(), z.unknown()),
    overlap: z.enum(['skip', 'queue', 'cancel_running']),
    catchup: z.boolean(),
    nextAt: ms.nullable(),
    next: z.string().nullable(),
    nextLocal: z.string().nullable(),
    lastTick: ms.nullable(),
  }),
);

export const workflowSummarySchema = component(
  'WorkflowSummary',
  z.object({
    name: z.string(),
    namespace: z.string(),
    description: z.string(),
    tasks: z.number().int(),
    params: z.record(z.string(), z.unknown()),
    schedules: z.array(scheduleSchema),
    version: z.number().int(),
    updatedAt: ms,
    file: z.string(),
  }),
);

export const tokenSchema = component(
  'Token',
  z.object({
    id: z.string().meta({ description: 'the public part of the token: what revoke takes' }),
    role: z.enum(ROLES),
    namespaces: z.array(z.string()).meta({ description: "'*': all" }),
    name: z.string().nullable(),
    createdAt: ms,
  }),
  'an API token as listed: never its secret',
);
export const createdTokenResponse = tokenSchema.extend({ token: z.string().meta({ description: 'the token itself: shown this once, stored only hashed' }) });
export const tokensResponse = z.object({ tokens: z.array(tokenSchema) });
export const whoamiResponse = z.object({
  role: z.enum(ROLES).nullable().meta({ description: 'null: no token presented (reads only)' }),
  namespaces: z.array(z.string()),
  name: z.string().optional(),
  id: z.string().optional(),
});
export const secretSchema = component('Secret', z.object({ namespace: z.string(), name: z.string(), updatedAt: ms }), 'a secret as listed: never its value');
export const secretsResponse = z.object({ secrets: z.array(secretSchema) });
export const secretPutResponse = z.object({ namespace: z.string(), name: z.string(), change: z.enum(['created', 'updated']) });
export const secretDeleteResponse = z.object({ namespace: z.string(), name: z.string(), deleted: z.literal(true) });
export const attemptErrorSchema = component(
  'AttemptError',
  z.object({
    fence: z.number().int(),
    jobId: z.string(),
    runId: z.number().int(),
    namespace: z.string(),
    workflow: z.string(),
    number: z.number().int().meta({ description: "the attempt's number (1: first try)" }),
    worker: z.string(),
    state: z.enum(['failed', 'timed_out']),
    startedAt: ms,
    finishedAt: ms.nullable(),
    exitCode: z.number().int().nullable(),
    error: z.string(),
  }),
  'one failed try of a job and what it raised',
);
export const errorsResponse = z.object({
  errors: z.array(attemptErrorSchema).meta({ description: 'failed attempts, latest first' }),
  summary: z
    .array(z.object({ error: z.string(), count: z.number().int(), jobs: z.number().int(), first: ms, last: ms }))
    .meta({ description: 'the listed errors grouped by their first line, most frequent first' }),
});

const seriesFields = { namespace: z.string(), workflow: z.string(), labels: z.record(z.string(), z.string()) };
export const brokenResponse = component(
  'BrokenReport',
  z.object({
    failing: z
      .array(
        z.object({
          ...seriesFields,
          latestRun: runSchema,
          failedInARow: z.number().int(),
          failingSince: ms.meta({ description: 'created time of the first run of the failing streak' }),
          lastSucceededAt: ms.nullable(),
        }),
      )
      .meta({ description: "series (a workflow's runs with the same labels, gantry.* aside) whose latest finished run failed" }),
    failedJobs: z.array(jobSchema).meta({ description: "jobs still failed in the failing series' latest runs" }),
    staleClaims: z.array(jobSchema).meta({ description: 'claimed but not running: the lease lapsed or the process never started' }),
    lostWorkers: z.array(workerSchema).meta({ description: 'not stopped, but silent for longer than the worker timeout' }),
    unplaceable: z.array(jobSchema).meta({ description: 'queued jobs no live worker could ever take' }),
    flapping: z
      .array(z.object({ ...seriesFields, recent: z.array(z.enum(RUN_STATES)), changes: z.number().int() }))
      .meta({ description: 'series whose last 10 finished runs changed between succeeded and failed 3 times or more' }),
  }),
  'what is broken now',
);

export const healthResponse = z.object({ ok: z.boolean(), store: z.enum(['sqlite', 'postgres']) });
export const appliedResponse = z.object({
  applied: z.array(z.object({ name: z.string(), namespace: z.string(), kind: z.string(), change: z.enum(['created', 'updated', 'unchanged']) })),
});
export const workflowsResponse = z.object({ workflows: z.array(workflowSummarySchema) });
export const runsResponse = z.object({
  runs: z.array(runSchema),
  deferred: z.array(deferredRunSchema).meta({ description: 'runs waiting for their start time (not listed with a state filter or an offset)' }),
});
export const deferredResponse = z.object({ deferred: z.array(deferredRunSchema) });
export const retryResponse = z.object({ run: runSchema, reset: z.number().int().meta({ description: 'jobs reset to run again' }) });
export const jobsResponse = z.object({ jobs: z.array(jobSchema) });
export const logsResponse = z.object({
  lines: z.array(logLineSchema),
  next: z.number().int().meta({ description: 'pass as `after` to read on' }),
  finished: z.boolean().meta({ description: 'the target has ended and every line of it was read' }),
});
export const workersResponse = z.object({ workers: z.array(workerSchema) });
export const poolsResponse = z.object({ pools: z.array(poolSchema) });

const counts = z.partialRecord(jobState, z.number()).meta({ description: 'job counts by state' });

export const graphNodeSchema = component(
  'GraphNode',
  z.object({
    id: z.string().meta({ description: 'a task id, or a group: `task` (sub-workflow or foreach) or `task[item]` (one foreach copy)' }),
    label: z.string(),
    kind: z.enum(['task', 'split', 'subworkflow', 'foreach', 'pipeline', 'more']).meta({ description: 'more: the children of an opened group past the first 100, as one node' }),
    parent: z.string().nullable().meta({ description: 'the opened group it is shown in' }),
    state: jobState.meta({ description: "a task's own state; for a group, the state that says most (running, then retrying, queued, failed, ...)" }),
    counts,
    jobs: z.number().int(),
    tasks: z.number().int().meta({ description: 'tasks inside (1 for a task)' }),
    children: z.number().int().meta({ description: 'what opening it shows: copies of a foreach, tasks and groups of a sub-workflow (0 for a task)' }),
    chunks: z.object({ done: z.number(), total: z.number(), running: z.number(), failed: z.number() }).nullable(),
    progress: z.number().nullable().meta({ description: '0–100' }),
    startedAt: ms.nullable(),
    finishedAt: ms.nullable(),
  }),
  'a node of a run graph: a task, or a group of tasks shown as one',
);

export const graphResponse = component(
  'RunGraph',
  z.object({
    run: runSchema,
    nodes: z.array(graphNodeSchema),
    edges: z.array(z.object({ from: z.string(), to: z.string() })),
    expanded: z.array(z.object({ id: z.string(), kind: z.enum(['subworkflow', 'foreach', 'pipeline']), label: z.string() })),
    lastEventId: z.number().int().meta({ description: 'the event stream position this graph was read at: follow GET /api/v1/events?run=ID&after= from it' }),
  }),
);

export const overviewResponse = component(
  'Overview',
  z.object({
    now: ms,
    runs: counts.meta({ description: 'runs by state' }),
    failures: z.object({ since: ms, count: z.number().int(), latest: z.array(jobSchema) }).meta({ description: 'jobs failed in the last 24 h, the latest first' }),
    queues: z.array(z.object({ queue: z.string(), counts })).meta({ description: 'jobs by queue and state (pending, queued, running, retrying)' }),
    pools: z.array(poolSchema),
    workers: z.object({ total: z.number().int(), busy: z.number().int(), idle: z.number().int(), draining: z.number().int(), stopped: z.number().int() }),
    throughput: z
      .object({
        since: ms,
        series: z.array(z.object({ worker: z.string().nullable(), minute: ms, succeeded: z.number().int(), failed: z.number().int() })),
      })
      .meta({ description: 'jobs finished per worker and minute over the last hour' }),
  }),
);

// ------------------------------------------------------ drift checks (types)
// Each schema must describe exactly its store type: a field added to one and
// not the other stops `tsc`.

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
function same<T extends true>(): T | undefined {
  return undefined;
}
same<Same<z.infer<typeof runSchema>, Run>>();
same<Same<z.infer<typeof jobSchema>, Job>>();
same<Same<z.infer<typeof attemptSchema>, Attempt>>();
same<Same<z.infer<typeof deferredRunSchema>, DeferredRun>>();
same<Same<z.infer<typeof logLineSchema>, StoredLogLine>>();
same<Same<z.infer<typeof serviceLogLineSchema>, ServiceLogLine>>();
same<Same<z.infer<typeof workerSchema>, WorkerRow>>();
same<Same<z.infer<typeof poolSchema>, PoolRow>>();
same<Same<z.infer<typeof eventSchema>, StoreEvent>>();
same<Same<z.infer<typeof taskProgressSchema>, TaskProgress>>();
same<Same<z.infer<typeof scheduleSchema>, ScheduleSummary>>();
same<Same<z.infer<typeof specErrorSchema>, SpecError>>();
same<Same<z.infer<typeof graphNodeSchema>, GraphNode>>();
same<Same<z.infer<typeof graphResponse>['edges'][number], GraphEdge>>();
same<Same<z.infer<typeof overviewResponse>['throughput']['series'][number], FinishedPerMinute>>();
same<Same<z.infer<typeof tokenSchema>, ApiToken>>();
same<Same<z.infer<typeof secretSchema>, SecretInfo>>();
same<Same<z.infer<typeof runEtaSchema>, RunEta>>();
same<Same<z.infer<typeof attemptErrorSchema>, AttemptError>>();
same<Same<z.infer<typeof brokenResponse>, BrokenReport>>();
