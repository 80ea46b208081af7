// Mapping of database rows (same columns in SQLite and PostgreSQL) to the Store's plain objects.
import type { Attempt, AttemptState, Job, JobState, Run, RunState, SkipReason, StoreEvent, StoredDefinition, StoredLogLine, WorkerRow } from './types.js';
import type { Definition } from '../spec/model.js';
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
}

export function toWorker(r: WorkerRowDb, running: string[]): WorkerRow {
  return {
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
  kind: 'run' | 'job';
  run_id: number;
  job_id: number | null;
  state: string;
  task: string | null;
  chunk: number | null;
}

export function toEvent(r: EventRowDb): StoreEvent {
  return { id: r.id, ts: r.ts, kind: r.kind, runId: r.run_id, jobId: r.task === null ? null : formatJobId(r.run_id, r.task, r.chunk), state: r.state };
}
