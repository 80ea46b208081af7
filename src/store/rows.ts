// Mapping of database rows (same columns in SQLite and PostgreSQL) to the Store's plain objects.
import type { EventDetail } from './eventRows.js';
import type { Attempt, AttemptState, Capacity, EventKind, LostAttempt, Job, JobState, Run, RunState, SkipReason, StoreEvent, StoredDefinition, StoredLogLine, WorkerRow, WorkerStopMode } from './types.js';
import type { Definition } from '../spec/model.js';
import { addCapacity, freeOf, NO_CAPACITY, type LiveWorker } from './claimSelection.js';
import { formatJobId } from './jobId.js';

export interface JobRowDb {
  id: number;
  run_id: number;
  task: string;
  chunk: number | null;
  state: JobState;
  skip_reason: SkipReason | null;
  trigger_rule: string;
  deps_total: number;
  deps_ok: number;
  deps_bad: number;
  priority: number;
  queue: string;
  pool: string | null;
  enqueued_at: number | null;
  run_after: number | null;
  attempts: number;
  failures: number;
  max_retries: number;
  retry_delay_ms: number;
  retry_backoff: number;
  retry_max_delay_ms: number;
  force: number;
  fence: number | null;
  worker: string | null;
  lease_until: number | null;
  outputs: string;
  refs: string;
  result: string | null;
  progress: number | null;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  exit_code: number | null;
  queues: string;
  has_fallback: number;
  cpu: number;
  memory: number | null;
  resources: string;
  waiting_reason: string | null;
  /** a chunk's element of its split's array (JSON) */
  chunk_value: string | null;
  /** the task's `concurrency`: chunks of it running at once */
  chunk_limit: number | null;
  /** 1 on a split task's main row (its combine, or the join of its chunks) */
  chunked: number;
  /** the last checkpoint saved by an attempt (JSON) */
  checkpoint: string | null;
  /** 1 while a queued job has a checkpoint: claimed before fresh jobs of its priority */
  resume: number;
  /** what its latest finished attempt used (null while one runs, or when not measured) */
  cpu_ms: number | null;
  max_rss_bytes: number | null;
}

/** The resources a job row needs. */
export function needOf(r: { cpu: number; memory: number | null; resources: string }): Capacity {
  return { cpu: r.cpu, memoryBytes: r.memory, custom: JSON.parse(r.resources) as Record<string, number> };
}

/** The columns toJob reads: listing a run's jobs fetches these alone (a status of 7,000 jobs: 95 → 25 ms on SQLite). */
export const JOB_COLUMNS = [
  'id', 'run_id', 'task', 'chunk', 'state', 'skip_reason', 'priority', 'queue', 'queues', 'pool', 'cpu', 'memory', 'resources',
  'waiting_reason', 'attempts', 'failures', 'max_retries', 'worker', 'enqueued_at', 'started_at', 'finished_at', 'run_after',
  'error', 'exit_code', 'outputs', 'result', 'progress', 'force', 'chunk_value', 'chunked', 'checkpoint',
  'cpu_ms', 'max_rss_bytes',
] as const satisfies readonly (keyof JobRowDb)[];

/** A job from a row fetched as an array of JOB_COLUMNS (better-sqlite3's raw mode: no object per row from the driver). */
export function toJobFromColumns(values: unknown[]): Job {
  const r: Record<string, unknown> = {};
  for (let i = 0; i < JOB_COLUMNS.length; i++) r[JOB_COLUMNS[i]!] = values[i];
  return toJob(r as unknown as JobRowDb);
}

export function toJob(r: JobRowDb): Job {
  return {
    id: formatJobId(r.run_id, r.task, r.chunk),
    key: r.id,
    runId: r.run_id,
    task: r.task,
    chunk: r.chunk,
    state: r.state,
    skipReason: r.skip_reason,
    priority: r.priority,
    queue: r.queue,
    queues: JSON.parse(r.queues) as string[],
    pool: r.pool,
    resources: needOf(r),
    waitingReason: r.waiting_reason,
    attempts: r.attempts,
    failures: r.failures,
    maxRetries: r.max_retries,
    worker: r.worker,
    enqueuedAt: r.enqueued_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    runAfter: r.run_after,
    error: r.error,
    exitCode: r.exit_code,
    outputs: JSON.parse(r.outputs) as Record<string, string>,
    result: r.result === null ? null : (JSON.parse(r.result) as unknown),
    progress: r.progress,
    force: r.force === 1,
    chunkValue: r.chunk_value === null ? undefined : (JSON.parse(r.chunk_value) as unknown),
    chunked: r.chunked === 1,
    checkpoint: r.checkpoint === null ? null : (JSON.parse(r.checkpoint) as unknown),
    cpuMs: r.cpu_ms,
    maxRssBytes: r.max_rss_bytes,
  };
}

