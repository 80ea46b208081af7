// GET /api/v1/acct (gantry acct, like qacct): what finished attempts used per
// namespace, workflow, task or worker over a time range. A token limited to
// some namespaces (a maintainer's or viewer's) sees only those: asking for
// another one is a 403, asking for none sums its own.
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { acctKeys, acctTotal, type AcctKey } from '../store/acctRows.js';
import { ALL_NAMESPACES, type Store } from '../store/types.js';
import { requireViewer } from './auth.js';
import { acctQuery } from './acctSchemas.js';

export interface AcctRouteOptions {
  store: Store;
  parse: <T>(schema: z.ZodType<T>, value: unknown, where: string) => T;
}

const DEFAULT_BY: AcctKey[] = ['namespace'];

export function registerAcctRoutes(app: FastifyInstance, o: AcctRouteOptions): void {
  app.get('/api/v1/acct', async (req) => {
    const q = o.parse(acctQuery, req.query, 'query');
    const p = req.principal;
    // undefined: every namespace (an admin, a '*' token, or no token while reads are open)
    let scope: string[] | undefined;
    if (p && p.role !== 'admin' && !p.namespaces.includes(ALL_NAMESPACES)) {
      if (q.namespace !== undefined) requireViewer(req, q.namespace);
      scope = p.namespaces;
    }
    const by = q.by ?? DEFAULT_BY;
    const groups = await o.store.accountUsage({ since: q.since, until: q.until, by, namespace: q.namespace, namespaces: scope });
    return { by: acctKeys(by), since: q.since ?? null, until: q.until ?? null, groups, total: acctTotal(groups) };
  });
}
