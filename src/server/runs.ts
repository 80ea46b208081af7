// Starting a run: the one path shared by the API, `gantry up --run`, schedules
// and deferred runs: resolve parameters, snapshot the workflow with the sub-workflows it
// uses, plan the jobs (inlining those sub-workflows), create the run in one transaction.
import type { WorkflowSpec } from '../spec/model.js';
import { resolveParams } from '../spec/params.js';
import { ExpansionError } from '../spec/expand.js';
import { offerRunPlan } from '../worker/runPlans.js';
import { takeSnapshot } from '../spec/snapshot.js';
import { logicalDateOf, planRun } from '../scheduler/planRun.js';
import { NotFoundError, type CreateRunInput, type DeferredRun, type Run, type Store } from '../store/types.js';
import { parseStartTime } from '../scheduler/schedules.js';

export interface StartRunRequest {
  workflow: string;
  namespace?: string;
  params?: Record<string, unknown>;
  labels?: Record<string, string>;
  priority?: number;
  force?: boolean;
}

/** Bad input for a run (unknown workflow aside): maps to 400 / exit 2. */
export class InvalidRunRequest extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join('; '));
    this.name = 'InvalidRunRequest';
  }
}

export async function startRun(store: Store, req: StartRunRequest, now = Date.now()): Promise<Run> {
  const input = await prepareRun(store, req, logicalDateOf(now));
  return withPlanErrors(req.workflow, () => store.createRun(input));
}

/**
 * Everything createRun needs, checked: parameters resolved, the workflow
 * snapshotted with its sub-workflows. Scheduled and deferred runs use it too,
 * with the store method that records why they start in the same transaction.
 */
export async function prepareRun(
  store: Store,
  req: StartRunRequest,
  logicalDate: string,
): Promise<CreateRunInput> {
  const namespace = req.namespace ?? 'default';
  const stored = await store.getWorkflow(namespace, req.workflow);
  if (!stored) throw new NotFoundError(`no workflow '${req.workflow}' in namespace '${namespace}' (apply it first)`);
  const spec = stored.definition as WorkflowSpec;
  const { params, errors } = resolveParams(spec, req.params ?? {});
  if (errors.length) throw new InvalidRunRequest(errors.map((e) => `${req.workflow}: ${e}`));
  // Children are checked again here: one may have changed (or gone) since the parent was applied.
  const { snapshot, errors: refErrors } = await takeSnapshot(spec, async (key) => {
    const i = key.indexOf('/');
    const child = await store.getWorkflow(key.slice(0, i), key.slice(i + 1));
    return child?.definition.kind === 'workflow' ? child.definition : null;
  });
  if (refErrors.length) throw new InvalidRunRequest(refErrors.map((e) => `${req.workflow}: ${e}`));
  const priority = req.priority ?? 0;
  return {
    spec: snapshot,
    params,
    priority,
    force: req.force ?? false,
    logicalDate,
    plan: (id) => {
      const planned = planRun(snapshot, params, { id, date: logicalDate, priority, extraLabels: req.labels ?? {} });
      // Workers of this process (gantry up) take the plan as it is instead of expanding the
      // snapshot again; offered before the run commits, as they may claim its jobs at once.
      offerRunPlan(store, id, planned.expanded);
      return planned;
    },
  };
}

/** Runs a store call that plans a run inside its transaction; planning errors (templates, expansion) become InvalidRunRequest. */
export async function withPlanErrors<T>(workflow: string, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (e) {
    if (e instanceof ExpansionError) throw new InvalidRunRequest(e.errors.map((m) => `${workflow}: ${m}`));
    if (e instanceof Error && e.name === 'TemplateError') throw new InvalidRunRequest([`${workflow}: ${e.message}`]);
    throw e;
  }
}

/** A start time this far in the past is taken as a mistake, not as "now". */
const PAST_TOLERANCE_MS = 60_000;

/**
 * `gantry run --at TIME`: checks the request as a start would (workflow,
 * parameters, sub-workflows), then stores a pending start record for the
 * scheduler to start when due. The workflow is snapshotted then, not now.
 */
export async function deferRun(store: Store, req: StartRunRequest, at: string, now = Date.now()): Promise<DeferredRun> {
  let dueAt: number;
  try {
    dueAt = parseStartTime(at, now);
  } catch (e) {
    throw new InvalidRunRequest([`at: ${(e as Error).message}`]);
  }
  if (dueAt < now - PAST_TOLERANCE_MS) throw new InvalidRunRequest([`at: ${new Date(dueAt).toISOString()} is in the past`]);
  await prepareRun(store, req, logicalDateOf(dueAt));
  return store.deferRun({
    namespace: req.namespace ?? 'default',
    workflow: req.workflow,
    params: req.params ?? {},
    labels: req.labels ?? {},
    priority: req.priority ?? 0,
    force: req.force ?? false,
    dueAt,
  });
}