export interface RunRowDb {
  id: number;
  namespace: string;
  workflow: string;
  state: RunState;
  params: string;
  labels: string;
  priority: number;
  force: number;
  logical_date: string;
  max_active: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export function toRun(r: RunRowDb, counts: Partial<Record<JobState, number>>): Run {
  return {
    id: r.id,
    namespace: r.namespace,
    workflow: r.workflow,
    state: r.state,
    params: JSON.parse(r.params) as Record<string, unknown>,
    labels: JSON.parse(r.labels) as Record<string, string>,
    priority: r.priority,
    force: r.force === 1,
    logicalDate: r.logical_date,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    counts,
  };
}

export interface AttemptRowDb {
  id: number;
  run_id: number;
  task: string;
  chunk: number | null;
  number: number;
  worker: string;
  host: string;
  pid: number | null;
  state: AttemptState;
  started_at: number;
  finished_at: number | null;
  exit_code: number | null;
  error: string | null;
  cpu_ms: number | null;
  max_rss_bytes: number | null;
}

export function toAttempt(r: AttemptRowDb): Attempt {
  return {
    fence: r.id,
    jobId: formatJobId(r.run_id, r.task, r.chunk),
    number: r.number,
    worker: r.worker,
    host: r.host,
    pid: r.pid,
    state: r.state,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
    error: r.error,
    cpuMs: r.cpu_ms,
    maxRssBytes: r.max_rss_bytes,
  };
}

export interface LogRowDb {
  id: number;
  run_id: number;
  task: string;
  chunk: number | null;
  number: number;
  stream: 'stdout' | 'stderr' | 'system';
  ts: number;
  line: string;
}

export function toLogLine(r: LogRowDb): StoredLogLine {
  return { id: r.id, jobId: formatJobId(r.run_id, r.task, r.chunk), attempt: r.number, stream: r.stream, ts: r.ts, line: r.line };
}

export interface WorkerRowDb {
  name: string;
  host: string;
  pid: number;
  queues: string;
  slots: number;
  state: WorkerRow['state'];
  started_at: number;
  heartbeat_at: number;
  cpu: number;
  memory: number | null;
  resources: string;
  unix_user?: string | null;
}

const STOP_RANK: Record<WorkerStopMode, number> = { drain: 1, stop: 2, terminate: 3 };
/** A stop request never weakens an earlier one (stop after terminate stays terminate). */
export function strongerStopMode(old: WorkerStopMode | null, next: WorkerStopMode): WorkerStopMode {
  return old !== null && STOP_RANK[old] >= STOP_RANK[next] ? old : next;
}

export function toWorker(r: WorkerRowDb, running: string[], used: Capacity): WorkerRow {
  return {
    resources: { cpu: r.cpu, memoryBytes: r.memory, custom: JSON.parse(r.resources) as Record<string, number> },
    used,
    name: r.name,
    host: r.host,
    pid: r.pid,
    queues: JSON.parse(r.queues) as string[],
    slots: r.slots,
    state: r.state,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    running,
  };
}

export interface DefinitionRowDb {
  namespace: string;
  name: string;
  kind: Definition['kind'];
  version: number;
  spec: string;
  updated_at: number;
}

export function toDefinition(r: DefinitionRowDb): StoredDefinition {
  return { namespace: r.namespace, name: r.name, kind: r.kind, version: r.version, updatedAt: r.updated_at, definition: JSON.parse(r.spec) as Definition };
}

export interface EventRowDb {
  id: number;
  ts: number;
  kind: EventKind;
  run_id: number;
  job_id: number | null;
  state: string;
  subject?: string | null;
  /** JSON: EventDetail (src/store/eventRows.ts), worker and service events */
  detail?: string | null;
  task: string | null;
  chunk: number | null;
}

export function toEvent(r: EventRowDb): StoreEvent {
  const e: StoreEvent = { id: r.id, ts: r.ts, kind: r.kind, runId: r.run_id, jobId: r.task === null ? null : formatJobId(r.run_id, r.task, r.chunk), state: r.state };
  if (r.kind === 'service' && r.subject) e.service = r.subject;
  if (r.kind === 'worker' && r.subject) e.worker = r.subject;
  if (r.detail) {
    const d = JSON.parse(r.detail) as EventDetail;
    if (d.worker !== undefined) e.worker = d.worker;
    if (d.reason !== undefined) e.reason = d.reason;
    if (d.exit !== undefined) e.exit = d.exit;
    if (d.restarts !== undefined) e.restarts = d.restarts;
  }
  return e;
}

/** A claim candidate as fetched (both stores). */
export interface CandidateRowDb {
  id: number;
  run_id: number;
  task: string;
  chunk: number | null;
  chunk_limit: number | null;
  resume: number;
  priority: number;
  enqueued_at: number | null;
  queues: string;
  pool: string | null;
  cpu: number;
  memory: number | null;
  resources: string;
}

/** Candidates of several queues (and fallbacks) merged back into claim order. */
export function mergeCandidates(a: CandidateRowDb[], b: CandidateRowDb[]): CandidateRowDb[] {
  return [...a, ...b].sort((x, y) => y.priority - x.priority || y.resume - x.resume || (x.enqueued_at ?? 0) - (y.enqueued_at ?? 0) || x.id - y.id);
}

export interface RunningRowDb {
  worker: string;
  run_id: number;
  task: string;
  chunk: number | null;
  cpu: number;
  memory: number | null;
  resources: string;
}

/** What a set of running jobs uses. */
export function usedBy(running: RunningRowDb[]): Capacity {
  return running.reduce((acc, j) => addCapacity(acc, needOf(j)), NO_CAPACITY);
}

export function offeredBy(w: WorkerRowDb): { name: string; queues: string[]; offered: Capacity; unixUser: string | null } {
  return {
    name: w.name,
    queues: JSON.parse(w.queues) as string[],
    offered: { cpu: w.cpu, memoryBytes: w.memory, custom: JSON.parse(w.resources) as Record<string, number> },
    unixUser: w.unix_user ?? null,
  };
}

export function liveWorkersFrom(workers: WorkerRowDb[], running: RunningRowDb[]): LiveWorker[] {
  return workers.map((w) => {
    const mine = running.filter((j) => j.worker === w.name);
    const o = offeredBy(w);
    return { name: w.name, queues: o.queues, freeSlots: w.slots - mine.length, free: freeOf(o.offered, usedBy(mine)) };
  });
}

export interface WaitingGroupDb {
  queues: string;
  cpu: number;
  memory: number | null;
  resources: string;
  waiting_reason: string | null;
  n: number;
}

export interface LostRowDb {
  id: number;
  pid: number | null;
  run_id: number;
  task: string;
  chunk: number | null;
  outputs: string;
}

export function toLost(r: LostRowDb): { fence: number; jobId: string; pid: number | null; outputs: Record<string, string> } {
  return { fence: r.id, jobId: formatJobId(r.run_id, r.task, r.chunk), pid: r.pid, outputs: JSON.parse(r.outputs) as Record<string, string> };
}

/** A running attempt found lost (lease expired, worker dead or stopped). */
export interface LostCandidateDb {
  id: number;
  fence: number;
  run_id: number;
  task: string;
  chunk: number | null;
  worker: string;
  lease_until: number;
  host: string;
  pid: number | null;
  outputs: string;
}

export function toLostCandidate(r: LostCandidateDb): LostAttempt {
  return { fence: r.fence, jobId: formatJobId(r.run_id, r.task, r.chunk), worker: r.worker, host: r.host, pid: r.pid, outputs: JSON.parse(r.outputs) as Record<string, string> };
}

/** What a combine reads of its chunks: each output as a list in chunk order, and the results. */
export function chunksOf(rows: { outputs: string; result: string | null }[]): { outputs: Record<string, string[]>; results: unknown[] } {
  const outputs: Record<string, string[]> = {};
  const results: unknown[] = [];
  for (const r of rows) {
    for (const [name, p] of Object.entries(JSON.parse(r.outputs) as Record<string, string>)) (outputs[name] ??= []).push(p);
    results.push(r.result === null ? null : (JSON.parse(r.result) as unknown));
  }
  return { outputs, results };
}
