// The Store contract: one suite every implementation must pass unchanged.
// It drives the state machine the way workers and the scheduler do (claim,
// complete, heartbeat, reap) with a controllable clock, without processes.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDefinitionSource } from '../../src/spec/parse.js';
import type { WorkflowSpec } from '../../src/spec/model.js';
import { prepareRun, startRun } from '../../src/server/runs.js';
import {
  StaleFenceError,
  ConflictError,
  NotFoundError,
  CheckpointTooLargeError,
  MAX_CHECKPOINT_BYTES,
  type Clock,
  type Store,
  type ClaimedJob,
  type StoreSignal,
  type ScheduleTick,
} from '../../src/store/types.js';
import type { Overlap } from '../../src/spec/model.js';

export class TestClock implements Clock {
  constructor(public t = Date.UTC(2026, 10, 24, 12, 0, 0)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface StoreFactory {
  /** a fresh, migrated store using the given clock */
  create(clock: Clock): Promise<Store>;
  /** reopens the same database (for durability checks) */
  reopen(clock: Clock): Promise<Store>;
  cleanup(): Promise<void>;
}

const W = { name: 'w1', host: 'test-host', queues: ['default'] };
const LEASE = 10_000;

export function storeContract(name: string, makeFactory: () => StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let factory: StoreFactory;
    let store: Store;
    let clock: TestClock;
    let dir: string;

    beforeEach(async () => {
      factory = makeFactory();
      clock = new TestClock();
      store = await factory.create(clock);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-contract-'));
    });
    afterEach(async () => {
      await store.close();
      await factory.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function define(yaml: string): Promise<WorkflowSpec> {
      const file = path.join(dir, `wf-${Math.random().toString(36).slice(2)}.yaml`);
      const r = parseDefinitionSource(yaml, file);
      expect(r.errors).toEqual([]);
      await store.putDefinitions([r.definition!]);
      return r.definition as WorkflowSpec;
    }

    async function claim(limit = 10, worker = W): Promise<ClaimedJob[]> {
      return store.claimJobs(worker, limit, LEASE);
    }

    async function states(runId: number): Promise<Record<string, string>> {
      const jobs = await store.listJobs({ runId });
      return Object.fromEntries(jobs.map((j) => [j.task, j.state === 'skipped' ? `skipped:${j.skipReason}` : j.state]));
    }

    async function succeed(c: ClaimedJob, result?: unknown) {
      return store.completeAttempt(c.fence, { state: 'succeeded', exitCode: 0, result });
    }
    async function fail(c: ClaimedJob, retryable?: boolean) {
      return store.completeAttempt(c.fence, { state: 'failed', exitCode: 3, error: 'exit code 3: boom', retryable });
    }

    it('queues only the roots of a new run, and completing a job promotes its dependents in the same transaction', async () => {
      await define(`name: chain\ntasks:\n  a: { run: "true" }\n  b: { run: "true", needs: [a] }\n  c: { run: "true", needs: [b] }\n`);
      const run = await startRun(store, { workflow: 'chain' });
      expect(run.state).toBe('running');
      expect(await states(run.id)).toEqual({ a: 'queued', b: 'pending', c: 'pending' });
      const [a] = await claim();
      expect(a!.job.task).toBe('a');
      expect(await claim()).toEqual([]); // b is not claimable yet
      await succeed(a!, { rows: 3 });
      expect(await states(run.id)).toEqual({ a: 'succeeded', b: 'queued', c: 'pending' });
      const [b] = await claim();
      expect(b!.upstream.a).toEqual({ outputs: {}, result: { rows: 3 } });
      await succeed(b!);
      const [c] = await claim();
      await succeed(c!);
      const done = await store.getRun(run.id);
      expect(done!.state).toBe('succeeded');
      expect(done!.finishedAt).toBe(clock.now());
    });

    it('applies trigger rules when an upstream fails, cascading skips downstream', async () => {
      await define(`name: triggers
tasks:
  a: { run: "false" }
  ok: { run: "true" }
  b: { run: "true", needs: [a] }
  b2: { run: "true", needs: [b] }
  done: { run: "true", needs: [a], trigger: all_done }
  onfail: { run: "true", needs: [a], trigger: any_failed }
  nofail: { run: "true", needs: [ok], trigger: any_failed }
`);
      const run = await startRun(store, { workflow: 'triggers' });
      const roots = await claim();
      for (const c of roots) (c.job.task === 'a' ? await fail(c) : await succeed(c));
      expect(await states(run.id)).toEqual({
        a: 'failed',
        ok: 'succeeded',
        b: 'skipped:upstream',
        b2: 'skipped:upstream',
        done: 'queued',
        onfail: 'queued',
        nofail: 'skipped:trigger',
      });
      for (const c of await claim()) await succeed(c);
      expect((await store.getRun(run.id))!.state).toBe('failed');
    });

    it('counts a job skipped because its outputs exist as done for its dependents', async () => {
      await define(`name: skipdone\ntasks:\n  a: { run: "true", outputs: { x: out/a.txt } }\n  b: { run: "true", needs: [a] }\n`);
      const run = await startRun(store, { workflow: 'skipdone' });
      const [a] = await claim();
      expect(a!.job.outputs.x).toBe(path.join(dir, 'out/a.txt'));
      await store.completeAttempt(a!.fence, { state: 'skipped' });
      expect(await states(run.id)).toEqual({ a: 'skipped:outputs_exist', b: 'queued' });
    });

    it('retries with delay, exponential backoff and max_delay, then fails for good', async () => {
      await define(`name: retry\ntasks:\n  a: { run: "false", retries: { max: 3, delay: 10s, backoff: 3, max_delay: 60s } }\n  b: { run: "true", needs: [a] }\n`);
      const run = await startRun(store, { workflow: 'retry' });
      const expectedDelays = [10_000, 30_000, 60_000]; // 10s, 30s, then 90s capped at 60s; each spread by ±10 %
      for (const delay of expectedDelays) {
        const [c] = await claim();
        const j = await fail(c!);
        expect(j.state).toBe('retrying');
        const wait = j.runAfter! - clock.now();
        expect(wait).toBeGreaterThanOrEqual(delay * 0.9);
        expect(wait).toBeLessThanOrEqual(Math.min(delay * 1.1, 60_000));
        expect(await store.nextRetryAt()).toBe(j.runAfter);
        clock.advance(wait - 1);
        expect(await store.promoteDueRetries()).toBe(0);
        expect(await claim()).toEqual([]);
        clock.advance(1);
        expect(await store.promoteDueRetries()).toBe(1);
      }
      const [last] = await claim();
      expect(last!.job.attempts).toBe(4);
      const j = await fail(last!);
      expect(j.state).toBe('failed');
      expect(j.failures).toBe(4);
      expect(j.error).toBe('exit code 3: boom');
      expect(await states(run.id)).toEqual({ a: 'failed', b: 'skipped:upstream' });
      const attempts = await store.listAttempts(`${run.id}:a`);
      expect(attempts.map((a) => a.state)).toEqual(['failed', 'failed', 'failed', 'failed']);
    });

    it('does not retry an error marked not retryable', async () => {
      await define(`name: noretry\ntasks:\n  a: { run: "false", retries: 5 }\n`);
      await startRun(store, { workflow: 'noretry' });
      const [c] = await claim();
      expect((await fail(c!, false)).state).toBe('failed');
    });

    it('claims higher priority first, then the oldest enqueue time; runs interleave', async () => {
      await define(`name: prio\ntasks:\n  low: { run: "true", priority: 1 }\n  high: { run: "true", priority: 5 }\n  late: { run: "true", needs: [low] }\n`);
      const r1 = await startRun(store, { workflow: 'prio' });
      clock.advance(1000);
      const r2 = await startRun(store, { workflow: 'prio' });
      const first = await claim(2);
      expect(first.map((c) => c.job.id)).toEqual([`${r1.id}:high`, `${r2.id}:high`]);
      const [low1] = await claim(1);
      expect(low1!.job.id).toBe(`${r1.id}:low`);
      clock.advance(1000);
      await succeed(low1!); // r1:late is enqueued now, after r2:low
      const next = await claim(2);
      expect(next.map((c) => c.job.id)).toEqual([`${r2.id}:low`, `${r1.id}:late`]);
      // a run-level priority lifts every task of that run
      clock.advance(1000);
      const r3 = await startRun(store, { workflow: 'prio', priority: 10 });
      clock.advance(1000);
      await startRun(store, { workflow: 'prio' });
      expect((await claim(1))[0]!.job.id).toBe(`${r3.id}:high`);
      expect((await claim(1))[0]!.job.id).toBe(`${r3.id}:low`);
    });

    it('gives a worker only jobs of the queues it listens on', async () => {
      await define(`name: queues\ntasks:\n  big: { run: "true", queue: bigmem }\n  small: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'queues' });
      const onBig = await claim(10, { ...W, name: 'w-big', queues: ['bigmem'] });
      expect(onBig.map((c) => c.job.task)).toEqual(['big']);
      expect(onBig[0]!.job.worker).toBe('w-big');
      const onDefault = await claim();
      expect(onDefault.map((c) => c.job.task)).toEqual(['small']);
      expect((await store.getJob(`${run.id}:big`))!.queue).toBe('bigmem');
    });

    it('holds runs beyond max_active_runs in queued and starts them as earlier runs finish', async () => {
      await define(`name: limited\nmax_active_runs: 1\ntasks:\n  a: { run: "true" }\n`);
      const r1 = await startRun(store, { workflow: 'limited' });
      const r2 = await startRun(store, { workflow: 'limited' });
      expect(r1.state).toBe('running');
      expect(r2.state).toBe('queued');
      const claimed = await claim();
      expect(claimed.map((c) => c.job.runId)).toEqual([r1.id]);
      await succeed(claimed[0]!);
      expect((await store.getRun(r2.id))!.state).toBe('running');
      expect((await claim()).map((c) => c.job.runId)).toEqual([r2.id]);
    });

    it('fences: a revoked attempt can neither complete, log nor heartbeat, and the next attempt gets a larger token', async () => {
      await define(`name: fence\ntasks:\n  a: { run: "sleep 100" }\n`);
      const run = await startRun(store, { workflow: 'fence' });
      const [first] = await claim();
      expect(await store.heartbeat(W.name, [{ fence: first!.fence, progress: 40 }], LEASE)).toEqual([]);
      expect((await store.getJob(`${run.id}:a`))!.progress).toBe(40);
      clock.advance(LEASE + 1); // the worker paused past its lease
      const reaped = await store.reapLostAttempts([]);
      expect(reaped.map((r) => r.jobId)).toEqual([`${run.id}:a`]);
      const [second] = await claim(10, { ...W, name: 'w2' });
      expect(second!.fence).toBeGreaterThan(first!.fence);
      await expect(store.completeAttempt(first!.fence, { state: 'succeeded', exitCode: 0 })).rejects.toBeInstanceOf(StaleFenceError);
      await expect(store.appendLogs(first!.fence, [{ stream: 'stdout', ts: 1, line: 'late' }])).rejects.toBeInstanceOf(StaleFenceError);
      await expect(store.assertCurrent(first!.fence)).rejects.toBeInstanceOf(StaleFenceError);
      expect(await store.heartbeat(W.name, [{ fence: first!.fence, progress: null }], LEASE)).toEqual([first!.fence]);
      await succeed(second!);
      const attempts = await store.listAttempts(`${run.id}:a`);
      expect(attempts.map((a) => [a.state, a.worker])).toEqual([
        ['lost', 'w1'],
        ['succeeded', 'w2'],
      ]);
      const job = (await store.getJob(`${run.id}:a`))!;
      expect(job.failures).toBe(0); // a lost attempt does not count against retries
      expect(job.attempts).toBe(2);
    });

    it('reaps the attempts of a worker known dead without waiting for its lease', async () => {
      await define(`name: dead\ntasks:\n  a: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'dead' });
      await store.registerWorker({ name: 'w1', host: 'test-host', pid: 1, queues: ['default'], slots: 1, resources: { cpu: 1, memoryBytes: null, custom: {} } });
      await claim();
      expect(await store.reapLostAttempts([])).toEqual([]); // lease still valid
      const reaped = await store.reapLostAttempts(['w1']);
      expect(reaped).toHaveLength(1);
      expect((await store.getJob(`${run.id}:a`))!.state).toBe('queued');
      expect((await store.listWorkers())[0]!.state).toBe('stopped');
    });

    it('cancels a run: every active job is cancelled and running attempts are revoked', async () => {
      await define(`name: cancel\ntasks:\n  a: { run: "sleep 100" }\n  b: { run: "true", needs: [a] }\n`);
      const run = await startRun(store, { workflow: 'cancel' });
      const [a] = await claim();
      const signals: StoreSignal[] = [];
      const off = store.subscribe((s) => signals.push(s));
      const cancelled = await store.cancelRun(run.id);
      off();
      expect(cancelled.state).toBe('cancelled');
      expect(await states(run.id)).toEqual({ a: 'cancelled', b: 'cancelled' });
      expect(signals).toContainEqual({ type: 'revoked', fences: [a!.fence] });
      await expect(store.completeAttempt(a!.fence, { state: 'succeeded', exitCode: 0 })).rejects.toBeInstanceOf(StaleFenceError);
      await expect(store.cancelRun(run.id)).rejects.toBeInstanceOf(ConflictError);
      expect((await store.listAttempts(`${run.id}:a`))[0]!.state).toBe('cancelled');
    });

    it('asks a worker to drain, stop or terminate: shown as draining, never weakened, cleared when it registers again', async () => {
      const info = { name: 'w1', host: 'test-host', pid: 1, queues: ['default'], slots: 1, resources: { cpu: 1, memoryBytes: null, custom: {} } };
      await store.registerWorker(info);
      expect(await store.workerStopMode('w1')).toBeNull();
      const signals: StoreSignal[] = [];
      const off = store.subscribe((s) => signals.push(s));
      expect((await store.requestWorkerStop('w1', 'drain')).state).toBe('draining');
      off();
      expect(signals).toContainEqual({ type: 'worker', name: 'w1' });
      expect(await store.workerStopMode('w1')).toBe('drain');
      await store.requestWorkerStop('w1', 'terminate');
      await store.requestWorkerStop('w1', 'stop');
      expect(await store.workerStopMode('w1')).toBe('terminate');
      expect((await store.listWorkers())[0]!.state).toBe('draining');
      await store.registerWorker(info); // the worker started again (a deploy): active, nothing asked
      expect(await store.workerStopMode('w1')).toBeNull();
      expect((await store.listWorkers())[0]!.state).toBe('active');
      await expect(store.requestWorkerStop('nobody', 'drain')).rejects.toBeInstanceOf(NotFoundError);
      await store.stopWorker('w1');
      await expect(store.requestWorkerStop('w1', 'stop')).rejects.toBeInstanceOf(ConflictError);
      expect(await store.workerStopMode('w1')).toBeNull();
    });

    it('records worker transitions in the outbox with their reasons: online, draining (each stronger ask), stopped, dead (once, audited), back online', async () => {
      const info = (name: string) => ({ name, host: 'test-host', pid: 4242, queues: ['default', 'big'], slots: 2, resources: { cpu: 1, memoryBytes: null, custom: {} } });
      const before = await store.lastEventId();
      await store.registerWorker(info('w1'));
      await store.requestWorkerStop('w1', 'drain');
      await store.requestWorkerStop('w1', 'drain'); // asked again: nothing new
      await store.requestWorkerStop('w1', 'terminate');
      await store.requestWorkerStop('w1', 'stop'); // weaker: nothing new
      await store.stopWorker('w1', 'exited (terminate asked)');
      await store.stopWorker('w1'); // already stopped: nothing new
      await store.registerWorker(info('w2'));
      await store.registerWorker(info('w3'));
      clock.advance(60_000);
      expect(await store.declareWorkersDead([{ name: 'w2', reason: 'no heartbeat for 1m' }, { name: 'w1', reason: 'already stopped' }], 'scheduler:s1')).toEqual(['w2']);
      expect(await store.declareWorkersDead([{ name: 'w2', reason: 'no heartbeat for 1m' }])).toEqual([]); // once
      expect((await store.listWorkers()).find((w) => w.name === 'w2')!.state).toBe('stopped');
      // a worker declared dead while its attempt ran: the reap marks it too, with its own event
      await store.reapLostAttempts(['w3']);
      // w2 was only slow: its next heartbeat brings it back
      await store.heartbeat('w2', [], LEASE);
      expect((await store.listWorkers()).find((w) => w.name === 'w2')!.state).toBe('active');
      await store.heartbeat('w2', [], LEASE); // an ordinary beat: nothing new

      const events = await store.readEvents(before, { kinds: ['worker'] });
      expect(events.map((e) => `${e.worker} ${e.state}`)).toEqual(['w1 online', 'w1 draining', 'w1 draining', 'w1 stopped', 'w2 online', 'w3 online', 'w2 dead', 'w3 dead', 'w2 online']);
      expect(events.every((e) => e.kind === 'worker' && e.runId === 0 && e.jobId === null)).toBe(true);
      expect(events[0]!.reason).toBe('registered on test-host (pid 4242): queues default, big, 2 slots');
      expect(events[1]!.reason).toMatch(/^drain asked/);
      expect(events[2]!.reason).toMatch(/^terminate asked/);
      expect(events[3]!.reason).toBe('exited (terminate asked)');
      expect(events[6]!.reason).toBe('no heartbeat for 1m');
      expect(events[8]!.reason).toMatch(/^heartbeat again after it was declared dead/);
      const audit = await store.listAudit({ action: 'worker' });
      expect(audit).toMatchObject([
        { action: 'worker.dead', actor: 'scheduler:s1', subject: 'w2', reason: 'worker w2 declared dead: no heartbeat for 1m' },
        { action: 'worker.dead', actor: 'store', subject: 'w3' },
      ]);

      // filters: worker events belong to no namespace, run, workflow or label: dropped by those unless `kinds` names them
      expect(await store.readEvents(before, {})).toEqual(events);
      expect(await store.readEvents(before, { namespace: 'default' })).toEqual([]);
      expect(await store.readEvents(before, { workflow: 'x' })).toEqual([]);
      expect(await store.readEvents(before, { namespace: 'default', kinds: ['worker', 'run'] })).toEqual(events);
      expect(await store.readEvents(before, { kinds: ['run', 'job', 'service'] })).toEqual([]);
      expect(await store.readEvents(events[5]!.id, { kinds: ['worker'] })).toEqual(events.slice(6)); // resumable like any event
    });

    it('records cancel --clean on the attempts it revokes, and only there', async () => {
      await define(`name: clean\ntasks:\n  a: { run: "sleep 100" }\n  b: { run: "sleep 100" }\n`);
      const r1 = await startRun(store, { workflow: 'clean' });
      const [x, y] = await claim();
      await store.cancelJob(x!.job.id);
      expect(await store.cleanRequested(x!.fence)).toBe(false);
      await store.cancelRun(r1.id, { clean: true });
      expect(await store.cleanRequested(y!.fence)).toBe(true);
      expect(await store.cleanRequested(x!.fence)).toBe(false);
    });

    it('cancels one job: its dependents are skipped and the run ends cancelled', async () => {
      await define(`name: cancel1\ntasks:\n  a: { run: "sleep 100" }\n  b: { run: "true", needs: [a] }\n  c: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'cancel1' });
      const claimed = await claim();
      await store.cancelJob(`${run.id}:a`);
      expect(await states(run.id)).toEqual({ a: 'cancelled', b: 'skipped:upstream', c: 'running' });
      await succeed(claimed.find((c) => c.job.task === 'c')!);
      expect((await store.getRun(run.id))!.state).toBe('cancelled');
    });

    it('retries only the failed part of a run, leaving succeeded jobs alone', async () => {
      await define(`name: partial\ntasks:\n  a: { run: "true" }\n  b: { run: "false", needs: [a] }\n  c: { run: "true", needs: [b] }\n  d: { run: "true", needs: [a] }\n`);
      const run = await startRun(store, { workflow: 'partial' });
      await succeed((await claim())[0]!);
      for (const c of await claim()) (c.job.task === 'b' ? await fail(c) : await succeed(c));
      expect((await store.getRun(run.id))!.state).toBe('failed');
      await expect(store.retryRun(run.id, { failedOnly: false, force: false })).resolves.toMatchObject({ reset: 4 });
      // reset everything once: now fail b again to test --failed
      for (let i = 0; i < 3; i++) for (const c of await claim()) (c.job.task === 'b' ? await fail(c) : await succeed(c));
      expect(await states(run.id)).toEqual({ a: 'succeeded', b: 'failed', c: 'skipped:upstream', d: 'succeeded' });
      const { reset, run: again } = await store.retryRun(run.id, { failedOnly: true, force: false });
      expect(reset).toBe(2);
      expect(again.state).toBe('running');
      expect(await states(run.id)).toEqual({ a: 'succeeded', b: 'queued', c: 'pending', d: 'succeeded' });
      const [b] = await claim();
      expect(b!.job.attempts).toBe(3);
      await succeed(b!);
      await succeed((await claim())[0]!);
      expect((await store.getRun(run.id))!.state).toBe('succeeded');
      expect((await store.listAttempts(`${run.id}:a`)).length).toBe(2); // the original and the full retry only
    });

    it('refuses to rerun a whole run that is still running', async () => {
      await define(`name: busy\ntasks:\n  a: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'busy' });
      await expect(store.retryRun(run.id, { failedOnly: false, force: false })).rejects.toBeInstanceOf(ConflictError);
    });

    it('stores log lines per attempt and reads them by job or run, after an id', async () => {
      await define(`name: logs\ntasks:\n  a: { run: "true" }\n  b: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'logs' });
      const [a, b] = await claim();
      await store.appendLogs(a!.fence, [
        { stream: 'stdout', ts: 1, line: 'a1' },
        { stream: 'stderr', ts: 2, line: 'a2' },
      ]);
      await store.appendLogs(b!.fence, [{ stream: 'stdout', ts: 3, line: 'b1' }]);
      const all = await store.readLogs({ runId: run.id });
      expect(all.map((l) => `${l.jobId} ${l.stream} ${l.line}`)).toEqual([`${run.id}:a stdout a1`, `${run.id}:a stderr a2`, `${run.id}:b stdout b1`]);
      const onlyA = await store.readLogs({ jobId: `${run.id}:a`, afterId: all[0]!.id });
      expect(onlyA.map((l) => l.line)).toEqual(['a2']);
      // the last lines travel with the completion, in its transaction; a stale completion stores none
      await store.completeAttempt(a!.fence, { state: 'succeeded', exitCode: 0 }, [{ stream: 'system', ts: 4, line: 'a done' }]);
      await expect(store.completeAttempt(a!.fence, { state: 'succeeded', exitCode: 0 }, [{ stream: 'stdout', ts: 5, line: 'zombie' }])).rejects.toBeInstanceOf(
        StaleFenceError,
      );
      expect((await store.readLogs({ jobId: `${run.id}:a` })).map((l) => l.line)).toEqual(['a1', 'a2', 'a done']);
    });

    it('records every state change in the event outbox, in order', async () => {
      await define(`name: events\ntasks:\n  a: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'events' });
      await succeed((await claim())[0]!);
      const events = await store.readEvents(0, { runId: run.id });
      expect(events.map((e) => `${e.kind}:${e.jobId ?? ''}:${e.state}`)).toEqual([
        'run::queued',
        'run::running',
        `job:${run.id}:a:queued`,
        `job:${run.id}:a:running`,
        `job:${run.id}:a:succeeded`,
        'run::succeeded',
      ]);
      expect(await store.lastEventId()).toBe(events[events.length - 1]!.id);
    });

    it('filters runs by workflow, state and labels, and lists the latest run of each workflow', async () => {
      await define(`name: lab\nparams: { wiki: { default: enwiki } }\nlabels: { project: "{{ params.wiki }}", kind: xml }\ntasks:\n  a: { run: "true" }\n`);
      const en = await startRun(store, { workflow: 'lab' });
      const de = await startRun(store, { workflow: 'lab', params: { wiki: 'dewiki' }, labels: { team: 'x' } });
      expect(de.labels).toEqual({ project: 'dewiki', kind: 'xml', team: 'x' });
      expect((await store.listRuns({ labels: { project: 'enwiki' } })).map((r) => r.id)).toEqual([en.id]);
      expect((await store.listRuns({ labels: { kind: 'xml' } })).map((r) => r.id)).toEqual([de.id, en.id]);
      expect((await store.listRuns({ latest: true })).map((r) => r.id)).toEqual([de.id]);
      expect((await store.listRuns({ state: 'succeeded' })).length).toBe(0);
    });

    it('claims only what fits the free capacity, letting smaller jobs pass a big one that does not fit', async () => {
      await define(`name: fit
tasks:
  big: { run: "true", priority: 9, resources: { cpu: 4 } }
  two: { run: "true", priority: 5, resources: { cpu: 2, memory: 1G } }
  one: { run: "true", priority: 1 }
  db: { run: "true", resources: { dbconn: 1 } }
`);
      const run = await startRun(store, { workflow: 'fit' });
      const free = { cpu: 3, memoryBytes: 2 * 2 ** 30, custom: {} };
      const got = await store.claimJobs(W, 10, LEASE, free);
      expect(got.map((c) => c.job.task)).toEqual(['two', 'one']); // big needs 4 cpus; db needs a dbconn this worker lacks
      expect(got[0]!.job.resources).toEqual({ cpu: 2, memoryBytes: 2 ** 30, custom: {} });
      const withDb = await store.claimJobs({ ...W, name: 'w-db' }, 10, LEASE, { cpu: 8, memoryBytes: null, custom: { dbconn: 1 } });
      expect(withDb.map((c) => c.job.task)).toEqual(['big', 'db']);
      expect(await states(run.id)).toMatchObject({ big: 'running', two: 'running', one: 'running', db: 'running' });
    });

    it('caps a pool cluster-wide; lowering it stops new claims without touching running jobs', async () => {
      await define(`name: pooled
tasks:
${[1, 2, 3, 4, 5].map((i) => `  p${i}: { run: "true", pool: dbstore }`).join('\n')}
  free: { run: "true" }
`);
      const run = await startRun(store, { workflow: 'pooled' });
      expect((await store.setPool('dbstore', 2)).slots).toBe(2);
      const first = await store.claimJobs(W, 10, LEASE);
      expect(first.map((c) => c.job.task).sort()).toEqual(['free', 'p1', 'p2']);
      expect(await store.claimJobs({ ...W, name: 'w2' }, 10, LEASE)).toEqual([]); // another worker: the pool is full cluster-wide
      expect(await store.listPools()).toEqual([{ name: 'dbstore', slots: 2, running: 2, queued: 3 }]);
      await store.setPool('dbstore', 1);
      await succeed(first.find((c) => c.job.task === 'p1')!);
      expect(await store.claimJobs(W, 10, LEASE)).toEqual([]); // 1 running = the new limit
      await succeed(first.find((c) => c.job.task === 'p2')!);
      expect((await store.claimJobs(W, 10, LEASE)).map((c) => c.job.task)).toEqual(['p3']);
      await store.setPool('dbstore', null);
      expect((await store.claimJobs(W, 10, LEASE)).map((c) => c.job.task)).toEqual(['p4', 'p5']);
      expect((await store.getJob(`${run.id}:p5`))!.pool).toBe('dbstore');
    });

    it('gives a job with a queue preference list to a later queue only when no live worker of an earlier one could take it', async () => {
      await define(`name: prefer\ntasks:\n  job: { run: "true", queue: [bigmem, default] }\n`);
      const run = await startRun(store, { workflow: 'prefer' });
      const bigmem = { name: 'w-big', host: 'h', pid: 1, queues: ['bigmem'], slots: 1, resources: { cpu: 4, memoryBytes: null, custom: {} } };
      await store.registerWorker(bigmem);
      const dflt = { name: 'w-default', host: 'h', queues: ['default'] };
      expect(await store.claimJobs(dflt, 5, LEASE)).toEqual([]); // a live bigmem worker with a free slot could
      clock.advance(3 * LEASE); // the bigmem worker falls silent
      const got = await store.claimJobs(dflt, 5, LEASE);
      expect(got.map((c) => c.job.id)).toEqual([`${run.id}:job`]);
      expect(got[0]!.job.queues).toEqual(['bigmem', 'default']);
      // and a bigmem worker takes it directly when it is free
      const run2 = await startRun(store, { workflow: 'prefer' });
      await store.registerWorker(bigmem); // back, heartbeating
      expect((await store.claimJobs({ name: 'w-big', host: 'h', queues: ['bigmem'] }, 1, LEASE)).map((c) => c.job.id)).toEqual([`${run2.id}:job`]);
      // full now: the default worker may take the next one
      const run3 = await startRun(store, { workflow: 'prefer' });
      expect((await store.claimJobs(dflt, 5, LEASE)).map((c) => c.job.id)).toEqual([`${run3.id}:job`]);
    });

    it('notes queued jobs that no live worker could ever fit, and clears the note when one can', async () => {
      await define(`name: huge\ntasks:\n  job: { run: "true", resources: { cpu: 16 } }\n  other: { run: "true", queue: nowhere }\n`);
      const run = await startRun(store, { workflow: 'huge' });
      await store.registerWorker({ name: 'small', host: 'h', pid: 1, queues: ['default'], slots: 4, resources: { cpu: 8, memoryBytes: null, custom: {} } });
      expect(await store.updateWaitingReasons(60_000)).toBe(2);
      const job = (await store.getJob(`${run.id}:job`))!;
      expect(job.waitingReason).toMatch(/^no live worker of queue default could ever fit it \(needs cpu 16; offered small: cpu 8\)$/);
      expect((await store.getJob(`${run.id}:other`))!.waitingReason).toBe('no live worker listens on queue nowhere');
      await store.registerWorker({ name: 'big', host: 'h', pid: 2, queues: ['default'], slots: 4, resources: { cpu: 32, memoryBytes: null, custom: {} } });
      await store.updateWaitingReasons(60_000);
      expect((await store.getJob(`${run.id}:job`))!.waitingReason).toBeNull();
    });

    it('lets one scheduler lead at a time, and another take over when the leader falls silent', async () => {
      expect(await store.acquireLeadership('scheduler', 'a', 4000)).toBe(true);
      expect(await store.acquireLeadership('scheduler', 'b', 4000)).toBe(false);
      clock.advance(3000);
      expect(await store.acquireLeadership('scheduler', 'a', 4000)).toBe(true); // renewed
      clock.advance(3000);
      expect(await store.acquireLeadership('scheduler', 'b', 4000)).toBe(false);
      clock.advance(1001);
      expect(await store.acquireLeadership('scheduler', 'b', 4000)).toBe(true);
      expect(await store.acquireLeadership('scheduler', 'a', 4000)).toBe(false);
      await store.releaseLeadership('scheduler', 'b');
      expect(await store.acquireLeadership('scheduler', 'a', 4000)).toBe(true);
      // a holder known dead can be replaced before its lease ends; a wrong guess changes nothing
      expect(await store.acquireLeadership('scheduler', 'c', 4000, 'b')).toBe(false);
      expect(await store.acquireLeadership('scheduler', 'c', 4000, 'a')).toBe(true);
      expect(await store.currentLeader('scheduler')).toEqual({ holder: 'c', until: clock.now() + 4000 });
    });

    it('renews the lease when asked before an output commit, and lists lost attempts of a host', async () => {
      await define(`name: commit\ntasks:\n  a: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'commit' });
      const [c] = await claim(1, { ...W, host: 'host-a' });
      await store.setAttemptPid(c!.fence, 4242);
      clock.advance(LEASE - 100);
      await store.assertCurrent(c!.fence, LEASE);
      clock.advance(200); // past the original lease, inside the renewed one
      expect(await store.reapLostAttempts([])).toEqual([]);
      clock.advance(LEASE);
      expect((await store.reapLostAttempts([])).map((r) => [r.jobId, r.host, r.pid])).toEqual([[`${run.id}:a`, 'host-a', 4242]]);
      const lost = await store.listLostAttempts('host-a', clock.now() - 1000);
      expect(lost).toEqual([{ fence: c!.fence, jobId: `${run.id}:a`, pid: 4242, outputs: {} }]);
      expect(await store.listLostAttempts('host-b', 0)).toEqual([]);
    });

    it('ends a run exactly once when its last jobs complete at the same time', async () => {
      await define(`name: wide\ntasks:\n${Array.from({ length: 20 }, (_, i) => `  t${i}: { run: "true" }`).join('\n')}\n`);
      const run = await startRun(store, { workflow: 'wide' });
      const claimed = await claim(20);
      expect(claimed).toHaveLength(20);
      await Promise.all(claimed.map((c) => succeed(c)));
      expect((await store.getRun(run.id))!.state).toBe('succeeded');
      const ends = (await store.readEvents(0, { runId: run.id })).filter((e) => e.kind === 'run' && e.state === 'succeeded');
      expect(ends).toHaveLength(1);
      expect(await store.finishIdleRuns()).toBe(0);
    });


    it('completes a batch at once: results, log lines in order, a dependent of two members promoted, a failure retried, a stale fence refused alone', async () => {
      await define(`name: batch
tasks:
  a: { run: "true" }
  b: { run: "true" }
  c: { run: "false", retries: { max: 1, delay: 1s } }
  d: { run: "true" }
  join: { run: "true", needs: [a, b] }
`);
      const run = await startRun(store, { workflow: 'batch' });
      const claimed = await claim(4);
      const by = Object.fromEntries(claimed.map((x) => [x.job.task, x]));
      await store.cancelJob(by.d!.job.id); // d's attempt is revoked: its fence is stale now
      const out = await store.completeAttempts([
        { fence: by.a!.fence, outcome: { state: 'succeeded', exitCode: 0, result: { n: 1 } }, lines: [1, 2, 3].map((i) => ({ stream: 'stdout' as const, ts: i, line: `a${i}` })) },
        { fence: by.d!.fence, outcome: { state: 'succeeded', exitCode: 0 }, lines: [{ stream: 'stdout', ts: 1, line: 'zombie' }] },
        { fence: by.c!.fence, outcome: { state: 'failed', exitCode: 1, error: 'boom' }, lines: [{ stream: 'stderr', ts: 1, line: 'c failed' }] },
        { fence: by.b!.fence, outcome: { state: 'skipped' }, lines: [{ stream: 'system', ts: 1, line: 'b1' }, { stream: 'system', ts: 2, line: 'b2' }] },
      ]);
      expect(out.map((r) => (r instanceof StaleFenceError ? 'stale' : `${r.task}:${r.state}`))).toEqual(['a:succeeded', 'stale', 'c:retrying', 'b:skipped']);
      expect(await states(run.id)).toMatchObject({ a: 'succeeded', b: 'skipped:outputs_exist', c: 'retrying', d: 'cancelled', join: 'queued' });
      expect((await store.readLogs({ jobId: `${run.id}:a` })).map((l) => l.line)).toEqual(['a1', 'a2', 'a3']);
      expect((await store.readLogs({ jobId: `${run.id}:b` })).map((l) => l.line)).toEqual(['b1', 'b2']);
      expect((await store.readLogs({ jobId: `${run.id}:d` })).map((l) => l.line)).not.toContain('zombie');
      const [j] = await claim();
      expect(j!.job.task).toBe('join');
      expect(j!.upstream.a!.result).toEqual({ n: 1 });
    });
    it('completes and claims in one call: the dependent it made ready is claimed with its upstream results, in claim order, and other workers are woken only for what it left', async () => {
      await define(`name: handoff
tasks:
  a: { run: "true" }
  b: { run: "true", needs: [a] }
  c: { run: "true", needs: [a] }
  urgent: { run: "true", priority: 5, needs: [gate] }
  gate: { run: "true" }
`);
      const run = await startRun(store, { workflow: 'handoff' });
      const first = await claim(2);
      const by = Object.fromEntries(first.map((x) => [x.job.task, x]));
      expect(Object.keys(by).sort()).toEqual(['a', 'gate']);
      const seen: StoreSignal[] = [];
      const off = store.subscribe((s) => seen.push(s));
      // PostgreSQL: the first subscription opens the LISTEN connection, which announces `queued` once connected
      await new Promise((res) => setTimeout(res, 300));
      seen.length = 0;
      // a's completion makes b and c ready; this worker has room for one: it takes b, and c is announced.
      let r = await store.completeAndClaim([{ fence: by.a!.fence, outcome: { state: 'succeeded', exitCode: 0, result: { n: 7 } } }], async () => ({
        worker: W,
        limit: 1,
        leaseMs: LEASE,
      }));
      expect(r.completed.map((x) => (x instanceof StaleFenceError ? 'stale' : `${x.task}:${x.state}`))).toEqual(['a:succeeded']);
      expect(r.claimed.map((x) => x.job.task)).toEqual(['b']);
      expect(r.claimed[0]!.upstream.a!.result).toEqual({ n: 7 });
      const bClaim = r.claimed[0]!;
      for (let i = 0; i < 100 && !seen.some((s) => s.type === 'queued'); i++) await new Promise((res) => setTimeout(res, 10));
      expect(seen.some((s) => s.type === 'queued')).toBe(true);
      expect(await states(run.id)).toMatchObject({ a: 'succeeded', b: 'running', c: 'queued' });
      // gate's completion readies `urgent` (priority 5): with room for two, the claim takes it before the older c, as claimJobs would.
      seen.length = 0;
      r = await store.completeAndClaim([{ fence: by.gate!.fence, outcome: { state: 'succeeded', exitCode: 0 } }], async () => ({ worker: W, limit: 2, leaseMs: LEASE }));
      expect(r.claimed.map((x) => x.job.task)).toEqual(['urgent', 'c']);
      // everything it made ready, it took: nobody else is woken
      await new Promise((res) => setTimeout(res, 100));
      expect(seen.filter((s) => s.type === 'queued')).toEqual([]);
      // a stale fence is refused alone; no claim asked, none made
      await store.cancelJob(bClaim.job.id);
      r = await store.completeAndClaim([{ fence: bClaim.fence, outcome: { state: 'succeeded', exitCode: 0 } }], async () => null);
      expect(r.completed[0]).toBeInstanceOf(StaleFenceError);
      expect(r.claimed).toEqual([]);
      off();
    });
    it('takes a job given back by its attempt as lost, not failed, and requeues it at its old place', async () => {
      await define(`name: giveback\ntasks:\n  a: { run: "true" }\n  b: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'giveback' });
      const [a] = await claim(1);
      expect(await store.releaseAttempt(a!.fence, 'killed by its supervisor')).toBe(true);
      expect(await store.releaseAttempt(a!.fence, 'again')).toBe(false);
      const job = (await store.getJob(`${run.id}:a`))!;
      expect([job.state, job.failures]).toEqual(['queued', 0]);
      expect((await store.listAttempts(`${run.id}:a`)).map((x) => [x.state, x.error])).toEqual([['lost', 'killed by its supervisor']]);
      expect((await claim(1))[0]!.job.task).toBe('a'); // still ahead of b
    });

