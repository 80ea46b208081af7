// What a run's parameters may hold, checked before anything walks them
// recursively (templates, JSON.stringify, the database): no NUL character (no
// process environment, argv or PostgreSQL text can carry one), no nesting
// deeper than MAX_PARAM_DEPTH (checked iteratively, so a value nested a
// million deep cannot overflow the stack), and sizes the environment can take:
// every parameter reaches a command as GANTRY_PARAM_<NAME>, and Linux refuses
// to start a process with one environment string over MAX_ARG_STRLEN (128 KiB).

/** Longest `GANTRY_PARAM_NAME=value` (Linux MAX_ARG_STRLEN, with its NUL). */
export const MAX_PARAM_ENV_BYTES = 128 * 1024 - 1;
/** All parameters together, as text: well under what argv and environment share (ARG_MAX, 2 MiB with an 8 MiB stack). */
export const MAX_PARAMS_BYTES = 1024 * 1024;
/** Deepest nesting of lists and objects in one parameter. */
export const MAX_PARAM_DEPTH = 64;

export interface ParamIssue {
  /** `params.name`, `params.name.key.0`… */
  path: string;
  message: string;
}

const envName = (name: string) => `GANTRY_PARAM_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

/** The issues of `params` (empty: fine). Stops at the first issue of each parameter. */
export function checkParamValues(params: Record<string, unknown>, where = 'params'): ParamIssue[] {
  const issues: ParamIssue[] = [];
  let total = 0;
  for (const [name, value] of Object.entries(params)) {
    const issue = shapeIssue(name, value, `${where}.${name}`);
    if (issue) {
      issues.push(issue);
      continue;
    }
    // shape checked: serialising it is safe now
    const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
    const bytes = Buffer.byteLength(`${envName(name)}=${text}`);
    total += bytes;
    if (bytes > MAX_PARAM_ENV_BYTES)
      issues.push({ path: `${where}.${name}`, message: `parameter '${name}' is ${bytes} bytes in the environment (${envName(name)}); the limit is ${MAX_PARAM_ENV_BYTES} (128 KiB, Linux MAX_ARG_STRLEN): pass a file path instead` });
  }
  if (total > MAX_PARAMS_BYTES && issues.length === 0)
    issues.push({ path: where, message: `the parameters are ${total} bytes together; the limit is ${MAX_PARAMS_BYTES} (1 MiB): pass file paths instead` });
  return issues;
}

/** NUL characters and depth, walked with an explicit stack. */
function shapeIssue(name: string, value: unknown, at: string): ParamIssue | null {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: at, depth: 0 }];
  while (stack.length) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return { path, message: `parameter '${name}' contains a NUL character (\\u0000), which no environment or argument can carry` };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_PARAM_DEPTH) return { path, message: `parameter '${name}' is nested more than ${MAX_PARAM_DEPTH} levels deep` };
    for (const [k, child] of Array.isArray(v) ? v.entries() : Object.entries(v)) {
      if (typeof k === 'string' && k.includes('\u0000')) return { path, message: `parameter '${name}' has a key with a NUL character (\\u0000)` };
      stack.push({ v: child, path: `${path}.${k}`, depth: depth + 1 });
    }
  }
  return null;
}

/** Where a string given to a job (a label, an argument) holds a NUL character: its message, or null. */
export function nulIssue(what: string, value: string): string | null {
  return value.includes('\u0000') ? `${what} contains a NUL character (\\u0000), which no environment, argument or database text can carry` : null;
}
