// Checks across a set of definitions (all files given to `validate`/`apply`):
// duplicate names, references to workflows that do not exist, and cycles
// through sub-workflow references.

import { formatDocPath, type DocPath, type Locate } from './locate.js';
import type { Definition, SpecError, SubWorkflowRef, WorkflowSpec } from './model.js';
import { closest } from './suggest.js';

export interface DefinitionSetOptions {
  /** workflows that exist elsewhere (e.g. already in the store), as `namespace/name` or bare names in `default` */
  knownWorkflows?: Iterable<string>;
  /** positions inside a definition's file, when it came from one (see loadDefinitionFiles) */
  locate?: (def: Definition) => Locate | undefined;
  /**
   * Workflows already stored, which `defs` may use or replace: `with:` is checked
   * against them, and a cycle that closes through them is reported on the
   * definition of `defs` it passes through. Errors are only ever reported on `defs`.
   */
  stored?: Iterable<WorkflowSpec>;
}

/** `namespace/name` — the key workflows and services are unique by. */
export function qualifiedName(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** A `workflow:` reference is `name` (same namespace as the referring workflow) or `namespace/name`. */
export function resolveWorkflowRef(ref: string, fromNamespace: string): string {
  return ref.includes('/') ? ref : qualifiedName(fromNamespace, ref);
}

/** How a name is shown: bare in the default namespace. */
export function display(q: string): string {
  return q.startsWith('default/') ? q.slice('default/'.length) : q;
}

export function validateDefinitionSet(defs: readonly Definition[], opts: DefinitionSetOptions = {}): SpecError[] {
  const errors: SpecError[] = [];
  const add = (def: Definition, path: DocPath, fallbackLine: number | undefined, message: string, atKey = false) => {
    const pos = opts.locate?.(def)?.(path, { atKey }) ?? { line: fallbackLine ?? 0, column: fallbackLine ? 1 : 0 };
    errors.push({ file: def.file, ...pos, path: formatDocPath(path), message });
  };

  const first = new Map<string, Definition>();
  for (const def of defs) {
    const key = `${def.kind}:${qualifiedName(def.namespace, def.name)}`;
    const prev = first.get(key);
    if (!prev) {
      first.set(key, def);
      continue;
    }
    const where = prev.file ? `${prev.file}:${(opts.locate?.(prev)?.([def.kind === 'workflow' ? 'name' : 'service']).line) ?? prev.line ?? 0}` : 'TypeScript';
    add(def, [def.kind === 'workflow' ? 'name' : 'service'], def.line,
      `${def.kind} '${display(qualifiedName(def.namespace, def.name))}' is already defined in ${where}`);
  }

  const workflows = new Map<string, WorkflowSpec>();
  for (const def of defs) {
    const q = qualifiedName(def.namespace, def.name);
    if (def.kind === 'workflow' && !workflows.has(q)) workflows.set(q, def);
  }
  const known = new Set<string>(workflows.keys());
  for (const k of opts.knownWorkflows ?? []) known.add(k.includes('/') ? k : qualifiedName('default', k));
  // the definitions given win over stored ones of the same name: they are what is being applied
  const all = new Map(workflows);
  for (const wf of opts.stored ?? []) {
    const q = qualifiedName(wf.namespace, wf.name);
    if (!all.has(q)) all.set(q, wf);
    known.add(q);
  }

  for (const wf of workflows.values()) {
    for (const t of wf.tasks) {
      if (!t.workflow) continue;
      const target = resolveWorkflowRef(t.workflow.name, wf.namespace);
      const child = all.get(target);
      if (child) checkWith(wf, t.id, t.workflow, child, add);
      if (known.has(target)) continue;
      const near = closest(target, known);
      add(wf, ['tasks', t.id, 'workflow'], t.workflow.line ?? t.line,
        `task '${t.id}' uses unknown workflow '${t.workflow.name}'${near ? ` (did you mean '${display(near)}'?)` : ''}`);
    }
  }

  reportSubWorkflowCycles(all, new Set(workflows.keys()), add);
  return errors;
}

/** `with:` must name only the child's parameters and give every required one without a default. */
function checkWith(
  wf: WorkflowSpec,
  taskId: string,
  ref: SubWorkflowRef,
  child: WorkflowSpec,
  add: (def: Definition, path: DocPath, line: number | undefined, message: string, atKey?: boolean) => void,
): void {
  const declared = Object.keys(child.params);
  for (const key of Object.keys(ref.with)) {
    if (Object.hasOwn(child.params, key)) continue;
    const list = declared.length ? `declared: ${declared.join(', ')}` : 'it declares no parameters';
    add(wf, ['tasks', taskId, 'with', key], ref.line, `task '${taskId}' passes unknown parameter '${key}' to workflow '${ref.name}' (${list})`, true);
  }
  for (const [key, p] of Object.entries(child.params)) {
    if (p.required && p.default === undefined && !Object.hasOwn(ref.with, key)) {
      add(wf, ['tasks', taskId, 'workflow'], ref.line, `task '${taskId}' does not pass required parameter '${key}' to workflow '${ref.name}' (add it to with)`);
    }
  }
}

/** One step of a chain of sub-workflow references: task `task` of workflow `from` (qualified name). */
export type Hop = { from: string; task: string };

/**
 * `sub-workflow cycle: nightly → dumps.stubs → nightly (nightly.dumps runs dumpwiki, dumpwiki.stubs runs nightly)`:
 * the path as task ids would read once inlined, then each reference. `hops[0].from` is where the cycle starts and ends.
 */
export function describeSubWorkflowCycle(hops: readonly Hop[]): string {
  const head = hops[0]!;
  const path = `${display(head.from)} → ${hops.map((h) => h.task).join('.')} → ${display(head.from)}`;
  const via = hops.map((h, i) => `${display(h.from)}.${h.task} runs ${display((hops[i + 1] ?? head).from)}`).join(', ');
  return `sub-workflow cycle: ${path} (${via})`;
}

/** `workflows` in the order they were given (applied ones first); only cycles through `applied` are reported. */
function reportSubWorkflowCycles(
  workflows: Map<string, WorkflowSpec>,
  applied: Set<string>,
  add: (def: Definition, path: DocPath, line: number | undefined, message: string) => void,
): void {
  const order = [...workflows.keys()];
  const state = new Map<string, 'active' | 'done'>();
  const stack: Hop[] = [];
  const seen = new Set<string>();
  const visit = (q: string): void => {
    state.set(q, 'active');
    const wf = workflows.get(q)!;
    for (const t of wf.tasks) {
      if (!t.workflow) continue;
      const target = resolveWorkflowRef(t.workflow.name, wf.namespace);
      if (!workflows.has(target)) continue;
      stack.push({ from: q, task: t.id });
      if (state.get(target) === 'active') {
        const hops = stack.slice(stack.findIndex((h) => h.from === target));
        // start at the workflow given first, so a cycle is reported once and reads from where the user looks
        const start = hops.reduce((best, h, i) => (order.indexOf(h.from) < order.indexOf(hops[best]!.from) ? i : best), 0);
        const rotated = [...hops.slice(start), ...hops.slice(0, start)];
        const key = rotated.map((h) => `${h.from}#${h.task}`).join(' ');
        // applied workflows come first in `order`, so the head is one of them when any is in the cycle
        if (!seen.has(key) && applied.has(rotated[0]!.from)) {
          seen.add(key);
          const head = rotated[0]!;
          const headWf = workflows.get(head.from)!;
          const headTask = headWf.tasks.find((x) => x.id === head.task)!;
          add(headWf, ['tasks', head.task, 'workflow'], headTask.workflow?.line ?? headTask.line, describeSubWorkflowCycle(rotated));
        }
      } else if (!state.has(target)) {
        visit(target);
      }
      stack.pop();
    }
    state.set(q, 'done');
  };
  for (const q of order) if (applied.has(q) && !state.has(q)) visit(q);
}
