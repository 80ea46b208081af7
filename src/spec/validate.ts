// Semantic checks of one workflow or service file: the rules the schema cannot
// express (dependencies, cycles, templates, cron, handler files, which fields
// go together). They read the raw document leniently, so they run — and
// report — even when the schema found other problems in the same file.

import fs from 'node:fs';
import { Cron } from 'croner';
import { parseHandlerRef } from './command.js';
import type { DocPath, Locate } from './locate.js';
import type { SpecError } from './model.js';
import { resolveParams } from './params.js';
import { TASK_ID } from './schema.js';
import { closest } from './suggest.js';
import { TemplateError, templateRefs, type TemplateRef } from './template.js';

export { validateDefinitionSet, type DefinitionSetOptions } from './validate-set.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
const has = (o: Obj, k: string) => Object.hasOwn(o, k) && o[k] !== undefined;

/** `tasks.stubs.needs[0]` */
export function formatDocPath(path: DocPath): string {
  return path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : seg), '');
}

class Report {
  readonly errors: SpecError[] = [];
  constructor(private file: string, private locate: Locate) {}
  add(path: DocPath, message: string, atKey = false): void {
    const { line, column } = this.locate(path, { atKey });
    this.errors.push({ file: this.file, line, column, path: formatDocPath(path), message });
  }
}

export interface ValidateContext {
  file: string;
  baseDir: string;
  locate: Locate;
}

/** Exactly one of `keys` must be present in `o`. */
function exactlyOne(r: Report, o: Obj, keys: string[], path: DocPath, what: string): void {
  const present = Object.keys(o).filter((k) => keys.includes(k) && has(o, k)); // file order
  if (present.length === 0) r.add(path, `${what} needs one of ${keys.join(', ')}`, true);
  for (const extra of present.slice(1)) {
    r.add([...path, extra], `${what} has both ${present[0]} and ${extra}; use exactly one`, true);
  }
}

function checkHandler(r: Report, o: Obj, path: DocPath, baseDir: string): void {
  if (typeof o.handler !== 'string') return;
  const ref = parseHandlerRef(o.handler, baseDir);
  if (ref && !fs.existsSync(ref.module)) {
    r.add([...path, 'handler'], `handler file '${o.handler.slice(0, o.handler.lastIndexOf('#'))}' not found (looked for ${ref.module})`);
  }
}

/** Semantic checks of a service file's raw contents. */
export function validateServiceDocument(raw: unknown, ctx: ValidateContext): SpecError[] {
  const r = new Report(ctx.file, ctx.locate);
  const o = obj(raw);
  if (!o) return r.errors;
  exactlyOne(r, o, ['run', 'handler'], [], `service '${String(o.service)}'`);
  checkHandler(r, o, [], ctx.baseDir);
  return r.errors;
}

type Scope = 'task' | 'split' | 'combine' | 'labels' | 'with' | 'foreach';

interface TaskInfo {
  id: string;
  raw: Obj;
  needs: string[];
  outputs: string[];
  splitOutputs: string[];
  combineOutputs: string[];
  isWorkflow: boolean;
}

const keysOf = (v: unknown): string[] => Object.keys(obj(v) ?? {});
const outputsOfStep = (v: unknown): string[] => keysOf(obj(v)?.outputs);

