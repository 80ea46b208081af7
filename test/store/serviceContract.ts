// The service transitions of the Store contract (see ServiceState in
// src/store/types.ts), run on every store with a controllable clock: start,
// claim (queues, resources, fencing), exits with backoff, flapping, stop,
// a lost worker's service moved, the outbox, stale instances refused.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { parseDefinitionSource } from '../../src/spec/parse.js';
import type { Definition } from '../../src/spec/model.js';
import { NotFoundError, StaleFenceError, type LogLine, type Store, type StoreSignal } from '../../src/store/types.js';
import { FLAP_DEATHS, SERVICE_LOG_INSTANCE_BYTES, SERVICE_LOG_INSTANCES, SERVICE_LOG_LINE_BYTES, SERVICE_STABLE_MS, TRIM_MARK } from '../../src/store/serviceRows.js';
import { TestClock, type StoreFactory } from './contract.js';

function service(source: string): Definition {
  const r = parseDefinitionSource(source, '/srv/bots/svc.yaml');
  if (!r.definition) throw new Error(r.errors.map((e) => e.message).join('; '));
  return r.definition;
}
const NOTIFIER = `service: notifier
namespace: bots
run: python3 notifier.py --channel '#dumps'
resources: { cpu: 0.5, memory: 256M }
restart: { delay: 1s, max_delay: 10s }
`;
const W1 = { name: 'w1', host: 'h1', queues: ['default'] };
const W2 = { name: 'w2', host: 'h2', queues: ['default'] };
const FREE = { cpu: 4, memoryBytes: 8 * 2 ** 30, custom: {} };
const LEASE = 30_000;

