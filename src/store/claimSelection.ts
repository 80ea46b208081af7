// Which of the claimable candidates a worker takes, shared by both stores: the
// SQL fetches candidates in claim order (priority, then enqueue time) and locks
// them; this decides, in that order, what fits:
// - the worker's free capacity (cpu, memory, custom resources), so a big job
//   that does not fit now does not block smaller ones behind it;
// - its pool's free slots (cluster-wide; the caller counts running jobs under a lock);
// - for a chunk, its task's `concurrency` (chunks of the task running at once, counted the same way);
// - queue preference: a job listing `[bigmem, default]` goes to a `default`
//   worker only when no live `bigmem` worker could take it now (down or full).
import type { Capacity } from './types.js';

export interface Candidate {
  id: number;
  queues: string[];
  pool: string | null;
  need: Capacity;
  /** a chunk of a task with `concurrency`: the key of its task in its run (`run/task`) */
  group?: string | null;
}

export interface LiveWorker {
  name: string;
  queues: string[];
  freeSlots: number;
  free: Capacity;
}

export interface SelectionInput {
  worker: { name: string; queues: string[] };
  limit: number;
  /** null: not limited */
  free: Capacity | null;
  /** pool → slots (null: unlimited) and jobs running in it now */
  pools: Map<string, { slots: number | null; running: number }>;
  /** chunk groups (see Candidate.group) → the task's concurrency and its chunks running now */
  groups?: Map<string, { slots: number | null; running: number }>;
  /** other live workers, for queue preference; loaded only when a candidate needs it */
  liveWorkers: () => LiveWorker[];
}

export function fits(need: Capacity, free: Capacity | null): boolean {
  if (!free) return true;
  if (need.cpu > free.cpu + 1e-9) return false;
  if (need.memoryBytes !== null && free.memoryBytes !== null && need.memoryBytes > free.memoryBytes) return false;
  for (const [k, v] of Object.entries(need.custom)) if (v > (free.custom[k] ?? 0)) return false;
  return true;
}

function subtract(free: Capacity, need: Capacity): Capacity {
  const custom = { ...free.custom };
  for (const [k, v] of Object.entries(need.custom)) custom[k] = (custom[k] ?? 0) - v;
  return {
    cpu: free.cpu - need.cpu,
    memoryBytes: free.memoryBytes === null || need.memoryBytes === null ? free.memoryBytes : free.memoryBytes - need.memoryBytes,
    custom,
  };
}

export function selectClaims(candidates: Candidate[], o: SelectionInput): number[] {
  const chosen: number[] = [];
  let free = o.free;
  const taken = new Map<string, number>();
  const takenGroups = new Map<string, number>();
  let live: LiveWorker[] | null = null;
  for (const c of candidates) {
    if (chosen.length >= o.limit) break;
    if (!fits(c.need, free)) continue;
    if (c.pool !== null) {
      const p = o.pools.get(c.pool);
      const t = taken.get(c.pool) ?? 0;
      if (p && p.slots !== null && p.running + t >= p.slots) continue;
    }
    if (c.group) {
      const g = o.groups?.get(c.group);
      const t = takenGroups.get(c.group) ?? 0;
      if (g && g.slots !== null && g.running + t >= g.slots) continue;
    }
    const mine = c.queues.findIndex((q) => o.worker.queues.includes(q));
    if (mine < 0) continue;
    if (mine > 0) {
      const earlier = c.queues.slice(0, mine);
      live ??= o.liveWorkers();
      const preferred = live.some(
        (w) => w.name !== o.worker.name && w.freeSlots > 0 && w.queues.some((q) => earlier.includes(q)) && fits(c.need, w.free),
      );
      if (preferred) continue;
    }
    chosen.push(c.id);
    if (free) free = subtract(free, c.need);
    if (c.pool !== null) taken.set(c.pool, (taken.get(c.pool) ?? 0) + 1);
    if (c.group) takenGroups.set(c.group, (takenGroups.get(c.group) ?? 0) + 1);
  }
  return chosen;
}

/** Free capacity of a worker from what it offers and what its running jobs use. */
export function freeOf(offered: Capacity, used: Capacity): Capacity {
  return subtract(offered, used);
}

export function addCapacity(a: Capacity, b: Capacity): Capacity {
  const custom = { ...a.custom };
  for (const [k, v] of Object.entries(b.custom)) custom[k] = (custom[k] ?? 0) + v;
  return {
    cpu: a.cpu + b.cpu,
    memoryBytes: a.memoryBytes === null && b.memoryBytes === null ? null : (a.memoryBytes ?? 0) + (b.memoryBytes ?? 0),
    custom,
  };
}

export const NO_CAPACITY: Capacity = { cpu: 0, memoryBytes: null, custom: {} };

/**
 * Why no live worker could ever run a job of these queues and needs (ignoring
 * what is busy now), or null if one could.
 */
export function unfittableReason(
  queues: string[],
  need: Capacity,
  workers: { name: string; queues: string[]; offered: Capacity }[],
): string | null {
  const listening = workers.filter((w) => w.queues.some((q) => queues.includes(q)));
  if (listening.length === 0) return `no live worker listens on queue ${queues.join(' or ')}`;
  if (listening.some((w) => fits(need, w.offered))) return null;
  const parts = [`cpu ${need.cpu}`];
  if (need.memoryBytes !== null) parts.push(`memory ${need.memoryBytes} bytes`);
  for (const [k, v] of Object.entries(need.custom)) parts.push(`${k} ${v}`);
  const best = listening
    .map((w) => {
      const o = [`cpu ${w.offered.cpu}`];
      if (w.offered.memoryBytes !== null) o.push(`memory ${w.offered.memoryBytes} bytes`);
      for (const [k, v] of Object.entries(w.offered.custom)) o.push(`${k} ${v}`);
      return `${w.name}: ${o.join(', ')}`;
    })
    .join('; ');
  return `no live worker of queue ${queues.join(' or ')} could ever fit it (needs ${parts.join(', ')}; offered ${best})`;
}

/**
 * Why no live worker could run a job of a namespace mapped to Unix user `user`
 * (only root workers and workers running as that user can), or null if one
 * could (or the namespace is not mapped, or no worker listens at all: said by
 * unfittableReason).
 */
export function runAsReason(queues: string[], user: string | null, workers: { queues: string[]; unixUser: string | null }[]): string | null {
  if (user === null) return null;
  const listening = workers.filter((w) => w.queues.some((q) => queues.includes(q)));
  if (listening.length === 0) return null;
  if (listening.some((w) => w.unixUser === null || w.unixUser === 'root' || w.unixUser === user)) return null;
  const users = [...new Set(listening.map((w) => w.unixUser))].join(', ');
  return `its namespace runs as user ${user}: no live worker of queue ${queues.join(' or ')} runs as root or as ${user} (they run as ${users})`;
}

/** The concurrency group of a candidate row: chunks of a task that caps them. */
export function chunkGroup(r: { run_id: number; task: string; chunk: number | null; chunk_limit: number | null }): string | null {
  return r.chunk !== null && r.chunk_limit !== null ? `${r.run_id}/${r.task}` : null;
}
