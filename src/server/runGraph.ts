// A run's DAG as the web UI draws it (GET /api/v1/runs/:id/graph), built from
// per-task counts the store computed in SQL: a 10,000-job run is a few
// thousand rows here, never 10,000 job objects.
//
// Task ids carry their nesting (SPEC §2): `sub.child` inside a sub-workflow,
// `task[item].child` inside one copy of a foreach. Every prefix is a group,
// shown closed as one node with counts unless the request opens it. A split
// task is one node (its split step `task.split`, its chunks and its combine),
// with chunks done/total.
import type { JobState, Store, TaskEdge, TaskStateCount } from '../store/types.js';
import { SPLIT_SUFFIX } from '../store/jobId.js';

export type GroupKind = 'subworkflow' | 'foreach' | 'pipeline';
/** `more`: the children of an opened group past the first MAX_CHILDREN, as one node (`GROUP…`) */
export type NodeKind = 'task' | 'split' | GroupKind | 'more';

/** An opened group shows at most this many children (those in trouble or at work first) unless asked for all. */
export const MAX_CHILDREN = 100;
export const MORE_SUFFIX = '…';
const RANK: Record<JobState, number> = { failed: 0, running: 1, retrying: 2, queued: 3, pending: 4, cancelled: 5, succeeded: 6, skipped: 7 };

export interface GraphNode {
  id: string;
  label: string;
  kind: NodeKind;
  parent: string | null;
  state: JobState;
  counts: Partial<Record<JobState, number>>;
  jobs: number;
  tasks: number;
  children: number;
  chunks: { done: number; total: number; running: number; failed: number } | null;
  progress: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface GraphEdge {
  from: string;
  to: string;
}

export interface RunGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  expanded: { id: string; kind: GroupKind; label: string }[];
}

/** The groups a task id is inside, outermost first: `a[x].b.c` → `a`, `a[x]`, `a[x].b`. */
export function groupsOf(task: string): string[] {
  const out: string[] = [];
  let depth = 0;
  for (let i = 0; i < task.length; i++) {
    const c = task[i];
    if (c === '[') {
      if (depth === 0) out.push(task.slice(0, i));
      depth++;
    } else if (c === ']') {
      depth = Math.max(0, depth - 1);
    } else if (c === '.' && depth === 0) {
      // `a[x].b`: `a[x]` is the copy; `a` was added at its `[`
      out.push(task.slice(0, i));
    }
  }
  return out;
}

/** Each group's kind: `t[x]` is one copy of the foreach `t`; any other group is a sub-workflow. */
function groupKinds(allGroups: Set<string>): Map<string, GroupKind> {
  const kinds = new Map<string, GroupKind>();
  for (const g of allGroups) if (!kinds.has(g)) kinds.set(g, 'subworkflow');
  for (const g of allGroups)
    if (g.endsWith(']')) {
      kinds.set(g, 'pipeline');
      const outer = groupsOf(g);
      if (outer.length) kinds.set(outer[outer.length - 1]!, 'foreach');
    }
  return kinds;
}

function labelOf(id: string, parent: string | null): string {
  if (parent === null) return id;
  const rest = id.slice(parent.length);
  if (rest.startsWith('.')) return rest.slice(1);
  if (rest.startsWith('[') && rest.endsWith(']')) return rest.slice(1, -1);
  return rest;
}

const ACTIVE_ORDER: JobState[] = ['running', 'retrying', 'queued'];

/** The state that says most about many jobs: activity first, then failure, then how they ended. */
export function summaryState(c: Partial<Record<JobState, number>>): JobState {
  for (const s of ACTIVE_ORDER) if (c[s]) return s;
  if (c.failed) return 'failed';
  if (c.pending) return 'pending';
  if (c.cancelled) return 'cancelled';
  if (c.succeeded) return 'succeeded';
  return 'skipped';
}

interface TaskAgg {
  task: string;
  /** the task's own job (a split task's combine) */
  own: JobState | null;
  chunked: boolean;
  counts: Partial<Record<JobState, number>>;
  chunkCounts: Partial<Record<JobState, number>>;
  chunkProgress: number;
  startedAt: number | null;
  finishedAt: number | null;
  progress: number;
}

const add = (c: Partial<Record<JobState, number>>, s: JobState, n: number) => (c[s] = (c[s] ?? 0) + n);
const minOf = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
const maxOf = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

