// Turning the parameters a run is started with (CLI strings, API JSON, schedule
// values) into the values its templates see: defaults, coercion, checks.

import type { ParamSpec, WorkflowSpec } from './model.js';
import { checkParamValues } from './paramLimits.js';

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** CLI values arrive as strings; coerce them to the type the declaration implies. */
function coerce(name: string, value: string, spec: ParamSpec): { value: unknown } | { error: string } {
  const examples = [...(spec.default !== undefined ? [spec.default] : []), ...(spec.enum ?? [])];
  const trimmed = value.trim();
  // A text parameter keeps `[x]` as text; anything else may be given as JSON (lists for foreach).
  if (!examples.some((e) => typeof e === 'string') && /^[[{]/.test(trimmed)) {
    try {
      return { value: JSON.parse(trimmed) as unknown };
    } catch {
      // not JSON: fall through and treat it as text
    }
  }
  if (examples.some((e) => typeof e === 'number')) {
    const n = Number(trimmed);
    if (trimmed === '' || !Number.isFinite(n)) return { error: `parameter '${name}' must be a number, got '${value}'` };
    return { value: n };
  }
  if (examples.some((e) => typeof e === 'boolean')) {
    if (trimmed === 'true') return { value: true };
    if (trimmed === 'false') return { value: false };
    return { error: `parameter '${name}' must be true or false, got '${value}'` };
  }
  if (examples.some((e) => Array.isArray(e))) {
    // `-p wikis=enwiki,dewiki` for a list parameter
    return { value: trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim()) };
  }
  return { value };
}

/** Apply defaults and check the given parameters against the declarations. */
export function resolveParams(
  spec: Pick<WorkflowSpec, 'params'>,
  given: Record<string, unknown>,
): { params: Record<string, unknown>; errors: string[] } {
  // before anything below walks a value recursively (enum checks stringify it)
  const unsafe = checkParamValues(given);
  if (unsafe.length) return { params: {}, errors: unsafe.map((i) => i.message) };
  const params: Record<string, unknown> = {};
  const errors: string[] = [];
  const declared = Object.keys(spec.params);
  for (const [name, raw] of Object.entries(given)) {
    const decl = spec.params[name];
    if (!decl) {
      const hint = declared.length ? `declared: ${declared.join(', ')}` : 'this workflow declares no parameters';
      errors.push(`unknown parameter '${name}' (${hint})`);
      continue;
    }
    let value = raw;
    if (typeof raw === 'string') {
      const c = coerce(name, raw, decl);
      if ('error' in c) {
        errors.push(c.error);
        continue;
      }
      value = c.value;
    }
    if (decl.enum && !decl.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
      errors.push(`parameter '${name}' is '${show(value)}', must be one of: ${decl.enum.map(show).join(', ')}`);
      continue;
    }
    params[name] = value;
  }
  for (const [name, decl] of Object.entries(spec.params)) {
    if (Object.hasOwn(given, name)) continue;
    if (decl.default !== undefined) params[name] = decl.default;
    else if (decl.required) errors.push(`missing required parameter '${name}'`);
  }
  // defaults included: all of them must fit the environment together
  if (errors.length === 0) errors.push(...checkParamValues(params).map((i) => i.message));
  return { params, errors };
}
