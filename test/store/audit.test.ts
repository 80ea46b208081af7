// The audit log on both stores: each automatic action a transition takes is one
// row written in that transition, with actor, reason and what it concerns.
import { it, expect, beforeEach, afterEach } from 'vitest';
import path from 'node:path';
import { parseDefinitionSource } from '../../src/spec/parse.js';
import { prepareRun, startRun } from '../../src/server/runs.js';
import { StaleFenceError, type ClaimedJob, type Store } from '../../src/store/types.js';
import { onEveryStore } from '../helpers/cluster.js';
import { openTestStore } from '../helpers/testStore.js';
import { TestClock } from './contract.js';

const W = { name: 'w1', host: 'test-host', queues: ['default'] };
const LEASE = 10_000;

onEveryStore('Audit log', (name) => {
  let store: Store;
  let clock: TestClock;
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    clock = new TestClock();
    ({ store, dir, cleanup } = await openTestStore(name, { clock, prefix: 'gantry-audit-' }));
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  async function define(yaml: string): Promise<void> {
    const r = parseDefinitionSource(yaml, path.join(dir, `wf-${Math.random().toString(36).slice(2)}.yaml`));
    expect(r.errors).toEqual([]);
    await store.putDefinitions([r.definition!]);
  }
  async function claimOne(worker = W): Promise<ClaimedJob> {
    const [c] = await store.claimJobs(worker, 1, LEASE);
    expect(c).toBeDefined();
    return c!;
  }

  it('records a scheduled retry, then the retries exhausted, by the worker, with the run, job and namespace', async () => {
    await define(`name: flaky\nnamespace: dumps\ntasks:\n  a: { run: "false", retries: { max: 1, delay: 10s } }\n`);
    const run = await startRun(store, { workflow: 'flaky', namespace: 'dumps' }, clock.now());
    const first = await claimOne();
    await store.completeAttempt(first.fence, { state: 'failed', exitCode: 3, error: 'exit code 3: boom' });
    const [retry] = await store.listAudit({ runId: run.id });
    expect(retry).toMatchObject({
      at: clock.now(),
      actor: 'worker:w1',
      action: 'retry.scheduled',
      namespace: 'dumps',
      runId: run.id,
      jobId: `${run.id}:a`,
      subject: 'w1',
      details: { attempt: 1, retry: 1, maxRetries: 1, error: 'exit code 3: boom' },
    });
    expect(retry!.reason).toMatch(new RegExp(`^attempt 1 of job ${run.id}:a failed \\(exit code 3: boom\\); retry 1 of 1 in (9|10|11)(\\.\\d)?s$`));

    clock.advance(11_000);
    await store.promoteDueRetries();
    const second = await claimOne({ ...W, name: 'w2' });
    await store.completeAttempt(second.fence, { state: 'failed', exitCode: 3, error: 'exit code 3: boom' });
    const entries = await store.listAudit({ runId: run.id });
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['retry.scheduled', 'worker:w1'],
      ['retries.exhausted', 'worker:w2'],
    ]);
    expect(entries[1]!.reason).toBe(`attempt 2 of job ${run.id}:a failed (exit code 3: boom); all 1 retries used, the job failed`);
    expect(entries[1]!.id).toBeGreaterThan(entries[0]!.id);
  });

  it('records nothing for a job without retries, an error marked not retryable, or a stale completion', async () => {
    await define(`name: once\ntasks:\n  a: { run: "false" }\n  b: { run: "false", retries: 3 }\n`);
    await startRun(store, { workflow: 'once' }, clock.now());
    const a = await claimOne();
    const b = await claimOne();
    await store.completeAttempt(a.fence, { state: 'failed', exitCode: 1, error: 'no' });
    await store.completeAttempt(b.fence, { state: 'failed', exitCode: 1, error: 'bad template', retryable: false });
    await expect(store.completeAttempt(b.fence, { state: 'failed', exitCode: 1, error: 'again' })).rejects.toBeInstanceOf(StaleFenceError);
    expect(await store.listAudit({})).toEqual([]);
  });

  it('records a stalled job killed by its worker, and its retry', async () => {
    await define(`name: quiet\ntasks:\n  a: { run: "sleep 100", retries: 2 }\n`);
    const run = await startRun(store, { workflow: 'quiet' }, clock.now());
    const c = await claimOne();
    await store.completeAttempt(c.fence, { state: 'failed', exitCode: null, error: 'stalled: no output or progress for 5s', cause: 'stalled' });
    const entries = await store.listAudit({ runId: run.id });
    expect(entries.map((e) => e.action)).toEqual(['stall.killed', 'retry.scheduled']);
    expect(entries[0]).toMatchObject({ actor: 'worker:w1', jobId: `${run.id}:a`, reason: `job ${run.id}:a killed: stalled: no output or progress for 5s` });
  });

  it('records each reaped lease by the scheduler that reaped it, with the worker and why', async () => {
    await define(`name: lost\ntasks:\n  a: { run: "true" }\n  b: { run: "true" }\n`);
    const run = await startRun(store, { workflow: 'lost' }, clock.now());
    await store.registerWorker({ ...W, pid: 1, slots: 2, resources: { cpu: 2, memoryBytes: null, custom: {} } });
    const [x, y] = await store.claimJobs(W, 2, LEASE);
    clock.advance(LEASE + 2_000);
    const reaped = await store.reapLostAttempts([], undefined, 'scheduler:s1');
    expect(reaped).toHaveLength(2);
    const entries = await store.listAudit({ action: 'lease.reaped' });
    expect(entries.map((e) => e.jobId).sort()).toEqual([x!.job.id, y!.job.id].sort());
    for (const e of entries) {
      expect(e).toMatchObject({ actor: 'scheduler:s1', namespace: 'default', runId: run.id, subject: 'w1', details: { worker: 'w1', host: 'test-host' } });
      expect(e.reason).toMatch(/lost: its lease expired 2s ago \(worker w1 stopped heartbeating\); the job is queued again$/);
    }
    // a worker known dead: reaped before its lease ends
    const z = await claimOne();
    await store.reapLostAttempts(['w1']);
    const [last] = await store.listAudit({ action: 'lease.reaped', newestFirst: true, limit: 1 });
    expect(last).toMatchObject({ actor: 'store', jobId: z.job.id });
    expect(last!.reason).toMatch(/worker w1 died or was stopped/);
  });

  it('records a leadership taken over from another holder, not a renewal nor a first start', async () => {
    expect(await store.acquireLeadership('scheduler', 'a', 4000)).toBe(true);
    clock.advance(1000);
    expect(await store.acquireLeadership('scheduler', 'a', 4000)).toBe(true);
    expect(await store.acquireLeadership('scheduler', 'b', 4000)).toBe(false);
    expect(await store.listAudit({})).toEqual([]);
    clock.advance(6000);
    expect(await store.acquireLeadership('scheduler', 'b', 4000)).toBe(true);
    expect(await store.acquireLeadership('scheduler', 'c', 4000, 'b')).toBe(true);
    const entries = await store.listAudit({ action: 'leader' });
    expect(entries.map((e) => [e.action, e.actor, e.subject, e.details?.previous])).toEqual([
      ['leader.takeover', 'scheduler:b', 'scheduler', 'a'],
      ['leader.takeover', 'scheduler:c', 'scheduler', 'b'],
    ]);
    expect(entries[0]!.reason).toBe('took the scheduler leadership over from a: its lease expired 2s ago');
    expect(entries[1]!.reason).toBe('took the scheduler leadership over from b: its process is gone (lease still had 4s)');
  });

  it('records the note of a scheduled run with the run it started, in the same transaction, and not for a duplicate tick', async () => {
    await define(`name: nightly\nnamespace: dumps\ntasks:\n  a: { run: "true" }\n`);
    const tick = { namespace: 'dumps', workflow: 'nightly', schedule: 'k1', at: clock.now() - 3_600_000 };
    const note = { actor: 'scheduler:s1', action: 'catchup.run_created' as const, reason: 'missed', namespace: 'dumps', subject: 'k1' };
    const input = await prepareRun(store, { workflow: 'nightly', namespace: 'dumps' }, '20261124');
    const r = await store.startScheduledRun(tick, 'queue', input, note);
    expect(r.outcome).toBe('started');
    expect(await store.startScheduledRun(tick, 'queue', input, note)).toEqual({ outcome: 'duplicate' });
    const entries = await store.listAudit({ namespace: 'dumps' });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ ...note, runId: r.outcome === 'started' ? r.run.id : -1 });
  });

  it('lists by time, run, namespace and action, oldest first or newest first, a page at a time', async () => {
    await define(`name: many\ntasks:\n  a: { run: "false", retries: 5 }\n  b: { run: "false", retries: 5 }\n`);
    const r1 = await startRun(store, { workflow: 'many' }, clock.now());
    const t0 = clock.now();
    for (let i = 0; i < 2; i++) {
      const c = await claimOne();
      clock.advance(1000);
      await store.completeAttempt(c.fence, { state: 'failed', exitCode: 1, error: `e${i}` });
    }
    const r2 = await startRun(store, { workflow: 'many' }, clock.now());
    for (let i = 0; i < 2; i++) {
      const c = await claimOne();
      clock.advance(1000);
      await store.completeAttempt(c.fence, { state: 'failed', exitCode: 1, error: `f${i}` });
    }
    const all = await store.listAudit({});
    expect(all).toHaveLength(4);
    expect(all.map((e) => e.at)).toEqual([t0 + 1000, t0 + 2000, t0 + 3000, t0 + 4000]);
    expect((await store.listAudit({ runId: r2.id })).map((e) => e.runId)).toEqual([r2.id, r2.id]);
    expect((await store.listAudit({ since: t0 + 2000, until: t0 + 4000 })).map((e) => e.at)).toEqual([t0 + 2000, t0 + 3000]);
    expect((await store.listAudit({ newestFirst: true, limit: 3 })).map((e) => e.id)).toEqual([all[3]!.id, all[2]!.id, all[1]!.id]);
    expect((await store.listAudit({ afterId: all[1]!.id, limit: 1 })).map((e) => e.id)).toEqual([all[2]!.id]);
    expect((await store.listAudit({ beforeId: all[1]!.id, newestFirst: true })).map((e) => e.id)).toEqual([all[0]!.id]);
    expect(await store.listAudit({ namespace: 'elsewhere' })).toEqual([]);
    expect(await store.listAudit({ action: 'retry' })).toHaveLength(4);
    expect(await store.listAudit({ action: 'retries.exhausted' })).toEqual([]);
    expect(r1.id).not.toBe(r2.id);
  });
});

