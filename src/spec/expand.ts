// Inlining sub-workflows (SPEC §2 `workflow:`, `with:`, `foreach:`): a
// workflow plus the definitions of the children it uses become the flat list of
// tasks a run holds. Pure and deterministic, so that run creation (planRun) and
// every worker (to render a job's templates) expand a run's snapshot the same way.
//
// Ids: a child's task `stubs` under task `dump` is `dump.stubs`; in a foreach
// copy `dump[enwiki].stubs`; nesting repeats (`a.b.c`, `a[x].b[y].c`).
// Dependencies: a child's entry tasks (no needs inside the child) wait for what
// the sub-workflow task needs, with its trigger rule; what needs the
// sub-workflow task waits for the child's leaf tasks (those nothing in the child
// needs), in every copy. A sub-workflow with no tasks (or a foreach over an
// empty list) passes its needs straight through to its dependents.

import type { TaskSpec, TemplateContext, TriggerRule, WorkflowSpec } from './model.js';
import { resolveParams } from './params.js';
import { renderValue, TemplateError, templateRefs, type TemplateRef } from './template.js';
import { describeSubWorkflowCycle, display, qualifiedName, resolveWorkflowRef, type Hop } from './validate-set.js';

/** A workflow definition by `namespace/name`, as the run's snapshot holds it. */
export type WorkflowLookup = (qualifiedName: string) => WorkflowSpec | undefined;

/** What the templates of one inlined copy of a workflow see. Shared by the tasks of that copy. */
export interface TaskScope {
  /** `namespace/name` of the workflow the task is written in */
  workflow: string;
  /** prepended to the workflow's own task ids: `dump[enwiki].`; '' at the root */
  prefix: string;
  /** the copy's parameters: the run's at the root, `with:` resolved against the child's declarations below */
  params: Record<string, unknown>;
  /** the foreach item of this copy; absent outside a foreach copy (not inherited by deeper children) */
  item?: { value: unknown };
  /** local task id → id in the run, for the tasks of this copy that become jobs */
  taskIds: Record<string, string>;
  /** folder of the workflow's file: relative paths (outputs, cwd) resolve against it */
  baseDir: string;
}

export interface ExpandedTask {
  /** the task's id in the run (a job's task): `dump[enwiki].stubs` */
  id: string;
  /** the task as written in its workflow (local id, local needs) */
  task: TaskSpec;
  /** ids in the run */
  needs: string[];
  /** the task's rule; an entry task of a child has the sub-workflow task's rule (its needs are that task's) */
  trigger: TriggerRule;
  scope: TaskScope;
}

/** The run cannot be expanded: each message names where (a task path) and what. */
export class ExpansionError extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join('; '));
    this.name = 'ExpansionError';
  }
}

/** more than this many problems are summarised: a broken child in a 1,000-item foreach fails the same way 1,000 times */
const MAX_ERRORS = 20;

export function workflowKey(wf: Pick<WorkflowSpec, 'namespace' | 'name'>): string {
  return qualifiedName(wf.namespace, wf.name);
}

/**
 * Every task of `root` with its sub-workflows inlined, in file order (a child's
 * tasks where its sub-workflow task stands). `params` are the run's resolved
 * parameters. Throws ExpansionError listing what is wrong.
 */
export function expandWorkflow(
  root: WorkflowSpec,
  lookup: WorkflowLookup,
  params: Record<string, unknown>,
  run: { id: string; date: string },
): ExpandedTask[] {
  const x = new Expander(lookup, run);
  const out: ExpandedTask[] = [];
  const scope: TaskScope = { workflow: workflowKey(root), prefix: '', params, taskIds: {}, baseDir: root.baseDir };
  x.instance({ wf: root, scope, entryNeeds: [], entryTrigger: null, stack: [] }, out);
  if (x.errors.length) {
    const more = x.errors.length - MAX_ERRORS;
    throw new ExpansionError(more > 0 ? [...x.errors.slice(0, MAX_ERRORS), `… and ${more} more`] : x.errors);
  }
  return out;
}

/** How an item names its copy: strings as they are, numbers and booleans as text, anything else by its 0-based index. */
export function itemKey(item: unknown, index: number): string {
  if (typeof item === 'string') return item;
  if (typeof item === 'number' || typeof item === 'boolean') return String(item);
  return String(index);
}

interface Instance {
  wf: WorkflowSpec;
  scope: TaskScope;
  /** what the copy's entry tasks wait for (ids in the run) */
  entryNeeds: string[];
  /** the sub-workflow task's trigger rule, for the entry tasks; null at the root */
  entryTrigger: TriggerRule | null;
  /** the references that led here, for cycle messages */
  stack: Hop[];
}

const unique = (ids: string[]): string[] => (ids.length < 2 ? ids : [...new Set(ids)]);

class Expander {
  readonly errors: string[] = [];
  constructor(
    private readonly lookup: WorkflowLookup,
    private readonly run: { id: string; date: string },
  ) {}

