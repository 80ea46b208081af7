// Who may do what over HTTP (SPEC §4). Every request under /api/v1 that
// presents `Authorization: Bearer <token>` is checked against the store (an
// unknown or revoked token is a 401, reads included: a misconfigured client
// learns it at once). Reads of a namespace's data need a token that may view
// it, unless the namespace is public (readScope.ts): without a token and with
// nothing public, every read but OPEN_READS is a 401. Every mutation (POST, PUT, PATCH,
// DELETE) needs one, and by default an admin's: a route opens itself to
// maintainers with `config: { access: 'namespaced' }` and then calls
// requireNamespace() with the namespace of each thing it acts on, before acting.
// A route with `access: 'admin'` is admin-only for reads too (GET /tokens).
// A route with `access: 'viewer'` takes any valid token, viewers' included, and
// calls requireViewer() (subscriptions: following a namespace changes nothing in it).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiToken, Store } from '../store/types.js';
import { mayChange, mayView, verifyToken } from '../auth/tokens.js';
import { ReadAccess } from './readScope.js';

/** What a route requires beyond a valid token: see the header. */
export type RouteAccess = 'admin' | 'namespaced' | 'viewer';

declare module 'fastify' {
  interface FastifyRequest {
    /** the token the request presented (verified); null: none */
    principal: ApiToken | null;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** No token, or not a valid one: 401. */
export class Unauthorized extends Error {
  override name = 'Unauthorized';
}
/** A valid token without the role or the namespace for this: 403. */
export class Forbidden extends Error {
  override name = 'Forbidden';
}

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** answered to anyone, whatever they present (a load balancer, a scraper) */
const OPEN = new Set(['/api/v1/health', '/metrics']);

/** reads that carry no namespace's data: answered without a token */
const OPEN_READS = new Set(['/api/v1/health', '/api/v1/openapi.json', '/api/v1/auth/whoami']);

const WHERE_TOKENS = 'the CLI reads --token, GANTRY_TOKEN, .gantry/gantry.token here or in a parent folder, or ~/.config/gantry/token; `gantry up` prints a link that logs a browser in';
const NEEDS_TOKEN = `this request changes state and needs an API token (Authorization: Bearer <token>): ${WHERE_TOKENS}; \`gantry token create\` makes one`;
const READ_NEEDS_TOKEN = `reading this needs an API token (Authorization: Bearer <token>): no namespace of this server is public; ${WHERE_TOKENS}`;

export function who(t: ApiToken): string {
  return `token ${t.id}${t.name ? ` (${t.name})` : ''}, ${t.role}${t.role === 'maintainer' ? ` of ${t.namespaces.join(', ') || 'no namespace'}` : ''}`;
}

/** Installs the checks; returns the read checks routes call (readScope.ts). */
export function installAuth(app: FastifyInstance, store: Store): ReadAccess {
  const reads = new ReadAccess(store);
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req) => {
    const url = req.url.split('?', 1)[0]!;
    if (OPEN.has(url) || !url.startsWith('/api/')) return;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) throw new Unauthorized('the Authorization header must be "Bearer <token>"');
      const token = await verifyToken(store, m[1]!);
      if (!token) throw new Unauthorized('unknown or revoked API token');
      req.principal = token;
    }
    if (MUTATIONS.has(req.method) && !req.principal) throw new Unauthorized(NEEDS_TOKEN);
  });
  // After routing: the route's own requirement (admin unless it says otherwise).
  app.addHook('preHandler', async (req) => {
    // only the API's own routes: an unknown one stays a 404, the web UI's files are not the API
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/api/')) return;
    const access = req.routeOptions.config?.access;
    const mutation = MUTATIONS.has(req.method);
    const p = req.principal;
    if (!mutation && access !== 'admin') {
      // an anonymous read of anything but OPEN_READS: only when some namespace is public (the route filters to those)
      if (!p && !OPEN_READS.has(route) && (await reads.publicNamespaces()).length === 0) throw new Unauthorized(READ_NEEDS_TOKEN);
      return;
    }
    if (!p) throw new Unauthorized(mutation ? NEEDS_TOKEN : 'this needs an admin token (Authorization: Bearer <token>)');
    if ((access ?? 'admin') === 'admin') {
      if (p.role !== 'admin') throw new Forbidden(`${req.method} ${req.routeOptions.url ?? req.url} needs an admin token; this is ${who(p)}`);
      return;
    }
    if (access === 'viewer') return; // the route calls requireViewer()
    if (p.role === 'viewer') throw new Forbidden(`a viewer token changes nothing; this is ${who(p)}`);
  });
  return reads;
}

/** Throws Forbidden unless the request's token may change things in every one of `namespaces`. */
export function requireNamespace(req: FastifyRequest, ...namespaces: string[]): void {
  const p = req.principal;
  if (!p) throw new Unauthorized(NEEDS_TOKEN);
  for (const ns of new Set(namespaces))
    if (!mayChange(p, ns)) throw new Forbidden(`namespace '${ns}' is not yours to change: this is ${who(p)}`);
}

/** Throws Forbidden unless the request's token may see every one of `namespaces` (viewer or better there). */
export function requireViewer(req: FastifyRequest, ...namespaces: string[]): void {
  const p = req.principal;
  if (!p) throw new Unauthorized(NEEDS_TOKEN);
  for (const ns of new Set(namespaces))
    if (!mayView(p, ns)) throw new Forbidden(`namespace '${ns}' is not one of this token's: this is ${who(p)}`);
}
