// The notification tables on both stores: subscriptions, the deliveries queue
// (one per event and target, a cursor moved with them, claims as leases fenced
// by their attempt number), and webhook secrets.
import { it, expect, beforeEach, afterEach } from 'vitest';
import { NotFoundError, type DeliveryInput, type Store } from '../../src/store/types.js';
import { onEveryStore } from '../helpers/cluster.js';
import { openTestStore } from '../helpers/testStore.js';
import { TestClock } from './contract.js';

onEveryStore('Notification tables', (name) => {
  let store: Store;
  let clock: TestClock;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    clock = new TestClock();
    ({ store, cleanup } = await openTestStore(name, { clock, prefix: 'gantry-notify-' }));
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  const delivery = (eventKey: string, target: string): DeliveryInput => ({
    eventKey,
    event: 'failed',
    target,
    namespace: 'dumps',
    runId: 7,
    subject: null,
    source: 'notify',
    payload: { event: 'failed', run: { id: 7 } },
  });

  it('keeps subscriptions with their filters, lists them by namespace, deletes them once', async () => {
    const a = await store.createSubscription({ namespace: 'dumps', workflow: null, labels: { project: 'dewiki' }, events: ['failed', 'succeeded'], target: 'mailto:de@example.org', createdBy: null });
    const b = await store.createSubscription({ namespace: null, workflow: 'x', labels: {}, events: ['started'], target: 'https://hooks.example.org/x', createdBy: 'token 3' });
    expect(a).toMatchObject({ namespace: 'dumps', labels: { project: 'dewiki' }, events: ['failed', 'succeeded'], createdAt: clock.now() });
    expect((await store.listSubscriptions({})).map((s) => s.id)).toEqual([a.id, b.id]);
    expect((await store.listSubscriptions({ namespace: 'dumps' })).map((s) => s.id)).toEqual([a.id]);
    expect(await store.deleteSubscription(a.id)).toEqual(a);
    await expect(store.deleteSubscription(a.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.listSubscriptions({})).toEqual([b]);
  });

  it('queues one delivery per event and target with its cursor; a cursor moved by another scheduler writes nothing', async () => {
    expect(await store.notifyCursor('events')).toBe(0);
    expect(await store.queueDeliveries({ name: 'events', from: 0, to: 10 }, [delivery('run-event:3', 'mailto:a@example.org'), delivery('run-event:3', 'mailto:b@example.org')])).toBe(2);
    expect(await store.notifyCursor('events')).toBe(10);
    // a second leader that read from 0 too: refused as a whole
    expect(await store.queueDeliveries({ name: 'events', from: 0, to: 10 }, [delivery('run-event:3', 'mailto:c@example.org')])).toBeNull();
    // the same event and target again (a reprocessed event): ignored
    expect(await store.queueDeliveries({ name: 'events', from: 10, to: 12 }, [delivery('run-event:3', 'mailto:a@example.org')])).toBe(0);
    expect(await store.notifyCursor('audit')).toBe(0);
    const all = await store.listDeliveries({});
    expect(all.map((d) => [d.eventKey, d.target, d.state, d.attempts])).toEqual([
      ['run-event:3', 'mailto:a@example.org', 'pending', 0],
      ['run-event:3', 'mailto:b@example.org', 'pending', 0],
    ]);
    expect(all[0]!.payload).toEqual({ event: 'failed', run: { id: 7 } });
  });

  it('claims due deliveries as leases: not claimed again until the lease lapses; a stale attempt cannot settle; retry, then fail for good', async () => {
    await store.queueDeliveries({ name: 'audit', from: 0, to: 1 }, [delivery('audit:1', 'https://h.example.org/1')]);
    const [d] = await store.claimDeliveries(10, 30_000);
    expect(d).toMatchObject({ attempts: 1, nextAttemptAt: clock.now() + 30_000 });
    expect(await store.claimDeliveries(10, 30_000)).toEqual([]);
    expect(await store.nextDeliveryAt()).toBe(clock.now() + 30_000);
    clock.advance(30_000);
    const [again] = await store.claimDeliveries(10, 30_000); // its sender died: another takes it
    expect(again!.attempts).toBe(2);
    expect(await store.settleDelivery(d!.id, 1, { sent: true })).toBe(false); // the first claim is stale
    expect(await store.settleDelivery(d!.id, 2, { sent: false, error: 'HTTP 500', retryAt: clock.now() + 1000 })).toBe(true);
    expect((await store.listDeliveries({}))[0]).toMatchObject({ state: 'pending', lastError: 'HTTP 500', nextAttemptAt: clock.now() + 1000 });
    expect(await store.claimDeliveries(10, 30_000)).toEqual([]);
    clock.advance(1000);
    const [third] = await store.claimDeliveries(10, 30_000);
    expect(await store.settleDelivery(third!.id, 3, { sent: false, error: 'HTTP 404', retryAt: null })).toBe(true);
    expect((await store.listDeliveries({ state: 'failed' }))[0]).toMatchObject({ attempts: 3, lastError: 'HTTP 404', sentAt: null });
    expect(await store.nextDeliveryAt()).toBeNull();
  });

  it('records a sent delivery once, and lists by state, run and namespace, newest first', async () => {
    await store.queueDeliveries({ name: 'events', from: 0, to: 5 }, [delivery('run-event:1', 'mailto:a@example.org'), { ...delivery('run-event:2', 'mailto:a@example.org'), runId: 8, namespace: 'bots' }]);
    const claimed = await store.claimDeliveries(1, 10_000);
    expect(claimed.map((d) => d.eventKey)).toEqual(['run-event:1']);
    expect(await store.settleDelivery(claimed[0]!.id, 1, { sent: true })).toBe(true);
    expect(await store.settleDelivery(claimed[0]!.id, 1, { sent: true })).toBe(false);
    expect((await store.listDeliveries({ state: 'sent' })).map((d) => [d.eventKey, d.sentAt])).toEqual([['run-event:1', clock.now()]]);
    expect((await store.listDeliveries({ runId: 8 })).map((d) => d.eventKey)).toEqual(['run-event:2']);
    expect((await store.listDeliveries({ namespace: 'dumps' })).map((d) => d.eventKey)).toEqual(['run-event:1']);
    expect((await store.listDeliveries({ newestFirst: true, limit: 1 })).map((d) => d.eventKey)).toEqual(['run-event:2']);
  });

  it('makes a webhook secret on first use, keeps it, and rotates it on request', async () => {
    const a = await store.webhookSecret('dumps');
    expect(a.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(await store.webhookSecret('dumps')).toEqual(a);
    expect((await store.webhookSecret('bots')).secret).not.toBe(a.secret);
    const rotated = await store.webhookSecret('dumps', true);
    expect(rotated.secret).not.toBe(a.secret);
    expect(await store.webhookSecret('dumps')).toEqual(rotated);
  });
});
