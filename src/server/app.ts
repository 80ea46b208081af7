// The HTTP API (SPEC §4): a thin layer over the Store. Request bodies and
// query strings are checked with zod; bad input is a 400 naming the field.
// Unexpected errors are logged and answered 500; they never stop the server.
//
// src/server owns: routes (this file), run creation (runs.ts), event streams (events.ts).
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDefinitionDocument, parseDefinitionSource } from '../spec/parse.js';
import { SpecValidationError, type SpecError, type WorkflowSpec } from '../spec/model.js';
import { validateDefinitionSet } from '../spec/validate-set.js';
import { ConflictError, NotFoundError, type Clock, type Job, type JobState, type Run, type RunState, type Store } from '../store/types.js';
import type { Logger } from '../log.js';
import { InvalidRunRequest, deferRun, startRun } from './runs.js';
import { workflowSchedules } from './schedules.js';
import { stageProgress, taskProgress } from '../store/taskProgress.js';
import { storeUnavailable } from '../store/unavailable.js';
import { EventsGone, signalWaiter, streamEvents, type StreamLimits } from './events.js';
import {
  BODY_LIMIT,
  DEFINITIONS_BODY_LIMIT,
  applyBody,
  cancelBody,
  stopWorkerBody,
  workerParam,
  execBody,
  serviceParam,
  serviceQuery,
  servicesQuery,
  serviceLogsQuery,
  deferredQuery,
  eventsQuery,
  graphQuery,
  errorsQuery,
  brokenQuery,
  idParam,
  jobIdParam,
  jobsQuery,
  logsQuery,
  poolBody,
  poolParam,
  retryBody,
  runBody,
  runsQuery,
  runStatusQuery,
  RUN_STATUS_LIST_ALL_UP_TO,
  tokenBody,
  tokenParam,
  secretBody,
  secretParam,
  secretsQuery,
} from './schemas.js';
import type { SecretKey } from '../secrets/seal.js';
import { Forbidden, Unauthorized, installAuth, requireNamespace } from './auth.js';
import { mayRead } from './readScope.js';
import { GroupWithoutUser, registerNamespaceRoutes } from './namespaceRoutes.js';
import { newToken } from '../auth/tokens.js';
import { ApiMetrics } from './metrics.js';
import { serviceStatus, LAST_EXIT_LINES } from './services.js';
import { isRunning as isRunningState } from '../store/serviceRows.js';
import { startExec } from './exec.js';
import { HistoryCache, runEta, type RunEta } from './eta.js';
import { failingSeries } from './broken.js';
import { summarizeErrors } from './errors.js';
import { openApiDocument } from './openapi.js';
import { registerNotifyRoutes } from './notifyRoutes.js';
import { registerAcctRoutes } from './acct.js';
import { createRequire } from 'node:module';
import { GraphAnswerCache, RunEdgeCache, buildRunGraph } from './runGraph.js';
import { overview } from './overview.js';
import { registerUi } from './ui.js';
/** per state, in a big run's status */
const ACTIVE_JOBS_LISTED = 1_000;

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** How long a big run's ETA is reused. */
const ETA_TTL_MS = 10_000;

/** How many of the latest runs `GET /api/v1/broken` reads to find failing and flapping series. */
const BROKEN_RUNS_READ = 2_000;

const TERMINAL_JOB = new Set<string>(['succeeded', 'failed', 'cancelled', 'skipped']);
const TERMINAL_RUN = new Set<string>(['succeeded', 'failed', 'cancelled']);

/** The server lacks something it needs for this (a secret key): 503. */
class Unavailable extends Error {}

class BadRequest extends Error {
  constructor(message: string, readonly details: unknown = undefined) {
    super(message);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  // A NUL in a filter matched nothing on SQLite and was a 500 on PostgreSQL (text cannot hold one).
  if ((where === 'query' || where === 'path') && value && typeof value === 'object')
    for (const [k, v] of Object.entries(value))
      if ((Array.isArray(v) ? v : [v]).some((x) => typeof x === 'string' && x.includes('\0'))) throw new BadRequest(`${where}.${k}: contains a NUL character`);
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }));
  throw new BadRequest(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
}

