// Who may read what (issue 14, item 8): every read of a namespace's data (runs,
// jobs, logs, services, events, the feed, audit, deliveries, definitions,
// secrets' names) needs a token that may view the namespace — an admin's, or a
// maintainer's or viewer's of it — unless an admin made the namespace public:
// then anyone may read it (and still act on nothing without a token).
//
// Lists are filtered to what the caller may see. One thing of a namespace the
// caller may not see is refused: 401 without a token (a token may open it), 403
// with a token that does not reach it. An unknown id stays a 404.
import type { FastifyRequest } from 'fastify';
import { ALL_NAMESPACES, NotFoundError, type ApiToken, type Run, type Store } from '../store/types.js';
import { Forbidden, Unauthorized, who } from './auth.js';
import { parseJobId } from '../store/jobId.js';

/** everything (admin, or a token of every namespace), or only these namespaces */
export type ReadScope = { all: true } | { all: false; namespaces: string[] };

/** How long the list of public namespaces is reused: a change made on this server drops it at once. */
const PUBLIC_TTL_MS = 1_000;

export class ReadAccess {
  private publicCache: { at: number; namespaces: Promise<string[]> } | null = null;
  private readonly scopes = new WeakMap<FastifyRequest, Promise<ReadScope>>();

  constructor(private readonly store: Store) {}

  /** Namespaces an admin made public. */
  publicNamespaces(): Promise<string[]> {
    const now = Date.now();
    if (!this.publicCache || now - this.publicCache.at > PUBLIC_TTL_MS) {
      const namespaces = this.store.listNamespaceSettings().then((all) => all.filter((s) => s.public).map((s) => s.namespace));
      namespaces.catch(() => (this.publicCache = null));
      this.publicCache = { at: now, namespaces };
    }
    return this.publicCache.namespaces;
  }

  /** Forgets the public namespaces (they changed). */
  invalidate(): void {
    this.publicCache = null;
  }

  /** What the request's token may read (once per request). */
  scope(req: FastifyRequest): Promise<ReadScope> {
    let s = this.scopes.get(req);
    if (!s) {
      s = scopeOf(req.principal, () => this.publicNamespaces());
      this.scopes.set(req, s);
    }
    return s;
  }

  /** Throws (401 or 403) unless the request may read `namespace`. */
  async requireNamespace(req: FastifyRequest, namespace: string): Promise<void> {
    if (!mayRead(await this.scope(req), namespace)) throw refusal(req.principal, namespace);
  }

  /** The run, if the request may read it: NotFoundError for none, 401/403 when its namespace is not the caller's. */
  async run(req: FastifyRequest, id: number): Promise<Run> {
    const run = await this.store.getRun(id);
    if (!run) throw new NotFoundError(`no run ${id}`);
    await this.requireNamespace(req, run.namespace);
    return run;
  }

  /** The run of job `jobId` (`RUN:TASK`), checked as run(). */
  async runOfJob(req: FastifyRequest, jobId: string): Promise<Run> {
    const parsed = parseJobId(jobId);
    const run = parsed && (await this.store.getRun(parsed.runId));
    if (!run) throw new NotFoundError(`no job ${jobId}`);
    await this.requireNamespace(req, run.namespace);
    return run;
  }

  /**
   * The namespace fields of a list's filter: the one asked for (checked), and
   * the caller's scope (`namespaces`) when it is not everything.
   */
  async filter(req: FastifyRequest, namespace?: string): Promise<{ namespace?: string; namespaces?: string[] }> {
    if (namespace !== undefined) {
      await this.requireNamespace(req, namespace);
      return { namespace };
    }
    const s = await this.scope(req);
    return s.all ? {} : { namespaces: s.namespaces };
  }

  /** A test of namespaces for lists filtered here (small ones: definitions, services, secrets). */
  async visible(req: FastifyRequest): Promise<(namespace: string) => boolean> {
    const s = await this.scope(req);
    return (ns) => mayRead(s, ns);
  }
}

export async function scopeOf(token: ApiToken | null, publicNamespaces: () => Promise<string[]>): Promise<ReadScope> {
  if (token && (token.role === 'admin' || token.namespaces.includes(ALL_NAMESPACES))) return { all: true };
  const namespaces = new Set([...(token?.namespaces ?? []), ...(await publicNamespaces())]);
  return { all: false, namespaces: [...namespaces].sort() };
}

export function mayRead(scope: ReadScope, namespace: string): boolean {
  return scope.all || scope.namespaces.includes(namespace);
}

function refusal(token: ApiToken | null, namespace: string): Error {
  if (!token)
    return new Unauthorized(
      `namespace '${namespace}' is not public: reading it needs an API token that may view it (Authorization: Bearer <token>; the CLI reads --token, GANTRY_TOKEN or .gantry/gantry.token)`,
    );
  return new Forbidden(`namespace '${namespace}' is not one this token may read: this is ${who(token)}`);
}
