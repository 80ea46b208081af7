// "Did you mean" hints for misspelt field, task and parameter names.

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest candidate within a small edit distance, if any. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  // short words are too close to everything for a suggestion to mean anything
  const limit = Math.floor(word.length / 3);
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d <= limit && d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** `unknown field 'retrys' (did you mean 'retries'?)` */
export function unknownFieldMessage(key: string, known: readonly string[]): string {
  const near = closest(key, known);
  return near ? `unknown field '${key}' (did you mean '${near}'?)` : `unknown field '${key}' (allowed: ${known.join(', ')})`;
}
