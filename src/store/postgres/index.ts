// The distributed store: PostgreSQL through node-postgres. Each transition is
// one transaction of set-based statements (claims use FOR UPDATE SKIP LOCKED;
// a run's jobs are inserted with unnest() in one statement). Wake-ups cross
// processes with LISTEN/NOTIFY on one channel; NOTIFY is sent inside the
// transaction, so listeners hear only what committed. Signals are also emitted
// in-process after commit, so a process does not wait on its own round trip.
import pg from 'pg';
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Definition, WorkflowSpec } from '../../spec/model.js';
import { parseJobId, formatJobId, SPLIT_SUFFIX } from '../jobId.js';
import { acctSql, toAcctRows, type AcctFilter, type AcctRow, type AcctRowDb } from '../acctRows.js';
import { stageCountsFrom } from '../taskProgress.js';
import {
  ConflictError,
  NotFoundError,
  StaleFenceError,
  systemClock,
  type Attempt,
  type AttemptOutcome,
  type ChunkPlan,
  type ClaimedJob,
  type Clock,
  type CreateRunInput,
  type Job,
  type JobFilter,
  type JobState,
  type LogLine,
  type Run,
  type RunFilter,
  type RunState,
  type Store,
  type StoreEvent,
  type StoreSignal,
  type StoredDefinition,
  type StoredLogLine,
  type WorkerInfo,
  type WorkerRow,
  type FreeCapacity,
  type ClaimRequest,
  type PoolRow,
  type ScheduleTick,
  type ScheduledRunResult,
  type ScheduleMark,
  type DeferRunInput,
  type DeferredRun,
  type DeferredFilter,
  type JobCount,
  type FinishedJobTiming,
  type AuditEntry,
  type AuditFilter,
  type AuditNote,
  type FinishedPerMinute,
  type TaskEdge,
  type TaskStateCount,
  type ApiToken,
  type NewApiToken,
  type SecretInfo,
  type AttemptError,
  type AttemptErrorFilter,
  type EventFilter,
  type TaskHistory,
  type Delivery,
  type DeliveryFilter,
  type DeliveryInput,
  type NotifyCursor,
  type Subscription,
  type SubscriptionInput,
} from '../types.js';
import type { NamespaceSettings, NamespaceSettingsPatch } from '../types.js';
import * as namespaceRows from './namespaces.js';
import { inNamespaces } from '../scopeSql.js';
import type { StageCount, WorkerStopMode } from '../types.js';
import { publicToken, toSecretInfo, toTokens, type SecretRowDb, type TokenNamespaceRowDb, type TokenRowDb } from '../authRows.js';
import { strongerStopMode } from '../rows.js';
import type { Overlap } from '../../spec/model.js';
import { toDeferred, toMark, type DeferredRowDb, type MarkRowDb } from '../scheduleRows.js';
import type { ServiceSpec } from '../../spec/model.js';
import type { ClaimedService, ServiceExitReport, ServiceLogLine, ServiceLogQuery, ServiceRef, ServiceRow, ServiceState } from '../types.js';
import {
  exited, isRunning, moved, neverStarted, pickServices, serviceList, serviceValues, started, stopped, toService, upsertServiceSql, serviceAuditNotes,
  lineBytes, lostLine, serviceLogLine, trimExcess, SERVICE_LOG_INSTANCES, TRIM_MARK, type ServiceRowDb,
} from '../serviceRows.js';
import { chunkGroup, runAsReason, selectClaims, unfittableReason, type LiveWorker } from '../claimSelection.js';
import {
  toAttempt,
  toDefinition,
  toEvent,
  toJob,
  toLogLine,
  toRun,
  toWorker,
  type AttemptRowDb,
  type DefinitionRowDb,
  type EventRowDb,
  type JobRowDb,
  type LogRowDb,
  type RunRowDb,
  type WorkerRowDb,
  type CandidateRowDb,
  type RunningRowDb,
  type WaitingGroupDb,
  type LostRowDb,
  toLost,
  type LostCandidateDb,
  toLostCandidate,
  needOf,
  usedBy,
  offeredBy,
  liveWorkersFrom,
  mergeCandidates,
  chunksOf,
  JOB_COLUMNS,
} from '../rows.js';
import { migratePostgres } from './migrations.js';
import { insertAudit } from './audit.js';
import { eventFilterSql, eventValues, insertEventSql, registeredReason, REVIVED_REASON, REVIVED_STATE, serviceEvent, stopAskedReason, workerEvent, type EventInsert } from '../eventRows.js';
import { auditListSql, deadWorkerNote, failureNotes, reapNote, takeoverNote, toAuditEntry, type AuditRowDb } from '../audit.js';
import { eventHorizon, pruneEvents } from './pruneEvents.js';
import type { EventHorizon, EventPrune } from '../types.js';
import { finishedTimings, toTaskStateCount, type FinishedTimingRowDb, type TaskCountRowDb } from '../metricsRows.js';
import {
  PAST_DURATIONS_CTE,
  toAttemptError,
  toEdge,
  toTaskDurationStats,
  type AttemptErrorRowDb,
  type EdgeRowDb,
  type TaskDurationRowDb,
} from '../monitoringRows.js';
import { deliveryError, deliveryListSql, toDelivery, toSubscription, type DeliveryRowDb, type SubscriptionRowDb } from '../notifyRows.js';
import { randomBytes } from 'node:crypto';
import { checkpointJson, rerunCheckpointSql, retryDelayMs, runOutcome, SETTLE_VERDICT_SQL, SKIP_MESSAGES } from '../rules.js';

const ACTIVE = `('pending','queued','running','retrying')`;
/** Running attempts whose lease expired, or whose worker is dead or stopped. */
const LOST_SQL = `SELECT j.id, j.fence, j.run_id, j.task, j.chunk, j.worker, j.lease_until, a.host, a.pid, j.outputs FROM jobs j JOIN attempts a ON a.id = j.fence
  WHERE j.state = 'running' AND (j.lease_until < $1 OR j.worker = ANY($2::text[])
    OR j.worker IN (SELECT name FROM workers WHERE state = 'stopped'))`;
const CHANNEL = 'gantry';
/** NOTIFY payloads must stay under 8000 bytes */
const MAX_FENCES_PER_NOTIFY = 500;
const READER_HINT_MS = 50;
const ANALYZE_AFTER_JOBS = 1000;

type Q = pg.PoolClient;
/** What a claim and a completion send back: the columns a Job shows (+ what a claim needs), not all of the row (parsing is per column). */
const JOB_RETURNING = JOB_COLUMNS.map((c) => `jobs.${c}`).join(', ');
const CLAIMED_COLUMNS = `${JOB_RETURNING}, jobs.fence, jobs.refs`;
/**
 * The claim itself, shared by both claims: for the jobs of `picked` (a FROM item
 * with id and attempts), their attempts, their rows turned running and their
 * outbox events — CTEs att, upd and ev, with the placeholders given.
 */
function claimTransition(picked: string, p: { worker: string; host: string; now: string; lease: string }): string {
  return `att AS (
      INSERT INTO attempts (job_id, number, worker, host, state, started_at)
      SELECT picked.id, picked.attempts + 1, ${p.worker}, ${p.host}, 'running', ${p.now} FROM ${picked}
      RETURNING id, job_id
    ), upd AS (
      UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, fence = att.id, worker = ${p.worker}, lease_until = ${p.lease},
        started_at = ${p.now}, progress = NULL, waiting_reason = NULL, cpu_ms = NULL, max_rss_bytes = NULL
      FROM att WHERE jobs.id = att.job_id RETURNING ${CLAIMED_COLUMNS}
    ), ev AS (
      INSERT INTO events (ts, kind, run_id, job_id, state) SELECT ${p.now}, 'job', run_id, id, 'running' FROM upd
    )`;
}
/**
 * The rows claimTransition took, with their runs' parameters, whether anything depends on them, and the
 * outputs and results of the tasks each reads (in the same round trip: a chain's hop waits for it).
 */
const CLAIMED_ROWS = `SELECT upd.*, r.params AS run_params, r.logical_date AS run_logical_date, r.force AS run_force,
    EXISTS (SELECT 1 FROM job_deps d WHERE d.upstream_id = upd.id) AS has_dependents,
    CASE WHEN upd.refs = '[]' THEN NULL ELSE (
      SELECT json_agg(json_build_object('task', u.task, 'outputs', u.outputs, 'result', u.result)) FROM jobs u
      WHERE u.run_id = upd.run_id AND coalesce(u.chunk, -1) = -1 AND u.task IN (SELECT jsonb_array_elements_text(upd.refs::jsonb))
    ) END AS upstream_rows
  FROM upd JOIN runs r ON r.id = upd.run_id`;
/** The general claim's jobs: the ids it chose ($1), for worker $2 on host $3 at $4, lease until $5. */
const CLAIM_CHOSEN = claimTransition('(SELECT j.id, j.attempts FROM jobs j WHERE j.id = ANY($1::bigint[])) picked', { worker: '$2', host: '$3', now: '$4', lease: '$5' });
/** claimPlain's jobs: its candidates when its verdict says plain, for worker $5 on host $6 at $7, lease until $8. */
const CLAIM_PLAIN = claimTransition('(SELECT cand.id, cand.attempts FROM cand, verdict WHERE verdict.plain) picked', { worker: '$5', host: '$6', now: '$7', lease: '$8' });
/** completeDone's first CTEs: the items ($1–$5, their usage $11–$12) and their jobs, locked */
const DONE_ITEMS = `v AS (
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $11::bigint[], $12::bigint[])
        AS v(fence, state, exit_code, skip_reason, result, cpu_ms, max_rss_bytes)
    ), j AS (
      SELECT jobs.id, jobs.fence FROM jobs WHERE jobs.fence = ANY($1::bigint[]) AND jobs.state = 'running' ORDER BY jobs.id FOR UPDATE
    )`;
/**
 * completeDone's writes at $6: attempts (a), jobs (u, RETURNING done_fence), log lines $7–$10 (l), events (e).
 * `guard`: a one-row CTE whose boolean `ok` must hold for anything to be written.
 */
function doneWrites(guard: string | null): string {
  const from = guard ? `j, v, ${guard}` : 'j, v';
  const ok = guard ? `${guard}.ok AND ` : '';
  return `a AS (
      UPDATE attempts SET state = v.state, finished_at = $6, exit_code = v.exit_code, error = NULL, cpu_ms = v.cpu_ms,
        max_rss_bytes = v.max_rss_bytes FROM ${from}
      WHERE ${ok}attempts.id = j.fence AND v.fence = j.fence
    ), u AS (
      UPDATE jobs SET state = v.state, skip_reason = v.skip_reason, finished_at = $6, exit_code = v.exit_code, result = v.result, error = NULL,
        fence = NULL, lease_until = NULL, cpu_ms = v.cpu_ms, max_rss_bytes = v.max_rss_bytes
      FROM ${from} WHERE ${ok}jobs.id = j.id AND v.fence = j.fence RETURNING ${JOB_RETURNING}, j.fence AS done_fence
    ), l AS (
      INSERT INTO logs (run_id, job_id, attempt_id, stream, ts, line)
      SELECT u.run_id, u.id, x.fence, x.stream, x.ts, x.line
      FROM unnest($7::bigint[], $8::text[], $9::bigint[], $10::text[]) WITH ORDINALITY AS x(fence, stream, ts, line, n)
      JOIN u ON u.done_fence = x.fence ORDER BY x.n
    ), e AS (
      INSERT INTO events (ts, kind, run_id, job_id, state) SELECT $6, 'job', run_id, id, state FROM u ORDER BY id
    )`;
}
/** completeDone's parameters $1–$12 */
function doneValues(items: DoneItem[], now: number): unknown[] {
  const lines = items.flatMap((it) => (it.lines ?? []).map((l) => ({ fence: it.fence, ...l })));
  return [
    items.map((it) => it.fence),
    items.map((it) => it.outcome.state),
    items.map((it) => (it.outcome.state === 'succeeded' ? it.outcome.exitCode : null)),
    items.map((it) => (it.outcome.state === 'skipped' ? 'outputs_exist' : null)),
    items.map((it) => (it.outcome.state === 'succeeded' && it.outcome.result !== undefined ? JSON.stringify(it.outcome.result) : null)),
    now,
    lines.map((l) => l.fence),
    lines.map((l) => l.stream),
    lines.map((l) => l.ts),
    // PostgreSQL text cannot hold NUL bytes
    lines.map((l) => l.line.replace(/\0/g, '')),
    items.map((it) => (it.outcome.state === 'succeeded' ? (it.outcome.usage?.cpuMs ?? null) : null)),
    items.map((it) => (it.outcome.state === 'succeeded' ? (it.outcome.usage?.maxRssBytes ?? null) : null)),
  ];
}
/** A claimed job's row with its run's parameters. */
type ClaimRowDb = JobRowDb & {
  run_params: string;
  run_logical_date: string;
  run_force: number;
  has_dependents: boolean;
  upstream_rows: { task: string; outputs: string; result: string | null }[] | null;
};
type DoneItem = { fence: number; outcome: Extract<AttemptOutcome, { state: 'succeeded' | 'skipped' }>; lines?: LogLine[] };

/**
 * Hot statements are prepared once per connection (named): planning the claim
 * and completion CTEs cost more PostgreSQL CPU than running them (pg_stat_statements,
 * W1-PG). Only for fixed texts — the name is tied to the text for the process.
 */
const preparedNames = new Map<string, string>();
function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = preparedNames.get(text);
  if (!name) {
    name = `gantry_${preparedNames.size}`;
    preparedNames.set(text, name);
  }
  return { name, text, values };
}

// int8 (bigint) columns hold epoch milliseconds and ids: well inside 2^53.
/** Arbitrary constant naming the lock that makes the first start's admin token once. */
const FIRST_TOKEN_LOCK = 7_070_002;

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface PostgresStoreOptions {
  clock?: Clock;
  /** connections in the pool */
  max?: number;
  /** schema to use (tests isolate themselves in one schema each) */
  schema?: string;
}

