// The audit log: every action Gantry takes on its own (a retry scheduled, a lease
// reaped, a stalled job killed, a service restarted, a leader taking over, a
// catch-up run created) is one row, written by the store inside the transaction
// of the transition it records, so the log never claims what did not happen and
// never misses what did. Rows are plain data; both dialects share the mapping.
import type { AuditEntry, AuditFilter, AuditNote } from './types.js';
import { formatJobId } from './jobId.js';
import { formatDuration } from '../spec/duration.js';
import { inNamespaces } from './scopeSql.js';

export interface AuditRowDb {
  id: number;
  at: number;
  actor: string;
  action: string;
  reason: string;
  namespace: string | null;
  run_id: number | null;
  job_id: string | null;
  subject: string | null;
  details: string | null;
}

export function toAuditEntry(r: AuditRowDb): AuditEntry {
  return {
    id: Number(r.id),
    at: Number(r.at),
    actor: r.actor,
    action: r.action as AuditEntry['action'],
    reason: r.reason,
    namespace: r.namespace,
    runId: r.run_id === null ? null : Number(r.run_id),
    jobId: r.job_id,
    subject: r.subject,
    details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
  };
}

/**
 * The values of one audit row, in the order of both dialects' insert statement
 * (`auditInsertSql`): the run id appears twice, as the row's and to look up its
 * namespace when the note does not name one.
 */
export function auditValues(note: AuditNote, at: number): unknown[] {
  const runId = note.runId ?? null;
  return [
    at,
    note.actor,
    note.action,
    note.reason,
    note.namespace ?? null,
    runId,
    runId,
    note.jobId ?? null,
    note.subject ?? null,
    note.details ? JSON.stringify(note.details) : null,
  ];
}

/** The insert both dialects run, with `p(i)` their placeholder for the i-th value (1-based). */
export function auditInsertSql(p: (i: number) => string): string {
  return `INSERT INTO audit (at, actor, action, reason, namespace, run_id, job_id, subject, details)
    VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, coalesce(${p(5)}, (SELECT namespace FROM runs WHERE id = ${p(6)})), ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)})`;
}

/** Most entries one listAudit call returns. */
export const MAX_AUDIT_PAGE = 1000;

/** The query of listAudit in either dialect (`p(i)`: its placeholder for the i-th value). */
export function auditListSql(f: AuditFilter, p: (i: number) => string): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (cond: (ph: string) => string, v: unknown) => {
    values.push(v);
    where.push(cond(p(values.length)));
  };
  if (f.since !== undefined) add((x) => `at >= ${x}`, f.since);
  if (f.until !== undefined) add((x) => `at < ${x}`, f.until);
  if (f.runId !== undefined) add((x) => `run_id = ${x}`, f.runId);
  if (f.namespace !== undefined) add((x) => `namespace = ${x}`, f.namespace);
  if (f.namespaces) where.push(inNamespaces('namespace', f.namespaces, (v) => (values.push(v), p(values.length))));
  if (f.action !== undefined) {
    // `service` matches every `service.*` action; a full name matches itself
    if (f.action.includes('.')) add((x) => `action = ${x}`, f.action);
    else add((x) => `action LIKE ${x}`, `${f.action}.%`);
  }
  if (f.afterId !== undefined) add((x) => `id > ${x}`, f.afterId);
  if (f.beforeId !== undefined) add((x) => `id < ${x}`, f.beforeId);
  values.push(Math.max(1, Math.min(f.limit ?? 100, MAX_AUDIT_PAGE)));
  const sql = `SELECT * FROM audit${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${f.newestFirst ? 'DESC' : 'ASC'} LIMIT ${p(values.length)}`;
  return { sql, values };
}

// ----------------------------------------------------------------- the notes
// Both stores record the same sentences: they are built here from row data.

const MAX_ERROR_IN_REASON = 300;

function shortError(e: string): string {
  const one = e.replace(/\s+/g, ' ').trim();
  return one.length > MAX_ERROR_IN_REASON ? `${one.slice(0, MAX_ERROR_IN_REASON)}…` : one;
}

