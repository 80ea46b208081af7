// The service transitions both stores share (see ServiceState in types.ts):
// each reads a service's row, computes its next row here, and writes it back in
// the same transaction. Only the SQL around them differs by dialect.
import type { ServiceSpec } from '../spec/model.js';
import type { AuditNote, ClaimedService, FreeCapacity, LogLine, ServiceExitReport, ServiceRow, ServiceState } from './types.js';
import { fits, freeOf } from './claimSelection.js';

/** An instance that stayed up at least this long was not a quick death: its exit restarts after the base delay. */
export const SERVICE_STABLE_MS = 10_000;
/** This many quick deaths in a row mark a service flapping (restarted at its max_delay from then on). */
export const FLAP_DEATHS = 5;

/**
 * Service output is kept as a bounded tail, since a service runs for months:
 * the lines of its last SERVICE_LOG_INSTANCES instances (a flapping service's
 * pattern, and the instance before a restart), each instance holding at most
 * its last SERVICE_LOG_INSTANCE_BYTES. The newest lines are the ones kept:
 * "why did it die" is answered by the end of an instance's output, not its start.
 * At most 20 MB per service, like one job attempt's log cap.
 */
export const SERVICE_LOG_INSTANCES = 10;
export const SERVICE_LOG_INSTANCE_BYTES = 2 * 1024 * 1024;
/** An instance over its cap is trimmed to this share of it: a chatty one trims once per quarter of the cap, not at every batch. */
const TRIM_TO = 0.75;
/** A longer line is cut (a service writing without newlines must not make one huge row). */
export const SERVICE_LOG_LINE_BYTES = 16 * 1024;

/** A line as stored: one longer than SERVICE_LOG_LINE_BYTES is cut, and says so. */
export function serviceLogLine(l: LogLine): LogLine {
  if (l.line.length <= SERVICE_LOG_LINE_BYTES / 4 || Buffer.byteLength(l.line) <= SERVICE_LOG_LINE_BYTES) return l;
  const kept = Buffer.from(l.line).subarray(0, SERVICE_LOG_LINE_BYTES).toString('utf8').replace(/\uFFFD$/, '');
  return { ...l, line: `${kept} [gantry: line cut at ${SERVICE_LOG_LINE_BYTES} bytes]` };
}

/** What a stored line counts against its instance's cap. */
export const lineBytes = (l: LogLine): number => Buffer.byteLength(l.line) + 1;

/** How many of its oldest bytes an instance holding `held` drops now (0: under its cap). */
export function trimExcess(held: number): number {
  return held > SERVICE_LOG_INSTANCE_BYTES ? held - Math.floor(SERVICE_LOG_INSTANCE_BYTES * TRIM_TO) : 0;
}

/** Put where the dropped lines were. */
export const TRIM_MARK = `[gantry] earlier output of this instance dropped: each instance keeps its last ${SERVICE_LOG_INSTANCE_BYTES / 1024 / 1024} MB`;

/** The line a lost instance ends with (its worker cannot write one). */
export const lostLine = (worker: string | null, now: number): LogLine => ({
  stream: 'system',
  ts: now,
  line: `[gantry] worker ${worker ?? '?'} lost (no heartbeat within its lease): this instance is presumed dead; the service moves to another worker`,
});

/** A service's row as both stores hold it (times epoch ms; spec JSON text). */
export interface ServiceRowDb {
  namespace: string;
  name: string;
  spec: string | null;
  desired: 'up' | 'down';
  state: ServiceState;
  flapping: number;
  worker: string | null;
  host: string | null;
  pid: number | null;
  fence: number;
  lease_until: number | null;
  started_at: number | null;
  restarts: number;
  quick_deaths: number;
  last_exit_code: number | null;
  last_exit_signal: string | null;
  last_exit_at: number | null;
  last_exit_reason: string | null;
  next_start_at: number | null;
  updated_at: number;
  /** bytes of output the current instance holds (service_logs) */
  log_bytes: number;
  /** the fence of the instance the last exit was of */
  last_exit_instance: number | null;
}

/** Column order of every full-row write (INSERT … ON CONFLICT DO UPDATE of all of them). */
export const SERVICE_COLUMNS = [
  'namespace', 'name', 'spec', 'desired', 'state', 'flapping', 'worker', 'host', 'pid', 'fence', 'lease_until', 'started_at',
  'restarts', 'quick_deaths', 'last_exit_code', 'last_exit_signal', 'last_exit_at', 'last_exit_reason', 'next_start_at', 'updated_at',
  'log_bytes', 'last_exit_instance',
] as const satisfies readonly (keyof ServiceRowDb)[];

export function serviceValues(r: ServiceRowDb): unknown[] {
  return SERVICE_COLUMNS.map((c) => r[c]);
}