    it('saves a checkpoint only for the attempt that owns its job: stale or oversized ones are refused and change nothing', async () => {
      await define(`name: ckpt\ntasks:\n  a: { run: "true" }\n`);
      const run = await startRun(store, { workflow: 'ckpt' });
      const checkpoint = async () => (await store.getJob(`${run.id}:a`))!.checkpoint;
      const [first] = await claim();
      expect(first!.job.checkpoint).toBeNull();
      await store.saveCheckpoint(first!.fence, { step: 1 });
      expect(await checkpoint()).toEqual({ step: 1 });
      await store.saveCheckpoint(first!.fence, 'step 2\n');
      expect(await checkpoint()).toBe('step 2\n');
      const huge = 'x'.repeat(MAX_CHECKPOINT_BYTES);
      const tooBig = store.saveCheckpoint(first!.fence, huge);
      await expect(tooBig).rejects.toBeInstanceOf(CheckpointTooLargeError);
      await expect(tooBig).rejects.toThrow(`checkpoint too large: ${MAX_CHECKPOINT_BYTES + 2} bytes of JSON, the limit is ${MAX_CHECKPOINT_BYTES}`);
      expect(await checkpoint()).toBe('step 2\n');

      // the lease lapses: the attempt is lost, and its late checkpoint must not land
      clock.advance(LEASE + 1);
      expect(await store.reapLostAttempts([])).toHaveLength(1);
      await expect(store.saveCheckpoint(first!.fence, { step: 99 })).rejects.toBeInstanceOf(StaleFenceError);
      expect(await checkpoint()).toBe('step 2\n');

      // the next attempt starts from the last checkpoint the owner saved
      const [second] = await claim();
      expect(second!.fence).toBeGreaterThan(first!.fence);
      expect(second!.job.checkpoint).toBe('step 2\n');
      await succeed(second!);
      await expect(store.saveCheckpoint(second!.fence, { step: 3 })).rejects.toBeInstanceOf(StaleFenceError);
    });

