// Workflow and service files → typed definitions, with every problem of a
// file reported at once, each with its line. Also loads files and folders,
// TypeScript workflow files included (typescript.ts turns them into documents
// that take the same checks).

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
import { MODULE_FILE, WORKFLOW_MODULE_IN_FOLDER, loadWorkflowModule } from './typescript.js';

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
  return checkDocument(raw as Record<string, unknown>, { file: abs, baseDir, locate: makeLocator(doc, lc) }, errors);
}

/**
 * The checks every definition goes through, whatever its source (a YAML file,
 * or a TypeScript file's `defineWorkflow` turned into a document): the schema,
 * the semantic checks, then the typed model. `errors` may hold earlier ones
 * (duplicate keys) and receives the rest.
 */
function checkDocument(raw: Record<string, unknown>, ctx: { file: string; baseDir: string; locate: Locate }, errors: SpecError[] = []): DetailedResult {
  const { file: abs, baseDir, locate } = ctx;
  const fail = (): DetailedResult => ({ definition: null, errors: errors.sort(byPosition), locate: null, declared: null });
  const at = (p: DocPath, message: string, atKey = false) => {
    errors.push({ file: abs, ...locate(p, { atKey }), path: formatDocPath(p), message });
  };

  const isService = Object.hasOwn(raw, 'service');
  const r = raw;
  const declared = {
    kind: isService ? 'service' as const : 'workflow' as const,
    qualified: qualifiedName(typeof r.namespace === 'string' ? r.namespace : DEFAULT_NAMESPACE, nameText(isService ? r.service : r.name)),
  };
  const parsed = isService ? serviceSchema.safeParse(raw) : workflowSchema.safeParse(raw);
  if (!parsed.success) for (const issue of parsed.error.issues) issueErrors(issue, at);
  errors.push(...(isService ? validateServiceDocument(raw, ctx) : validateWorkflowDocument(raw, ctx)));

  if (errors.length || !parsed.success) {
    // the same spot can be reached by the schema and the semantic checks; say it once
    const unique = [...new Map(errors.map((e) => [`${e.line}:${e.column}:${e.path}:${e.message}`, e])).values()];
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

const YAML_FILE = /\.ya?ml$/;

function filesUnder(dir: string, accept: { test(name: string): boolean }): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.') && !SKIP_DIRS.has(entry.name)) found.push(...filesUnder(full, accept));
    } else if (accept.test(entry.name)) {
      found.push(full);
    }
  }
  return found;
}

const ioMessage = (e: unknown) => ((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);

const noPosition: Locate = () => ({ line: 0, column: 0 });

/**
 * Check a definition given as a document (the YAML shape as data: what a
 * TypeScript workflow file's `defineWorkflow` gives, or JSON sent to the API).
 * `file` is where it came from; relative paths resolve against its folder.
 */
export function parseDefinitionDocument(document: unknown, file: string, locate: Locate = noPosition): ParseResult {
  const { definition, errors } = documentDetailed(document, file, locate);
  return { definition, errors };
}

function documentDetailed(document: unknown, file: string, locate: Locate): DetailedResult {
  const abs = path.resolve(file);
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    return {
      definition: null, locate: null, declared: null,
      errors: [{ file: abs, line: 0, column: 0, path: '', message: 'expected a workflow {name, tasks} or a service {service, run}' }],
    };
  }
  return checkDocument(document as Record<string, unknown>, { file: abs, baseDir: path.dirname(abs), locate });
}

/** A definition as the API's POST /definitions takes it: a file's text, or a document (a TypeScript workflow). */
export type DefinitionSource = { path: string; source: string } | { path: string; document: Record<string, unknown> };

export interface LoadedDefinitions {
  definitions: Definition[];
  errors: SpecError[];
  /** what each definition came from (same order), to send to a server */
  files: DefinitionSource[];
}

