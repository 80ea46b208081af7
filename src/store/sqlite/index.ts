// The embedded store: one SQLite file (WAL, synchronous=NORMAL: every commit
// survives a crash of any process; on power loss the last commits before the
// crash may be lost). Each public method that changes state is one IMMEDIATE
// transaction; signals to in-process listeners are emitted after commit.
import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import type { Definition, WorkflowSpec } from '../../spec/model.js';
import { SPLIT_SUFFIX, formatJobId, parseJobId, stageOf } from '../jobId.js';
import { acctSql, toAcctRows, type AcctFilter, type AcctRow, type AcctRowDb } from '../acctRows.js';
import { stageCountsFrom, type StageCountRow } from '../taskProgress.js';
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
import { chunkGroup, runAsReason, selectClaims, unfittableReason, type LiveWorker } from '../claimSelection.js';
import { migrateSqlite } from './migrations.js';
import { insertAudit } from './audit.js';
import { eventFilterSql, eventValues, insertEventSql, registeredReason, REVIVED_REASON, REVIVED_STATE, serviceEvent, stopAskedReason, workerEvent, type EventInsert } from '../eventRows.js';
import { auditListSql, deadWorkerNote, failureNotes, reapNote, takeoverNote, toAuditEntry, type AuditRowDb } from '../audit.js';
import type { ServiceSpec } from '../../spec/model.js';
import type { ClaimedService, ServiceExitReport, ServiceLogLine, ServiceLogQuery, ServiceRef, ServiceRow, ServiceState } from '../types.js';
import {
  exited, isRunning, moved, neverStarted, pickServices, serviceList, serviceValues, started, stopped, toService, upsertServiceSql, serviceAuditNotes,
  lineBytes, lostLine, serviceLogLine, trimExcess, SERVICE_LOG_INSTANCES, TRIM_MARK, type ServiceRowDb,
} from '../serviceRows.js';
import { deliveryError, deliveryListSql, toDelivery, toSubscription, type DeliveryRowDb, type SubscriptionRowDb } from '../notifyRows.js';
import { randomBytes } from 'node:crypto';
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
  toJobFromColumns,
} from '../rows.js';
import { DependencyResolver } from './resolveDependents.js';
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
import { checkpointJson, rerunCheckpointSql, retryDelayMs, runOutcome } from '../rules.js';

const ACTIVE = `('pending','queued','running','retrying')`;
/** Running attempts whose lease expired, or whose worker is dead or stopped. */
const LOST_SQL = `SELECT j.id, j.fence, j.run_id, j.task, j.chunk, j.worker, j.lease_until, a.host, a.pid, j.outputs FROM jobs j JOIN attempts a ON a.id = j.fence
  WHERE j.state = 'running' AND (j.lease_until < ? OR j.worker IN (SELECT value FROM json_each(?))
    OR j.worker IN (SELECT name FROM workers WHERE state = 'stopped'))`;

export interface SqliteStoreOptions {
  clock?: Clock;
}

