// Semantic checks of one workflow or service file: the rules the schema cannot
// express (dependencies, cycles, templates, cron, handler files, which fields
// go together). They read the raw document leniently, so they run — and
// report — even when the schema found other problems in the same file.

import fs from 'node:fs';
import nodePath from 'node:path';
import { Cron } from 'croner';
import { parseHandlerRef } from './command.js';
import type { DocPath, Locate } from './locate.js';
import type { SpecError } from './model.js';
import { resolveParams } from './params.js';
import { TASK_ID } from './schema.js';
import { closest } from './suggest.js';
import { has, obj, Report, type Obj, type TaskInfo } from './report.js';
import { checkAllTemplates } from './validate-templates.js';

export { validateDefinitionSet, type DefinitionSetOptions } from './validate-set.js';

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
  if (!ref) return;
  const where = handlerOutsideError(ref.module, baseDir);
  if (where) r.add([...path, 'handler'], `handler file '${o.handler.slice(0, o.handler.lastIndexOf('#'))}' ${where}`);
  else if (!fs.existsSync(ref.module)) {
    r.add([...path, 'handler'], `handler file '${o.handler.slice(0, o.handler.lastIndexOf('#'))}' not found (looked for ${ref.module})`);
  }
}

const inside = (p: string, dir: string) => {
  const rel = nodePath.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !nodePath.isAbsolute(rel));
};

/**
 * A handler's code must be the workflow's own (inside its folder) or an
 * installed package (a node_modules folder of its folder or of a folder above,
 * where Node would look): never any file of the machine the worker can read.
 * Checked on the path as written and, when it exists, on the real path (a
 * symbolic link in the folder pointing out of it).
 */
function handlerOutsideError(module: string, baseDir: string): string | null {
  const allowed = (p: string) => {
    if (inside(p, baseDir)) return true;
    const i = p.split(nodePath.sep).lastIndexOf('node_modules');
    if (i < 0) return false;
    const owner = p.split(nodePath.sep).slice(0, i).join(nodePath.sep) || nodePath.sep;
    return inside(baseDir, owner);
  };
  if (!allowed(module)) return `is outside the workflow's folder ${baseDir} (${module}): a handler must be in it or an installed package (node_modules)`;
  let real: string;
  try {
    real = fs.realpathSync(module);
  } catch {
    return null;
  }
  let realBase = baseDir;
  try {
    realBase = fs.realpathSync(baseDir);
  } catch {
    // checked as written
  }
  if (real !== module && !allowed(real) && !inside(real, realBase)) return `leads outside the workflow's folder ${baseDir} (it is ${real}): a handler must be in it or an installed package (node_modules)`;
  return null;
}

/** A relative output may not climb out of its workflow's folder with `..` (an absolute one is the admin's to confine: output roots). */
function checkOutputPaths(r: Report, outputs: unknown, path: DocPath): void {
  for (const [name, value] of Object.entries(obj(outputs) ?? {})) {
    if (typeof value !== 'string' || value.startsWith('/') || value.startsWith('{{')) continue;
    const norm = nodePath.posix.normalize(value);
    if (norm === '..' || norm.startsWith('../'))
      r.add([...path, name], `output '${name}' (${value}) climbs out of the workflow's folder with '..': write inside it, or give an absolute path`);
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
    checkOutputPaths(r, t.raw.outputs, [...base, 'outputs']);
    for (const step of ['split', 'combine'] as const) {
      const s = obj(t.raw[step]);
      if (!s) continue;
      exactlyOne(r, s, ['run', 'handler'], [...base, step], `${step} of task '${t.id}'`);
      checkHandler(r, s, [...base, step], ctx.baseDir);
      checkOutputPaths(r, s.outputs, [...base, step, 'outputs']);
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
