// The typed HTTP client of Gantry's API: used by the CLI, and exported for
// programs (the SDK). Errors are typed so callers can map them to exit codes:
// ApiError (the server answered 4xx/5xx) and UnreachableError (no answer).
import type { ApiToken, Attempt, AttemptError, DeferredRun, Job, PoolRow, Role, Run, SecretInfo, ServiceLogLine, StoreEvent, StoredLogLine, WorkerRow } from '../store/types.js';
import type { RunEta } from '../server/eta.js';
import type { BrokenReport } from '../server/broken.js';
import type { AcctReport } from '../server/acctSchemas.js';
import type { ErrorSummary } from '../server/errors.js';
import type { AuditEntry, Delivery, DeliveryState, EventKind, NotifyEvent, Subscription } from '../store/types.js';
import type { NamespaceSettings, NamespaceSettingsPatch } from '../store/types.js';

export type { RunEta, BrokenReport, ErrorSummary, AttemptError };
import type { ScheduleSummary } from '../server/schedules.js';
import type { StartRunRequest } from '../server/runs.js';
import type { DefinitionFile } from '../server/schemas.js';
import type { ExecRequest } from '../server/exec.js';
import type { ServiceStatus } from '../server/schemas.js';
import type { SpecError } from '../spec/model.js';
import type { TaskProgress } from '../store/taskProgress.js';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly body: { error?: string; errors?: unknown[]; issues?: unknown }) {
    super(message);
    this.name = 'ApiError';
  }
  /** the definition errors of a rejected apply */
  get specErrors(): SpecError[] {
    return (Array.isArray(this.body.errors) ? this.body.errors : []).filter((e): e is SpecError => typeof e === 'object' && e !== null && 'file' in e);
  }
}

export class UnreachableError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`cannot reach the Gantry server at ${url}: ${cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause)}`);
    this.name = 'UnreachableError';
  }
}

export interface RunWithJobs extends Run {
  /** every job (`jobsListed: 'all'`), or for a big run only its running, retrying and failed ones */
  jobs: Job[];
  jobsListed?: 'all' | 'active';
  /** per task: its chunks done / total and its progress (absent from older servers) */
  tasks?: TaskProgress[];
  /** when the run should end, and from what (absent from older servers) */
  eta?: RunEta;
}
export interface JobWithAttempts extends Job {
  attemptList: Attempt[];
}
export interface WorkflowSummary {
  name: string;
  namespace: string;
  description: string;
  tasks: number;
  params: Record<string, unknown>;
  schedules: ScheduleSummary[];
  version: number;
  updatedAt: number;
  file: string;
}

/** The presented token's role and namespaces; role null without a token. */
export interface WhoAmI {
  role: Role | null;
  namespaces: string[];
  name?: string;
  id?: string;
}
export type { ServiceStatus, ExecRequest };

/** What starting a run takes: the server's own request type, one definition for both ends. */
export type RunRequest = StartRunRequest;

type Query = Record<string, string | number | boolean | string[] | undefined>;

export class GantryClient {
  constructor(readonly baseUrl: string, private readonly token?: string) {}

