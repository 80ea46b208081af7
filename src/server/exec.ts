// `gantry exec -- CMD…` (POST /api/v1/exec): a one-off job on the grid, as a
// run of one task. The command is given as argv (no shell) and reaches the
// worker through a parameter, so nothing in it is read as a template; the
// workflow is built in memory (never registered), so `gantry runs` lists the
// run as workflow `exec` and it is cancelled, followed and logged like any run.
import path from 'node:path';
import { parseDefinitionSource } from '../spec/parse.js';
import { SpecValidationError, type WorkflowSpec } from '../spec/model.js';
import { logicalDateOf, planRun } from '../scheduler/planRun.js';
import type { Run, Store } from '../store/types.js';
import { NO_FOLDER } from '../spec/model.js';

export const EXEC_WORKFLOW = 'exec';
export const EXEC_TASK = 'exec';

export interface ExecRequest {
  argv: string[];
  namespace?: string;
  queue?: string;
  cpu?: number;
  memory?: string | number;
  cwd?: string;
  labels?: Record<string, string>;
}

export async function startExec(store: Store, req: ExecRequest, now = Date.now()): Promise<{ run: Run; job: string }> {
  const resources: string[] = [];
  if (req.cpu !== undefined) resources.push(`cpu: ${JSON.stringify(req.cpu)}`);
  if (req.memory !== undefined) resources.push(`memory: ${JSON.stringify(req.memory)}`);
  const source = [
    `name: ${EXEC_WORKFLOW}`,
    `namespace: ${JSON.stringify(req.namespace ?? 'default')}`,
    `description: a one-off job (gantry exec)`,
    `params:`,
    `  argv: { required: true }`,
    `tasks:`,
    `  ${EXEC_TASK}:`,
    `    run: ["{{ params.argv }}"]`,
    `    queue: ${JSON.stringify(req.queue ?? 'default')}`,
    ...(resources.length ? [`    resources: { ${resources.join(', ')} }`] : []),
  ].join('\n');
  // The file's folder is where a task runs: the folder asked for (--cwd), else none: the worker runs it in a
  // fresh scratch folder. Never this server's working directory, where its token and secret key may be.
  const { definition, errors } = parseDefinitionSource(source, path.join(req.cwd ?? '/', 'gantry-exec.yaml'));
  if (!definition) throw new SpecValidationError(errors);
  const spec: WorkflowSpec = { ...(definition as WorkflowSpec), ...(req.cwd === undefined ? { baseDir: NO_FOLDER } : {}) };
  const params = { argv: req.argv };
  const logicalDate = logicalDateOf(now);
  const run = await store.createRun({
    spec,
    params,
    priority: 0,
    force: true,
    logicalDate,
    plan: (id) => planRun(spec, params, { id, date: logicalDate, priority: 0, extraLabels: { 'gantry.exec': 'true', ...(req.labels ?? {}) } }),
  });
  return { run, job: `${run.id}:${EXEC_TASK}` };
}
