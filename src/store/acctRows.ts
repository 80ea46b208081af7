// Accounting (gantry acct, like Grid Engine's qacct): what finished attempts
// used, summed per group over a time range, in one GROUP BY statement that
// both stores share (only their placeholders differ). An attempt counts in the
// range its end falls in (attempts_by_end).

/** What acct groups by. A task is named within its workflow and a workflow within its namespace, so grouping by one groups by those above it too. */
export const ACCT_KEYS = ['namespace', 'workflow', 'task', 'worker'] as const;
export type AcctKey = (typeof ACCT_KEYS)[number];

export interface AcctFilter {
  /** attempts that ended at or after this (epoch ms) */
  since?: number;
  /** attempts that ended before this */
  until?: number;
  by: AcctKey[];
  /** only this namespace */
  namespace?: string;
  /** only these namespaces (a reader's scope); absent: all */
  namespaces?: string[];
}

export interface AcctRow {
  /** the group's keys: those asked for and the ones above them */
  namespace?: string;
  workflow?: string;
  task?: string;
  worker?: string;
  /** attempts that ended in the range */
  attempts: number;
  succeeded: number;
  /** failed or timed out */
  failed: number;
  /** the attempts' wall-clock time, start to end */
  wallMs: number;
  /** CPU time (user + system) of the measured attempts' process trees */
  cpuMs: number;
  /** attempts with a measurement (commands; not handlers or lost attempts) */
  measured: number;
  /** the highest peak resident memory of one attempt; null: none measured */
  maxRssBytes: number | null;
  /** the mean of the measured attempts' peaks; null: none measured */
  meanRssBytes: number | null;
}

/** The keys a grouping by `by` really uses, in ACCT_KEYS order. */
export function acctKeys(by: readonly AcctKey[]): AcctKey[] {
  const keys = new Set(by);
  if (keys.has('task')) keys.add('workflow');
  if (keys.has('workflow')) keys.add('namespace');
  return ACCT_KEYS.filter((k) => keys.has(k));
}

const KEY_COLUMN: Record<AcctKey, string> = { namespace: 'r.namespace', workflow: 'r.workflow', task: 'j.task', worker: 'a.worker' };

/**
 * The statement for `f`; `arg` binds a value and returns its placeholder.
 * `bigint`/`float`: the casts the dialect needs so sums come back as numbers (PostgreSQL sums bigint as numeric).
 */
export function acctSql(f: AcctFilter, arg: (v: unknown) => string, cast: { bigint: string; float: string }): string {
  const keys = acctKeys(f.by);
  const where = ['a.finished_at IS NOT NULL'];
  if (f.since !== undefined) where.push(`a.finished_at >= ${arg(f.since)}`);
  if (f.until !== undefined) where.push(`a.finished_at < ${arg(f.until)}`);
  if (f.namespace !== undefined) where.push(`r.namespace = ${arg(f.namespace)}`);
  if (f.namespaces !== undefined) where.push(f.namespaces.length ? `r.namespace IN (${f.namespaces.map(arg).join(', ')})` : '1 = 0');
  const cols = keys.map((k) => `${KEY_COLUMN[k]} AS ${k}`);
  const groupBy = keys.map((k) => KEY_COLUMN[k]);
  return `SELECT ${[...cols, ''].join(', ')}count(*) AS attempts,
      sum(CASE WHEN a.state = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
      sum(CASE WHEN a.state IN ('failed', 'timed_out') THEN 1 ELSE 0 END) AS failed,
      sum(a.finished_at - a.started_at)${cast.bigint} AS wall_ms,
      coalesce(sum(a.cpu_ms), 0)${cast.bigint} AS cpu_ms,
      count(a.cpu_ms) AS measured,
      max(a.max_rss_bytes) AS max_rss_bytes,
      avg(a.max_rss_bytes)${cast.float} AS mean_rss_bytes
    FROM attempts a JOIN jobs j ON j.id = a.job_id JOIN runs r ON r.id = j.run_id
    WHERE ${where.join(' AND ')}
    ${groupBy.length ? `GROUP BY ${groupBy.join(', ')} ORDER BY ${groupBy.join(', ')}` : ''}`;
}

export interface AcctRowDb {
  namespace?: string;
  workflow?: string;
  task?: string;
  worker?: string;
  attempts: number | string;
  succeeded: number | string | null;
  failed: number | string | null;
  wall_ms: number | string | null;
  cpu_ms: number | string | null;
  measured: number | string;
  max_rss_bytes: number | string | null;
  mean_rss_bytes: number | string | null;
}

/** Rows of acctSql; with no grouping, a range with no attempt gives none (not a row of zeros). */
export function toAcctRows(rows: AcctRowDb[], f: AcctFilter): AcctRow[] {
  const keys = acctKeys(f.by);
  const out: AcctRow[] = [];
  for (const r of rows) {
    const attempts = Number(r.attempts);
    if (attempts === 0) continue;
    const row: AcctRow = {
      attempts,
      succeeded: Number(r.succeeded ?? 0),
      failed: Number(r.failed ?? 0),
      wallMs: Number(r.wall_ms ?? 0),
      cpuMs: Number(r.cpu_ms ?? 0),
      measured: Number(r.measured),
      maxRssBytes: r.max_rss_bytes === null ? null : Number(r.max_rss_bytes),
      meanRssBytes: r.mean_rss_bytes === null ? null : Math.round(Number(r.mean_rss_bytes)),
    };
    for (const k of keys) row[k] = String(r[k]);
    out.push(row);
  }
  return out;
}

/** The groups summed into one row (their keys dropped): `gantry acct`'s total line. */
export function acctTotal(rows: readonly AcctRow[]): AcctRow {
  const t: AcctRow = { attempts: 0, succeeded: 0, failed: 0, wallMs: 0, cpuMs: 0, measured: 0, maxRssBytes: null, meanRssBytes: null };
  let rssSum = 0;
  let withRss = 0;
  for (const r of rows) {
    t.attempts += r.attempts;
    t.succeeded += r.succeeded;
    t.failed += r.failed;
    t.wallMs += r.wallMs;
    t.cpuMs += r.cpuMs;
    t.measured += r.measured;
    if (r.maxRssBytes !== null) t.maxRssBytes = Math.max(t.maxRssBytes ?? 0, r.maxRssBytes);
    // a group's mean is over its measured attempts (CPU time and peak are written together)
    if (r.meanRssBytes !== null) {
      rssSum += r.meanRssBytes * r.measured;
      withRss += r.measured;
    }
  }
  t.meanRssBytes = withRss ? Math.round(rssSum / withRss) : null;
  return t;
}
