// Starting a run: the one path shared by the API, `gantry up --run` and (later)
// schedules: resolve parameters, snapshot the workflow with the sub-workflows it
// uses, plan the jobs (inlining those sub-workflows), create the run in one transaction.
import type { WorkflowSpec } from '../spec/model.js';
import { resolveParams } from '../spec/params.js';
import { ExpansionError } from '../spec/expand.js';
import { takeSnapshot } from '../spec/snapshot.js';
import { logicalDateOf, planRun } from '../scheduler/planRun.js';
import { NotFoundError, type Run, type Store } from '../store/types.js';

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
  const date = logicalDateOf(now);
  try {
    return await store.createRun({
      spec: snapshot,
      params,
      priority,
      force: req.force ?? false,
      logicalDate: date,
      plan: (id) => planRun(snapshot, params, { id, date, priority, extraLabels: req.labels ?? {} }),
    });
  } catch (e) {
    if (e instanceof ExpansionError) throw new InvalidRunRequest(e.errors.map((m) => `${req.workflow}: ${m}`));
    if (e instanceof Error && e.name === 'TemplateError') throw new InvalidRunRequest([`${req.workflow}: ${e.message}`]);
    throw e;
  }
}