    it('gives a retried job its checkpoint back at its next claim; retry --failed keeps it, --force and a rerun of a finished job clear it', async () => {
      await define(`name: ckretry\ntasks:\n  a: { run: "false", retries: { max: 1, delay: 10s } }\n`);
      const run = await startRun(store, { workflow: 'ckretry' });
      const [c1] = await claim();
      await store.saveCheckpoint(c1!.fence, { done: 3 });
      expect((await fail(c1!)).state).toBe('retrying');
      clock.advance(11_000);
      expect(await store.promoteDueRetries()).toBe(1);
      const [c2] = await claim();
      expect(c2!.job.attempts).toBe(2);
      expect(c2!.job.checkpoint).toEqual({ done: 3 });
      await store.saveCheckpoint(c2!.fence, { done: 5 });
      expect((await fail(c2!)).state).toBe('failed');

      await store.retryRun(run.id, { failedOnly: true, force: false });
      const [c3] = await claim();
      expect(c3!.job.checkpoint).toEqual({ done: 5 });
      expect((await fail(c3!, false)).state).toBe('failed');

      await store.retryRun(run.id, { failedOnly: true, force: true });
      const [c4] = await claim();
      expect(c4!.job.checkpoint).toBeNull();
      await store.saveCheckpoint(c4!.fence, { done: 9 });
      await succeed(c4!);
      expect((await store.getJob(`${run.id}:a`))!.checkpoint).toEqual({ done: 9 });

      // a whole rerun: the job had finished its work, so it starts afresh
      await store.retryRun(run.id, { failedOnly: false, force: false });
      const [c5] = await claim();
      expect(c5!.job.checkpoint).toBeNull();
    });

