// The OpenAPI 3.1 document of GET /api/v1/openapi.json, generated from the
// zod schemas the routes parse with (schemas.ts) by zod's own toJSONSchema:
// no second copy of a schema to keep in step. OpenAPI 3.1 takes JSON Schema
// 2020-12 as is; shared response schemas become components.
import { z } from 'zod';
import * as S from './schemas.js';
import * as N from './notifySchemas.js';
import * as A from './acctSchemas.js';
import * as NS from './namespaceSchemas.js';

type JsonSchema = Record<string, unknown>;

interface Response {
  description: string;
  schema?: z.ZodType;
  /** default application/json */
  contentType?: string;
}

export interface RouteDoc {
  summary: string;
  tag: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** the largest body this route takes, when it differs from BODY_LIMIT */
  bodyLimit?: number;
  responses: Record<number, Response>;
}

const err = (description: string): Response => ({ description, schema: S.errorSchema });
const BAD = { 400: err('bad request: `issues` names each bad field (e.g. query.limit, body.files.0.path)') };
const NOT_FOUND = { 404: err('no such run, job or workflow') };
const CONFLICT = { 409: err('not allowed in its current state') };
const TOO_LARGE = { 413: err('request body over the limit') };
const AUTH = {
  401: err('no API token, or not a valid one (a read: the namespace is not public)'),
  403: err('the token lacks the role or the namespace for this'),
};

