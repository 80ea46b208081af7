// The Store port: every state transition of Gantry is one method here, one
// transaction in each implementation (SQLite now, PostgreSQL next). Nothing
// else writes state. Rows are plain data; ids of runs are integers, a job's
// public id is `RUN:TASK` (chunks later add `#N`).
//
// Job state machine (SPEC §1):
//
//   pending ──(all upstreams settled, trigger rule met)──▶ queued
//   pending ──(trigger rule cannot be met)──────────────▶ skipped (upstream)
//   queued ──claimJobs──▶ running ──completeAttempt ok──▶ succeeded
//                         running ──outputs all exist───▶ skipped (outputs_exist)
//                         running ──fail, retries left──▶ retrying ──due──▶ queued
//                         running ──fail, none left─────▶ failed
//                         running ──lease expired───────▶ queued (attempt: lost)
//   any non-terminal ──cancel──▶ cancelled
//   failed|cancelled|skipped(upstream) ──retryRun──▶ pending
//
// Run states: queued (max_active_runs reached) → running → succeeded | failed | cancelled.

import type { Definition, WorkflowSpec, TriggerRule, Overlap, ServiceSpec } from '../spec/model.js';
import type { AcctFilter, AcctRow } from './acctRows.js';
export type { AcctFilter, AcctKey, AcctRow } from './acctRows.js';

export type JobState = 'pending' | 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'skipped'];
export const ACTIVE_JOB_STATES: readonly JobState[] = ['pending', 'queued', 'running', 'retrying'];
export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type SkipReason = 'outputs_exist' | 'upstream' | 'trigger';
export type AttemptState = 'running' | 'succeeded' | 'failed' | 'skipped' | 'lost' | 'cancelled' | 'timed_out';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** One job of a run as planned before insertion (see scheduler/planRun.ts). */
/** What a job needs, or a worker offers (memory null: not limited / not declared). */
export interface Capacity {
  cpu: number;
  memoryBytes: number | null;
  custom: Record<string, number>;
}

export interface JobPlan {
  task: string;
  needs: string[];
  trigger: TriggerRule;
  priority: number;
  /** queues in order of preference; workers of a later one take the job only when no live worker of an earlier one could */
  queues: string[];
  resources: Capacity;
  pool: string | null;
  /** output name → absolute final path */
  outputs: Record<string, string>;
  /** task ids whose outputs/results the job's templates read */
  refs: string[];
  maxRetries: number;
  retryDelayMs: number;
  retryBackoff: number;
  retryMaxDelayMs: number;
  /** a split task's main job (its combine, or the join of its chunks); chunks are created when the split step succeeds */
  chunked?: boolean;
  /** on a split task's main job: the task's `concurrency`, given to its chunks */
  chunkLimit?: number | null;
}

export interface CreateRunInput {
  spec: WorkflowSpec;
  params: Record<string, unknown>;
  priority: number;
  force: boolean;
  logicalDate: string;
  /** called inside the creating transaction, once the run has its id (templates may use `run.id`) */
  plan: (runId: number) => { jobs: JobPlan[]; labels: Record<string, string> };
}

export interface Run {
  id: number;
  namespace: string;
  workflow: string;
  state: RunState;
  params: Record<string, unknown>;
  labels: Record<string, string>;
  priority: number;
  force: boolean;
  logicalDate: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** job counts by state */
  counts: Partial<Record<JobState, number>>;
}

export interface Job {
  /** public id `RUN:TASK` */
  id: string;
  /** internal numeric id */
  key: number;
  runId: number;
  task: string;
  chunk: number | null;
  state: JobState;
  skipReason: SkipReason | null;
  priority: number;
  queue: string;
  queues: string[];
  pool: string | null;
  resources: Capacity;
  /** why a queued job is not being taken (e.g. no live worker could ever fit it); null when nothing is known to hold it */
  waitingReason: string | null;
  attempts: number;
  failures: number;
  maxRetries: number;
  worker: string | null;
  enqueuedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  runAfter: number | null;
  error: string | null;
  exitCode: number | null;
  outputs: Record<string, string>;
  result: unknown;
  progress: number | null;
  force: boolean;
  /** a chunk job's element of its split's array (absent on other jobs) */
  chunkValue?: unknown;
  /** a split task's main job: its combine (or the join of its chunks), created with the run; chunks hang below it */
  chunked: boolean;
  /** the last checkpoint an attempt saved; a retried or resumed attempt starts from it */
  checkpoint: unknown;
  /** CPU time (user + system) of its latest finished attempt's process tree; null: running, or not measured */
  cpuMs: number | null;
  /** peak resident memory of its latest finished attempt's process tree; null: running, or not measured */
  maxRssBytes: number | null;
}

export interface Attempt {
  /** the fencing token: only grows, store-wide */
  fence: number;
  jobId: string;
  number: number;
  worker: string;
  host: string;
  pid: number | null;
  state: AttemptState;
  startedAt: number;
  finishedAt: number | null;
  exitCode: number | null;
  error: string | null;
  /** CPU time (user + system) of its process tree; null: running, or not measured (handlers in the worker, lost attempts) */
  cpuMs: number | null;
  /** peak resident memory of its process tree; null: as cpuMs */
  maxRssBytes: number | null;
}

/** What an attempt's process tree used, as the launcher measured it. */
export interface ResourceUsage {
  cpuMs: number;
  maxRssBytes: number;
}

/** What a worker gets for each job it claims. */
export interface ClaimedJob {
  fence: number;
  job: Job;
  run: { id: number; params: Record<string, unknown>; logicalDate: string; force: boolean };
  /** outputs and results of the tasks the job reads (direct needs and template refs) */
  upstream: Record<string, { outputs: Record<string, string>; result: unknown }>;
  /** on a split task's main job (its combine): every chunk's outputs (lists in chunk order) and results */
  chunks?: { outputs: Record<string, string[]>; results: unknown[] };
  /** other jobs wait for this one: its completion may make them ready (the worker then claims with it, completeAndClaim) */
  hasDependents: boolean;
}

