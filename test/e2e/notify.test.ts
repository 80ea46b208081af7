// The notification and audit commands end to end: a real `gantry up --smtp`
// process, the real CLI, a real SMTP server on loopback.
import { describe, it, expect, afterAll } from 'vitest';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { cleanup, gantry, gantryJson, startUp, tempDir, waitFor, writeFile } from './helpers.js';
import type { AuditEntry, Delivery, Subscription } from '../../src/store/types.js';

afterAll(cleanup);

describe('gantry subscribe / subscriptions / unsubscribe / deliveries / audit / namespace secret', () => {
  it('subscribes by label from the CLI, mails the failed run through gantry up --smtp, and shows deliveries and the audit log', async () => {
    const received: { to: string[]; raw: string }[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, done) {
        let raw = '';
        stream.on('data', (c: Buffer) => (raw += c.toString('utf8')));
        stream.on('end', () => {
          received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
          done();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    try {
      const port = (smtp.server.address() as AddressInfo).port;
      const dir = tempDir();
      writeFile(dir, 'wf/dump.yaml', `name: dump\nparams:\n  wiki: { required: true }\nlabels: { project: "{{ params.wiki }}" }\ntasks:\n  a: { run: "exit 4", retries: { max: 1, delay: 1s } }\n`);
      const up = await startUp(dir, ['--smtp', `smtp://127.0.0.1:${port}`, '--mail-from', 'gantry@example.org', '--public-url', 'https://gantry.example.org', 'wf'], 60_000);
      const o = { server: up.url, cwd: dir, timeoutMs: 60_000 };

      // bad usage: exit 2 naming the bad value
      const badEvent = await gantry(['subscribe', '--on', 'failed,exploded', 'mailto:me@example.org'], o);
      expect(badEvent.code).toBe(2);
      expect(badEvent.stderr).toMatch(/'exploded' is not an event/);
      const badTarget = await gantry(['subscribe', '--on', 'failed', 'gopher://example.org'], o);
      expect(badTarget.code).toBe(2);
      expect(badTarget.stderr).toMatch(/gopher:\/\/example\.org/);

      const { json: sub, res } = await gantryJson<Subscription>(['subscribe', '--label', 'project=dewiki', '--on', 'failed', 'mailto:de@example.org'], o);
      expect(res.code).toBe(0);
      expect(sub).toMatchObject({ namespace: null, labels: { project: 'dewiki' }, events: ['failed'], target: 'mailto:de@example.org' });
      const { json: other } = await gantryJson<Subscription>(['subscribe', '--label', 'project=enwiki', '--on', 'failed', 'mailto:en@example.org'], o);
      expect((await gantryJson<Subscription[]>(['subscriptions'], o)).json.map((s) => s.id)).toEqual([sub.id, other.id]);
      const listed = await gantry(['subscriptions'], o);
      expect(listed.stdout).toMatch(new RegExp(`${sub.id}\\s+failed\\s+\\*\\s+\\*\\s+project=dewiki\\s+mailto:de@example.org`));
      expect((await gantry(['unsubscribe', String(other.id)], o)).code).toBe(0);
      expect((await gantry(['unsubscribe', String(other.id)], o)).code).toBe(2);

      const run = await gantry(['run', 'dump', '-p', 'wiki=dewiki', '--wait'], o);
      expect(run.code).toBe(1);
      const mail = await waitFor('the mail', () => received.find((m) => m.to.includes('de@example.org')), { timeoutMs: 30_000 });
      expect(mail.raw).toMatch(/^Subject: \[gantry\] run 1 of dump failed/m);
      expect(mail.raw).toContain('https://gantry.example.org/runs/1');
      expect(received.some((m) => m.to.includes('en@example.org'))).toBe(false);

      const deliveries = await waitFor(
        'the delivery recorded sent',
        async () => {
          const d = (await gantryJson<Delivery[]>(['deliveries', '--run', '1'], o)).json;
          return d.length === 1 && d[0]!.state === 'sent' && d;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(deliveries[0]).toMatchObject({ event: 'failed', target: 'mailto:de@example.org', source: `subscription:${sub.id}`, attempts: 1 });
      expect((await gantry(['deliveries', '--state', 'lost'], o)).code).toBe(2);

      const { json: audit } = await gantryJson<AuditEntry[]>(['audit', '--run', '1'], o);
      expect(audit.map((a) => a.action)).toEqual(['retry.scheduled', 'retries.exhausted']);
      const text = await gantry(['audit', '--since', '1h'], o);
      expect(text.stdout).toMatch(/worker:\S+\s+retry\.scheduled\s+1:a\s+attempt 1 of job 1:a failed \(exit code 4\); retry 1 of 1 in/);
      expect((await gantry(['audit', '--since', 'yesterday'], o)).code).toBe(2);

      const secret = await gantry(['namespace', 'secret', 'default'], o);
      expect(secret.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
      expect((await gantry(['namespace', 'secret', 'default'], o)).stdout).toBe(secret.stdout);
      expect((await gantry(['namespace', 'secret', 'default', '--rotate'], o)).stdout).not.toBe(secret.stdout);
      await up.stop();
    } finally {
      await new Promise<void>((r) => smtp.close(() => r()));
    }
  }, 240_000);
});
