// Every secret value a job uses is replaced by *** in what the worker ships
// about it: log lines (commands' and handlers'), and its error. Logs travel in
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