/** One chunk of a split task, planned by the worker that ran the split: its element and its rendered outputs. */
export interface ChunkPlan {
  value: unknown;
  /** output name → absolute final path */
  outputs: Record<string, string>;
}

export type AttemptOutcome =
  /** `chunks`: a split step's array; the chunk jobs are created in the completing transaction (replacing any earlier ones) */
  | { state: 'succeeded'; exitCode: number | null; result?: unknown; chunks?: ChunkPlan[]; usage?: ResourceUsage }
  | { state: 'skipped' }
  /** `cause: 'stalled'`: the worker killed it for its stall_timeout (recorded in the audit log) */
  | { state: 'failed' | 'timed_out'; exitCode: number | null; error: string; retryable?: boolean; cause?: 'stalled'; usage?: ResourceUsage };

export interface LogLine {
  stream: 'stdout' | 'stderr' | 'system';
  ts: number;
  line: string;
}
export interface StoredLogLine extends LogLine {
  id: number;
  jobId: string;
  attempt: number;
}

export interface WorkerInfo {
  name: string;
  host: string;
  pid: number;
  queues: string[];
  slots: number;
  /** what it offers */
  resources: Capacity;
  /** the Unix user it runs as: root may run any namespace's jobs, another user only those of namespaces mapped to it or to none */
  unixUser?: string | null;
}
export interface WorkerRow extends WorkerInfo {
  state: 'active' | 'draining' | 'stopped';
  startedAt: number;
  heartbeatAt: number;
  running: string[];
  /** summed over its running jobs */
  used: Capacity;
}

/**
 * What an operator asked a worker to do (it is `draining` meanwhile): drain =
 * finish running jobs and claim no more; stop = drain, then exit; terminate =
 * kill running jobs now, give them back as lost (requeued), then exit.
 */
export type WorkerStopMode = 'drain' | 'stop' | 'terminate';

/** What a claiming worker has free right now (slots are the claim's limit). */
export type FreeCapacity = Capacity;

/** What a worker asks claimJobs for: up to `limit` jobs of its queues that fit `free`. */
export interface ClaimRequest {
  /** unixUser: set by a worker that is not root: it claims only jobs of namespaces mapped to no user or to this one */
  worker: { name: string; host: string; queues: string[]; unixUser?: string };
  limit: number;
  leaseMs: number;
  free?: FreeCapacity;
}

export interface PoolRow {
  name: string;
  /** null: no limit set */
  slots: number | null;
  running: number;
  queued: number;
}

export interface LostAttempt {
  fence: number;
  jobId: string;
  worker: string;
  host: string;
  pid: number | null;
  outputs: Record<string, string>;
}

export interface StoredDefinition {
  namespace: string;
  name: string;
  kind: Definition['kind'];
  version: number;
  updatedAt: number;
  definition: Definition;
}

/**
 * A reader's scope (issue 14: reads are scoped): with `namespaces`, only rows of
 * those namespaces are listed (an empty list: none). Absent: no restriction.
 */
export interface ReaderScope {
  namespaces?: string[];
}

export interface RunFilter extends ReaderScope {
  workflow?: string;
  namespace?: string;
  state?: RunState;
  labels?: Record<string, string>;
  latest?: boolean;
  /** runs with at least one job claimed by this worker */
  worker?: string;
  /** created at or after (epoch ms) */
  since?: number;
  /** created before (epoch ms) */
  until?: number;
  limit?: number;
  offset?: number;
}
/** One group of `Store.stageCounts`. */
export interface StageCount {
  stage: string;
  /** chunk jobs of a split task (else the task's own job) */
  chunk: boolean;
  state: JobState;
  jobs: number;
  /** the sum of the last progress (0–100) the running ones reported */
  progress: number;
}

export interface JobFilter extends ReaderScope {
  runId?: number;
  worker?: string;
  state?: JobState;
  /** any of these states (with `state`, both must hold) */
  states?: JobState[];
  /** claimed (running) but whose lease has lapsed or whose process never started */
  stale?: boolean;
  /** jobs of runs of this workflow / namespace / with these labels */
  workflow?: string;
  namespace?: string;
  labels?: Record<string, string>;
  /** started (its latest attempt) at or after, epoch ms; jobs never started do not match */
  since?: number;
  /** started before, epoch ms */
  until?: number;
  limit?: number;
  offset?: number;
}

/** Jobs counted by state and queue (GET /metrics). */
export interface JobCount {
  state: JobState;
  queue: string;
  count: number;
}

/** A job that finished (succeeded or failed), as its outbox event names it: what the duration histograms observe. */
export interface FinishedJobTiming {
  eventId: number;
  state: 'succeeded' | 'failed';
  queue: string;
  enqueuedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}

/** A run's jobs of one task in one state (the web UI's run graph): a split task's chunks apart from its own job. */
export interface TaskStateCount {
  task: string;
  state: JobState;
  /** these are chunk jobs of a split task (false: the task's own job, or its split step) */
  chunk: boolean;
  /** the task's own job is a split task's main job (its combine) */
  chunked: boolean;
  count: number;
  /** earliest start and latest finish among them */
  startedAt: number | null;
  finishedAt: number | null;
  /** summed reported progress (0–100 each) */
  progress: number;
}

/** A dependency between two tasks of a run (chunks and jobs of one task folded into one). */
export interface TaskEdge {
  from: string;
  to: string;
}

/** Jobs that finished in one minute on one worker (the web UI's throughput chart). */
export interface FinishedPerMinute {
  /** the worker of the job's last attempt */
  worker: string | null;
  /** the minute's start, epoch ms */
  minute: number;
  succeeded: number;
  failed: number;
}

/**
 * How long the succeeded jobs of one task took in a workflow's past runs: what
 * a run's ETA is estimated from (server/eta.ts). `key` is the task id, with a
 * trailing `#` for a split task's chunks (sampled one per chunk).
 */
