// Log shipping (src/worker/logShipper.ts) into a real store, on both stores:
// lines arrive in batches in order, an attempt's log stops at its size cap with
// one clear truncation mark, and a stale attempt's lines are refused.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LogShipper } from '../../src/worker/logShipper.js';
import { onEveryStore } from '../helpers/cluster.js';
import { apiHarness, type ApiHarness } from '../helpers/apiHarness.js';

onEveryStore('log shipping', (storeName) => {
  let h: ApiHarness;
  let fence: number;
  let jobId: string;
  beforeEach(async () => {
    h = await apiHarness(storeName);
    await h.apply(`name: l\ntasks:\n  a: { run: "true" }\n`);
    await h.startRun('l');
    await h.store.registerWorker({ name: 'w', host: 'h', pid: process.pid, queues: ['default'], slots: 1, resources: { cpu: 1, memoryBytes: null, custom: {} } });
    const [c] = await h.store.claimJobs({ name: 'w', host: 'h', queues: ['default'] }, 1, 60_000);
    fence = c!.fence;
    jobId = c!.job.id;
  });
  afterEach(async () => {
    await h.close();
  });

  it('batches lines in order; past the size cap one truncation mark, then nothing', async () => {
    let stale = 0;
    const errors: unknown[] = [];
    const shipper = new LogShipper((lines) => h.store.appendLogs(fence, lines), { intervalMs: 50, maxBatch: 7, maxBytes: 100, onStale: () => stale++, onError: (e) => errors.push(e) });
    // 10 bytes each with the newline: 10 lines fit in 100 bytes, the 11th does not
    for (let i = 0; i < 20; i++) shipper.push('stdout', `line ${String(i).padStart(4, '0')}`);
    await shipper.flush();
    const lines = (await h.store.readLogs({ jobId })).map((l) => [l.stream, l.line]);
    expect(lines).toEqual([
      ...Array.from({ length: 10 }, (_, i) => ['stdout', `line ${String(i).padStart(4, '0')}`]),
      ['system', '[gantry] log truncated: this attempt wrote more than 100 bytes'],
    ]);
    expect(stale).toBe(0);
    expect(errors).toEqual([]);
  });

  it('the lines of an attempt that lost its job are refused, once, and it is told', async () => {
    let stale = 0;
    const shipper = new LogShipper((lines) => h.store.appendLogs(fence, lines), { intervalMs: 50, maxBatch: 100, maxBytes: 10_000, onStale: () => stale++, onError: () => undefined });
    shipper.push('stdout', 'before');
    await shipper.flush();
    await h.store.cancelJob(jobId);
    shipper.push('stdout', 'after');
    await shipper.flush();
    shipper.push('stdout', 'later');
    await shipper.flush();
    expect((await h.store.readLogs({ jobId })).map((l) => l.line)).toEqual(['before']);
    expect(stale).toBe(1);
  });

  it('a batch the store refuses (disk full) leaves a mark counting its lines in the next batch', async () => {
    let refuse = true;
    const errors: unknown[] = [];
    const shipper = new LogShipper(
      async (lines) => {
        // the first batch fails as a full disk would; later ones reach the real store
        if (refuse) {
          refuse = false;
          throw new Error('SQLITE_FULL: database or disk is full');
        }
        await h.store.appendLogs(fence, lines);
      },
      { intervalMs: 50, maxBatch: 100, maxBytes: 10_000, onStale: () => undefined, onError: (e) => errors.push(e) },
    );
    for (const l of ['one', 'two', 'three']) shipper.push('stdout', l);
    await shipper.flush();
    shipper.push('stdout', 'four');
    await shipper.flush();
    expect((await h.store.readLogs({ jobId })).map((l) => l.line)).toEqual([
      '[gantry] 3 lines lost here: the store refused them (SQLITE_FULL: database or disk is full)',
      'four',
    ]);
    expect(errors).toHaveLength(1);
  });

  it('a store that falls behind: what waits for it stays bounded; lines past the bound are dropped and a mark says how many', async () => {
    // the store is held back until `release` (a slow or unreachable database)
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const shipper = new LogShipper(async (lines) => {
      await held;
      await h.store.appendLogs(fence, lines);
    }, { intervalMs: 20, maxBatch: 5, maxBytes: Infinity, maxPendingBytes: 100, onStale: () => undefined, onError: () => undefined });
    // 10 bytes each: 10 wait for the store, the next 5 are dropped
    for (let i = 0; i < 15; i++) shipper.push('stdout', `line ${String(i).padStart(4, '0')}`);
    release();
    await shipper.flush();
    shipper.push('stdout', 'caught up');
    await shipper.flush();
    expect((await h.store.readLogs({ jobId })).map((l) => l.line)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `line ${String(i).padStart(4, '0')}`),
      '[gantry] 5 lines dropped here: the store did not take them as fast as they came',
      'caught up',
    ]);
  });
});