    it('claims a job resuming from a checkpoint before older fresh jobs of its priority; a retry without one keeps its place', async () => {
      await define(`name: ckorder\ntasks:\n  t: { run: "false", retries: { max: 1, delay: 10s } }\n`);
      const withCheckpoint = await startRun(store, { workflow: 'ckorder' });
      const without = await startRun(store, { workflow: 'ckorder' });
      const [a, b] = await claim(2);
      expect([a!.job.runId, b!.job.runId]).toEqual([withCheckpoint.id, without.id]);
      clock.advance(1000);
      const fresh = await startRun(store, { workflow: 'ckorder' });
      await store.saveCheckpoint(a!.fence, { offset: 1200 });
      await fail(a!);
      await fail(b!);
      clock.advance(11_000);
      expect(await store.promoteDueRetries()).toBe(2);
      // both retries were enqueued after the fresh job; only the one with a checkpoint goes first
      const order: number[] = [];
      for (let i = 0; i < 3; i++) order.push((await claim(1))[0]!.job.runId);
      expect(order).toEqual([withCheckpoint.id, fresh.id, without.id]);
    });

    // ----------------------------------------------------------------- schedules

    const T0 = Date.UTC(2026, 10, 24, 13, 0, 0); // after the clock's start: schedulers act at (or after) the tick
    const tick = (workflow: string, at: number, schedule = 'k1'): ScheduleTick => ({ namespace: 'default', workflow, schedule, at });
    async function scheduled(t: ScheduleTick, overlap: Overlap = 'queue', on: Store = store) {
      clock.t = Math.max(clock.t, t.at);
      const input = await prepareRun(on, { workflow: t.workflow, labels: { 'gantry.schedule': t.schedule } }, '20261124');
      return on.startScheduledRun(t, overlap, input);
    }