export interface TaskDurationStats {
  key: string;
  /** succeeded jobs sampled */
  samples: number;
  /** past runs they came from (samples / runs: chunks per run) */
  runs: number;
  /** percentiles of run time (finished − started), ms, linearly interpolated (percentile_cont) */
  p10Ms: number;
  p50Ms: number;
  p90Ms: number;
}
export interface TaskHistory {
  /** past runs that contributed a sample */
  pastRuns: number;
  tasks: TaskDurationStats[];
}

/** One failed try of a job, with what it raised: `gantry errors`. */
export interface AttemptError {
  fence: number;
  jobId: string;
  runId: number;
  namespace: string;
  workflow: string;
  number: number;
  worker: string;
  state: 'failed' | 'timed_out';
  startedAt: number;
  finishedAt: number | null;
  exitCode: number | null;
  error: string;
}
export interface AttemptErrorFilter extends ReaderScope {
  workflow?: string;
  namespace?: string;
  labels?: Record<string, string>;
  runId?: number;
  /** ended at or after, epoch ms */
  since?: number;
  /** ended before, epoch ms */
  until?: number;
  limit?: number;
  offset?: number;
}

/** What the event outbox records a state change of (SPEC §4: run, job, worker, service). */
export const EVENT_KINDS = ['run', 'job', 'worker', 'service'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/**
 * What an event stream is restricted to (SPEC §4). Run and job events match
 * through their run (runId, namespace, workflow, labels); service events have a
 * namespace only; worker events have none of these. A filter on a field an
 * event's kind lacks drops that kind, unless `kinds` names it: then the filter
 * does not apply to it (`namespace: 'bots', kinds: ['service', 'worker']` is
 * the bots services' events and every worker's). `namespaces` (a reader's
 * scope) restricts run, job and service events; worker events carry no job data
 * and stay.
 */
export interface EventFilter extends ReaderScope {
  runId?: number;
  namespace?: string;
  workflow?: string;
  labels?: Record<string, string>;
  /** only these kinds (default: all) */
  kinds?: EventKind[];
}

/**
 * A worker event's state: online (registered), draining (drain, stop or
 * terminate asked), stopped (it exited), dead (declared dead: its heartbeat
 * stopped or its process is gone; its jobs and services are given to others).
 */
export type WorkerEventState = 'online' | 'draining' | 'stopped' | 'dead';

export interface StoreEvent {
  id: number;
  ts: number;
  kind: EventKind;
  /** 0 for a worker's or a service's event */
  runId: number;
  jobId: string | null;
  /** a run's, job's or service's state (RunState, JobState, ServiceState); a worker's: WorkerEventState */
  state: string;
  /** a service's event: `namespace/name` */
  service?: string;
  /** a worker's event: the worker; a service's: the worker its instance runs (or ran) on */
  worker?: string;
  /** a worker's or a service's event: what happened, in words */
  reason?: string;
  /** a service's event after its instance ended: how */
  exit?: { code: number | null; signal: string | null };
  /** a service's event: how often it was restarted so far */
  restarts?: number;
}

/** What woke-up listeners care about; emitted after commit. */
export type StoreSignal =
  /** jobs became claimable: wakes workers */
  | { type: 'queued' }
  /** a job is waiting out a retry delay: wakes the scheduler to plan it */
  | { type: 'retrying' }
  /** definitions or deferred starts changed: wakes the scheduler to recompute its next start */
  | { type: 'schedules' }
  | { type: 'revoked'; fences: number[] }
  /** a service was asked to stop (or lost its claim): the workers running services look at theirs now */
  | { type: 'services' }
  /** an operator asked this worker to drain or stop (gantry drain / stop): it reads its stop mode */
  | { type: 'worker'; name: string }
  | { type: 'events' }
  | { type: 'logs' };

/** One batch of event pruning: how many went, and every event id up to `through` is gone (0: none ever). */
export interface EventPrune {
  deleted: number;
  through: number;
}

/** The start of the kept outbox: a reader resuming after an id below `prunedThrough` missed events. */
export interface EventHorizon {
  prunedThrough: number;
  /** the oldest kept event's id; null when the outbox is empty */
  oldest: number | null;
}

/** A write presented a fencing token that is no longer current: the attempt lost its job. */
export class StaleFenceError extends Error {
  constructor(readonly fence: number, reason: string) {
    super(`attempt ${fence} is no longer current: ${reason}`);
    this.name = 'StaleFenceError';
  }
}
/** Most a checkpoint may hold, as JSON: it is read and written with its job's row. */
export const MAX_CHECKPOINT_BYTES = 1024 * 1024;

/** A checkpoint past MAX_CHECKPOINT_BYTES: refused, the job keeps its previous one. */
export class CheckpointTooLargeError extends Error {
  override name = 'CheckpointTooLargeError';
  constructor(readonly bytes: number, readonly limit: number = MAX_CHECKPOINT_BYTES) {
    super(`checkpoint too large: ${bytes} bytes of JSON, the limit is ${limit}`);
  }
}

/** One tick of one schedule of a workflow: the key that makes a tick start at most one run. */
export interface ScheduleTick {
  namespace: string;
  workflow: string;
  /** the schedule's stable key within its workflow (scheduler/schedules.ts scheduleKey) */
  schedule: string;
  /** the tick, epoch ms */
  at: number;
}

/** What a schedule tick came to; `duplicate`: it (or a later tick) was already acted on, by this or another scheduler. */
export type ScheduledRunResult =
  | { outcome: 'started'; run: Run; cancelled: number[] }
  | { outcome: 'skipped'; running: number[] }
  | { outcome: 'duplicate' };

/** The last tick acted on, per schedule: where the next pass resumes. */
export interface ScheduleMark {
  namespace: string;
  workflow: string;
  schedule: string;
  lastTick: number;
}

/**
 * A manual run deferred with `gantry run --at`: a pending start record, not a
 * run (run states stay as SPEC §1 has them). The scheduler starts it when due.
 */
export type DeferredState = 'waiting' | 'started' | 'failed' | 'cancelled';
export interface DeferRunInput {
  namespace: string;
  workflow: string;
  params: Record<string, unknown>;
  labels: Record<string, string>;
  priority: number;
  force: boolean;
  dueAt: number;
}
export interface DeferredRun extends DeferRunInput {
  id: number;
  state: DeferredState;
  createdAt: number;
  /** the run it started */
  runId: number | null;
  /** why it could not start, or was cancelled */
  error: string | null;
}
export interface DeferredFilter extends ReaderScope {
  namespace?: string;
  workflow?: string;
  state?: DeferredState;
  /** due at or before this time */
  dueBy?: number;
  limit?: number;
}

/**
 * Actions Gantry takes on its own, as the audit log names them (SPEC `gantry audit`).
 * Each is written by the store in the transaction of the transition it records.
 */
export const AUDIT_ACTIONS = [
  /** a failed attempt with retries left: the job waits out its delay */
  'retry.scheduled',
  /** a job failed with no retries left (it had some) */
  'retries.exhausted',
  /** a running attempt's lease expired or its worker died: recorded lost, its job requeued */
  'lease.reaped',
  /** a job silent past its stall_timeout was killed (then failed as stalled, retried per its retries) */
  'stall.killed',
  /** a service's process died and was started again */
  'service.restarted',
  /** a service restarts too often */
  'service.flapping',
  /** a worker stopped heartbeating or its process is gone: marked stopped, its jobs and services given to others */
  'worker.dead',
  /** a scheduler took the leadership from another (lease expired, or its process is gone) */
  'leader.takeover',
  /** a schedule's missed tick got its run after downtime (catchup: true) */
  'catchup.run_created',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** What a transition records in the audit log (namespace defaults to the run's). */
export interface AuditNote {
  /** who acted: `scheduler:<id>`, `worker:<name>`, `store` */
  actor: string;
  action: AuditAction;
  /** a sentence a person understands */
  reason: string;
  namespace?: string | null;
  runId?: number | null;
  /** a job's public id `RUN:TASK` */
  jobId?: string | null;
  /** what else it is about: a service, a worker, a scheduler role */
  subject?: string | null;
  details?: Record<string, unknown> | null;
}

export interface AuditEntry {
  id: number;
  /** epoch ms */
  at: number;
  actor: string;
  action: AuditAction;
  reason: string;
  namespace: string | null;
  runId: number | null;
  jobId: string | null;
  subject: string | null;
  details: Record<string, unknown> | null;
}

export interface AuditFilter extends ReaderScope {
  /** at or after, epoch ms */
  since?: number;
  /** before, epoch ms */
  until?: number;
  runId?: number;
  namespace?: string;
  /** a full action (`lease.reaped`) or its family (`service`) */
  action?: string;
  /** ids above this one (oldest first), for paging forward */
  afterId?: number;
  /** ids below this one, for paging back with newestFirst */
  beforeId?: number;
  newestFirst?: boolean;
  /** default 100, at most 1000 */
  limit?: number;
}

/**
 * Who may change what (SPEC §4): admin everything, maintainer the mutations
 * of its namespaces, viewer nothing. Reads need no token.
 */
export type Role = 'admin' | 'maintainer' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'maintainer', 'viewer'];
/** In a token's namespaces: every namespace. */
export const ALL_NAMESPACES = '*';

/** An API token as listed: never its secret, which only its holder has. */
export interface ApiToken {
  /** the public part of the token (it starts the token text): the key to look it up and to revoke it */
  id: string;
  role: Role;
  /** sorted; ['*'] for all */
  namespaces: string[];
  name: string | null;
  createdAt: number;
}
export interface NewApiToken {
  id: string;
  /** SHA-256 (hex) of the whole token text: the store never holds the token itself */
  hash: string;
  role: Role;
  namespaces: string[];
  name: string | null;
}

/**
 * What an admin set for a namespace: the Unix user and group its jobs run as
 * (names, resolved by each worker), whether anyone may read its runs, logs and
 * events without a token, and the roots its absolute outputs must stay under
 * (none: not confined).
 */
export interface NamespaceSettings {
  namespace: string;
  user: string | null;
  group: string | null;
  public: boolean;
  outputRoots: string[];
}
export type NamespaceSettingsPatch = Partial<Omit<NamespaceSettings, 'namespace'>>;

/** A secret as listed: its name and where it lives, never its value. */
export interface SecretInfo {
  namespace: string;
  name: string;
  updatedAt: number;
}

/**
 * Services (SPEC §2 service files): continuous processes kept running on some
 * worker. One row per registered service holds what was asked (desired up or
 * down) and its one instance's state:
 *
 *   down ──startService──▶ starting ──claimServices──▶ up
 *   up ──serviceExited──▶ backoff (restart at now + delay × 2^(n-1), capped) ──due──▶ claimable again
 *   up ──serviceExited, n ≥ FLAP_DEATHS quick deaths in a row──▶ flapping (restart at max_delay) ──due──▶ claimable
 *   up ──its worker died or stopped (lease lapsed / reaped) or gave it back──▶ starting (moved: any worker takes it)
 *   up ──stopService──▶ stopping ──worker: SIGTERM, grace, SIGKILL; serviceExited──▶ down
 *   starting|backoff|flapping ──stopService──▶ down
 *
 * n counts quick deaths in a row (an instance that stayed up less than
 * SERVICE_STABLE_MS); an instance that stayed up longer resets it.
 * Every claim increments the service's fencing token: exits, pids and lease
 * renewals of an older instance are refused.
 */
export type ServiceState = 'down' | 'starting' | 'up' | 'backoff' | 'flapping' | 'stopping';
export interface ServiceExit {
  code: number | null;
  signal: string | null;
  at: number;
  /** why it ended, in words (its last stderr line, `worker w1 lost`, `stopped`) */
  reason: string | null;
  /** the instance that ended (its fencing token): its last lines are in readServiceLogs({ instance }) */
  instance: number | null;
}
/** What a worker reports when an instance ends. */
export type ServiceExitReport = Omit<ServiceExit, 'at' | 'instance'>;
/** One line of a service instance's output, as stored (see SERVICE_LOG_INSTANCES in serviceRows.ts). */
export interface ServiceLogLine extends LogLine {
  id: number;
  /** the instance (fencing token) that wrote it: each start or restart is a new one */
  instance: number;
}
export interface ServiceLogQuery {
  namespace: string;
  name: string;
  /** only this instance */
  instance?: number;
  /** the last instance and this many before it (default 0: only the last); ignored with `instance` */
  restarts?: number;
  afterId?: number;
  /** at most this many lines, from the oldest (default 10,000) */
  limit?: number;
  /** only the last this many lines (of what the other fields select) */
  tail?: number;
}
export interface ServiceRow {
  namespace: string;
  name: string;
  /** what an operator asked: `gantry service start` / `stop` (a service applied but never started is down) */
  desired: 'up' | 'down';
  state: ServiceState;
  /** dying quickly over and over: restarted at its max_delay until an instance stays up */
  flapping: boolean;
  worker: string | null;
  host: string | null;
  pid: number | null;
  /** the current instance's fencing token */
  fence: number;
  /** when the current instance started (state up/stopping) */
  startedAt: number | null;
  /** how many times it was started again after an exit or a lost worker */
  restarts: number;
  /** quick deaths in a row */
  quickDeaths: number;
  lastExit: ServiceExit | null;
  /** when it may be claimed again (starting/backoff/flapping) */
  nextStartAt: number | null;
  leaseUntil: number | null;
  /** the definition its instances run: the registered one as of the last `service start` (null: never started) */
  spec: ServiceSpec | null;
  updatedAt: number;
}
/** What a worker gets for each service instance it claims. */
export interface ClaimedService {
  namespace: string;
  name: string;
  fence: number;
  spec: ServiceSpec;
  restarts: number;
}
export interface ServiceRef {
  namespace: string;
  name: string;
  fence: number;
}

/** What notifications are sent about (SPEC `notify.on`, `gantry subscribe --on`). */
export const NOTIFY_EVENTS = ['started', 'succeeded', 'failed', 'cancelled', 'retries_exhausted', 'restarted', 'flapping'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** `gantry subscribe`: events of runs (or services) matching the filter go to `target`. */
export interface SubscriptionInput {
  /** null: every namespace */
  namespace: string | null;
  /** null: any workflow (a subscription naming one never matches a service) */
  workflow: string | null;
  /** every one must be on the run (a subscription with labels never matches a service) */
  labels: Record<string, string>;
  events: NotifyEvent[];
  /** `mailto:address` or an http(s) URL (a signed webhook) */
  target: string;
  /** who made it (a token's id or name), when known */
  createdBy: string | null;
}
export interface Subscription extends SubscriptionInput {
  id: number;
  createdAt: number;
}

export type DeliveryState = 'pending' | 'sent' | 'failed';
/** One notification of one event to one target, queued by the notify duty. */
export interface DeliveryInput {
  /** the event it tells about: `run-event:<outbox id>` or `audit:<audit id>`; with the target, unique */
  eventKey: string;
  event: NotifyEvent;
  target: string;
  namespace: string | null;
  runId: number | null;
  /** a service's name, for service events */
  subject: string | null;
  /** `notify` (the definition's own) or `subscription:<id>` */
  source: string;
  /** what is sent (the webhook's JSON body; the mail is written from it) */
  payload: Record<string, unknown>;
}
export interface Delivery extends DeliveryInput {
  id: number;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  sentAt: number | null;
}
export interface DeliveryFilter extends ReaderScope {
  state?: DeliveryState;
  runId?: number;
  namespace?: string;
  afterId?: number;
  beforeId?: number;
  newestFirst?: boolean;
  /** default 100, at most 1000 */
  limit?: number;
}
/** Where the notify duty has read up to in a source: the event outbox or the audit log. */
export type NotifyCursor = 'events' | 'audit';

/** A request named something that does not exist (maps to 404 / exit 2). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}
/** A request is not allowed in the current state (maps to 409 / exit 2). */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** after-commit signals for in-process wake-ups */
  subscribe(listener: (signal: StoreSignal) => void): () => void;

  // definitions
  putDefinitions(defs: Definition[]): Promise<{ name: string; namespace: string; kind: string; change: 'created' | 'updated' | 'unchanged' }[]>;
  getWorkflow(namespace: string, name: string): Promise<StoredDefinition | null>;
  listDefinitions(): Promise<StoredDefinition[]>;

  // runs
  createRun(input: CreateRunInput): Promise<Run>;
  getRun(id: number): Promise<Run | null>;
  getRunSpec(id: number): Promise<WorkflowSpec>;
  listRuns(filter: RunFilter): Promise<Run[]>;
  /** `clean`: the workers running its jobs also delete those jobs' final-path outputs once their processes are gone (cleanRequested) */
  cancelRun(id: number, opts?: { clean?: boolean }): Promise<Run>;
  retryRun(id: number, opts: { failedOnly: boolean; force: boolean }): Promise<{ run: Run; reset: number }>;

  // jobs
  listJobs(filter: JobFilter): Promise<Job[]>;
  getJob(id: string): Promise<Job | null>;
  listAttempts(jobId: string): Promise<Attempt[]>;
  /**
   * A run's jobs counted per stage (its task id with every foreach item as
   * `[*]`), chunk or not, and state: what the status of a run too big to list
   * job by job shows. Set-based: one grouped scan, a few rows per stage.
   */
  stageCounts(runId: number): Promise<StageCount[]>;
  cancelJob(id: string, opts?: { clean?: boolean }): Promise<Job>;

  // worker transitions
  registerWorker(info: WorkerInfo): Promise<void>;
  /**
   * Renews the worker's leases; returns the fences it holds that are no longer
   * current. A worker declared dead that still beats is active again (a `worker`
   * event `online`): its jobs were given away, it may claim new ones.
   */
  heartbeat(worker: string, fences: { fence: number; progress: number | null }[], leaseMs: number): Promise<number[]>;
  /** the worker exits: `stopped`, with a `worker` event giving `reason` (default "exited") */
  stopWorker(worker: string, reason?: string): Promise<void>;
  /**
   * Workers found dead (no heartbeat for too long, or their process gone): each
   * not yet stopped is marked stopped, with a `worker` event `dead` and a
   * `worker.dead` audit entry by `actor` giving its reason, in one transaction.
   * Returns the names marked. A worker that heartbeats again is back online
   * (see heartbeat).
   */
  declareWorkersDead(dead: { name: string; reason: string }[], actor?: string): Promise<string[]>;
  listWorkers(): Promise<WorkerRow[]>;
  /**
   * Asks a worker to drain, stop or terminate (see WorkerStopMode): it shows as
   * `draining` until it stops; a request never weakens an earlier one. The worker
   * learns it from a `worker` signal or its next heartbeat. NotFoundError for an
   * unknown worker, ConflictError for a stopped one. registerWorker clears it.
   */
  requestWorkerStop(name: string, mode: WorkerStopMode): Promise<WorkerRow>;
  /** what was asked of this worker; null: nothing (it is active) */
  workerStopMode(name: string): Promise<WorkerStopMode | null>;
  /** whether the attempt was cancelled with `clean` (its partial final-path outputs are to be deleted) */
  cleanRequested(fence: number): Promise<boolean>;
  /**
   * Claims up to `limit` jobs of the worker's queues, in priority then enqueue order,
   * that fit `free` (unlimited when absent) and whose pool has a free slot.
   */
  claimJobs(worker: ClaimRequest['worker'], limit: number, leaseMs: number, free?: FreeCapacity): Promise<ClaimedJob[]>;
  setAttemptPid(fence: number, pid: number): Promise<void>;
  /**
   * The attempt gave its job up without an outcome (its lease could not be
   * renewed, so its supervisor killed it): recorded lost, the job requeued at
   * its old place, not counted as a failed try. False if it was no longer current.
   */
  releaseAttempt(fence: number, reason: string): Promise<boolean>;
  /**
   * Throws StaleFenceError unless the attempt still owns its job. With `renewLeaseMs`
   * the lease is renewed too, so a following output commit cannot race the reaper.
   */
  assertCurrent(fence: number, renewLeaseMs?: number): Promise<void>;
  /**
   * Replaces the job's checkpoint (any JSON value; null clears it) while the
   * attempt still owns its job, in one statement: StaleFenceError otherwise,
   * CheckpointTooLargeError past MAX_CHECKPOINT_BYTES, and nothing is written.
   * A job that holds a checkpoint keeps it through retries, lost attempts and
   * `retry --failed`, and is claimed before fresh jobs of its priority
   * (`resume` = checkpoint present); `retry --force` clears it, and so does a
   * whole rerun for the jobs that had succeeded or been skipped (their work was done).
   */
  saveCheckpoint(fence: number, data: unknown): Promise<void>;
  /** ends the attempt; `lines` are its last log lines, stored in the same transaction */
  completeAttempt(fence: number, outcome: AttemptOutcome, lines?: LogLine[]): Promise<Job>;
  /** several attempts' outcomes in one transaction; a stale one yields its StaleFenceError, the others still land */
  completeAttempts(items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[]): Promise<(Job | StaleFenceError)[]>;
  /**
   * completeAttempts, then claimJobs for the slots the worker has free once they
   * end: a dependent the completions made ready is claimed by this worker at
   * once (a chain hops without a wake-up), and other workers are woken
   * (`queued`) only for ready jobs it did not take. `claim` says what to claim
   * (null: nothing); it is asked when the claim is made — SQLite: before its
   * one transaction; PostgreSQL: after the completions' commit, then the claim
   * statement (the completions of a join's many upstreams all lock the join's
   * row: a claim inside would hold it longer). The claim follows the claim
   * order exactly as claimJobs does: it may take older or higher-priority jobs.
   */
  completeAndClaim(
    items: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] }[],
    claim: () => Promise<ClaimRequest | null>,
  ): Promise<{ completed: (Job | StaleFenceError)[]; claimed: ClaimedJob[] }>;
  appendLogs(fence: number, lines: LogLine[]): Promise<void>;
  readLogs(q: { runId?: number; jobId?: string; afterId?: number; limit?: number }): Promise<StoredLogLine[]>;

  // scheduler duties
  promoteDueRetries(): Promise<number>;
  /** running attempts whose lease is past its deadline, or whose worker is known dead or stopped (read only) */
  findLostAttempts(deadWorkers: string[]): Promise<LostAttempt[]>;
  /**
   * Records those attempts lost and requeues their jobs (a lost attempt is not a
   * failed try). With `onlyFences`, only those (the caller killed their processes first).
   * Each is a `lease.reaped` audit entry by `actor` (default `store`).
   */
  reapLostAttempts(deadWorkers: string[], onlyFences?: number[], actor?: string): Promise<LostAttempt[]>;
  nextRetryAt(): Promise<number | null>;
  /** attempts on `host` recorded lost since `since`: their processes may have outlived their worker */
  listLostAttempts(host: string, since: number): Promise<{ fence: number; jobId: string; pid: number | null; outputs: Record<string, string> }[]>;
  /** ends running runs that have no active job left (a safety net: completions end their run themselves) */
  finishIdleRuns(): Promise<number>;
  /** notes on queued jobs that no live worker could ever fit (and clears notes that no longer hold) */
  updateWaitingReasons(workerTimeoutMs: number): Promise<number>;
  /**
   * Takes or renews a leadership lease; true while `holder` leads `role`. With
   * `takeoverFrom`, also takes it from that holder before its lease ends (it is known dead).
   * Taking it from another holder is a `leader.takeover` audit entry, actor `<role>:<holder>`.
   */
  acquireLeadership(role: string, holder: string, ttlMs: number, takeoverFrom?: string): Promise<boolean>;
  currentLeader(role: string): Promise<{ holder: string; until: number } | null>;
  releaseLeadership(role: string, holder: string): Promise<void>;

  // schedules (SPEC §2 schedule, `gantry run --at`)
  /**
   * Acts on one schedule tick, in one transaction: records the tick under its
   * unique key and moves the schedule's mark to it (refused as `duplicate` when
   * the tick, or a later one, is already recorded), applies `overlap` to the
   * schedule's runs that were running at the tick (created by then: catch-up
   * runs of earlier missed ticks do not count) (skip: record the tick and start nothing;
   * cancel_running: cancel them first; queue: start anyway), then creates the
   * run as createRun does. Exactly one run per tick, however many schedulers race.
   * `note` (e.g. a catch-up run) goes to the audit log with the run's id when a run starts.
   */
  startScheduledRun(tick: ScheduleTick, overlap: Overlap, input: CreateRunInput, note?: AuditNote): Promise<ScheduledRunResult>;
  /** Records a tick that could not start a run (e.g. its params no longer resolve), so it is not tried again; false if already recorded. */
  skipScheduleTick(tick: ScheduleTick, reason: string): Promise<boolean>;
  scheduleMarks(): Promise<ScheduleMark[]>;
  deferRun(input: DeferRunInput): Promise<DeferredRun>;
  getDeferredRun(id: number): Promise<DeferredRun | null>;
  /** in due order (oldest first) */
  listDeferredRuns(filter: DeferredFilter): Promise<DeferredRun[]>;
  /** Starts a waiting deferred run: marks it started and creates the run in one transaction; null when it is no longer waiting. */
  startDeferredRun(id: number, input: CreateRunInput): Promise<Run | null>;
  /** Ends a waiting deferred run without a run (failed to start, or cancelled); NotFoundError / ConflictError otherwise. */
  endDeferredRun(id: number, state: 'failed' | 'cancelled', error: string): Promise<DeferredRun>;

  // services (see ServiceState above)
  /** registered services (definitions of kind service) with their state; never started ones are down */
  listServices(filter?: { namespace?: string }): Promise<ServiceRow[]>;
  getService(namespace: string, name: string): Promise<ServiceRow | null>;
  /**
   * Desired up, with the registered definition as its snapshot; a service not
   * running becomes claimable now (quick deaths reset). NotFoundError when no
   * such service is registered. Wakes workers.
   */
  startService(namespace: string, name: string): Promise<ServiceRow>;
  /** Desired down: a running instance goes to `stopping` (its worker is signalled), a waiting one to `down`. NotFoundError when unknown. */
  stopService(namespace: string, name: string): Promise<ServiceRow>;
  /**
   * Claims the services that are due, listen on one of the worker's queues
   * and fit `free` (taken in turn from it): each is `up` on this worker with a
   * new fencing token and a lease. `nextStartAt`: the earliest later start of
   * a waiting service of these queues (the worker wakes then).
   */
  claimServices(worker: { name: string; host: string; queues: string[] }, free: FreeCapacity, leaseMs: number): Promise<{ claimed: ClaimedService[]; nextStartAt: number | null }>;
  setServicePid(ref: ServiceRef, pid: number): Promise<void>;
  /** renews the instances' leases; returns those the worker must stop (asked to stop, or no longer current) */
  renewServices(worker: string, refs: ServiceRef[], leaseMs: number): Promise<ServiceRef[]>;
  /**
   * The instance ended. Stopping: `down`. Otherwise a restart is scheduled
   * (backoff, or flapping after quick deaths; see ServiceState), in the same
   * transaction, with `lines` (the instance's last output) stored first.
   * StaleFenceError when the instance is no longer current (nothing is written).
   */
  serviceExited(ref: ServiceRef, exit: ServiceExitReport, lines?: LogLine[]): Promise<ServiceRow>;
  /** The worker gives the instance up without its fault (it is stopping): claimable again now, by any worker; not a restart. False if stale. */
  releaseService(ref: ServiceRef, reason: string, lines?: LogLine[]): Promise<boolean>;
  /**
   * Stores output lines of a running instance (state up or stopping, its fence
   * current): StaleFenceError otherwise, and nothing is written. The instance
   * keeps its last SERVICE_LOG_INSTANCE_BYTES: past that its oldest lines are
   * dropped, and a `system` line marks where. A claim drops the lines of
   * instances older than the last SERVICE_LOG_INSTANCES.
   */
  appendServiceLogs(ref: ServiceRef, lines: LogLine[]): Promise<void>;
  /** In order; NotFoundError when no such service is registered. */
  readServiceLogs(q: ServiceLogQuery): Promise<ServiceLogLine[]>;
  /**
   * Instances whose lease lapsed or whose worker is dead or stopped: claimable
   * again at once by another worker (moved, counted as a restart), or `down`
   * if they were stopping. Returns the rows as they are now.
   */
  reapLostServices(deadWorkers: string[]): Promise<ServiceRow[]>;

  // pools
  setPool(name: string, slots: number | null): Promise<PoolRow>;
  listPools(): Promise<PoolRow[]>;

  // auth (SPEC §4): tokens are stored hashed, looked up by their public id
  createToken(token: NewApiToken): Promise<ApiToken>;
  /** Creates the token only if the store holds none (the first start's admin token), atomically; null when it holds some. */
  createFirstToken(token: NewApiToken): Promise<ApiToken | null>;
  /** the token with its hash, to compare with what a request presents */
  findToken(id: string): Promise<(ApiToken & { hash: string }) | null>;
  listTokens(): Promise<ApiToken[]>;
  /** NotFoundError for an unknown id */
  revokeToken(id: string): Promise<ApiToken>;

  // secrets: stored sealed (AES-256-GCM, see src/secrets); the store never sees a clear value
  putSecret(namespace: string, name: string, sealed: string): Promise<{ change: 'created' | 'updated' }>;
  listSecrets(namespace?: string): Promise<SecretInfo[]>;
  /** the sealed values of those of `names` that exist in `namespace` */
  readSecrets(namespace: string, names: string[]): Promise<Record<string, string>>;
  /** NotFoundError for an unknown secret */
  deleteSecret(namespace: string, name: string): Promise<void>;

  // namespace settings (run-as user, public reads, output roots); a namespace nobody set has none: null
  getNamespaceSettings(namespace: string): Promise<NamespaceSettings | null>;
  /** Creates or changes the namespace's settings: fields absent from `patch` keep their value (defaults for a new row). */
  setNamespaceSettings(namespace: string, patch: Partial<Omit<NamespaceSettings, 'namespace'>>): Promise<NamespaceSettings>;
  /** every configured namespace, by name */
  listNamespaceSettings(): Promise<NamespaceSettings[]>;

  // events (outbox)
  readEvents(afterId: number, filter: EventFilter, limit?: number): Promise<StoreEvent[]>;
  lastEventId(): Promise<number>;
  /**
   * Deletes up to `limit` of the oldest events, in one transaction: those older
   * than `before` (ms) or beyond the newest `keep`, never one the notify duty has
   * not read yet (its 'events' cursor). See EventPrune.
   */
  pruneEvents(o: { before: number; keep: number; limit: number }): Promise<EventPrune>;
  /** How far the outbox was pruned, and its oldest kept event (null: none). */
  eventHorizon(): Promise<EventHorizon>;

  // audit log (read only: rows are written by the transitions they record)
  listAudit(filter: AuditFilter): Promise<AuditEntry[]>;

  // monitoring reads (read only)
  /**
   * Run-time percentiles of the succeeded jobs of each task in the last `runs`
   * runs of a workflow created before `beforeRunId` (computed in SQL).
   */
  taskDurations(q: { namespace: string; workflow: string; beforeRunId: number; runs: number }): Promise<TaskHistory>;
  /** A run's dependency edges between its jobs, as public ids: [upstream, dependent]. */
  runEdges(runId: number): Promise<[string, string][]>;
  /** Failed and timed-out attempts with their errors, latest first. */
  listAttemptErrors(filter: AttemptErrorFilter): Promise<AttemptError[]>;
  /** Accounting (gantry acct): finished attempts' counts, wall and CPU time and peak memory per group, groups in key order. */
  accountUsage(filter: AcctFilter): Promise<AcctRow[]>;

  // notifications (src/notify): subscriptions, the deliveries queue, webhook secrets
  createSubscription(input: SubscriptionInput): Promise<Subscription>;
  listSubscriptions(filter: { namespace?: string }): Promise<Subscription[]>;
  /** NotFoundError for an unknown id */
  deleteSubscription(id: number): Promise<Subscription>;
  /** how far the notify duty has read a source (an outbox or audit id) */
  notifyCursor(name: NotifyCursor): Promise<number>;
  /**
   * Queues deliveries (one per event and target: a repeated one is ignored) and
   * moves the cursor from `from` to `to`, in one transaction; null (nothing
   * written) when the cursor is no longer at `from`: another scheduler did it.
   */
  queueDeliveries(cursor: { name: NotifyCursor; from: number; to: number }, items: DeliveryInput[]): Promise<number | null>;
  /**
   * Takes up to `limit` pending deliveries that are due, oldest first: each gets
   * attempts + 1 and is not due again for `claimMs` (if its sender dies, another
   * takes it then). The attempt number is the claim's token for settleDelivery.
   */
  claimDeliveries(limit: number, claimMs: number): Promise<Delivery[]>;
  /** Records an attempt's outcome (sent; or failed: retried at `retryAt`, or for good when null); false if it was no longer that attempt's. */
  settleDelivery(id: number, attempt: number, outcome: { sent: true } | { sent: false; error: string; retryAt: number | null }): Promise<boolean>;
  listDeliveries(filter: DeliveryFilter): Promise<Delivery[]>;
  /** when the next pending delivery is due; null: none */
  nextDeliveryAt(): Promise<number | null>;
  /** The namespace's webhook signing secret, made on first use; `rotate` replaces it. */
  webhookSecret(namespace: string, rotate?: boolean): Promise<{ namespace: string; secret: string; createdAt: number }>;

  // metrics (read only, set-based: one query each however many jobs)
  jobCounts(): Promise<JobCount[]>;
  /**
   * The jobs that finished in the next `limit` outbox events after `afterEventId`,
   * with the id of the last event read (`afterEventId` when there is none): the
   * cursor moves over every event, finished jobs or not.
   */
  finishedJobTimings(afterEventId: number, limit: number): Promise<{ lastEventId: number; jobs: FinishedJobTiming[] }>;

  // web UI reads (read only, set-based: a 10,000-job run is counted in SQL, not loaded)
  /** runs counted by state */
  runCounts(): Promise<{ state: RunState; count: number }[]>;
  /** jobs that succeeded or failed at or after `since`, counted per worker and minute */
  finishedPerMinute(since: number): Promise<FinishedPerMinute[]>;
  /** jobs that failed at or after `since`: how many, and the `limit` latest */
  failedJobsSince(since: number, limit: number): Promise<{ count: number; jobs: Job[] }>;
  /** a run's jobs counted per task and state (chunks apart), in the run's order */
  runTaskCounts(runId: number): Promise<TaskStateCount[]>;
  /** a run's dependencies between tasks */
  runTaskEdges(runId: number): Promise<TaskEdge[]>;
}
