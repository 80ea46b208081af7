// Template checks: every `{{ }}` in a workflow file must name something that
// will exist when it is rendered (a declared parameter, an output of the right
// step, an upstream task), so a run never fails on a typo hours in.

import type { DocPath } from './locate.js';
import { has, obj, type Obj, type Report, type TaskInfo } from './report.js';
import { TemplateError, templateRefs, type TemplateRef } from './template.js';
import { SECRET_NAME } from '../secrets/names.js';

type Scope = 'task' | 'split' | 'combine' | 'labels' | 'with' | 'foreach' | 'env';

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

export function checkAllTemplates(r: Report, doc: Obj, tasks: Map<string, TaskInfo>, paramNames: string[]): void {
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
    // env values: rendered like commands; here only their secrets are checked (the rest as before, when they run)
    for (const [k, v] of Object.entries(obj(t.raw.env) ?? {})) if (typeof v === 'string') sites.push({ text: v, path: [...base, 'env', k], scope: 'env', task: t });
  }
  for (const [k, v] of Object.entries(obj(obj(doc.defaults)?.env) ?? {})) if (typeof v === 'string') sites.push({ text: v, path: ['defaults', 'env', k], scope: 'env' });
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
      if (site.scope === 'env' && ref.path[0] !== 'secrets') continue;
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
  env: ['params', 'run', 'outputs', 'tasks', 'item', 'chunk', 'chunks', 'secrets'],
};
const ALL_ROOTS = ROOTS_BY_SCOPE.task;
const SCOPE_NAME: Record<Scope, string> = {
  task: 'a task command', split: 'split', combine: 'combine', labels: 'labels', foreach: 'foreach', with: 'with', env: 'env',
};
/** what `{{ secrets.NAME }}` can name (the names `gantry secret set` takes) */

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
      // its tasks are inlined under `a.`; it has no job, so no outputs or result of its own
      if (other.isWorkflow) return `${ref.text}: '${a}' is a sub-workflow task; it has no outputs or result of its own (read a file its tasks write)`;
      if (b === 'result') return null;
      if (b !== 'outputs') return `${ref.text}: use tasks.${a}.outputs.<name> or tasks.${a}.result`;
      // downstream, a task with a combine step exposes the combine's outputs
      const outs = has(other.raw, 'combine') ? other.combineOutputs : other.outputs;
      if (c === undefined || !outs.includes(c)) {
        const declared = outs.length ? `it declares: ${outs.join(', ')}` : 'it declares none';
        return c === undefined ? `${ref.text}: name an output (${declared})` : `task '${a}' has no output '${c}' (${declared})`;
      }
      return null;
    }
    case 'secrets':
      if (ref.path.length !== 2 || !SECRET_NAME.test(a ?? ''))
        return `${ref.text}: name one secret, as {{ secrets.NAME }} (NAME: letters, digits, _ -; set it with gantry secret set NAME)`;
      // an output path is stored, listed and shown in clear: a secret has no place in it
      if (site.path.includes('outputs')) return `${ref.text} cannot be used in outputs: paths are stored and shown in clear (use it in run or env)`;
      return null;
    default:
      return null;
  }
}