  /** Appends one copy of a workflow to `out`; returns the ids its dependents must wait for. */
  instance(inst: Instance, out: ExpandedTask[]): string[] {
    const { wf, scope } = inst;
    if (wf.tasks.length === 0) return inst.entryNeeds;
    for (const t of wf.tasks) if (!t.workflow) scope.taskIds[t.id] = scope.prefix + t.id;
    const index = new Map(wf.tasks.map((t, i) => [t.id, i]));
    // exits[i]: what a task needing task i waits for; slots[i]: task i's jobs, emitted in file order at the end
    const exits: string[][] = new Array<string[]>(wf.tasks.length);
    const slots: ExpandedTask[][] = wf.tasks.map(() => []);
    const needed = new Set<string>();
    for (const i of topologicalOrder(wf, index)) {
      const t = wf.tasks[i]!;
      for (const n of t.needs) needed.add(n);
      const needs = t.needs.length ? unique(t.needs.flatMap((n) => exits[index.get(n)!]!)) : inst.entryNeeds;
      const trigger = t.needs.length || inst.entryTrigger === null ? t.trigger : inst.entryTrigger;
      if (t.workflow) {
        exits[i] = this.subWorkflow(t, inst, needs, trigger, slots[i]!);
      } else {
        this.checkTemplates(t, inst);
        slots[i]!.push({ id: scope.prefix + t.id, task: t, needs, trigger, scope });
        exits[i] = [scope.prefix + t.id];
      }
    }
    for (const slot of slots) for (const e of slot) out.push(e);
    return unique(wf.tasks.filter((t) => !needed.has(t.id)).flatMap((t) => exits[index.get(t.id)!]!));
  }

  private fail(message: string): void {
    this.errors.push(message);
  }

  /** Inlines the copies of a sub-workflow task into `out`; returns the leaves of all copies. */
  private subWorkflow(t: TaskSpec, inst: Instance, needs: string[], trigger: TriggerRule, out: ExpandedTask[]): string[] {
    const ref = t.workflow!;
    const where = inst.scope.prefix + t.id;
    const target = resolveWorkflowRef(ref.name, inst.wf.namespace);
    const stack = [...inst.stack, { from: inst.scope.workflow, task: t.id }];
    const start = stack.findIndex((h) => h.from === target);
    // Structural problems stop at once: every copy would repeat them.
    if (start >= 0) throw new ExpansionError([describeSubWorkflowCycle(stack.slice(start))]);
    const child = this.lookup(target);
    if (!child) throw new ExpansionError([`task '${where}' uses workflow '${ref.name}', which is not in the run's snapshot (apply it first)`]);

    const parentCtx = this.context(inst.scope.params, inst.scope.item);
    const copies = this.copies(t, where, parentCtx);
    const exits: string[] = [];
    for (const copy of copies) {
      const name = copy.prefix.slice(0, -1);
      // `with:` is rendered in the parent's context; inside a foreach copy, item is the copy's
      const ctx = copy.item ? { ...parentCtx, item: copy.item.value } : parentCtx;
      const given: Record<string, unknown> = {};
      let ok = true;
      for (const [key, value] of Object.entries(ref.with)) {
        try {
          given[key] = renderDeep(value, ctx);
        } catch (e) {
          if (!(e instanceof TemplateError)) throw e;
          this.fail(`task '${name}': with.${key}: ${e.message}`);
          ok = false;
        }
      }
      const { params, errors } = resolveParams(child, given);
      for (const e of errors) this.fail(`task '${name}' (workflow '${display(target)}'): ${e}`);
      if (!ok || errors.length) continue;
      const scope: TaskScope = { workflow: target, prefix: copy.prefix, params, taskIds: {}, baseDir: child.baseDir };
      if (copy.item) scope.item = copy.item;
      for (const id of this.instance({ wf: child, scope, entryNeeds: needs, entryTrigger: trigger, stack }, out)) exits.push(id);
    }
    return copies.length ? unique(exits) : needs;
  }

  /** One copy without foreach; one per item with it (none when the list is empty or wrong). */
  private copies(t: TaskSpec, where: string, ctx: TemplateContext): { prefix: string; item?: { value: unknown } }[] {
    const foreach = t.workflow!.foreach;
    if (foreach === null) return [{ prefix: `${where}.` }];
    let list: unknown = foreach;
    if (typeof foreach === 'string') {
      try {
        list = renderValue(foreach, ctx);
      } catch (e) {
        if (!(e instanceof TemplateError)) throw e;
        this.fail(`task '${where}': foreach: ${e.message}`);
        return [];
      }
    }
    if (!Array.isArray(list)) {
      this.fail(`task '${where}': foreach must be a list; ${String(foreach)} is ${JSON.stringify(list)}`);
      return [];
    }
    const seen = new Map<string, number>();
    const copies: { prefix: string; item: { value: unknown } }[] = [];
    list.forEach((value: unknown, i) => {
      const key = itemKey(value, i);
      const first = seen.get(key);
      if (first !== undefined) {
        this.fail(`task '${where}': foreach items ${first} and ${i} are both '${key}' (each item names its copy, ${where}[${key}], so items must be unique)`);
      } else if (key === '' || /[[\]\u0000-\u001f]/.test(key)) {
        this.fail(`task '${where}': foreach item ${i} (${JSON.stringify(key)}) cannot name a copy: it is empty or holds brackets or control characters`);
      } else {
        copies.push({ prefix: `${where}[${key}].`, item: { value } });
      }
      seen.set(key, first ?? i);
    });
    return copies;
  }

