// Small shared pieces: state badges and colours, progress bars, links, times,
// and a virtualised list (only the rows in view are in the DOM).
import { useEffect, useRef, useState, type CSSProperties, type MouseEvent, type ReactNode } from 'react';
import { navigate } from './router';
import type { Counts, JobState } from './api';

export const STATE_ORDER: JobState[] = ['running', 'retrying', 'queued', 'pending', 'failed', 'succeeded', 'cancelled', 'skipped'];

export function StateBadge({ state, title }: { state: string; title?: string }) {
  return (
    <span className={`badge st-${state}`} data-state={state} title={title}>
      {state}
    </span>
  );
}

export function Link({ to, children, className, title }: { to: string; children: ReactNode; className?: string; title?: string }) {
  return (
    <a
      href={to}
      className={className}
      title={title}
      onClick={(e: MouseEvent) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

/** A bar split by job state, in the state colours. */
export function CountsBar({ counts, total, height = 8 }: { counts: Counts; total?: number; height?: number }) {
  const sum = total ?? Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
  if (!sum) return <div className="bar" style={{ height }} />;
  const order: JobState[] = ['succeeded', 'skipped', 'failed', 'cancelled', 'running', 'retrying', 'queued', 'pending'];
  return (
    <div className="bar" style={{ height }} title={order.filter((s) => counts[s]).map((s) => `${s} ${counts[s]}`).join(', ')}>
      {order.map((s) => (counts[s] ? <div key={s} className={`seg bg-${s}`} style={{ width: `${(100 * counts[s]!) / sum}%` }} /> : null))}
    </div>
  );
}

export function doneOf(c: Counts): number {
  return (c.succeeded ?? 0) + (c.skipped ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0);
}
export function totalOf(c: Counts): number {
  return Object.values(c).reduce((a, b) => a + (b ?? 0), 0);
}

export function time(ms: number | null | undefined): string {
  if (!ms) return '—';
  const d = new Date(ms);
  const today = new Date();
  const hms = d.toLocaleTimeString(undefined, { hour12: false });
  return d.toDateString() === today.toDateString() ? hms : `${d.toISOString().slice(0, 10)} ${hms}`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return '—';
  return `${duration(now - ms)} ago`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)}${units[i]}`;
}

/** A run's ETA as the API gives it (when it does): epoch ms, an ISO string, or an object with `at`. */
export function etaText(eta: unknown): string {
  if (eta === null || eta === undefined) return '—';
  const v = typeof eta === 'object' ? ((eta as { at?: unknown; eta?: unknown }).at ?? (eta as { eta?: unknown }).eta) : eta;
  if (typeof v === 'number') return v > 1e12 ? time(v) : duration(v);
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isFinite(t) ? time(t) : v;
  }
  return '—';
}

export function ErrorNote({ error }: { error: string | null }) {
  return error ? <div className="error-note">{error}</div> : null;
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** Fixed-height rows; renders only those in view (plus a margin). */
export function VirtualList<T>({
  count,
  rowHeight,
  height,
  row,
  className,
  style,
  testId,
}: {
  count: number;
  rowHeight: number;
  height: number | string;
  row: (index: number) => ReactNode;
  className?: string;
  style?: CSSProperties;
  testId?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const [view, setView] = useState(600);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setView(el.clientHeight));
    ro.observe(el);
    setView(el.clientHeight);
    return () => ro.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(top / rowHeight) - 10);
  const last = Math.min(count, Math.ceil((top + view) / rowHeight) + 10);
  const rows: ReactNode[] = [];
  for (let i = first; i < last; i++)
    rows.push(
      <div key={i} className="vrow" style={{ position: 'absolute', top: i * rowHeight, height: rowHeight, left: 0, right: 0 }}>
        {row(i)}
      </div>,
    );
  return (
    <div ref={ref} className={`vlist ${className ?? ''}`} style={{ height, overflowY: 'auto', position: 'relative', ...style }} onScroll={(e) => setTop(e.currentTarget.scrollTop)} data-testid={testId}>
      <div style={{ height: count * rowHeight, position: 'relative' }}>{rows}</div>
    </div>
  );
}

export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}
