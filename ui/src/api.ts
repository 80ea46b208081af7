// The UI's client of the HTTP API: reads need no token; mutations carry the
// token the operator logged in with (localStorage), as `Authorization: Bearer`.
export type JobState = 'pending' | 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';
export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type Counts = Partial<Record<JobState, number>>;

export interface Run {
  id: number;
  namespace: string;
  workflow: string;
  state: RunState;
  params: Record<string, unknown>;
  labels: Record<string, string>;
  priority: number;
  force: boolean;
  logicalDate: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  counts: Counts;
  /** added by the ETA work when present: epoch ms, or an object with `at` */
  eta?: unknown;
}

export interface Capacity {
  cpu: number;
  memoryBytes: number | null;
  custom: Record<string, number>;
}

export interface Job {
  id: string;
  runId: number;
  task: string;
  chunk: number | null;
  state: JobState;
  skipReason: string | null;
  queue: string;
  pool: string | null;
  waitingReason: string | null;
  attempts: number;
  maxRetries: number;
  worker: string | null;
  enqueuedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  runAfter: number | null;
  error: string | null;
  exitCode: number | null;
  outputs: Record<string, string>;
  progress: number | null;
  chunked: boolean;
}

export interface Attempt {
  fence: number;
  number: number;
  worker: string;
  host: string;
  pid: number | null;
  state: string;
  startedAt: number;
  finishedAt: number | null;
  exitCode: number | null;
  error: string | null;
}

export interface LogLine {
  id: number;
  jobId: string;
  attempt: number;
  stream: 'stdout' | 'stderr' | 'system';
  ts: number;
  line: string;
}

export interface Worker {
  name: string;
  host: string;
  pid: number;
  queues: string[];
  slots: number;
  resources: Capacity;
  state: 'active' | 'draining' | 'stopped';
  startedAt: number;
  heartbeatAt: number;
  running: string[];
  used: Capacity;
}

export interface Pool {
  name: string;
  slots: number | null;
  running: number;
  queued: number;
}

export interface ParamSpec {
  default?: unknown;
  required?: boolean;
  enum?: unknown[];
  description?: string;
}

export interface Workflow {
  name: string;
  namespace: string;
  description: string;
  tasks: number;
  params: Record<string, ParamSpec>;
  schedules: { key: string; cron: string; timezone: string; next: string | null; nextAt: number | null; overlap: string }[];
  version: number;
  updatedAt: number;
  file: string;
}

export type NodeKind = 'task' | 'split' | 'subworkflow' | 'foreach' | 'pipeline' | 'more';
export interface GraphNode {
  id: string;
  label: string;
  kind: NodeKind;
  parent: string | null;
  state: JobState;
  counts: Counts;
  jobs: number;
  tasks: number;
  children: number;
  chunks: { done: number; total: number; running: number; failed: number } | null;
  progress: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}
export interface RunGraph {
  run: Run;
  nodes: GraphNode[];
  edges: { from: string; to: string }[];
  expanded: { id: string; kind: NodeKind; label: string }[];
  lastEventId: number;
}

export interface Overview {
  now: number;
  runs: Partial<Record<RunState, number>>;
  failures: { since: number; count: number; latest: Job[] };
  queues: { queue: string; counts: Counts }[];
  pools: Pool[];
  workers: { total: number; busy: number; idle: number; draining: number; stopped: number };
  throughput: { since: number; series: { worker: string | null; minute: number; succeeded: number; failed: number }[] };
}

export type Role = 'admin' | 'maintainer' | 'viewer' | null;
export interface Whoami {
  /** false: the server has no auth (whoami is 404): everything is allowed */
  auth: boolean;
  role: Role;
  namespaces: string[];
}

const TOKEN_KEY = 'gantry.token';
export const token = {
  get: (): string | null => localStorage.getItem(TOKEN_KEY),
  set: (t: string) => localStorage.setItem(TOKEN_KEY, t),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The bearer header of the token this browser logged in with (none: an anonymous reader of public namespaces). */
export function authHeaders(): Record<string, string> {
  const t = token.get();
  return t ? { authorization: `Bearer ${t}` } : {};
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!r.ok) {
    const e = data as { error?: string; errors?: unknown[] } | null;
    const detail = e?.errors?.length ? `: ${e.errors.map((x) => (typeof x === 'string' ? x : (x as { message?: string }).message ?? JSON.stringify(x))).join('; ')}` : '';
    throw new ApiError(r.status, `${e?.error ?? r.statusText}${detail}`);
  }
  return data as T;
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => request<T>('POST', path, body);
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, body);

export function qs(params: Record<string, string | number | boolean | undefined | null | string[]>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) u.append(k, x);
    else u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

export async function whoami(): Promise<Whoami> {
  try {
    const w = await get<{ role: Role; namespaces: string[] }>('/api/v1/auth/whoami');
    return { auth: true, role: w.role, namespaces: w.namespaces ?? [] };
  } catch (e) {
    // a server without auth: every action is allowed
    if (e instanceof ApiError && e.status === 404) return { auth: false, role: 'admin', namespaces: ['*'] };
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return { auth: true, role: null, namespaces: [] };
    throw e;
  }
}

/** Whether this identity may act on something in `namespace`: admins and maintainers of it. */
export function canAct(w: Whoami | null, namespace = 'default'): boolean {
  if (!w) return false;
  if (!w.auth) return true;
  if (w.role !== 'admin' && w.role !== 'maintainer') return false;
  return w.role === 'admin' || w.namespaces.includes('*') || w.namespaces.includes(namespace);
}