function parseLabels(label: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of label === undefined ? [] : Array.isArray(label) ? label : [label]) {
    const i = l.indexOf('=');
    if (i <= 0) throw new BadRequest(`query.label: '${l}' is not key=value`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

export interface AppOptions {
  store: Store;
  logger: Logger;
  /** a worker not heard from for this long counts as lost in /metrics */
  workerTimeoutMs?: number;
  /** the store's clock (tests): what /metrics measures lateness and heartbeats against */
  clock?: Clock;
  /** the built web UI (default dist/ui); absent: `/` says how to build it */
  uiDir?: string;
  /** seals secrets (PUT /secrets); without it secrets cannot be set here */
  secretKey?: SecretKey | null;
  /** the UI's public address, for links in the Atom feed (default: the request's host) */
  publicUrl?: string | null;
  /** what one event stream client may hold unread (events.ts) */
  eventStream?: StreamLimits;
}

export async function buildApp({ store, logger, workerTimeoutMs, clock, uiDir, secretKey, publicUrl, eventStream }: AppOptions): Promise<FastifyInstance> {
  // forceCloseConnections: event streams and keep-alive sockets must not hold a shutdown.
  // bodyLimit: fastify refuses a larger body (413) before reading it; definitions take more.
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, forceCloseConnections: true });
  const reads = installAuth(app, store);
  const now = () => (clock ? clock.now() : Date.now());
  // A run's ETA walks all its unfinished jobs. Given them (a run listed whole) it is computed
  // now; otherwise (a big run) from every job read again, at most once per ETA_TTL_MS per run.
  const etaHistory = new HistoryCache(store);
  const bigRunEtas = new Map<number, { at: number; eta: Promise<RunEta> }>();
  const etaOf = (run: Run, jobs?: Job[]): Promise<RunEta> => {
    if (jobs) return runEta(store, run, jobs, now(), { workerTimeoutMs, cache: etaHistory });
    const t = now();
    for (const [id, e] of bigRunEtas) if (t - e.at > ETA_TTL_MS) bigRunEtas.delete(id);
    const hit = bigRunEtas.get(run.id);
    if (hit) return hit.eta;
    const eta = store.listJobs({ runId: run.id, limit: Number.MAX_SAFE_INTEGER }).then((all) => runEta(store, run, all, t, { workerTimeoutMs, cache: etaHistory }));
    bigRunEtas.set(run.id, { at: t, eta });
    eta.catch(() => bigRunEtas.delete(run.id));
    return eta;
  };
  const metrics = await ApiMetrics.create(store, { workerTimeoutMs, now: clock ? () => clock.now() : undefined });
  // Every route as registered, for the OpenAPI document: one added without a description still shows.
  const routes: string[] = [];
  app.addHook('onRoute', (r) => {
    // the web UI's static files are not part of the API
    if (!r.url.startsWith('/api/') && r.url !== '/metrics') return;
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) if (m !== 'HEAD') routes.push(`${m} ${r.url}`);
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof Unauthorized) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: err.message });
    if (err instanceof Forbidden) return reply.code(403).send({ error: err.message });
    if (err instanceof Unavailable) return reply.code(503).send({ error: err.message });
    if (err instanceof GroupWithoutUser) return reply.code(400).send({ error: err.message });
    if (err instanceof BadRequest) return reply.code(400).send({ error: err.message, issues: err.details });
    if (err instanceof EventsGone) return reply.code(410).send({ error: err.message, issues: err.issues, prunedThrough: err.prunedThrough, oldest: err.oldest });
    if (err instanceof SpecValidationError) return reply.code(400).send({ error: 'invalid definition', errors: err.errors });
    if (err instanceof InvalidRunRequest) return reply.code(400).send({ error: err.message, errors: err.errors });
    if (err instanceof NotFoundError) return reply.code(404).send({ error: err.message });
    if (err instanceof ConflictError) return reply.code(409).send({ error: err.message });
    const e = err as { statusCode?: number; message?: string; code?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = req.routeOptions.bodyLimit ?? BODY_LIMIT;
      return reply.code(413).send({ error: `request body too large: ${req.method} ${req.routeOptions.url ?? req.url} takes at most ${limit / 1024 / 1024} MiB` });
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return reply.code(e.statusCode).send({ error: e.message });
    if (storeUnavailable(err)) return reply.code(503).header('retry-after', '5').send({ error: `the store is unavailable, try again shortly: ${e.message ?? String(err)}` });
    logger.error({ err, url: req.url }, 'request failed');
    return reply.code(500).send({ error: `internal error: ${e.message ?? String(err)}` });
  });

  app.get('/api/v1/health', async () => ({ ok: true, store: store.dialect }));

  // Unauthenticated by design: a Prometheus scraper carries no token. It carries no job data either:
  // counts per state, queue, pool and worker only, never a namespace, workflow, run or job.
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()));

  let openApi: unknown = null;
  app.get('/api/v1/openapi.json', async () => (openApi ??= openApiDocument(routes, { version })));

  // ---- definitions
  app.post('/api/v1/definitions', { bodyLimit: DEFINITIONS_BODY_LIMIT, config: { access: 'namespaced' } }, async (req) => {
    const body = parse(applyBody, req.body, 'body');
    const errors: SpecError[] = [];
    const defs = [];
    for (const f of body.files) {
      const r = f.source !== undefined ? parseDefinitionSource(f.source, f.path) : parseDefinitionDocument(f.document, f.path);
      errors.push(...r.errors);
      if (r.definition) defs.push(r.definition);
    }
    // rights on every namespace applied to (of the files that parse), before saying what else is wrong
    requireNamespace(req, ...defs.map((d) => d.namespace));
    if (errors.length === 0) {
      // stored workflows count too: a child applied alone may close a cycle through a stored parent
      const stored = (await store.listDefinitions()).flatMap((d) => (d.definition.kind === 'workflow' ? [d.definition] : []));
      errors.push(...validateDefinitionSet(defs, { stored }));
    }
    if (errors.length) throw new SpecValidationError(errors);
    return { applied: await store.putDefinitions(defs) };
  });

  app.get('/api/v1/workflows', async (req) => {
    const [defs, marks, visible] = await Promise.all([store.listDefinitions(), store.scheduleMarks(), reads.visible(req)]);
    const now = Date.now();
    return {
      workflows: defs
        .filter((d) => d.kind === 'workflow' && visible(d.namespace))
        .map((d) => {
          const w = d.definition as WorkflowSpec;
          return {
            name: w.name,
            namespace: w.namespace,
            description: w.description,
            tasks: w.tasks.length,
            params: w.params,
            schedules: workflowSchedules(w, now, marks),
            version: d.version,
            updatedAt: d.updatedAt,
            file: w.file,
          };
        }),
    };
  });

  // ---- runs
  app.post('/api/v1/runs', { config: { access: 'namespaced' } }, async (req, reply) => {
    const { at, ...body } = parse(runBody, req.body, 'body');
    requireNamespace(req, body.namespace ?? 'default');
    // A deferred start is a pending start record (202), not a run: the scheduler starts it when due.
    if (at !== undefined) return reply.code(202).send(await deferRun(store, body, at));
    const run = await startRun(store, body);
    return reply.code(201).send(run);
  });

  app.get('/api/v1/deferred-runs', async (req) => {
    const q = parse(deferredQuery, req.query, 'query');
    return { deferred: await store.listDeferredRuns({ workflow: q.workflow, ...(await reads.filter(req, q.namespace)), state: q.state, limit: q.limit }) };
  });

  app.post('/api/v1/deferred-runs/:id/cancel', { config: { access: 'namespaced' } }, async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    const d = await store.getDeferredRun(id);
    if (!d) throw new NotFoundError(`no deferred run ${id}`);
    requireNamespace(req, d.namespace);
    return store.endDeferredRun(id, 'cancelled', 'cancelled by request');
  });

  app.get('/api/v1/runs', async (req) => {
    const q = parse(runsQuery, req.query, 'query');
    const scope = await reads.filter(req, q.namespace);
    const runs = await store.listRuns({
      workflow: q.workflow,
      ...scope,
      state: q.state as RunState | undefined,
      labels: parseLabels(q.label),
      latest: q.latest,
      worker: q.worker,
      since: q.since,
      until: q.until,
      limit: q.limit,
      offset: q.offset,
    });
    // Runs waiting for their start time (`run --at`) are listed beside the runs: they are not runs yet.
    const labels = parseLabels(q.label);
    // None with a state, a worker (a deferred run has no jobs) or past the first page.
    const deferred =
      q.state || q.offset || q.worker
        ? []
        : (await store.listDeferredRuns({ workflow: q.workflow, ...scope, state: 'waiting', limit: q.limit ?? 50 })).filter(
            (d) =>
              Object.entries(labels).every(([k, v]) => d.labels[k] === v) &&
              (q.since === undefined || d.createdAt >= q.since) &&
              (q.until === undefined || d.createdAt < q.until),
          );
    return { runs, deferred };
  });

  app.get('/api/v1/runs/:id', async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    const run = await reads.run(req, id);
    const q = parse(runStatusQuery, req.query ?? {}, 'query');
    const total = Object.values(run.counts).reduce((a, n) => a + (n ?? 0), 0);
    if (q.jobs === 'all' || (q.jobs === undefined && total <= RUN_STATUS_LIST_ALL_UP_TO)) {
      // every job: the per-task progress is computed from them
      const jobs = await store.listJobs({ runId: id, limit: Number.MAX_SAFE_INTEGER });
      return { ...run, jobs, jobsListed: 'all' as const, tasks: taskProgress(jobs), eta: await etaOf(run, jobs) };
    }
    // A run of 100,000 jobs listed whole is 60 MB of JSON and seconds of work per call: the
    // jobs that need attention, and the progress per stage counted in the store.
    const [active, stages] = await Promise.all([
      Promise.all((['running', 'retrying', 'failed'] as const).map((state) => store.listJobs({ runId: id, state, limit: ACTIVE_JOBS_LISTED }))),
      store.stageCounts(id),
    ]);
    return { ...run, jobs: active.flat(), jobsListed: 'active' as const, tasks: stageProgress(stages), eta: await etaOf(run) };
  });

  app.get('/api/v1/runs/:id/eta', async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    return etaOf(await reads.run(req, id));
  });

  const runEdges = new RunEdgeCache(store);
  const graphAnswers = new GraphAnswerCache<Record<string, unknown>>();
  // The run's DAG for the web UI, groups closed unless `expand` opens them: counted in SQL, not loaded job by job.
  app.get('/api/v1/runs/:id/graph', async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    const q = parse(graphQuery, req.query, 'query');
    const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
    const expand = list(q.expand);
    const all = list(q.all);
    await reads.run(req, id);
    // read first: an event after it is replayed to a stream that follows from here, never missed
    const lastEventId = await store.lastEventId();
    const key = JSON.stringify([id, [...expand].sort(), [...all].sort()]);
    return graphAnswers.get(key, lastEventId, Date.now(), async () => {
      const run = await store.getRun(id);
      if (!run) throw new NotFoundError(`no run ${id}`);
      const [rows, edges] = await Promise.all([store.runTaskCounts(id), runEdges.get(id)]);
      return { run, ...buildRunGraph(rows, edges, expand, all), lastEventId };
    });
  });

  /** the run's namespace checked against the request's token; 404 for an unknown run */
  const requireRun = async (req: FastifyRequest, id: number) => {
    const run = await store.getRun(id);
    if (!run) throw new NotFoundError(`no run ${id}`);
    requireNamespace(req, run.namespace);
  };

  app.post('/api/v1/runs/:id/cancel', { config: { access: 'namespaced' } }, async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(cancelBody, req.body ?? {}, 'body');
    await requireRun(req, id);
    return store.cancelRun(id, { clean: body.clean });
  });

  app.post('/api/v1/runs/:id/retry', { config: { access: 'namespaced' } }, async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    const body = parse(retryBody, req.body, 'body');
    await requireRun(req, id);
    return store.retryRun(id, { failedOnly: body.failed ?? false, force: body.force ?? false });
  });

  // ---- jobs
  app.get('/api/v1/jobs', async (req) => {
    const q = parse(jobsQuery, req.query, 'query');
    if (q.run !== undefined) await reads.run(req, q.run);
    const scope = await reads.filter(req, q.namespace);
    return {
      jobs: await store.listJobs({
        runId: q.run,
        worker: q.worker,
        state: q.state as JobState | undefined,
        stale: q.stale,
        workflow: q.workflow,
        ...scope,
        labels: parseLabels(q.label),
        since: q.since,
        until: q.until,
        limit: q.limit,
        offset: q.offset,
      }),
    };
  });

  app.get('/api/v1/jobs/:id', async (req) => {
    const { id } = parse(jobIdParam, req.params, 'path');
    await reads.runOfJob(req, id);
    const job = await store.getJob(id);
    if (!job) throw new NotFoundError(`no job ${id}`);
    return { ...job, attemptList: await store.listAttempts(id) };
  });

  app.post('/api/v1/jobs/:id/cancel', { config: { access: 'namespaced' } }, async (req) => {
    const { id } = parse(jobIdParam, req.params, 'path');
    const body = parse(cancelBody, req.body ?? {}, 'body');
    const job = await store.getJob(id);
    if (!job) throw new NotFoundError(`no job ${id}`);
    await requireRun(req, job.runId);
    return store.cancelJob(id, { clean: body.clean });
  });

  // ---- logs, workers, events
  app.get('/api/v1/logs', async (req) => {
    const q = parse(logsQuery, req.query, 'query');
    if ((q.run === undefined) === (q.job === undefined)) throw new BadRequest('query: give exactly one of run or job');
    await (q.job !== undefined ? reads.runOfJob(req, q.job) : reads.run(req, q.run!));
    const limit = q.limit ?? 10_000;
    const read = () => store.readLogs({ runId: q.run, jobId: q.job, afterId: q.after, limit });
    // Finished is checked before reading: once it holds, every line of the target is already stored.
    const finished = async () =>
      q.job !== undefined
        ? TERMINAL_JOB.has((await store.getJob(q.job))?.state ?? 'succeeded')
        : TERMINAL_RUN.has((await store.getRun(q.run!))?.state ?? 'succeeded');
    if (q.job !== undefined ? !(await store.getJob(q.job)) : !(await store.getRun(q.run!)))
      throw new NotFoundError(q.job !== undefined ? `no job ${q.job}` : `no run ${q.run}`);
    return longPollLines(store, req.raw, q.wait, finished, read, q.after, limit);
  });

  // Counts are grid-wide (as in /metrics); the failed jobs listed are the caller's only.
  app.get('/api/v1/overview', async (req) => {
    const o = await overview(store, clock ? clock.now() : Date.now());
    const scope = await reads.scope(req);
    if (scope.all) return o;
    const runs = new Map<number, boolean>();
    for (const j of o.failures.latest) if (!runs.has(j.runId)) runs.set(j.runId, mayRead(scope, (await store.getRun(j.runId))?.namespace ?? ''));
    return { ...o, failures: { ...o.failures, latest: o.failures.latest.filter((j) => runs.get(j.runId)) } };
  });

  // Workers are the grid's: listed to every reader, with only the running jobs the caller may read.
  app.get('/api/v1/workers', async (req) => {
    const [workers, scope] = await Promise.all([store.listWorkers(), reads.filter(req)]);
    if (!scope.namespaces) return { workers };
    const mine = new Set((await store.listJobs({ state: 'running', namespaces: scope.namespaces, limit: Number.MAX_SAFE_INTEGER })).map((j) => j.id));
    return { workers: workers.map((w) => ({ ...w, running: w.running.filter((id) => mine.has(id)) })) };
  });

  // Workers and pools are cluster-wide: admin only (the default for a mutation).
  // Signalled through the store: a worker reads it within a second (SQLite), or at once through PostgreSQL's NOTIFY.
  app.post('/api/v1/workers/:name/drain', async (req) => {
    const { name } = parse(workerParam, req.params, 'path');
    return store.requestWorkerStop(name, 'drain');
  });

  app.post('/api/v1/workers/:name/stop', async (req) => {
    const { name } = parse(workerParam, req.params, 'path');
    const body = parse(stopWorkerBody, req.body ?? {}, 'body');
    return store.requestWorkerStop(name, body.terminate ? 'terminate' : 'stop');
  });

  // ---- services (start/stop reach the worker through the store: a signal, NOTIFY on PostgreSQL)
  app.get('/api/v1/services', async (req) => {
    const q = parse(servicesQuery, req.query, 'query');
    if (q.namespace !== undefined) await reads.requireNamespace(req, q.namespace);
    const visible = await reads.visible(req);
    const rows = (await store.listServices(q.namespace === undefined ? {} : { namespace: q.namespace })).filter((r) => visible(r.namespace));
    return { services: rows.map((r) => serviceStatus(r, now())) };
  });
  app.get('/api/v1/services/:name', async (req) => {
    const { name } = parse(serviceParam, req.params, 'path');
    const namespace = parse(serviceQuery, req.query, 'query').namespace ?? 'default';
    await reads.requireNamespace(req, namespace);
    const row = await store.getService(namespace, name);
    if (!row) throw new NotFoundError(`no service ${namespace}/${name}`);
    const status = serviceStatus(row, now());
    // down or flapping: what it said last before it died
    if ((row.state !== 'up' || row.flapping) && row.lastExit?.instance != null)
      status.lastExitLines = await store.readServiceLogs({ namespace, name, instance: row.lastExit.instance, tail: LAST_EXIT_LINES });
    return status;
  });
  app.get('/api/v1/services/:name/logs', async (req) => {
    const { name } = parse(serviceParam, req.params, 'path');
    const q = parse(serviceLogsQuery, req.query, 'query');
    const namespace = q.namespace ?? 'default';
    await reads.requireNamespace(req, namespace);
    const limit = q.limit ?? 10_000;
    const read = () => store.readServiceLogs({ namespace, name, restarts: q.restarts, instance: q.instance, tail: q.tail, afterId: q.after, limit });
    // Finished is checked before reading: once it holds, every line is already stored.
    const finished = async () => {
      const row = await store.getService(namespace, name);
      if (!row) throw new NotFoundError(`no service ${namespace}/${name}`);
      // one instance ends; the service goes on (restarted) until it is stopped
      return q.instance !== undefined ? q.instance < row.fence || !isRunningState(row.state) : row.state === 'down';
    };
    await finished(); // 404 before waiting
    return longPollLines(store, req.raw, q.wait, finished, read, q.after, limit);
  });
  app.post('/api/v1/services/:name/start', { config: { access: 'namespaced' } }, async (req) => {
    const { name } = parse(serviceParam, req.params, 'path');
    const namespace = parse(serviceQuery, req.query, 'query').namespace ?? 'default';
    requireNamespace(req, namespace);
    return serviceStatus(await store.startService(namespace, name), now());
  });
  app.post('/api/v1/services/:name/stop', { config: { access: 'namespaced' } }, async (req) => {
    const { name } = parse(serviceParam, req.params, 'path');
    const namespace = parse(serviceQuery, req.query, 'query').namespace ?? 'default';
    requireNamespace(req, namespace);
    return serviceStatus(await store.stopService(namespace, name), now());
  });

  // ---- exec: a one-off job
  app.post('/api/v1/exec', { config: { access: 'namespaced' } }, async (req, reply) => {
    const body = parse(execBody, req.body, 'body');
    requireNamespace(req, body.namespace ?? 'default');
    return reply.code(201).send(await startExec(store, body));
  });

  app.get('/api/v1/pools', async () => ({ pools: await store.listPools() }));

  app.put('/api/v1/pools/:name', async (req) => {
    const { name } = parse(poolParam, req.params, 'path');
    const body = parse(poolBody, req.body, 'body');
    return store.setPool(name, body.slots);
  });

  // ---- auth: who the presented token is; tokens (admin)
  app.get('/api/v1/auth/whoami', async (req) => {
    const p = req.principal;
    return p ? { role: p.role, namespaces: p.namespaces, id: p.id, ...(p.name ? { name: p.name } : {}) } : { role: null, namespaces: [] };
  });

  app.post('/api/v1/tokens', { config: { access: 'admin' } }, async (req, reply) => {
    const body = parse(tokenBody, req.body, 'body');
    const { token, record } = newToken({ role: body.role, namespaces: body.namespaces, name: body.name });
    const created = await store.createToken(record);
    return reply.code(201).send({ ...created, token });
  });

  app.get('/api/v1/tokens', { config: { access: 'admin' } }, async () => ({ tokens: await store.listTokens() }));

  app.delete('/api/v1/tokens/:id', { config: { access: 'admin' } }, async (req) => {
    const { id } = parse(tokenParam, req.params, 'path');
    return store.revokeToken(id);
  });

  // ---- secrets: names are public, values never leave the server (workers open them for the jobs that use them)
  app.get('/api/v1/secrets', async (req) => {
    const q = parse(secretsQuery, req.query, 'query');
    if (q.namespace !== undefined) await reads.requireNamespace(req, q.namespace);
    const visible = await reads.visible(req);
    return { secrets: (await store.listSecrets(q.namespace)).filter((s) => visible(s.namespace)) };
  });

  app.put('/api/v1/secrets/:namespace/:name', { config: { access: 'namespaced' } }, async (req) => {
    const { namespace, name } = parse(secretParam, req.params, 'path');
    requireNamespace(req, namespace);
    const { value } = parse(secretBody, req.body, 'body');
    if (!secretKey) throw new Unavailable('this server has no secret key (GANTRY_SECRET_KEY, or gantry.secret-key in its working directory): it cannot store secrets');
    const { change } = await store.putSecret(namespace, name, secretKey.seal(value, namespace, name));
    return { namespace, name, change };
  });

  app.delete('/api/v1/secrets/:namespace/:name', { config: { access: 'namespaced' } }, async (req) => {
    const { namespace, name } = parse(secretParam, req.params, 'path');
    requireNamespace(req, namespace);
    await store.deleteSecret(namespace, name);
    return { namespace, name, deleted: true as const };
  });

  app.get('/api/v1/events', async (req, reply: FastifyReply) => {
    const q = parse(eventsQuery, req.query, 'query');
    const header = req.headers['last-event-id'];
    const after = q.after ?? (typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : undefined);
    const labels = parseLabels(q.label);
    if (q.run !== undefined) await reads.run(req, q.run);
    const scope = await reads.filter(req, q.namespace);
    await streamEvents(store, reply, {
      filter: { runId: q.run, ...scope, workflow: q.workflow, labels: Object.keys(labels).length ? labels : undefined, kinds: q.kinds },
      after,
      afterFrom: q.after !== undefined ? 'query.after' : 'header.last-event-id',
      limits: eventStream,
    });
  });

  // ---- monitoring answers (README: "question → command")
  app.get('/api/v1/errors', async (req) => {
    const q = parse(errorsQuery, req.query, 'query');
    if (q.run !== undefined) await reads.run(req, q.run);
    const errors = await store.listAttemptErrors({
      runId: q.run,
      workflow: q.workflow,
      ...(await reads.filter(req, q.namespace)),
      labels: parseLabels(q.label),
      since: q.since,
      until: q.until,
      limit: q.limit ?? 1000,
      offset: q.offset,
    });
    return { errors, summary: summarizeErrors(errors) };
  });

  app.get('/api/v1/broken', async (req) => {
    const q = parse(brokenQuery, req.query, 'query');
    const labels = parseLabels(q.label);
    const t = now();
    const timeout = workerTimeoutMs ?? 60_000;
    const scope = await reads.filter(req, q.namespace);
    const [runs, stale, workers, queued] = await Promise.all([
      store.listRuns({ workflow: q.workflow, ...scope, labels, limit: BROKEN_RUNS_READ }),
      store.listJobs({ stale: true, workflow: q.workflow, ...scope, labels }),
      store.listWorkers(),
      store.listJobs({ state: 'queued', workflow: q.workflow, ...scope, labels }),
    ]);
    const { failing, flapping } = failingSeries(runs);
    const failedJobs = (await Promise.all(failing.map((f) => store.listJobs({ runId: f.latestRun.id, state: 'failed' })))).flat();
    return {
      failing,
      failedJobs,
      staleClaims: stale,
      lostWorkers: workers.filter((w) => w.state !== 'stopped' && t - w.heartbeatAt > timeout),
      unplaceable: queued.filter((j) => j.waitingReason !== null),
      flapping,
    };
  });

  // ---- accounting: what attempts used (acct.ts)
  registerAcctRoutes(app, { store, reads, parse });

  // ---- audit log, notifications, Atom feed (notifyRoutes.ts)
  registerNotifyRoutes(app, { store, publicUrl, parse, parseLabels, reads });

  // ---- namespace settings (namespaceRoutes.ts)
  registerNamespaceRoutes(app, { store, parse, reads });

  await registerUi(app, uiDir);

  return app;
}

/**
 * A page of log lines after `after`; with `wait` (seconds), waits for new lines
 * or the end when there are none yet. It listens before reading, so a line or a
 * state change between the two is not missed. `finished`: no more lines will come.
 */
async function longPollLines<L extends { id: number }>(
  store: Store,
  raw: IncomingMessage,
  wait: number | undefined,
  finished: () => Promise<boolean>,
  read: () => Promise<L[]>,
  after: number | undefined,
  limit: number,
): Promise<{ lines: L[]; next: number; finished: boolean }> {
  const waiter = wait ? signalWaiter(store, ['logs', 'events'], wait * 1000, raw) : null;
  let done = await finished();
  let lines = await read();
  if (waiter && lines.length === 0 && !done) {
    await waiter.promise;
    done = await finished();
    lines = await read();
  }
  waiter?.cancel();
  return { lines, next: lines.length ? lines[lines.length - 1]!.id : (after ?? 0), finished: done && lines.length < limit };
}