/** Semantic checks of a workflow file's raw contents. */
export function validateWorkflowDocument(raw: unknown, ctx: ValidateContext): SpecError[] {
  const r = new Report(ctx.file, ctx.locate);
  const doc = obj(raw);
  if (!doc) return r.errors;
  const rawTasks = obj(doc.tasks) ?? {};
  const params = obj(doc.params) ?? {};
  const paramNames = Object.keys(params);

  const tasks = new Map<string, TaskInfo>();
  for (const [id, value] of Object.entries(rawTasks)) {
    const t = obj(value) ?? {};
    const needs = typeof t.needs === 'string' ? [t.needs] : Array.isArray(t.needs) ? t.needs.filter((n): n is string => typeof n === 'string') : [];
    tasks.set(id, {
      id, raw: t, needs,
      outputs: keysOf(t.outputs),
      splitOutputs: outputsOfStep(t.split),
      combineOutputs: outputsOfStep(t.combine),
      isWorkflow: has(t, 'workflow'),
    });
  }
  if (obj(doc.tasks) && tasks.size === 0) r.add(['tasks'], 'a workflow needs at least one task', true);
  const ids = [...tasks.keys()];

  checkParams(r, params);
  checkSchedules(r, doc.schedule, params);

  for (const t of tasks.values()) {
    const base = ['tasks', t.id];
    if (!TASK_ID.test(t.id)) {
      r.add(base, `task id '${t.id}' may use only letters, digits, _ and - (dots and brackets are reserved for sub-workflow tasks)`, true);
    }
    exactlyOne(r, t.raw, ['run', 'handler', 'workflow'], base, `task '${t.id}'`);
    for (const [field, needed] of [['combine', 'split'], ['concurrency', 'split'], ['foreach', 'workflow'], ['with', 'workflow']] as const) {
      if (has(t.raw, field) && !has(t.raw, needed)) r.add([...base, field], `${field} is only allowed on a task with ${needed}`, true);
    }
    if (t.isWorkflow) {
      for (const field of ['split', 'outputs'] as const) {
        if (has(t.raw, field)) r.add([...base, field], `${field} cannot be used on a sub-workflow task`, true);
      }
    }
    checkHandler(r, t.raw, base, ctx.baseDir);
    for (const step of ['split', 'combine'] as const) {
      const s = obj(t.raw[step]);
      if (!s) continue;
      exactlyOne(r, s, ['run', 'handler'], [...base, step], `${step} of task '${t.id}'`);
      checkHandler(r, s, [...base, step], ctx.baseDir);
    }
    const needsPath = (i: number): DocPath => (typeof t.raw.needs === 'string' ? [...base, 'needs'] : [...base, 'needs', i]);
    t.needs.forEach((n, i) => {
      if (!tasks.has(n)) {
        const near = closest(n, ids);
        r.add(needsPath(i), `unknown task '${n}' in needs (tasks are: ${ids.join(', ')})${near ? `; did you mean '${near}'?` : ''}`);
      }
    });
  }

  checkCycles(r, tasks);
  checkAllTemplates(r, doc, tasks, paramNames);
  return r.errors;
}

function checkParams(r: Report, params: Obj): void {
  for (const [name, value] of Object.entries(params)) {
    if (!TASK_ID.test(name)) r.add(['params', name], `parameter name '${name}' may use only letters, digits, _ and -`, true);
    const p = obj(value);
    if (!p || !Array.isArray(p.enum) || !has(p, 'default')) continue;
    if (!p.enum.some((e) => JSON.stringify(e) === JSON.stringify(p.default))) {
      r.add(['params', name, 'default'], `default ${JSON.stringify(p.default)} of parameter '${name}' is not one of its enum values (${p.enum.map((e) => JSON.stringify(e)).join(', ')})`);
    }
  }
}

function checkSchedules(r: Report, schedule: unknown, params: Obj): void {
  const list = Array.isArray(schedule) ? schedule : schedule === undefined ? [] : [schedule];
  const declared: Record<string, { required: boolean; default?: unknown; enum?: unknown[] }> = {};
  for (const [k, v] of Object.entries(params)) {
    const p = obj(v) ?? {};
    declared[k] = { required: p.required === true, default: p.default, ...(Array.isArray(p.enum) ? { enum: p.enum } : {}) };
  }
  list.forEach((value, i) => {
    const s = obj(value);
    if (!s) return;
    const base: DocPath = Array.isArray(schedule) ? ['schedule', i] : ['schedule'];
    let tzOk = true;
    if (typeof s.timezone === 'string') {
      try {
        new Intl.DateTimeFormat('en', { timeZone: s.timezone });
      } catch {
        tzOk = false;
        r.add([...base, 'timezone'], `unknown timezone '${s.timezone}' (use an IANA name such as UTC or Europe/Berlin)`);
      }
    }
    if (typeof s.cron === 'string') {
      try {
        const c = new Cron(s.cron, { paused: true, ...(tzOk && typeof s.timezone === 'string' ? { timezone: s.timezone } : {}) });
        if (c.nextRun() === null) r.add([...base, 'cron'], `cron expression '${s.cron}' never fires`);
      } catch (e) {
        const why = (e as Error).message.replace(/^Cron\w*: /, '');
        r.add([...base, 'cron'], `bad cron expression '${s.cron}': ${why}`);
      }
    }
    // A schedule that lacks a required parameter would fail at every tick: say so now.
    const given = obj(s.params) ?? {};
    for (const message of resolveParams({ params: declared }, given).errors) {
      r.add(has(s, 'params') ? [...base, 'params'] : base, `schedule: ${message}`, !has(s, 'params'));
    }
  });
}