/** A candidate job's namespace is mapped to no Unix user or to the claiming worker's (its one parameter). */
const RUN_AS_FILTER = ` AND NOT EXISTS (SELECT 1 FROM runs r JOIN namespaces n ON n.namespace = r.namespace
  WHERE r.id = jobs.run_id AND n.run_user IS NOT NULL AND n.run_user <> ?)`;

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly emitter = new EventEmitter();
  private resolver: DependencyResolver | null = null;
  private pendingSignals: StoreSignal[] = [];

  constructor(readonly path: string, opts: SqliteStoreOptions = {}) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    // PostgreSQL does this with regexp_replace; SQLite has no regular expressions
    this.db.function('gantry_stage', { deterministic: true }, (task: unknown) => stageOf(String(task)));
    this.clock = opts.clock ?? systemClock;
    this.emitter.setMaxListeners(0);
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared statements, cached by their text: preparing costs more than most of these queries. */
  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  async migrate(): Promise<void> {
    migrateSqlite(this.db);
  }

  /** Prepared after migration: its statements need the tables. */
  private get deps(): DependencyResolver {
    return (this.resolver ??= new DependencyResolver(this.db));
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
    if (this.db.open) this.db.close();
  }

  subscribe(listener: (signal: StoreSignal) => void): () => void {
    this.emitter.on('signal', listener);
    return () => this.emitter.off('signal', listener);
  }

  /** Runs fn in one IMMEDIATE transaction and emits its signals after commit. */
  private tx<T>(fn: () => T): T {
    this.pendingSignals = [];
    let result: T;
    try {
      result = this.db.transaction(fn).immediate();
    } catch (e) {
      this.pendingSignals = [];
      throw e;
    }
    const signals = this.pendingSignals;
    this.pendingSignals = [];
    for (const s of signals) this.emitter.emit('signal', s);
    return result;
  }

  private signal(s: StoreSignal): void {
    // revoked and worker signals carry their own fences / names: never merged
    if (s.type === 'revoked' || s.type === 'worker' || !this.pendingSignals.some((p) => p.type === s.type)) this.pendingSignals.push(s);
  }

  // ---------------------------------------------------------------- definitions

  async putDefinitions(defs: Definition[]) {
    const now = this.clock.now();
    return this.tx(() =>
      defs.map((d) => {
        const spec = JSON.stringify(d);
        const old = this.sql('SELECT version, spec FROM definitions WHERE namespace = ? AND name = ? AND kind = ?')
          .get(d.namespace, d.name, d.kind) as { version: number; spec: string } | undefined;
        if (old && old.spec === spec) return { name: d.name, namespace: d.namespace, kind: d.kind, change: 'unchanged' as const };
        this.sql(
            `INSERT INTO definitions (namespace, name, kind, version, spec, updated_at) VALUES (?, ?, ?, 1, ?, ?)
             ON CONFLICT (namespace, name, kind) DO UPDATE SET version = version + 1, spec = excluded.spec, updated_at = excluded.updated_at`,
          )
          .run(d.namespace, d.name, d.kind, spec, now);
        this.signal({ type: 'schedules' });
        return { name: d.name, namespace: d.namespace, kind: d.kind, change: old ? ('updated' as const) : ('created' as const) };
      }),
    );
  }

  async getWorkflow(namespace: string, name: string): Promise<StoredDefinition | null> {
    const r = this.sql(`SELECT * FROM definitions WHERE namespace = ? AND name = ? AND kind = 'workflow'`)
      .get(namespace, name) as DefinitionRowDb | undefined;
    return r ? toDefinition(r) : null;
  }

  async listDefinitions(): Promise<StoredDefinition[]> {
    const rows = this.sql('SELECT * FROM definitions ORDER BY namespace, name').all() as DefinitionRowDb[];
    return rows.map(toDefinition);
  }

  // ---------------------------------------------------------------------- runs

  async createRun(input: CreateRunInput): Promise<Run> {
    const now = this.clock.now();
    const id = this.tx(() => this.insertRun(input, now));
    return (await this.getRun(id))!;
  }

  /** The body of createRun, inside the caller's transaction; returns the run's id. */
  private insertRun(input: CreateRunInput, now: number): number {
    const { spec } = input;
    const info = this.sql(
        `INSERT INTO runs (namespace, workflow, state, params, labels, priority, force, logical_date, max_active, spec, created_at)
         VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        spec.namespace,
        spec.name,
        JSON.stringify(input.params),
        '{}',
        input.priority,
        input.force ? 1 : 0,
        input.logicalDate,
        spec.maxActiveRuns,
        JSON.stringify(spec),
        now,
      );
    const runId = Number(info.lastInsertRowid);
    const plan = input.plan(runId);
    this.sql('UPDATE runs SET labels = ? WHERE id = ?').run(JSON.stringify(plan.labels), runId);
    const insLabel = this.sql('INSERT INTO run_labels (run_id, key, value) VALUES (?, ?, ?)');
    for (const [k, v] of Object.entries(plan.labels)) insLabel.run(runId, k, v);

    const insJob = this.sql(
      `INSERT INTO jobs (run_id, task, chunk, state, trigger_rule, deps_total, priority, queue, queues, has_fallback, cpu, memory,
         resources, pool, max_retries, retry_delay_ms, retry_backoff, retry_max_delay_ms, force, outputs, refs, chunked, chunk_limit, stage)
       VALUES (?, ?, NULL, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`,
    );
    const ids = new Map<string, number>();
    for (const j of plan.jobs) {
      const r = insJob.run(
        runId,
        j.task,
        j.trigger,
        j.needs.length,
        j.priority,
        j.queues[0]!,
        JSON.stringify(j.queues),
        j.queues.length > 1 ? 1 : 0,
        j.resources.cpu,
        j.resources.memoryBytes,
        JSON.stringify(j.resources.custom),
        j.pool,
        j.maxRetries,
        j.retryDelayMs,
        j.retryBackoff,
        j.retryMaxDelayMs,
        JSON.stringify(j.outputs),
        JSON.stringify(j.refs),
        j.chunked ? 1 : 0,
        j.chunkLimit ?? null,
        stageOf(j.task),
      );
      ids.set(j.task, Number(r.lastInsertRowid));
    }
    const insDep = this.sql('INSERT INTO job_deps (upstream_id, job_id) VALUES (?, ?)');
    for (const j of plan.jobs) {
      for (const n of j.needs) {
        const up = ids.get(n);
        if (up === undefined) throw new Error(`job plan: task '${j.task}' needs unknown task '${n}'`);
        insDep.run(up, ids.get(j.task)!);
      }
    }
    this.sql(`INSERT INTO events (ts, kind, run_id, job_id, state) VALUES (?, 'run', ?, NULL, 'queued')`).run(now, runId);
    this.startQueuedRuns(spec.namespace, spec.name, now);
    this.signal({ type: 'events' });
    return runId;
  }

  /** Starts the oldest queued runs of a workflow while its max_active_runs allows. */
  private startQueuedRuns(namespace: string, workflow: string, now: number): void {
    const queued = this.sql(`SELECT id, max_active FROM runs WHERE namespace = ? AND workflow = ? AND state = 'queued' ORDER BY id`)
      .all(namespace, workflow) as { id: number; max_active: number | null }[];
    if (queued.length === 0) return;
    let running = (
      this.sql(`SELECT count(*) AS n FROM runs WHERE namespace = ? AND workflow = ? AND state = 'running'`).get(namespace, workflow) as {
        n: number;
      }
    ).n;
    for (const r of queued) {
      if (r.max_active !== null && running >= r.max_active) break;
      this.startRun(r.id, now);
      running++;
    }
  }

  private startRun(runId: number, now: number): void {
    this.sql(`UPDATE runs SET state = 'running', started_at = ? WHERE id = ?`).run(now, runId);
    this.runEvent(runId, 'running', now);
    const roots = this.sql(`UPDATE jobs SET state = 'queued', enqueued_at = ? WHERE run_id = ? AND state = 'pending' AND deps_total = 0 RETURNING id`)
      .all(now, runId) as { id: number }[];
    this.jobEvents(roots.map((r) => r.id), now);
    if (roots.length > 0) this.signal({ type: 'queued' });
    this.finishRunIfDone(runId, now);
  }

  private runEvent(runId: number, state: RunState, now: number): void {
    this.sql(`INSERT INTO events (ts, kind, run_id, job_id, state) VALUES (?, 'run', ?, NULL, ?)`).run(now, runId, state);
    this.signal({ type: 'events' });
  }

  private jobEvents(ids: number[], now: number): void {
    if (ids.length === 0) return;
    this.sql(
        `INSERT INTO events (ts, kind, run_id, job_id, state)
         SELECT ?, 'job', run_id, id, state FROM jobs WHERE id IN (SELECT value FROM json_each(?))`,
      )
      .run(now, JSON.stringify(ids));
    this.signal({ type: 'events' });
  }

  /** When no job of the run is active any more, settles the run's state and starts the next queued run. */
  private finishRunIfDone(runId: number, now: number): void {
    const active = this.sql(`SELECT 1 FROM jobs WHERE run_id = ? AND state IN ${ACTIVE} LIMIT 1`).get(runId);
    if (active) return;
    const run = this.sql(`SELECT namespace, workflow, state FROM runs WHERE id = ?`).get(runId) as
      | { namespace: string; workflow: string; state: RunState }
      | undefined;
    if (!run || run.state !== 'running') return;
    const counts = this.countsFor(runId);
    const state = runOutcome(counts);
    this.sql(`UPDATE runs SET state = ?, finished_at = ? WHERE id = ?`).run(state, now, runId);
    this.runEvent(runId, state, now);
    this.startQueuedRuns(run.namespace, run.workflow, now);
  }

  private countsFor(runId: number): Partial<Record<JobState, number>> {
    const rows = this.sql(`SELECT state, count(*) AS n FROM jobs WHERE run_id = ? GROUP BY state`).all(runId) as {
      state: JobState;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  async getRun(id: number): Promise<Run | null> {
    const r = this.sql(`SELECT * FROM runs WHERE id = ?`).get(id) as RunRowDb | undefined;
    return r ? toRun(r, this.countsFor(id)) : null;
  }

  async getRunSpec(id: number): Promise<WorkflowSpec> {
    const r = this.sql(`SELECT spec FROM runs WHERE id = ?`).get(id) as { spec: string } | undefined;
    if (!r) throw new NotFoundError(`no run ${id}`);
    return JSON.parse(r.spec) as WorkflowSpec;
  }

  async listRuns(f: RunFilter): Promise<Run[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.namespace) (where.push('namespace = ?'), args.push(f.namespace));
    if (f.namespaces) where.push(inNamespaces('namespace', f.namespaces, (v) => (args.push(v), '?')));
    if (f.workflow) (where.push('workflow = ?'), args.push(f.workflow));
    for (const [k, v] of Object.entries(f.labels ?? {})) {
      where.push('id IN (SELECT run_id FROM run_labels WHERE key = ? AND value = ?)');
      args.push(k, v);
    }
    if (f.worker) (where.push(`id IN (SELECT run_id FROM jobs WHERE worker = ?)`), args.push(f.worker));
    if (f.since !== undefined) (where.push('created_at >= ?'), args.push(f.since));
    if (f.until !== undefined) (where.push('created_at < ?'), args.push(f.until));
    // latest: of each workflow among the runs the other filters match (label lang=de: the latest lang=de run), then the state filter
    if (f.latest) {
      where.push(`id IN (SELECT max(id) FROM runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} GROUP BY namespace, workflow)`);
      args.push(...args);
    }
    if (f.state) (where.push('state = ?'), args.push(f.state));
    const sql = `SELECT * FROM runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ? OFFSET ?`;
    const rows = this.sql(sql).all(...args, f.limit ?? 50, f.offset ?? 0) as RunRowDb[];
    return rows.map((r) => toRun(r, this.countsFor(r.id)));
  }

  async cancelRun(id: number, opts: { clean?: boolean } = {}): Promise<Run> {
    const now = this.clock.now();
    this.tx(() => {
      const run = this.sql(`SELECT state FROM runs WHERE id = ?`).get(id) as { state: RunState } | undefined;
      if (!run) throw new NotFoundError(`no run ${id}`);
      if (run.state !== 'running' && run.state !== 'queued') throw new ConflictError(`run ${id} has already ${run.state}`);
      this.cancelRunRow(id, now, opts.clean === true);
    });
    return (await this.getRun(id))!;
  }

  /** Cancels an active run inside the caller's transaction: its active jobs, running attempts revoked; starts the next queued run. */
  private cancelRunRow(id: number, now: number, clean = false): void {
    const jobs = this.sql(`SELECT id, fence, state FROM jobs WHERE run_id = ? AND state IN ${ACTIVE}`).all(id) as {
      id: number;
      fence: number | null;
      state: JobState;
    }[];
    const fences = this.cancelJobRows(jobs, now, clean);
    this.sql(`UPDATE runs SET state = 'cancelled', finished_at = ? WHERE id = ?`).run(now, id);
    this.runEvent(id, 'cancelled', now);
    if (fences.length) this.signal({ type: 'revoked', fences });
    const ns = this.sql(`SELECT namespace, workflow FROM runs WHERE id = ?`).get(id) as { namespace: string; workflow: string };
    this.startQueuedRuns(ns.namespace, ns.workflow, now);
  }

  /** Marks the given active jobs cancelled (and their running attempts); returns the revoked fences. */
  private cancelJobRows(jobs: { id: number; fence: number | null; state: JobState }[], now: number, clean = false): number[] {
    const ids = jobs.map((j) => j.id);
    const fences = jobs.filter((j) => j.state === 'running' && j.fence !== null).map((j) => j.fence!);
    if (fences.length)
      this.sql(
          `UPDATE attempts SET state = 'cancelled', finished_at = ?, error = 'cancelled by request', clean = ? WHERE id IN (SELECT value FROM json_each(?))`,
        )
        .run(now, clean ? 1 : 0, JSON.stringify(fences));
    this.sql(
        `UPDATE jobs SET state = 'cancelled', finished_at = ?, fence = NULL, lease_until = NULL, error = coalesce(error, 'cancelled by request')
         WHERE id IN (SELECT value FROM json_each(?))`,
      )
      .run(now, JSON.stringify(ids));
    this.jobEvents(ids, now);
    return fences;
  }

  async retryRun(id: number, opts: { failedOnly: boolean; force: boolean }): Promise<{ run: Run; reset: number }> {
    const now = this.clock.now();
    const reset = this.tx(() => {
      const run = this.sql(`SELECT state FROM runs WHERE id = ?`).get(id) as { state: RunState } | undefined;
      if (!run) throw new NotFoundError(`no run ${id}`);
      if (!opts.failedOnly && (run.state === 'running' || run.state === 'queued'))
        throw new ConflictError(`run ${id} is still ${run.state}: cancel it first, or retry only its failed jobs with --failed`);
      const cond = opts.failedOnly
        ? `(state IN ('failed', 'cancelled') OR (state = 'skipped' AND skip_reason IN ('upstream', 'trigger')))`
        : `state IN ('succeeded', 'failed', 'cancelled', 'skipped')`;
      if (!opts.failedOnly) {
        // A whole rerun splits again: the chunks of the last split go, each main job waits for its split alone.
        for (const m of this.sql(`SELECT task FROM jobs WHERE run_id = ? AND chunked = 1`).all(id) as { task: string }[]) this.dropChunks(id, m.task);
        this.sql(`UPDATE jobs SET deps_total = (SELECT count(*) FROM job_deps d WHERE d.job_id = jobs.id) WHERE run_id = ? AND chunked = 1`).run(id);
      }
      const ids = (
        this.sql(
            `UPDATE jobs SET state = 'pending', skip_reason = NULL, failures = 0, error = NULL, exit_code = NULL, run_after = NULL,
               finished_at = NULL, result = NULL, progress = NULL, fence = NULL, lease_until = NULL, force = ?, enqueued_at = NULL,
               ${rerunCheckpointSql(opts.force)}
             WHERE run_id = ? AND ${cond} RETURNING id`,
          )
          .all(opts.force ? 1 : 0, id) as { id: number }[]
      ).map((r) => r.id);
      if (ids.length === 0) return 0;
      this.deps.recount(ids);
      this.sql(`UPDATE runs SET state = 'running', finished_at = NULL, started_at = coalesce(started_at, ?) WHERE id = ?`).run(now, id);
      this.runEvent(id, 'running', now);
      this.jobEvents(ids, now);
      this.settle([], [], ids, now);
      this.finishRunIfDone(id, now);
      return ids.length;
    });
    return { run: (await this.getRun(id))!, reset };
  }

  // ---------------------------------------------------------------------- jobs

  async listJobs(f: JobFilter): Promise<Job[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.runId !== undefined) (where.push('run_id = ?'), args.push(f.runId));
    if (f.worker) (where.push('worker = ?'), args.push(f.worker));
    if (f.state) (where.push('state = ?'), args.push(f.state));
    if (f.states) (where.push(`state IN (${f.states.map(() => '?').join(', ')})`), args.push(...f.states));
    if (f.stale) {
      // claimed but not running: the lease lapsed, or the process never reported its pid
      where.push(`state = 'running' AND (lease_until < ? OR fence IN (SELECT id FROM attempts WHERE pid IS NULL AND started_at < ?))`);
      const now = this.clock.now();
      args.push(now, now - 10_000);
    }
    // Run-level filters as one subquery on runs (and run_labels), not a join per row.
    const runWhere: string[] = [];
    if (f.workflow) (runWhere.push('workflow = ?'), args.push(f.workflow));
    if (f.namespace) (runWhere.push('namespace = ?'), args.push(f.namespace));
    if (f.namespaces) runWhere.push(inNamespaces('namespace', f.namespaces, (v) => (args.push(v), '?')));
    for (const [k, v] of Object.entries(f.labels ?? {})) {
      runWhere.push('id IN (SELECT run_id FROM run_labels WHERE key = ? AND value = ?)');
      args.push(k, v);
    }
    if (runWhere.length) where.push(`run_id IN (SELECT id FROM runs WHERE ${runWhere.join(' AND ')})`);
    if (f.since !== undefined) (where.push('started_at >= ?'), args.push(f.since));
    if (f.until !== undefined) (where.push('started_at < ?'), args.push(f.until));
    const order = f.runId !== undefined ? 'ORDER BY id' : 'ORDER BY id DESC';
    const sql = `SELECT ${JOB_COLUMNS.join(', ')} FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ${order} LIMIT ? OFFSET ?`;
    const rows = this.sql(sql).raw(true).all(...args, f.limit ?? 10_000, f.offset ?? 0) as unknown[][];
    return rows.map(toJobFromColumns);
  }

  async stageCounts(runId: number): Promise<StageCount[]> {
    // Both read only the index (run_id, state, stage, chunk), the first in its order (no sort):
    // no table rows, whatever the run's size. count(chunk) counts the chunk jobs.
    const counts = this.sql(
      `SELECT state, stage, count(*) - count(chunk) AS own, count(chunk) AS chunks, min(id) AS first FROM jobs WHERE run_id = ? GROUP BY state, stage`,
    ).all(runId) as StageCountRow[];
    const reported = this.sql(
      `SELECT stage, chunk IS NOT NULL AS chunk, sum(ifnull(progress, 0)) AS progress FROM jobs WHERE run_id = ? AND state = 'running' GROUP BY 1, 2`,
    ).all(runId) as { stage: string; chunk: number; progress: number }[];
    return stageCountsFrom(counts, reported.map((r) => ({ ...r, chunk: r.chunk === 1 })));
  }

  private jobRowByPublicId(id: string): JobRowDb | undefined {
    const p = parseJobId(id);
    if (!p) return undefined;
    return this.sql(`SELECT * FROM jobs WHERE run_id = ? AND task = ? AND ifnull(chunk, -1) = ?`)
      .get(p.runId, p.task, p.chunk ?? -1) as JobRowDb | undefined;
  }

  async getJob(id: string): Promise<Job | null> {
    const r = this.jobRowByPublicId(id);
    return r ? toJob(r) : null;
  }

  async listAttempts(jobId: string): Promise<Attempt[]> {
    const j = this.jobRowByPublicId(jobId);
    if (!j) throw new NotFoundError(`no job ${jobId}`);
    const rows = this.sql(`SELECT a.*, j.run_id, j.task, j.chunk FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.job_id = ? ORDER BY a.id`)
      .all(j.id) as AttemptRowDb[];
    return rows.map(toAttempt);
  }

  async cancelJob(id: string, opts: { clean?: boolean } = {}): Promise<Job> {
    const now = this.clock.now();
    this.tx(() => {
      const j = this.jobRowByPublicId(id);
      if (!j) throw new NotFoundError(`no job ${id}`);
      if (!['pending', 'queued', 'running', 'retrying'].includes(j.state)) throw new ConflictError(`job ${id} has already ${j.state}`);
      const fences = this.cancelJobRows([{ id: j.id, fence: j.fence, state: j.state }], now, opts.clean === true);
      if (fences.length) this.signal({ type: 'revoked', fences });
      this.settle([], [j.id], [], now);
      this.finishRunIfDone(j.run_id, now);
    });
    return (await this.getJob(id))!;
  }

  // --------------------------------------------------------- worker transitions

  async registerWorker(w: WorkerInfo): Promise<void> {
    const now = this.clock.now();
    this.tx(() => {
      this.sql(
          `INSERT INTO workers (name, host, pid, queues, slots, cpu, memory, resources, state, started_at, heartbeat_at, unix_user)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, queues = excluded.queues, slots = excluded.slots,
             cpu = excluded.cpu, memory = excluded.memory, resources = excluded.resources, stop_mode = NULL, unix_user = excluded.unix_user,
             state = 'active', started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
        )
        .run(w.name, w.host, w.pid, JSON.stringify(w.queues), w.slots, w.resources.cpu, w.resources.memoryBytes, JSON.stringify(w.resources.custom), now, now, w.unixUser ?? null);
      this.outboxEvent(workerEvent(w.name, 'online', registeredReason(w), now));
    });
  }

  /** A worker's or a service's event, in the transaction of its transition. */
  private outboxEvent(e: EventInsert): void {
    this.sql(insertEventSql(() => '?')).run(...eventValues(e));
    this.signal({ type: 'events' });
  }

  async heartbeat(worker: string, fences: { fence: number; progress: number | null }[], leaseMs: number): Promise<number[]> {
    const now = this.clock.now();
    return this.tx(() => {
      if (this.sql(`UPDATE workers SET heartbeat_at = ? WHERE name = ? AND state != 'stopped'`).run(now, worker).changes === 0) {
        // declared dead, yet alive: back, as what it was asked to be
        const back = this.sql(`UPDATE workers SET heartbeat_at = ?, state = ${REVIVED_STATE} WHERE name = ? AND state = 'stopped' RETURNING state`).get(now, worker) as
          | { state: WorkerRow['state'] }
          | undefined;
        if (back) this.outboxEvent(workerEvent(worker, back.state === 'active' ? 'online' : 'draining', REVIVED_REASON, now));
      }
      const renew = this.sql(
        `UPDATE jobs SET lease_until = ?, progress = coalesce(?, progress) WHERE fence = ? AND worker = ? AND state = 'running'`,
      );
      const lost: number[] = [];
      for (const f of fences) if (renew.run(now + leaseMs, f.progress, f.fence, worker).changes === 0) lost.push(f.fence);
      return lost;
    });
  }

  async stopWorker(worker: string, reason = 'exited'): Promise<void> {
    const now = this.clock.now();
    this.tx(() => {
      const r = this.sql(`UPDATE workers SET state = 'stopped', heartbeat_at = ? WHERE name = ? AND state != 'stopped'`).run(now, worker);
      if (r.changes) this.outboxEvent(workerEvent(worker, 'stopped', reason, now));
    });
  }

  async declareWorkersDead(dead: { name: string; reason: string }[], actor = 'store'): Promise<string[]> {
    if (dead.length === 0) return [];
    const now = this.clock.now();
    return this.tx(() => this.markDead(dead, actor, now));
  }

  /** Marks these workers stopped (those not yet), each with its `dead` event and audit entry. */
  private markDead(dead: { name: string; reason: string }[], actor: string, now: number): string[] {
    const mark = this.sql(`UPDATE workers SET state = 'stopped' WHERE name = ? AND state != 'stopped'`);
    const marked: string[] = [];
    for (const d of dead) {
      if (mark.run(d.name).changes === 0) continue;
      this.outboxEvent(workerEvent(d.name, 'dead', d.reason, now));
      insertAudit(this.db, deadWorkerNote(d.name, d.reason, actor), now);
      marked.push(d.name);
    }
    return marked;
  }

  async listWorkers(): Promise<WorkerRow[]> {
    const rows = this.sql(`SELECT * FROM workers ORDER BY name`).all() as WorkerRowDb[];
    const running = this.sql(`SELECT worker, run_id, task, chunk, cpu, memory, resources FROM jobs WHERE state = 'running' ORDER BY id`).all() as RunningRowDb[];
    return rows.map((r) => {
      const mine = running.filter((j) => j.worker === r.name);
      return toWorker(r, mine.map((j) => formatJobId(j.run_id, j.task, j.chunk)), usedBy(mine));
    });
  }

  async requestWorkerStop(name: string, mode: WorkerStopMode): Promise<WorkerRow> {
    this.tx(() => {
      const w = this.sql(`SELECT state, stop_mode FROM workers WHERE name = ?`).get(name) as { state: WorkerRow['state']; stop_mode: WorkerStopMode | null } | undefined;
      if (!w) throw new NotFoundError(`no worker ${name}`);
      if (w.state === 'stopped') throw new ConflictError(`worker ${name} has stopped`);
      const next = strongerStopMode(w.stop_mode, mode);
      this.sql(`UPDATE workers SET state = 'draining', stop_mode = ? WHERE name = ?`).run(next, name);
      if (w.state !== 'draining' || next !== w.stop_mode) this.outboxEvent(workerEvent(name, 'draining', stopAskedReason(next), this.clock.now()));
      this.signal({ type: 'worker', name });
    });
    return (await this.listWorkers()).find((w) => w.name === name)!;
  }

  async workerStopMode(name: string): Promise<WorkerStopMode | null> {
    const w = this.sql(`SELECT state, stop_mode FROM workers WHERE name = ?`).get(name) as { state: string; stop_mode: WorkerStopMode | null } | undefined;
    return w?.state === 'draining' ? w.stop_mode : null;
  }

  async cleanRequested(fence: number): Promise<boolean> {
    return (this.sql(`SELECT clean FROM attempts WHERE id = ?`).get(fence) as { clean: number } | undefined)?.clean === 1;
  }

  async claimJobs(worker: ClaimRequest['worker'], limit: number, leaseMs: number, free?: FreeCapacity): Promise<ClaimedJob[]> {
    if (limit <= 0) return [];
    const now = this.clock.now();
    return this.tx(() => this.claimIn(worker, limit, leaseMs, free, now).claimed);
  }

  /** claimJobs inside the caller's transaction; `ids`: the claimed jobs' rows */
  private claimIn(
    worker: ClaimRequest['worker'],
    limit: number,
    leaseMs: number,
    free: FreeCapacity | undefined,
    now: number,
  ): { claimed: ClaimedJob[]; ids: number[] } {
    const none = { claimed: [], ids: [] };
    {
      const window = Math.max(limit * 2, 8);
      const queues = JSON.stringify(worker.queues);
      // One ordered range scan of the claim index per queue (an IN list would sort every queued row).
      // A worker that is not root takes only jobs of namespaces mapped to no user or to its own.
      const mine = worker.unixUser === undefined ? '' : RUN_AS_FILTER;
      const user = worker.unixUser === undefined ? [] : [worker.unixUser];
      const perQueue = this.sql(
        `SELECT id, run_id, task, chunk, chunk_limit, resume, priority, enqueued_at, queues, pool, cpu, memory, resources FROM jobs
         WHERE state = 'queued' AND queue = ?${mine} ORDER BY priority DESC, resume DESC, enqueued_at, id LIMIT ?`,
      );
      const primary = worker.queues.flatMap((q) => perQueue.all(q, ...user, window) as CandidateRowDb[]);
      const fallback = this.sql(
        `SELECT id, run_id, task, chunk, chunk_limit, resume, priority, enqueued_at, queues, pool, cpu, memory, resources FROM jobs
         WHERE state = 'queued' AND has_fallback = 1 AND queue NOT IN (SELECT value FROM json_each(?))
           AND EXISTS (SELECT 1 FROM json_each(jobs.queues) q WHERE q.value IN (SELECT value FROM json_each(?)))${mine}
         ORDER BY priority DESC, resume DESC, enqueued_at, id LIMIT ?`,
      ).all(queues, queues, ...user, window) as CandidateRowDb[];
      const candidates = mergeCandidates(primary, fallback).slice(0, window);
      if (candidates.length === 0) return none;
      const poolNames = [...new Set(candidates.map((c) => c.pool).filter((p): p is string => p !== null))];
      const pools = new Map<string, { slots: number | null; running: number }>();
      if (poolNames.length) {
        const names = JSON.stringify(poolNames);
        for (const p of this.sql(`SELECT name, slots FROM pools WHERE name IN (SELECT value FROM json_each(?))`).all(names) as { name: string; slots: number | null }[])
          pools.set(p.name, { slots: p.slots, running: 0 });
        for (const r of this.sql(
          `SELECT pool, count(*) AS n FROM jobs WHERE state = 'running' AND pool IN (SELECT value FROM json_each(?)) GROUP BY pool`,
        ).all(names) as { pool: string; n: number }[]) {
          const p = pools.get(r.pool);
          if (p) p.running = r.n;
        }
      }
      const groups = new Map<string, { slots: number | null; running: number }>();
      const countChunks = this.sql(`SELECT count(*) AS n FROM jobs WHERE run_id = ? AND task = ? AND state = 'running' AND chunk IS NOT NULL`);
      for (const c of candidates) {
        const g = chunkGroup(c);
        if (g && !groups.has(g)) groups.set(g, { slots: c.chunk_limit, running: (countChunks.get(c.run_id, c.task) as { n: number }).n });
      }
      const chosen = selectClaims(
        candidates.map((c) => ({ id: c.id, queues: JSON.parse(c.queues) as string[], pool: c.pool, need: needOf(c), group: chunkGroup(c) })),
        { worker, limit, free: free ?? null, pools, groups, liveWorkers: () => this.liveWorkers(now - 2 * leaseMs) },
      );
      if (chosen.length === 0) return none;
      const insAttempt = this.sql(
        `INSERT INTO attempts (job_id, number, worker, host, state, started_at) SELECT id, attempts + 1, ?, ?, 'running', ? FROM jobs WHERE id = ?`,
      );
      const take = this.sql(
        `UPDATE jobs SET state = 'running', attempts = attempts + 1, fence = ?, worker = ?, lease_until = ?, started_at = ?, progress = NULL,
           waiting_reason = NULL, cpu_ms = NULL, max_rss_bytes = NULL WHERE id = ? RETURNING *`,
      );
      const runs = new Map<number, { params: Record<string, unknown>; logicalDate: string; force: boolean }>();
      const runStmt = this.sql(`SELECT params, logical_date, force FROM runs WHERE id = ?`);
      const upstreamStmt = this.sql(
        `SELECT task, outputs, result FROM jobs WHERE run_id = ? AND chunk IS NULL AND task IN (SELECT value FROM json_each(?))`,
      );
      const chunkRows = this.sql(`SELECT outputs, result FROM jobs WHERE run_id = ? AND task = ? AND chunk IS NOT NULL ORDER BY chunk`);
      const hasDependents = this.sql(`SELECT 1 FROM job_deps WHERE upstream_id = ? LIMIT 1`);
      const claimed: ClaimedJob[] = [];
      for (const id of chosen) {
        const fence = Number(insAttempt.run(worker.name, worker.host, now, id).lastInsertRowid);
        const row = take.get(fence, worker.name, now + leaseMs, now, id) as JobRowDb;
        let run = runs.get(row.run_id);
        if (!run) {
          const r = runStmt.get(row.run_id) as { params: string; logical_date: string; force: number };
          run = { params: JSON.parse(r.params) as Record<string, unknown>, logicalDate: r.logical_date, force: r.force === 1 };
          runs.set(row.run_id, run);
        }
        const upstream: ClaimedJob['upstream'] = {};
        if (row.refs !== '[]') {
          for (const u of upstreamStmt.all(row.run_id, row.refs) as { task: string; outputs: string; result: string | null }[]) {
            upstream[u.task] = {
              outputs: JSON.parse(u.outputs) as Record<string, string>,
              result: u.result === null ? null : (JSON.parse(u.result) as unknown),
            };
          }
        }
        const cj: ClaimedJob = { fence, job: toJob(row), run: { id: row.run_id, ...run }, upstream, hasDependents: hasDependents.get(id) !== undefined };
        if (row.chunked === 1) cj.chunks = chunksOf(chunkRows.all(row.run_id, row.task) as { outputs: string; result: string | null }[]);
        claimed.push(cj);
      }
      this.jobEvents(chosen, now);
      return { claimed, ids: chosen };
    }
  }

  /** Active workers heard from since `since`, with what they have free (for queue preference). */
  private liveWorkers(since: number): LiveWorker[] {
    const rows = this.sql(`SELECT * FROM workers WHERE state = 'active' AND heartbeat_at >= ?`).all(since) as WorkerRowDb[];
    const running = this.sql(`SELECT worker, run_id, task, chunk, cpu, memory, resources FROM jobs WHERE state = 'running'`).all() as RunningRowDb[];
    return liveWorkersFrom(rows, running);
  }

  async releaseAttempt(fence: number, reason: string): Promise<boolean> {
    const now = this.clock.now();
    return this.tx(() => {
      const j = this.sql(`SELECT id FROM jobs WHERE fence = ? AND state = 'running'`).get(fence) as { id: number } | undefined;
      if (!j) return false;
      this.sql(`UPDATE attempts SET state = 'lost', finished_at = ?, error = ? WHERE id = ?`).run(now, reason, fence);
      this.sql(`UPDATE jobs SET state = 'queued', fence = NULL, lease_until = NULL, worker = NULL WHERE id = ?`).run(j.id);
      this.jobEvents([j.id], now);
      this.signal({ type: 'queued' });
      return true;
    });
  }

  async setAttemptPid(fence: number, pid: number): Promise<void> {
    this.sql(`UPDATE attempts SET pid = ? WHERE id = ?`).run(pid, fence);
  }

  async assertCurrent(fence: number, renewLeaseMs?: number): Promise<void> {
    const ok =
      renewLeaseMs === undefined
        ? (this.sql(`SELECT state FROM jobs WHERE fence = ?`).get(fence) as { state: JobState } | undefined)?.state === 'running'
        : this.sql(`UPDATE jobs SET lease_until = ? WHERE fence = ? AND state = 'running'`).run(this.clock.now() + renewLeaseMs, fence).changes === 1;
    if (!ok) throw new StaleFenceError(fence, 'its job was cancelled, reaped or taken over');
  }

  async saveCheckpoint(fence: number, data: unknown): Promise<void> {
    const json = checkpointJson(data);
    // resume follows the checkpoint: it only orders queued jobs, so setting it now covers every way back to the queue.
    const r = this.sql(`UPDATE jobs SET checkpoint = ?, resume = ? WHERE fence = ? AND state = 'running'`).run(json, json === null ? 0 : 1, fence);
    if (r.changes !== 1) throw new StaleFenceError(fence, 'a checkpoint of an attempt that no longer owns its job');
  }

  async completeAttempt(fence: number, outcome: AttemptOutcome, lines: LogLine[] = []): Promise<Job> {
    const [r] = await this.completeAttempts([{ fence, outcome, lines }]);
    if (r instanceof StaleFenceError) throw r;
    return r!;
  }

  async completeAttempts(items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[]): Promise<(Job | StaleFenceError)[]> {
    const now = this.clock.now();
    const rows = this.tx(() => this.completeIn(items, now));
    return rows.map((r) => (r instanceof StaleFenceError ? r : toJob(r)));
  }

  async completeAndClaim(
    items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[],
    claimFor: () => Promise<ClaimRequest | null>,
  ): Promise<{ completed: (Job | StaleFenceError)[]; claimed: ClaimedJob[] }> {
    const claim = await claimFor();
    const now = this.clock.now();
    const { rows, claimed } = this.tx(() => {
      const promoted = new Set<number>();
      this.promoted = promoted;
      try {
        const rows = this.completeIn(items, now);
        this.promoted = null;
        const { claimed, ids } = claim && claim.limit > 0 ? this.claimIn(claim.worker, claim.limit, claim.leaseMs, claim.free, now) : { claimed: [], ids: [] };
        // Other workers are woken only for what this one left.
        for (const id of ids) promoted.delete(id);
        if (promoted.size) this.signal({ type: 'queued' });
        return { rows, claimed };
      } finally {
        this.promoted = null;
      }
    });
    return { completed: rows.map((r) => (r instanceof StaleFenceError ? r : toJob(r))), claimed };
  }

  private completeIn(items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[], now: number): (JobRowDb | StaleFenceError)[] {
    return items.map((it) => {
      try {
        return this.completeOne(it.fence, it.outcome, it.lines ?? [], now);
      } catch (e) {
        if (e instanceof StaleFenceError) return e;
        throw e;
      }
    });
  }

  /** set inside completeAndClaim: the jobs settle() queues, announced after its claim (only those it did not take) */
  private promoted: Set<number> | null = null;

  /** One attempt's outcome, inside the caller's transaction; throws StaleFenceError (before writing anything) if it is not current. */
  private completeOne(fence: number, outcome: AttemptOutcome, lines: LogLine[], now: number): JobRowDb {
    const j = this.sql(`SELECT * FROM jobs WHERE fence = ?`).get(fence) as JobRowDb | undefined;
    if (!j || j.state !== 'running') throw new StaleFenceError(fence, 'its job was cancelled, reaped or taken over');
    this.insertLogs(j, fence, lines);
    const exitCode = outcome.state === 'skipped' ? null : outcome.exitCode;
    const error = outcome.state === 'failed' || outcome.state === 'timed_out' ? outcome.error : null;
    const usage = outcome.state === 'skipped' ? undefined : outcome.usage;
    const cpuMs = usage?.cpuMs ?? null;
    const maxRss = usage?.maxRssBytes ?? null;
    this.sql(`UPDATE attempts SET state = ?, finished_at = ?, exit_code = ?, error = ?, cpu_ms = ?, max_rss_bytes = ? WHERE id = ?`)
      .run(outcome.state, now, exitCode, error, cpuMs, maxRss, fence);
    if (outcome.state === 'succeeded' || outcome.state === 'skipped') {
      if (outcome.state === 'succeeded' && outcome.chunks) this.createChunks(j, outcome.chunks, now);
      const result = outcome.state === 'succeeded' && outcome.result !== undefined ? JSON.stringify(outcome.result) : null;
      this.sql(
          `UPDATE jobs SET state = ?, skip_reason = ?, finished_at = ?, exit_code = ?, result = ?, error = NULL, fence = NULL,
             lease_until = NULL, cpu_ms = ?, max_rss_bytes = ? WHERE id = ?`,
        )
        .run(outcome.state, outcome.state === 'skipped' ? 'outputs_exist' : null, now, exitCode, result, cpuMs, maxRss, j.id);
      this.jobEvents([j.id], now);
      this.settle([j.id], [], [], now);
    } else {
      const failures = j.failures + 1;
      if (outcome.retryable !== false && failures <= j.max_retries) {
        const delay = retryDelayMs(j, failures);
        this.sql(
            `UPDATE jobs SET state = 'retrying', failures = ?, run_after = ?, exit_code = ?, error = ?, fence = NULL, lease_until = NULL,
               cpu_ms = ?, max_rss_bytes = ? WHERE id = ?`,
          )
          .run(failures, now + delay, exitCode, error, cpuMs, maxRss, j.id);
        this.jobEvents([j.id], now);
        for (const n of failureNotes(j, fence, outcome, failures, delay, now + delay)) insertAudit(this.db, n, now);
        this.signal({ type: 'retrying' });
      } else {
        for (const n of failureNotes(j, fence, outcome, failures, null, null)) insertAudit(this.db, n, now);
        this.sql(
            `UPDATE jobs SET state = 'failed', failures = ?, finished_at = ?, exit_code = ?, error = ?, fence = NULL, lease_until = NULL,
               cpu_ms = ?, max_rss_bytes = ? WHERE id = ?`,
          )
          .run(failures, now, exitCode, error, cpuMs, maxRss, j.id);
        this.jobEvents([j.id], now);
        this.settle([], [j.id], [], now);
      }
    }
    this.finishRunIfDone(j.run_id, now);
    return this.sql(`SELECT * FROM jobs WHERE id = ?`).get(j.id) as JobRowDb;
  }

  /**
   * A split step succeeded: one queued job per element of its array, each a
   * dependency of the task's main job (its combine), which now waits for the
   * split and every chunk. Chunks of an earlier split of the task are replaced.
   * Called before the split's own completion is counted into the main job, so an
   * empty array leaves the main job waiting only for the split: it queues next.
   */
  private createChunks(split: JobRowDb, chunks: ChunkPlan[], now: number): void {
    const task = split.task.endsWith(SPLIT_SUFFIX) ? split.task.slice(0, -SPLIT_SUFFIX.length) : null;
    const main = task === null ? undefined : (this.sql(`SELECT * FROM jobs WHERE run_id = ? AND task = ? AND chunk IS NULL`).get(split.run_id, task) as JobRowDb | undefined);
    if (!main || main.chunked !== 1) throw new Error(`job ${split.task} of run ${split.run_id} returned chunks but is not the split step of a split task`);
    this.dropChunks(split.run_id, main.task);
    const ins = this.sql(
      `INSERT INTO jobs (run_id, task, chunk, state, trigger_rule, deps_total, priority, queue, queues, has_fallback, cpu, memory, resources,
         pool, max_retries, retry_delay_ms, retry_backoff, retry_max_delay_ms, force, outputs, refs, enqueued_at, chunk_value, chunk_limit, stage)
       SELECT run_id, task, ?, 'queued', 'all_success', 0, priority, queue, queues, has_fallback, cpu, memory, resources,
         pool, max_retries, retry_delay_ms, retry_backoff, retry_max_delay_ms, force, ?, refs, ?, ?, chunk_limit, stage FROM jobs WHERE id = ?`,
    );
    const dep = this.sql(`INSERT INTO job_deps (upstream_id, job_id) VALUES (?, ?)`);
    const ids: number[] = [];
    chunks.forEach((c, i) => {
      const id = Number(ins.run(i, JSON.stringify(c.outputs), now, JSON.stringify(c.value ?? null), main.id).lastInsertRowid);
      dep.run(id, main.id);
      ids.push(id);
    });
    this.sql(`UPDATE jobs SET deps_total = ?, deps_ok = 0, deps_bad = 0 WHERE id = ?`).run(1 + chunks.length, main.id);
    if (ids.length) {
      this.jobEvents(ids, now);
      if (this.promoted) for (const id of ids) this.promoted.add(id);
      else this.signal({ type: 'queued' });
    }
  }

  /** Deletes a split task's chunk jobs (their attempts, logs and dependency rows) before a new split replaces them. */
  private dropChunks(runId: number, task: string): void {
    const old = `SELECT id FROM jobs WHERE run_id = ? AND task = ? AND chunk IS NOT NULL`;
    this.sql(`DELETE FROM job_deps WHERE upstream_id IN (${old})`).run(runId, task);
    this.sql(`DELETE FROM logs WHERE job_id IN (${old})`).run(runId, task);
    this.sql(`DELETE FROM jobs WHERE run_id = ? AND task = ? AND chunk IS NOT NULL`).run(runId, task);
  }

  /**
   * Counts finished upstreams (`good`: succeeded or done; `bad`: failed, cancelled,
   * skipped) into their dependents, then queues or skips every dependent (and every
   * `candidate`) whose upstreams are all settled. Skips cascade downstream.
   */
  private settle(good: number[], bad: number[], candidates: number[], now: number): void {
    let touched = candidates;
    while (good.length || bad.length || touched.length) {
      touched = [...touched, ...this.deps.countInto(good, bad)];
      if (touched.length === 0) break;
      const { queued, skipped } = this.deps.resolve(touched, now);
      this.jobEvents([...queued, ...skipped], now);
      if (queued.length) {
        if (this.promoted) for (const id of queued) this.promoted.add(id);
        else this.signal({ type: 'queued' });
      }
      good = [];
      bad = skipped;
      touched = [];
    }
  }

  async appendLogs(fence: number, lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    this.tx(() => {
      const j = this.sql(`SELECT id, run_id, state FROM jobs WHERE fence = ?`).get(fence) as
        | { id: number; run_id: number; state: JobState }
        | undefined;
      if (!j || j.state !== 'running') throw new StaleFenceError(fence, 'log lines of an attempt that no longer owns its job');
      this.insertLogs(j, fence, lines);
    });
  }

  private insertLogs(j: { id: number; run_id: number }, fence: number, lines: LogLine[]): void {
    if (lines.length === 0) return;
    const ins = this.sql(`INSERT INTO logs (run_id, job_id, attempt_id, stream, ts, line) VALUES (?, ?, ?, ?, ?, ?)`);
    for (const l of lines) ins.run(j.run_id, j.id, fence, l.stream, l.ts, l.line);
    this.signal({ type: 'logs' });
  }

  async readLogs(q: { runId?: number; jobId?: string; afterId?: number; limit?: number }): Promise<StoredLogLine[]> {
    const base = `SELECT l.id, l.stream, l.ts, l.line, j.run_id, j.task, j.chunk, a.number
      FROM logs l JOIN jobs j ON j.id = l.job_id JOIN attempts a ON a.id = l.attempt_id`;
    const after = q.afterId ?? 0;
    const limit = q.limit ?? 10_000;
    if (q.jobId !== undefined) {
      const j = this.jobRowByPublicId(q.jobId);
      if (!j) throw new NotFoundError(`no job ${q.jobId}`);
      return (this.sql(`${base} WHERE l.job_id = ? AND l.id > ? ORDER BY l.id LIMIT ?`).all(j.id, after, limit) as LogRowDb[]).map(
        toLogLine,
      );
    }
    if (q.runId !== undefined)
      return (this.sql(`${base} WHERE l.run_id = ? AND l.id > ? ORDER BY l.id LIMIT ?`).all(q.runId, after, limit) as LogRowDb[]).map(
        toLogLine,
      );
    throw new Error('readLogs needs a runId or a jobId');
  }

  // ---------------------------------------------------------- scheduler duties

  async promoteDueRetries(): Promise<number> {
    const now = this.clock.now();
    return this.tx(() => {
      const rows = this.sql(`UPDATE jobs SET state = 'queued', enqueued_at = ?, run_after = NULL WHERE state = 'retrying' AND run_after <= ? RETURNING id`)
        .all(now, now) as { id: number }[];
      if (rows.length) {
        this.jobEvents(
          rows.map((r) => r.id),
          now,
        );
        this.signal({ type: 'queued' });
      }
      return rows.length;
    });
  }

  async nextRetryAt(): Promise<number | null> {
    const r = this.sql(`SELECT min(run_after) AS t FROM jobs WHERE state = 'retrying'`).get() as { t: number | null };
    return r.t;
  }

  async findLostAttempts(deadWorkers: string[]) {
    return (this.sql(LOST_SQL).all(this.clock.now(), JSON.stringify(deadWorkers)) as LostCandidateDb[]).map(toLostCandidate);
  }

  async reapLostAttempts(deadWorkers: string[], onlyFences?: number[], actor = 'store') {
    const now = this.clock.now();
    return this.tx(() => {
      const rows = (this.sql(LOST_SQL).all(now, JSON.stringify(deadWorkers)) as LostCandidateDb[]).filter(
        (r) => !onlyFences || onlyFences.includes(r.fence),
      );
      this.markDead(deadWorkers.map((name) => ({ name, reason: 'named dead by the reaper of lost attempts' })), actor, now);
      if (rows.length === 0) return [];
      const markLost = this.sql(`UPDATE attempts SET state = 'lost', finished_at = ?, error = ? WHERE id = ?`);
      // The job goes back to the queue with its original enqueue time, so it is taken again first.
      const requeue = this.sql(`UPDATE jobs SET state = 'queued', fence = NULL, lease_until = NULL, worker = NULL WHERE id = ?`);
      for (const r of rows) {
        const why = r.lease_until < now ? `lease expired (worker ${r.worker} stopped heartbeating)` : `worker ${r.worker} died or stopped`;
        markLost.run(now, why, r.fence);
        requeue.run(r.id);
        insertAudit(this.db, reapNote(r, now, actor), now);
      }
      this.jobEvents(
        rows.map((r) => r.id),
        now,
      );
      this.signal({ type: 'revoked', fences: rows.map((r) => r.fence) });
      this.signal({ type: 'queued' });
      return rows.map(toLostCandidate);
    });
  }

  async listLostAttempts(host: string, since: number) {
    const rows = this.sql(
      `SELECT a.id, a.pid, j.run_id, j.task, j.chunk, j.outputs FROM attempts a JOIN jobs j ON j.id = a.job_id
       WHERE a.host = ? AND a.state = 'lost' AND a.finished_at >= ? ORDER BY a.id`,
    ).all(host, since) as LostRowDb[];
    return rows.map(toLost);
  }

  async finishIdleRuns(): Promise<number> {
    const now = this.clock.now();
    return this.tx(() => {
      const idle = this.sql(
        `SELECT id FROM runs r WHERE state = 'running' AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id AND j.state IN ${ACTIVE})`,
      ).all() as { id: number }[];
      for (const r of idle) this.finishRunIfDone(r.id, now);
      return idle.length;
    });
  }

  async updateWaitingReasons(workerTimeoutMs: number): Promise<number> {
    const now = this.clock.now();
    return this.tx(() => {
      const workers = (this.sql(`SELECT * FROM workers WHERE state = 'active' AND heartbeat_at >= ?`).all(now - workerTimeoutMs) as WorkerRowDb[]).map(offeredBy);
      // grouped by the Unix user its namespace runs as too: only root workers and that user's may take it
      const groups = this.sql(
        `SELECT j.queues, j.cpu, j.memory, j.resources, j.waiting_reason, n.run_user, count(*) AS n
         FROM jobs j JOIN runs r ON r.id = j.run_id LEFT JOIN namespaces n ON n.namespace = r.namespace WHERE j.state = 'queued'
         GROUP BY j.queues, j.cpu, j.memory, j.resources, j.waiting_reason, n.run_user`,
      ).all() as (WaitingGroupDb & { run_user: string | null })[];
      const set = this.sql(
        `UPDATE jobs SET waiting_reason = ? WHERE state = 'queued' AND queues = ? AND cpu = ? AND memory IS ? AND resources = ? AND waiting_reason IS ?
           AND (SELECT n.run_user FROM runs r LEFT JOIN namespaces n ON n.namespace = r.namespace WHERE r.id = jobs.run_id) IS ?`,
      );
      let changed = 0;
      for (const g of groups) {
        const queues = JSON.parse(g.queues) as string[];
        const reason = unfittableReason(queues, needOf(g), workers) ?? runAsReason(queues, g.run_user, workers);
        if (reason !== g.waiting_reason) changed += set.run(reason, g.queues, g.cpu, g.memory, g.resources, g.waiting_reason, g.run_user).changes;
      }
      return changed;
    });
  }

  async acquireLeadership(role: string, holder: string, ttlMs: number, takeoverFrom?: string): Promise<boolean> {
    const now = this.clock.now();
    return this.tx(() => {
      const prev = this.sql(`SELECT holder, until FROM leaders WHERE role = ?`).get(role) as { holder: string; until: number } | undefined;
      const taken =
        this.sql(
          `INSERT INTO leaders (role, holder, until) VALUES (?, ?, ?)
           ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until = excluded.until
           WHERE leaders.holder = excluded.holder OR leaders.until < ? OR leaders.holder = ?`,
        ).run(role, holder, now + ttlMs, now, takeoverFrom ?? null).changes === 1;
      if (taken && prev && prev.holder !== holder) insertAudit(this.db, takeoverNote(role, holder, prev, now, takeoverFrom), now);
      return taken;
    });
  }

  async currentLeader(role: string): Promise<{ holder: string; until: number } | null> {
    return (this.sql(`SELECT holder, until FROM leaders WHERE role = ?`).get(role) as { holder: string; until: number } | undefined) ?? null;
  }

  async releaseLeadership(role: string, holder: string): Promise<void> {
    this.sql(`DELETE FROM leaders WHERE role = ? AND holder = ?`).run(role, holder);
  }

  // ------------------------------------------------------------------ schedules

  async startScheduledRun(tick: ScheduleTick, overlap: Overlap, input: CreateRunInput, note?: AuditNote): Promise<ScheduledRunResult> {
    const now = this.clock.now();
    type Outcome = { outcome: 'started'; id: number; cancelled: number[] } | Exclude<ScheduledRunResult, { outcome: 'started' }>;
    const r = this.tx((): Outcome => {
      if (!this.recordTick(tick, now)) return { outcome: 'duplicate' };
      // Overlap looks at the runs that were there when the tick came: runs created by a catch-up
      // of earlier missed ticks do not skip or cancel each other.
      const running = (
        this.sql(
            `SELECT r.id FROM runs r JOIN schedule_ticks t ON t.run_id = r.id
             WHERE r.namespace = ? AND r.workflow = ? AND r.state = 'running' AND r.created_at <= ?
               AND t.namespace = r.namespace AND t.workflow = r.workflow AND t.schedule = ?
             ORDER BY r.id`,
          )
          .all(tick.namespace, tick.workflow, tick.at, tick.schedule) as { id: number }[]
      ).map((x) => x.id);
      const key = [tick.namespace, tick.workflow, tick.schedule, tick.at];
      const where = 'namespace = ? AND workflow = ? AND schedule = ? AND tick = ?';
      if (overlap === 'skip' && running.length > 0) {
        this.sql(`UPDATE schedule_ticks SET outcome = 'skipped', reason = ? WHERE ${where}`).run(`overlap skip: run ${running.join(', ')} still running`, ...key);
        return { outcome: 'skipped', running };
      }
      if (overlap === 'cancel_running') for (const id of running) this.cancelRunRow(id, now);
      const id = this.insertRun(input, now);
      this.sql(`UPDATE schedule_ticks SET run_id = ? WHERE ${where}`).run(id, ...key);
      if (note) insertAudit(this.db, { ...note, runId: id }, now);
      return { outcome: 'started', id, cancelled: overlap === 'cancel_running' ? running : [] };
    });
    return r.outcome === 'started' ? { outcome: 'started', run: (await this.getRun(r.id))!, cancelled: r.cancelled } : r;
  }

  async skipScheduleTick(tick: ScheduleTick, reason: string): Promise<boolean> {
    const now = this.clock.now();
    return this.tx(() => this.recordTick(tick, now, 'failed', reason));
  }

  /**
   * Records a tick under its unique key and moves its schedule's mark to it;
   * false (nothing written) when the tick, or a later one, is already recorded.
   */
  private recordTick(tick: ScheduleTick, now: number, outcome: 'started' | 'failed' = 'started', reason: string | null = null): boolean {
    const key = [tick.namespace, tick.workflow, tick.schedule, tick.at];
    const added = this.sql(
        `INSERT INTO schedule_ticks (namespace, workflow, schedule, tick, outcome, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      )
      .run(...key, outcome, reason, now);
    if (added.changes === 0) return false;
    const moved = this.sql(
        `INSERT INTO schedule_marks (namespace, workflow, schedule, last_tick) VALUES (?, ?, ?, ?)
         ON CONFLICT (namespace, workflow, schedule) DO UPDATE SET last_tick = excluded.last_tick WHERE last_tick < excluded.last_tick`,
      )
      .run(...key);
    if (moved.changes === 1) return true;
    // An older tick than one already acted on (a scheduler that lagged behind): not acted on.
    this.sql('DELETE FROM schedule_ticks WHERE namespace = ? AND workflow = ? AND schedule = ? AND tick = ?').run(...key);
    return false;
  }

  async scheduleMarks(): Promise<ScheduleMark[]> {
    return (this.sql('SELECT * FROM schedule_marks ORDER BY namespace, workflow, schedule').all() as MarkRowDb[]).map(toMark);
  }

  async deferRun(input: DeferRunInput): Promise<DeferredRun> {
    const now = this.clock.now();
    const id = this.tx(() => {
      const r = this.sql(
          `INSERT INTO deferred_runs (namespace, workflow, params, labels, priority, force, due_at, state, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'waiting', ?)`,
        )
        .run(input.namespace, input.workflow, JSON.stringify(input.params), JSON.stringify(input.labels), input.priority, input.force ? 1 : 0, input.dueAt, now);
      this.signal({ type: 'schedules' });
      return Number(r.lastInsertRowid);
    });
    return this.deferred(id)!;
  }

  private deferred(id: number): DeferredRun | null {
    const r = this.sql('SELECT * FROM deferred_runs WHERE id = ?').get(id) as DeferredRowDb | undefined;
    return r ? toDeferred(r) : null;
  }

  async getDeferredRun(id: number): Promise<DeferredRun | null> {
    return this.deferred(id);
  }

  async listDeferredRuns(f: DeferredFilter): Promise<DeferredRun[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.namespace) (where.push('namespace = ?'), args.push(f.namespace));
    if (f.namespaces) where.push(inNamespaces('namespace', f.namespaces, (v) => (args.push(v), '?')));
    if (f.workflow) (where.push('workflow = ?'), args.push(f.workflow));
    if (f.state) (where.push('state = ?'), args.push(f.state));
    if (f.dueBy !== undefined) (where.push('due_at <= ?'), args.push(f.dueBy));
    const sql = `SELECT * FROM deferred_runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY due_at, id LIMIT ?`;
    return (this.sql(sql).all(...args, f.limit ?? 100) as DeferredRowDb[]).map(toDeferred);
  }

  async startDeferredRun(id: number, input: CreateRunInput): Promise<Run | null> {
    const now = this.clock.now();
    const runId = this.tx(() => {
      const taken = this.sql(`UPDATE deferred_runs SET state = 'started' WHERE id = ? AND state = 'waiting'`).run(id);
      if (taken.changes === 0) return null;
      const rid = this.insertRun(input, now);
      this.sql('UPDATE deferred_runs SET run_id = ? WHERE id = ?').run(rid, id);
      return rid;
    });
    return runId === null ? null : (await this.getRun(runId))!;
  }

  async endDeferredRun(id: number, state: 'failed' | 'cancelled', error: string): Promise<DeferredRun> {
    this.tx(() => {
      const d = this.deferred(id);
      if (!d) throw new NotFoundError(`no deferred run ${id}`);
      if (d.state !== 'waiting') throw new ConflictError(`deferred run ${id} has already ${d.state === 'started' ? `started (run ${d.runId})` : d.state}`);
      this.sql('UPDATE deferred_runs SET state = ?, error = ? WHERE id = ?').run(state, error, id);
    });
    return this.deferred(id)!;
  }

  // ------------------------------------------------------------------- services

  private serviceRow(namespace: string, name: string): ServiceRowDb | undefined {
    return this.sql(`SELECT * FROM services WHERE namespace = ? AND name = ?`).get(namespace, name) as ServiceRowDb | undefined;
  }

  /** Writes the row; a change of state goes to the outbox (events) in the same transaction. */
  private writeService(next: ServiceRowDb, before: ServiceRowDb | undefined, cause?: string): void {
    this.sql(upsertServiceSql(() => '?')).run(...serviceValues(next));
    const e = serviceEvent(before, next, cause);
    if (e) this.outboxEvent(e);
  }

  async listServices(f: { namespace?: string } = {}): Promise<ServiceRow[]> {
    const defs = (this.sql(`SELECT namespace, name FROM definitions WHERE kind = 'service'`).all() as { namespace: string; name: string }[])
      .filter((d) => f.namespace === undefined || d.namespace === f.namespace);
    const rows = this.sql(`SELECT * FROM services`).all() as ServiceRowDb[];
    return serviceList(defs, rows, this.clock.now());
  }

  async getService(namespace: string, name: string): Promise<ServiceRow | null> {
    return (await this.listServices({ namespace })).find((s) => s.name === name) ?? null;
  }

  async startService(namespace: string, name: string): Promise<ServiceRow> {
    const now = this.clock.now();
    return this.tx(() => {
      const def = this.sql(`SELECT spec FROM definitions WHERE namespace = ? AND name = ? AND kind = 'service'`).get(namespace, name) as { spec: string } | undefined;
      if (!def) throw new NotFoundError(`no service ${namespace}/${name}`);
      const row = this.serviceRow(namespace, name);
      const next = started(row ?? neverStarted(namespace, name, now), JSON.parse(def.spec) as ServiceSpec, now);
      this.writeService(next, row);
      this.signal({ type: 'services' });
      return toService(next);
    });
  }

  async stopService(namespace: string, name: string): Promise<ServiceRow> {
    const now = this.clock.now();
    return this.tx(() => {
      const row = this.serviceRow(namespace, name);
      if (!row) {
        const def = this.sql(`SELECT 1 FROM definitions WHERE namespace = ? AND name = ? AND kind = 'service'`).get(namespace, name);
        if (!def) throw new NotFoundError(`no service ${namespace}/${name}`);
        return toService(neverStarted(namespace, name, now));
      }
      const next = stopped(row, now);
      this.writeService(next, row);
      if (next.state === 'stopping') this.signal({ type: 'services' });
      return toService(next);
    });
  }

  async claimServices(worker: { name: string; host: string; queues: string[] }, free: FreeCapacity, leaseMs: number): Promise<{ claimed: ClaimedService[]; nextStartAt: number | null }> {
    const now = this.clock.now();
    return this.tx(() => {
      const rows = this.sql(
        `SELECT * FROM services WHERE desired = 'up' AND state IN ('starting', 'backoff', 'flapping') ORDER BY next_start_at, namespace, name`,
      ).all() as ServiceRowDb[];
      const { picked, nextStartAt } = pickServices(rows, worker, free, now, leaseMs);
      const dropOld = this.sql(`DELETE FROM service_logs WHERE namespace = ? AND name = ? AND instance <= ?`);
      for (const p of picked) {
        this.writeService(p.row, rows.find((r) => r.namespace === p.row.namespace && r.name === p.row.name));
        // a new instance: only the last SERVICE_LOG_INSTANCES keep their lines
        dropOld.run(p.row.namespace, p.row.name, p.row.fence - SERVICE_LOG_INSTANCES);
      }
      return { claimed: picked.map((p) => p.claim), nextStartAt };
    });
  }

  async setServicePid(ref: ServiceRef, pid: number): Promise<void> {
    this.sql(`UPDATE services SET pid = ? WHERE namespace = ? AND name = ? AND fence = ?`).run(pid, ref.namespace, ref.name, ref.fence);
  }

  async renewServices(worker: string, refs: ServiceRef[], leaseMs: number): Promise<ServiceRef[]> {
    const now = this.clock.now();
    return this.tx(() => {
      const renew = this.sql(
        `UPDATE services SET lease_until = ? WHERE namespace = ? AND name = ? AND fence = ? AND worker = ? AND state IN ('up', 'stopping') RETURNING state`,
      );
      return refs.filter((r) => (renew.get(now + leaseMs, r.namespace, r.name, r.fence, worker) as { state: ServiceState } | undefined)?.state !== 'up');
    });
  }

  async serviceExited(ref: ServiceRef, exit: ServiceExitReport, lines: LogLine[] = []): Promise<ServiceRow> {
    const now = this.clock.now();
    return this.tx(() => {
      let row = this.serviceRow(ref.namespace, ref.name);
      if (!row || row.fence !== ref.fence || !isRunning(row.state)) throw new StaleFenceError(ref.fence, `service ${ref.namespace}/${ref.name} has a newer instance`);
      if (lines.length) {
        this.storeServiceLines(ref, lines);
        row = this.serviceRow(ref.namespace, ref.name)!;
      }
      const change = exited(row, exit, now);
      this.writeService(change.row, row, change.audit.map((a) => a.reason).join('; ') || undefined);
      for (const n of serviceAuditNotes(change, `worker:${row.worker}`)) insertAudit(this.db, n, now);
      this.signal({ type: 'services' });
      return toService(change.row);
    });
  }

  async releaseService(ref: ServiceRef, reason: string, lines: LogLine[] = []): Promise<boolean> {
    const now = this.clock.now();
    return this.tx(() => {
      let row = this.serviceRow(ref.namespace, ref.name);
      if (!row || row.fence !== ref.fence || !isRunning(row.state)) return false;
      if (lines.length) {
        this.storeServiceLines(ref, lines);
        row = this.serviceRow(ref.namespace, ref.name)!;
      }
      this.writeService(moved(row, reason, now, false).row, row, `given back by worker ${row.worker} (${reason}): free for any worker`);
      this.signal({ type: 'services' });
      return true;
    });
  }

  async reapLostServices(deadWorkers: string[]): Promise<ServiceRow[]> {
    const now = this.clock.now();
    return this.tx(() => {
      const rows = this.sql(
        `SELECT * FROM services WHERE state IN ('up', 'stopping') AND (lease_until < ? OR worker IN (SELECT value FROM json_each(?))
           OR worker IN (SELECT name FROM workers WHERE state = 'stopped'))`,
      ).all(now, JSON.stringify(deadWorkers)) as ServiceRowDb[];
      const out = rows.map((r) => {
        // its worker cannot say why the instance ended: the store does, as its last line
        this.storeServiceLines({ namespace: r.namespace, name: r.name, fence: r.fence }, [lostLine(r.worker, now)]);
        const change = moved(r, `worker ${r.worker} lost`, now, true);
        this.writeService(change.row, r, change.audit[0]?.reason);
        for (const n of serviceAuditNotes(change, 'scheduler')) insertAudit(this.db, n, now);
        return toService(change.row);
      });
      if (out.length) this.signal({ type: 'services' });
      return out;
    });
  }

  async appendServiceLogs(ref: ServiceRef, lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    this.tx(() => {
      const row = this.sql(`SELECT fence, state FROM services WHERE namespace = ? AND name = ?`).get(ref.namespace, ref.name) as
        | { fence: number; state: ServiceState }
        | undefined;
      if (!row || row.fence !== ref.fence || !isRunning(row.state))
        throw new StaleFenceError(ref.fence, `log lines of service ${ref.namespace}/${ref.name} from an instance that is no longer current`);
      this.storeServiceLines(ref, lines);
    });
  }

  /** Inserts an instance's lines, counts them against its cap and trims its oldest ones past it (inside a transaction). */
  private storeServiceLines(ref: ServiceRef, lines: LogLine[]): void {
    const ins = this.sql(`INSERT INTO service_logs (namespace, name, instance, stream, ts, line, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    let added = 0;
    for (const raw of lines) {
      const l = serviceLogLine(raw);
      const bytes = lineBytes(l);
      ins.run(ref.namespace, ref.name, ref.fence, l.stream, l.ts, l.line, bytes);
      added += bytes;
    }
    const { log_bytes: held } = this.sql(`UPDATE services SET log_bytes = log_bytes + ? WHERE namespace = ? AND name = ? RETURNING log_bytes`).get(
      added, ref.namespace, ref.name,
    ) as { log_bytes: number };
    const excess = trimExcess(held);
    if (excess > 0) {
      // the oldest lines up to `excess` bytes go; the mark takes the last one's id, so it reads in their place
      const cut = this.sql(
        `SELECT id, ts FROM (SELECT id, ts, sum(bytes) OVER (ORDER BY id) AS acc FROM service_logs WHERE namespace = ? AND name = ? AND instance = ?)
         WHERE acc >= ? ORDER BY id LIMIT 1`,
      ).get(ref.namespace, ref.name, ref.fence, excess) as { id: number; ts: number };
      this.sql(`DELETE FROM service_logs WHERE namespace = ? AND name = ? AND instance = ? AND id <= ?`).run(ref.namespace, ref.name, ref.fence, cut.id);
      this.sql(`INSERT INTO service_logs (id, namespace, name, instance, stream, ts, line, bytes) VALUES (?, ?, ?, ?, 'system', ?, ?, ?)`).run(
        cut.id, ref.namespace, ref.name, ref.fence, cut.ts, TRIM_MARK, Buffer.byteLength(TRIM_MARK) + 1,
      );
      this.sql(
        `UPDATE services SET log_bytes = (SELECT coalesce(sum(bytes), 0) FROM service_logs WHERE namespace = ? AND name = ? AND instance = ?)
         WHERE namespace = ? AND name = ?`,
      ).run(ref.namespace, ref.name, ref.fence, ref.namespace, ref.name);
    }
    this.signal({ type: 'logs' });
  }

  async readServiceLogs(q: ServiceLogQuery): Promise<ServiceLogLine[]> {
    const row = this.serviceRow(q.namespace, q.name);
    if (!row && !this.sql(`SELECT 1 FROM definitions WHERE namespace = ? AND name = ? AND kind = 'service'`).get(q.namespace, q.name))
      throw new NotFoundError(`no service ${q.namespace}/${q.name}`);
    const [from, to] = q.instance !== undefined ? [q.instance, q.instance] : [(row?.fence ?? 0) - (q.restarts ?? 0), Number.MAX_SAFE_INTEGER];
    const where = `FROM service_logs WHERE namespace = ? AND name = ? AND instance >= ? AND instance <= ? AND id > ?`;
    const args = [q.namespace, q.name, from, to, q.afterId ?? 0];
    const limit = q.limit ?? 10_000;
    const rows =
      q.tail !== undefined
        ? (this.sql(`SELECT * FROM (SELECT id, instance, stream, ts, line ${where} ORDER BY instance DESC, id DESC LIMIT ?) ORDER BY instance, id LIMIT ?`).all(
            ...args, q.tail, limit,
          ) as ServiceLogLine[])
        : (this.sql(`SELECT id, instance, stream, ts, line ${where} ORDER BY instance, id LIMIT ?`).all(...args, limit) as ServiceLogLine[]);
    return rows;
  }

  // ---------------------------------------------------------------------- pools

  async setPool(name: string, slots: number | null): Promise<PoolRow> {
    const now = this.clock.now();
    this.tx(() => {
      this.sql(`INSERT INTO pools (name, slots, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, updated_at = excluded.updated_at`).run(
        name,
        slots,
        now,
      );
      // A raised limit may let queued jobs run now.
      this.signal({ type: 'queued' });
    });
    return (await this.listPools()).find((p) => p.name === name)!;
  }

  async listPools(): Promise<PoolRow[]> {
    const rows = this.sql(
      `SELECT name, max(slots) AS slots, sum(running) AS running, sum(queued) AS queued FROM (
         SELECT name, slots, 0 AS running, 0 AS queued FROM pools
         UNION ALL
         SELECT pool, NULL, sum(state = 'running'), sum(state = 'queued') FROM jobs WHERE pool IS NOT NULL AND state IN ('running', 'queued') GROUP BY pool
       ) GROUP BY name ORDER BY name`,
    ).all() as { name: string; slots: number | null; running: number; queued: number }[];
    return rows.map((r) => ({ name: r.name, slots: r.slots, running: r.running, queued: r.queued }));
  }

  // ----------------------------------------------------------------------- auth

  /** Inside the caller's transaction. */
  private insertToken(t: NewApiToken, now: number): void {
    this.sql('INSERT INTO api_tokens (id, hash, role, name, created_at) VALUES (?, ?, ?, ?, ?)').run(t.id, t.hash, t.role, t.name, now);
    for (const ns of new Set(t.namespaces)) this.sql('INSERT INTO api_token_namespaces (token_id, namespace) VALUES (?, ?)').run(t.id, ns);
  }

  async createToken(t: NewApiToken): Promise<ApiToken> {
    this.tx(() => this.insertToken(t, this.clock.now()));
    return publicToken((await this.findToken(t.id))!);
  }

  async createFirstToken(t: NewApiToken): Promise<ApiToken | null> {
    // IMMEDIATE: a second process starting at once waits, then sees this one's token.
    const created = this.tx(() => {
      if (this.sql('SELECT 1 FROM api_tokens LIMIT 1').get()) return false;
      this.insertToken(t, this.clock.now());
      return true;
    });
    return created ? publicToken((await this.findToken(t.id))!) : null;
  }

  async findToken(id: string): Promise<(ApiToken & { hash: string }) | null> {
    const row = this.sql('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRowDb | undefined;
    if (!row) return null;
    const ns = this.sql('SELECT token_id, namespace FROM api_token_namespaces WHERE token_id = ?').all(id) as TokenNamespaceRowDb[];
    return toTokens([row], ns)[0]!;
  }

  async listTokens(): Promise<ApiToken[]> {
    const rows = this.sql('SELECT * FROM api_tokens ORDER BY created_at, id').all() as TokenRowDb[];
    const ns = this.sql('SELECT token_id, namespace FROM api_token_namespaces').all() as TokenNamespaceRowDb[];
    return toTokens(rows, ns).map(publicToken);
  }

  async revokeToken(id: string): Promise<ApiToken> {
    const token = await this.findToken(id);
    if (!token) throw new NotFoundError(`no token ${id}`);
    this.tx(() => this.sql('DELETE FROM api_tokens WHERE id = ?').run(id));
    return publicToken(token);
  }

  // -------------------------------------------------------------------- secrets

  // --------------------------------------------------------- namespace settings

  async getNamespaceSettings(namespace: string): Promise<NamespaceSettings | null> {
    return namespaceRows.getNamespaceSettings(this.db, namespace);
  }

  async setNamespaceSettings(namespace: string, patch: NamespaceSettingsPatch): Promise<NamespaceSettings> {
    return namespaceRows.setNamespaceSettings(this.db, namespace, patch, this.clock.now());
  }

  async listNamespaceSettings(): Promise<NamespaceSettings[]> {
    return namespaceRows.listNamespaceSettings(this.db);
  }

  async putSecret(namespace: string, name: string, sealed: string): Promise<{ change: 'created' | 'updated' }> {
    const now = this.clock.now();
    return this.tx(() => {
      const old = this.sql('SELECT 1 FROM secrets WHERE namespace = ? AND name = ?').get(namespace, name);
      this.sql(
        `INSERT INTO secrets (namespace, name, sealed, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (namespace, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
      ).run(namespace, name, sealed, now);
      return { change: old ? 'updated' : 'created' };
    });
  }

  async listSecrets(namespace?: string): Promise<SecretInfo[]> {
    const rows = (
      namespace === undefined
        ? this.sql('SELECT namespace, name, updated_at FROM secrets ORDER BY namespace, name').all()
        : this.sql('SELECT namespace, name, updated_at FROM secrets WHERE namespace = ? ORDER BY name').all(namespace)
    ) as SecretRowDb[];
    return rows.map(toSecretInfo);
  }

  async readSecrets(namespace: string, names: string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    if (names.length === 0) return out;
    const rows = this.db
      .prepare(`SELECT name, sealed FROM secrets WHERE namespace = ? AND name IN (${names.map(() => '?').join(', ')})`)
      .all(namespace, ...names) as { name: string; sealed: string }[];
    for (const r of rows) out[r.name] = r.sealed;
    return out;
  }

  async deleteSecret(namespace: string, name: string): Promise<void> {
    const r = this.tx(() => this.sql('DELETE FROM secrets WHERE namespace = ? AND name = ?').run(namespace, name));
    if (r.changes === 0) throw new NotFoundError(`no secret ${name} in namespace '${namespace}'`);
  }

  // --------------------------------------------------------------------- events

  async listAudit(f: AuditFilter): Promise<AuditEntry[]> {
    const q = auditListSql(f, () => '?');
    return (this.db.prepare(q.sql).all(...q.values) as AuditRowDb[]).map(toAuditEntry);
  }

  // -------------------------------------------------------------- notifications

  async createSubscription(input: SubscriptionInput): Promise<Subscription> {
    const now = this.clock.now();
    const row = this.tx(
      () =>
        this.sql(
          `INSERT INTO subscriptions (namespace, workflow, labels, events, target, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        ).get(input.namespace, input.workflow, JSON.stringify(input.labels), JSON.stringify(input.events), input.target, now, input.createdBy) as SubscriptionRowDb,
    );
    return toSubscription(row);
  }

  async listSubscriptions(f: { namespace?: string }): Promise<Subscription[]> {
    const rows =
      f.namespace === undefined
        ? (this.sql(`SELECT * FROM subscriptions ORDER BY id`).all() as SubscriptionRowDb[])
        : (this.sql(`SELECT * FROM subscriptions WHERE namespace = ? ORDER BY id`).all(f.namespace) as SubscriptionRowDb[]);
    return rows.map(toSubscription);
  }

  async deleteSubscription(id: number): Promise<Subscription> {
    const row = this.tx(() => this.sql(`DELETE FROM subscriptions WHERE id = ? RETURNING *`).get(id) as SubscriptionRowDb | undefined);
    if (!row) throw new NotFoundError(`no subscription ${id}`);
    return toSubscription(row);
  }

  async notifyCursor(name: NotifyCursor): Promise<number> {
    return (this.sql(`SELECT position FROM notify_cursors WHERE name = ?`).get(name) as { position: number } | undefined)?.position ?? 0;
  }

  async queueDeliveries(cursor: { name: NotifyCursor; from: number; to: number }, items: DeliveryInput[]): Promise<number | null> {
    const now = this.clock.now();
    return this.tx(() => {
      const moved = this.sql(`UPDATE notify_cursors SET position = ? WHERE name = ? AND position = ?`).run(cursor.to, cursor.name, cursor.from).changes;
      if (moved !== 1) return null;
      const ins = this.sql(
        `INSERT INTO deliveries (event_key, event, target, namespace, run_id, subject, source, payload, state, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (event_key, target) DO NOTHING`,
      );
      let n = 0;
      for (const d of items)
        n += ins.run(d.eventKey, d.event, d.target, d.namespace, d.runId, d.subject, d.source, JSON.stringify(d.payload), now, now).changes;
      return n;
    });
  }

  async claimDeliveries(limit: number, claimMs: number): Promise<Delivery[]> {
    const now = this.clock.now();
    const rows = this.tx(
      () =>
        this.sql(
          `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?
           WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?)
           RETURNING *`,
        ).all(now + claimMs, now, limit) as DeliveryRowDb[],
    );
    return rows.map(toDelivery).sort((a, b) => a.id - b.id);
  }

  async settleDelivery(id: number, attempt: number, outcome: { sent: true } | { sent: false; error: string; retryAt: number | null }): Promise<boolean> {
    const now = this.clock.now();
    const r = outcome.sent
      ? this.sql(`UPDATE deliveries SET state = 'sent', sent_at = ?, last_error = NULL WHERE id = ? AND attempts = ? AND state = 'pending'`).run(now, id, attempt)
      : this.sql(`UPDATE deliveries SET state = ?, next_attempt_at = ?, last_error = ? WHERE id = ? AND attempts = ? AND state = 'pending'`).run(
          outcome.retryAt === null ? 'failed' : 'pending',
          outcome.retryAt ?? now,
          deliveryError(outcome.error),
          id,
          attempt,
        );
    return r.changes === 1;
  }

  async listDeliveries(f: DeliveryFilter): Promise<Delivery[]> {
    const q = deliveryListSql(f, () => '?');
    return (this.db.prepare(q.sql).all(...q.values) as DeliveryRowDb[]).map(toDelivery);
  }

  async nextDeliveryAt(): Promise<number | null> {
    return (this.sql(`SELECT min(next_attempt_at) AS t FROM deliveries WHERE state = 'pending'`).get() as { t: number | null }).t;
  }

  async webhookSecret(namespace: string, rotate = false): Promise<{ namespace: string; secret: string; createdAt: number }> {
    const now = this.clock.now();
    const row = this.tx(() => {
      const secret = randomBytes(32).toString('hex');
      this.sql(
        `INSERT INTO webhook_secrets (namespace, secret, created_at) VALUES (?, ?, ?)
         ON CONFLICT (namespace) DO ${rotate ? 'UPDATE SET secret = excluded.secret, created_at = excluded.created_at' : 'NOTHING'}`,
      ).run(namespace, secret, now);
      return this.sql(`SELECT namespace, secret, created_at FROM webhook_secrets WHERE namespace = ?`).get(namespace) as { namespace: string; secret: string; created_at: number };
    });
    return { namespace: row.namespace, secret: row.secret, createdAt: row.created_at };
  }

  async lastEventId(): Promise<number> {
    return (this.sql(`SELECT ifnull(max(id), 0) AS id FROM events`).get() as { id: number }).id;
  }

  async pruneEvents(o: { before: number; keep: number; limit: number }): Promise<EventPrune> {
    return pruneEvents(this.db, o);
  }

  async eventHorizon(): Promise<EventHorizon> {
    return eventHorizon(this.db);
  }

  async jobCounts(): Promise<JobCount[]> {
    return this.sql(`SELECT state, queue, count(*) AS count FROM jobs GROUP BY state, queue`).all() as JobCount[];
  }

  // ---------------------------------------------------------------- web UI reads

  async runCounts(): Promise<{ state: RunState; count: number }[]> {
    return this.sql(`SELECT state, count(*) AS count FROM runs GROUP BY state`).all() as { state: RunState; count: number }[];
  }

  async finishedPerMinute(since: number): Promise<FinishedPerMinute[]> {
    // The state term repeats the partial index's condition word for word: SQLite uses it only then.
    return this.sql(
      `SELECT worker, (finished_at / 60000) * 60000 AS minute, sum(state = 'succeeded') AS succeeded, sum(state = 'failed') AS failed
       FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at >= ?
       GROUP BY worker, minute ORDER BY minute, worker`,
    ).all(since) as FinishedPerMinute[];
  }

  async failedJobsSince(since: number, limit: number): Promise<{ count: number; jobs: Job[] }> {
    const where = `state IN ('succeeded', 'failed') AND state = 'failed' AND finished_at >= ?`;
    const { count } = this.sql(`SELECT count(*) AS count FROM jobs WHERE ${where}`).get(since) as { count: number };
    const rows = this.sql(`SELECT ${JOB_COLUMNS.join(', ')} FROM jobs WHERE ${where} ORDER BY finished_at DESC LIMIT ?`)
      .raw(true)
      .all(since, limit) as unknown[][];
    return { count, jobs: rows.map(toJobFromColumns) };
  }

  async runTaskCounts(runId: number): Promise<TaskStateCount[]> {
    const rows = this.sql(
      `SELECT task, state, chunk IS NOT NULL AS is_chunk, max(chunked) AS chunked, count(*) AS count,
              min(started_at) AS started_at, max(finished_at) AS finished_at, ifnull(sum(progress), 0) AS progress, min(id) AS first
       FROM jobs WHERE run_id = ? GROUP BY task, state, chunk IS NOT NULL ORDER BY first`,
    ).all(runId) as TaskCountRowDb[];
    return rows.map(toTaskStateCount);
  }

  async runTaskEdges(runId: number): Promise<TaskEdge[]> {
    return this.sql(
      `SELECT DISTINCT u.task AS "from", d.task AS "to"
       FROM jobs u JOIN job_deps x ON x.upstream_id = u.id JOIN jobs d ON d.id = x.job_id
       WHERE u.run_id = ? AND u.task <> d.task`,
    ).all(runId) as TaskEdge[];
  }

  async finishedJobTimings(afterEventId: number, limit: number): Promise<{ lastEventId: number; jobs: FinishedJobTiming[] }> {
    const rows = this.sql(
      `SELECT e.id, e.state, j.queue, j.enqueued_at, j.started_at, j.finished_at
       FROM (SELECT id, kind, state, job_id FROM events WHERE id > ? ORDER BY id LIMIT ?) e
       LEFT JOIN jobs j ON e.kind = 'job' AND e.state IN ('succeeded', 'failed') AND j.id = e.job_id
       ORDER BY e.id`,
    ).all(afterEventId, limit) as FinishedTimingRowDb[];
    return finishedTimings(afterEventId, rows);
  }

  async readEvents(afterId: number, filter: EventFilter, limit = 1000): Promise<StoreEvent[]> {
    const args: unknown[] = [afterId];
    const cond = eventFilterSql(filter, (v) => (args.push(v), '?'));
    const rows = this.sql(`SELECT e.*, j.task, j.chunk FROM events e LEFT JOIN jobs j ON j.id = e.job_id WHERE e.id > ?${cond ? ` AND (${cond})` : ''} ORDER BY e.id LIMIT ?`)
      .all(...args, limit) as EventRowDb[];
    return rows.map(toEvent);
  }

  // ----------------------------------------------------------- monitoring reads

  async taskDurations(q: { namespace: string; workflow: string; beforeRunId: number; runs: number }): Promise<TaskHistory> {
    const cte = PAST_DURATIONS_CTE({ ns: '?', wf: '?', before: '?', runs: '?', keyExpr: `j.task || CASE WHEN j.chunk IS NULL THEN '' ELSE '#' END` });
    const args = [q.namespace, q.workflow, q.beforeRunId, q.runs];
    // SQLite has no percentile_cont: the same linear interpolation over ranked rows
    // (the value at rank p·(n−1), between its two neighbours).
    const pct = (p: number) => {
      const pos = `(${p} * (n - 1))`;
      const lo = `CAST(${pos} AS INTEGER)`;
      return `sum(CASE WHEN i = ${lo} THEN ms * (1 - (${pos} - ${lo})) WHEN i = ${lo} + 1 THEN ms * (${pos} - ${lo}) ELSE 0 END)`;
    };
    {
      const rows = this.sql(
        `WITH ${cte},
         r AS (SELECT k, run_id, ms, row_number() OVER (PARTITION BY k ORDER BY ms) - 1 AS i, count(*) OVER (PARTITION BY k) AS n FROM d)
         SELECT k, max(n) AS samples, count(DISTINCT run_id) AS runs, ${pct(0.1)} AS p10, ${pct(0.5)} AS p50, ${pct(0.9)} AS p90
         FROM r GROUP BY k ORDER BY k`,
      ).all(...args) as TaskDurationRowDb[];
      const past = this.sql(`WITH ${cte} SELECT count(DISTINCT run_id) AS n FROM d`).get(...args) as { n: number };
      return { pastRuns: past.n, tasks: rows.map(toTaskDurationStats) };
    }
  }

  async runEdges(runId: number): Promise<[string, string][]> {
    // From the run's upstream jobs: job_deps is keyed by upstream first.
    const rows = this.sql(
      `SELECT j.run_id, u.task AS up_task, u.chunk AS up_chunk, j.task, j.chunk
       FROM jobs u JOIN job_deps d ON d.upstream_id = u.id JOIN jobs j ON j.id = d.job_id WHERE u.run_id = ?`,
    ).all(runId) as EdgeRowDb[];
    return rows.map(toEdge);
  }

  async accountUsage(f: AcctFilter): Promise<AcctRow[]> {
    const args: unknown[] = [];
    const sql = acctSql(f, (v) => (args.push(v), '?'), { bigint: '', float: '' });
    // not cached: the text varies with the grouping and the reader's namespaces
    return toAcctRows(this.db.prepare(sql).all(...args) as AcctRowDb[], f);
  }

  async listAttemptErrors(f: AttemptErrorFilter): Promise<AttemptError[]> {
    const where = [`a.state IN ('failed', 'timed_out')`];
    const args: unknown[] = [];
    if (f.runId !== undefined) (where.push('j.run_id = ?'), args.push(f.runId));
    if (f.namespace) (where.push('r.namespace = ?'), args.push(f.namespace));
    if (f.namespaces) where.push(inNamespaces('r.namespace', f.namespaces, (v) => (args.push(v), '?')));
    if (f.workflow) (where.push('r.workflow = ?'), args.push(f.workflow));
    for (const [k, v] of Object.entries(f.labels ?? {})) {
      where.push('r.id IN (SELECT run_id FROM run_labels WHERE key = ? AND value = ?)');
      args.push(k, v);
    }
    if (f.since !== undefined) (where.push('coalesce(a.finished_at, a.started_at) >= ?'), args.push(f.since));
    if (f.until !== undefined) (where.push('coalesce(a.finished_at, a.started_at) < ?'), args.push(f.until));
    const rows = this.sql(
      `SELECT a.id, j.run_id, j.task, j.chunk, r.namespace, r.workflow, a.number, a.worker, a.state, a.started_at, a.finished_at, a.exit_code, a.error
       FROM attempts a JOIN jobs j ON j.id = a.job_id JOIN runs r ON r.id = j.run_id
       WHERE ${where.join(' AND ')} ORDER BY a.id DESC LIMIT ? OFFSET ?`,
    ).all(...args, f.limit ?? 1000, f.offset ?? 0) as AttemptErrorRowDb[];
    return rows.map(toAttemptError);
  }
}