/** Checks what each file gave as a set, as loadDefinitionFiles and loadDefinitions do. */
class DefinitionSetBuilder {
  readonly definitions: Definition[] = [];
  readonly files: DefinitionSource[] = [];
  readonly errors: SpecError[] = [];
  private locators = new Map<Definition, Locate>();
  // Workflows of files that failed still exist as far as references are concerned.
  private known: Set<string>;
  constructor(knownWorkflows: Iterable<string> = []) {
    this.known = new Set(knownWorkflows);
  }
  cannotRead(file: string, e: unknown): void {
    this.errors.push({ file, line: 0, column: 0, path: '', message: `cannot read: ${ioMessage(e)}` });
  }
  add(result: DetailedResult, from: DefinitionSource): void {
    this.errors.push(...result.errors);
    if (result.definition) {
      this.definitions.push(result.definition);
      this.files.push(from);
      if (result.locate) this.locators.set(result.definition, result.locate);
    } else if (result.declared?.kind === 'workflow') {
      this.known.add(result.declared.qualified);
    }
  }
  /** expands folders with `under`, reporting paths that cannot be read */
  expand(paths: string[], under: (dir: string) => string[]): string[] {
    const files: string[] = [];
    for (const p of paths) {
      const abs = path.resolve(p);
      try {
        files.push(...(fs.statSync(abs).isDirectory() ? under(abs) : [abs]));
      } catch (e) {
        this.cannotRead(abs, e);
      }
    }
    return files;
  }
  /** A file past the size limit is refused before it is read (the API refuses such a body too). */
  tooLarge(file: string): boolean {
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return false; // reading it says why
    }
    if (size <= MAX_DEFINITION_FILE_BYTES) return false;
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1).replace(/\.0$/, '')} MiB`;
    this.errors.push({ file, line: 0, column: 0, path: '', message: `file is ${mib(size)}: a definition file may be at most ${mib(MAX_DEFINITION_FILE_BYTES)}` });
    return true;
  }
  readYaml(file: string): void {
    if (this.tooLarge(file)) return;
    let source: string;
    try {
      source = fs.readFileSync(file, 'utf8');
    } catch (e) {
      return this.cannotRead(file, e);
    }
    this.add(parseDetailed(source, file), { path: file, source });
  }
  finish(): LoadedDefinitions {
    this.errors.push(...validateDefinitionSet(this.definitions, { knownWorkflows: this.known, locate: (d) => this.locators.get(d) }));
    return { definitions: this.definitions, errors: this.errors, files: this.files };
  }
}

/** Largest workflow or service file read: the API's limit on a whole apply (10 MiB). */
export const MAX_DEFINITION_FILE_BYTES = 10 * 1024 * 1024;

/** Load files and folders (every *.yaml / *.yml below, skipping dot-folders, node_modules, out), then check them as a set. */
export function loadDefinitionFiles(
  paths: string[],
  opts: { knownWorkflows?: Iterable<string> } = {},
): LoadedDefinitions {
  const set = new DefinitionSetBuilder(opts.knownWorkflows);
  for (const file of set.expand(paths, (dir) => filesUnder(dir, YAML_FILE))) set.readYaml(file);
  return set.finish();
}

/**
 * loadDefinitionFiles, and TypeScript workflows too: a .ts/.js file given by
 * name, and `*.workflow.ts` (.mts, .js, .mjs…) files in folders, are imported
 * and each workflow they export is checked like a YAML file. Importing runs the module.
 */
export async function loadDefinitions(
  paths: string[],
  opts: { knownWorkflows?: Iterable<string> } = {},
): Promise<LoadedDefinitions> {
  const set = new DefinitionSetBuilder(opts.knownWorkflows);
  const inFolder = (name: string) => YAML_FILE.test(name) || WORKFLOW_MODULE_IN_FOLDER.test(name);
  for (const file of set.expand(paths, (dir) => filesUnder(dir, { test: inFolder }))) {
    if (!MODULE_FILE.test(file)) {
      set.readYaml(file);
      continue;
    }
    if (!fs.existsSync(file)) {
      set.cannotRead(file, Object.assign(new Error(), { code: 'ENOENT' }));
      continue;
    }
    if (set.tooLarge(file)) continue;
    const mod = await loadWorkflowModule(file);
    if (mod.error) set.errors.push({ file, line: 0, column: 0, path: '', message: mod.error });
    for (const w of mod.workflows) set.add(documentDetailed(w.document, file, w.locate), { path: file, document: w.document });
  }
  return set.finish();
}