  private context(params: Record<string, unknown>, item: { value: unknown } | undefined): TemplateContext {
    const ctx: TemplateContext = { params, run: this.run, outputs: {}, tasks: {} };
    if (item) ctx.item = item.value;
    return ctx;
  }

  /** What a task's templates read must exist in its copy: no sub-workflow task's outputs, no item outside foreach. */
  private checkTemplates(t: TaskSpec, inst: Instance): void {
    const id = inst.scope.prefix + t.id;
    const refs = taskRefs(t);
    if (refs instanceof TemplateError) return this.fail(`task '${id}': ${refs.message}`);
    for (const ref of refs) {
      const [root, other] = ref.path;
      if (root === 'item' && !inst.scope.item) this.fail(`task '${id}' uses ${ref.text}, but it is not inside a foreach copy`);
      if (root === 'tasks' && other !== undefined && subWorkflowTasks(inst.wf).has(other))
        this.fail(`task '${id}' reads ${ref.text}, but '${other}' is a sub-workflow task: it has no outputs or result of its own (read them from a file its tasks write)`);
    }
  }
}

const subWorkflowTaskIds = new WeakMap<WorkflowSpec, Set<string>>();

function subWorkflowTasks(wf: WorkflowSpec): Set<string> {
  let ids = subWorkflowTaskIds.get(wf);
  if (!ids) subWorkflowTaskIds.set(wf, (ids = new Set(wf.tasks.filter((t) => t.workflow).map((t) => t.id))));
  return ids;
}

/** `with:` values may nest (lists, maps); every string in them is a template. */
function renderDeep(value: unknown, ctx: TemplateContext): unknown {
  if (typeof value === 'string') return renderValue(value, ctx);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, ctx));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, ctx)]));
  return value;
}

/**
 * The templates a job renders when it runs (command, env). Output paths are
 * rendered when the run is planned, where a bad one fails on its own; split and
 * combine steps are planned elsewhere.
 */
function taskTemplates(t: TaskSpec): string[] {
  const c = t.command;
  const command = !c ? [] : c.kind === 'shell' ? [c.script] : c.kind === 'argv' ? c.argv : [];
  return [...command, ...Object.values(t.env)];
}

/** parsed once per task definition, not once per copy (nor again by planRun) */
const parsedRefs = new WeakMap<TaskSpec, TemplateRef[] | TemplateError>();

/** Every reference in a task's templates, or the error of a malformed one. */
function taskRefs(t: TaskSpec): TemplateRef[] | TemplateError {
  let refs = parsedRefs.get(t);
  if (!refs) {
    try {
      refs = taskTemplates(t).flatMap((tpl) => templateRefs(tpl));
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      refs = e;
    }
    parsedRefs.set(t, refs);
  }
  return refs;
}

/** Local ids of the tasks whose outputs or result a task's templates read (`tasks.<id>…`). */
export function referencedTasks(t: TaskSpec): string[] {
  const refs = taskRefs(t);
  if (refs instanceof TemplateError) throw refs;
  const found = new Set<string>();
  for (const ref of refs) if (ref.path[0] === 'tasks' && ref.path[1]) found.add(ref.path[1]);
  return [...found];
}

/** Task indexes, each after the tasks it needs (Kahn's algorithm: no recursion, long chains are fine). */
function topologicalOrder(wf: WorkflowSpec, index: Map<string, number>): number[] {
  const waiting = wf.tasks.map((t) => t.needs.length);
  const dependents: number[][] = wf.tasks.map(() => []);
  wf.tasks.forEach((t, i) => {
    for (const n of t.needs) {
      const j = index.get(n);
      if (j === undefined) throw new ExpansionError([`workflow '${display(workflowKey(wf))}': task '${t.id}' needs unknown task '${n}'`]);
      dependents[j]!.push(i);
    }
  });
  const order: number[] = [];
  for (let i = 0; i < wf.tasks.length; i++) if (waiting[i] === 0) order.push(i);
  for (let k = 0; k < order.length; k++) {
    for (const d of dependents[order[k]!]!) if (--waiting[d]! === 0) order.push(d);
  }
  if (order.length < wf.tasks.length) {
    const stuck = wf.tasks.filter((_, i) => waiting[i]! > 0).map((t) => t.id);
    throw new ExpansionError([`workflow '${display(workflowKey(wf))}' has a dependency cycle among tasks ${stuck.join(', ')}`]);
  }
  return order;
}
