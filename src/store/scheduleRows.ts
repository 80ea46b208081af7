// Rows of the schedule tables (schedule_marks, deferred_runs) as both stores
// read them, turned into the Store's types.
import type { DeferredRun, DeferredState, ScheduleMark } from './types.js';

export interface DeferredRowDb {
  id: number;
  namespace: string;
  workflow: string;
  params: string;
  labels: string;
  priority: number;
  force: number;
  due_at: number;
  state: string;
  created_at: number;
  run_id: number | null;
  error: string | null;
}

export function toDeferred(r: DeferredRowDb): DeferredRun {
  return {
    id: r.id,
    namespace: r.namespace,
    workflow: r.workflow,
    params: JSON.parse(r.params) as Record<string, unknown>,
    labels: JSON.parse(r.labels) as Record<string, string>,
    priority: r.priority,
    force: r.force === 1,
    dueAt: r.due_at,
    state: r.state as DeferredState,
    createdAt: r.created_at,
    runId: r.run_id,
    error: r.error,
  };
}

export interface MarkRowDb {
  namespace: string;
  workflow: string;
  schedule: string;
  last_tick: number;
}

export function toMark(r: MarkRowDb): ScheduleMark {
  return { namespace: r.namespace, workflow: r.workflow, schedule: r.schedule, lastTick: r.last_tick };
}