function checkCycles(r: Report, tasks: Map<string, TaskInfo>): void {
  const order = [...tasks.keys()];
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string): void => {
    state.set(id, 'active');
    stack.push(id);
    for (const n of tasks.get(id)!.needs) {
      if (!tasks.has(n)) continue;
      if (state.get(n) === 'active') {
        const cycle = stack.slice(stack.indexOf(n));
        // rotate so the cycle starts at its earliest task in the file: reported once, stably
        const first = cycle.reduce((a, b) => (order.indexOf(b) < order.indexOf(a) ? b : a));
        const rotated = [...cycle.slice(cycle.indexOf(first)), ...cycle.slice(0, cycle.indexOf(first))];
        const key = rotated.join('\u0000');
        if (seen.has(key)) continue;
        seen.add(key);
        const t = tasks.get(first)!;
        const next = rotated[1] ?? first;
        const i = t.needs.indexOf(next);
        const path = typeof t.raw.needs === 'string' ? ['tasks', first, 'needs'] : ['tasks', first, 'needs', i];
        r.add(path, `dependency cycle: ${[...rotated, first].join(' → ')}`);
      } else if (!state.has(n)) {
        visit(n);
      }
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const id of order) if (!state.has(id)) visit(id);
}

function upstreamOf(tasks: Map<string, TaskInfo>): (id: string) => Set<string> {
  const memo = new Map<string, Set<string>>();
  const up = (id: string): Set<string> => {
    const cached = memo.get(id);
    if (cached) return cached;
    const result = new Set<string>();
    memo.set(id, result); // set before recursing so a cycle terminates
    for (const n of tasks.get(id)?.needs ?? []) {
      if (!tasks.has(n)) continue;
      result.add(n);
      for (const m of up(n)) result.add(m);
    }
    return result;
  };
  return up;
}

interface TemplateSite {
  text: string;
  path: DocPath;
  scope: Scope;
  task?: TaskInfo;
}

/** Every string under `value` (for `with:` values, which may nest). */
function strings(value: unknown, path: DocPath, out: Array<{ text: string; path: DocPath }>): void {
  if (typeof value === 'string') out.push({ text: value, path });
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, [...path, i], out));
  else if (obj(value)) for (const [k, v] of Object.entries(value as Obj)) strings(v, [...path, k], out);
}

function commandSites(o: Obj, path: DocPath, scope: Scope, task: TaskInfo): TemplateSite[] {
  const found: Array<{ text: string; path: DocPath }> = [];
  if (typeof o.run === 'string') found.push({ text: o.run, path: [...path, 'run'] });
  if (Array.isArray(o.run)) o.run.forEach((a, i) => typeof a === 'string' && found.push({ text: a, path: [...path, 'run', i] }));
  for (const [k, v] of Object.entries(obj(o.outputs) ?? {})) if (typeof v === 'string') found.push({ text: v, path: [...path, 'outputs', k] });
  return found.map((f) => ({ ...f, scope, task }));
}

function checkAllTemplates(r: Report, doc: Obj, tasks: Map<string, TaskInfo>, paramNames: string[]): void {
  const sites: TemplateSite[] = [];
  for (const [k, v] of Object.entries(obj(doc.labels) ?? {})) if (typeof v === 'string') sites.push({ text: v, path: ['labels', k], scope: 'labels' });
  for (const t of tasks.values()) {
    const base = ['tasks', t.id];
    sites.push(...commandSites(t.raw, base, 'task', t));
    for (const step of ['split', 'combine'] as const) {
      const s = t.raw[step];
      if (typeof s === 'string') sites.push({ text: s, path: [...base, step], scope: step, task: t });
      else if (obj(s)) sites.push(...commandSites(s as Obj, [...base, step], step, t));
    }
    const withStrings: Array<{ text: string; path: DocPath }> = [];
    strings(t.raw.with, [...base, 'with'], withStrings);
    sites.push(...withStrings.map((w) => ({ ...w, scope: 'with' as const, task: t })));
    if (typeof t.raw.foreach === 'string') sites.push({ text: t.raw.foreach, path: [...base, 'foreach'], scope: 'foreach', task: t });
  }
  const up = upstreamOf(tasks);
  for (const site of sites) {
    let refs: TemplateRef[];
    try {
      refs = templateRefs(site.text);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      r.add(site.path, e.message);
      continue;
    }
    for (const ref of refs) {
      const message = checkRef(ref, site, tasks, paramNames, up);
      if (message) r.add(site.path, message);
    }
  }
}

