// Rows of the notification tables (same columns in SQLite and PostgreSQL) and
// the queries both dialects share, with `p(i)` their placeholder for the i-th value.
import type { Delivery, DeliveryFilter, DeliveryState, NotifyEvent, Subscription } from './types.js';
import { inNamespaces } from './scopeSql.js';

export interface SubscriptionRowDb {
  id: number;
  namespace: string | null;
  workflow: string | null;
  labels: string;
  events: string;
  target: string;
  created_at: number;
  created_by: string | null;
}

export function toSubscription(r: SubscriptionRowDb): Subscription {
  return {
    id: Number(r.id),
    namespace: r.namespace,
    workflow: r.workflow,
    labels: JSON.parse(r.labels) as Record<string, string>,
    events: JSON.parse(r.events) as NotifyEvent[],
    target: r.target,
    createdAt: Number(r.created_at),
    createdBy: r.created_by,
  };
}

export interface DeliveryRowDb {
  id: number;
  event_key: string;
  event: string;
  target: string;
  namespace: string | null;
  run_id: number | null;
  subject: string | null;
  source: string;
  payload: string;
  state: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  sent_at: number | null;
}

export function toDelivery(r: DeliveryRowDb): Delivery {
  return {
    id: Number(r.id),
    eventKey: r.event_key,
    event: r.event as NotifyEvent,
    target: r.target,
    namespace: r.namespace,
    runId: r.run_id === null ? null : Number(r.run_id),
    subject: r.subject,
    source: r.source,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    state: r.state as DeliveryState,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error,
    createdAt: Number(r.created_at),
    sentAt: r.sent_at === null ? null : Number(r.sent_at),
  };
}

export const MAX_DELIVERY_PAGE = 1000;

export function deliveryListSql(f: DeliveryFilter, p: (i: number) => string): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (cond: (ph: string) => string, v: unknown) => {
    values.push(v);
    where.push(cond(p(values.length)));
  };
  if (f.state !== undefined) add((x) => `state = ${x}`, f.state);
  if (f.runId !== undefined) add((x) => `run_id = ${x}`, f.runId);
  if (f.namespace !== undefined) add((x) => `namespace = ${x}`, f.namespace);
  if (f.namespaces) where.push(inNamespaces('namespace', f.namespaces, (v) => (values.push(v), p(values.length))));
  if (f.afterId !== undefined) add((x) => `id > ${x}`, f.afterId);
  if (f.beforeId !== undefined) add((x) => `id < ${x}`, f.beforeId);
  values.push(Math.max(1, Math.min(f.limit ?? 100, MAX_DELIVERY_PAGE)));
  const sql = `SELECT * FROM deliveries${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${f.newestFirst ? 'DESC' : 'ASC'} LIMIT ${p(values.length)}`;
  return { sql, values };
}

/** The error kept with a delivery: enough to understand it, bounded. */
export function deliveryError(e: string): string {
  return e.length > 2000 ? `${e.slice(0, 2000)}…` : e;
}