    it('starts one run per schedule tick: a repeated tick, or one older than the last acted on, is a duplicate', async () => {
      const signals: StoreSignal[] = [];
      const off = store.subscribe((s) => signals.push(s));
      await define(`name: sched\ntasks:\n  a: { run: "true" }\n`);
      off();
      expect(signals).toContainEqual({ type: 'schedules' }); // new definitions wake the scheduler
      const first = await scheduled(tick('sched', T0));
      expect(first.outcome === 'started' && first.run.labels).toEqual({ 'gantry.schedule': 'k1' });
      expect(await scheduled(tick('sched', T0))).toEqual({ outcome: 'duplicate' });
      expect((await scheduled(tick('sched', T0 + 3_600_000))).outcome).toBe('started');
      // a scheduler that lagged behind cannot act on a tick before the last one
      expect(await scheduled(tick('sched', T0 + 1_800_000))).toEqual({ outcome: 'duplicate' });
      // each schedule of a workflow has its own mark
      expect((await scheduled(tick('sched', T0 + 1_800_000, 'k2'))).outcome).toBe('started');
      expect(await store.listRuns({ workflow: 'sched' })).toHaveLength(3);
      expect(await store.scheduleMarks()).toEqual([
        { namespace: 'default', workflow: 'sched', schedule: 'k1', lastTick: T0 + 3_600_000 },
        { namespace: 'default', workflow: 'sched', schedule: 'k2', lastTick: T0 + 1_800_000 },
      ]);
      // a tick that cannot start a run is recorded too, and not tried again
      expect(await store.skipScheduleTick(tick('sched', T0 + 7_200_000), 'params no longer resolve')).toBe(true);
      expect(await store.skipScheduleTick(tick('sched', T0 + 7_200_000), 'again')).toBe(false);
      expect(await scheduled(tick('sched', T0 + 7_200_000))).toEqual({ outcome: 'duplicate' });
      expect(await store.listRuns({ workflow: 'sched' })).toHaveLength(3);
    });

