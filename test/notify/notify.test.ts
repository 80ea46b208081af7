// Notifications end to end on both stores, with the real things: a real SMTP
// server on loopback (smtp-server) receiving the mail, a real HTTP receiver
// checking each webhook's signature (and failing once to prove the retry), the
// Atom feed read by a real feed parser (rss-parser), the audit log over HTTP;
// a real service process killed with kill -9 for `restarted` and `flapping`.
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import Parser from 'rss-parser';
import { cluster, makeToken, onEveryStore, type Cluster } from '../helpers/cluster.js';
import type { AuditEntry, Delivery, Run, Subscription } from '../../src/store/types.js';
import { FLAP_DEATHS } from '../../src/store/serviceRows.js';

interface Mail {
  from: string;
  to: string[];
  subject: string;
  body: string;
}

/** A real SMTP server on loopback that keeps what it receives. */
async function smtpServer(): Promise<{ port: number; mails: Mail[]; close: () => Promise<void> }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const [head, ...rest] = raw.split('\r\n\r\n');
        const headers = head!.replace(/\r\n[ \t]+/g, ' ');
        const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(headers)?.[1] ?? '';
        let body = rest.join('\r\n\r\n');
        if (/quoted-printable/i.test(header('Content-Transfer-Encoding')))
          body = Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: header('Subject'),
          body: body.replace(/\r\n/g, '\n'),
        });
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

interface Hook {
  event: string;
  delivery: string;
  signature: string;
  raw: string;
  body: Record<string, unknown> & { id: number; run?: { id: number; state: string; url?: string } };
}

