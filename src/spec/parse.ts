// Workflow and service files → typed definitions, with every problem of a
// file reported at once, each with its line. Also loads files and folders.

import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { buildService, buildWorkflow, DEFAULT_NAMESPACE, type Lines } from './build.js';
import { duplicateKeys, formatDocPath, makeLocator, type DocPath, type Locate } from './locate.js';
import type { Definition, SpecError } from './model.js';
import { KEY_MESSAGE_SEPARATOR, serviceSchema, workflowSchema, type ServiceFile, type WorkflowFile } from './schema.js';
import { validateServiceDocument, validateWorkflowDocument } from './validate.js';
import { qualifiedName, validateDefinitionSet } from './validate-set.js';

export interface ParseResult {
  definition: Definition | null;
  errors: SpecError[];
}

interface DetailedResult extends ParseResult {
  locate: Locate | null;
  /** `kind:namespace/name` as declared, even when the file has errors */
  declared: { kind: 'workflow' | 'service'; qualified: string } | null;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'mapping', record: 'mapping', array: 'list', int: 'whole number', null: 'nothing', undefined: 'nothing',
};
const typeName = (t: string) => TYPE_NAMES[t] ?? t;

/** zod's messages, reworded for people editing YAML. */
function issueErrors(issue: z.core.$ZodIssue, at: (path: DocPath, message: string, atKey?: boolean) => void): void {
  const p = issue.path as Array<string | number>;
  if (issue.code === 'unrecognized_keys') {
    const messages = issue.message.split(KEY_MESSAGE_SEPARATOR);
    issue.keys.forEach((k, i) => at([...p, k], messages[i] ?? `unknown field '${k}'`, true));
    return;
  }
  if (issue.code === 'custom') {
    at(p, issue.message, (issue.params as { atKey?: boolean } | undefined)?.atKey === true);
    return;
  }
  const m = /^Invalid input: expected (\w+), received (\w+)$/.exec(issue.message);
  if (m && m[2] === 'undefined') {
    at(p.slice(0, -1), `missing required field '${String(p[p.length - 1])}'`, true);
  } else if (m) {
    at(p, `must be a ${typeName(m[1]!)} (got ${typeName(m[2]!)})`);
  } else {
    at(p, issue.message
      .replace(/^Too (?:small|big): expected \w+ to be ([<>]=?)(\S+)$/, (_, op: string, n: string) =>
        `must be ${{ '>=': 'at least', '>': 'more than', '<=': 'at most', '<': 'less than' }[op] ?? op} ${n}`)
      .replace(/^Too small: expected array to have >=(\d+) items?$/, 'must list at least $1 item(s)'));
  }
}

function byPosition(a: SpecError, b: SpecError): number {
  return a.line - b.line || a.column - b.column || a.message.localeCompare(b.message);
}

