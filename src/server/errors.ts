// "Which errors were raised?": failed attempts grouped by their error's first
// line, so a hundred chunks failing the same way read as one line with a count.
import type { AttemptError } from '../store/types.js';

export interface ErrorSummary {
  /** the error's first line */
  error: string;
  /** attempts that raised it */
  count: number;
  /** distinct jobs among them */
  jobs: number;
  first: number;
  last: number;
}

export function summarizeErrors(errors: readonly AttemptError[]): ErrorSummary[] {
  const groups = new Map<string, { count: number; jobs: Set<string>; first: number; last: number }>();
  for (const e of errors) {
    const key = (e.error.split('\n')[0] ?? '').trim() || '(no message)';
    const at = e.finishedAt ?? e.startedAt;
    const g = groups.get(key);
    if (!g) groups.set(key, { count: 1, jobs: new Set([e.jobId]), first: at, last: at });
    else {
      g.count++;
      g.jobs.add(e.jobId);
      g.first = Math.min(g.first, at);
      g.last = Math.max(g.last, at);
    }
  }
  return [...groups]
    .map(([error, g]) => ({ error, count: g.count, jobs: g.jobs.size, first: g.first, last: g.last }))
    .sort((a, b) => b.count - a.count || b.last - a.last);
}
