// The first half of the notify duty: turns what happened into deliveries. It
// reads the event outbox (run started / succeeded / failed / cancelled) and the
// audit log (retries exhausted, service restarted / flapping) from where it
// stopped (cursors kept in the store), finds each event's targets — the
// workflow's or service's own `notify` as applied now (a corrected address
// reaches runs already under way; the run's snapshot is not read) and every
// subscription whose filter matches — and queues
// one delivery per event and target, moving the cursor in the same transaction.
import { NotFoundError, type AuditEntry, type DeliveryInput, type NotifyEvent, type Run, type Store, type StoreEvent, type Subscription } from '../store/types.js';
import type { NotifySpec, ServiceSpec, WorkflowSpec } from '../spec/model.js';
import { runStateEvent } from './targets.js';

/** The audit actions that are notification events, and the event each is. */
const AUDIT_EVENTS: Record<string, NotifyEvent> = {
  'retries.exhausted': 'retries_exhausted',
  'service.restarted': 'restarted',
  'service.flapping': 'flapping',
};

/** Lines of a restarted service's output sent with the notification. */
const NOTIFY_LAST_LINES = 20;

/** Failed jobs listed in a notification, at most. */
const MAX_FAILED_JOBS = 20;

/** What an event is about, for matching targets. Services have no workflow and no labels. */
interface Subject {
  namespace: string | null;
  workflow: string | null;
  labels: Record<string, string> | null;
  event: NotifyEvent;
}

export function subscriptionMatches(s: Subscription, e: Subject): boolean {
  if (!s.events.includes(e.event)) return false;
  if (s.namespace !== null && s.namespace !== e.namespace) return false;
  if (s.workflow !== null && s.workflow !== e.workflow) return false;
  for (const [k, v] of Object.entries(s.labels)) if (e.labels?.[k] !== v) return false;
  return true;
}

/** The targets of one event: its definition's own (`notify`), then matching subscriptions'; one delivery per target. */
function targetsOf(own: NotifySpec | null, subs: Subscription[], e: Subject): { target: string; source: string }[] {
  const out = new Map<string, string>();
  if (own && own.on.includes(e.event)) for (const t of own.to) if (!out.has(t)) out.set(t, 'notify');
  for (const s of subs) if (subscriptionMatches(s, e) && !out.has(s.target)) out.set(s.target, `subscription:${s.id}`);
  return [...out].map(([target, source]) => ({ target, source }));
}

export function runSummary(r: Run): Record<string, unknown> {
  return {
    id: r.id,
    namespace: r.namespace,
    workflow: r.workflow,
    state: r.state,
    params: r.params,
    labels: r.labels,
    logicalDate: r.logicalDate,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    counts: r.counts,
  };
}

