// The second half of the notify duty: sending one delivery. Mail goes over SMTP
// (nodemailer, the server from --smtp / GANTRY_SMTP); a URL gets a JSON POST
// signed with HMAC-SHA256 of the raw body under its namespace's secret:
// `X-Gantry-Signature: sha256=<hex>`. A receiver recomputes it over the bytes it
// received (before parsing) and compares in constant time.
import { createHmac } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Delivery, Store } from '../store/types.js';
import { parseTarget } from './targets.js';

export interface SenderOptions {
  /** SMTP server URL (smtp://host:port, smtps://user:pass@host); without it mail deliveries fail */
  smtp?: string | null;
  /** From: of notification mail */
  mailFrom?: string;
  /** the UI's public address: links to /runs/ID */
  publicUrl?: string | null;
  /** a webhook's answer is awaited this long */
  timeoutMs?: number;
}

/** A delivery that can never succeed as configured: failed at once, not retried. */
export class PermanentFailure extends Error {}

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

type Json = Record<string, unknown>;
const asObj = (v: unknown): Json | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null);

/** The link to a run in the web UI, when the public address is known. */
function runLink(publicUrl: string | null | undefined, runId: unknown): string | null {
  return publicUrl && typeof runId === 'number' ? `${publicUrl.replace(/\/+$/, '')}/runs/${runId}` : null;
}

/** What is POSTed: the stored payload, with the delivery's id and the run's link. */
export function webhookBody(d: Delivery, publicUrl?: string | null): string {
  const run = asObj(d.payload.run);
  const url = runLink(publicUrl, run?.id);
  return JSON.stringify({ id: d.id, ...d.payload, ...(run && url ? { run: { ...run, url } } : {}) });
}

function what(d: Delivery): string {
  const run = asObj(d.payload.run);
  const service = asObj(d.payload.service);
  if (service) return `service ${service.namespace === 'default' ? '' : `${String(service.namespace)}/`}${String(service.name)}`;
  if (run) return `run ${String(run.id)} of ${run.namespace === 'default' ? '' : `${String(run.namespace)}/`}${String(run.workflow)}`;
  return 'gantry';
}

const EVENT_WORDS: Record<string, string> = {
  started: 'started',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'was cancelled',
  retries_exhausted: 'has a job that used all its retries',
  restarted: 'was restarted',
  flapping: 'is flapping (restarting too often)',
};

/** A mail a person reads: subject says what happened to what; the body the run, its failed jobs and their errors, the link. */
export function mailMessage(d: Delivery, publicUrl?: string | null): { subject: string; text: string } {
  const subject = `[gantry] ${what(d)} ${EVENT_WORDS[d.event] ?? d.event}`;
  const lines: string[] = [];
  const run = asObj(d.payload.run);
  const at = typeof d.payload.at === 'number' ? new Date(d.payload.at).toISOString() : '';
  lines.push(`${what(d)} ${EVENT_WORDS[d.event] ?? d.event}${at ? ` at ${at}` : ''}.`, '');
  if (run) {
    lines.push(`Run:       ${String(run.id)}`, `Workflow:  ${String(run.namespace)}/${String(run.workflow)}`, `State:     ${String(run.state)}`);
    const labels = asObj(run.labels);
    if (labels && Object.keys(labels).length) lines.push(`Labels:    ${Object.entries(labels).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`);
    const params = asObj(run.params);
    if (params && Object.keys(params).length) lines.push(`Params:    ${Object.entries(params).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}`);
    if (typeof run.startedAt === 'number') lines.push(`Started:   ${new Date(run.startedAt).toISOString()}`);
    if (typeof run.finishedAt === 'number') lines.push(`Finished:  ${new Date(run.finishedAt).toISOString()}`);
  }
  if (typeof d.payload.reason === 'string') lines.push('', d.payload.reason);
  const failed = Array.isArray(d.payload.failedJobs) ? (d.payload.failedJobs as Json[]) : [];
  if (failed.length) {
    lines.push('', 'Failed jobs:');
    for (const j of failed) lines.push(`  ${String(j.id)}  (${String(j.attempts)} attempt${j.attempts === 1 ? '' : 's'}): ${String(j.error ?? 'no error recorded')}`);
  }
  const output = Array.isArray(d.payload.lastLines) ? (d.payload.lastLines as Json[]) : [];
  if (output.length) {
    lines.push('', 'Its last output:');
    for (const l of output) lines.push(`  ${l.stream === 'stderr' ? '! ' : ''}${String(l.line)}`);
  }
  const job = asObj(d.payload.job);
  if (job && job.error) lines.push('', `Job ${String(job.id)}: ${String(job.error)}`);
  const url = runLink(publicUrl, run?.id);
  if (url) lines.push('', url);
  return { subject, text: lines.join('\n') + '\n' };
}

export class Sender {
  private readonly transport: Transporter | null;

  constructor(private readonly store: Store, private readonly o: SenderOptions = {}) {
    this.transport = o.smtp ? nodemailer.createTransport(o.smtp) : null;
  }

  /** Sends it; throws on failure (PermanentFailure: no point retrying). */
  async send(d: Delivery): Promise<void> {
    const t = parseTarget(d.target);
    if ('error' in t) throw new PermanentFailure(t.error);
    if (t.kind === 'mail') {
      if (!this.transport) throw new PermanentFailure('no SMTP server configured: start the scheduler (or gantry up) with --smtp URL or GANTRY_SMTP');
      const m = mailMessage(d, this.o.publicUrl);
      await this.transport.sendMail({ from: this.o.mailFrom ?? 'gantry@localhost', to: t.address, subject: m.subject, text: m.text });
      return;
    }
    const body = webhookBody(d, this.o.publicUrl);
    const { secret } = await this.store.webhookSecret(d.namespace ?? 'default');
    const res = await fetch(t.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'gantry-webhook',
        'x-gantry-event': d.event,
        'x-gantry-delivery': String(d.id),
        'x-gantry-signature': signBody(secret, body),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
    });
    // the answer's body is not needed; reading it frees the connection
    const text = await res.text().catch(() => '');
    if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }

  close(): void {
    this.transport?.close();
  }
}