/** A candidate job's namespace is mapped to no Unix user or to the claiming worker's ($3). */
const RUN_AS_FILTER = ` AND NOT EXISTS (SELECT 1 FROM runs r JOIN namespaces n ON n.namespace = r.namespace
  WHERE r.id = jobs.run_id AND n.run_user IS NOT NULL AND n.run_user <> $3)`;

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly clock: Clock;
  private readonly emitter = new EventEmitter();
  private readonly instance = randomUUID().slice(0, 8);
  private listener: pg.Client | null = null;
  private listening: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly url: string, private readonly opts: PostgresStoreOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      // an unreachable server is an error after this long (a 503 from the API), not a request hanging forever
      connectionTimeoutMillis: 10_000,
      types,
      options: opts.schema ? `-c search_path=${opts.schema}` : undefined,
    });
    // An idle client dying (server restart) must not crash the process: the pool replaces it.
    this.pool.on('error', () => undefined);
    this.emitter.setMaxListeners(0);
  }

  async migrate(): Promise<void> {
    const c = await this.checkout();
    try {
      if (this.opts.schema) await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.opts.schema.replace(/"/g, '')}"`);
      await migratePostgres(c);
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.readerHintTimer) clearTimeout(this.readerHintTimer);
    this.emitter.removeAllListeners();
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
    await this.pool.end();
  }

  subscribe(listener: (signal: StoreSignal) => void): () => void {
    this.emitter.on('signal', listener);
    void this.listen();
    return () => this.emitter.off('signal', listener);
  }

  /** One LISTEN connection per store, opened on first subscribe, reopened with backoff when lost. */
  private listen(): Promise<void> {
    if (this.listening) return this.listening;
    this.listening = (async () => {
      let delay = 100;
      while (!this.closed) {
        const client = new pg.Client({ connectionString: this.url, types });
        try {
          await client.connect();
          client.on('notification', (m) => {
            if (!m.payload) return;
            const [from, ...rest] = m.payload.split('|');
            if (from === this.instance) return; // emitted locally already
            const s = JSON.parse(rest.join('|')) as StoreSignal;
            this.emitter.emit('signal', s);
          });
          await client.query(`LISTEN ${CHANNEL}`);
          this.listener = client;
          delay = 100;
          // Something may have changed while we were not listening.
          this.emitter.emit('signal', { type: 'queued' } satisfies StoreSignal);
          this.emitter.emit('signal', { type: 'events' } satisfies StoreSignal);
          await new Promise<void>((resolve) => {
            client.once('error', () => resolve());
            client.once('end', () => resolve());
          });
        } catch {
          // fall through to the backoff
        }
        await client.end().catch(() => undefined);
        this.listener = null;
        if (this.closed) break;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    })();
    return this.listening;
  }

  /**
   * A pooled client for a transaction. While checked out, the pool does not
   * listen to its errors: a connection cut between two statements (a database
   * restart, pg_terminate_backend) would be an unhandled 'error' and end the
   * process. The statement in flight fails instead, and the pool drops the
   * broken client when it is released.
   */
  private async checkout(): Promise<pg.PoolClient> {
    const c = await this.pool.connect();
    if (c.listenerCount('error') === 0) c.on('error', () => undefined);
    return c;
  }

  /** Runs fn in one transaction; its signals are NOTIFYed inside it and emitted locally after commit. */
  private async tx<T>(fn: (c: Q, signal: Sig) => Promise<T>): Promise<T> {
    const c = await this.checkout();
    const signals: StoreSignal[] = [];
    const signal = (s: StoreSignal | Promoted) => {
      if (s.type === 'promoted') return;
      if (s.type === 'revoked' || s.type === 'worker' || !signals.some((p) => p.type === s.type)) signals.push(s);
    };
    let result: T;
    try {
      await c.query('BEGIN');
      result = await fn(c, signal);
      for (const s of signals) {
        if (s.type === 'events' || s.type === 'logs') continue; // hints for readers: sent after commit, coalesced (notifyReaders)
        const parts: StoreSignal[] =
          s.type === 'revoked'
            ? chunk(s.fences, MAX_FENCES_PER_NOTIFY).map((fences) => ({ type: 'revoked', fences }))
            : [s];
        for (const p of parts) await c.query('SELECT pg_notify($1, $2)', [CHANNEL, `${this.instance}|${JSON.stringify(p)}`]);
      }
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release();
      throw e;
    }
    c.release();
    for (const s of signals) {
      this.emitter.emit('signal', s);
      if (s.type === 'events' || s.type === 'logs') this.notifyReaders(s.type);
    }
    return result;
  }

  /** how many jobs settle() has skipped, ever: tells a caller whether its settle skipped any */
  private skippedBySettle = 0;
  /** when claimPlain may be tried again after it found a queue head it cannot take alone */
  private plainClaimsAfter = 0;
  /** fences claimed here whose jobs nothing depends on: their success needs no settling, so no explicit transaction */
  private readonly leafFences = new Set<number>();

  private readonly pendingHints = new Set<'events' | 'logs'>();
  private readerHintTimer: NodeJS.Timeout | null = null;

  /**
   * 'events' and 'logs' only tell readers in other processes (event streams, log
   * followers) to look at the outbox: sent outside the job transactions (a NOTIFY
   * inside makes commits take a global lock in turn) and at most once per
   * READER_HINT_MS per kind, trailing edge, so the last change is always announced.
   */
  private notifyReaders(kind: 'events' | 'logs'): void {
    if (this.closed) return;
    this.pendingHints.add(kind);
    if (this.readerHintTimer) return;
    this.readerHintTimer = setTimeout(() => {
      this.readerHintTimer = null;
      const kinds = [...this.pendingHints];
      this.pendingHints.clear();
      if (this.closed || kinds.length === 0) return;
      // Every kind of the window in one round trip.
      const payloads = kinds.map((k) => `${this.instance}|${JSON.stringify({ type: k })}`);
      this.pool
        .query(`SELECT ${payloads.map((_, i) => `pg_notify($1, $${i + 2})`).join(', ')}`, [CHANNEL, ...payloads])
        .catch(() => undefined);
    }, READER_HINT_MS);
  }


  private async one<T>(sql: string, args: unknown[] = []): Promise<T | undefined> {
    return (await this.pool.query(sql, args)).rows[0] as T | undefined;
  }
  private async all<T>(sql: string, args: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(sql, args)).rows as T[];
  }

  // ---------------------------------------------------------------- definitions

  async putDefinitions(defs: Definition[]) {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      const out = [];
      for (const d of defs) {
        const spec = JSON.stringify(d);
        const old = (
          await c.query<{ spec: string }>('SELECT spec FROM definitions WHERE namespace = $1 AND name = $2 AND kind = $3 FOR UPDATE', [
            d.namespace,
            d.name,
            d.kind,
          ])
        ).rows[0];
        if (old && old.spec === spec) {
          out.push({ name: d.name, namespace: d.namespace, kind: d.kind, change: 'unchanged' as const });
          continue;
        }
        await c.query(prepared(
          `INSERT INTO definitions (namespace, name, kind, version, spec, updated_at) VALUES ($1, $2, $3, 1, $4, $5)
           ON CONFLICT (namespace, name, kind) DO UPDATE SET version = definitions.version + 1, spec = excluded.spec, updated_at = excluded.updated_at`,
          [d.namespace, d.name, d.kind, spec, now],
        ));
        signal({ type: 'schedules' });
        out.push({ name: d.name, namespace: d.namespace, kind: d.kind, change: old ? ('updated' as const) : ('created' as const) });
      }
      return out;
    });
  }

  async getWorkflow(namespace: string, name: string): Promise<StoredDefinition | null> {
    const r = await this.one<DefinitionRowDb>(`SELECT * FROM definitions WHERE namespace = $1 AND name = $2 AND kind = 'workflow'`, [namespace, name]);
    return r ? toDefinition(r) : null;
  }

  async listDefinitions(): Promise<StoredDefinition[]> {
    return (await this.all<DefinitionRowDb>('SELECT * FROM definitions ORDER BY namespace, name')).map(toDefinition);
  }

  // ---------------------------------------------------------------------- runs

  async createRun(input: CreateRunInput): Promise<Run> {
    const now = this.clock.now();
    const { id, jobs } = await this.tx(async (c, signal) => this.insertRun(c, signal, input, now));
    // A big insert can leave the planner with stale statistics (bad plans for claims): refresh them, off the hot path.
    if (jobs >= ANALYZE_AFTER_JOBS) void this.pool.query('ANALYZE jobs').catch(() => undefined);
    return (await this.getRun(id))!;
  }

  /** The body of createRun, inside the caller's transaction: the run's id and how many jobs it has. */
  private async insertRun(c: Q, signal: Sig, input: CreateRunInput, now: number): Promise<{ id: number; jobs: number }> {
    const { spec } = input;
    const runId = (
      await c.query<{ id: number }>(prepared(
        `INSERT INTO runs (namespace, workflow, state, params, labels, priority, force, logical_date, max_active, spec, created_at)
         VALUES ($1, $2, 'queued', $3, '{}', $4, $5, $6, $7, $8, $9) RETURNING id`,
        [spec.namespace, spec.name, JSON.stringify(input.params), input.priority, input.force ? 1 : 0, input.logicalDate, spec.maxActiveRuns, JSON.stringify(spec), now],
      ))
    ).rows[0]!.id;
    const plan = input.plan(runId);
    await c.query('UPDATE runs SET labels = $1 WHERE id = $2', [JSON.stringify(plan.labels), runId]);
    const labels = Object.entries(plan.labels);
    if (labels.length)
      await c.query('INSERT INTO run_labels (run_id, key, value) SELECT $1, * FROM unnest($2::text[], $3::text[])', [
        runId,
        labels.map((l) => l[0]),
        labels.map((l) => l[1]),
      ]);
    const jobs = plan.jobs;
    const inserted = await c.query<{ id: number; task: string }>(prepared(
      `INSERT INTO jobs (run_id, task, state, trigger_rule, deps_total, priority, queue, pool, max_retries, retry_delay_ms,
         retry_backoff, retry_max_delay_ms, outputs, refs, queues, has_fallback, cpu, memory, resources, chunked, chunk_limit)
       SELECT $1, t.task, 'pending', t.trig, t.deps, t.prio, t.queue, t.pool, t.maxr, t.delay, t.backoff, t.maxdelay, t.outputs, t.refs,
         t.queues, t.fallback, t.cpu, t.memory, t.resources, t.chunked, t.chunk_limit
       FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::text[], $7::text[], $8::int[], $9::bigint[], $10::float8[], $11::bigint[],
         $12::text[], $13::text[], $14::text[], $15::int[], $16::float8[], $17::bigint[], $18::text[], $19::int[], $20::int[])
         AS t(task, trig, deps, prio, queue, pool, maxr, delay, backoff, maxdelay, outputs, refs, queues, fallback, cpu, memory, resources,
           chunked, chunk_limit)
       RETURNING id, task`,
      [
        runId,
        jobs.map((j) => j.task),
        jobs.map((j) => j.trigger),
        jobs.map((j) => j.needs.length),
        jobs.map((j) => j.priority),
        jobs.map((j) => j.queues[0]!),
        jobs.map((j) => j.pool),
        jobs.map((j) => j.maxRetries),
        jobs.map((j) => j.retryDelayMs),
        jobs.map((j) => j.retryBackoff),
        jobs.map((j) => j.retryMaxDelayMs),
        jobs.map((j) => JSON.stringify(j.outputs)),
        jobs.map((j) => JSON.stringify(j.refs)),
        jobs.map((j) => JSON.stringify(j.queues)),
        jobs.map((j) => (j.queues.length > 1 ? 1 : 0)),
        jobs.map((j) => j.resources.cpu),
        jobs.map((j) => j.resources.memoryBytes),
        jobs.map((j) => JSON.stringify(j.resources.custom)),
        jobs.map((j) => (j.chunked ? 1 : 0)),
        jobs.map((j) => j.chunkLimit ?? null),
      ],
    ));
    const ids = new Map(inserted.rows.map((r) => [r.task, r.id]));
    const ups: number[] = [];
    const downs: number[] = [];
    for (const j of jobs)
      for (const n of j.needs) {
        const up = ids.get(n);
        if (up === undefined) throw new Error(`job plan: task '${j.task}' needs unknown task '${n}'`);
        ups.push(up);
        downs.push(ids.get(j.task)!);
      }
    if (ups.length) await c.query('INSERT INTO job_deps (upstream_id, job_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])', [ups, downs]);
    await c.query(prepared(`INSERT INTO events (ts, kind, run_id, job_id, state) VALUES ($1, 'run', $2, NULL, 'queued')`, [now, runId]));
    signal({ type: 'events' });
    await this.startQueuedRuns(c, signal, spec.namespace, spec.name, now);
    return { id: runId, jobs: jobs.length };
  }

  /** Starts the oldest queued runs of a workflow while its max_active_runs allows (serialized per workflow). */
  private async startQueuedRuns(c: Q, signal: Sig, namespace: string, workflow: string, now: number): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gantry-workflow:${namespace}/${workflow}`]);
    const queued = (
      await c.query<{ id: number; max_active: number | null }>(prepared(
        `SELECT id, max_active FROM runs WHERE namespace = $1 AND workflow = $2 AND state = 'queued' ORDER BY id`,
        [namespace, workflow],
      ))
    ).rows;
    if (queued.length === 0) return;
    let running = (
      await c.query<{ n: number }>(prepared(`SELECT count(*)::int AS n FROM runs WHERE namespace = $1 AND workflow = $2 AND state = 'running'`, [namespace, workflow]))
    ).rows[0]!.n;
    for (const r of queued) {
      if (r.max_active !== null && running >= r.max_active) break;
      await this.startRun(c, signal, r.id, now);
      running++;
    }
  }

  private async startRun(c: Q, signal: Sig, runId: number, now: number): Promise<void> {
    await c.query(prepared(`UPDATE runs SET state = 'running', started_at = $1 WHERE id = $2`, [now, runId]));
    await this.runEvent(c, signal, runId, 'running', now);
    const roots = (
      await c.query<{ id: number }>(prepared(
        `UPDATE jobs SET state = 'queued', enqueued_at = $1 WHERE run_id = $2 AND state = 'pending' AND deps_total = 0 RETURNING id`,
        [now, runId],
      ))
    ).rows.map((r) => r.id);
    await this.jobEvents(c, signal, roots, now);
    if (roots.length > 0) signal({ type: 'queued' });
    await this.finishRunIfDone(c, signal, runId, now);
  }

  private async runEvent(c: Q, signal: Sig, runId: number, state: RunState, now: number): Promise<void> {
    await c.query(prepared(`INSERT INTO events (ts, kind, run_id, job_id, state) VALUES ($1, 'run', $2, NULL, $3)`, [now, runId, state]));
    signal({ type: 'events' });
  }

  private async jobEvents(c: Q, signal: Sig, ids: number[], now: number): Promise<void> {
    if (ids.length === 0) return;
    await c.query(prepared(
      `INSERT INTO events (ts, kind, run_id, job_id, state) SELECT $1, 'job', run_id, id, state FROM jobs WHERE id = ANY($2::bigint[]) ORDER BY id`,
      [now, ids],
    ));
    signal({ type: 'events' });
  }

  /**
   * When no job of the run is active any more, settles the run's state. The run
   * row is locked first: of two transactions finishing a run's last jobs at once,
   * the second to get the lock sees the first's commit and ends the run.
   */
  private async finishRunIfDone(c: Q, signal: Sig, runId: number, now: number): Promise<void> {
    const run = (
      await c.query<{ namespace: string; workflow: string; state: RunState }>(prepared(`SELECT namespace, workflow, state FROM runs WHERE id = $1 FOR UPDATE`, [runId]))
    ).rows[0];
    if (!run || run.state !== 'running') return;
    const active = await c.query(`SELECT 1 FROM jobs WHERE run_id = $1 AND state IN ${ACTIVE} LIMIT 1`, [runId]);
    if (active.rowCount) return;
    const counts = await this.countsFor(c, runId);
    const state = runOutcome(counts);
    await c.query(prepared(`UPDATE runs SET state = $1, finished_at = $2 WHERE id = $3`, [state, now, runId]));
    await this.runEvent(c, signal, runId, state, now);
    await this.startQueuedRuns(c, signal, run.namespace, run.workflow, now);
  }

  /**
   * Ending a run without serializing every completion of the run on its row:
   * after its own commit, a completion checks (in a new snapshot) whether any
   * job of the run is still active. Of the run's last completions, the one that
   * commits last sees every other commit in that check, so it is the one that
   * ends the run (under the run row lock, rechecked there). Should a process
   * die between commit and check, the scheduler's finishIdleRuns duty ends it.
   */
  private async finishRunAfterCommit(runId: number): Promise<void> {
    const active = await this.pool.query(`SELECT 1 FROM jobs WHERE run_id = $1 AND state IN ${ACTIVE} LIMIT 1`, [runId]);
    if (active.rowCount) return;
    await this.tx(async (c, signal) => this.finishRunIfDone(c, signal, runId, this.clock.now()));
  }

  async finishIdleRuns(): Promise<number> {
    const idle = await this.all<{ id: number }>(
      `SELECT id FROM runs r WHERE state = 'running' AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id AND j.state IN ${ACTIVE})`,
    );
    for (const r of idle) await this.tx(async (c, signal) => this.finishRunIfDone(c, signal, r.id, this.clock.now()));
    return idle.length;
  }

  private async countsFor(c: Q | pg.Pool, runId: number): Promise<Partial<Record<JobState, number>>> {
    const rows = (await c.query<{ state: JobState; n: number }>(prepared(`SELECT state, count(*)::int AS n FROM jobs WHERE run_id = $1 GROUP BY state`, [runId]))).rows;
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  async getRun(id: number): Promise<Run | null> {
    const r = await this.one<RunRowDb>(`SELECT * FROM runs WHERE id = $1`, [id]);
    return r ? toRun(r, await this.countsFor(this.pool, id)) : null;
  }

  async getRunSpec(id: number): Promise<WorkflowSpec> {
    const r = await this.one<{ spec: string }>(`SELECT spec FROM runs WHERE id = $1`, [id]);
    if (!r) throw new NotFoundError(`no run ${id}`);
    return JSON.parse(r.spec) as WorkflowSpec;
  }

  async listRuns(f: RunFilter): Promise<Run[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    if (f.namespace) where.push(`namespace = ${arg(f.namespace)}`);
    if (f.namespaces) where.push(inNamespaces('namespace', f.namespaces, arg));
    if (f.workflow) where.push(`workflow = ${arg(f.workflow)}`);
    for (const [k, v] of Object.entries(f.labels ?? {})) where.push(`id IN (SELECT run_id FROM run_labels WHERE key = ${arg(k)} AND value = ${arg(v)})`);
    if (f.worker) where.push(`id IN (SELECT run_id FROM jobs WHERE worker = ${arg(f.worker)})`);
    if (f.since !== undefined) where.push(`created_at >= ${arg(f.since)}`);
    if (f.until !== undefined) where.push(`created_at < ${arg(f.until)}`);
    // latest: of each workflow among the runs the other filters match (label lang=de: the latest lang=de run), then the state filter
    if (f.latest) where.push(`id IN (SELECT max(id) FROM runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} GROUP BY namespace, workflow)`);
    if (f.state) where.push(`state = ${arg(f.state)}`);
    const sql = `SELECT * FROM runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${arg(f.limit ?? 50)} OFFSET ${arg(f.offset ?? 0)}`;
    const rows = await this.all<RunRowDb>(sql, args);
    const counts = await this.all<{ run_id: number; state: JobState; n: number }>(
      `SELECT run_id, state, count(*)::int AS n FROM jobs WHERE run_id = ANY($1::bigint[]) GROUP BY run_id, state`,
      [rows.map((r) => r.id)],
    );
    return rows.map((r) => toRun(r, Object.fromEntries(counts.filter((c) => c.run_id === r.id).map((c) => [c.state, c.n]))));
  }

  async cancelRun(id: number, opts: { clean?: boolean } = {}): Promise<Run> {
    const now = this.clock.now();
    await this.tx(async (c, signal) => {
      // Job rows first, then the run row: the order completions take them in, so the two cannot deadlock.
      const jobs = (
        await c.query<{ id: number; fence: number | null; state: JobState }>(
          `SELECT id, fence, state FROM jobs WHERE run_id = $1 AND state IN ${ACTIVE} ORDER BY id FOR UPDATE`,
          [id],
        )
      ).rows;
      const run = (await c.query<{ state: RunState; namespace: string; workflow: string }>(prepared(`SELECT state, namespace, workflow FROM runs WHERE id = $1 FOR UPDATE`, [id]))).rows[0];
      if (!run) throw new NotFoundError(`no run ${id}`);
      if (run.state !== 'running' && run.state !== 'queued') throw new ConflictError(`run ${id} has already ${run.state}`);
      await this.cancelRunRow(c, signal, id, jobs, run, now, opts.clean === true);
    });
    return (await this.getRun(id))!;
  }

  /** Cancels an active run inside the caller's transaction (its active jobs locked first, then its row); starts the next queued run. */
  private async cancelRunRow(
    c: Q,
    signal: Sig,
    id: number,
    jobs: { id: number; fence: number | null; state: JobState }[],
    run: { namespace: string; workflow: string },
    now: number,
    clean = false,
  ): Promise<void> {
    const fences = await this.cancelJobRows(c, signal, jobs, now, clean);
    await c.query(prepared(`UPDATE runs SET state = 'cancelled', finished_at = $1 WHERE id = $2`, [now, id]));
    await this.runEvent(c, signal, id, 'cancelled', now);
    if (fences.length) signal({ type: 'revoked', fences });
    await this.startQueuedRuns(c, signal, run.namespace, run.workflow, now);
  }

  private async cancelJobRows(c: Q, signal: Sig, jobs: { id: number; fence: number | null; state: JobState }[], now: number, clean = false): Promise<number[]> {
    const ids = jobs.map((j) => j.id);
    const fences = jobs.filter((j) => j.state === 'running' && j.fence !== null).map((j) => j.fence!);
    if (fences.length)
      await c.query(prepared(`UPDATE attempts SET state = 'cancelled', finished_at = $1, error = 'cancelled by request', clean = $3 WHERE id = ANY($2::bigint[])`, [now, fences, clean]));
    await c.query(prepared(
      `UPDATE jobs SET state = 'cancelled', finished_at = $1, fence = NULL, lease_until = NULL, error = coalesce(error, 'cancelled by request')
       WHERE id = ANY($2::bigint[])`,
      [now, ids],
    ));
    await this.jobEvents(c, signal, ids, now);
    return fences;
  }

  async retryRun(id: number, opts: { failedOnly: boolean; force: boolean }): Promise<{ run: Run; reset: number }> {
    const now = this.clock.now();
    const reset = await this.tx(async (c, signal) => {
      const run = (await c.query<{ state: RunState }>(prepared(`SELECT state FROM runs WHERE id = $1 FOR UPDATE`, [id]))).rows[0];
      if (!run) throw new NotFoundError(`no run ${id}`);
      if (!opts.failedOnly && (run.state === 'running' || run.state === 'queued'))
        throw new ConflictError(`run ${id} is still ${run.state}: cancel it first, or retry only its failed jobs with --failed`);
      const cond = opts.failedOnly
        ? `(state IN ('failed', 'cancelled') OR (state = 'skipped' AND skip_reason IN ('upstream', 'trigger')))`
        : `state IN ('succeeded', 'failed', 'cancelled', 'skipped')`;
      if (!opts.failedOnly) {
        // A whole rerun splits again: the chunks of the last split go, each main job waits for its split alone.
        await this.dropChunks(c, id, null);
        await c.query(prepared(`UPDATE jobs SET deps_total = (SELECT count(*) FROM job_deps d WHERE d.job_id = jobs.id) WHERE run_id = $1 AND chunked = 1`, [id]));
      }
      const ids = (
        await c.query<{ id: number }>(
          `UPDATE jobs SET state = 'pending', skip_reason = NULL, failures = 0, error = NULL, exit_code = NULL, run_after = NULL,
             finished_at = NULL, result = NULL, progress = NULL, fence = NULL, lease_until = NULL, force = $1, enqueued_at = NULL,
             ${rerunCheckpointSql(opts.force)}
           WHERE run_id = $2 AND ${cond} RETURNING id`,
          [opts.force ? 1 : 0, id],
        )
      ).rows.map((r) => r.id);
      if (ids.length === 0) return 0;
      await c.query(prepared(
        `UPDATE jobs SET
           deps_ok = (SELECT count(*) FROM job_deps d JOIN jobs u ON u.id = d.upstream_id
                      WHERE d.job_id = jobs.id AND (u.state = 'succeeded' OR (u.state = 'skipped' AND u.skip_reason = 'outputs_exist'))),
           deps_bad = (SELECT count(*) FROM job_deps d JOIN jobs u ON u.id = d.upstream_id
                       WHERE d.job_id = jobs.id AND (u.state IN ('failed', 'cancelled') OR (u.state = 'skipped' AND u.skip_reason <> 'outputs_exist')))
         WHERE id = ANY($1::bigint[])`,
        [ids],
      ));
      await c.query(prepared(`UPDATE runs SET state = 'running', finished_at = NULL, started_at = coalesce(started_at, $1) WHERE id = $2`, [now, id]));
      await this.runEvent(c, signal, id, 'running', now);
      await this.jobEvents(c, signal, ids, now);
      await this.settle(c, signal, [], [], ids, now);
      await this.finishRunIfDone(c, signal, id, now);
      return ids.length;
    });
    return { run: (await this.getRun(id))!, reset };
  }

  // ---------------------------------------------------------------------- jobs

  async listJobs(f: JobFilter): Promise<Job[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    if (f.runId !== undefined) where.push(`run_id = ${arg(f.runId)}`);
    if (f.worker) where.push(`worker = ${arg(f.worker)}`);
    if (f.state) where.push(`state = ${arg(f.state)}`);
    if (f.states) where.push(`state = ANY(${arg(f.states)}::text[])`);
    if (f.stale) {
      const now = this.clock.now();
      where.push(`state = 'running' AND (lease_until < ${arg(now)} OR fence IN (SELECT id FROM attempts WHERE pid IS NULL AND started_at < ${arg(now - 10_000)}))`);
    }
    // Run-level filters as one subquery on runs (and run_labels), not a join per row.
    const runWhere: string[] = [];
    if (f.workflow) runWhere.push(`workflow = ${arg(f.workflow)}`);
    if (f.namespace) runWhere.push(`namespace = ${arg(f.namespace)}`);
    if (f.namespaces) runWhere.push(inNamespaces('namespace', f.namespaces, arg));
    for (const [k, v] of Object.entries(f.labels ?? {})) runWhere.push(`id IN (SELECT run_id FROM run_labels WHERE key = ${arg(k)} AND value = ${arg(v)})`);
    if (runWhere.length) where.push(`run_id IN (SELECT id FROM runs WHERE ${runWhere.join(' AND ')})`);
    if (f.since !== undefined) where.push(`started_at >= ${arg(f.since)}`);
    if (f.until !== undefined) where.push(`started_at < ${arg(f.until)}`);
    const order = f.runId !== undefined ? 'ORDER BY id' : 'ORDER BY id DESC';
    const sql = `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ${order} LIMIT ${arg(f.limit ?? 10_000)} OFFSET ${arg(f.offset ?? 0)}`;
    return (await this.all<JobRowDb>(sql, args)).map(toJob);
  }

  async stageCounts(runId: number): Promise<StageCount[]> {
    // count(chunk) counts the chunk jobs; grouped in the order of the index (run_id, state, stage, chunk)
    const [counts, reported] = await Promise.all([
      this.all<{ state: JobState; stage: string; own: string; chunks: string; first: string }>(
        `SELECT state, stage, count(*) - count(chunk) AS own, count(chunk) AS chunks, min(id) AS first FROM jobs WHERE run_id = $1 GROUP BY state, stage`,
        [runId],
      ),
      this.all<{ stage: string; chunk: boolean; progress: string }>(
        `SELECT stage, chunk IS NOT NULL AS chunk, sum(coalesce(progress, 0)) AS progress FROM jobs WHERE run_id = $1 AND state = 'running' GROUP BY 1, 2`,
        [runId],
      ),
    ]);
    return stageCountsFrom(
      counts.map((r) => ({ state: r.state, stage: r.stage, own: Number(r.own), chunks: Number(r.chunks), first: Number(r.first) })),
      reported.map((r) => ({ stage: r.stage, chunk: r.chunk, progress: Number(r.progress) })),
    );
  }

  private async jobRowByPublicId(c: Q | pg.Pool, id: string, lock = false): Promise<JobRowDb | undefined> {
    const p = parseJobId(id);
    if (!p) return undefined;
    return (
      await c.query<JobRowDb>(`SELECT * FROM jobs WHERE run_id = $1 AND task = $2 AND coalesce(chunk, -1) = $3 ${lock ? 'FOR UPDATE' : ''}`, [
        p.runId,
        p.task,
        p.chunk ?? -1,
      ])
    ).rows[0];
  }

  async getJob(id: string): Promise<Job | null> {
    const r = await this.jobRowByPublicId(this.pool, id);
    return r ? toJob(r) : null;
  }

  async listAttempts(jobId: string): Promise<Attempt[]> {
    const j = await this.jobRowByPublicId(this.pool, jobId);
    if (!j) throw new NotFoundError(`no job ${jobId}`);
    return (
      await this.all<AttemptRowDb>(`SELECT a.*, j.run_id, j.task, j.chunk FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.job_id = $1 ORDER BY a.id`, [j.id])
    ).map(toAttempt);
  }

  async cancelJob(id: string, opts: { clean?: boolean } = {}): Promise<Job> {
    const now = this.clock.now();
    await this.tx(async (c, signal) => {
      const j = await this.jobRowByPublicId(c, id, true);
      if (!j) throw new NotFoundError(`no job ${id}`);
      if (!['pending', 'queued', 'running', 'retrying'].includes(j.state)) throw new ConflictError(`job ${id} has already ${j.state}`);
      const fences = await this.cancelJobRows(c, signal, [{ id: j.id, fence: j.fence, state: j.state }], now, opts.clean === true);
      if (fences.length) signal({ type: 'revoked', fences });
      await this.settle(c, signal, [], [j.id], [], now);
      return j.run_id;
    }).then((runId) => this.finishRunAfterCommit(runId));
    return (await this.getJob(id))!;
  }

  // --------------------------------------------------------- worker transitions

  async registerWorker(w: WorkerInfo): Promise<void> {
    const now = this.clock.now();
    await this.tx(async (c, signal) => {
      await c.query(prepared(
      `INSERT INTO workers (name, host, pid, queues, slots, cpu, memory, resources, state, started_at, heartbeat_at, unix_user)
       VALUES ($1, $2, $3, $4, $5, $7, $8, $9, 'active', $6, $6, $10)
       ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, queues = excluded.queues, slots = excluded.slots,
         cpu = excluded.cpu, memory = excluded.memory, resources = excluded.resources, stop_mode = NULL, unix_user = excluded.unix_user,
         state = 'active', started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
      [w.name, w.host, w.pid, JSON.stringify(w.queues), w.slots, now, w.resources.cpu, w.resources.memoryBytes, JSON.stringify(w.resources.custom), w.unixUser ?? null],
      ));
      await this.outboxEvent(c, signal, workerEvent(w.name, 'online', registeredReason(w), now));
    });
  }

  /** A worker's or a service's event, in the transaction of its transition. */
  private async outboxEvent(c: Q, signal: (s: StoreSignal) => void, e: EventInsert): Promise<void> {
    await c.query(prepared(insertEventSql((i) => `$${i}`), eventValues(e)));
    signal({ type: 'events' });
  }

  async heartbeat(worker: string, fences: { fence: number; progress: number | null }[], leaseMs: number): Promise<number[]> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      const beat = await c.query(prepared(`UPDATE workers SET heartbeat_at = $1 WHERE name = $2 AND state != 'stopped'`, [now, worker]));
      if (beat.rowCount === 0) {
        // declared dead, yet alive: back, as what it was asked to be
        const back = (
          await c.query<{ state: WorkerRow['state'] }>(
            `UPDATE workers SET heartbeat_at = $1, state = ${REVIVED_STATE} WHERE name = $2 AND state = 'stopped' RETURNING state`,
            [now, worker],
          )
        ).rows[0];
        if (back) await this.outboxEvent(c, signal, workerEvent(worker, back.state === 'active' ? 'online' : 'draining', REVIVED_REASON, now));
      }
      if (fences.length === 0) return [];
      const renewed = new Set(
        (
          await c.query<{ fence: number }>(prepared(
            `UPDATE jobs SET lease_until = $1, progress = coalesce(v.progress, jobs.progress)
             FROM unnest($2::bigint[], $3::float8[]) AS v(fence, progress)
             WHERE jobs.fence = v.fence AND jobs.worker = $4 AND jobs.state = 'running' RETURNING jobs.fence`,
            [now + leaseMs, fences.map((f) => f.fence), fences.map((f) => f.progress), worker],
          ))
        ).rows.map((r) => r.fence),
      );
      return fences.map((f) => f.fence).filter((f) => !renewed.has(f));
    });
  }

  async stopWorker(worker: string, reason = 'exited'): Promise<void> {
    const now = this.clock.now();
    await this.tx(async (c, signal) => {
      const r = await c.query(prepared(`UPDATE workers SET state = 'stopped', heartbeat_at = $1 WHERE name = $2 AND state != 'stopped'`, [now, worker]));
      if (r.rowCount) await this.outboxEvent(c, signal, workerEvent(worker, 'stopped', reason, now));
    });
  }

  async declareWorkersDead(dead: { name: string; reason: string }[], actor = 'store'): Promise<string[]> {
    if (dead.length === 0) return [];
    const now = this.clock.now();
    return this.tx((c, signal) => this.markDead(c, signal, dead, actor, now));
  }

  /** Marks these workers stopped (those not yet), each with its `dead` event and audit entry. */
  private async markDead(c: Q, signal: (s: StoreSignal) => void, dead: { name: string; reason: string }[], actor: string, now: number): Promise<string[]> {
    const marked: string[] = [];
    for (const d of dead) {
      const r = await c.query(prepared(`UPDATE workers SET state = 'stopped' WHERE name = $1 AND state != 'stopped'`, [d.name]));
      if (!r.rowCount) continue;
      await this.outboxEvent(c, signal, workerEvent(d.name, 'dead', d.reason, now));
      await insertAudit(c, deadWorkerNote(d.name, d.reason, actor), now);
      marked.push(d.name);
    }
    return marked;
  }

  async listWorkers(): Promise<WorkerRow[]> {
    const rows = await this.all<WorkerRowDb>(`SELECT * FROM workers ORDER BY name`);
    const running = await this.all<RunningRowDb>(`SELECT worker, run_id, task, chunk, cpu, memory, resources FROM jobs WHERE state = 'running' ORDER BY id`);
    return rows.map((r) => {
      const mine = running.filter((j) => j.worker === r.name);
      return toWorker(r, mine.map((j) => formatJobId(j.run_id, j.task, j.chunk)), usedBy(mine));
    });
  }

  async requestWorkerStop(name: string, mode: WorkerStopMode): Promise<WorkerRow> {
    await this.tx(async (c, signal) => {
      const w = (await c.query<{ state: WorkerRow['state']; stop_mode: WorkerStopMode | null }>(`SELECT state, stop_mode FROM workers WHERE name = $1 FOR UPDATE`, [name])).rows[0];
      if (!w) throw new NotFoundError(`no worker ${name}`);
      if (w.state === 'stopped') throw new ConflictError(`worker ${name} has stopped`);
      const next = strongerStopMode(w.stop_mode, mode);
      await c.query(`UPDATE workers SET state = 'draining', stop_mode = $1 WHERE name = $2`, [next, name]);
      if (w.state !== 'draining' || next !== w.stop_mode) await this.outboxEvent(c, signal, workerEvent(name, 'draining', stopAskedReason(next), this.clock.now()));
      signal({ type: 'worker', name });
    });
    return (await this.listWorkers()).find((w) => w.name === name)!;
  }

  async workerStopMode(name: string): Promise<WorkerStopMode | null> {
    const w = (await this.pool.query<{ state: string; stop_mode: WorkerStopMode | null }>(prepared(`SELECT state, stop_mode FROM workers WHERE name = $1`, [name]))).rows[0];
    return w?.state === 'draining' ? w.stop_mode : null;
  }

  async cleanRequested(fence: number): Promise<boolean> {
    return (await this.pool.query<{ clean: boolean }>(prepared(`SELECT clean FROM attempts WHERE id = $1`, [fence]))).rows[0]?.clean === true;
  }

  async claimJobs(worker: ClaimRequest['worker'], limit: number, leaseMs: number, free?: FreeCapacity): Promise<ClaimedJob[]> {
    if (limit <= 0) return [];
    return (await this.claimWithIds(worker, limit, leaseMs, free)).claimed;
  }

  /** claimJobs, with the claimed rows' ids: the one-statement claim when it can decide, else the general one */
  private async claimWithIds(worker: ClaimRequest['worker'], limit: number, leaseMs: number, free?: FreeCapacity): Promise<Claimed> {
    const now = this.clock.now();
    // a worker that is not root filters by its Unix user: the general claim does
    if (worker.queues.length === 1 && now >= this.plainClaimsAfter && worker.unixUser === undefined) {
      const plain = await this.claimPlain(this.pool, null, { name: worker.name, host: worker.host, queue: worker.queues[0]! }, limit, leaseMs, free, now);
      if (typeof plain === 'object') return plain;
      // Pools or resources at the head of the queue: leave the one-statement claim alone for a while.
      if (plain === 'not-plain') this.plainClaimsAfter = now + 1000;
    }
    return this.tx((c, signal) => this.claimIn(c, signal, worker, limit, leaseMs, free, now));
  }


  /** The general claim (pools, resources, fallback queues) inside the caller's transaction. */
  private async claimIn(
    c: Q,
    signal: Sig,
    worker: ClaimRequest['worker'],
    limit: number,
    leaseMs: number,
    free: FreeCapacity | undefined,
    now: number,
  ): Promise<Claimed> {
    const none: Claimed = { claimed: [], ids: [] };
    {
      const window = Math.max(limit * 2, 8);
      const cols = `id, run_id, task, chunk, chunk_limit, resume, priority, enqueued_at, queues, pool, cpu, memory, resources`;
      // One ordered range scan of the claim index per queue (an IN list would sort every queued row).
      // A worker that is not root takes only jobs of namespaces mapped to no user or to its own ($3).
      const mine = worker.unixUser === undefined ? '' : RUN_AS_FILTER;
      const user = worker.unixUser === undefined ? [] : [worker.unixUser];
      const primary: CandidateRowDb[] = [];
      for (const queue of worker.queues)
        primary.push(
          ...(
            await c.query<CandidateRowDb>(
              prepared(
                `SELECT ${cols} FROM jobs WHERE state = 'queued' AND queue = $1${mine}
                 ORDER BY priority DESC, resume DESC, enqueued_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
                [queue, window, ...user],
              ),
            )
          ).rows,
        );
      // Jobs this worker may take as a fallback; not needed while its own queues fill the window.
      const fallback =
        primary.length >= window
          ? []
          : (
        await c.query<CandidateRowDb>(
          prepared(
            `SELECT ${cols} FROM jobs WHERE state = 'queued' AND has_fallback = 1 AND NOT (queue = ANY($1::text[]))
               AND queues::jsonb ?| $1::text[]${mine}
             ORDER BY priority DESC, resume DESC, enqueued_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
            [worker.queues, window, ...user],
          ),
        )
      ).rows;
      const candidates = mergeCandidates(primary, fallback).slice(0, window);
      if (candidates.length === 0) return none;
      const poolNames = [...new Set(candidates.map((x) => x.pool).filter((p): p is string => p !== null))].sort();
      const pools = new Map<string, { slots: number | null; running: number }>();
      if (poolNames.length) {
        // Locking the pool rows serializes claims into one pool across workers; the count after the lock sees every earlier claim.
        for (const p of (await c.query<{ name: string; slots: number | null }>(prepared(`SELECT name, slots FROM pools WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`, [poolNames]))).rows)
          pools.set(p.name, { slots: p.slots, running: 0 });
        for (const r of (
          await c.query<{ pool: string; n: number }>(prepared(`SELECT pool, count(*)::int AS n FROM jobs WHERE state = 'running' AND pool = ANY($1::text[]) GROUP BY pool`, [poolNames]))
        ).rows) {
          const p = pools.get(r.pool);
          if (p) p.running = r.n;
        }
      }
      let live: LiveWorker[] = [];
      const needsLive = candidates.some((x) => (JSON.parse(x.queues) as string[]).findIndex((q) => worker.queues.includes(q)) > 0);
      if (needsLive) {
        const ws = (await c.query<WorkerRowDb>(prepared(`SELECT * FROM workers WHERE state = 'active' AND heartbeat_at >= $1`, [now - 2 * leaseMs]))).rows;
        const running = (await c.query<RunningRowDb>(`SELECT worker, run_id, task, chunk, cpu, memory, resources FROM jobs WHERE state = 'running'`)).rows;
        live = liveWorkersFrom(ws, running);
      }
      // A task's `concurrency`: its chunk claims serialize on a lock of their own (not the main row, which completions update).
      const groups = new Map<string, { slots: number | null; running: number }>();
      for (const x of candidates) {
        const g = chunkGroup(x);
        if (!g || groups.has(g)) continue;
        await c.query(prepared(`SELECT pg_advisory_xact_lock($1::int, hashtext($2))`, [x.run_id, x.task]));
        const n = (
          await c.query<{ n: number }>(
            prepared(`SELECT count(*)::int AS n FROM jobs WHERE run_id = $1 AND task = $2 AND state = 'running' AND chunk IS NOT NULL`, [x.run_id, x.task]),
          )
        ).rows[0]!.n;
        groups.set(g, { slots: x.chunk_limit, running: n });
      }
      const chosen = selectClaims(
        candidates.map((x) => ({ id: x.id, queues: JSON.parse(x.queues) as string[], pool: x.pool, need: needOf(x), group: chunkGroup(x) })),
        { worker, limit, free: free ?? null, pools, groups, liveWorkers: () => live },
      );
      if (chosen.length === 0) return none;
      // Attempts, job rows, outbox events and the runs' parameters in one statement.
      const taken = (
        await c.query<ClaimRowDb>(prepared(
          `WITH ${CLAIM_CHOSEN}
           ${CLAIMED_ROWS}`,
          [chosen, worker.name, worker.host, now, now + leaseMs],
        ))
      ).rows;
      if (taken.length === 0) return none;
      signal({ type: 'events' });
      const ids = taken.map((t) => t.id);
      return { claimed: await this.claimedJobs(c, taken), ids };
    }
  }

  /**
   * The common claim in one statement, no explicit transaction (one round trip
   * instead of four): a worker of one queue takes the head of its queue when
   * every candidate is plain — no pool, no custom resources — and all of them
   * fit its free cpu and memory together. Otherwise it takes nothing and the
   * general claim decides (pools, partial fits, jobs listing this queue second).
   */
  private async claimPlain(
    q: Q | pg.Pool,
    /** inside a transaction: its signal function; null: announce the events hint here */
    signal: Sig | null,
    worker: { name: string; host: string; queue: string },
    limit: number,
    leaseMs: number,
    free: FreeCapacity | undefined,
    now: number,
  ): Promise<Claimed | 'not-plain' | 'empty'> {
    const r = await q.query<(ClaimRowDb | { [K in keyof ClaimRowDb]: null }) & { candidates: number; plain: boolean; fallback: boolean }>(
      prepared(
        `WITH cand AS (
           SELECT id, attempts, pool, cpu, memory, resources, chunk, chunk_limit FROM jobs WHERE state = 'queued' AND queue = $1
           ORDER BY priority DESC, resume DESC, enqueued_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
         ), verdict AS (
           SELECT count(*)::int AS candidates,
             coalesce(bool_and(pool IS NULL AND resources = '{}' AND (chunk IS NULL OR chunk_limit IS NULL)), true) AND coalesce(sum(cpu), 0) <= $3
               AND ($4::bigint IS NULL OR coalesce(sum(memory), 0) <= $4) AS plain
           FROM cand
         ), ${CLAIM_PLAIN}
         SELECT t.*, verdict.candidates, verdict.plain,
           -- only then is the general claim worth a transaction on an empty queue head
           EXISTS (SELECT 1 FROM jobs f WHERE f.state = 'queued' AND f.has_fallback = 1 AND f.queue <> $1 AND f.queues::jsonb ? $1) AS fallback
         FROM verdict LEFT JOIN (${CLAIMED_ROWS}) t ON true`,
        [worker.queue, limit, free ? free.cpu + 1e-9 : Number.MAX_SAFE_INTEGER, free?.memoryBytes ?? null, worker.name, worker.host, now, now + leaseMs],
      ),
    );
    const head = r.rows[0];
    if (!head || !head.plain) return 'not-plain';
    const taken = r.rows.filter((x): x is ClaimRowDb & { candidates: number; plain: boolean; fallback: boolean } => x.id !== null);
    // An empty queue: jobs that list this queue second are the general claim's to find.
    if (taken.length === 0) return head.candidates === 0 && head.fallback ? 'empty' : { claimed: [], ids: [] };
    if (signal) signal({ type: 'events' });
    else {
      this.emitter.emit('signal', { type: 'events' } satisfies StoreSignal);
      this.notifyReaders('events');
    }
    const ids = taken.map((t) => t.id);
    return { claimed: await this.claimedJobs(q, taken), ids };
  }

  /** Claimed rows in claim order, with the outputs and results of the tasks each reads. */
  private async claimedJobs(c: Q | pg.Pool, taken: ClaimRowDb[]): Promise<ClaimedJob[]> {
    taken.sort((a, b) => b.priority - a.priority || (a.enqueued_at ?? 0) - (b.enqueued_at ?? 0) || a.id - b.id);
    const chunkLists = new Map<number, ClaimedJob['chunks']>();
    for (const row of taken)
      if (row.chunked === 1)
        chunkLists.set(
          row.id,
          chunksOf(
            (
              await c.query<{ outputs: string; result: string | null }>(
                prepared(`SELECT outputs, result FROM jobs WHERE run_id = $1 AND task = $2 AND chunk IS NOT NULL ORDER BY chunk`, [row.run_id, row.task]),
              )
            ).rows,
          ),
        );
    return taken.map((row) => {
      const upstream: ClaimedJob['upstream'] = {};
      for (const u of row.upstream_rows ?? [])
        upstream[u.task] = { outputs: JSON.parse(u.outputs) as Record<string, string>, result: u.result === null ? null : (JSON.parse(u.result) as unknown) };
      const { run_params, run_logical_date, run_force, has_dependents, upstream_rows: _upstream, ...jobRow } = row;
      if (!has_dependents) this.leafFences.add(row.fence!);
      const claimed: ClaimedJob = {
        fence: row.fence!,
        job: toJob(jobRow as JobRowDb),
        run: { id: row.run_id, params: JSON.parse(run_params) as Record<string, unknown>, logicalDate: run_logical_date, force: run_force === 1 },
        upstream,
        hasDependents: has_dependents,
      };
      const chunks = chunkLists.get(row.id);
      if (chunks) claimed.chunks = chunks;
      return claimed;
    });
  }

  async releaseAttempt(fence: number, reason: string): Promise<boolean> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      const j = (await c.query<{ id: number }>(prepared(`SELECT id FROM jobs WHERE fence = $1 AND state = 'running' FOR UPDATE`, [fence]))).rows[0];
      if (!j) return false;
      await c.query(prepared(`UPDATE attempts SET state = 'lost', finished_at = $1, error = $2 WHERE id = $3`, [now, reason, fence]));
      await c.query(prepared(`UPDATE jobs SET state = 'queued', fence = NULL, lease_until = NULL, worker = NULL WHERE id = $1`, [j.id]));
      await this.jobEvents(c, signal, [j.id], now);
      signal({ type: 'queued' });
      return true;
    });
  }

  async setAttemptPid(fence: number, pid: number): Promise<void> {
    await this.pool.query(prepared(`UPDATE attempts SET pid = $1 WHERE id = $2`, [pid, fence]));
  }

  async assertCurrent(fence: number, renewLeaseMs?: number): Promise<void> {
    const ok =
      renewLeaseMs === undefined
        ? (await this.one<{ state: JobState }>(`SELECT state FROM jobs WHERE fence = $1`, [fence]))?.state === 'running'
        : ((await this.pool.query(prepared(`UPDATE jobs SET lease_until = $1 WHERE fence = $2 AND state = 'running'`, [this.clock.now() + renewLeaseMs, fence]))).rowCount ?? 0) === 1;
    if (!ok) throw new StaleFenceError(fence, 'its job was cancelled, reaped or taken over');
  }

  async saveCheckpoint(fence: number, data: unknown): Promise<void> {
    const json = checkpointJson(data);
    // resume follows the checkpoint: it only orders queued jobs, so setting it now covers every way back to the queue.
    const r = await this.pool.query(
      prepared(`UPDATE jobs SET checkpoint = $1, resume = $2 WHERE fence = $3 AND state = 'running'`, [json, json === null ? 0 : 1, fence]),
    );
    if ((r.rowCount ?? 0) !== 1) throw new StaleFenceError(fence, 'a checkpoint of an attempt that no longer owns its job');
  }

  async completeAttempt(fence: number, outcome: AttemptOutcome, lines: LogLine[] = []): Promise<Job> {
    const [r] = await this.completeAttempts([{ fence, outcome, lines }]);
    if (r instanceof StaleFenceError) throw r;
    return r!;
  }

  async completeAttempts(items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[]): Promise<(Job | StaleFenceError)[]> {
    const now = this.clock.now();
    const checkRuns = new Set<number>();
    const leaves = items.every((it) => (it.outcome.state === 'succeeded' || it.outcome.state === 'skipped') && this.leafFences.has(it.fence));
    for (const it of items) this.leafFences.delete(it.fence);
    if (this.leafFences.size > 100_000) this.leafFences.clear(); // fences of attempts that ended elsewhere (reaped); a miss only costs a transaction
    if (leaves) {
      // Successes of jobs nothing depends on: the one statement is the whole transition.
      const signals: (StoreSignal | Promoted)[] = [];
      const r = await this.completeDone(this.pool, (sig) => signals.push(sig), items as DoneItem[], now, false);
      for (const sig of new Set(signals.map((x) => x.type)))
        if (sig === 'events' || sig === 'logs') {
          this.emitter.emit('signal', { type: sig } satisfies StoreSignal);
          this.notifyReaders(sig);
        }
      for (const runId of r.checkRuns) await this.finishRunAfterCommit(runId);
      return items.map((it) => {
        const row = r.rows.get(it.fence);
        return row ? toJob(row) : new StaleFenceError(it.fence, 'its job was cancelled, reaped or taken over');
      });
    }
    const settled = await this.tryCompleteDoneSettled(items, now);
    if (settled) {
      if (settled.promoted.length) this.announceQueued();
      for (const runId of settled.checkRuns) await this.finishRunAfterCommit(runId);
      return settled.completed;
    }
    const rows = await this.tx((c, signal) => this.completeIn(c, signal, items, now, checkRuns));
    for (const runId of checkRuns) await this.finishRunAfterCommit(runId);
    return rows.map((r) => (r instanceof StaleFenceError ? r : toJob(r)));
  }

  /** completeDoneSettled when every item is a plain success (no split's chunks to create), with its jobs or stale fences in the items' order */
  private async tryCompleteDoneSettled(
    items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[],
    now: number,
  ): Promise<{ completed: (Job | StaleFenceError)[]; checkRuns: Set<number>; promoted: number[] } | null> {
    if (!items.every((it) => it.outcome.state === 'skipped' || (it.outcome.state === 'succeeded' && !it.outcome.chunks))) return null;
    const r = await this.completeDoneSettled(items as DoneItem[], now);
    if (!r) return null;
    const completed = items.map((it) => {
      const row = r.rows.get(it.fence);
      return row ? toJob(row) : new StaleFenceError(it.fence, 'its job was cancelled, reaped or taken over');
    });
    return { completed, checkRuns: r.checkRuns, promoted: r.promoted };
  }

  async completeAndClaim(
    items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[],
    claimFor: () => Promise<ClaimRequest | null>,
  ): Promise<{ completed: (Job | StaleFenceError)[]; claimed: ClaimedJob[] }> {
    const checkRuns = new Set<number>();
    const promoted = new Set<number>();
    let completed: (Job | StaleFenceError)[];
    const leaves = items.every((it) => (it.outcome.state === 'succeeded' || it.outcome.state === 'skipped') && this.leafFences.has(it.fence));
    if (leaves) {
      // Nothing becomes ready: the completion's one statement (it checks its runs' end itself), then the usual claim.
      completed = await this.completeAttempts(items);
    } else {
      for (const it of items) this.leafFences.delete(it.fence);
      const now = this.clock.now();
      const settled = await this.tryCompleteDoneSettled(items, now);
      if (settled) {
        completed = settled.completed;
        for (const id of settled.promoted) promoted.add(id);
        for (const runId of settled.checkRuns) checkRuns.add(runId);
      } else {
        const rows = await this.tx((c, signal) =>
          // `queued` is held back: other workers are woken only for what this one leaves.
          this.completeIn(
            c,
            (x) => {
              if (x.type === 'promoted') for (const id of x.jobs) promoted.add(id);
              else if (x.type !== 'queued') signal(x);
            },
            items,
            now,
            checkRuns,
          ),
        );
        completed = rows.map((r) => (r instanceof StaleFenceError ? r : toJob(r)));
      }
    }
    // The claim comes after the commit, not inside: completions of a join's many upstreams all lock the
    // join's row, and a claim inside would hold that lock one round trip longer for each.
    let got: Claimed = { claimed: [], ids: [] };
    try {
      const claim = await claimFor();
      if (claim && claim.limit > 0) got = await this.claimWithIds(claim.worker, claim.limit, claim.leaseMs, claim.free);
    } catch {
      // The completions are committed: they are not to be retried for a failed claim. The workers here
      // are woken to claim on their own (with their retries), the others by the announcement below.
      this.emitter.emit('signal', { type: 'queued' } satisfies StoreSignal);
    }
    // Ready jobs the claim did not take are announced.
    for (const id of got.ids) promoted.delete(id);
    if (promoted.size) this.announceQueued();
    for (const runId of checkRuns) await this.finishRunAfterCommit(runId);
    return { completed, claimed: got.claimed };
  }


  /** Wakes the workers of this process and, with NOTIFY, of the others: jobs were queued by a committed transaction. */
  private announceQueued(): void {
    this.emitter.emit('signal', { type: 'queued' } satisfies StoreSignal);
    if (this.closed) return;
    this.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, `${this.instance}|${JSON.stringify({ type: 'queued' } satisfies StoreSignal)}`]).catch(() => undefined);
  }

  /**
   * Successes whose dependents can only be queued (none pending has `any_failed`
   * or a failed upstream: nothing can be skipped, nothing cascades) in one
   * statement, no explicit transaction: attempts, jobs, log lines, events, the
   * dependents' counters, and the dependents now ready queued with their events.
   * The dependents are locked (after the completing jobs, the order every
   * transition takes) before they are judged, so a sibling's failure cannot slip
   * in between. null: some dependent could be skipped — nothing was written; the
   * caller takes the general path. `promoted`: the jobs queued.
   */
  private async completeDoneSettled(items: DoneItem[], now: number): Promise<{ rows: Map<number, JobRowDb>; checkRuns: Set<number>; promoted: number[] } | null> {
    const hasLines = items.some((it) => (it.lines ?? []).length > 0);
    const ready = `jobs.state = 'pending' AND jobs.deps_ok + x.n + jobs.deps_bad = jobs.deps_total
      AND EXISTS (SELECT 1 FROM runs r WHERE r.id = jobs.run_id AND r.state = 'running')`;
    const r = await this.pool.query<(JobRowDb & { done_fence: number; others_waiting: boolean }) & { ok: boolean; promoted: number[] }>(
      prepared(
        `WITH ${DONE_ITEMS}, lk AS (
           SELECT dj.id, dj.state, dj.trigger_rule, dj.deps_bad FROM jobs dj
           WHERE dj.id IN (SELECT jd.job_id FROM job_deps jd JOIN j ON jd.upstream_id = j.id) ORDER BY dj.id FOR UPDATE
         ), g AS (
           SELECT coalesce(bool_and(lk.state <> 'pending' OR (lk.trigger_rule <> 'any_failed' AND lk.deps_bad = 0)), true) AS ok FROM lk
         ), ${doneWrites('g')}, d AS (
           UPDATE jobs SET deps_ok = jobs.deps_ok + x.n,
             state = CASE WHEN ${ready} THEN 'queued' ELSE jobs.state END,
             enqueued_at = CASE WHEN ${ready} THEN $6 ELSE jobs.enqueued_at END
           FROM (SELECT jd.job_id, count(*)::int AS n FROM job_deps jd JOIN u ON jd.upstream_id = u.id GROUP BY jd.job_id) x
           WHERE jobs.id = x.job_id RETURNING jobs.id, jobs.run_id, jobs.state
         ), e2 AS (
           INSERT INTO events (ts, kind, run_id, job_id, state) SELECT $6, 'job', run_id, id, 'queued' FROM d WHERE d.state = 'queued' ORDER BY id
         )
         SELECT u.*, g.ok, (SELECT coalesce(array_agg(id), '{}') FROM d WHERE d.state = 'queued') AS promoted,
           (SELECT w.id FROM jobs w WHERE w.run_id = u.run_id AND w.state IN ('pending', 'queued', 'retrying')
            ORDER BY w.run_id DESC, w.id DESC LIMIT 1) IS NOT NULL AS others_waiting
         FROM g LEFT JOIN u ON true`,
        doneValues(items, now),
      ),
    );
    const head = r.rows[0];
    if (!head?.ok) return null;
    const rows = new Map<number, JobRowDb>();
    const checkRuns = new Set<number>();
    for (const row of r.rows) {
      if (row.id === null) continue; // every fence was stale
      const { ok: _ok, promoted: _p, others_waiting, done_fence, ...job } = row;
      rows.set(done_fence, job as JobRowDb);
      if (!others_waiting) checkRuns.add(row.run_id);
    }
    if (rows.size) {
      this.emitter.emit('signal', { type: 'events' } satisfies StoreSignal);
      this.notifyReaders('events');
      if (hasLines) {
        this.emitter.emit('signal', { type: 'logs' } satisfies StoreSignal);
        this.notifyReaders('logs');
      }
    }
    return { rows, checkRuns, promoted: head.promoted.map(Number) }; // int8[] comes as strings
  }

  /** completeAttempts' general case inside the caller's transaction; the runs to check for their end go into `checkRuns` */
  private async completeIn(
    c: Q,
    signal: Sig,
    items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[],
    now: number,
    checkRuns: Set<number>,
  ): Promise<(JobRowDb | StaleFenceError)[]> {
    {
      const byFence = new Map<number, JobRowDb | StaleFenceError>();
      const done = items.filter((it): it is DoneItem => it.outcome.state === 'succeeded' || it.outcome.state === 'skipped');
      // Split steps first: their chunks must exist before the split's success is counted into the main job.
      for (const it of done) if (it.outcome.state === 'succeeded' && it.outcome.chunks) await this.createChunks(c, signal, it.fence, it.outcome.chunks, now);
      if (done.length) {
        const r = await this.completeDone(c, signal, done, now, true);
        for (const [fence, row] of r.rows) byFence.set(fence, row);
        for (const runId of r.checkRuns) checkRuns.add(runId);
      }
      for (const it of items) {
        if (it.outcome.state === 'succeeded' || it.outcome.state === 'skipped') continue;
        try {
          const row = await this.completeFailed(c, signal, it.fence, it.outcome, it.lines ?? [], now);
          byFence.set(it.fence, row);
          checkRuns.add(row.run_id);
        } catch (e) {
          if (!(e instanceof StaleFenceError)) throw e;
          byFence.set(it.fence, e);
        }
      }
      return items.map((it) => byFence.get(it.fence) ?? new StaleFenceError(it.fence, 'its job was cancelled, reaped or taken over'));
    }
  }

  /**
   * The common case, attempts that succeeded or were skipped as done, all in one
   * statement however many: fence check and lock, attempts, jobs, log lines,
   * outbox events and the dependents' counters. A fence that is not current
   * comes back without a row. A run goes into `checkRuns` unless it still had
   * jobs waiting in this snapshot: a later completion (or the scheduler's sweep)
   * will see it end.
   */
  private async completeDone(
    c: Q | pg.Pool,
    signal: Sig,
    items: DoneItem[],
    now: number,
    inTransaction: boolean,
  ): Promise<{ rows: Map<number, JobRowDb>; checkRuns: Set<number> }> {
    const hasLines = items.some((it) => (it.lines ?? []).length > 0);
    const r = await c.query<JobRowDb & { done_fence: number; touched: number[]; others_waiting: boolean }>(
      prepared(
        `WITH ${DONE_ITEMS}, ${doneWrites(null)}, d AS (
           UPDATE jobs SET deps_ok = jobs.deps_ok + x.n
           FROM (SELECT jd.job_id, count(*)::int AS n FROM job_deps jd JOIN u ON jd.upstream_id = u.id GROUP BY jd.job_id) x
           WHERE jobs.id = x.job_id RETURNING jobs.id
         )
         SELECT u.*, (SELECT coalesce(array_agg(id), '{}') FROM d) AS touched,
           (SELECT w.id FROM jobs w WHERE w.run_id = u.run_id AND w.state IN ('pending', 'queued', 'retrying')
            ORDER BY w.run_id DESC, w.id DESC LIMIT 1) IS NOT NULL AS others_waiting
         FROM u`,
        doneValues(items, now),
      ),
    );
    const rows = new Map<number, JobRowDb>();
    const checkRuns = new Set<number>();
    if (r.rows.length === 0) return { rows, checkRuns };
    signal({ type: 'events' });
    if (hasLines) signal({ type: 'logs' });
    const skippedBefore = this.skippedBySettle;
    const touched = r.rows[0]!.touched;
    if (touched.length) {
      // Only leaves complete outside a transaction; a dependent here means job_deps changed under a claim.
      if (!inTransaction) throw new Error(`internal: a completion outside a transaction touched dependents ${touched.join(', ')}`);
      await this.settle(c as Q, signal, [], [], touched, now);
    }
    // Dependents skipped just now (any_failed with nothing failed) may have ended a run here.
    const skippedNow = this.skippedBySettle !== skippedBefore;
    for (const row of r.rows) {
      const { touched: _t, others_waiting, done_fence, ...job } = row;
      rows.set(done_fence, job as JobRowDb);
      if (!others_waiting || skippedNow) checkRuns.add(row.run_id);
    }
    return { rows, checkRuns };
  }

  /**
   * A split step succeeded: one queued job per element of its array, each a
   * dependency of the task's main job (its combine), which then waits for the
   * split and every chunk. Chunks of an earlier split of the task are replaced.
   * Runs before the split's own completion is counted into the main job, so an
   * empty array leaves the main job waiting only for the split: it queues next.
   * A stale fence does nothing here (its completion is refused after).
   */
  private async createChunks(c: Q, signal: Sig, fence: number, chunks: ChunkPlan[], now: number): Promise<void> {
    const split = (await c.query<JobRowDb>(prepared(`SELECT * FROM jobs WHERE fence = $1 AND state = 'running' FOR UPDATE`, [fence]))).rows[0];
    if (!split) return;
    const task = split.task.endsWith(SPLIT_SUFFIX) ? split.task.slice(0, -SPLIT_SUFFIX.length) : null;
    const main =
      task === null
        ? undefined
        : (await c.query<JobRowDb>(prepared(`SELECT * FROM jobs WHERE run_id = $1 AND task = $2 AND chunk IS NULL FOR UPDATE`, [split.run_id, task]))).rows[0];
    if (!main || main.chunked !== 1) throw new Error(`job ${split.task} of run ${split.run_id} returned chunks but is not the split step of a split task`);
    await this.dropChunks(c, split.run_id, main.task);
    const ids = (
      await c.query<{ id: number }>(
        prepared(
          `INSERT INTO jobs (run_id, task, chunk, state, trigger_rule, deps_total, priority, queue, queues, has_fallback, cpu, memory, resources,
             pool, max_retries, retry_delay_ms, retry_backoff, retry_max_delay_ms, force, outputs, refs, enqueued_at, chunk_value, chunk_limit)
           SELECT m.run_id, m.task, x.n - 1, 'queued', 'all_success', 0, m.priority, m.queue, m.queues, m.has_fallback, m.cpu, m.memory, m.resources,
             m.pool, m.max_retries, m.retry_delay_ms, m.retry_backoff, m.retry_max_delay_ms, m.force, x.outputs, m.refs, $2, x.value, m.chunk_limit
           FROM jobs m, unnest($3::text[], $4::text[]) WITH ORDINALITY AS x(outputs, value, n) WHERE m.id = $1 ORDER BY x.n
           RETURNING id`,
          [main.id, now, chunks.map((x) => JSON.stringify(x.outputs)), chunks.map((x) => JSON.stringify(x.value ?? null))],
        ),
      )
    ).rows.map((r) => r.id);
    if (ids.length) await c.query(prepared(`INSERT INTO job_deps (upstream_id, job_id) SELECT unnest($1::bigint[]), $2`, [ids, main.id]));
    await c.query(prepared(`UPDATE jobs SET deps_total = $1, deps_ok = 0, deps_bad = 0 WHERE id = $2`, [1 + ids.length, main.id]));
    if (ids.length) {
      await this.jobEvents(c, signal, ids, now);
      signal({ type: 'promoted', jobs: ids });
      signal({ type: 'queued' });
    }
    // statistics for the claim and completion plans, after commit (ANALYZE inside would see the rows but hold them up)
    if (ids.length >= ANALYZE_AFTER_JOBS) setTimeout(() => void this.pool.query('ANALYZE jobs').catch(() => undefined), 0);
  }

  /** Deletes the chunk jobs (attempts, logs, dependency rows) of one split task of a run, or of all of them (task null). */
  private async dropChunks(c: Q, runId: number, task: string | null): Promise<void> {
    const old = `SELECT id FROM jobs WHERE run_id = $1 AND chunk IS NOT NULL AND ($2::text IS NULL OR task = $2)`;
    await c.query(prepared(`DELETE FROM job_deps WHERE upstream_id IN (${old})`, [runId, task]));
    await c.query(prepared(`DELETE FROM logs WHERE job_id IN (${old})`, [runId, task]));
    await c.query(prepared(`DELETE FROM attempts WHERE job_id IN (${old})`, [runId, task]));
    await c.query(prepared(`DELETE FROM jobs WHERE run_id = $1 AND chunk IS NOT NULL AND ($2::text IS NULL OR task = $2)`, [runId, task]));
  }

  /**
   * A failed or timed-out attempt, inside the caller's transaction: to `retrying`
   * while retries are left, else `failed` with its dependents settled. Throws
   * StaleFenceError (before writing anything) if the attempt is not current.
   */
  private async completeFailed(
    c: Q,
    signal: Sig,
    fence: number,
    outcome: Extract<AttemptOutcome, { state: 'failed' | 'timed_out' }>,
    lines: LogLine[],
    now: number,
  ): Promise<JobRowDb> {
    const j = (await c.query<JobRowDb>(prepared(`SELECT * FROM jobs WHERE fence = $1 FOR UPDATE`, [fence]))).rows[0];
    if (!j || j.state !== 'running') throw new StaleFenceError(fence, 'its job was cancelled, reaped or taken over');
    await this.insertLogs(c, signal, j, fence, lines);
    const { exitCode, error } = outcome;
    const cpuMs = outcome.usage?.cpuMs ?? null;
    const maxRss = outcome.usage?.maxRssBytes ?? null;
    await c.query(prepared(
      `UPDATE attempts SET state = $1, finished_at = $2, exit_code = $3, error = $4, cpu_ms = $6, max_rss_bytes = $7 WHERE id = $5`,
      [outcome.state, now, exitCode, error, fence, cpuMs, maxRss],
    ));
    const failures = j.failures + 1;
    let row: pg.QueryResult<JobRowDb>;
    if (outcome.retryable !== false && failures <= j.max_retries) {
      const delay = retryDelayMs(j, failures);
      row = await c.query<JobRowDb>(prepared(
        `UPDATE jobs SET state = 'retrying', failures = $1, run_after = $2, exit_code = $3, error = $4, fence = NULL, lease_until = NULL,
           cpu_ms = $6, max_rss_bytes = $7 WHERE id = $5 RETURNING *`,
        [failures, now + delay, exitCode, error, j.id, cpuMs, maxRss],
      ));
      await this.jobEvents(c, signal, [j.id], now);
      for (const n of failureNotes(j, fence, outcome, failures, delay, now + delay)) await insertAudit(c, n, now);
      signal({ type: 'retrying' });
    } else {
      for (const n of failureNotes(j, fence, outcome, failures, null, null)) await insertAudit(c, n, now);
      row = await c.query<JobRowDb>(prepared(
        `UPDATE jobs SET state = 'failed', failures = $1, finished_at = $2, exit_code = $3, error = $4, fence = NULL, lease_until = NULL,
           cpu_ms = $6, max_rss_bytes = $7 WHERE id = $5 RETURNING *`,
        [failures, now, exitCode, error, j.id, cpuMs, maxRss],
      ));
      await this.jobEvents(c, signal, [j.id], now);
      await this.settle(c, signal, [], [j.id], [], now);
    }
    // settling touches only dependents: the row the update returned is final
    return row.rows[0]!;
  }

  /**
   * Counts finished upstreams into their dependents (one grouped update each),
   * then queues or skips dependents whose upstreams have all settled; skips
   * cascade. Trigger rules: partitionSettled in ../rules.ts.
   */
  private async settle(c: Q, signal: Sig, good: number[], bad: number[], candidates: number[], now: number): Promise<void> {
    let touched = candidates;
    while (good.length || bad.length || touched.length) {
      for (const [col, ids] of [
        ['deps_ok', good],
        ['deps_bad', bad],
      ] as const) {
        if (ids.length === 0) continue;
        const r = await c.query<{ id: number }>(
          `UPDATE jobs SET ${col} = jobs.${col} + d.n
           FROM (SELECT job_id, count(*)::int AS n FROM job_deps WHERE upstream_id = ANY($1::bigint[]) GROUP BY job_id) AS d
           WHERE jobs.id = d.job_id RETURNING jobs.id`,
          [ids],
        );
        touched = [...touched, ...r.rows.map((x) => x.id)];
      }
      if (touched.length === 0) break;
      // Settled dependents queued or skipped, with their outbox events, in one statement.
      const verdicts = (
        await c.query<{ id: number; skipped: boolean }>(prepared(
          `WITH v AS (
             SELECT j.id, ${SETTLE_VERDICT_SQL} AS verdict FROM jobs j JOIN runs r ON r.id = j.run_id
             WHERE j.id = ANY($1::bigint[]) AND j.state = 'pending' AND j.deps_ok + j.deps_bad = j.deps_total AND r.state = 'running'
           ), q AS (
             UPDATE jobs SET state = 'queued', enqueued_at = $2 FROM v
             WHERE jobs.id = v.id AND v.verdict = 'queued' AND jobs.state = 'pending' RETURNING jobs.id, jobs.run_id, 'queued' AS state
           ), k AS (
             UPDATE jobs SET state = 'skipped', skip_reason = v.verdict, finished_at = $2, error = CASE v.verdict WHEN 'upstream' THEN $3 ELSE $4 END
             FROM v WHERE jobs.id = v.id AND v.verdict <> 'queued' AND jobs.state = 'pending' RETURNING jobs.id, jobs.run_id, 'skipped' AS state
           ), x AS (
             SELECT * FROM q UNION ALL SELECT * FROM k
           ), e AS (
             INSERT INTO events (ts, kind, run_id, job_id, state) SELECT $2, 'job', run_id, id, state FROM x ORDER BY id
           )
           SELECT id, state = 'skipped' AS skipped FROM x`,
          [[...new Set(touched)], now, SKIP_MESSAGES.upstream, SKIP_MESSAGES.trigger],
        ))
      ).rows;
      const queued = verdicts.filter((r) => !r.skipped).map((r) => r.id);
      const skipped = verdicts.filter((r) => r.skipped).map((r) => r.id);
      if (verdicts.length) signal({ type: 'events' });
      this.skippedBySettle += skipped.length;
      if (queued.length) {
        signal({ type: 'promoted', jobs: queued });
        signal({ type: 'queued' });
      }
      good = [];
      bad = skipped;
      touched = [];
    }
  }

  async appendLogs(fence: number, lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    await this.tx(async (c, signal) => {
      // FOR SHARE: a concurrent cancel or reap waits for these lines, or these wait and are refused.
      const j = (await c.query<{ id: number; run_id: number; state: JobState }>(prepared(`SELECT id, run_id, state FROM jobs WHERE fence = $1 FOR SHARE`, [fence]))).rows[0];
      if (!j || j.state !== 'running') throw new StaleFenceError(fence, 'log lines of an attempt that no longer owns its job');
      await this.insertLogs(c, signal, j, fence, lines);
    });
  }

  private async insertLogs(c: Q, signal: Sig, j: { id: number; run_id: number }, fence: number, lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    await c.query(prepared(
      `INSERT INTO logs (run_id, job_id, attempt_id, stream, ts, line) SELECT $1, $2, $3, * FROM unnest($4::text[], $5::bigint[], $6::text[])`,
      // PostgreSQL text cannot hold NUL bytes
      [j.run_id, j.id, fence, lines.map((l) => l.stream), lines.map((l) => l.ts), lines.map((l) => l.line.replace(/\0/g, ''))],
    ));
    signal({ type: 'logs' });
  }

  async readLogs(q: { runId?: number; jobId?: string; afterId?: number; limit?: number }): Promise<StoredLogLine[]> {
    const base = `SELECT l.id, l.stream, l.ts, l.line, j.run_id, j.task, j.chunk, a.number
      FROM logs l JOIN jobs j ON j.id = l.job_id JOIN attempts a ON a.id = l.attempt_id`;
    const after = q.afterId ?? 0;
    const limit = q.limit ?? 10_000;
    if (q.jobId !== undefined) {
      const j = await this.jobRowByPublicId(this.pool, q.jobId);
      if (!j) throw new NotFoundError(`no job ${q.jobId}`);
      return (await this.all<LogRowDb>(`${base} WHERE l.job_id = $1 AND l.id > $2 ORDER BY l.id LIMIT $3`, [j.id, after, limit])).map(toLogLine);
    }
    if (q.runId !== undefined) return (await this.all<LogRowDb>(`${base} WHERE l.run_id = $1 AND l.id > $2 ORDER BY l.id LIMIT $3`, [q.runId, after, limit])).map(toLogLine);
    throw new Error('readLogs needs a runId or a jobId');
  }

  // ---------------------------------------------------------- scheduler duties

  async promoteDueRetries(): Promise<number> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      const ids = (
        await c.query<{ id: number }>(prepared(`UPDATE jobs SET state = 'queued', enqueued_at = $1, run_after = NULL WHERE state = 'retrying' AND run_after <= $1 RETURNING id`, [now]))
      ).rows.map((r) => r.id);
      if (ids.length) {
        await this.jobEvents(c, signal, ids, now);
        signal({ type: 'queued' });
      }
      return ids.length;
    });
  }

  async nextRetryAt(): Promise<number | null> {
    return (await this.one<{ t: number | null }>(`SELECT min(run_after) AS t FROM jobs WHERE state = 'retrying'`))!.t;
  }

  async findLostAttempts(deadWorkers: string[]) {
    return (await this.all<LostCandidateDb>(LOST_SQL, [this.clock.now(), deadWorkers])).map(toLostCandidate);
  }

  async reapLostAttempts(deadWorkers: string[], onlyFences?: number[], actor = 'store') {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      await this.markDead(c, signal, deadWorkers.map((name) => ({ name, reason: 'named dead by the reaper of lost attempts' })), actor, now);
      const rows = (await c.query<LostCandidateDb>(`${LOST_SQL} FOR UPDATE OF j SKIP LOCKED`, [now, deadWorkers])).rows.filter(
        (r) => !onlyFences || onlyFences.includes(r.fence),
      );
      if (rows.length === 0) return [];
      const lease = rows.filter((r) => r.lease_until < now);
      const died = rows.filter((r) => r.lease_until >= now);
      for (const [set, why] of [
        [lease, 'lease expired (worker stopped heartbeating)'],
        [died, 'worker died or stopped'],
      ] as const)
        if (set.length)
          await c.query(prepared(`UPDATE attempts SET state = 'lost', finished_at = $1, error = $2 WHERE id = ANY($3::bigint[])`, [now, why, set.map((r) => r.fence)]));
      // The job goes back to the queue with its original enqueue time, so it is taken again first.
      await c.query(prepared(`UPDATE jobs SET state = 'queued', fence = NULL, lease_until = NULL, worker = NULL WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]));
      for (const r of rows) await insertAudit(c, reapNote(r, now, actor), now);
      await this.jobEvents(
        c,
        signal,
        rows.map((r) => r.id),
        now,
      );
      signal({ type: 'revoked', fences: rows.map((r) => r.fence) });
      signal({ type: 'queued' });
      return rows.map(toLostCandidate);
    });
  }

  async listLostAttempts(host: string, since: number) {
    const rows = await this.all<LostRowDb>(
      `SELECT a.id, a.pid, j.run_id, j.task, j.chunk, j.outputs FROM attempts a JOIN jobs j ON j.id = a.job_id
       WHERE a.host = $1 AND a.state = 'lost' AND a.finished_at >= $2 ORDER BY a.id`,
      [host, since],
    );
    return rows.map(toLost);
  }

  async updateWaitingReasons(workerTimeoutMs: number): Promise<number> {
    const now = this.clock.now();
    const workers = (await this.all<WorkerRowDb>(`SELECT * FROM workers WHERE state = 'active' AND heartbeat_at >= $1`, [now - workerTimeoutMs])).map(offeredBy);
    // grouped by the Unix user its namespace runs as too: only root workers and that user's may take it
    const groups = await this.all<WaitingGroupDb & { run_user: string | null }>(
      `SELECT j.queues, j.cpu, j.memory, j.resources, j.waiting_reason, n.run_user, count(*)::int AS n
       FROM jobs j JOIN runs r ON r.id = j.run_id LEFT JOIN namespaces n ON n.namespace = r.namespace WHERE j.state = 'queued'
       GROUP BY j.queues, j.cpu, j.memory, j.resources, j.waiting_reason, n.run_user`,
    );
    let changed = 0;
    for (const g of groups) {
      const queues = JSON.parse(g.queues) as string[];
      const reason = unfittableReason(queues, needOf(g), workers) ?? runAsReason(queues, g.run_user, workers);
      if (reason === g.waiting_reason) continue;
      const r = await this.pool.query(prepared(
        `UPDATE jobs SET waiting_reason = $1 WHERE state = 'queued' AND queues = $2 AND cpu = $3 AND memory IS NOT DISTINCT FROM $4
           AND resources = $5 AND waiting_reason IS NOT DISTINCT FROM $6
           AND (SELECT n.run_user FROM runs r LEFT JOIN namespaces n ON n.namespace = r.namespace WHERE r.id = jobs.run_id) IS NOT DISTINCT FROM $7`,
        [reason, g.queues, g.cpu, g.memory, g.resources, g.waiting_reason, g.run_user],
      ));
      changed += r.rowCount ?? 0;
    }
    return changed;
  }

  async acquireLeadership(role: string, holder: string, ttlMs: number, takeoverFrom?: string): Promise<boolean> {
    const now = this.clock.now();
    // The row as it was is locked, so a racing taker waits and then sees ours; a lease going from
    // another holder to this one is a takeover, recorded with it.
    return this.tx(async (c) => {
      const prev = (await c.query<{ holder: string; until: number }>(prepared(`SELECT holder, until FROM leaders WHERE role = $1 FOR UPDATE`, [role]))).rows[0];
      const r = await c.query(prepared(
        `INSERT INTO leaders (role, holder, until) VALUES ($1, $2, $3)
         ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until
         WHERE leaders.holder = excluded.holder OR leaders.until < $4 OR leaders.holder = $5`,
        [role, holder, now + ttlMs, now, takeoverFrom ?? null],
      ));
      const taken = (r.rowCount ?? 0) === 1;
      if (taken && prev && prev.holder !== holder) await insertAudit(c, takeoverNote(role, holder, prev, now, takeoverFrom), now);
      return taken;
    });
  }

  async currentLeader(role: string): Promise<{ holder: string; until: number } | null> {
    return (await this.one<{ holder: string; until: number }>(`SELECT holder, until FROM leaders WHERE role = $1`, [role])) ?? null;
  }

  async releaseLeadership(role: string, holder: string): Promise<void> {
    await this.pool.query(prepared(`DELETE FROM leaders WHERE role = $1 AND holder = $2`, [role, holder]));
  }

  // ------------------------------------------------------------------ schedules

  async startScheduledRun(tick: ScheduleTick, overlap: Overlap, input: CreateRunInput, note?: AuditNote): Promise<ScheduledRunResult> {
    const now = this.clock.now();
    type Outcome = { outcome: 'started'; id: number; jobs: number; cancelled: number[] } | Exclude<ScheduledRunResult, { outcome: 'started' }>;
    const key = [tick.namespace, tick.workflow, tick.schedule, tick.at];
    const where = 'namespace = $2 AND workflow = $3 AND schedule = $4 AND tick = $5';
    const r = await this.tx(async (c, signal): Promise<Outcome> => {
      if (!(await this.recordTick(c, tick, now))) return { outcome: 'duplicate' };
      // Overlap looks at the runs that were there when the tick came: runs created by a catch-up
      // of earlier missed ticks do not skip or cancel each other.
      const running = (
        await c.query<{ id: number }>(
          `SELECT r.id FROM runs r JOIN schedule_ticks t ON t.run_id = r.id
           WHERE r.namespace = $1 AND r.workflow = $2 AND r.state = 'running' AND r.created_at <= $4
             AND t.namespace = r.namespace AND t.workflow = r.workflow AND t.schedule = $3
           ORDER BY r.id`,
          [tick.namespace, tick.workflow, tick.schedule, tick.at],
        )
      ).rows.map((x) => x.id);
      if (overlap === 'skip' && running.length > 0) {
        await c.query(`UPDATE schedule_ticks SET outcome = 'skipped', reason = $1 WHERE ${where}`, [`overlap skip: run ${running.join(', ')} still running`, ...key]);
        return { outcome: 'skipped', running };
      }
      const cancelled: number[] = [];
      if (overlap === 'cancel_running')
        for (const id of running) {
          // Locked as cancelRun does (jobs, then the run), and rechecked: it may have ended since the read.
          const jobs = (
            await c.query<{ id: number; fence: number | null; state: JobState }>(
              `SELECT id, fence, state FROM jobs WHERE run_id = $1 AND state IN ${ACTIVE} ORDER BY id FOR UPDATE`,
              [id],
            )
          ).rows;
          const run = (await c.query<{ state: RunState; namespace: string; workflow: string }>(`SELECT state, namespace, workflow FROM runs WHERE id = $1 FOR UPDATE`, [id])).rows[0];
          if (run?.state !== 'running') continue;
          await this.cancelRunRow(c, signal, id, jobs, run, now);
          cancelled.push(id);
        }
      const made = await this.insertRun(c, signal, input, now);
      await c.query(`UPDATE schedule_ticks SET run_id = $1 WHERE ${where}`, [made.id, ...key]);
      if (note) await insertAudit(c, { ...note, runId: made.id }, now);
      return { outcome: 'started', id: made.id, jobs: made.jobs, cancelled };
    });
    if (r.outcome !== 'started') return r;
    if (r.jobs >= ANALYZE_AFTER_JOBS) void this.pool.query('ANALYZE jobs').catch(() => undefined);
    return { outcome: 'started', run: (await this.getRun(r.id))!, cancelled: r.cancelled };
  }

  async skipScheduleTick(tick: ScheduleTick, reason: string): Promise<boolean> {
    const now = this.clock.now();
    return this.tx((c) => this.recordTick(c, tick, now, 'failed', reason));
  }

  /**
   * Records a tick under its unique key and moves its schedule's mark to it;
   * false (nothing written) when the tick, or a later one, is already recorded.
   * A racing transaction on the same tick waits on the key and then finds it taken.
   */
  private async recordTick(c: Q, tick: ScheduleTick, now: number, outcome: 'started' | 'failed' = 'started', reason: string | null = null): Promise<boolean> {
    const key = [tick.namespace, tick.workflow, tick.schedule, tick.at];
    const added = await c.query(
      `INSERT INTO schedule_ticks (namespace, workflow, schedule, tick, outcome, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT DO NOTHING`,
      [...key, outcome, reason, now],
    );
    if (added.rowCount === 0) return false;
    const moved = await c.query(
      `INSERT INTO schedule_marks (namespace, workflow, schedule, last_tick) VALUES ($1, $2, $3, $4)
       ON CONFLICT (namespace, workflow, schedule) DO UPDATE SET last_tick = excluded.last_tick WHERE schedule_marks.last_tick < excluded.last_tick`,
      key,
    );
    if (moved.rowCount === 1) return true;
    // An older tick than one already acted on (a scheduler that lagged behind): not acted on.
    await c.query('DELETE FROM schedule_ticks WHERE namespace = $1 AND workflow = $2 AND schedule = $3 AND tick = $4', key);
    return false;
  }

  async scheduleMarks(): Promise<ScheduleMark[]> {
    return (await this.all<MarkRowDb>('SELECT * FROM schedule_marks ORDER BY namespace, workflow, schedule')).map(toMark);
  }

  async deferRun(input: DeferRunInput): Promise<DeferredRun> {
    const now = this.clock.now();
    const row = await this.tx(async (c, signal) => {
      const r = await c.query<DeferredRowDb>(
        `INSERT INTO deferred_runs (namespace, workflow, params, labels, priority, force, due_at, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', $8) RETURNING *`,
        [input.namespace, input.workflow, JSON.stringify(input.params), JSON.stringify(input.labels), input.priority, input.force ? 1 : 0, input.dueAt, now],
      );
      signal({ type: 'schedules' });
      return r.rows[0]!;
    });
    return toDeferred(row);
  }

  async listDeferredRuns(f: DeferredFilter): Promise<DeferredRun[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (cond: string, v: unknown) => (args.push(v), where.push(cond.replace('?', `$${args.length}`)));
    if (f.namespace) add('namespace = ?', f.namespace);
    if (f.namespaces) where.push(inNamespaces('namespace', f.namespaces, (v) => (args.push(v), `$${args.length}`)));
    if (f.workflow) add('workflow = ?', f.workflow);
    if (f.state) add('state = ?', f.state);
    if (f.dueBy !== undefined) add('due_at <= ?', f.dueBy);
    args.push(f.limit ?? 100);
    const sql = `SELECT * FROM deferred_runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY due_at, id LIMIT $${args.length}`;
    return (await this.all<DeferredRowDb>(sql, args)).map(toDeferred);
  }

  async startDeferredRun(id: number, input: CreateRunInput): Promise<Run | null> {
    const now = this.clock.now();
    const runId = await this.tx(async (c, signal) => {
      const taken = await c.query(`UPDATE deferred_runs SET state = 'started' WHERE id = $1 AND state = 'waiting'`, [id]);
      if (taken.rowCount === 0) return null;
      const made = await this.insertRun(c, signal, input, now);
      await c.query('UPDATE deferred_runs SET run_id = $1 WHERE id = $2', [made.id, id]);
      return made.id;
    });
    return runId === null ? null : (await this.getRun(runId))!;
  }

  async getDeferredRun(id: number): Promise<DeferredRun | null> {
    const r = await this.one<DeferredRowDb>('SELECT * FROM deferred_runs WHERE id = $1', [id]);
    return r ? toDeferred(r) : null;
  }

  async endDeferredRun(id: number, state: 'failed' | 'cancelled', error: string): Promise<DeferredRun> {
    const row = await this.tx(async (c) => {
      const d = (await c.query<DeferredRowDb>('SELECT * FROM deferred_runs WHERE id = $1 FOR UPDATE', [id])).rows[0];
      if (!d) throw new NotFoundError(`no deferred run ${id}`);
      if (d.state !== 'waiting') throw new ConflictError(`deferred run ${id} has already ${d.state === 'started' ? `started (run ${d.run_id})` : d.state}`);
      return (await c.query<DeferredRowDb>('UPDATE deferred_runs SET state = $1, error = $2 WHERE id = $3 RETURNING *', [state, error, id])).rows[0]!;
    });
    return toDeferred(row);
  }

  // ------------------------------------------------------------------- services

  private async serviceRow(c: Q, namespace: string, name: string): Promise<ServiceRowDb | undefined> {
    return (await c.query<ServiceRowDb>(`SELECT * FROM services WHERE namespace = $1 AND name = $2 FOR UPDATE`, [namespace, name])).rows[0];
  }

  /** Writes the row; a change of state goes to the outbox (events) in the same transaction. */
  private async writeService(c: Q, signal: (s: StoreSignal) => void, next: ServiceRowDb, before: ServiceRowDb | undefined, cause?: string): Promise<void> {
    await c.query(prepared(upsertServiceSql((i) => `$${i}`), serviceValues(next)));
    const e = serviceEvent(before, next, cause);
    if (e) await this.outboxEvent(c, signal, e);
  }

  async listServices(f: { namespace?: string } = {}): Promise<ServiceRow[]> {
    const defs = (await this.all<{ namespace: string; name: string }>(`SELECT namespace, name FROM definitions WHERE kind = 'service'`))
      .filter((d) => f.namespace === undefined || d.namespace === f.namespace);
    const rows = await this.all<ServiceRowDb>(`SELECT * FROM services`);
    return serviceList(defs, rows, this.clock.now());
  }

  async getService(namespace: string, name: string): Promise<ServiceRow | null> {
    return (await this.listServices({ namespace })).find((s) => s.name === name) ?? null;
  }

  async startService(namespace: string, name: string): Promise<ServiceRow> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      const def = (await c.query<{ spec: string }>(`SELECT spec FROM definitions WHERE namespace = $1 AND name = $2 AND kind = 'service'`, [namespace, name])).rows[0];
      if (!def) throw new NotFoundError(`no service ${namespace}/${name}`);
      const row = await this.serviceRow(c, namespace, name);
      const next = started(row ?? neverStarted(namespace, name, now), JSON.parse(def.spec) as ServiceSpec, now);
      await this.writeService(c, signal, next, row);
      signal({ type: 'services' });
      return toService(next);
    });
  }

  async stopService(namespace: string, name: string): Promise<ServiceRow> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      const row = await this.serviceRow(c, namespace, name);
      if (!row) {
        const def = (await c.query(`SELECT 1 FROM definitions WHERE namespace = $1 AND name = $2 AND kind = 'service'`, [namespace, name])).rows[0];
        if (!def) throw new NotFoundError(`no service ${namespace}/${name}`);
        return toService(neverStarted(namespace, name, now));
      }
      const next = stopped(row, now);
      await this.writeService(c, signal, next, row);
      if (next.state === 'stopping') signal({ type: 'services' });
      return toService(next);
    });
  }

  async claimServices(worker: { name: string; host: string; queues: string[] }, free: FreeCapacity, leaseMs: number): Promise<{ claimed: ClaimedService[]; nextStartAt: number | null }> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      // SKIP LOCKED: a service another worker is claiming right now is simply not ours.
      const rows = (
        await c.query<ServiceRowDb>(prepared(
          `SELECT * FROM services WHERE desired = 'up' AND state IN ('starting', 'backoff', 'flapping')
           ORDER BY next_start_at, namespace, name FOR UPDATE SKIP LOCKED`,
          [],
        ))
      ).rows;
      const { picked, nextStartAt } = pickServices(rows, worker, free, now, leaseMs);
      for (const p of picked) {
        await this.writeService(c, signal, p.row, rows.find((r) => r.namespace === p.row.namespace && r.name === p.row.name));
        // a new instance: only the last SERVICE_LOG_INSTANCES keep their lines
        await c.query(`DELETE FROM service_logs WHERE namespace = $1 AND name = $2 AND instance <= $3`, [p.row.namespace, p.row.name, p.row.fence - SERVICE_LOG_INSTANCES]);
      }
      return { claimed: picked.map((p) => p.claim), nextStartAt };
    });
  }

  async setServicePid(ref: ServiceRef, pid: number): Promise<void> {
    await this.pool.query(prepared(`UPDATE services SET pid = $1 WHERE namespace = $2 AND name = $3 AND fence = $4`, [pid, ref.namespace, ref.name, ref.fence]));
  }

  async renewServices(worker: string, refs: ServiceRef[], leaseMs: number): Promise<ServiceRef[]> {
    if (refs.length === 0) return [];
    const now = this.clock.now();
    const up = new Set(
      (
        await this.pool.query<{ namespace: string; name: string; state: string }>(prepared(
          `UPDATE services s SET lease_until = $1 FROM unnest($2::text[], $3::text[], $4::bigint[]) AS v(namespace, name, fence)
           WHERE s.namespace = v.namespace AND s.name = v.name AND s.fence = v.fence AND s.worker = $5 AND s.state IN ('up', 'stopping')
           RETURNING s.namespace, s.name, s.state`,
          [now + leaseMs, refs.map((r) => r.namespace), refs.map((r) => r.name), refs.map((r) => r.fence), worker],
        ))
      ).rows
        .filter((r) => r.state === 'up')
        .map((r) => `${r.namespace}/${r.name}`),
    );
    return refs.filter((r) => !up.has(`${r.namespace}/${r.name}`));
  }

  async serviceExited(ref: ServiceRef, exit: ServiceExitReport, lines: LogLine[] = []): Promise<ServiceRow> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      let row = await this.serviceRow(c, ref.namespace, ref.name);
      if (!row || row.fence !== ref.fence || !isRunning(row.state)) throw new StaleFenceError(ref.fence, `service ${ref.namespace}/${ref.name} has a newer instance`);
      if (lines.length) {
        await this.storeServiceLines(c, signal, ref, lines);
        row = (await this.serviceRow(c, ref.namespace, ref.name))!;
      }
      const change = exited(row, exit, now);
      await this.writeService(c, signal, change.row, row, change.audit.map((a) => a.reason).join('; ') || undefined);
      for (const n of serviceAuditNotes(change, `worker:${row.worker}`)) await insertAudit(c, n, now);
      signal({ type: 'services' });
      return toService(change.row);
    });
  }

  async releaseService(ref: ServiceRef, reason: string, lines: LogLine[] = []): Promise<boolean> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      let row = await this.serviceRow(c, ref.namespace, ref.name);
      if (!row || row.fence !== ref.fence || !isRunning(row.state)) return false;
      if (lines.length) {
        await this.storeServiceLines(c, signal, ref, lines);
        row = (await this.serviceRow(c, ref.namespace, ref.name))!;
      }
      await this.writeService(c, signal, moved(row, reason, now, false).row, row, `given back by worker ${row.worker} (${reason}): free for any worker`);
      signal({ type: 'services' });
      return true;
    });
  }

  async reapLostServices(deadWorkers: string[]): Promise<ServiceRow[]> {
    const now = this.clock.now();
    return this.tx(async (c, signal) => {
      const rows = (
        await c.query<ServiceRowDb>(
          `SELECT * FROM services WHERE state IN ('up', 'stopping') AND (lease_until < $1 OR worker = ANY($2::text[])
             OR worker IN (SELECT name FROM workers WHERE state = 'stopped')) FOR UPDATE SKIP LOCKED`,
          [now, deadWorkers],
        )
      ).rows;
      const out: ServiceRow[] = [];
      for (const r of rows) {
        // its worker cannot say why the instance ended: the store does, as its last line
        await this.storeServiceLines(c, signal, { namespace: r.namespace, name: r.name, fence: r.fence }, [lostLine(r.worker, now)]);
        const change = moved(r, `worker ${r.worker} lost`, now, true);
        await this.writeService(c, signal, change.row, r, change.audit[0]?.reason);
        for (const n of serviceAuditNotes(change, 'scheduler')) await insertAudit(c, n, now);
        out.push(toService(change.row));
      }
      if (out.length) signal({ type: 'services' });
      return out;
    });
  }

  async appendServiceLogs(ref: ServiceRef, lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    await this.tx(async (c, signal) => {
      // FOR UPDATE: an exit, stop or reap of this service waits for these lines, or these wait and are refused
      const row = (
        await c.query<{ fence: number; state: ServiceState }>(prepared(`SELECT fence, state FROM services WHERE namespace = $1 AND name = $2 FOR UPDATE`, [ref.namespace, ref.name]))
      ).rows[0];
      if (!row || row.fence !== ref.fence || !isRunning(row.state))
        throw new StaleFenceError(ref.fence, `log lines of service ${ref.namespace}/${ref.name} from an instance that is no longer current`);
      await this.storeServiceLines(c, signal, ref, lines);
    });
  }

  /** Inserts an instance's lines, counts them against its cap and trims its oldest ones past it (inside a transaction holding the service's row). */
  private async storeServiceLines(c: Q, signal: Sig, ref: ServiceRef, lines: LogLine[]): Promise<void> {
    // PostgreSQL text cannot hold NUL bytes
    const rows = lines.map((l) => serviceLogLine({ ...l, line: l.line.replace(/\0/g, '') }));
    const bytes = rows.map(lineBytes);
    await c.query(prepared(
      `INSERT INTO service_logs (namespace, name, instance, stream, ts, line, bytes)
       SELECT $1, $2, $3, * FROM unnest($4::text[], $5::bigint[], $6::text[], $7::integer[])`,
      [ref.namespace, ref.name, ref.fence, rows.map((l) => l.stream), rows.map((l) => l.ts), rows.map((l) => l.line), bytes],
    ));
    const held = Number(
      (await c.query<{ log_bytes: number }>(prepared(`UPDATE services SET log_bytes = log_bytes + $1 WHERE namespace = $2 AND name = $3 RETURNING log_bytes`, [
        bytes.reduce((a, b) => a + b, 0), ref.namespace, ref.name,
      ]))).rows[0]!.log_bytes,
    );
    const excess = trimExcess(held);
    if (excess > 0) {
      // the oldest lines up to `excess` bytes go; the mark takes the last one's id, so it reads in their place
      const cut = (
        await c.query<{ id: number; ts: number }>(
          `SELECT id, ts FROM (SELECT id, ts, sum(bytes) OVER (ORDER BY id) AS acc FROM service_logs WHERE namespace = $1 AND name = $2 AND instance = $3) a
           WHERE acc >= $4 ORDER BY id LIMIT 1`,
          [ref.namespace, ref.name, ref.fence, excess],
        )
      ).rows[0]!;
      await c.query(`DELETE FROM service_logs WHERE namespace = $1 AND name = $2 AND instance = $3 AND id <= $4`, [ref.namespace, ref.name, ref.fence, cut.id]);
      await c.query(`INSERT INTO service_logs (id, namespace, name, instance, stream, ts, line, bytes) VALUES ($1, $2, $3, $4, 'system', $5, $6, $7)`, [
        cut.id, ref.namespace, ref.name, ref.fence, cut.ts, TRIM_MARK, Buffer.byteLength(TRIM_MARK) + 1,
      ]);
      await c.query(
        `UPDATE services SET log_bytes = (SELECT coalesce(sum(bytes), 0) FROM service_logs WHERE namespace = $1 AND name = $2 AND instance = $3)
         WHERE namespace = $1 AND name = $2`,
        [ref.namespace, ref.name, ref.fence],
      );
    }
    signal({ type: 'logs' });
  }

  async readServiceLogs(q: ServiceLogQuery): Promise<ServiceLogLine[]> {
    const row = await this.one<{ fence: number }>(`SELECT fence FROM services WHERE namespace = $1 AND name = $2`, [q.namespace, q.name]);
    if (!row && !(await this.one(`SELECT 1 FROM definitions WHERE namespace = $1 AND name = $2 AND kind = 'service'`, [q.namespace, q.name])))
      throw new NotFoundError(`no service ${q.namespace}/${q.name}`);
    const [from, to] = q.instance !== undefined ? [q.instance, q.instance] : [(row?.fence ?? 0) - (q.restarts ?? 0), Number.MAX_SAFE_INTEGER];
    const where = `FROM service_logs WHERE namespace = $1 AND name = $2 AND instance >= $3 AND instance <= $4 AND id > $5`;
    const args = [q.namespace, q.name, from, to, q.afterId ?? 0];
    const limit = q.limit ?? 10_000;
    return q.tail !== undefined
      ? this.all<ServiceLogLine>(`SELECT * FROM (SELECT id, instance, stream, ts, line ${where} ORDER BY instance DESC, id DESC LIMIT $6) t ORDER BY instance, id LIMIT $7`, [
          ...args, q.tail, limit,
        ])
      : this.all<ServiceLogLine>(`SELECT id, instance, stream, ts, line ${where} ORDER BY instance, id LIMIT $6`, [...args, limit]);
  }

  // ---------------------------------------------------------------------- pools

  async setPool(name: string, slots: number | null): Promise<PoolRow> {
    const now = this.clock.now();
    await this.tx(async (c, signal) => {
      await c.query(prepared(
        `INSERT INTO pools (name, slots, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, updated_at = excluded.updated_at`,
        [name, slots, now],
      ));
      // A raised limit may let queued jobs run now.
      signal({ type: 'queued' });
    });
    return (await this.listPools()).find((p) => p.name === name)!;
  }

  async listPools(): Promise<PoolRow[]> {
    return this.all<PoolRow>(
      `SELECT name, max(slots) AS slots, sum(running)::int AS running, sum(queued)::int AS queued FROM (
         SELECT name, slots, 0 AS running, 0 AS queued FROM pools
         UNION ALL
         SELECT pool, NULL, count(*) FILTER (WHERE state = 'running'), count(*) FILTER (WHERE state = 'queued')
         FROM jobs WHERE pool IS NOT NULL AND state IN ('running', 'queued') GROUP BY pool
       ) p GROUP BY name ORDER BY name`,
    );
  }

  // ----------------------------------------------------------------------- auth

  /** Inside the caller's transaction. */
  private async insertToken(c: Q, t: NewApiToken, now: number): Promise<void> {
    await c.query('INSERT INTO api_tokens (id, hash, role, name, created_at) VALUES ($1, $2, $3, $4, $5)', [t.id, t.hash, t.role, t.name, now]);
    const namespaces = [...new Set(t.namespaces)];
    if (namespaces.length)
      await c.query('INSERT INTO api_token_namespaces (token_id, namespace) SELECT $1, unnest($2::text[])', [t.id, namespaces]);
  }

  async createToken(t: NewApiToken): Promise<ApiToken> {
    await this.tx((c) => this.insertToken(c, t, this.clock.now()));
    return publicToken((await this.findToken(t.id))!);
  }

  async createFirstToken(t: NewApiToken): Promise<ApiToken | null> {
    // Serialised by a transaction lock: two servers starting at once on an empty store make one admin token, not two.
    const created = await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [FIRST_TOKEN_LOCK]);
      if ((await c.query('SELECT 1 FROM api_tokens LIMIT 1')).rowCount) return false;
      await this.insertToken(c, t, this.clock.now());
      return true;
    });
    return created ? publicToken((await this.findToken(t.id))!) : null;
  }

  async findToken(id: string): Promise<(ApiToken & { hash: string }) | null> {
    const row = await this.one<TokenRowDb>('SELECT * FROM api_tokens WHERE id = $1', [id]);
    if (!row) return null;
    const ns = await this.all<TokenNamespaceRowDb>('SELECT token_id, namespace FROM api_token_namespaces WHERE token_id = $1', [id]);
    return toTokens([row], ns)[0]!;
  }

  async listTokens(): Promise<ApiToken[]> {
    const rows = await this.all<TokenRowDb>('SELECT * FROM api_tokens ORDER BY created_at, id');
    const ns = await this.all<TokenNamespaceRowDb>('SELECT token_id, namespace FROM api_token_namespaces');
    return toTokens(rows, ns).map(publicToken);
  }

  async revokeToken(id: string): Promise<ApiToken> {
    const token = await this.findToken(id);
    if (!token) throw new NotFoundError(`no token ${id}`);
    await this.tx((c) => c.query('DELETE FROM api_tokens WHERE id = $1', [id]));
    return publicToken(token);
  }

  // -------------------------------------------------------------------- secrets

  // --------------------------------------------------------- namespace settings

  async getNamespaceSettings(namespace: string): Promise<NamespaceSettings | null> {
    return namespaceRows.getNamespaceSettings(this.pool, namespace);
  }

  async setNamespaceSettings(namespace: string, patch: NamespaceSettingsPatch): Promise<NamespaceSettings> {
    return namespaceRows.setNamespaceSettings(this.pool, namespace, patch, this.clock.now());
  }

  async listNamespaceSettings(): Promise<NamespaceSettings[]> {
    return namespaceRows.listNamespaceSettings(this.pool);
  }

  async putSecret(namespace: string, name: string, sealed: string): Promise<{ change: 'created' | 'updated' }> {
    const now = this.clock.now();
    // xmax = 0: the row was inserted, not updated (the one-statement way to tell them apart)
    const r = await this.one<{ inserted: boolean }>(
      `INSERT INTO secrets (namespace, name, sealed, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (namespace, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at
       RETURNING (xmax = 0) AS inserted`,
      [namespace, name, sealed, now],
    );
    return { change: r?.inserted ? 'created' : 'updated' };
  }

  async listSecrets(namespace?: string): Promise<SecretInfo[]> {
    const rows =
      namespace === undefined
        ? await this.all<SecretRowDb>('SELECT namespace, name, updated_at FROM secrets ORDER BY namespace, name')
        : await this.all<SecretRowDb>('SELECT namespace, name, updated_at FROM secrets WHERE namespace = $1 ORDER BY name', [namespace]);
    return rows.map(toSecretInfo);
  }

  async readSecrets(namespace: string, names: string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    if (names.length === 0) return out;
    const rows = await this.all<{ name: string; sealed: string }>('SELECT name, sealed FROM secrets WHERE namespace = $1 AND name = ANY($2::text[])', [namespace, names]);
    for (const r of rows) out[r.name] = r.sealed;
    return out;
  }

  async deleteSecret(namespace: string, name: string): Promise<void> {
    const r = await this.pool.query('DELETE FROM secrets WHERE namespace = $1 AND name = $2', [namespace, name]);
    if (!r.rowCount) throw new NotFoundError(`no secret ${name} in namespace '${namespace}'`);
  }

  // --------------------------------------------------------------------- events

  async listAudit(f: AuditFilter): Promise<AuditEntry[]> {
    const q = auditListSql(f, (i) => `$${i}`);
    return (await this.all<AuditRowDb>(q.sql, q.values)).map(toAuditEntry);
  }

  // -------------------------------------------------------------- notifications

  async createSubscription(input: SubscriptionInput): Promise<Subscription> {
    const now = this.clock.now();
    const row = await this.one<SubscriptionRowDb>(
      `INSERT INTO subscriptions (namespace, workflow, labels, events, target, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [input.namespace, input.workflow, JSON.stringify(input.labels), JSON.stringify(input.events), input.target, now, input.createdBy],
    );
    return toSubscription(row!);
  }

  async listSubscriptions(f: { namespace?: string }): Promise<Subscription[]> {
    const rows =
      f.namespace === undefined
        ? await this.all<SubscriptionRowDb>(`SELECT * FROM subscriptions ORDER BY id`)
        : await this.all<SubscriptionRowDb>(`SELECT * FROM subscriptions WHERE namespace = $1 ORDER BY id`, [f.namespace]);
    return rows.map(toSubscription);
  }

  async deleteSubscription(id: number): Promise<Subscription> {
    const row = await this.one<SubscriptionRowDb>(`DELETE FROM subscriptions WHERE id = $1 RETURNING *`, [id]);
    if (!row) throw new NotFoundError(`no subscription ${id}`);
    return toSubscription(row);
  }

  async notifyCursor(name: NotifyCursor): Promise<number> {
    return (await this.one<{ position: number }>(`SELECT position FROM notify_cursors WHERE name = $1`, [name]))?.position ?? 0;
  }

  async queueDeliveries(cursor: { name: NotifyCursor; from: number; to: number }, items: DeliveryInput[]): Promise<number | null> {
    const now = this.clock.now();
    return this.tx(async (c) => {
      const moved = await c.query(`UPDATE notify_cursors SET position = $1 WHERE name = $2 AND position = $3`, [cursor.to, cursor.name, cursor.from]);
      if (moved.rowCount !== 1) return null;
      if (items.length === 0) return 0;
      const r = await c.query(
        `INSERT INTO deliveries (event_key, event, target, namespace, run_id, subject, source, payload, state, next_attempt_at, created_at)
         SELECT k, e, t, ns, run, subj, src, pl, 'pending', $9, $9
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY
           AS x(k, e, t, ns, run, subj, src, pl, n) ORDER BY n
         ON CONFLICT (event_key, target) DO NOTHING`,
        [
          items.map((d) => d.eventKey),
          items.map((d) => d.event),
          items.map((d) => d.target),
          items.map((d) => d.namespace),
          items.map((d) => d.runId),
          items.map((d) => d.subject),
          items.map((d) => d.source),
          items.map((d) => JSON.stringify(d.payload)),
          now,
        ],
      );
      return r.rowCount ?? 0;
    });
  }

  async claimDeliveries(limit: number, claimMs: number): Promise<Delivery[]> {
    const now = this.clock.now();
    const rows = await this.all<DeliveryRowDb>(
      `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1
       WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [now + claimMs, now, limit],
    );
    return rows.map(toDelivery).sort((a, b) => a.id - b.id);
  }

  async settleDelivery(id: number, attempt: number, outcome: { sent: true } | { sent: false; error: string; retryAt: number | null }): Promise<boolean> {
    const now = this.clock.now();
    const r = outcome.sent
      ? await this.pool.query(`UPDATE deliveries SET state = 'sent', sent_at = $1, last_error = NULL WHERE id = $2 AND attempts = $3 AND state = 'pending'`, [now, id, attempt])
      : await this.pool.query(`UPDATE deliveries SET state = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4 AND attempts = $5 AND state = 'pending'`, [
          outcome.retryAt === null ? 'failed' : 'pending',
          outcome.retryAt ?? now,
          deliveryError(outcome.error),
          id,
          attempt,
        ]);
    return r.rowCount === 1;
  }

  async listDeliveries(f: DeliveryFilter): Promise<Delivery[]> {
    const q = deliveryListSql(f, (i) => `$${i}`);
    return (await this.all<DeliveryRowDb>(q.sql, q.values)).map(toDelivery);
  }

  async nextDeliveryAt(): Promise<number | null> {
    const r = await this.one<{ t: number | null }>(`SELECT min(next_attempt_at) AS t FROM deliveries WHERE state = 'pending'`);
    return r?.t ?? null;
  }

  async webhookSecret(namespace: string, rotate = false): Promise<{ namespace: string; secret: string; createdAt: number }> {
    const now = this.clock.now();
    const secret = randomBytes(32).toString('hex');
    // A racing first use may insert between this statement's snapshot and its insert: then read again.
    const first = await this.one<{ namespace: string; secret: string; created_at: number }>(
      rotate
        ? `INSERT INTO webhook_secrets (namespace, secret, created_at) VALUES ($1, $2, $3)
           ON CONFLICT (namespace) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at RETURNING *`
        : `WITH ins AS (INSERT INTO webhook_secrets (namespace, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (namespace) DO NOTHING RETURNING *)
           SELECT * FROM ins UNION ALL SELECT * FROM webhook_secrets WHERE namespace = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
      [namespace, secret, now],
    );
    const row = first ?? (await this.one<{ namespace: string; secret: string; created_at: number }>(`SELECT * FROM webhook_secrets WHERE namespace = $1`, [namespace]));
    return { namespace: row!.namespace, secret: row!.secret, createdAt: Number(row!.created_at) };
  }

  async lastEventId(): Promise<number> {
    return (await this.one<{ id: number }>(`SELECT coalesce(max(id), 0)::bigint AS id FROM events`))!.id;
  }

  async pruneEvents(o: { before: number; keep: number; limit: number }): Promise<EventPrune> {
    return this.tx((c) => pruneEvents(c, o));
  }

  async eventHorizon(): Promise<EventHorizon> {
    return eventHorizon(this.pool);
  }

  async jobCounts(): Promise<JobCount[]> {
    return this.all<JobCount>(`SELECT state, queue, count(*)::int AS count FROM jobs GROUP BY state, queue`);
  }

  // ---------------------------------------------------------------- web UI reads

  async runCounts(): Promise<{ state: RunState; count: number }[]> {
    return this.all<{ state: RunState; count: number }>(`SELECT state, count(*)::int AS count FROM runs GROUP BY state`);
  }

  async finishedPerMinute(since: number): Promise<FinishedPerMinute[]> {
    return this.all<FinishedPerMinute>(
      `SELECT worker, (finished_at / 60000) * 60000 AS minute,
              count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded, count(*) FILTER (WHERE state = 'failed')::int AS failed
       FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at >= $1
       GROUP BY worker, minute ORDER BY minute, worker`,
      [since],
    );
  }

  async failedJobsSince(since: number, limit: number): Promise<{ count: number; jobs: Job[] }> {
    const where = `state IN ('succeeded', 'failed') AND state = 'failed' AND finished_at >= $1`;
    const [counted, rows] = await Promise.all([
      this.one<{ count: number }>(`SELECT count(*)::int AS count FROM jobs WHERE ${where}`, [since]),
      this.all<JobRowDb>(`SELECT * FROM jobs WHERE ${where} ORDER BY finished_at DESC LIMIT $2`, [since, limit]),
    ]);
    return { count: counted!.count, jobs: rows.map(toJob) };
  }

  async runTaskCounts(runId: number): Promise<TaskStateCount[]> {
    const rows = await this.all<TaskCountRowDb>(
      `SELECT task, state, chunk IS NOT NULL AS is_chunk, max(chunked) AS chunked, count(*)::int AS count,
              min(started_at) AS started_at, max(finished_at) AS finished_at, coalesce(sum(progress), 0)::float8 AS progress, min(id) AS first
       FROM jobs WHERE run_id = $1 GROUP BY task, state, chunk IS NOT NULL ORDER BY first`,
      [runId],
    );
    return rows.map(toTaskStateCount);
  }

  async runTaskEdges(runId: number): Promise<TaskEdge[]> {
    return this.all<TaskEdge>(
      `SELECT DISTINCT u.task AS "from", d.task AS "to"
       FROM jobs u JOIN job_deps x ON x.upstream_id = u.id JOIN jobs d ON d.id = x.job_id
       WHERE u.run_id = $1 AND u.task <> d.task`,
      [runId],
    );
  }

  async finishedJobTimings(afterEventId: number, limit: number): Promise<{ lastEventId: number; jobs: FinishedJobTiming[] }> {
    const rows = await this.all<FinishedTimingRowDb>(
      `SELECT e.id, e.state, j.queue, j.enqueued_at, j.started_at, j.finished_at
       FROM (SELECT id, kind, state, job_id FROM events WHERE id > $1 ORDER BY id LIMIT $2) e
       LEFT JOIN jobs j ON e.kind = 'job' AND e.state IN ('succeeded', 'failed') AND j.id = e.job_id
       ORDER BY e.id`,
      [afterEventId, limit],
    );
    return finishedTimings(afterEventId, rows);
  }

  async readEvents(afterId: number, filter: EventFilter, limit = 1000): Promise<StoreEvent[]> {
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    const after = arg(afterId);
    const cond = eventFilterSql(filter, arg);
    const rows = await this.all<EventRowDb>(
      `SELECT e.*, j.task, j.chunk FROM events e LEFT JOIN jobs j ON j.id = e.job_id WHERE e.id > ${after}${cond ? ` AND (${cond})` : ''} ORDER BY e.id LIMIT ${arg(limit)}`,
      args,
    );
    return rows.map(toEvent);
  }

  // ----------------------------------------------------------- monitoring reads

  async taskDurations(q: { namespace: string; workflow: string; beforeRunId: number; runs: number }): Promise<TaskHistory> {
    const cte = PAST_DURATIONS_CTE({ ns: '$1', wf: '$2', before: '$3', runs: '$4', keyExpr: `j.task || CASE WHEN j.chunk IS NULL THEN '' ELSE '#' END` });
    const args = [q.namespace, q.workflow, q.beforeRunId, q.runs];
    const rows = await this.all<TaskDurationRowDb>(
      `WITH ${cte}
       SELECT k, count(*) AS samples, count(DISTINCT run_id) AS runs,
         percentile_cont(0.1) WITHIN GROUP (ORDER BY ms) AS p10,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
         percentile_cont(0.9) WITHIN GROUP (ORDER BY ms) AS p90
       FROM d GROUP BY k ORDER BY k`,
      args,
    );
    const past = await this.one<{ n: string | number }>(`WITH ${cte} SELECT count(DISTINCT run_id) AS n FROM d`, args);
    return { pastRuns: Number(past?.n ?? 0), tasks: rows.map(toTaskDurationStats) };
  }

  async runEdges(runId: number): Promise<[string, string][]> {
    const rows = await this.all<EdgeRowDb>(
      `SELECT j.run_id, u.task AS up_task, u.chunk AS up_chunk, j.task, j.chunk
       FROM jobs u JOIN job_deps d ON d.upstream_id = u.id JOIN jobs j ON j.id = d.job_id WHERE u.run_id = $1`,
      [runId],
    );
    return rows.map(toEdge);
  }

  async accountUsage(f: AcctFilter): Promise<AcctRow[]> {
    const args: unknown[] = [];
    const sql = acctSql(f, (v) => (args.push(v), `$${args.length}`), { bigint: '::bigint', float: '::float8' });
    return toAcctRows(await this.all<AcctRowDb>(sql, args), f);
  }

  async listAttemptErrors(f: AttemptErrorFilter): Promise<AttemptError[]> {
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    const where = [`a.state IN ('failed', 'timed_out')`];
    if (f.runId !== undefined) where.push(`j.run_id = ${arg(f.runId)}`);
    if (f.namespace) where.push(`r.namespace = ${arg(f.namespace)}`);
    if (f.namespaces) where.push(inNamespaces('r.namespace', f.namespaces, arg));
    if (f.workflow) where.push(`r.workflow = ${arg(f.workflow)}`);
    for (const [k, v] of Object.entries(f.labels ?? {})) where.push(`r.id IN (SELECT run_id FROM run_labels WHERE key = ${arg(k)} AND value = ${arg(v)})`);
    if (f.since !== undefined) where.push(`coalesce(a.finished_at, a.started_at) >= ${arg(f.since)}`);
    if (f.until !== undefined) where.push(`coalesce(a.finished_at, a.started_at) < ${arg(f.until)}`);
    const rows = await this.all<AttemptErrorRowDb>(
      `SELECT a.id, j.run_id, j.task, j.chunk, r.namespace, r.workflow, a.number, a.worker, a.state, a.started_at, a.finished_at, a.exit_code, a.error
       FROM attempts a JOIN jobs j ON j.id = a.job_id JOIN runs r ON r.id = j.run_id
       WHERE ${where.join(' AND ')} ORDER BY a.id DESC LIMIT ${arg(f.limit ?? 1000)} OFFSET ${arg(f.offset ?? 0)}`,
      args,
    );
    return rows.map(toAttemptError);
  }
}

/** inside the store only: jobs a transaction queued (completeAndClaim wakes others only for those it did not claim) */
type Promoted = { type: 'promoted'; jobs: number[] };
type Sig = (s: StoreSignal | Promoted) => void;
/** claimed jobs and their rows' ids */
type Claimed = { claimed: ClaimedJob[]; ids: number[] };

function chunk<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
