// Schemas of the audit, notification and feed routes (notifyRoutes.ts): the
// routes parse with them and the OpenAPI document is generated from them.
import { z } from 'zod';
import { AUDIT_ACTIONS, NOTIFY_EVENTS, type AuditEntry, type Delivery, type Subscription } from '../store/types.js';
import { component, intParam, labelParam, timeParam } from './schemas.js';
import { isNotifyEvent, parseTarget } from '../notify/targets.js';

const ms = z.number().meta({ description: 'epoch milliseconds' });
const order = z.enum(['asc', 'desc']).meta({ description: 'desc (default): newest first, page on with `before`; asc: oldest first, page on with `after`' });

export const auditQuery = z.object({
  since: timeParam.optional().meta({ description: 'at or after this time: epoch ms, ISO 8601, or a duration ago (30m, 2h, 7d)' }),
  until: timeParam.optional().meta({ description: 'before this time' }),
  run: intParam.optional(),
  namespace: z.string().optional(),
  action: z.string().optional().meta({ description: `an action (${AUDIT_ACTIONS.join(', ')}) or its family (service, lease, …)` }),
  after: intParam.optional().meta({ description: 'entries with a larger id (the last id of the previous page, with order=asc)' }),
  before: intParam.optional().meta({ description: 'entries with a smaller id (the last id of the previous page, newest first)' }),
  order: order.optional(),
  limit: intParam.min(1).max(1000).optional(),
});

const eventName = z.string().refine(isNotifyEvent, { error: (i) => `'${String(i.input)}' is not an event: use ${NOTIFY_EVENTS.join(', ')}` });
const target = z.string().superRefine((t, ctx) => {
  const r = parseTarget(t);
  if ('error' in r) ctx.addIssue({ code: 'custom', message: r.error });
});

export const subscriptionBody = z
  .object({
    namespace: z.string().min(1).optional().meta({ description: 'only runs/services of this namespace (default: every namespace)' }),
    workflow: z.string().min(1).optional().meta({ description: 'only runs of this workflow' }),
    labels: z.record(z.string(), z.string()).optional().meta({ description: 'only runs with every one of these labels' }),
    events: z.array(eventName).min(1).meta({ description: NOTIFY_EVENTS.join(', ') }),
    target: target.meta({ description: 'mailto:address, or an http(s) URL that receives signed JSON POSTs' }),
  })
  .strict();
export const subscriptionsQuery = z.object({ namespace: z.string().optional() });
export const deliveriesQuery = z.object({
  state: z.enum(['pending', 'sent', 'failed']).optional(),
  run: intParam.optional(),
  namespace: z.string().optional(),
  after: intParam.optional(),
  before: intParam.optional(),
  order: order.optional(),
  limit: intParam.min(1).max(1000).optional(),
});
export const feedQuery = z.object({
  namespace: z.string().optional(),
  workflow: z.string().optional(),
  label: labelParam.optional(),
  limit: intParam.min(1).max(500).optional().meta({ description: 'entries, at most (default 50)' }),
});
export const namespaceParam = z.object({ namespace: z.string().min(1) });
export const secretBody = z
  .object({ rotate: z.boolean().optional().meta({ description: 'replace the secret with a new one (receivers must be given it)' }) })
  .strict();

export const auditEntrySchema = component(
  'AuditEntry',
  z.object({
    id: z.number().int(),
    at: ms,
    actor: z.string().meta({ description: 'scheduler:<id>, worker:<name>, store' }),
    action: z.enum(AUDIT_ACTIONS),
    reason: z.string(),
    namespace: z.string().nullable(),
    runId: z.number().int().nullable(),
    jobId: z.string().nullable(),
    subject: z.string().nullable().meta({ description: 'a worker, service or scheduler role the entry is about' }),
    details: z.record(z.string(), z.unknown()).nullable(),
  }),
  'an action Gantry took on its own, with why',
);
export const subscriptionSchema = component(
  'Subscription',
  z.object({
    id: z.number().int(),
    namespace: z.string().nullable(),
    workflow: z.string().nullable(),
    labels: z.record(z.string(), z.string()),
    events: z.array(z.enum(NOTIFY_EVENTS)),
    target: z.string(),
    createdAt: ms,
    createdBy: z.string().nullable(),
  }),
);
export const deliverySchema = component(
  'Delivery',
  z.object({
    id: z.number().int(),
    eventKey: z.string(),
    event: z.enum(NOTIFY_EVENTS),
    target: z.string(),
    namespace: z.string().nullable(),
    runId: z.number().int().nullable(),
    subject: z.string().nullable(),
    source: z.string().meta({ description: 'notify (the definition\'s own) or subscription:<id>' }),
    payload: z.record(z.string(), z.unknown()),
    state: z.enum(['pending', 'sent', 'failed']),
    attempts: z.number().int(),
    nextAttemptAt: ms,
    lastError: z.string().nullable(),
    createdAt: ms,
    sentAt: ms.nullable(),
  }),
  'one notification of one event to one target',
);
export const auditResponse = z.object({ entries: z.array(auditEntrySchema) });
export const subscriptionsResponse = z.object({ subscriptions: z.array(subscriptionSchema) });
export const deliveriesResponse = z.object({ deliveries: z.array(deliverySchema) });
export const secretResponse = z.object({ namespace: z.string(), secret: z.string(), createdAt: ms });

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
function same<T extends true>(): T | undefined {
  return undefined;
}
same<Same<z.infer<typeof auditEntrySchema>, AuditEntry>>();
same<Same<z.infer<typeof subscriptionSchema>, Subscription>>();
same<Same<z.infer<typeof deliverySchema>, Delivery>>();