const ROOTS_BY_SCOPE: Record<Scope, readonly string[]> = {
  task: ['params', 'run', 'outputs', 'tasks', 'item', 'chunk', 'chunks', 'secrets'],
  split: ['params', 'run', 'outputs', 'tasks', 'item', 'chunk', 'chunks', 'secrets'],
  combine: ['params', 'run', 'outputs', 'tasks', 'item', 'chunk', 'chunks', 'secrets'],
  labels: ['params', 'run'],
  foreach: ['params', 'run'],
  with: ['params', 'run', 'item'],
};
const ALL_ROOTS = ROOTS_BY_SCOPE.task;
const SCOPE_NAME: Record<Scope, string> = {
  task: 'a task command', split: 'split', combine: 'combine', labels: 'labels', foreach: 'foreach', with: 'with',
};

/** The message for a reference that cannot resolve, or null when it is fine. */
function checkRef(
  ref: TemplateRef,
  site: TemplateSite,
  tasks: Map<string, TaskInfo>,
  paramNames: string[],
  up: (id: string) => Set<string>,
): string | null {
  const [root, a, b, c] = ref.path as [string, string?, string?, string?];
  const allowed = ROOTS_BY_SCOPE[site.scope];
  if (!ALL_ROOTS.includes(root)) {
    return `unknown template value '${root}' in ${ref.text} (use ${allowed.join(', ')})`;
  }
  if (!allowed.includes(root)) return `${ref.text} cannot be used in ${SCOPE_NAME[site.scope]} (only ${allowed.join(', ')})`;
  const t = site.task;
  switch (root) {
    case 'params':
      if (a === undefined) return `${ref.text}: name a parameter, e.g. {{ params.${paramNames[0] ?? 'name'} }}`;
      if (!paramNames.includes(a)) {
        const declared = paramNames.length ? `declared: ${paramNames.join(', ')}` : 'this workflow declares no parameters';
        return `unknown parameter '${a}' in ${ref.text} (${declared})`;
      }
      return null;
    case 'run':
      return ref.path.length === 2 && (a === 'id' || a === 'date') ? null : `${ref.text}: a run has only {{ run.id }} and {{ run.date }}`;
    case 'outputs': {
      if (!t) return null;
      const own = site.scope === 'split' ? t.splitOutputs : site.scope === 'combine' ? t.combineOutputs : t.outputs;
      const whose = site.scope === 'task' ? `task '${t.id}'` : `the ${site.scope} step of task '${t.id}'`;
      const declared = own.length ? `declares: ${own.join(', ')}` : 'declares no outputs';
      if (a === undefined) return `${ref.text}: name an output (${whose} ${declared})`;
      return own.includes(a) ? null : `unknown output '${a}' in ${ref.text} (${whose} ${declared})`;
    }
    case 'tasks': {
      if (!t) return null;
      if (a === undefined) return `${ref.text}: name a task, e.g. {{ tasks.<id>.outputs.<name> }}`;
      const other = tasks.get(a);
      if (!other) return `unknown task '${a}' in ${ref.text} (tasks are: ${[...tasks.keys()].join(', ')})`;
      if (!up(t.id).has(a)) return `task '${t.id}' uses tasks.${a} but does not depend on it (add it to needs)`;
      if (b === 'result') return null;
      if (b !== 'outputs') return `${ref.text}: use tasks.${a}.outputs.<name> or tasks.${a}.result`;
      if (other.isWorkflow) return null;
      // downstream, a task with a combine step exposes the combine's outputs
      const outs = has(other.raw, 'combine') ? other.combineOutputs : other.outputs;
      if (c === undefined || !outs.includes(c)) {
        const declared = outs.length ? `it declares: ${outs.join(', ')}` : 'it declares none';
        return c === undefined ? `${ref.text}: name an output (${declared})` : `task '${a}' has no output '${c}' (${declared})`;
      }
      return null;
    }
    default:
      return null;
  }
}
