// The event outbox as both stores write and read it (SPEC §4: every state
// change of runs, jobs, workers and services). Run and job events are written
// by the job transitions themselves (one statement per batch); worker and
// service events go through here, in the transaction of their transition, with
// what they say beyond their state as JSON in `detail`. The filter of an event
// stream is one WHERE fragment for both dialects.
import { EVENT_KINDS, type EventFilter, type EventKind, type WorkerEventState, type WorkerInfo, type WorkerStopMode } from './types.js';
import { isRunning, type ServiceRowDb } from './serviceRows.js';
import { inNamespaces } from './scopeSql.js';

/** What a worker's or a service's event says beyond its state (the `detail` column, JSON). */
export interface EventDetail {
  worker?: string;
  reason?: string;
  exit?: { code: number | null; signal: string | null };
  restarts?: number;
}

/** A worker's or a service's event, ready to insert. */
export interface EventInsert {
  ts: number;
  kind: 'worker' | 'service';
  state: string;
  /** the worker's name, or the service's `namespace/name` */
  subject: string;
  namespace: string | null;
  detail: EventDetail;
}

/** One row of the outbox (both dialects; `ph(i)` is the i-th placeholder, from 1). */
export function insertEventSql(ph: (i: number) => string): string {
  return `INSERT INTO events (ts, kind, run_id, job_id, state, subject, namespace, detail) VALUES (${ph(1)}, ${ph(2)}, 0, NULL, ${ph(3)}, ${ph(4)}, ${ph(5)}, ${ph(6)})`;
}
export function eventValues(e: EventInsert): unknown[] {
  return [e.ts, e.kind, e.state, e.subject, e.namespace, JSON.stringify(e.detail)];
}

export function workerEvent(name: string, state: WorkerEventState, reason: string, ts: number): EventInsert {
  return { ts, kind: 'worker', state, subject: name, namespace: null, detail: { worker: name, reason } };
}

export function registeredReason(w: WorkerInfo): string {
  return `registered on ${w.host} (pid ${w.pid}): queues ${w.queues.join(', ')}, ${w.slots} slot${w.slots === 1 ? '' : 's'}`;
}

const STOP_REASONS: Record<WorkerStopMode, string> = {
  drain: 'drain asked: it finishes its running jobs and claims no more',
  stop: 'stop asked: it finishes its running jobs, then exits',
  terminate: 'terminate asked: its running jobs are killed and requeued, then it exits',
};
export const stopAskedReason = (mode: WorkerStopMode) => STOP_REASONS[mode];
/** The state a worker declared dead comes back in when it beats again (SQL over its row): as what it was asked to be. */
export const REVIVED_STATE = `CASE WHEN stop_mode IS NULL THEN 'active' ELSE 'draining' END`;
export const REVIVED_REASON = 'heartbeat again after it was declared dead: its jobs went to others, it claims new ones';

/** How an instance ended, from its row's last exit: "killed by SIGKILL", "exit code 3". */
function exitHow(r: ServiceRowDb): string {
  if (r.last_exit_signal) return `killed by ${r.last_exit_signal}`;
  if (r.last_exit_code !== null) return `exit code ${r.last_exit_code}`;
  return r.last_exit_reason ?? 'ended';
}

/**
 * The event of a service's transition from `before` (null: no row yet) to
 * `next`; null when its state did not change. `cause`: why, when the
 * transition knows better than the states tell (an exit's restart delay, a
 * lost worker).
 */
export function serviceEvent(before: ServiceRowDb | null | undefined, next: ServiceRowDb, cause?: string): EventInsert | null {
  if (before && before.state === next.state) return null;
  const ended = before !== null && before !== undefined && isRunning(before.state) && !isRunning(next.state) && next.last_exit_at === next.updated_at;
  let reason: string;
  switch (next.state) {
    case 'up':
      reason =
        before?.state === 'stopping'
          ? 'stop called off by a start: its instance keeps running'
          : `started on worker ${next.worker}${next.host ? ` (${next.host})` : ''}${next.restarts ? `, restart ${next.restarts}` : ''}`;
      break;
    case 'stopping':
      reason = `stop asked: worker ${next.worker} stops its instance`;
      break;
    case 'down':
      reason = ended ? `stopped (${exitHow(next)})` : 'stopped before it started again';
      break;
    case 'starting':
      reason = cause ?? 'start asked';
      break;
    default:
      // backoff, flapping: the instance died and a restart is due
      reason = cause ?? exitHow(next);
  }
  const worker = next.worker ?? before?.worker ?? null;
  const detail: EventDetail = { reason, restarts: next.restarts };
  if (worker) detail.worker = worker;
  // a lost worker's instance ended unseen: no code, no signal to tell
  if (ended && (next.last_exit_code !== null || next.last_exit_signal !== null)) detail.exit = { code: next.last_exit_code, signal: next.last_exit_signal };
  return { ts: next.updated_at, kind: 'service', state: next.state, subject: `${next.namespace}/${next.name}`, namespace: next.namespace, detail };
}