/** Every route of the API, keyed `METHOD path` as fastify knows it. */
export const ROUTES: Record<string, RouteDoc> = {
  'GET /api/v1/health': { tag: 'server', summary: 'answers 200 once the server is ready', responses: { 200: { description: 'ready', schema: S.healthResponse } } },
  'GET /api/v1/openapi.json': { tag: 'server', summary: 'this document', responses: { 200: { description: 'the OpenAPI 3.1 document' } } },
  'GET /metrics': {
    tag: 'server',
    summary: 'Prometheus metrics: jobs by state, queue depth, pool use, busy/idle workers, duration and queue-wait histograms, scheduler lag',
    responses: { 200: { description: 'Prometheus text exposition format 0.0.4', contentType: 'text/plain; version=0.0.4' } },
  },
  'POST /api/v1/definitions': {
    tag: 'definitions',
    summary: 'register (or check and update) workflow and service files',
    body: S.applyBody,
    bodyLimit: S.DEFINITIONS_BODY_LIMIT,
    responses: { 200: { description: 'what each definition came to', schema: S.appliedResponse }, 400: err('invalid definitions: `errors` lists them with file, line and column'), ...TOO_LARGE },
  },
  'GET /api/v1/workflows': {
    tag: 'definitions',
    summary: 'workflows with their schedules and next starts',
    responses: { 200: { description: 'the workflows', schema: S.workflowsResponse } },
  },
  'POST /api/v1/runs': {
    tag: 'runs',
    summary: 'start a run (or, with `at`, defer it)',
    body: S.runBody,
    responses: {
      201: { description: 'the run started', schema: S.runSchema },
      202: { description: 'the run deferred: started by the scheduler when due', schema: S.deferredRunSchema },
      ...BAD,
      ...NOT_FOUND,
      ...TOO_LARGE,
    },
  },
  'GET /api/v1/runs': {
    tag: 'runs',
    summary: 'runs, newest first, filtered and paginated (limit/offset)',
    query: S.runsQuery,
    responses: { 200: { description: 'runs, and the deferred runs still waiting', schema: S.runsResponse }, ...BAD },
  },
  'GET /api/v1/runs/:id': {
    tag: 'runs',
    summary: 'a run with its jobs and per-task progress (a big run: its active jobs and per-stage progress)',
    params: S.idParam,
    query: S.runStatusQuery,
    responses: { 200: { description: 'the run', schema: S.runWithJobsSchema }, ...BAD, ...NOT_FOUND },
  },
  'GET /api/v1/runs/:id/graph': {
    tag: 'runs',
    summary: "a run's DAG for drawing: tasks and groups (sub-workflows, foreach copies) with job counts by state, closed unless `expand` opens them, and the edges between what is shown",
    params: S.idParam,
    query: S.graphQuery,
    responses: { 200: { description: 'the graph', schema: S.graphResponse }, ...BAD, ...NOT_FOUND },
  },
  'POST /api/v1/runs/:id/cancel': {
    tag: 'runs',
    summary: 'cancel a run: its running jobs are killed wherever they run',
    params: S.idParam,
    body: S.cancelBody,
    responses: { 200: { description: 'the cancelled run', schema: S.runSchema }, ...BAD, ...NOT_FOUND, ...CONFLICT },
  },
  'POST /api/v1/runs/:id/retry': {
    tag: 'runs',
    summary: 'rerun the failed jobs of a run (failed: true), or all of it',
    params: S.idParam,
    body: S.retryBody,
    responses: { 200: { description: 'the run and how many jobs were reset', schema: S.retryResponse }, ...BAD, ...NOT_FOUND, ...CONFLICT },
  },
  'GET /api/v1/runs/:id/eta': {
    tag: 'runs',
    summary: "when the run should end: from past runs' task durations (p10/p50/p90) along the remaining critical path, with pool and worker waves",
    params: S.idParam,
    responses: { 200: { description: 'the estimate and its basis', schema: S.runEtaSchema }, ...BAD, ...NOT_FOUND },
  },
  'GET /api/v1/errors': {
    tag: 'monitoring',
    summary: 'errors raised: failed and timed-out attempts, latest first, and grouped by message',
    query: S.errorsQuery,
    responses: { 200: { description: 'the errors', schema: S.errorsResponse }, ...BAD },
  },
  'GET /api/v1/acct': {
    tag: 'monitoring',
    summary: 'accounting (like qacct): attempts, outcomes, wall and CPU time, peak memory of finished attempts per namespace, workflow, task or worker over a time range',
    query: A.acctQuery,
    responses: { 200: { description: 'the groups and their total', schema: A.acctResponse }, ...BAD, ...AUTH },
  },
  'GET /api/v1/broken': {
    tag: 'monitoring',
    summary: 'what is broken: failing run series (since when), their failed jobs, stale claims, lost workers, unplaceable jobs, flapping series',
    query: S.brokenQuery,
    responses: { 200: { description: 'the report', schema: S.brokenResponse }, ...BAD },
  },
  'GET /api/v1/deferred-runs': {
    tag: 'runs',
    summary: 'runs deferred with `at`, in due order',
    query: S.deferredQuery,
    responses: { 200: { description: 'deferred runs', schema: S.deferredResponse }, ...BAD },
  },
  'POST /api/v1/deferred-runs/:id/cancel': {
    tag: 'runs',
    summary: 'cancel a deferred run that has not started',
    params: S.idParam,
    responses: { 200: { description: 'the cancelled deferred run', schema: S.deferredRunSchema }, ...BAD, ...NOT_FOUND, ...CONFLICT },
  },
  'GET /api/v1/jobs': {
    tag: 'jobs',
    summary: 'jobs, filtered and paginated (limit/offset); in run order with `run`, else newest first',
    query: S.jobsQuery,
    responses: { 200: { description: 'jobs', schema: S.jobsResponse }, ...BAD },
  },
  'GET /api/v1/jobs/:id': {
    tag: 'jobs',
    summary: 'a job with its attempts',
    params: S.jobIdParam,
    responses: { 200: { description: 'the job', schema: S.jobWithAttemptsSchema }, ...BAD, ...NOT_FOUND },
  },
  'POST /api/v1/jobs/:id/cancel': {
    tag: 'jobs',
    summary: 'cancel a job: killed wherever it runs',
    params: S.jobIdParam,
    body: S.cancelBody,
    responses: { 200: { description: 'the cancelled job', schema: S.jobSchema }, ...BAD, ...NOT_FOUND, ...CONFLICT },
  },
  'GET /api/v1/logs': {
    tag: 'jobs',
    summary: 'central log lines of a run or a job (exactly one of run, job), optionally long-polled',
    query: S.logsQuery,
    responses: { 200: { description: 'log lines', schema: S.logsResponse }, ...BAD, ...NOT_FOUND },
  },
  'GET /api/v1/events': {
    tag: 'events',
    summary: 'server-sent events of every state change of runs, jobs, workers and services, filtered by run, namespace, workflow, labels and kinds; resumable with Last-Event-ID',
    query: S.eventsQuery,
    responses: { 200: { description: 'an event stream: `id` the outbox id, `event` the kind (run, job, worker, service; a client ignores kinds it does not know), `data` an Event as JSON', schema: S.eventSchema, contentType: 'text/event-stream' }, ...BAD, 410: err('after (or Last-Event-ID) is older than the kept history: events past the retention were pruned; the message names the oldest kept event') },
  },
  'GET /api/v1/overview': {
    tag: 'server',
    summary: 'runs by state, failures of the last 24 h, queue depths, pool use, workers busy/idle, jobs finished per worker and minute (the last hour)',
    responses: { 200: { description: 'the overview', schema: S.overviewResponse } },
  },
  'GET /api/v1/workers': {
    tag: 'workers',
    summary: 'workers: queues, slots, resources offered and used, heartbeat, running jobs',
    responses: { 200: { description: 'workers', schema: S.workersResponse } },
  },
  'POST /api/v1/workers/:name/drain': {
    tag: 'workers',
    summary: 'drain a worker: it finishes its running jobs and claims no new ones (state draining)',
    params: S.workerParam,
    responses: { 200: { description: 'the worker', schema: S.workerSchema }, ...BAD, ...NOT_FOUND, ...CONFLICT },
  },
  'POST /api/v1/workers/:name/stop': {
    tag: 'workers',
    summary: 'stop a worker: drain, then its process exits; with terminate, its running jobs are killed and requeued first',
    params: S.workerParam,
    body: S.stopWorkerBody,
    responses: { 200: { description: 'the worker', schema: S.workerSchema }, ...BAD, ...NOT_FOUND, ...CONFLICT, ...TOO_LARGE },
  },
  'GET /api/v1/services': {
    tag: 'services',
    summary: 'services (registered with apply): desired and actual state, worker, uptime, restarts, last exit',
    query: S.servicesQuery,
    responses: { 200: { description: 'services', schema: S.servicesResponse }, ...BAD },
  },
  'GET /api/v1/services/:name': {
    tag: 'services',
    summary: 'one service; when it is not up, or flapping, with the last lines of the instance that ended last',
    params: S.serviceParam,
    query: S.serviceQuery,
    responses: { 200: { description: 'the service', schema: S.serviceStatusSchema }, ...BAD, ...NOT_FOUND },
  },
  'GET /api/v1/services/:name/logs': {
    tag: 'services',
    summary: "a service's output lines from any worker: its last instance (and `restarts` before it), or one `instance`; optionally long-polled",
    params: S.serviceParam,
    query: S.serviceLogsQuery,
    responses: { 200: { description: 'output lines, oldest first', schema: S.serviceLogsResponse }, ...BAD, ...NOT_FOUND },
  },
  'POST /api/v1/services/:name/start': {
    tag: 'services',
    summary: 'keep a service up: a worker with its resources starts it, and it is restarted with backoff whenever it exits',
    params: S.serviceParam,
    query: S.serviceQuery,
    responses: { 200: { description: 'the service', schema: S.serviceStatusSchema }, ...BAD, ...NOT_FOUND },
  },
  'POST /api/v1/services/:name/stop': {
    tag: 'services',
    summary: 'stop a service: its worker sends SIGTERM to its process group, SIGKILL after a grace period',
    params: S.serviceParam,
    query: S.serviceQuery,
    responses: { 200: { description: 'the service (stopping while its process ends)', schema: S.serviceStatusSchema }, ...BAD, ...NOT_FOUND },
  },
  'POST /api/v1/exec': {
    tag: 'runs',
    summary: 'a one-off job (gantry exec): a run of one task running the given argv; follow it with GET logs?job=',
    body: S.execBody,
    responses: { 201: { description: 'the run and its job', schema: S.execResponse }, ...BAD, ...TOO_LARGE },
  },
  'GET /api/v1/pools': {
    tag: 'pools',
    summary: 'pools and their use',
    responses: { 200: { description: 'pools', schema: S.poolsResponse } },
  },
  'PUT /api/v1/pools/:name': {
    tag: 'pools',
    summary: 'set the slots of a pool (null: no limit)',
    params: S.poolParam,
    body: S.poolBody,
    responses: { 200: { description: 'the pool', schema: S.poolSchema }, ...BAD, ...TOO_LARGE },
  },
  // ---- audit log, notifications, feed (notifyRoutes.ts)
  'GET /api/v1/audit': {
    tag: 'audit',
    summary: 'automatic actions (retries, reaped leases, stalls, service restarts, leader takeovers, catch-up runs) with actor and reason; newest first, paged by id',
    query: N.auditQuery,
    responses: { 200: { description: 'audit entries', schema: N.auditResponse }, ...BAD },
  },
  'GET /api/v1/subscriptions': {
    tag: 'notifications',
    summary: 'subscriptions: events matching a filter sent to a mailto: or webhook target',
    query: N.subscriptionsQuery,
    responses: { 200: { description: 'subscriptions', schema: N.subscriptionsResponse } },
  },
  'POST /api/v1/subscriptions': {
    tag: 'notifications',
    summary: 'subscribe a target to events of runs (and services) filtered by namespace, workflow and labels',
    body: N.subscriptionBody,
    responses: { 201: { description: 'the subscription', schema: N.subscriptionSchema }, ...BAD, ...TOO_LARGE },
  },
  'DELETE /api/v1/subscriptions/:id': {
    tag: 'notifications',
    summary: 'remove a subscription',
    params: S.idParam,
    responses: { 200: { description: 'the removed subscription', schema: N.subscriptionSchema }, ...BAD, ...NOT_FOUND },
  },
  'GET /api/v1/deliveries': {
    tag: 'notifications',
    summary: 'notifications queued, sent and failed, with attempts and the last error; newest first',
    query: N.deliveriesQuery,
    responses: { 200: { description: 'deliveries', schema: N.deliveriesResponse }, ...BAD },
  },
  'POST /api/v1/namespaces/:namespace/webhook-secret': {
    tag: 'notifications',
    summary: "the namespace's webhook signing secret (made on first use; rotate: a new one)",
    params: N.namespaceParam,
    body: N.secretBody,
    responses: { 200: { description: 'the secret', schema: N.secretResponse }, ...BAD, ...TOO_LARGE },
  },
  'GET /api/v1/feed.atom': {
    tag: 'notifications',
    summary: 'an Atom feed of finished runs and failures, newest first, filtered like subscriptions',
    query: N.feedQuery,
    responses: { 200: { description: 'an Atom 1.0 document', contentType: 'application/atom+xml' }, ...BAD },
  },
  'GET /api/v1/auth/whoami': {
    tag: 'auth',
    summary: 'the role and namespaces of the presented token (role null without one)',
    responses: { 200: { description: 'who you are', schema: S.whoamiResponse }, 401: err('the presented token is not valid') },
  },
  'POST /api/v1/tokens': {
    tag: 'auth',
    summary: 'create an API token (admin): the token is in this answer only, the store keeps its hash',
    body: S.tokenBody,
    responses: { 201: { description: 'the token, shown once', schema: S.createdTokenResponse }, ...BAD, ...TOO_LARGE },
  },
  'GET /api/v1/tokens': {
    tag: 'auth',
    summary: 'API tokens (admin), without their secrets',
    responses: { 200: { description: 'tokens', schema: S.tokensResponse } },
  },
  'GET /api/v1/secrets': {
    tag: 'secrets',
    summary: 'secret names (never values), of one namespace or all',
    query: S.secretsQuery,
    responses: { 200: { description: 'secrets', schema: S.secretsResponse }, ...BAD },
  },
  'PUT /api/v1/secrets/:namespace/:name': {
    tag: 'secrets',
    summary: "set a secret (a maintainer of its namespace, or an admin): stored sealed with AES-256-GCM; `{{ secrets.NAME }}` in the namespace's workflows reads it",
    params: S.secretParam,
    body: S.secretBody,
    responses: { 200: { description: 'created or updated', schema: S.secretPutResponse }, ...BAD, ...TOO_LARGE, 503: err('the server has no secret key') },
  },
  'DELETE /api/v1/secrets/:namespace/:name': {
    tag: 'secrets',
    summary: 'delete a secret',
    params: S.secretParam,
    responses: { 200: { description: 'deleted', schema: S.secretDeleteResponse }, ...BAD, ...NOT_FOUND },
  },
  'GET /api/v1/namespaces': {
    tag: 'namespaces',
    summary: "the settings of every configured namespace the caller may read",
    responses: { 200: { description: 'the namespaces', schema: NS.namespacesResponse } },
  },
  'GET /api/v1/namespaces/:namespace': {
    tag: 'namespaces',
    summary: "a namespace's settings: run-as user and group, public, output roots",
    params: NS.namespaceSettingsParam,
    responses: { 200: { description: 'its settings (defaults when nobody set any)', schema: NS.namespaceSettingsSchema }, ...BAD },
  },
  'PUT /api/v1/namespaces/:namespace': {
    tag: 'namespaces',
    summary: "change a namespace's settings (admin): fields left out keep their value",
    params: NS.namespaceSettingsParam,
    body: NS.namespaceSettingsBody,
    responses: { 200: { description: 'its settings now', schema: NS.namespaceSettingsSchema }, ...BAD },
  },
  'DELETE /api/v1/tokens/:id': {
    tag: 'auth',
    summary: 'revoke an API token (admin)',
    params: S.tokenParam,
    responses: { 200: { description: 'the revoked token', schema: S.tokenSchema }, ...BAD, ...NOT_FOUND },
  },
};

