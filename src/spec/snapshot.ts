// A run's snapshot (RunSnapshot): the workflow plus every workflow its
// sub-workflow tasks use, at any depth, taken once when the run is created.
// Taking it is where references are checked again: a child may have changed (or
// gone) since the parent was applied, and may now close a cycle.

import type { RunSnapshot, WorkflowSpec } from './model.js';
import { workflowKey, type WorkflowLookup } from './expand.js';
import { describeSubWorkflowCycle, display, resolveWorkflowRef, type Hop } from './validate-set.js';

/**
 * Loads what `root` uses through `load` (each workflow once, by `namespace/name`).
 * `errors` name missing workflows and cycles with their path; the snapshot is
 * only usable when there are none.
 */
export async function takeSnapshot(
  root: WorkflowSpec,
  load: (qualifiedName: string) => Promise<WorkflowSpec | null>,
): Promise<{ snapshot: RunSnapshot; errors: string[] }> {
  const rootKey = workflowKey(root);
  const loaded = new Map<string, WorkflowSpec | null>([[rootKey, root]]);
  const walked = new Set<string>();
  const errors = new Set<string>();
  // Depth-first over definitions (not copies): a reference back into the current path is a cycle.
  const walk = async (wf: WorkflowSpec, key: string, path: Hop[], prefix: string): Promise<void> => {
    for (const t of wf.tasks) {
      if (!t.workflow) continue;
      const target = resolveWorkflowRef(t.workflow.name, wf.namespace);
      const hops = [...path, { from: key, task: t.id }];
      const start = hops.findIndex((h) => h.from === target);
      if (start >= 0) {
        errors.add(describeSubWorkflowCycle(hops.slice(start)));
        continue;
      }
      if (!loaded.has(target)) loaded.set(target, await load(target));
      const child = loaded.get(target);
      if (!child) {
        errors.add(`task '${prefix}${t.id}' uses workflow '${t.workflow.name}', which does not exist (no '${display(target)}' is applied)`);
        continue;
      }
      if (walked.has(target)) continue; // fully walked already: no cycle through it reaches this path
      await walk(child, target, hops, `${prefix}${t.id}.`);
      walked.add(target);
    }
  };
  await walk(root, rootKey, [], '');
  const subworkflows: Record<string, WorkflowSpec> = {};
  for (const [k, wf] of loaded) if (wf && k !== rootKey) subworkflows[k] = wf;
  const snapshot: RunSnapshot = Object.keys(subworkflows).length ? { ...root, subworkflows } : root;
  return { snapshot, errors: [...errors] };
}

/** The definitions a snapshot holds, for expandWorkflow. */
export function snapshotLookup(snapshot: RunSnapshot): WorkflowLookup {
  const rootKey = workflowKey(snapshot);
  return (key) => (key === rootKey ? snapshot : snapshot.subworkflows?.[key]);
}
