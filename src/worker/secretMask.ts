// Every secret value a job uses is replaced by *** in what the worker ships
// about it: log lines (commands' and handlers'), its error, its result
// ($GANTRY_RESULT or a handler's return) and a split's chunks. Logs travel in
// lines, so a multi-line secret is also masked line by line. Longest first: a
// secret containing another is masked whole.
export const MASK = '***';

export type Masker = (text: string) => string;

export const noMask: Masker = (text) => text;

export function secretMasker(values: Iterable<string>): Masker {
  const needles = new Set<string>();
  for (const v of values) {
    if (v === '') continue;
    needles.add(v);
    for (const line of v.split(/\r?\n/)) if (line.trim() !== '') needles.add(line);
  }
  if (needles.size === 0) return noMask;
  const sorted = [...needles].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const n of sorted) if (out.includes(n)) out = out.split(n).join(MASK);
    return out;
  };
}

/**
 * A JSON value with every secret masked: in strings, object keys, and numbers
 * or booleans whose text holds one (those become the string ***…). The shape
 * stays; a value without secrets comes back as it was.
 */
export function maskValue(value: unknown, mask: Masker): unknown {
  if (mask === noMask) return value;
  if (typeof value === 'string') return mask(value);
  if (typeof value === 'number' || typeof value === 'boolean') {
    const text = String(value);
    const masked = mask(text);
    return masked === text ? value : masked;
  }
  if (Array.isArray(value)) return value.map((v) => maskValue(v, mask));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [mask(k), maskValue(v, mask)]));
  return value;
}
