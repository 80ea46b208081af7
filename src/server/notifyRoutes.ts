// Routes of the audit log, notifications (subscriptions, deliveries, webhook
// secrets) and the Atom feed: thin over the store, like app.ts.
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ALL_NAMESPACES, NotFoundError, type NotifyEvent, type Store } from '../store/types.js';
import { requireNamespace, requireViewer } from './auth.js';
import { mayRead, type ReadAccess } from './readScope.js';
import { atomFeed, failureEntry, runEntry, type FeedEntry } from '../notify/feed.js';
import { auditQuery, deliveriesQuery, feedQuery, namespaceParam, secretBody, subscriptionBody, subscriptionsQuery } from './notifySchemas.js';
import { idParam } from './schemas.js';

export interface NotifyRouteOptions {
  store: Store;
  /** the UI's public address (feed links); default: the request's own host */
  publicUrl?: string | null;
  parse: <T>(schema: z.ZodType<T>, value: unknown, where: string) => T;
  parseLabels: (label: string | string[] | undefined) => Record<string, string>;
  /** what the caller may read (readScope.ts) */
  reads: ReadAccess;
}

const FEED_FAILURES = ['retries.exhausted', 'service.flapping', 'service.restarted'];

export function registerNotifyRoutes(app: FastifyInstance, o: NotifyRouteOptions): void {
  const { store, parse, reads } = o;

  app.get('/api/v1/audit', async (req) => {
    const q = parse(auditQuery, req.query, 'query');
    const newestFirst = q.order ? q.order === 'desc' : q.after === undefined;
    if (q.run !== undefined) await reads.run(req, q.run);
    return {
      // entries of no namespace (workers, scheduler leadership) are an admin's only
      entries: await store.listAudit({
        since: q.since,
        until: q.until,
        runId: q.run,
        ...(await reads.filter(req, q.namespace)),
        action: q.action,
        afterId: q.after,
        beforeId: q.before,
        newestFirst,
        limit: q.limit,
      }),
    };
  });

  app.get('/api/v1/subscriptions', async (req) => {
    const q = parse(subscriptionsQuery, req.query, 'query');
    if (q.namespace !== undefined) await reads.requireNamespace(req, q.namespace);
    const [all, scope] = await Promise.all([store.listSubscriptions({ namespace: q.namespace }), reads.scope(req)]);
    // one's own, and those of namespaces one may read; those of every namespace (null) are an admin's
    const mine = (s: { namespace: string | null; createdBy: string | null }) =>
      scope.all || (req.principal !== null && s.createdBy === req.principal.id) || (s.namespace !== null && mayRead(scope, s.namespace));
    return { subscriptions: all.filter(mine) };
  });

  // Following a namespace changes nothing in it: its viewers may subscribe (no namespace: every one, '*' or admin).
  app.post('/api/v1/subscriptions', { config: { access: 'viewer' } }, async (req, reply) => {
    const b = parse(subscriptionBody, req.body, 'body');
    requireViewer(req, b.namespace ?? ALL_NAMESPACES);
    const sub = await store.createSubscription({
      namespace: b.namespace ?? null,
      workflow: b.workflow ?? null,
      labels: b.labels ?? {},
      events: [...new Set(b.events)] as NotifyEvent[],
      target: b.target,
      createdBy: req.principal?.id ?? null,
    });
    return reply.code(201).send(sub);
  });

  // one's own subscription, or any in a namespace one maintains
  app.delete('/api/v1/subscriptions/:id', { config: { access: 'viewer' } }, async (req) => {
    const { id } = parse(idParam, req.params, 'path');
    const sub = (await store.listSubscriptions({})).find((s) => s.id === id);
    if (!sub) throw new NotFoundError(`no subscription ${id}`);
    if (sub.createdBy === null || sub.createdBy !== req.principal?.id) requireNamespace(req, sub.namespace ?? ALL_NAMESPACES);
    return store.deleteSubscription(id);
  });

  app.get('/api/v1/deliveries', async (req) => {
    const q = parse(deliveriesQuery, req.query, 'query');
    const newestFirst = q.order ? q.order === 'desc' : q.after === undefined;
    if (q.run !== undefined) await reads.run(req, q.run);
    return {
      deliveries: await store.listDeliveries({ state: q.state, runId: q.run, ...(await reads.filter(req, q.namespace)), afterId: q.after, beforeId: q.before, newestFirst, limit: q.limit }),
    };
  });

  // made on first use, or rotated: the namespace's maintainers (or an admin) hold it
  app.post('/api/v1/namespaces/:namespace/webhook-secret', { config: { access: 'namespaced' } }, async (req) => {
    const { namespace } = parse(namespaceParam, req.params, 'path');
    requireNamespace(req, namespace);
    const b = parse(secretBody, req.body ?? {}, 'body');
    return store.webhookSecret(namespace, b.rotate ?? false);
  });

  app.get('/api/v1/feed.atom', async (req, reply) => {
    const q = parse(feedQuery, req.query, 'query');
    const labels = o.parseLabels(q.label);
    const limit = q.limit ?? 50;
    const base = (o.publicUrl ?? `${req.protocol}://${req.headers.host ?? 'localhost'}`).replace(/\/+$/, '');
    const scope = await reads.filter(req, q.namespace);
    const filter = { ...scope, workflow: q.workflow, labels, limit };
    const finished = (await Promise.all((['succeeded', 'failed', 'cancelled'] as const).map((state) => store.listRuns({ ...filter, state })))).flat();
    const entries: FeedEntry[] = finished.map((r) => runEntry(r, base));
    // failures that are not a run's end: a job out of retries (of a run that matches), a service in trouble
    const audit = (await store.listAudit({ ...scope, newestFirst: true, limit: limit * 4 })).filter((a) => FEED_FAILURES.includes(a.action));
    const runs = new Map(finished.map((r) => [r.id, r]));
    for (const a of audit) {
      if (a.runId !== null) {
        const run = runs.get(a.runId) ?? (await store.getRun(a.runId));
        if (!run || (q.workflow && run.workflow !== q.workflow) || Object.entries(labels).some(([k, v]) => run.labels[k] !== v)) continue;
      } else if (q.workflow || Object.keys(labels).length) continue; // services have no workflow or labels
      entries.push(failureEntry(a, base));
    }
    entries.sort((a, b) => b.updated - a.updated);
    const title = ['Gantry', q.namespace, q.workflow, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(' · ');
    return reply
      .type('application/atom+xml; charset=utf-8')
      .send(atomFeed({ title: `${title}: finished runs and failures`, selfUrl: `${base}${req.url}`, base, entries: entries.slice(0, limit) }));
  });
}
