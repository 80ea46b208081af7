// GET /api/v1/acct (gantry acct, like qacct): what finished attempts used per
// namespace, workflow, task or worker over a time range. Scoped like every
// read (readScope.ts): a caller sums only the namespaces it may read; asking
// for another one is a 401/403.
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { acctKeys, acctTotal, type AcctKey } from '../store/acctRows.js';
import type { Store } from '../store/types.js';
import type { ReadAccess } from './readScope.js';
import { acctQuery } from './acctSchemas.js';

export interface AcctRouteOptions {
  store: Store;
  reads: ReadAccess;
  parse: <T>(schema: z.ZodType<T>, value: unknown, where: string) => T;
}

const DEFAULT_BY: AcctKey[] = ['namespace'];

export function registerAcctRoutes(app: FastifyInstance, o: AcctRouteOptions): void {
  app.get('/api/v1/acct', async (req) => {
    const q = o.parse(acctQuery, req.query, 'query');
    const scope = await o.reads.filter(req, q.namespace);
    const by = q.by ?? DEFAULT_BY;
    const groups = await o.store.accountUsage({ since: q.since, until: q.until, by, ...scope });
    return { by: acctKeys(by), since: q.since ?? null, until: q.until ?? null, groups, total: acctTotal(groups) };
  });
}