    it('starts exactly one run per tick when two schedulers on two connections race over the same ticks', async () => {
      await define(`name: race\ntasks:\n  a: { run: "true" }\n`);
      const other = await factory.reopen(clock);
      try {
        const ticks = Array.from({ length: 12 }, (_, i) => T0 + i * 60_000);
        const race = async (on: Store) => {
          const outcomes: string[] = [];
          for (const at of ticks) outcomes.push((await scheduled(tick('race', at), 'queue', on)).outcome);
          return outcomes;
        };
        const [a, b] = await Promise.all([race(store), race(other)]);
        ticks.forEach((_, i) => expect([a[i], b[i]].filter((o) => o === 'started')).toHaveLength(1));
        const runs = await store.listRuns({ workflow: 'race', limit: 100 });
        expect(runs).toHaveLength(ticks.length);
      } finally {
        await other.close();
      }
    });

    it('overlap skip: a running run of the schedule makes its tick do nothing; a waiting or failed one does not', async () => {
      await define(`name: ovskip\nmax_active_runs: 1\ntasks:\n  a: { run: "sleep 100" }\n`);
      const manual = await startRun(store, { workflow: 'ovskip' }); // holds the one active slot
      const r1 = await scheduled(tick('ovskip', T0 + 60_000), 'skip');
      expect(r1.outcome === 'started' && r1.run.state).toBe('queued'); // waiting for max_active_runs
      // a waiting run of the schedule does not block the next tick
      const r2 = await scheduled(tick('ovskip', T0 + 120_000), 'skip');
      expect(r2.outcome).toBe('started');
      // a manual run is not a run of the schedule: the tick went ahead while it ran
      await succeed((await claim())[0]!);
      expect((await store.getRun(manual.id))!.state).toBe('succeeded');
      const id1 = r1.outcome === 'started' ? r1.run.id : 0;
      expect((await store.getRun(id1))!.state).toBe('running');
      expect(await scheduled(tick('ovskip', T0 + 180_000), 'skip')).toEqual({ outcome: 'skipped', running: [id1] });
      // once it failed, the schedule starts fresh (its next run was waiting and runs now: that one blocks)
      await fail((await claim())[0]!, false);
      expect((await store.getRun(id1))!.state).toBe('failed');
      const id2 = r2.outcome === 'started' ? r2.run.id : 0;
      expect(await scheduled(tick('ovskip', T0 + 240_000), 'skip')).toEqual({ outcome: 'skipped', running: [id2] });
      await store.cancelRun(id2);
      const r5 = await scheduled(tick('ovskip', T0 + 300_000), 'skip');
      expect(r5.outcome === 'started' && r5.run.state).toBe('running');
      expect(await store.listRuns({ workflow: 'ovskip' })).toHaveLength(4);
      await store.cancelRun(r5.outcome === 'started' ? r5.run.id : 0);
      // a catch-up after downtime: the run of a missed tick, created after the next missed tick, does not skip it
      clock.t = T0 + 3_600_000;
      const late1 = await scheduled(tick('ovskip', T0 + 600_000), 'skip');
      const late2 = await scheduled(tick('ovskip', T0 + 660_000), 'skip');
      expect([late1.outcome, late2.outcome]).toEqual(['started', 'started']);
      expect((await store.listRuns({ workflow: 'ovskip', state: 'running' })).length).toBe(1); // max_active_runs holds the other
    });