/** Whether a stream with this filter shows run and job events only (a run's stream may then start at its beginning). */
export function onlyRunEvents(f: EventFilter): boolean {
  const kinds = f.kinds ?? (f.runId !== undefined || f.workflow || f.labels && Object.keys(f.labels).length ? ['run', 'job'] : EVENT_KINDS);
  return kinds.every((k) => k === 'run' || k === 'job');
}

/**
 * The WHERE fragment (over `events e`) of an event filter, null for none: see
 * EventFilter for the rules. `arg` binds a value and returns its placeholder;
 * it is called in the order the placeholders appear (SQLite's `?` are positional).
 */
export function eventFilterSql(f: EventFilter, arg: (v: unknown) => string): string | null {
  const cond = eventFieldsSql(f, arg);
  if (!f.namespaces) return cond;
  // a reader's scope: runs, jobs and services of its namespaces; workers carry no job data
  const scope = [
    `(e.kind IN ('run', 'job') AND e.run_id IN (SELECT id FROM runs WHERE ${inNamespaces('namespace', f.namespaces, arg)}))`,
    `(e.kind = 'service' AND ${inNamespaces('e.namespace', f.namespaces, arg)})`,
    `e.kind = 'worker'`,
  ].join(' OR ');
  return cond === null ? scope : `(${cond}) AND (${scope})`;
}

function eventFieldsSql(f: EventFilter, arg: (v: unknown) => string): string | null {
  const labels = Object.entries(f.labels ?? {});
  const runFiltered = f.runId !== undefined || Boolean(f.workflow) || labels.length > 0;
  if (!f.kinds && !runFiltered && !f.namespace) return null;
  const explicit = f.kinds !== undefined;
  const kinds = new Set<EventKind>(f.kinds ?? EVENT_KINDS);
  const groups: string[] = [];
  const group = (ks: EventKind[], conds: () => string[]) => {
    const kindSql = `e.kind IN (${ks.map((k) => arg(k)).join(', ')})`;
    groups.push([kindSql, ...conds()].join(' AND '));
  };
  const runKinds = (['run', 'job'] as const).filter((k) => kinds.has(k));
  if (runKinds.length)
    group([...runKinds], () => {
      const conds: string[] = [];
      if (f.runId !== undefined) conds.push(`e.run_id = ${arg(f.runId)}`);
      // run-level filters as one subquery on runs (and run_labels)
      const runWhere: string[] = [];
      if (f.namespace) runWhere.push(`namespace = ${arg(f.namespace)}`);
      if (f.workflow) runWhere.push(`workflow = ${arg(f.workflow)}`);
      for (const [k, v] of labels) runWhere.push(`id IN (SELECT run_id FROM run_labels WHERE key = ${arg(k)} AND value = ${arg(v)})`);
      if (runWhere.length) conds.push(`e.run_id IN (SELECT id FROM runs WHERE ${runWhere.join(' AND ')})`);
      return conds;
    });
  // services have a namespace, but no run, workflow or labels
  if (kinds.has('service') && (explicit || !runFiltered)) group(['service'], () => (f.namespace ? [`e.namespace = ${arg(f.namespace)}`] : []));
  // workers are cluster-wide: no namespace either
  if (kinds.has('worker') && (explicit || (!runFiltered && !f.namespace))) group(['worker'], () => []);
  if (groups.length === 0) return '1 = 0';
  return groups.length === 1 ? groups[0]! : groups.map((g) => `(${g})`).join(' OR ');
}