/** A real HTTP receiver: records each POST; answers 500 to the first `failFirst` of them. */
async function webhookReceiver(failFirst: number): Promise<{ url: string; hooks: Hook[]; statuses: number[]; close: () => Promise<void> }> {
  const hooks: Hook[] = [];
  const statuses: number[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      hooks.push({
        event: String(req.headers['x-gantry-event']),
        delivery: String(req.headers['x-gantry-delivery']),
        signature: String(req.headers['x-gantry-signature']),
        raw,
        body: JSON.parse(raw) as Hook['body'],
      });
      const status = hooks.length <= failFirst ? 500 : 204;
      statuses.push(status);
      res.writeHead(status).end(status === 500 ? 'try again' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hooks/dumps`, hooks, statuses, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** What a receiver does: HMAC-SHA256 of the raw body under the shared secret, compared in constant time. */
function signatureValid(secret: string, raw: string, header: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

async function until<T>(what: string, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const PUBLIC = 'http://gantry.example.org';

onEveryStore('Notifications', (name) => {
  let smtp: Awaited<ReturnType<typeof smtpServer>>;
  let c: Cluster;
  beforeAll(async () => {
    smtp = await smtpServer();
  });
  afterAll(async () => {
    await smtp.close();
  });
  beforeEach(async () => {
    smtp.mails.length = 0;
    c = await cluster(name, {
      notify: { smtp: `smtp://127.0.0.1:${smtp.port}`, mailFrom: 'gantry@example.org', publicUrl: PUBLIC, retryDelayMs: 200, pollMs: 200 },
      publicUrl: PUBLIC,
    });
  });
  afterEach(async () => {
    await c.close();
  });

  const inject = async <T>(method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) => {
    const r = await c.app.inject({ method, url, headers: { authorization: `Bearer ${c.token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
    return { status: r.statusCode, body: (String(r.headers['content-type'] ?? '').includes('json') ? r.json() : r.body) as T };
  };
  /** starts a run of a workflow of namespace dumps */
  const start = async (workflow: string, params: Record<string, unknown> = {}) => {
    const r = await inject<Run>('POST', '/api/v1/runs', { workflow, namespace: 'dumps', params });
    expect(r.status).toBe(201);
    return r.body;
  };

  it('mails a failed run (and its retries exhausted) to its own notify target and to the subscription matching its labels, over SMTP', async () => {
    c.write(
      'dump.yaml',
      `name: dump\nnamespace: dumps\nparams:\n  wiki: { required: true }\nlabels: { project: "{{ params.wiki }}" }\n` +
        `notify: { on: [failed, retries_exhausted], to: ["mailto:ops@example.org"] }\n` +
        `tasks:\n  stubs:\n    run: echo "disk full on /data" >&2; exit 3\n    retries: { max: 1, delay: 1s }\n  ok: { run: "true" }\n`,
    );
    expect((await c.apply('dump.yaml')).status).toBe(200);
    const de = await inject<Subscription>('POST', '/api/v1/subscriptions', { namespace: 'dumps', labels: { project: 'dewiki' }, events: ['failed'], target: 'mailto:de@example.org' });
    expect(de.status).toBe(201);
    const en = await inject<Subscription>('POST', '/api/v1/subscriptions', { namespace: 'dumps', labels: { project: 'enwiki' }, events: ['failed'], target: 'mailto:en@example.org' });
    expect(en.status).toBe(201);

    const run = await start('dump', { wiki: 'dewiki' });
    expect((await c.waitRun(run.id)).state).toBe('failed');
    await until('three mails', () => smtp.mails.length >= 3 && smtp.mails);
    // a moment more: nothing else may come (not to en@, not twice)
    await new Promise((r) => setTimeout(r, 1000));
    const byTo = (to: string) => smtp.mails.filter((m) => m.to.includes(to));
    expect(smtp.mails).toHaveLength(3);
    expect(byTo('en@example.org')).toEqual([]);

    const [deMail] = byTo('de@example.org');
    expect(deMail!.from).toBe('gantry@example.org');
    expect(deMail!.subject).toBe(`[gantry] run ${run.id} of dumps/dump failed`);
    expect(deMail!.body).toContain(`Run:       ${run.id}`);
    expect(deMail!.body).toContain('Workflow:  dumps/dump');
    expect(deMail!.body).toContain('Labels:    project=dewiki');
    expect(deMail!.body).toContain('Failed jobs:');
    expect(deMail!.body).toMatch(new RegExp(`${run.id}:stubs  \\(2 attempts\\): exit code 3.*disk full on /data`));
    expect(deMail!.body).toContain(`${PUBLIC}/runs/${run.id}`);

    const ops = byTo('ops@example.org').map((m) => m.subject).sort();
    expect(ops).toEqual([`[gantry] run ${run.id} of dumps/dump failed`, `[gantry] run ${run.id} of dumps/dump has a job that used all its retries`]);
    const exhausted = byTo('ops@example.org').find((m) => m.subject.includes('retries'))!;
    expect(exhausted.body).toMatch(/all 1 retries used/);

    // each delivery is recorded as sent, once
    const deliveries = await until('deliveries recorded sent', async () => {
      const d = (await inject<{ deliveries: Delivery[] }>('GET', `/api/v1/deliveries?run=${run.id}`)).body.deliveries;
      return d.length === 3 && d.every((x) => x.state === 'sent') && d;
    });
    expect(deliveries.map((d) => [d.event, d.target, d.source]).sort()).toEqual(
      [
        ['failed', 'mailto:de@example.org', `subscription:${de.body.id}`],
        ['failed', 'mailto:ops@example.org', 'notify'],
        ['retries_exhausted', 'mailto:ops@example.org', 'notify'],
      ].sort(),
    );

    // the audit log over HTTP: the retry, then the retries exhausted, by the worker
    const audit = (await inject<{ entries: AuditEntry[] }>('GET', `/api/v1/audit?run=${run.id}&order=asc`)).body.entries;
    expect(audit.map((a) => [a.action, a.jobId])).toEqual([
      ['retry.scheduled', `${run.id}:stubs`],
      ['retries.exhausted', `${run.id}:stubs`],
    ]);
    expect(audit[0]!.actor).toMatch(/^worker:/);
    expect(audit[0]!.namespace).toBe('dumps');
  });

  it('posts signed webhooks for a run started and succeeded, retries the one answered 500, and records each delivery', async () => {
    const receiver = await webhookReceiver(1);
    try {
      c.write('hello.yaml', `name: hello\nnamespace: dumps\nnotify: { on: [started, succeeded], to: ["${receiver.url}"] }\ntasks:\n  a: { run: "true" }\n`);
      expect((await c.apply('hello.yaml')).status).toBe(200);
      const { secret } = (await inject<{ secret: string }>('POST', '/api/v1/namespaces/dumps/webhook-secret', {})).body;
      const run = await start('hello');
      expect((await c.waitRun(run.id)).state).toBe('succeeded');
      // started and succeeded, and the one refused (500) sent again
      await until('three posts', () => receiver.hooks.length >= 3);
      for (const h of receiver.hooks) expect(signatureValid(secret, h.raw, h.signature)).toBe(true);
      expect(signatureValid('not the secret', receiver.hooks[0]!.raw, receiver.hooks[0]!.signature)).toBe(false);
      const first = receiver.hooks[0]!;
      const retried = receiver.hooks.filter((h) => h.delivery === first.delivery);
      expect(retried).toHaveLength(2);
      expect(retried[1]!.raw).toBe(first.raw); // the same body, byte for byte
      expect(receiver.statuses.slice(0, 2)).toEqual([500, 204]);
      const events = [...new Set(receiver.hooks.map((h) => h.event))].sort();
      expect(events).toEqual(['started', 'succeeded']);
      const done = receiver.hooks.find((h) => h.event === 'succeeded')!.body;
      expect(done).toMatchObject({ event: 'succeeded', namespace: 'dumps', run: { id: run.id, workflow: 'hello', state: 'succeeded', url: `${PUBLIC}/runs/${run.id}` } });
      expect(done.id).toBe(Number(receiver.hooks.find((h) => h.event === 'succeeded')!.delivery));

      const deliveries = await until('deliveries recorded', async () => {
        const d = (await inject<{ deliveries: Delivery[] }>('GET', `/api/v1/deliveries?run=${run.id}&state=sent`)).body.deliveries;
        return d.length === 2 && d;
      });
      const firstRecord = deliveries.find((d) => String(d.id) === first.delivery)!;
      expect(firstRecord).toMatchObject({ state: 'sent', attempts: 2, lastError: null });
      expect(deliveries.find((d) => d !== firstRecord)!.attempts).toBe(1);

      // a rotated secret signs later deliveries
      const rotated = (await inject<{ secret: string }>('POST', '/api/v1/namespaces/dumps/webhook-secret', { rotate: true })).body.secret;
      expect(rotated).not.toBe(secret);
      const again = await start('hello');
      await c.waitRun(again.id);
      const late = await until('the next run posted', () => receiver.hooks.find((h) => h.body.run?.id === again.id && h.event === 'succeeded'));
      expect(signatureValid(rotated, late.raw, late.signature)).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('a service killed with kill -9: a signed `restarted` webhook (and mail) with its last output; quick deaths in a row: a signed `flapping`', async () => {
    const receiver = await webhookReceiver(0);
    const pidFile = path.join(c.dir, 'bot.pids');
    const pids = () => (fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').split(/\s+/).filter(Boolean).map(Number) : []);
    const killed: number[] = [];
    try {
      c.write(
        'bot.yaml',
        `service: bot\nnamespace: bots\nrun: echo "bot $$ connected"; echo $$ >> ${pidFile}; exec sleep 600\nrestart: { delay: 100ms, max_delay: 500ms }\n` +
          `notify: { on: [restarted, flapping], to: ["${receiver.url}"] }\n`,
      );
      expect((await c.apply('bot.yaml')).status).toBe(200);
      const sub = await inject<Subscription>('POST', '/api/v1/subscriptions', { namespace: 'bots', events: ['restarted'], target: 'mailto:bots@example.org' });
      expect(sub.status).toBe(201);
      const { secret } = (await inject<{ secret: string }>('POST', '/api/v1/namespaces/bots/webhook-secret', {})).body;
      expect((await inject('POST', '/api/v1/services/bot/start?namespace=bots', {})).status).toBe(200);
      /** waits for the next instance and kills it with SIGKILL, as the OOM killer or an operator would */
      const killNext = async () => {
        const pid = await until(`instance ${killed.length + 1}`, () => pids()[killed.length]);
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      };

      await killNext();
      const restarted = await until('the restarted webhook', () => receiver.hooks.find((h) => h.event === 'restarted'));
      expect(signatureValid(secret, restarted.raw, restarted.signature)).toBe(true);
      expect(signatureValid('not the secret', restarted.raw, restarted.signature)).toBe(false);
      expect(restarted.body).toMatchObject({ event: 'restarted', namespace: 'bots', service: { namespace: 'bots', name: 'bot' }, reason: expect.stringMatching(/137|SIGKILL/) });
      // why it died, from anywhere: the end of the killed instance's output
      const lastLines = restarted.body.lastLines as { stream: string; line: string }[];
      expect(lastLines.map((l) => l.line)).toContain(`bot ${killed[0]} connected`);
      expect(lastLines.at(-1)).toMatchObject({ stream: 'system', line: expect.stringMatching(/ended after [\d.]+ s up: (exit code 137|killed by SIGKILL)/) });
      const mail = await until('the restarted mail', () => smtp.mails.find((m) => m.to.includes('bots@example.org')));
      expect(mail.subject).toBe('[gantry] service bots/bot was restarted');
      expect(mail.body).toContain('Its last output:');
      expect(mail.body).toContain(`bot ${killed[0]} connected`);

      // each instance killed within a second of its start: quick deaths in a row, flapping at the FLAP_DEATHS-th
      while (killed.length < FLAP_DEATHS) await killNext();
      const flapping = await until('the flapping webhook', () => receiver.hooks.find((h) => h.event === 'flapping'));
      expect(signatureValid(secret, flapping.raw, flapping.signature)).toBe(true);
      expect(flapping.body).toMatchObject({ event: 'flapping', namespace: 'bots', service: { name: 'bot' }, reason: expect.stringMatching(new RegExp(`${FLAP_DEATHS} quick deaths in a row`)) });
      await until('every restart posted', () => receiver.hooks.filter((h) => h.event === 'restarted').length >= FLAP_DEATHS);
      // once each: one delivery per event and target, and flapping once for its entry into it
      expect(receiver.hooks.filter((h) => h.event === 'flapping')).toHaveLength(1);
      expect(new Set(receiver.hooks.map((h) => h.delivery)).size).toBe(receiver.hooks.length);
      expect((await inject<{ status: number }>('POST', '/api/v1/services/bot/stop?namespace=bots', {})).status).toBe(200);
    } finally {
      for (const pid of pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      }
      await receiver.close();
    }
  });

  it('serves an Atom feed of finished runs and failures, filtered by namespace, workflow and label, that a feed parser reads', async () => {
    c.write(
      'dump.yaml',
      `name: dump\nnamespace: dumps\nparams:\n  wiki: { required: true }\n  fail: { default: "no" }\nlabels: { project: "{{ params.wiki }}" }\n` +
        `tasks:\n  a: { run: 'test "$GANTRY_PARAM_FAIL" = no', retries: { max: 1, delay: 1s } }\n`,
    );
    c.write('other.yaml', `name: other\ntasks:\n  a: { run: "true" }\n`);
    expect((await c.apply('dump.yaml', 'other.yaml')).status).toBe(200);
    const ok = await start('dump', { wiki: 'dewiki' });
    const bad = await start('dump', { wiki: 'dewiki', fail: 'yes' });
    const en = await start('dump', { wiki: 'enwiki' });
    const other = (await c.startRun('other')).body;
    for (const r of [ok, bad, en, other]) await c.waitRun(r.id);

    const parser = new Parser();
    const xml = (await inject<string>('GET', '/api/v1/feed.atom?namespace=dumps&label=project=dewiki')).body;
    const r = await c.app.inject({ method: 'GET', url: '/api/v1/feed.atom?namespace=dumps&label=project=dewiki', headers: { authorization: `Bearer ${c.token}` } });
    expect(r.headers['content-type']).toMatch(/^application\/atom\+xml/);
    const feed = await parser.parseString(xml);
    expect(feed.title).toBe('Gantry · dumps · project=dewiki: finished runs and failures');
    const titles = feed.items.map((i) => i.title);
    expect(titles).toContain(`run ${ok.id} of dumps/dump succeeded`);
    expect(titles).toContain(`run ${bad.id} of dumps/dump failed`);
    expect(titles).toContain(`job ${bad.id}:a failed after all its retries`);
    expect(titles.some((t) => t?.includes(`run ${en.id} `) || t?.includes(`run ${other.id} `))).toBe(false);
    expect(feed.items).toHaveLength(3);
    for (const item of feed.items) {
      expect(item.id).toMatch(/^urn:gantry:/);
      expect(Number.isNaN(Date.parse(item.isoDate ?? ''))).toBe(false);
    }
    const okItem = feed.items.find((i) => i.title === `run ${ok.id} of dumps/dump succeeded`)!;
    expect(okItem.link).toBe(`${PUBLIC}/runs/${ok.id}`);
    // newest first
    const dates = feed.items.map((i) => Date.parse(i.isoDate!));
    expect([...dates].sort((a, b) => b - a)).toEqual(dates);

    const byWorkflow = await parser.parseString((await inject<string>('GET', '/api/v1/feed.atom?workflow=other')).body);
    expect(byWorkflow.items.map((i) => i.title)).toEqual([`run ${other.id} of other succeeded`]);
    const all = await parser.parseString((await inject<string>('GET', '/api/v1/feed.atom')).body);
    expect(all.items).toHaveLength(5);
    expect((await inject('GET', '/api/v1/feed.atom?label=nokeyvalue')).status).toBe(400);
  });
});

describe('Subscriptions over HTTP (SQLite)', () => {
  let c: Cluster;
  let admin: { authorization: string };
  beforeAll(async () => {
    c = await cluster('SQLite');
    admin = { authorization: `Bearer ${c.token}` };
  });
  afterAll(async () => {
    await c.close();
  });

  it('refuses a bad event or target with a 400 naming it, and lists and removes subscriptions', async () => {
    const post = (payload: object) => c.app.inject({ method: 'POST', url: '/api/v1/subscriptions', headers: admin, payload });
    const badEvent = await post({ events: ['failed', 'exploded'], target: 'mailto:a@example.org' });
    expect(badEvent.statusCode).toBe(400);
    expect(badEvent.json().issues).toEqual([expect.objectContaining({ path: 'body.events.1', message: expect.stringContaining("'exploded' is not an event") })]);
    const badTarget = await post({ events: ['failed'], target: 'ftp://example.org/x' });
    expect(badTarget.statusCode).toBe(400);
    expect(badTarget.json().issues[0]).toMatchObject({ path: 'body.target', message: expect.stringContaining("'ftp://example.org/x'") });
    expect((await post({ events: ['failed'], target: 'mailto:not-an-address' })).statusCode).toBe(400);
    const ok = await post({ namespace: 'dumps', workflow: 'dump', labels: { lang: 'de' }, events: ['failed', 'failed', 'succeeded'], target: 'https://hooks.example.org/de' });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({ namespace: 'dumps', workflow: 'dump', labels: { lang: 'de' }, events: ['failed', 'succeeded'] });
    const list = await c.app.inject({ method: 'GET', url: '/api/v1/subscriptions?namespace=dumps', headers: admin });
    expect(list.json().subscriptions).toHaveLength(1);
    expect((await c.app.inject({ method: 'DELETE', url: `/api/v1/subscriptions/${ok.json().id}`, headers: admin })).statusCode).toBe(200);
    expect((await c.app.inject({ method: 'DELETE', url: `/api/v1/subscriptions/${ok.json().id}`, headers: admin })).statusCode).toBe(404);
    expect((await c.app.inject({ method: 'GET', url: '/api/v1/audit?limit=0', headers: admin })).statusCode).toBe(400);
    expect((await c.app.inject({ method: 'GET', url: '/api/v1/audit?since=yesterday', headers: admin })).json().issues[0].path).toBe('query.since');
  });

  it("a viewer subscribes to its namespace and removes its own subscriptions only; a namespace's webhook secret is its maintainers'", async () => {
    const viewer = await makeToken(c.store, 'viewer', ['dumps'], 'a viewer');
    const other = await makeToken(c.store, 'viewer', ['dumps'], 'another viewer');
    const maintainer = await makeToken(c.store, 'maintainer', ['dumps'], 'dumps maintainer');
    const sub = { events: ['failed'], target: 'mailto:me@example.org' };
    expect((await c.inject('POST', '/api/v1/subscriptions', { namespace: 'dumps', ...sub }, null)).status).toBe(401);
    const mine = await c.inject<Subscription>('POST', '/api/v1/subscriptions', { namespace: 'dumps', ...sub }, viewer);
    expect(mine.status).toBe(201);
    expect(mine.body.createdBy).toBe(viewer.split('_')[1]);
    // not its namespace, nor every namespace
    expect((await c.inject<{ error: string }>('POST', '/api/v1/subscriptions', { namespace: 'bots', ...sub }, viewer)).body.error).toMatch(/namespace 'bots'/);
    expect((await c.inject('POST', '/api/v1/subscriptions', { namespace: 'bots', ...sub }, viewer)).status).toBe(403);
    expect((await c.inject('POST', '/api/v1/subscriptions', sub, viewer)).status).toBe(403);
    // someone else's: another viewer may not remove it, the namespace's maintainer may
    expect((await c.inject('DELETE', `/api/v1/subscriptions/${mine.body.id}`, undefined, other)).status).toBe(403);
    expect((await c.inject('DELETE', `/api/v1/subscriptions/${mine.body.id}`, undefined, viewer)).status).toBe(200);
    const again = await c.inject<Subscription>('POST', '/api/v1/subscriptions', { namespace: 'dumps', ...sub }, viewer);
    expect((await c.inject('DELETE', `/api/v1/subscriptions/${again.body.id}`, undefined, maintainer)).status).toBe(200);
    expect((await c.store.listSubscriptions({})).map((s) => s.id)).not.toContain(again.body.id);
    // the webhook secret: not a viewer's, not another namespace's maintainer's
    expect((await c.inject('POST', '/api/v1/namespaces/dumps/webhook-secret', {}, viewer)).status).toBe(403);
    expect((await c.inject('POST', '/api/v1/namespaces/bots/webhook-secret', {}, maintainer)).status).toBe(403);
    expect((await c.inject<{ secret: string }>('POST', '/api/v1/namespaces/dumps/webhook-secret', {}, maintainer)).body.secret).toMatch(/\S{16,}/);
  });
});