export function serviceContract(name: string, makeFactory: () => StoreFactory): void {
  describe(`Store contract, services: ${name}`, () => {
    let factory: StoreFactory;
    let store: Store;
    let clock: TestClock;
    let signals: StoreSignal[];

    beforeEach(async () => {
      factory = makeFactory();
      clock = new TestClock();
      store = await factory.create(clock);
      signals = [];
      store.subscribe((s) => signals.push(s));
      await store.putDefinitions([service(NOTIFIER)]);
    });
    afterEach(async () => {
      await store.close();
      await factory.cleanup();
    });

    const ref = (fence: number) => ({ namespace: 'bots', name: 'notifier', fence });
    async function startAndClaim(worker = W1) {
      await store.startService('bots', 'notifier');
      const { claimed } = await store.claimServices(worker, FREE, LEASE);
      expect(claimed).toHaveLength(1);
      return claimed[0]!;
    }

    it('an applied service is listed down until started; start makes it claimable at once, by a worker of its queue that fits it', async () => {
      const [listed] = await store.listServices();
      expect(listed).toMatchObject({ namespace: 'bots', name: 'notifier', desired: 'down', state: 'down', restarts: 0, spec: null });
      await expect(store.startService('bots', 'nope')).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.stopService('bots', 'nope')).rejects.toBeInstanceOf(NotFoundError);

      const started = await store.startService('bots', 'notifier');
      expect(started).toMatchObject({ desired: 'up', state: 'starting', nextStartAt: clock.now() });
      expect(signals.some((s) => s.type === 'services')).toBe(true);
      // another queue, or too little memory: not taken
      expect((await store.claimServices({ ...W1, queues: ['bigmem'] }, FREE, LEASE)).claimed).toEqual([]);
      expect((await store.claimServices(W1, { cpu: 4, memoryBytes: 100 * 2 ** 20, custom: {} }, LEASE)).claimed).toEqual([]);
      const { claimed } = await store.claimServices(W1, FREE, LEASE);
      expect(claimed).toHaveLength(1);
      expect(claimed[0]!.spec.command).toEqual({ kind: 'shell', script: "python3 notifier.py --channel '#dumps'" });
      // one instance: nobody else gets it
      expect((await store.claimServices(W2, FREE, LEASE)).claimed).toEqual([]);
      await store.setServicePid(ref(claimed[0]!.fence), 4242);
      expect(await store.getService('bots', 'notifier')).toMatchObject({ state: 'up', worker: 'w1', host: 'h1', pid: 4242, startedAt: clock.now(), fence: claimed[0]!.fence });
    });

    it('an exit schedules its restart at now + delay × 2^(n-1) (capped by max_delay), quick deaths in a row; one that stayed up resets n', async () => {
      let c = await startAndClaim();
      const delays: number[] = [];
      for (let i = 0; i < 4; i++) {
        clock.advance(500);
        const row = await store.serviceExited(ref(c.fence), { code: 3, signal: null, reason: 'exit code 3' });
        expect(row.state).toBe('backoff');
        expect(row.restarts).toBe(i + 1);
        expect(row.lastExit).toMatchObject({ code: 3, at: clock.now(), reason: 'exit code 3' });
        delays.push(row.nextStartAt! - clock.now());
        // not due yet: nothing to claim, and the worker learns when to look again
        const early = await store.claimServices(W1, FREE, LEASE);
        expect(early).toEqual({ claimed: [], nextStartAt: row.nextStartAt });
        clock.advance(row.nextStartAt! - clock.now());
        c = (await store.claimServices(W2, FREE, LEASE)).claimed[0]!; // any worker restarts it
        expect(c.restarts).toBe(i + 1);
      }
      expect(delays).toEqual([1000, 2000, 4000, 8000]);
      // up long enough: the next exit restarts after the base delay again
      clock.advance(SERVICE_STABLE_MS + 1);
      const row = await store.serviceExited(ref(c.fence), { code: 0, signal: null, reason: null });
      expect(row).toMatchObject({ state: 'backoff', quickDeaths: 0, flapping: false });
      expect(row.nextStartAt! - clock.now()).toBe(1000);
    });

    it(`${FLAP_DEATHS} quick deaths in a row: flapping, restarted every max_delay until an instance stays up`, async () => {
      let c = await startAndClaim();
      let row;
      for (let i = 0; i < FLAP_DEATHS + 1; i++) {
        clock.advance(100);
        row = await store.serviceExited(ref(c.fence), { code: 1, signal: null, reason: 'boom' });
        clock.advance(row.nextStartAt! - clock.now());
        c = (await store.claimServices(W1, FREE, LEASE)).claimed[0]!;
        if (i === FLAP_DEATHS - 2) expect(row.state).toBe('backoff');
      }
      expect(row).toMatchObject({ state: 'flapping', flapping: true, restarts: FLAP_DEATHS + 1 });
      expect(await store.getService('bots', 'notifier')).toMatchObject({ state: 'up', flapping: true });
      clock.advance(100);
      row = await store.serviceExited(ref(c.fence), { code: 1, signal: null, reason: 'boom' });
      expect(row.nextStartAt! - clock.now()).toBe(10_000); // max_delay
      const events = (await store.readEvents(0, {})).filter((e) => e.kind === 'service');
      expect(events.every((e) => e.service === 'bots/notifier' && e.runId === 0)).toBe(true);
      expect(events.filter((e) => e.state === 'flapping').length).toBeGreaterThan(0);
      // audit: every restart, and flapping once per entry into it, in the same transactions
      const audit = await store.listAudit({ action: 'service' });
      expect(audit.filter((a) => a.action === 'service.restarted')).toHaveLength(FLAP_DEATHS + 2);
      const flapped = audit.filter((a) => a.action === 'service.flapping');
      expect(flapped).toHaveLength(1);
      expect(flapped[0]).toMatchObject({ actor: 'worker:w1', namespace: 'bots', subject: 'notifier' });
      expect(flapped[0]!.reason).toMatch(/5 quick deaths in a row/);
      // it stays up: no longer flapping
      clock.advance(row.nextStartAt! - clock.now());
      c = (await store.claimServices(W1, FREE, LEASE)).claimed[0]!;
      clock.advance(SERVICE_STABLE_MS + 1);
      row = await store.serviceExited(ref(c.fence), { code: 1, signal: null, reason: 'boom' });
      expect(row).toMatchObject({ state: 'backoff', flapping: false, quickDeaths: 0 });
    });

    it('stop: a running instance goes to stopping (its worker is told: renew answers it), its exit makes it down; a waiting one is down at once', async () => {
      const c = await startAndClaim();
      signals.length = 0;
      const stopping = await store.stopService('bots', 'notifier');
      expect(stopping).toMatchObject({ desired: 'down', state: 'stopping', worker: 'w1' });
      expect(signals.some((s) => s.type === 'services')).toBe(true);
      expect(await store.renewServices('w1', [ref(c.fence)], LEASE)).toEqual([ref(c.fence)]);
      clock.advance(2_000);
      const down = await store.serviceExited(ref(c.fence), { code: null, signal: 'SIGTERM', reason: 'stopped' });
      expect(down).toMatchObject({ state: 'down', desired: 'down', worker: null, nextStartAt: null, restarts: 0 });
      expect(down.lastExit).toMatchObject({ signal: 'SIGTERM', reason: 'stopped' });
      expect((await store.claimServices(W1, FREE, LEASE)).claimed).toEqual([]);

      // waiting for its restart, then stopped: down, never claimed
      const c2 = await startAndClaim();
      await store.serviceExited(ref(c2.fence), { code: 1, signal: null, reason: null });
      expect((await store.stopService('bots', 'notifier')).state).toBe('down');
      clock.advance(60_000);
      expect((await store.claimServices(W1, FREE, LEASE)).claimed).toEqual([]);
    });

    it('fencing: an older instance cannot report an exit, renew its lease or give the service back', async () => {
      const c1 = await startAndClaim();
      await store.serviceExited(ref(c1.fence), { code: 1, signal: null, reason: null });
      clock.advance(60_000);
      const c2 = (await store.claimServices(W2, FREE, LEASE)).claimed[0]!;
      expect(c2.fence).toBeGreaterThan(c1.fence);
      await expect(store.serviceExited(ref(c1.fence), { code: 0, signal: null, reason: null })).rejects.toBeInstanceOf(StaleFenceError);
      expect(await store.renewServices('w1', [ref(c1.fence)], LEASE)).toEqual([ref(c1.fence)]);
      expect(await store.releaseService(ref(c1.fence), 'late')).toBe(false);
      expect(await store.renewServices('w2', [ref(c2.fence)], LEASE)).toEqual([]);
      expect(await store.getService('bots', 'notifier')).toMatchObject({ state: 'up', worker: 'w2' });
    });

    it('a dead worker, or a lapsed lease: the service is claimable again at once by another worker (moved, a restart); a stopping one goes down', async () => {
      const c = await startAndClaim();
      expect(await store.reapLostServices([])).toEqual([]); // lease still good
      const [moved] = await store.reapLostServices(['w1']);
      expect(moved).toMatchObject({ state: 'starting', worker: null, restarts: 1, nextStartAt: clock.now() });
      expect(moved!.lastExit?.reason).toMatch(/worker w1 lost/);
      expect(await store.listAudit({ action: 'service.restarted' })).toMatchObject([
        { actor: 'scheduler', namespace: 'bots', subject: 'notifier', reason: 'worker w1 lost: moved to another worker' },
      ]);
      const again = (await store.claimServices(W2, FREE, LEASE)).claimed[0]!;
      expect(again.fence).toBeGreaterThan(c.fence);
      // its lease lapses (w2 stopped heartbeating)
      clock.advance(LEASE + 1);
      expect((await store.reapLostServices([]))[0]).toMatchObject({ state: 'starting', restarts: 2 });
      // a worker going away politely gives it back: not a restart
      const c3 = (await store.claimServices(W1, FREE, LEASE)).claimed[0]!;
      expect(await store.releaseService(ref(c3.fence), 'worker w1 stopped')).toBe(true);
      expect(await store.getService('bots', 'notifier')).toMatchObject({ state: 'starting', restarts: 2 });
      const c4 = (await store.claimServices(W2, FREE, LEASE)).claimed[0]!;
      await store.stopService('bots', 'notifier');
      expect((await store.reapLostServices(['w2']))[0]).toMatchObject({ state: 'down', desired: 'down' });
      expect(c4.fence).toBeGreaterThan(c3.fence);
    });

    const out = (line: string, at = clock.now()): LogLine => ({ stream: 'stdout', ts: at, line });
    const texts = (lines: { line: string }[]) => lines.map((l) => l.line);

    it('output lines are stored per instance: the last one by default, earlier ones with restarts, the exit lines with the exit, in one transaction', async () => {
      const c1 = await startAndClaim();
      await store.appendServiceLogs(ref(c1.fence), [out('connecting'), { stream: 'stderr', ts: clock.now(), line: 'cannot reach irc.example.org' }]);
      expect(signals.some((s) => s.type === 'logs')).toBe(true);
      clock.advance(500);
      const row = await store.serviceExited(ref(c1.fence), { code: 3, signal: null, reason: 'exit code 3' }, [{ stream: 'system', ts: clock.now(), line: '[gantry] exited: code 3' }]);
      expect(row.lastExit).toMatchObject({ code: 3, instance: c1.fence });
      expect(texts(await store.readServiceLogs({ namespace: 'bots', name: 'notifier' }))).toEqual(['connecting', 'cannot reach irc.example.org', '[gantry] exited: code 3']);

      clock.advance(row.nextStartAt! - clock.now());
      const c2 = (await store.claimServices(W1, FREE, LEASE)).claimed[0]!;
      await store.appendServiceLogs(ref(c2.fence), [out('connecting again')]);
      const last = await store.readServiceLogs({ namespace: 'bots', name: 'notifier' });
      expect(last).toMatchObject([{ instance: c2.fence, stream: 'stdout', line: 'connecting again' }]);
      const both = await store.readServiceLogs({ namespace: 'bots', name: 'notifier', restarts: 1 });
      expect(both.map((l) => [l.instance, l.line])).toEqual([
        [c1.fence, 'connecting'],
        [c1.fence, 'cannot reach irc.example.org'],
        [c1.fence, '[gantry] exited: code 3'],
        [c2.fence, 'connecting again'],
      ]);
      // the crashed instance alone, its last lines, and reading on from a line id
      expect(texts(await store.readServiceLogs({ namespace: 'bots', name: 'notifier', instance: c1.fence, tail: 2 }))).toEqual(['cannot reach irc.example.org', '[gantry] exited: code 3']);
      expect(texts(await store.readServiceLogs({ namespace: 'bots', name: 'notifier', restarts: 1, afterId: both[2]!.id }))).toEqual(['connecting again']);
      expect(await store.readServiceLogs({ namespace: 'bots', name: 'notifier', restarts: 1, afterId: both[3]!.id })).toEqual([]);
      await expect(store.readServiceLogs({ namespace: 'bots', name: 'nope' })).rejects.toBeInstanceOf(NotFoundError);
    });

    it('fencing: lines of an instance that ended, or of an older one, are refused and nothing of them is stored; an exit refused takes its lines with it', async () => {
      const c1 = await startAndClaim();
      await store.serviceExited(ref(c1.fence), { code: 1, signal: null, reason: null });
      await expect(store.appendServiceLogs(ref(c1.fence), [out('late line of an ended instance')])).rejects.toBeInstanceOf(StaleFenceError);
      clock.advance(60_000);
      const c2 = (await store.claimServices(W2, FREE, LEASE)).claimed[0]!;
      await expect(store.appendServiceLogs(ref(c1.fence), [out('zombie')])).rejects.toBeInstanceOf(StaleFenceError);
      await expect(store.serviceExited(ref(c1.fence), { code: 0, signal: null, reason: null }, [out('zombie exit')])).rejects.toBeInstanceOf(StaleFenceError);
      await store.appendServiceLogs(ref(c2.fence), [out('current')]);
      const all = await store.readServiceLogs({ namespace: 'bots', name: 'notifier', restarts: 5 });
      expect(texts(all)).toEqual(['current']);
      // a stopping instance still writes (its SIGTERM handler's last words)
      await store.stopService('bots', 'notifier');
      await store.appendServiceLogs(ref(c2.fence), [out('bye')]);
      expect(texts(await store.readServiceLogs({ namespace: 'bots', name: 'notifier' }))).toEqual(['current', 'bye']);
    });

    it(`a lost worker's instance ends with a line saying so; only the last ${SERVICE_LOG_INSTANCES} instances keep their lines`, async () => {
      const c1 = await startAndClaim();
      await store.appendServiceLogs(ref(c1.fence), [out('working')]);
      await store.reapLostServices(['w1']);
      const lines = await store.readServiceLogs({ namespace: 'bots', name: 'notifier' });
      expect(lines.map((l) => [l.stream, l.line])).toEqual([
        ['stdout', 'working'],
        ['system', expect.stringMatching(/worker w1 lost .*presumed dead/)],
      ]);
      expect((await store.getService('bots', 'notifier'))!.lastExit).toMatchObject({ instance: c1.fence, reason: 'worker w1 lost' });
      let c = c1;
      for (let i = 0; i < SERVICE_LOG_INSTANCES + 2; i++) {
        clock.advance(SERVICE_STABLE_MS + 1); // up long enough: restarted after the base delay, never flapping
        c = (await store.claimServices(W1, FREE, LEASE)).claimed[0]!;
        await store.appendServiceLogs(ref(c.fence), [out(`instance ${c.fence}`)]);
        clock.advance(SERVICE_STABLE_MS + 1);
        await store.serviceExited(ref(c.fence), { code: 1, signal: null, reason: null });
      }
      const kept = await store.readServiceLogs({ namespace: 'bots', name: 'notifier', restarts: 100 });
      const instances = [...new Set(kept.map((l) => l.instance))];
      // the last claim dropped what was older than its last SERVICE_LOG_INSTANCES
      expect(instances).toHaveLength(SERVICE_LOG_INSTANCES);
      expect(instances.at(-1)).toBe(c.fence);
      expect(instances[0]).toBe(c.fence - SERVICE_LOG_INSTANCES + 1);
    });

    it(`an instance keeps its last ${SERVICE_LOG_INSTANCE_BYTES / 2 ** 20} MB: its oldest lines give way, a mark says where; a huge line is cut`, async () => {
      const c = await startAndClaim();
      const line = (n: number) => `${String(n).padStart(6, '0')} ${'x'.repeat(1000)}`;
      const total = Math.ceil((SERVICE_LOG_INSTANCE_BYTES * 1.5) / 1008);
      for (let n = 0; n < total; n += 500) {
        const batch: LogLine[] = [];
        for (let k = n; k < Math.min(total, n + 500); k++) batch.push(out(line(k)));
        await store.appendServiceLogs(ref(c.fence), batch);
      }
      const kept = await store.readServiceLogs({ namespace: 'bots', name: 'notifier', limit: 50_000 });
      const bytes = kept.reduce((a, l) => a + Buffer.byteLength(l.line) + 1, 0);
      expect(bytes).toBeLessThanOrEqual(SERVICE_LOG_INSTANCE_BYTES);
      expect(bytes).toBeGreaterThan(SERVICE_LOG_INSTANCE_BYTES / 2);
      // the mark first, then the newest lines in order, the very last one included
      expect(kept[0]).toMatchObject({ stream: 'system', line: TRIM_MARK });
      const numbers = kept.slice(1).map((l) => Number(l.line.slice(0, 6)));
      expect(numbers.at(-1)).toBe(total - 1);
      expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
      expect(numbers[0]).toBeGreaterThan(0);
      // a line without end (no newline for a long time) is cut, and says so
      await store.appendServiceLogs(ref(c.fence), [out('y'.repeat(SERVICE_LOG_LINE_BYTES * 3))]);
      const [cut] = await store.readServiceLogs({ namespace: 'bots', name: 'notifier', tail: 1 });
      expect(cut!.line).toMatch(/^y+ \[gantry: line cut at \d+ bytes\]$/);
      expect(Buffer.byteLength(cut!.line)).toBeLessThan(SERVICE_LOG_LINE_BYTES + 100);
    });

    it('service state changes are in the outbox, in order, naming the service', async () => {
      const before = await store.lastEventId();
      const c = await startAndClaim();
      await store.serviceExited(ref(c.fence), { code: 1, signal: null, reason: null });
      await store.stopService('bots', 'notifier');
      const events = (await store.readEvents(before, {})).filter((e) => e.kind === 'service');
      expect(events.map((e) => e.state)).toEqual(['starting', 'up', 'backoff', 'down']);
      expect(events.every((e) => e.service === 'bots/notifier')).toBe(true);
    });

    it('service events say where, why and how: started on its worker, killed and restarted, moved off a lost worker, stopped; a namespace filter keeps them', async () => {
      const before = await store.lastEventId();
      const c = await startAndClaim();
      clock.advance(2_000);
      await store.serviceExited(ref(c.fence), { code: null, signal: 'SIGKILL', reason: null });
      clock.advance(1_000);
      const c2 = (await store.claimServices(W2, FREE, LEASE)).claimed[0]!;
      await store.reapLostServices(['w2']);
      const c3 = (await store.claimServices(W1, FREE, LEASE)).claimed[0]!;
      await store.stopService('bots', 'notifier');
      await store.serviceExited(ref(c3.fence), { code: 0, signal: null, reason: 'stopped' });
      expect(c2.fence).toBeLessThan(c3.fence);

      const events = await store.readEvents(before, { namespace: 'bots' });
      expect(events.map((e) => [e.state, e.worker ?? null, e.restarts])).toEqual([
        ['starting', null, 0],
        ['up', 'w1', 0],
        ['backoff', 'w1', 1],
        ['up', 'w2', 1],
        ['starting', 'w2', 2],
        ['up', 'w1', 2],
        ['stopping', 'w1', 2],
        ['down', 'w1', 2],
      ]);
      expect(events.every((e) => e.kind === 'service' && e.service === 'bots/notifier' && e.runId === 0)).toBe(true);
      expect(events[1]!.reason).toBe('started on worker w1 (h1)');
      expect(events[2]!.reason).toBe('killed by SIGKILL after 2 s up; restart in 1000 ms');
      expect(events[2]!.exit).toEqual({ code: null, signal: 'SIGKILL' });
      expect(events[3]!.reason).toBe('started on worker w2 (h2), restart 1');
      expect(events[4]!.reason).toBe('worker w2 lost: moved to another worker');
      expect(events[7]!.reason).toBe('stopped (exit code 0)');
      expect(events[7]!.exit).toEqual({ code: 0, signal: null });
      expect(events.filter((e) => e.exit).length).toBe(2);
      // other namespaces, workflows and labels: not these
      expect(await store.readEvents(before, { namespace: 'dumps' })).toEqual([]);
      expect(await store.readEvents(before, { workflow: 'notifier' })).toEqual([]);
      expect(await store.readEvents(before, { kinds: ['service'] })).toEqual(events);
      expect(await store.readEvents(before, { kinds: ['worker'] })).toEqual([]);
    });
  });
}
