// Workflows written in TypeScript (SPEC §2: `defineWorkflow({...})` from the
// `gantry` package). A TypeScript workflow file is a module whose exports
// (default or named) are `defineWorkflow` results. Importing it gives plain
// objects in the shape of a YAML file, except that a handler may be a function;
// each such function becomes the reference `./file.ts#export.tasks.id.handler`
// (a property path inside the module), which the worker imports like any other
// handler. The document then goes through the very checks a YAML file does.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Locate, Position } from './locate.js';

/** Marks a `defineWorkflow` result. Symbol.for: a workflow file may import another copy of the package than the loader's. */
export const WORKFLOW_BRAND: unique symbol = Symbol.for('gantry.workflow');

/** Files picked up in folders (`gantry up DIR`): `*.workflow.ts` and friends; other .ts files there are handlers. */
export const WORKFLOW_MODULE_IN_FOLDER = /\.workflow\.(c|m)?[jt]s$/;
/** Files given by name (`gantry apply flow.ts`) that are modules rather than YAML. */
export const MODULE_FILE = /\.(c|m)?[jt]sx?$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

export function isDefinedWorkflow(v: unknown): v is Obj {
  return isObj(v) && (v as { [WORKFLOW_BRAND]?: unknown })[WORKFLOW_BRAND] === true;
}

/** TypeScript through tsx's loader API (a fresh copy each call), JavaScript through plain import(). */
export async function importModule(file: string): Promise<Obj> {
  if (/\.(c|m)?tsx?$/.test(file)) {
    const { tsImport } = await import('tsx/esm/api');
    return (await tsImport(pathToFileURL(file).href, import.meta.url)) as Obj;
  }
  return (await import(pathToFileURL(file).href)) as Obj;
}

/**
 * A value at a dotted path inside a module (`default.tasks.report.handler`).
 * A module tsx compiled as CommonJS has its exports under `default` as well: looked up there too.
 */
export function modulePath(mod: Obj, dotted: string): unknown {
  const walk = (from: unknown): unknown =>
    dotted.split('.').reduce<unknown>((v, key) => (v !== null && (typeof v === 'object' || typeof v === 'function') ? (v as Obj)[key] : undefined), from);
  return walk(mod) ?? walk(mod.default);
}

/** The workflows a module exports, by export name, the default first; each one once (under the first name found). */
export function exportedWorkflows(mod: Obj): Array<{ exportName: string; workflow: Obj }> {
  const found: Array<{ exportName: string; workflow: Obj }> = [];
  const seen = new Set<Obj>();
  const add = (name: string, v: unknown) => {
    if (!isDefinedWorkflow(v) || seen.has(v)) return;
    seen.add(v);
    found.push({ exportName: name, workflow: v });
  };
  // CommonJS interop: tsx puts module.exports under `default`, with the default export inside it
  const cjs: Obj = isObj(mod.default) && !isDefinedWorkflow(mod.default) ? mod.default : {};
  add('default', mod.default);
  add('default', cjs.default);
  for (const [name, v] of [...Object.entries(mod), ...Object.entries(cjs)]) add(name, v);
  return found;
}

/**
 * The workflow as a document of the YAML shape: function handlers replaced by
 * references into the module, everything else as given (the checks say what is wrong with it).
 */
export function workflowDocument(workflow: Obj, file: string, exportName: string): Obj {
  const ref = (...keys: string[]) => `./${path.basename(file)}#${[exportName, ...keys].join('.')}`;
  const withHandlerRef = (o: unknown, keys: string[]): unknown =>
    isObj(o) && typeof o.handler === 'function' ? { ...o, handler: ref(...keys, 'handler') } : o;
  const doc: Obj = { ...workflow };
  if (isObj(workflow.tasks)) {
    doc.tasks = Object.fromEntries(Object.entries(workflow.tasks).map(([id, t]) => {
      if (!isObj(t)) return [id, t];
      const task = withHandlerRef(t, ['tasks', id]) as Obj;
      return [id, {
        ...task,
        ...(t.split !== undefined ? { split: withHandlerRef(t.split, ['tasks', id, 'split']) } : {}),
        ...(t.combine !== undefined ? { combine: withHandlerRef(t.combine, ['tasks', id, 'combine']) } : {}),
      }];
    }));
  }
  return doc;
}

/**
 * Best-effort positions inside a TypeScript file, for messages: the keys of a
 * path are searched in order in the text, from the workflow's `name:`. A key
 * that is not found leaves the position at the last one that was.
 */
export function sourceLocator(source: string, workflowName: unknown): Locate {
  const positionOf = (offset: number): Position => {
    const before = source.slice(0, offset);
    const line = before.split('\n').length;
    return { line, column: offset - before.lastIndexOf('\n') };
  };
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const keyAt = (key: string, from: number): number => {
    const re = new RegExp(`(?<![\\w$-])(['"\`]?)${escape(key)}\\1\\s*:`, 'g');
    re.lastIndex = from;
    const m = re.exec(source);
    return m ? m.index + m[0].indexOf(key) - (m[1] ? 1 : 0) : -1;
  };
  let start = -1;
  if (typeof workflowName === 'string') {
    const m = new RegExp(`(?<![\\w$-])name\\s*:\\s*(['"\`])${escape(workflowName)}\\1`).exec(source);
    if (m) start = source.lastIndexOf('defineWorkflow', m.index);
    if (m && start < 0) start = m.index;
  }
  if (start < 0) start = source.indexOf('defineWorkflow');
  if (start < 0) return () => ({ line: 0, column: 0 });
  return (docPath) => {
    let at = start;
    for (const seg of docPath) {
      if (typeof seg === 'number') continue;
      const next = keyAt(seg, at);
      if (next < 0) break;
      at = next;
    }
    return positionOf(at);
  };
}

export interface WorkflowModule {
  /** the module's workflows as documents, with where to point messages about them */
  workflows: Array<{ exportName: string; document: Obj; locate: Locate }>;
  /** why the module gave none */
  error: string | null;
}

/** Imports a TypeScript/JavaScript workflow file and turns its workflows into documents. */
export async function loadWorkflowModule(file: string): Promise<WorkflowModule> {
  let mod: Obj;
  try {
    mod = await importModule(file);
  } catch (e) {
    const message = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { workflows: [], error: `cannot load this module: ${message}` };
  }
  const found = exportedWorkflows(mod);
  if (found.length === 0) {
    return { workflows: [], error: 'exports no workflow: export the result of defineWorkflow({...}) from the gantry package (as default or by name)' };
  }
  let source = '';
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch {
    // positions are a courtesy
  }
  return {
    workflows: found.map(({ exportName, workflow }) => ({
      exportName,
      document: workflowDocument(workflow, file, exportName),
      locate: sourceLocator(source, workflow.name),
    })),
    error: null,
  };
}