/** Reads that carry no namespace's data: answered to anyone. */
export const OPEN_READ_ROUTES = ['GET /api/v1/health', 'GET /api/v1/openapi.json', 'GET /api/v1/auth/whoami', 'GET /metrics'];
// Every mutation and every read of a namespace's data may be refused for its token (or for none).
for (const [key, doc] of Object.entries(ROUTES)) if (!OPEN_READ_ROUTES.includes(key)) Object.assign(doc.responses, AUTH);

const REF_PREFIX = '#/components/schemas/';

/**
 * One schema as JSON Schema 2020-12, each registered (shared) schema inside it
 * as a $ref to its component; the components it needs are added to `components`.
 */
function toJson(schema: z.ZodType, io: 'input' | 'output', components: Record<string, JsonSchema>, asComponent = false): JsonSchema {
  const used = new Set<string>();
  const json = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    // requests as accepted (before coercions and transforms), responses as produced
    io,
    unrepresentable: 'any',
    override: (ctx) => {
      const id = S.schemaRegistry.get(ctx.zodSchema)?.id;
      if (!id || (asComponent && ctx.path.length === 0)) return;
      used.add(id);
      const target = ctx.jsonSchema as Record<string, unknown>;
      for (const k of Object.keys(target)) delete target[k];
      target.$ref = REF_PREFIX + id;
    },
  }) as JsonSchema;
  delete json.$schema;
  for (const id of used) {
    if (components[id]) continue;
    components[id] = {}; // claimed first: components that refer to each other stop here
    const description = S.schemaRegistry.get(S.componentSchemas.get(id)!)?.description;
    components[id] = { ...(description ? { description } : {}), ...toJson(S.componentSchemas.get(id)!, 'output', components, true) };
  }
  return json;
}