/** The job row fields a failure note reads. */
export interface FailedJobRow {
  run_id: number;
  task: string;
  chunk: number | null;
  worker: string | null;
  attempts: number;
  max_retries: number;
}

/**
 * What a failed attempt records: `stall.killed` when the worker killed it for its
 * stall_timeout, then `retry.scheduled` (retryDelay given) or `retries.exhausted`
 * (it had retries and used them all). A job without retries, or an error marked
 * not retryable, fails without an automatic action to record.
 */
export function failureNotes(
  j: FailedJobRow,
  fence: number,
  outcome: { error: string; retryable?: boolean; cause?: 'stalled' },
  failures: number,
  retryDelay: number | null,
  runAfter: number | null,
): AuditNote[] {
  const jobId = formatJobId(j.run_id, j.task, j.chunk);
  const base = { actor: `worker:${j.worker ?? 'unknown'}`, runId: j.run_id, jobId, subject: j.worker };
  const error = shortError(outcome.error);
  const notes: AuditNote[] = [];
  if (outcome.cause === 'stalled')
    notes.push({ ...base, action: 'stall.killed', reason: `job ${jobId} killed: ${error}`, details: { attempt: j.attempts, fence } });
  if (retryDelay !== null)
    notes.push({
      ...base,
      action: 'retry.scheduled',
      reason: `attempt ${j.attempts} of job ${jobId} failed (${error}); retry ${failures} of ${j.max_retries} in ${formatDuration(retryDelay)}`,
      details: { attempt: j.attempts, fence, retry: failures, maxRetries: j.max_retries, delayMs: retryDelay, runAfter, error: outcome.error },
    });
  else if (j.max_retries > 0 && outcome.retryable !== false)
    notes.push({
      ...base,
      action: 'retries.exhausted',
      reason: `attempt ${j.attempts} of job ${jobId} failed (${error}); all ${j.max_retries} retries used, the job failed`,
      details: { attempt: j.attempts, fence, maxRetries: j.max_retries, error: outcome.error },
    });
  return notes;
}

/** A reaped attempt: recorded lost, its job requeued. */
export function reapNote(
  r: { fence: number; run_id: number; task: string; chunk: number | null; worker: string; host: string; lease_until: number },
  now: number,
  actor: string,
): AuditNote {
  const jobId = formatJobId(r.run_id, r.task, r.chunk);
  const why =
    r.lease_until < now
      ? `its lease expired ${formatDuration(now - r.lease_until)} ago (worker ${r.worker} stopped heartbeating)`
      : `worker ${r.worker} died or was stopped`;
  return {
    actor,
    action: 'lease.reaped',
    reason: `attempt ${r.fence} of job ${jobId} on ${r.host} lost: ${why}; the job is queued again`,
    runId: r.run_id,
    jobId,
    subject: r.worker,
    details: { fence: r.fence, worker: r.worker, host: r.host, leaseUntil: r.lease_until },
  };
}

/** A leadership lease taken from another holder. */
export function takeoverNote(role: string, holder: string, prev: { holder: string; until: number }, now: number, takeoverFrom: string | undefined): AuditNote {
  const why =
    prev.until >= now && prev.holder === takeoverFrom
      ? `its process is gone (lease still had ${formatDuration(prev.until - now)})`
      : `its lease expired ${formatDuration(now - prev.until)} ago`;
  return {
    actor: `${role}:${holder}`,
    action: 'leader.takeover',
    reason: `took the ${role} leadership over from ${prev.holder}: ${why}`,
    subject: role,
    details: { previous: prev.holder, previousUntil: prev.until },
  };
}

/** A worker declared dead: marked stopped, its jobs and services given to others. */
export function deadWorkerNote(name: string, reason: string, actor: string): AuditNote {
  return { actor, action: 'worker.dead', reason: `worker ${name} declared dead: ${reason}`, subject: name, details: { worker: name } };
}