/** Reads one batch of each source; returns how many source rows it read (0: caught up). */
export async function collectDeliveries(store: Store, batch = 500): Promise<number> {
  const subs = await store.listSubscriptions({});
  const notifyOf = new Map<string, NotifySpec | null>();
  const runs = new Map<number, { run: Run; notify: NotifySpec | null } | null>();
  const runOf = async (id: number) => {
    if (!runs.has(id)) {
      const run = await store.getRun(id);
      const key = run ? `${run.namespace}\u0000${run.workflow}` : '';
      if (run && !notifyOf.has(key)) notifyOf.set(key, ((await store.getWorkflow(run.namespace, run.workflow))?.definition as WorkflowSpec | undefined)?.notify ?? null);
      runs.set(id, run ? { run, notify: notifyOf.get(key) ?? null } : null);
    }
    return runs.get(id)!;
  };
  let read = 0;

  // ---- run state changes from the outbox
  const from = await store.notifyCursor('events');
  const events = await store.readEvents(from, {}, batch);
  if (events.length) {
    read += events.length;
    const items: DeliveryInput[] = [];
    for (const ev of events) items.push(...(await runEventDeliveries(store, ev, subs, runOf)));
    await store.queueDeliveries({ name: 'events', from, to: events[events.length - 1]!.id }, items);
  }

  // ---- automatic actions from the audit log
  const afrom = await store.notifyCursor('audit');
  const entries = await store.listAudit({ afterId: afrom, limit: batch });
  if (entries.length) {
    read += entries.length;
    const items: DeliveryInput[] = [];
    let services: ServiceSpec[] | null = null;
    for (const a of entries) {
      const event = AUDIT_EVENTS[a.action];
      if (!event) continue;
      if (event === 'retries_exhausted') {
        if (a.runId === null) continue;
        const r = await runOf(a.runId);
        if (!r) continue;
        const subject: Subject = { namespace: r.run.namespace, workflow: r.run.workflow, labels: r.run.labels, event };
        const payload = { event, at: a.at, namespace: r.run.namespace, reason: a.reason, run: runSummary(r.run), job: { id: a.jobId, error: a.details?.error ?? null, attempt: a.details?.attempt ?? null } };
        for (const t of targetsOf(r.notify, subs, subject)) items.push(auditDelivery(a, event, t, payload));
      } else {
        services ??= (await store.listDefinitions()).flatMap((d) => (d.definition.kind === 'service' ? [d.definition] : []));
        const svc = services.find((s) => s.name === a.subject && s.namespace === a.namespace) ?? null;
        const subject: Subject = { namespace: a.namespace, workflow: null, labels: null, event };
        const payload = {
          event, at: a.at, namespace: a.namespace, reason: a.reason, service: { name: a.subject, namespace: a.namespace }, details: a.details,
          lastLines: await lastLinesOf(store, a),
        };
        for (const t of targetsOf(svc?.notify ?? null, subs, subject)) items.push(auditDelivery(a, event, t, payload));
      }
    }
    await store.queueDeliveries({ name: 'audit', from: afrom, to: entries[entries.length - 1]!.id }, items);
  }
  return read;
}

/** The end of the output of the instance a service event is about (written in the exit's transaction, so already there). */
async function lastLinesOf(store: Store, a: AuditEntry): Promise<{ stream: string; ts: number; line: string }[]> {
  const instance = a.details?.instance;
  if (typeof instance !== 'number' || a.namespace === null || a.subject === null) return [];
  try {
    return (await store.readServiceLogs({ namespace: a.namespace, name: a.subject, instance, tail: NOTIFY_LAST_LINES })).map((l) => ({ stream: l.stream, ts: l.ts, line: l.line }));
  } catch (e) {
    if (e instanceof NotFoundError) return []; // the service was removed since
    throw e;
  }
}

function auditDelivery(a: AuditEntry, event: NotifyEvent, t: { target: string; source: string }, payload: Record<string, unknown>): DeliveryInput {
  return { eventKey: `audit:${a.id}`, event, target: t.target, namespace: a.namespace, runId: a.runId, subject: a.subject, source: t.source, payload };
}

async function runEventDeliveries(
  store: Store,
  ev: StoreEvent,
  subs: Subscription[],
  runOf: (id: number) => Promise<{ run: Run; notify: NotifySpec | null } | null>,
): Promise<DeliveryInput[]> {
  if (ev.kind !== 'run') return [];
  const event = runStateEvent(ev.state);
  if (!event) return [];
  const r = await runOf(ev.runId);
  if (!r) return [];
  const subject: Subject = { namespace: r.run.namespace, workflow: r.run.workflow, labels: r.run.labels, event };
  const targets = targetsOf(r.notify, subs, subject);
  if (targets.length === 0) return [];
  const payload: Record<string, unknown> = { event, at: ev.ts, namespace: r.run.namespace, run: { ...runSummary(r.run), state: ev.state } };
  if (event === 'failed') {
    const failed = await store.listJobs({ runId: ev.runId, state: 'failed', limit: MAX_FAILED_JOBS });
    payload.failedJobs = failed.map((j) => ({ id: j.id, task: j.task, error: j.error, exitCode: j.exitCode, attempts: j.attempts, worker: j.worker }));
  }
  return targets.map((t) => ({ eventKey: `run-event:${ev.id}`, event, target: t.target, namespace: r.run.namespace, runId: r.run.id, subject: null, source: t.source, payload }));
}