export function buildRunGraph(rows: readonly TaskStateCount[], edges: readonly TaskEdge[], expand: Iterable<string>, full: Iterable<string> = []): RunGraph {
  const chunkedTasks = new Set(rows.filter((r) => r.chunked && !r.chunk).map((r) => r.task));
  // a split task's split step belongs to its node
  const taskOf = (t: string) => (t.endsWith(SPLIT_SUFFIX) && chunkedTasks.has(t.slice(0, -SPLIT_SUFFIX.length)) ? t.slice(0, -SPLIT_SUFFIX.length) : t);

  const tasks = new Map<string, TaskAgg>();
  for (const r of rows) {
    const id = taskOf(r.task);
    let a = tasks.get(id);
    if (!a) {
      a = { task: id, own: null, chunked: chunkedTasks.has(id), counts: {}, chunkCounts: {}, chunkProgress: 0, startedAt: null, finishedAt: null, progress: 0 };
      tasks.set(id, a);
    }
    add(a.counts, r.state, r.count);
    if (r.chunk) {
      add(a.chunkCounts, r.state, r.count);
      if (r.state === 'running') a.chunkProgress += r.progress;
    } else if (r.task === id) {
      a.own = r.state;
      if (r.state === 'running') a.progress = r.progress;
    }
    a.startedAt = minOf(a.startedAt, r.startedAt);
    a.finishedAt = maxOf(a.finishedAt, r.finishedAt);
  }

  const allGroups = new Set<string>();
  const groupsByTask = new Map<string, string[]>();
  for (const t of tasks.keys()) {
    const gs = groupsOf(t);
    groupsByTask.set(t, gs);
    for (const g of gs) allGroups.add(g);
  }
  const kinds = groupKinds(allGroups);
  const kindOf = (g: string) => kinds.get(g)!;
  const opened = new Set([...expand].filter((g) => allGroups.has(g)));
  // a group is shown open only when every group around it is too
  const openMemo = new Map<string, boolean>();
  const isOpen = (g: string): boolean => {
    let v = openMemo.get(g);
    if (v === undefined) openMemo.set(g, (v = opened.has(g) && groupsOf(g).every((o) => opened.has(o))));
    return v;
  };

  /** where a task shows: its outermost closed group, or itself */
  const visibleOf = new Map<string, { id: string; parent: string | null }>();
  for (const [t, gs] of groupsByTask) {
    let parent: string | null = null;
    let id = t;
    for (const g of gs) {
      if (!isOpen(g)) {
        id = g;
        break;
      }
      parent = g;
    }
    visibleOf.set(t, { id, parent });
  }

  const nodes = new Map<string, GraphNode>();
  const childIds = new Map<string, Set<string>>();
  for (const [t, a] of tasks) {
    const v = visibleOf.get(t)!;
    let n = nodes.get(v.id);
    const isTask = v.id === t;
    if (!n) {
      n = {
        id: v.id,
        label: labelOf(v.id, v.parent),
        kind: isTask ? (a.chunked ? 'split' : 'task') : kindOf(v.id),
        parent: v.parent,
        state: 'pending',
        counts: {},
        jobs: 0,
        tasks: 0,
        children: 0,
        chunks: null,
        progress: null,
        startedAt: null,
        finishedAt: null,
      };
      nodes.set(v.id, n);
    }
    for (const [s, c] of Object.entries(a.counts) as [JobState, number][]) add(n.counts, s, c);
    n.jobs += Object.values(a.counts).reduce((x, y) => x + y, 0);
    n.tasks += 1;
    n.startedAt = minOf(n.startedAt, a.startedAt);
    n.finishedAt = maxOf(n.finishedAt, a.finishedAt);
    if (isTask) {
      const total = Object.values(a.chunkCounts).reduce((x, y) => x + y, 0);
      if (a.chunked) {
        const done = (a.chunkCounts.succeeded ?? 0) + (a.chunkCounts.skipped ?? 0);
        n.chunks = { done, total, running: a.chunkCounts.running ?? 0, failed: a.chunkCounts.failed ?? 0 };
        n.progress = total ? Math.floor((done * 100 + a.chunkProgress) / total) : null;
        // split step, chunks and combine: the one that is under way says most
        n.state = summaryState(a.counts);
      } else {
        n.state = a.own ?? summaryState(a.counts);
        n.progress = n.state === 'running' ? a.progress : n.state === 'succeeded' || n.state === 'skipped' ? 100 : null;
      }
    } else {
      // the next level under the group: what opening it shows
      const inner = [...groupsByTask.get(t)!, t].find((g) => g.length > v.id.length && g.startsWith(v.id))!;
      let set = childIds.get(v.id);
      if (!set) childIds.set(v.id, (set = new Set()));
      set.add(inner);
    }
  }
  for (const n of nodes.values())
    if (n.kind !== 'task' && n.kind !== 'split') {
      n.state = summaryState(n.counts);
      n.children = childIds.get(n.id)?.size ?? 0;
      const done = (n.counts.succeeded ?? 0) + (n.counts.skipped ?? 0);
      n.progress = n.jobs ? Math.floor((done * 100) / n.jobs) : null;
    }

  // An opened group of many children (a foreach over 1,000 wikis) shows the first MAX_CHILDREN, those in
  // trouble or at work first; the others are one `more` node, unless the request asks for all of them.
  const showAll = new Set(full);
  const byParent = new Map<string, GraphNode[]>();
  for (const n of nodes.values())
    if (n.parent !== null) {
      const list = byParent.get(n.parent);
      if (list) list.push(n);
      else byParent.set(n.parent, [n]);
    }
  const folded = new Map<string, string>();
  for (const [parent, list] of byParent) {
    if (list.length <= MAX_CHILDREN || showAll.has(parent)) continue;
    const order = new Map(list.map((n, i) => [n.id, i]));
    const ranked = [...list].sort((a, b) => RANK[a.state] - RANK[b.state] || order.get(a.id)! - order.get(b.id)!);
    const rest = ranked.slice(MAX_CHILDREN);
    const more: GraphNode = {
      id: parent + MORE_SUFFIX,
      label: `${rest.length} more`,
      kind: 'more',
      parent,
      state: 'pending',
      counts: {},
      jobs: 0,
      tasks: 0,
      children: rest.length,
      chunks: null,
      progress: null,
      startedAt: null,
      finishedAt: null,
    };
    for (const n of rest) {
      for (const [st, c] of Object.entries(n.counts) as [JobState, number][]) add(more.counts, st, c);
      more.jobs += n.jobs;
      more.tasks += n.tasks;
      more.startedAt = minOf(more.startedAt, n.startedAt);
      more.finishedAt = maxOf(more.finishedAt, n.finishedAt);
      folded.set(n.id, more.id);
      nodes.delete(n.id);
    }
    more.state = summaryState(more.counts);
    const done = (more.counts.succeeded ?? 0) + (more.counts.skipped ?? 0);
    more.progress = more.jobs ? Math.floor((done * 100) / more.jobs) : null;
    nodes.set(more.id, more);
  }
  const shown = (id: string | undefined) => (id === undefined ? undefined : (folded.get(id) ?? id));

  const seen = new Set<string>();
  const out: GraphEdge[] = [];
  for (const e of edges) {
    const from = shown(visibleOf.get(taskOf(e.from))?.id);
    const to = shown(visibleOf.get(taskOf(e.to))?.id);
    if (!from || !to || from === to) continue;
    const k = `${from}\u0000${to}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ from, to });
  }

  const expanded = [...allGroups]
    .filter(isOpen)
    .map((id) => {
      const outer = groupsOf(id);
      return { id, kind: kindOf(id), label: labelOf(id, outer.length ? outer[outer.length - 1]! : null) };
    });
  return { nodes: [...nodes.values()], edges: out, expanded };
}

/**
 * A run's edges between tasks, read once per run: they are fixed when the run
 * is created (a split's chunks hang below their own task, and retries keep
 * every dependency), so a live view re-reads only the counts. The last few
 * runs are kept.
 */
export class RunEdgeCache {
  private readonly runs = new Map<number, Promise<TaskEdge[]>>();
  constructor(private readonly store: Store, private readonly keep = 16) {}

  get(runId: number): Promise<TaskEdge[]> {
    let p = this.runs.get(runId);
    if (p) {
      // most recently used last
      this.runs.delete(runId);
      this.runs.set(runId, p);
      return p;
    }
    p = this.store.runTaskEdges(runId);
    p.catch(() => this.runs.delete(runId));
    this.runs.set(runId, p);
    while (this.runs.size > this.keep) this.runs.delete(this.runs.keys().next().value!);
    return p;
  }
}

/**
 * Graph answers kept while nothing happened: the same run, groups and outbox
 * position, for at most `ttlMs` (progress moves without an event). Several
 * operators on one big run, or a view refreshed on another run's events,
 * cost one computation.
 */
export class GraphAnswerCache<T> {
  private readonly answers = new Map<string, { at: number; eventId: number; value: Promise<T> }>();
  constructor(private readonly ttlMs = 2_000, private readonly keep = 32) {}

  get(key: string, eventId: number, now: number, compute: () => Promise<T>): Promise<T> {
    const hit = this.answers.get(key);
    if (hit && hit.eventId === eventId && now - hit.at < this.ttlMs) return hit.value;
    const value = compute();
    value.catch(() => this.answers.delete(key));
    this.answers.delete(key);
    this.answers.set(key, { at: now, eventId, value });
    while (this.answers.size > this.keep) this.answers.delete(this.answers.keys().next().value!);
    return value;
  }
}