    it('overlap cancel_running: the running runs of the schedule are cancelled (attempts revoked) in the transaction that starts the next', async () => {
      await define(`name: ovcancel\ntasks:\n  a: { run: "sleep 100" }\n`);
      const r1 = await scheduled(tick('ovcancel', T0), 'cancel_running');
      const [c1] = await claim();
      const signals: StoreSignal[] = [];
      const off = store.subscribe((s) => signals.push(s));
      const r2 = await scheduled(tick('ovcancel', T0 + 60_000), 'cancel_running');
      off();
      const id1 = r1.outcome === 'started' ? r1.run.id : 0;
      expect(r2.outcome === 'started' && [r2.run.state, r2.cancelled]).toEqual(['running', [id1]]);
      expect((await store.getRun(id1))!.state).toBe('cancelled');
      expect(signals).toContainEqual({ type: 'revoked', fences: [c1!.fence] });
      await expect(store.completeAttempt(c1!.fence, { state: 'succeeded', exitCode: 0 })).rejects.toBeInstanceOf(StaleFenceError);
    });

    it('overlap queue: the tick starts its run anyway, held queued by max_active_runs', async () => {
      await define(`name: ovqueue\nmax_active_runs: 1\ntasks:\n  a: { run: "sleep 100" }\n`);
      const r1 = await scheduled(tick('ovqueue', T0), 'queue');
      const r2 = await scheduled(tick('ovqueue', T0 + 60_000), 'queue');
      expect([r1.outcome === 'started' && r1.run.state, r2.outcome === 'started' && r2.run.state]).toEqual(['running', 'queued']);
      await succeed((await claim())[0]!);
      expect((await store.getRun(r2.outcome === 'started' ? r2.run.id : 0))!.state).toBe('running');
    });

