// Plain-text rendering for the CLI: aligned tables, times and durations.
import { formatDuration } from '../spec/duration.js';
import type { DeferredRun, Job, Run, StoreEvent } from '../store/types.js';
import type { RunEta } from '../server/eta.js';
import type { ScheduleSummary } from '../server/schedules.js';
import type { TaskProgress } from '../store/taskProgress.js';

export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function time(ms: number | null | undefined): string {
  if (!ms) return '';
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  const iso = d.toISOString().replace('T', ' ').slice(0, 19);
  return today ? iso.slice(11) : iso;
}

export function elapsed(from: number | null, to: number | null): string {
  if (!from) return '';
  return formatDuration((to ?? Date.now()) - from);
}

export function kv(o: Record<string, unknown>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

export function runLine(r: Run): string[] {
  const total = Object.values(r.counts).reduce((a, b) => a + (b ?? 0), 0);
  const done = (r.counts.succeeded ?? 0) + (r.counts.skipped ?? 0);
  return [String(r.id), r.namespace === 'default' ? r.workflow : `${r.namespace}/${r.workflow}`, r.state, `${done}/${total}`, time(r.createdAt), elapsed(r.startedAt, r.finishedAt), kv(r.labels)];
}
export const RUN_HEADERS = ['RUN', 'WORKFLOW', 'STATE', 'DONE', 'CREATED', 'DURATION', 'LABELS'];

export function jobLine(j: Job): string[] {
  const note =
    j.state === 'skipped' && j.skipReason === 'outputs_exist'
      ? 'outputs already exist'
      : j.state === 'retrying' && j.runAfter
        ? `retry at ${time(j.runAfter)}: ${j.error ?? ''}`
        : j.state === 'running' && j.progress !== null
          ? `${j.progress}%`
          : (j.error ?? '');
  return [j.id, j.state, String(j.attempts), j.worker ?? '', elapsed(j.startedAt, j.finishedAt), cpuText(j.cpuMs), bytesText(j.maxRssBytes), note.slice(0, 120)];
}
/** CPU: its latest finished attempt's CPU time (user + system); MAXRSS: that attempt's peak memory */
export const JOB_HEADERS = ['JOB', 'STATE', 'ATTEMPTS', 'WORKER', 'DURATION', 'CPU', 'MAXRSS', 'NOTE'];

/** CPU time as a duration (`850ms`, `1.2s`, `3h2m`); blank when not measured. */
export function cpuText(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '' : formatDuration(ms);
}

/** Bytes in binary units (`512 B`, `23.5 MiB`, `1.2 GiB`); blank when not measured. */
export function bytesText(n: number | null | undefined): string {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  let v = n / 1024;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 100 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A split task's line in `status`: its chunks done / total, what runs or failed, and how far it is overall; null for other tasks. */
export function chunksLine(t: TaskProgress): string | null {
  if (!t.chunks) return null;
  const c = t.chunks;
  const parts = [`${c.done}/${c.total} chunks done`];
  if (c.running) parts.push(`${c.running} running`);
  if (c.failed) parts.push(`${c.failed} failed`);
  const pct = t.progress !== null && c.done < c.total ? ` (${t.progress}%)` : '';
  return `${t.task}: ${parts.join(', ')}${pct}`;
}

/** A stage's line in the status of a big run: its copies (and chunks) done / total. */
export function stageLine(t: TaskProgress): string {
  const parts: string[] = [];
  const n = t.copies;
  if (n) {
    parts.push(`${n.done}/${n.total} done`);
    if (n.running) parts.push(`${n.running} running`);
    if (n.failed) parts.push(`${n.failed} failed`);
  } else parts.push(t.state);
  const chunks = chunksLine(t);
  return `${t.task}: ${parts.join(', ')}${chunks ? `; ${chunks.slice(t.task.length + 2)}` : ''}`;
}

export const TERMINAL_RUN = new Set(['succeeded', 'failed', 'cancelled']);

/** A full date and time in UTC: for times that may be days away. */
export function utcTime(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** A schedule's next start in its own zone and in UTC: `2026-03-29 03:00:00 Europe/Berlin (01:00:00 UTC)`. */
export function nextStartText(s: ScheduleSummary): string {
  if (s.nextAt === null || s.nextLocal === null) return 'never';
  if (s.timezone === 'UTC' || s.timezone === 'Etc/UTC') return utcTime(s.nextAt);
  const utc = new Date(s.nextAt).toISOString();
  const sameDay = utc.slice(0, 10) === s.nextLocal.slice(0, 10);
  return `${s.nextLocal.slice(0, 10)} ${s.nextLocal.slice(11, 19)} ${s.timezone} (${sameDay ? utc.slice(11, 19) : utc.replace('T', ' ').slice(0, 19)} UTC)`;
}

export function deferredLine(d: DeferredRun): string[] {
  return [
    String(d.id),
    d.namespace === 'default' ? d.workflow : `${d.namespace}/${d.workflow}`,
    d.state,
    utcTime(d.dueAt),
    d.runId === null ? '' : String(d.runId),
    kv(d.params),
    kv(d.labels),
    d.error ?? '',
  ];
}
export const DEFERRED_HEADERS = ['DEFERRED', 'WORKFLOW', 'STATE', 'STARTS', 'RUN', 'PARAMS', 'LABELS', 'NOTE'];

/** A time to the minute: `21:40` today, with its date otherwise (UTC, like `time`). */
export function minute(ms: number): string {
  return time(ms).slice(0, -3);
}

/** `ETA 21:40 (20:55–22:10), from 12 past runs, critical path a → b → c`; or why there is none. */
export function etaText(e: RunEta): string {
  if (!e.eta) return `ETA unknown: ${e.basis.reason ?? 'no estimate'}`;
  const { likely, low, high } = e.eta;
  const parts = [
    `ETA ${minute(likely)} (${minute(low)}–${minute(high)})`,
    `from ${e.basis.pastRuns} past run${e.basis.pastRuns === 1 ? '' : 's'}`,
    ...(e.basis.criticalPath.length ? [`critical path ${e.basis.criticalPath.join(' → ')}`] : []),
  ];
  const missing = e.basis.tasksWithoutHistory;
  return parts.join(', ') + (missing.length ? `; no history for ${missing.join(', ')} (counted as no time)` : '');
}

/** One line per state change (`gantry runs --watch`, `gantry workers --watch`, `gantry events`). */
export function eventLine(e: StoreEvent): string {
  const why = e.reason ? `: ${e.reason}` : '';
  switch (e.kind) {
    case 'run':
      return `${time(e.ts)} run ${e.runId} ${e.state}`;
    case 'job':
      return `${time(e.ts)} job ${e.jobId} ${e.state}`;
    case 'worker':
      return `${time(e.ts)} worker ${e.worker} ${e.state}${why}`;
    case 'service':
      return `${time(e.ts)} service ${e.service} ${e.state}${why}`;
  }
}

/** A failed job with its tries (`gantry failures`): retries are the tries after the first. */
export function failureLine(j: Job): string[] {
  return [j.id, String(j.attempts), String(Math.max(0, j.attempts - 1)), j.worker ?? '', time(j.startedAt), time(j.finishedAt), (j.error ?? '').split('\n')[0]!.slice(0, 120)];
}
export const FAILURE_HEADERS = ['JOB', 'ATTEMPTS', 'RETRIES', 'WORKER', 'STARTED', 'STOPPED', 'ERROR'];