/** What a transition writes: the next row, and the audit line it would record (service.restarted / service.flapping). */
export interface ServiceChange {
  row: ServiceRowDb;
  audit: { action: 'service.restarted' | 'service.flapping'; reason: string }[];
}

/** A registered service that has never been started: its row as listed. */
export function neverStarted(namespace: string, name: string, now: number): ServiceRowDb {
  return {
    namespace, name, spec: null, desired: 'down', state: 'down', flapping: 0, worker: null, host: null, pid: null, fence: 0,
    lease_until: null, started_at: null, restarts: 0, quick_deaths: 0, last_exit_code: null, last_exit_signal: null,
    last_exit_at: null, last_exit_reason: null, next_start_at: null, updated_at: now, log_bytes: 0, last_exit_instance: null,
  };
}

export function toService(r: ServiceRowDb): ServiceRow {
  return {
    namespace: r.namespace,
    name: r.name,
    desired: r.desired,
    state: r.state,
    flapping: r.flapping === 1,
    worker: r.worker,
    host: r.host,
    pid: r.pid,
    fence: r.fence,
    startedAt: r.started_at,
    restarts: r.restarts,
    quickDeaths: r.quick_deaths,
    lastExit:
      r.last_exit_at === null
        ? null
        : { code: r.last_exit_code, signal: r.last_exit_signal, at: r.last_exit_at, reason: r.last_exit_reason, instance: r.last_exit_instance },
    nextStartAt: r.next_start_at,
    leaseUntil: r.lease_until,
    spec: r.spec === null ? null : (JSON.parse(r.spec) as ServiceSpec),
    updatedAt: r.updated_at,
  };
}

const RUNNING: readonly ServiceState[] = ['up', 'stopping'];
const WAITING: readonly ServiceState[] = ['starting', 'backoff', 'flapping'];
export const isRunning = (s: ServiceState) => RUNNING.includes(s);
export const isWaiting = (s: ServiceState) => WAITING.includes(s);

/** `gantry service start`: desired up with the registered definition; a service not running is claimable now. */
export function started(r: ServiceRowDb, spec: ServiceSpec, now: number): ServiceRowDb {
  const next: ServiceRowDb = { ...r, spec: JSON.stringify(spec), desired: 'up', updated_at: now };
  if (r.state === 'stopping') return { ...next, state: 'up' }; // its instance keeps running: the stop is called off
  if (r.state === 'up') return next;
  return { ...next, state: 'starting', next_start_at: now, quick_deaths: 0, flapping: 0 };
}

/** `gantry service stop`: a running instance is to be stopped by its worker; a waiting one is down at once. */
export function stopped(r: ServiceRowDb, now: number): ServiceRowDb {
  const next: ServiceRowDb = { ...r, desired: 'down', updated_at: now };
  if (isRunning(r.state)) return { ...next, state: 'stopping' };
  return { ...next, state: 'down', next_start_at: null };
}

export function claimed(r: ServiceRowDb, spec: ServiceSpec, worker: { name: string; host: string }, now: number, leaseMs: number): { row: ServiceRowDb; claim: ClaimedService } {
  const row: ServiceRowDb = {
    ...r, state: 'up', worker: worker.name, host: worker.host, pid: null, fence: r.fence + 1, lease_until: now + leaseMs,
    started_at: now, next_start_at: null, updated_at: now, log_bytes: 0,
  };
  return { row, claim: { namespace: r.namespace, name: r.name, fence: row.fence, spec, restarts: r.restarts } };
}

/** Restart delay after `n` quick deaths in a row (n ≥ 1): delay × 2^(n-1), capped by max_delay; a flapping service waits max_delay. */
export function restartDelay(spec: ServiceSpec, n: number): number {
  if (n >= FLAP_DEATHS) return spec.restart.maxDelayMs;
  return Math.min(spec.restart.delayMs * 2 ** Math.max(0, n - 1), spec.restart.maxDelayMs);
}