function parseDetailed(source: string, file: string): DetailedResult {
  const abs = path.resolve(file);
  const baseDir = path.dirname(abs);
  const errors: SpecError[] = [];
  const lc = new LineCounter();
  // Duplicate keys are found by our own walk, which knows whether the key is a task.
  const doc = parseDocument(source, { lineCounter: lc, uniqueKeys: false, prettyErrors: false });
  const posOf = (offset: number) => {
    const { line, col } = lc.linePos(offset);
    return { line, column: col };
  };
  const fail = (): DetailedResult => ({ definition: null, errors: errors.sort(byPosition), locate: null, declared: null });

  for (const e of doc.errors) {
    errors.push({ file: abs, ...posOf(e.pos[0]), path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` });
  }
  // A syntactically broken document yields guesses, not findings: stop at its syntax errors.
  if (errors.length) return fail();

  for (const d of duplicateKeys(doc)) {
    const what = d.path.length === 1 && d.path[0] === 'tasks' ? 'task' : d.path.length === 1 && d.path[0] === 'params' ? 'parameter' : 'field';
    errors.push({
      file: abs, ...posOf(d.offset), path: formatDocPath([...d.path, d.key]),
      message: `duplicate ${what} '${d.key}' (first given on line ${posOf(d.firstOffset).line})`,
    });
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    // e.g. an alias (`*x`) without its anchor; the library says which but not where
    let offset = 0;
    visit(doc, { Alias: (_, node) => { if (!offset && !node.resolve(doc)) offset = node.range?.[0] ?? 0; } });
    errors.push({ file: abs, ...posOf(offset), path: '', message: `YAML error: ${(e as Error).message}` });
    return fail();
  }
  if (raw === null || raw === undefined || typeof raw !== 'object' || Array.isArray(raw)) {
    errors.push({
      file: abs, line: raw == null ? 0 : 1, column: raw == null ? 0 : 1, path: '',
      message: raw == null
        ? 'empty file: expected a workflow (name:, tasks:) or a service (service:, run:)'
        : 'expected a mapping with name: and tasks: (a workflow) or service: (a service)',
    });
    return fail();
  }
  const locate = makeLocator(doc, lc);
  const at = (p: DocPath, message: string, atKey = false) => {
    errors.push({ file: abs, ...locate(p, { atKey }), path: formatDocPath(p), message });
  };

  const isService = Object.hasOwn(raw, 'service');
  const r = raw as Record<string, unknown>;
  const declared = {
    kind: isService ? 'service' as const : 'workflow' as const,
    qualified: qualifiedName(typeof r.namespace === 'string' ? r.namespace : DEFAULT_NAMESPACE, nameText(isService ? r.service : r.name)),
  };
  const parsed = isService ? serviceSchema.safeParse(raw) : workflowSchema.safeParse(raw);
  if (!parsed.success) for (const issue of parsed.error.issues) issueErrors(issue, at);
  const ctx = { file: abs, baseDir, locate };
  errors.push(...(isService ? validateServiceDocument(raw, ctx) : validateWorkflowDocument(raw, ctx)));

  if (errors.length || !parsed.success) {
    // the same spot can be reached by the schema and the semantic checks; say it once
    const unique = [...new Map(errors.map((e) => [`${e.line}:${e.column}:${e.message}`, e])).values()];
    errors.length = 0;
    errors.push(...unique);
    return { ...fail(), locate, declared };
  }

  const lines: Lines = {
    task: (id) => locate(['tasks', id], { atKey: true }).line,
    workflowRef: (id) => locate(['tasks', id, 'workflow'], { atKey: true }).line,
    schedule: (i) => locate(Array.isArray(r.schedule) ? ['schedule', i] : ['schedule']).line,
    name: () => locate([isService ? 'service' : 'name'], { atKey: true }).line,
  };
  const definition = isService
    ? buildService(parsed.data as ServiceFile, abs, baseDir, lines)
    : buildWorkflow(parsed.data as WorkflowFile, abs, baseDir, lines);
  return { definition, errors: [], locate, declared };
}

/**
 * A name as text, whatever the document holds there (the schema reports a
 * non-string): String() throws on a mapping such as `{ toString: {} }`.
 */
function nameText(v: unknown): string {
  if (v === null || typeof v !== 'object') return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return '[unprintable]';
  }
}

/** Parse one file's text. `definition` is null whenever `errors` is not empty. */
export function parseDefinitionSource(source: string, file: string): ParseResult {
  const { definition, errors } = parseDetailed(source, file);
  return { definition, errors };
}

const SKIP_DIRS = new Set(['node_modules', 'out']);

function yamlFilesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.') && !SKIP_DIRS.has(entry.name)) found.push(...yamlFilesUnder(full));
    } else if (/\.ya?ml$/.test(entry.name)) {
      found.push(full);
    }
  }
  return found;
}

const ioMessage = (e: unknown) => ((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);

/** Load files and folders (every *.yaml / *.yml below, skipping dot-folders, node_modules, out), then check them as a set. */
export function loadDefinitionFiles(
  paths: string[],
  opts: { knownWorkflows?: Iterable<string> } = {},
): { definitions: Definition[]; errors: SpecError[] } {
  const definitions: Definition[] = [];
  const errors: SpecError[] = [];
  const locators = new Map<Definition, Locate>();
  // Workflows of files that failed still exist as far as references are concerned.
  const known = new Set<string>(opts.knownWorkflows ?? []);
  const files: string[] = [];
  for (const p of paths) {
    const abs = path.resolve(p);
    try {
      files.push(...(fs.statSync(abs).isDirectory() ? yamlFilesUnder(abs) : [abs]));
    } catch (e) {
      errors.push({ file: abs, line: 0, column: 0, path: '', message: `cannot read: ${ioMessage(e)}` });
    }
  }
  for (const file of files) {
    let source: string;
    try {
      source = fs.readFileSync(file, 'utf8');
    } catch (e) {
      errors.push({ file, line: 0, column: 0, path: '', message: `cannot read: ${ioMessage(e)}` });
      continue;
    }
    const result = parseDetailed(source, file);
    errors.push(...result.errors);
    if (result.definition) {
      definitions.push(result.definition);
      if (result.locate) locators.set(result.definition, result.locate);
    } else if (result.declared?.kind === 'workflow') {
      known.add(result.declared.qualified);
    }
  }
  errors.push(...validateDefinitionSet(definitions, { knownWorkflows: known, locate: (d) => locators.get(d) }));
  return { definitions, errors };
}