/** Each property of a params or query object as an OpenAPI parameter. */
function parameters(schema: z.ZodObject, where: 'path' | 'query', components: Record<string, JsonSchema>): JsonSchema[] {
  const json = toJson(schema, 'input', components);
  const props = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
      // repeatable filters (label) come as repeated keys: ?label=a=1&label=b=2
      ...(where === 'query' ? { style: 'form', explode: true } : {}),
    };
  });
}

/** The document; `registered` are the routes the server has (`METHOD path`): one without a RouteDoc still appears, bare. */
export function openApiDocument(registered: string[], o: { version: string }): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  const keys = [...new Set([...Object.keys(ROUTES), ...registered])].sort();
  for (const key of keys) {
    const [method, url] = key.split(' ') as [string, string];
    const doc = ROUTES[key];
    const path = url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const op: Record<string, unknown> = { operationId: operationId(method, url), tags: [doc?.tag ?? 'other'], summary: doc?.summary ?? '(undocumented)' };
    const params = [
      ...(doc?.params ? parameters(doc.params, 'path', components) : [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))),
      ...(doc?.query ? parameters(doc.query, 'query', components) : []),
    ];
    if (params.length) op.parameters = params;
    if (doc?.body)
      op.requestBody = {
        required: true,
        description: `JSON, at most ${(doc.bodyLimit ?? S.BODY_LIMIT) / 1024 / 1024} MiB (larger: 413)`,
        content: { 'application/json': { schema: toJson(doc.body, 'input', components) } },
      };
    const responses: Record<string, unknown> = {};
    for (const [code, r] of Object.entries(doc?.responses ?? { 200: { description: 'OK' } }))
      responses[code] = {
        description: r.description,
        ...(r.schema || r.contentType ? { content: { [r.contentType ?? 'application/json']: r.schema ? { schema: toJson(r.schema, 'output', components) } : {} } } : {}),
      };
    op.responses = responses;
    (paths[path] ??= {})[method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gantry',
      version: o.version,
      description: 'The HTTP API of Gantry, a distributed job and workflow manager. Bad input is answered 400 with the field paths; bodies over their limit 413.',
    },
    paths,
    components: { schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))) },
  };
}

function operationId(method: string, url: string): string {
  const words = url
    .replace(/^\/api\/v1\//, '')
    .split(/[/.-]/)
    .filter(Boolean)
    .map((w) => (w.startsWith(':') ? 'by ' + w.slice(1) : w));
  return [method.toLowerCase(), ...words]
    .join(' ')
    .split(' ')
    .map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1)))
    .join('');
}
