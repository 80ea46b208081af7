// `{{ expr }}` templates: parsing, reference listing (for validation) and
// rendering for the three places they end up: a shell script (every value
// quoted), an argv array, and literal text (paths, labels).

import type { Command, TemplateContext } from './model.js';

/** A template could not be parsed, or names a value that does not exist. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

export interface TemplateRef {
  /** dotted path; an `[n]` index is its own segment (`'0'`) */
  path: string[];
  /** offset of the `{{` in the template */
  index: number;
  /** the reference as written, e.g. `{{ params.wiki }}` */
  text: string;
}

type Part = { kind: 'text'; text: string } | ({ kind: 'ref' } & TemplateRef);

const SEGMENT = String.raw`[A-Za-z0-9_-]+(?:\[\d+\])*`;
const EXPR = new RegExp(String.raw`^${SEGMENT}(?:\.${SEGMENT})*$`);

function parseTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let pos = 0;
  while (pos < template.length) {
    const open = template.indexOf('{{', pos);
    if (open < 0) break;
    if (open > pos) parts.push({ kind: 'text', text: template.slice(pos, open) });
    const close = template.indexOf('}}', open + 2);
    if (close < 0) {
      throw new TemplateError(`unterminated '{{' at '${template.slice(open, open + 30)}' (close it with '}}')`);
    }
    const expr = template.slice(open + 2, close).trim();
    const text = template.slice(open, close + 2);
    if (!EXPR.test(expr)) {
      throw new TemplateError(`'${text}' is not a valid reference (use e.g. {{ params.name }})`);
    }
    const path = expr.split('.').flatMap((seg) => {
      const [head, ...idx] = seg.split('[');
      return [head!, ...idx.map((i) => i.slice(0, -1))];
    });
    parts.push({ kind: 'ref', path, index: open, text });
    pos = close + 2;
  }
  if (pos < template.length) parts.push({ kind: 'text', text: template.slice(pos) });
  return parts;
}

/** Every `{{ ... }}` in a template; throws TemplateError on a malformed one. */
export function templateRefs(template: string): TemplateRef[] {
  return parseTemplate(template).filter((p): p is { kind: 'ref' } & TemplateRef => p.kind === 'ref')
    .map(({ path, index, text }) => ({ path, index, text }));
}

function lookup(ctx: TemplateContext, ref: TemplateRef): unknown {
  let cur: unknown = ctx;
  for (const seg of ref.path) {
    if (Array.isArray(cur) && /^\d+$/.test(seg)) {
      cur = cur[Number(seg)];
    } else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      cur = undefined;
    }
    if (cur === undefined) break;
  }
  // Rendering a missing value as '' would silently change a command's meaning.
  if (cur === undefined) throw new TemplateError(`${ref.text}: no such value`);
  return cur;
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Single-quote for /bin/sh, always, so no value can ever carry shell syntax. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Render a shell script: each value quoted; a list becomes separate quoted words. */
export function renderShell(template: string, ctx: TemplateContext): string {
  return parseTemplate(template).map((p) => {
    if (p.kind === 'text') return p.text;
    const v = lookup(ctx, p);
    return Array.isArray(v) ? v.map((e) => shellQuote(text(e))).join(' ') : shellQuote(text(v));
  }).join('');
}

/** Render without quoting (output paths, labels, argv elements); non-strings as JSON. */
export function renderLiteral(template: string, ctx: TemplateContext): string {
  return parseTemplate(template).map((p) => (p.kind === 'text' ? p.text : text(lookup(ctx, p)))).join('');
}

/**
 * A value that is exactly one reference keeps its type (a list stays a list, a
 * number a number: `with: { wikis: "{{ params.wikis }}" }`); anything else renders as text.
 */
export function renderValue(template: string, ctx: TemplateContext): unknown {
  const parts = parseTemplate(template.trim());
  const only = parts.length === 1 ? parts[0] : undefined;
  return only?.kind === 'ref' ? lookup(ctx, only) : renderLiteral(template, ctx);
}

/** Render an argv array; an element that is exactly one reference to a list expands into one element per item. */
export function renderArgv(argv: string[], ctx: TemplateContext): string[] {
  return argv.flatMap((arg) => {
    const parts = parseTemplate(arg);
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only?.kind === 'ref') {
      const v = lookup(ctx, only);
      if (Array.isArray(v)) return v.map(text);
    }
    return [renderLiteral(arg, ctx)];
  });
}

/**
 * The secrets a command and its env name (`{{ secrets.NAME }}`), sorted: what a
 * worker opens for the job. A malformed template names none (rendering it fails anyway).
 */
export function secretNames(command: Command | null, env: Record<string, string>): string[] {
  const texts = [...Object.values(env)];
  if (command?.kind === 'shell') texts.push(command.script);
  if (command?.kind === 'argv') texts.push(...command.argv);
  const names = new Set<string>();
  for (const t of texts) {
    if (!t.includes('{{')) continue;
    try {
      for (const r of templateRefs(t)) if (r.path[0] === 'secrets' && r.path.length === 2) names.add(r.path[1]!);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
    }
  }
  return [...names].sort();
}

/** Every parameter as `GANTRY_PARAM_<NAME>`; non-strings JSON-encoded. */
export function paramEnv(params: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    env[`GANTRY_PARAM_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = text(value);
  }
  return env;
}

// Parameters are resolved before templates are rendered; re-exported here for callers that think of them together.
export { resolveParams } from './params.js';