/** The instance ended (its process exited, or its worker was lost): down if it was stopping, else its restart is scheduled. */
export function exited(r: ServiceRowDb, exit: ServiceExitReport, now: number): ServiceChange {
  const base: ServiceRowDb = {
    ...r, worker: null, host: null, pid: null, lease_until: null, started_at: null, updated_at: now,
    last_exit_code: exit.code, last_exit_signal: exit.signal, last_exit_at: now, last_exit_reason: exit.reason, last_exit_instance: r.fence,
  };
  if (r.state === 'stopping' || r.desired === 'down') return { row: { ...base, state: 'down', next_start_at: null }, audit: [] };
  const upFor = r.started_at === null ? 0 : now - r.started_at;
  const quick = upFor < SERVICE_STABLE_MS;
  const n = quick ? r.quick_deaths + 1 : 1;
  const spec = JSON.parse(r.spec!) as ServiceSpec;
  const delay = quick ? restartDelay(spec, n) : spec.restart.delayMs;
  const flapping = quick && n >= FLAP_DEATHS;
  const how = exit.reason ?? (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`);
  const audit: ServiceChange['audit'] = [{ action: 'service.restarted', reason: `${how} after ${Math.round(upFor / 100) / 10} s up; restart in ${delay} ms` }];
  if (flapping && r.flapping === 0) audit.push({ action: 'service.flapping', reason: `${n} quick deaths in a row (each up less than ${SERVICE_STABLE_MS / 1000} s); restarted every ${delay} ms` });
  return {
    row: {
      ...base, state: flapping ? 'flapping' : 'backoff', flapping: flapping ? 1 : quick ? r.flapping : 0, quick_deaths: quick ? n : 0,
      restarts: r.restarts + 1, next_start_at: now + delay,
    },
    audit,
  };
}

/** Its worker gave it up (stopping) or died: claimable again now by any worker. `lost`: counted as a restart (it moved). */
export function moved(r: ServiceRowDb, reason: string, now: number, lost: boolean): ServiceChange {
  if (r.state === 'stopping' || r.desired === 'down') return exited(r, { code: null, signal: null, reason }, now);
  return {
    row: {
      ...r, state: 'starting', worker: null, host: null, pid: null, lease_until: null, started_at: null, next_start_at: now,
      restarts: lost ? r.restarts + 1 : r.restarts, updated_at: now,
      ...(lost ? { last_exit_code: null, last_exit_signal: null, last_exit_at: now, last_exit_reason: reason, last_exit_instance: r.fence } : {}),
    },
    audit: lost ? [{ action: 'service.restarted', reason: `${reason}: moved to another worker` }] : [],
  };
}

/** One statement writing a service's whole row (both dialects; `ph(i)` is the i-th placeholder, from 1). */
export function upsertServiceSql(ph: (i: number) => string): string {
  const cols = SERVICE_COLUMNS.join(', ');
  const values = SERVICE_COLUMNS.map((_, i) => ph(i + 1)).join(', ');
  const set = SERVICE_COLUMNS.filter((c) => c !== 'namespace' && c !== 'name').map((c) => `${c} = excluded.${c}`).join(', ');
  return `INSERT INTO services (${cols}) VALUES (${values}) ON CONFLICT (namespace, name) DO UPDATE SET ${set}`;
}

/** The waiting services a worker takes now (due, of its queues, fitting what is left free in turn), and the next start of the others. */
export function pickServices(
  rows: ServiceRowDb[],
  worker: { name: string; host: string; queues: string[] },
  free: FreeCapacity,
  now: number,
  leaseMs: number,
): { picked: { row: ServiceRowDb; claim: ClaimedService }[]; nextStartAt: number | null } {
  const picked: { row: ServiceRowDb; claim: ClaimedService }[] = [];
  let nextStartAt: number | null = null;
  let left = free;
  for (const r of rows) {
    if (r.desired !== 'up' || !isWaiting(r.state) || r.spec === null) continue;
    const spec = JSON.parse(r.spec) as ServiceSpec;
    if (!spec.queue.some((q) => worker.queues.includes(q))) continue;
    const due = r.next_start_at ?? now;
    if (due > now) {
      nextStartAt = nextStartAt === null ? due : Math.min(nextStartAt, due);
      continue;
    }
    if (!fits(spec.resources, left)) continue;
    left = freeOf(left, spec.resources);
    picked.push(claimed(r, spec, worker, now, leaseMs));
  }
  return { picked, nextStartAt };
}

/** Every registered service (definitions of kind service), with its row or a never-started one; by namespace, name. */
export function serviceList(defs: { namespace: string; name: string }[], rows: ServiceRowDb[], now: number): ServiceRow[] {
  const byKey = new Map(rows.map((r) => [`${r.namespace}/${r.name}`, r]));
  const out = defs.map((d) => toService(byKey.get(`${d.namespace}/${d.name}`) ?? neverStarted(d.namespace, d.name, now)));
  return out.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** The audit rows of a change (service.restarted / service.flapping), written in its transaction. */
export function serviceAuditNotes(change: ServiceChange, actor: string): AuditNote[] {
  return change.audit.map((a) => ({
    actor,
    action: a.action,
    reason: a.reason,
    namespace: change.row.namespace,
    subject: change.row.name,
    details: {
      restarts: change.row.restarts, quickDeaths: change.row.quick_deaths, nextStartAt: change.row.next_start_at, lastExit: change.row.last_exit_reason,
      instance: change.row.last_exit_instance,
    },
  }));
}