  private url(path: string, query?: Query): string {
    const u = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) u.searchParams.append(k, String(item));
    }
    return u.toString();
  }

  private async request<T>(method: string, path: string, o: { query?: Query; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    const url = this.url(path, o.query);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
        signal: o.signal,
      });
    } catch (e) {
      if (o.signal?.aborted) throw e;
      throw new UnreachableError(this.baseUrl, e);
    }
    const text = await res.text();
    const body = text ? (JSON.parse(text) as unknown) : {};
    if (!res.ok) {
      const b = (body ?? {}) as { error?: string };
      throw new ApiError(res.status, b.error ?? `HTTP ${res.status}`, b);
    }
    return body as T;
  }

  /** the OpenAPI 3.1 document of this API */
  openApi() {
    return this.request<Record<string, unknown>>('GET', '/api/v1/openapi.json');
  }
  /** the Prometheus text of GET /metrics */
  async metrics(): Promise<string> {
    let res: Response;
    try {
      res = await fetch(this.url('/metrics'));
    } catch (e) {
      throw new UnreachableError(this.baseUrl, e);
    }
    if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`, {});
    return res.text();
  }
  health() {
    return this.request<{ ok: boolean; store: string }>('GET', '/api/v1/health');
  }
  /** each file as its text (YAML) or as a document (a workflow in the YAML shape, as a TypeScript file's defineWorkflow gives) */
  applyDefinitions(files: DefinitionFile[]) {
    return this.request<{ applied: { name: string; namespace: string; kind: string; change: string }[] }>('POST', '/api/v1/definitions', {
      body: { files },
    });
  }
  workflows() {
    return this.request<{ workflows: WorkflowSummary[] }>('GET', '/api/v1/workflows');
  }
  startRun(req: RunRequest) {
    return this.request<Run>('POST', '/api/v1/runs', { body: req });
  }
  /** a run started later by the scheduler: `at` is an ISO 8601 date-time or a delay such as +10m */
  deferRun(req: RunRequest & { at: string }) {
    return this.request<DeferredRun>('POST', '/api/v1/runs', { body: req });
  }
  /** runs, and (without a state filter) the deferred runs still waiting to start */
  /** `since`/`until` (created time): epoch ms, an ISO 8601 date-time, or a duration ago such as 2h */
  runs(
    q: {
      workflow?: string;
      namespace?: string;
      state?: string;
      label?: string[];
      latest?: boolean;
      worker?: string;
      since?: string | number;
      until?: string | number;
      limit?: number;
      offset?: number;
    } = {},
  ) {
    return this.request<{ runs: Run[]; deferred?: DeferredRun[] }>('GET', '/api/v1/runs', { query: q });
  }
  deferredRuns(q: { workflow?: string; namespace?: string; state?: string; limit?: number } = {}) {
    return this.request<{ deferred: DeferredRun[] }>('GET', '/api/v1/deferred-runs', { query: q });
  }
  cancelDeferredRun(id: number) {
    return this.request<DeferredRun>('POST', `/api/v1/deferred-runs/${id}/cancel`, { body: {} });
  }
  /** `jobs`: list every job, or only the active ones with per-stage progress (default: by the run's size) */
  run(id: number, o: { jobs?: 'all' | 'active' } = {}) {
    return this.request<RunWithJobs>('GET', `/api/v1/runs/${id}${o.jobs ? `?jobs=${o.jobs}` : ''}`);
  }
  /** when the run should end: from past runs' task durations along its remaining critical path */
  runEta(id: number) {
    return this.request<RunEta>('GET', `/api/v1/runs/${id}/eta`);
  }
  /** failed and timed-out attempts with their errors, latest first, and grouped by message */
  errors(
    q: { run?: number; workflow?: string; namespace?: string; label?: string[]; since?: string | number; until?: string | number; limit?: number; offset?: number } = {},
  ) {
    return this.request<{ errors: AttemptError[]; summary: ErrorSummary[] }>('GET', '/api/v1/errors', { query: q });
  }
  /** accounting (like qacct): what finished attempts used per group; `by`: keys, comma-separated ('': the total only) */
  acct(q: { since?: string | number; until?: string | number; by?: string; namespace?: string } = {}) {
    return this.request<AcctReport>('GET', '/api/v1/acct', { query: q });
  }
  /** what is broken now: failing series, their failed jobs, stale claims, lost workers, unplaceable jobs, flapping series */
  broken(q: { workflow?: string; namespace?: string; label?: string[] } = {}) {
    return this.request<BrokenReport>('GET', '/api/v1/broken', { query: q });
  }
  cancelRun(id: number, o: { clean?: boolean } = {}) {
    return this.request<Run>('POST', `/api/v1/runs/${id}/cancel`, { body: o });
  }
  retryRun(id: number, o: { failed?: boolean; force?: boolean }) {
    return this.request<{ run: Run; reset: number }>('POST', `/api/v1/runs/${id}/retry`, { body: o });
  }
  /** `label`: of the job's run; `since`/`until` (started time): epoch ms, an ISO 8601 date-time, or a duration ago such as 2h */
  jobs(
    q: {
      run?: number;
      worker?: string;
      state?: string;
      stale?: boolean;
      workflow?: string;
      namespace?: string;
      label?: string[];
      since?: string | number;
      until?: string | number;
      limit?: number;
      offset?: number;
    } = {},
  ) {
    return this.request<{ jobs: Job[] }>('GET', '/api/v1/jobs', { query: q });
  }
  job(id: string) {
    return this.request<JobWithAttempts>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
  }
  cancelJob(id: string, o: { clean?: boolean } = {}) {
    return this.request<Job>('POST', `/api/v1/jobs/${encodeURIComponent(id)}/cancel`, { body: o });
  }
  logs(q: { run?: number; job?: string; after?: number; limit?: number; wait?: number }, signal?: AbortSignal) {
    return this.request<{ lines: StoredLogLine[]; next: number; finished: boolean }>('GET', '/api/v1/logs', { query: q, signal });
  }
  workers() {
    return this.request<{ workers: WorkerRow[] }>('GET', '/api/v1/workers');
  }
  /** the worker finishes its running jobs and claims no more */
  drainWorker(name: string) {
    return this.request<WorkerRow>('POST', `/api/v1/workers/${encodeURIComponent(name)}/drain`, { body: {} });
  }
  /** drain, then the worker exits; `terminate`: its running jobs are killed and requeued first */
  stopWorker(name: string, o: { terminate?: boolean } = {}) {
    return this.request<WorkerRow>('POST', `/api/v1/workers/${encodeURIComponent(name)}/stop`, { body: o });
  }
  services(q: { namespace?: string } = {}) {
    return this.request<{ services: ServiceStatus[] }>('GET', '/api/v1/services', { query: q });
  }
  service(name: string, namespace?: string) {
    return this.request<ServiceStatus>('GET', `/api/v1/services/${encodeURIComponent(name)}`, { query: { namespace } });
  }
  /** keep it up: started by a worker with its resources, restarted with backoff when it exits */
  serviceLogs(name: string, q: { namespace?: string; restarts?: number; instance?: number; tail?: number; after?: number; limit?: number; wait?: number }, signal?: AbortSignal) {
    const { namespace, ...rest } = q;
    return this.request<{ lines: ServiceLogLine[]; next: number; finished: boolean }>('GET', `/api/v1/services/${encodeURIComponent(name)}/logs`, {
      query: { namespace, ...rest },
      signal,
    });
  }

  startService(name: string, namespace?: string) {
    return this.request<ServiceStatus>('POST', `/api/v1/services/${encodeURIComponent(name)}/start`, { query: { namespace }, body: {} });
  }
  /** SIGTERM to its process group, SIGKILL after the grace period; stays down */
  stopService(name: string, namespace?: string) {
    return this.request<ServiceStatus>('POST', `/api/v1/services/${encodeURIComponent(name)}/stop`, { query: { namespace }, body: {} });
  }
  /** a one-off job: a run of one task running `argv` (no shell) */
  exec(req: ExecRequest) {
    return this.request<{ run: Run; job: string }>('POST', '/api/v1/exec', { body: req });
  }
  pools() {
    return this.request<{ pools: PoolRow[] }>('GET', '/api/v1/pools');
  }
  setPool(name: string, slots: number | null) {
    return this.request<PoolRow>('PUT', `/api/v1/pools/${encodeURIComponent(name)}`, { body: { slots } });
  }

  /** the role and namespaces of this client's token */
  whoami() {
    return this.request<WhoAmI>('GET', '/api/v1/auth/whoami');
  }
  /** a new API token (admin): `token` is shown in this answer only */
  createToken(req: { namespaces: string[]; role?: Role; name?: string }) {
    return this.request<ApiToken & { token: string }>('POST', '/api/v1/tokens', { body: req });
  }
  tokens() {
    return this.request<{ tokens: ApiToken[] }>('GET', '/api/v1/tokens');
  }
  revokeToken(id: string) {
    return this.request<ApiToken>('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`);
  }
  /** secret names (never values), of one namespace or all */
  secrets(q: { namespace?: string } = {}) {
    return this.request<{ secrets: SecretInfo[] }>('GET', '/api/v1/secrets', { query: q });
  }
  /** stores a secret (sealed on the server); `{{ secrets.NAME }}` in the namespace's workflows reads it */
  setSecret(namespace: string, name: string, value: string) {
    return this.request<{ namespace: string; name: string; change: 'created' | 'updated' }>(
      'PUT',
      `/api/v1/secrets/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`,
      { body: { value } },
    );
  }
  deleteSecret(namespace: string, name: string) {
    return this.request<{ namespace: string; name: string; deleted: true }>('DELETE', `/api/v1/secrets/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
  }

  // ---- audit log, notifications, feed
  /** automatic actions, newest first (order asc with `after`: oldest first) */
  audit(q: { since?: string; until?: string; run?: number; namespace?: string; action?: string; after?: number; before?: number; order?: 'asc' | 'desc'; limit?: number } = {}) {
    return this.request<{ entries: AuditEntry[] }>('GET', '/api/v1/audit', { query: q });
  }
  subscriptions(q: { namespace?: string } = {}) {
    return this.request<{ subscriptions: Subscription[] }>('GET', '/api/v1/subscriptions', { query: q });
  }
  subscribe(body: { namespace?: string; workflow?: string; labels?: Record<string, string>; events: NotifyEvent[] | string[]; target: string }) {
    return this.request<Subscription>('POST', '/api/v1/subscriptions', { body });
  }
  unsubscribe(id: number) {
    return this.request<Subscription>('DELETE', `/api/v1/subscriptions/${id}`);
  }
  deliveries(q: { state?: DeliveryState; run?: number; namespace?: string; after?: number; before?: number; order?: 'asc' | 'desc'; limit?: number } = {}) {
    return this.request<{ deliveries: Delivery[] }>('GET', '/api/v1/deliveries', { query: q });
  }
  namespaces() {
    return this.request<{ namespaces: NamespaceSettings[] }>('GET', '/api/v1/namespaces');
  }
  namespaceSettings(namespace: string) {
    return this.request<NamespaceSettings>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
  }
  setNamespaceSettings(namespace: string, patch: NamespaceSettingsPatch) {
    return this.request<NamespaceSettings>('PUT', `/api/v1/namespaces/${encodeURIComponent(namespace)}`, { body: patch });
  }
  webhookSecret(namespace: string, rotate = false) {
    return this.request<{ namespace: string; secret: string; createdAt: number }>('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/webhook-secret`, { body: { rotate } });
  }
  /** the Atom feed's XML */
  async feed(q: { namespace?: string; workflow?: string; label?: string[]; limit?: number } = {}): Promise<string> {
    let res: Response;
    try {
      res = await fetch(this.url('/api/v1/feed.atom', q), { headers: this.token ? { authorization: `Bearer ${this.token}` } : {} });
    } catch (e) {
      throw new UnreachableError(this.baseUrl, e);
    }
    const text = await res.text();
    if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}: ${text.slice(0, 200)}`, {});
    return text;
  }

  /**
   * Follows the event stream (SSE) until the signal aborts; yields each state
   * change. `lastEventId` resumes after that event (sent as Last-Event-ID).
   */
  async *events(
    q: { run?: number; namespace?: string; workflow?: string; label?: string[]; kinds?: EventKind[]; after?: number; lastEventId?: number },
    signal: AbortSignal,
    /** once the stream is open; `after`: the event id it starts after (resume from it when no event came) */
    onOpen?: (after: number | undefined) => void,
  ): AsyncGenerator<StoreEvent> {
    const { lastEventId, ...query } = q;
    let res: Response;
    try {
      res = await fetch(this.url('/api/v1/events', query), {
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}),
        },
        signal,
      });
    } catch (e) {
      if (signal.aborted) return;
      throw new UnreachableError(this.baseUrl, e);
    }
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      let body: { error?: string; issues?: unknown; prunedThrough?: number } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // not JSON
      }
      throw new ApiError(res.status, body.error ?? `event stream refused: HTTP ${res.status}`, body);
    }
    // From here on every change is streamed (the server fixed its starting point before answering).
    const after = Number(res.headers.get('x-gantry-after'));
    onOpen?.(Number.isInteger(after) && res.headers.has('x-gantry-after') ? after : undefined);
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data) yield JSON.parse(data) as StoreEvent;
        }
      }
    } catch (e) {
      if (!signal.aborted) throw e;
    }
  }
}