    it('keeps deferred runs as pending start records: listed in due order, started once with their run, or ended', async () => {
      await define(`name: later\nparams:\n  who: { default: x }\ntasks:\n  a: { run: "true" }\n`);
      const signals: StoreSignal[] = [];
      const off = store.subscribe((s) => signals.push(s));
      const base = { namespace: 'default', workflow: 'later', params: { who: 'b' }, labels: { k: 'v' }, priority: 2, force: true };
      const d2 = await store.deferRun({ ...base, dueAt: clock.now() + 20_000 });
      const d1 = await store.deferRun({ ...base, params: {}, labels: {}, priority: 0, force: false, dueAt: clock.now() + 10_000 });
      off();
      expect(signals).toContainEqual({ type: 'schedules' }); // wakes the scheduler to plan its start
      expect(d2).toMatchObject({ ...base, state: 'waiting', dueAt: clock.now() + 20_000, createdAt: clock.now(), runId: null, error: null });
      expect((await store.listDeferredRuns({ state: 'waiting' })).map((d) => d.id)).toEqual([d1.id, d2.id]);
      expect((await store.listDeferredRuns({ dueBy: clock.now() + 15_000 })).map((d) => d.id)).toEqual([d1.id]);
      const input = await prepareRun(store, { workflow: 'later' }, '20261124');
      const run = await store.startDeferredRun(d1.id, input);
      expect(run!.state).toBe('running');
      expect(await store.startDeferredRun(d1.id, input)).toBeNull(); // started once
      expect(await store.listDeferredRuns({ workflow: 'later', state: 'started' })).toMatchObject([{ id: d1.id, runId: run!.id }]);
      expect(await store.endDeferredRun(d2.id, 'cancelled', 'cancelled by request')).toMatchObject({ id: d2.id, state: 'cancelled', error: 'cancelled by request' });
      await expect(store.endDeferredRun(d2.id, 'failed', 'late')).rejects.toBeInstanceOf(ConflictError);
      await expect(store.endDeferredRun(d1.id, 'cancelled', 'late')).rejects.toBeInstanceOf(ConflictError);
      await expect(store.endDeferredRun(99_999, 'failed', 'x')).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.startDeferredRun(d2.id, input)).toBeNull();
      expect(await store.listRuns({ workflow: 'later' })).toHaveLength(1);
    });

    it('tokens: created with their namespaces, found by id with their hash, listed without it, revoked; the first token is made once', async () => {
      const t1 = { id: 'aaaaaaaaaaaa', hash: 'h1', role: 'maintainer' as const, namespaces: ['dumps', 'bots', 'dumps'], name: 'two tools' };
      expect(await store.createToken(t1)).toEqual({ id: t1.id, role: 'maintainer', namespaces: ['bots', 'dumps'], name: 'two tools', createdAt: clock.now() });
      // the first start's admin token: not made on a store that has one
      expect(await store.createFirstToken({ id: 'bbbbbbbbbbbb', hash: 'h2', role: 'admin', namespaces: ['*'], name: null })).toBeNull();
      expect(await store.findToken(t1.id)).toMatchObject({ id: t1.id, hash: 'h1', namespaces: ['bots', 'dumps'] });
      expect(await store.findToken('bbbbbbbbbbbb')).toBeNull();
      clock.advance(1000);
      await store.createToken({ id: 'cccccccccccc', hash: 'h3', role: 'viewer', namespaces: ['dumps'], name: null });
      const listed = await store.listTokens();
      expect(listed.map((t) => t.id)).toEqual([t1.id, 'cccccccccccc']);
      expect(JSON.stringify(listed)).not.toContain('h1');
      expect(await store.revokeToken(t1.id)).toMatchObject({ id: t1.id, role: 'maintainer' });
      expect(await store.findToken(t1.id)).toBeNull();
      await expect(store.revokeToken(t1.id)).rejects.toBeInstanceOf(NotFoundError);
      // its namespaces went with it: the same id can be made again, with others
      await store.createToken({ ...t1, namespaces: ['other'] });
      expect((await store.findToken(t1.id))!.namespaces).toEqual(['other']);
    });

    it('tokens: on an empty store, the first token is made exactly once however many processes start at once', async () => {
      const other = await factory.reopen(clock);
      try {
        const made = await Promise.all(
          [store, other, store, other].map((s, i) => s.createFirstToken({ id: `00000000000${i}`, hash: `h${i}`, role: 'admin', namespaces: ['*'], name: 'first' })),
        );
        expect(made.filter((m) => m !== null)).toHaveLength(1);
        expect(await store.listTokens()).toHaveLength(1);
      } finally {
        await other.close();
      }
    });

    it('secrets: stored sealed per namespace, listed by name, read by name, deleted', async () => {
      expect(await store.putSecret('dumps', 'DB_PASSWORD', 'sealed-1')).toEqual({ change: 'created' });
      clock.advance(5);
      expect(await store.putSecret('dumps', 'DB_PASSWORD', 'sealed-2')).toEqual({ change: 'updated' });
      await store.putSecret('dumps', 'API_KEY', 'sealed-3');
      await store.putSecret('bots', 'DB_PASSWORD', 'sealed-4');
      expect(await store.listSecrets('dumps')).toEqual([
        { namespace: 'dumps', name: 'API_KEY', updatedAt: clock.now() },
        { namespace: 'dumps', name: 'DB_PASSWORD', updatedAt: clock.now() },
      ]);
      expect((await store.listSecrets()).map((x) => `${x.namespace}/${x.name}`)).toEqual(['bots/DB_PASSWORD', 'dumps/API_KEY', 'dumps/DB_PASSWORD']);
      expect(await store.readSecrets('dumps', ['DB_PASSWORD', 'NOPE'])).toEqual({ DB_PASSWORD: 'sealed-2' });
      expect(await store.readSecrets('dumps', [])).toEqual({});
      await store.deleteSecret('dumps', 'DB_PASSWORD');
      await expect(store.deleteSecret('dumps', 'DB_PASSWORD')).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.readSecrets('dumps', ['DB_PASSWORD'])).toEqual({});
      expect(await store.readSecrets('bots', ['DB_PASSWORD'])).toEqual({ DB_PASSWORD: 'sealed-4' });
    });

    it('keeps everything across a close and reopen of the database', async () => {
      await define(`name: durable\ntasks:\n  a: { run: "true" }\n  b: { run: "true", needs: [a] }\n`);
      const run = await startRun(store, { workflow: 'durable' });
      await succeed((await claim())[0]!);
      await store.close();
      store = await factory.reopen(clock);
      expect(await states(run.id)).toEqual({ a: 'succeeded', b: 'queued' });
      expect((await store.getWorkflow('default', 'durable'))!.definition.name).toBe('durable');
    });
  });
}
