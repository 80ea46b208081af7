// The Atom feed (RFC 4287) of GET /api/v1/feed.atom: finished runs and failures
// (jobs that used all their retries, services restarted or flapping), newest
// first, each entry linking to the run in the web UI.
import type { AuditEntry, Run } from '../store/types.js';

export interface FeedEntry {
  id: string;
  title: string;
  updated: number;
  link: string | null;
  summary: string;
  category: string;
}

function esc(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const iso = (ms: number) => new Date(ms).toISOString();
const name = (ns: string, n: string) => (ns === 'default' ? n : `${ns}/${n}`);

export function runEntry(r: Run, base: string): FeedEntry {
  const failed = r.counts.failed ?? 0;
  const labels = Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(' ');
  return {
    id: `urn:gantry:run:${r.id}:${r.finishedAt}`,
    title: `run ${r.id} of ${name(r.namespace, r.workflow)} ${r.state}`,
    updated: r.finishedAt ?? r.createdAt,
    link: `${base}/runs/${r.id}`,
    summary:
      `Run ${r.id} of ${name(r.namespace, r.workflow)} ${r.state}` +
      (failed ? ` with ${failed} failed job${failed > 1 ? 's' : ''}` : '') +
      (labels ? ` (${labels})` : '') +
      (r.startedAt !== null && r.finishedAt !== null ? `; it ran ${Math.round((r.finishedAt - r.startedAt) / 1000)} s.` : '.'),
    category: r.state,
  };
}

export function failureEntry(a: AuditEntry, base: string): FeedEntry {
  return {
    id: `urn:gantry:audit:${a.id}`,
    title: a.action === 'retries.exhausted' ? `job ${a.jobId} failed after all its retries` : `service ${a.subject} ${a.action === 'service.flapping' ? 'is flapping' : 'restarted'}`,
    updated: a.at,
    link: a.runId !== null ? `${base}/runs/${a.runId}` : null,
    summary: a.reason,
    category: a.action,
  };
}

export function atomFeed(o: { title: string; selfUrl: string; base: string; entries: FeedEntry[] }): string {
  const updated = o.entries.length ? Math.max(...o.entries.map((e) => e.updated)) : 0;
  const out = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<feed xmlns="http://www.w3.org/2005/Atom">',
    `  <id>${esc(o.selfUrl)}</id>`,
    `  <title>${esc(o.title)}</title>`,
    `  <updated>${iso(updated)}</updated>`,
    `  <link rel="self" type="application/atom+xml" href="${esc(o.selfUrl)}"/>`,
    `  <link rel="alternate" type="text/html" href="${esc(o.base)}/"/>`,
    '  <author><name>Gantry</name></author>',
    '  <generator>Gantry</generator>',
  ];
  for (const e of o.entries) {
    out.push(
      '  <entry>',
      `    <id>${esc(e.id)}</id>`,
      `    <title>${esc(e.title)}</title>`,
      `    <updated>${iso(e.updated)}</updated>`,
      ...(e.link ? [`    <link rel="alternate" type="text/html" href="${esc(e.link)}"/>`] : []),
      `    <category term="${esc(e.category)}"/>`,
      `    <summary>${esc(e.summary)}</summary>`,
      '  </entry>',
    );
  }
  out.push('</feed>');
  return out.join('\n') + '\n';
}
