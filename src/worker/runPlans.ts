// The runs' expanded plans (snapshot with sub-workflows and foreach inlined,
// by task id), shared by every worker of a process: `gantry up` runs several
// workers on one store, and a run of 100,000 tasks costs seconds of CPU and
// ~40 MB to expand. Expanded once per process, not once per worker — and not
// at all when the run was created in this process (the plan is handed over).
import type { ExpandedTask } from '../spec/expand.js';
import type { Store } from '../store/types.js';

export type RunPlan = Map<string, ExpandedTask>;

/** Plans kept per store: bounded by their tasks in all, least recently used out first. */
const MAX_TASKS = 400_000;

interface StorePlans {
  workers: number;
  plans: Map<number, { plan: Promise<RunPlan>; tasks: number }>;
  tasks: number;
}

const byStore = new WeakMap<Store, StorePlans>();

/** A worker on `store` lives in this process: plans of runs created here are worth keeping. Returns its release. */
export function registerPlanUser(store: Store): () => void {
  let s = byStore.get(store);
  if (!s) byStore.set(store, (s = { workers: 0, plans: new Map(), tasks: 0 }));
  s.workers++;
  const entry = s;
  return () => {
    if (--entry.workers === 0) byStore.delete(store);
  };
}

function keep(s: StorePlans, runId: number, plan: Promise<RunPlan>, tasks: number): void {
  s.plans.set(runId, { plan, tasks });
  s.tasks += tasks;
  trim(s);
}

function trim(s: StorePlans): void {
  while (s.tasks > MAX_TASKS && s.plans.size > 1) {
    const [oldest, e] = s.plans.entries().next().value!;
    s.plans.delete(oldest);
    s.tasks -= e.tasks;
  }
}

/** The plan of a run just created in this process, when a worker of this process may run its jobs. */
export function offerRunPlan(store: Store, runId: number, tasks: readonly ExpandedTask[]): void {
  const s = byStore.get(store);
  if (!s || s.plans.has(runId)) return;
  keep(s, runId, Promise.resolve(new Map(tasks.map((t) => [t.id, t]))), tasks.length);
}

/** The run's plan: kept, or loaded once for every worker of the process. */
export function runPlan(store: Store, runId: number, load: () => Promise<RunPlan>): Promise<RunPlan> {
  const s = byStore.get(store);
  if (!s) return load();
  const hit = s.plans.get(runId);
  if (hit) {
    // most recently used last
    s.plans.delete(runId);
    s.plans.set(runId, hit);
    return hit.plan;
  }
  const plan = load();
  keep(s, runId, plan, 0);
  plan.then(
    (p) => {
      const e = s.plans.get(runId);
      if (e?.plan !== plan) return;
      e.tasks = p.size;
      s.tasks += p.size;
      trim(s);
    },
    () => {
      if (s.plans.get(runId)?.plan === plan) s.plans.delete(runId);
    },
  );
  return plan;
}
