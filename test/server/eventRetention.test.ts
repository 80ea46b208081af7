// Event retention on both stores: the scheduler's prune duty deletes the
// outbox's events older than the retention age or beyond the newest N, in
// batches, never one the notify duty has not read; a stream asked to resume
// below what was pruned answers 410 naming the oldest kept event (after= and
// Last-Event-ID alike), one a little later streams as before.
import { it, expect, beforeEach, afterEach } from 'vitest';
import { onEveryStore } from '../helpers/cluster.js';
import { apiHarness, type ApiHarness } from '../helpers/apiHarness.js';
import { PruneDuty } from '../../src/scheduler/pruneDuty.js';
import { collectDeliveries } from '../../src/notify/collect.js';
import { silentLogger } from '../../src/log.js';
import { makeToken } from '../helpers/cluster.js';

const DAY = 86_400_000;
const WF = `name: three\ntasks:\n  a: { run: 'true' }\n  b: { run: 'true', needs: [a] }\n  c: { run: 'true', needs: [b] }\n`;

onEveryStore('event retention', (storeName) => {
  let h: ApiHarness;
  beforeEach(async () => {
    h = await apiHarness(storeName);
    await h.apply(WF);
  });
  afterEach(async () => {
    await h.close();
  });

  /** every event id in the outbox, oldest first */
  const ids = async () => (await h.store.readEvents(0, {}, 100_000)).map((e) => e.id);

  it('prunes events past the age in batches, never past the notify cursor; older resume points answer 410', async () => {
    const realNow = Date.now();
    h.clock.t = realNow - 10 * DAY;
    for (let i = 0; i < 5; i++) await h.startRun('three');
    const old = await ids();
    h.clock.t = realNow;
    for (let i = 0; i < 2; i++) await h.startRun('three');
    const young = (await ids()).filter((id) => !old.includes(id));
    expect(old.length).toBeGreaterThan(10);
    expect(young.length).toBeGreaterThan(3);

    const duty = new PruneDuty(h.store, { maxAgeMs: 7 * DAY, maxCount: 1_000_000, batch: 4 }, silentLogger());
    // the notify duty has read nothing yet: a notification may still need every event
    expect(await duty.pass()).toBe(0);
    expect(await ids()).toEqual([...old, ...young]);
    while ((await collectDeliveries(h.store)) > 0) {
      // the notify duty reads the outbox
    }
    expect(await duty.pass()).toBe(old.length);
    expect(await ids()).toEqual(young);
    const horizon = await h.store.eventHorizon();
    expect(horizon).toEqual({ prunedThrough: old[old.length - 1], oldest: young[0] });

    // after= below the horizon: 410, naming the oldest kept event, in the error shape of a 400
    const gone = await h.call<{ error: string; issues: { path: string; message: string }[]; oldest: number }>('GET', '/api/v1/events?after=0');
    expect(gone.status).toBe(410);
    expect(gone.body.error).toContain(`the oldest kept event is ${young[0]}`);
    expect(gone.body.issues).toEqual([{ path: 'query.after', message: gone.body.error }]);
    expect(gone.body.oldest).toBe(young[0]);
    // the same through Last-Event-ID
    const token = await makeToken(h.store, 'admin', [], 'sse');
    const byHeader = await h.app.inject({ method: 'GET', url: '/api/v1/events', headers: { authorization: `Bearer ${token}`, 'last-event-id': String(old[0]) } });
    expect(byHeader.statusCode).toBe(410);
    expect(byHeader.json().issues[0].path).toBe('header.last-event-id');

    // resuming at the horizon streams the kept events
    const url = await h.listen();
    const ac = new AbortController();
    const res = await fetch(`${url}/api/v1/events?after=${horizon.prunedThrough}`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    let text = '';
    const reader = res.body!.getReader();
    while (!text.includes(`id: ${young[young.length - 1]}\n`)) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    expect([...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual(young);
  });

  it('keeps at most the newest N events; the pruned count shows in the horizon', async () => {
    for (let i = 0; i < 4; i++) await h.startRun('three');
    while ((await collectDeliveries(h.store)) > 0) {
      // caught up
    }
    const all = await ids();
    const duty = new PruneDuty(h.store, { maxAgeMs: 7 * DAY, maxCount: 5, batch: 3 }, silentLogger());
    expect(await duty.pass()).toBe(all.length - 5);
    expect(await ids()).toEqual(all.slice(-5));
    expect((await h.store.eventHorizon()).prunedThrough).toBe(all[all.length - 6]);
    // nothing more to do: a second pass deletes nothing
    expect(await duty.pass()).toBe(0);
    // a stream resuming exactly at the horizon is fine; one event below it is not
    const at = (await h.store.eventHorizon()).prunedThrough;
    expect((await h.call('GET', `/api/v1/events?after=${at - 1}`)).status).toBe(410);
  });
});
