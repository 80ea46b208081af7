// Accounting on both stores: attempts ending with known usage (through every
// completion path: a success with dependents, a failure, completeAndClaim, a
// timeout, a batch of leaves) give known sums per namespace, workflow, task and worker,
// within a time range and a reader's namespaces; jobs and attempts carry
// their figures.
import { it, expect, beforeEach, afterEach } from 'vitest';
import path from 'node:path';
import { parseDefinitionSource } from '../../src/spec/parse.js';
import { startRun } from '../../src/server/runs.js';
import type { ClaimedJob, Store } from '../../src/store/types.js';
import { onEveryStore } from '../helpers/cluster.js';
import { openTestStore } from '../helpers/testStore.js';
import { TestClock } from './contract.js';

const W1 = { name: 'w1', host: 'host-1', queues: ['default'] };
const W2 = { name: 'w2', host: 'host-2', queues: ['default'] };
const LEASE = 60_000;
const MiB = 1024 * 1024;

onEveryStore('Accounting', (name) => {
  let store: Store;
  let clock: TestClock;
  let dir: string;
  let cleanup: () => Promise<void>;
  let T0: number;
  let runA: number;
  let runB: number;

  beforeEach(async () => {
    clock = new TestClock();
    T0 = clock.now();
    ({ store, dir, cleanup } = await openTestStore(name, { clock, prefix: 'gantry-acct-' }));
    const define = async (yaml: string) => {
      const r = parseDefinitionSource(yaml, path.join(dir, `wf-${Math.random().toString(36).slice(2)}.yaml`));
      expect(r.errors).toEqual([]);
      await store.putDefinitions([r.definition!]);
    };
    await define(`name: etl\nnamespace: a\ntasks:\n  x: { run: "true" }\n  y: { run: "true", needs: [x] }\n  f: { run: "false", retries: { max: 1, delay: 1s } }\n`);
    await define(`name: etl\nnamespace: b\ntasks:\n  x: { run: "true" }\n  n: { run: "true" }\n`);

    // run A (namespace a, worker w1): x and f from T0
    runA = (await startRun(store, { workflow: 'etl', namespace: 'a' }, clock.now())).id;
    const first = byTask(await store.claimJobs(W1, 10, LEASE));
    clock.advance(2000);
    // a success with dependents (PostgreSQL: its one statement queueing them), a failure (the general transaction)
    await store.completeAttempt(first.x!.fence, { state: 'succeeded', exitCode: 0, usage: { cpuMs: 300, maxRssBytes: 100 * MiB } });
    await store.completeAttempt(first.f!.fence, { state: 'failed', exitCode: 1, error: 'exit code 1', usage: { cpuMs: 50, maxRssBytes: 10 * MiB } });
    clock.advance(2000); // T0+4000: f's retry is due (its delay has jitter)
    await store.promoteDueRetries();
    const second = byTask(await store.claimJobs(W1, 10, LEASE));
    expect(Object.keys(second).sort()).toEqual(['f', 'y']);
    // claimed again: the job shows no figures until this attempt ends
    expect((await store.getJob(`${runA}:f`))!.cpuMs).toBeNull();
    clock.advance(500); // T0+4500
    await store.completeAndClaim([{ fence: second.y!.fence, outcome: { state: 'succeeded', exitCode: 0, usage: { cpuMs: 200, maxRssBytes: 50 * MiB } } }], async () => null);
    clock.advance(500); // T0+5000
    await store.completeAttempt(second.f!.fence, { state: 'timed_out', exitCode: null, error: 'timed out after 1s', usage: { cpuMs: 1000, maxRssBytes: 20 * MiB } });

    // run B (namespace b, worker w2): two leaves, one not measured (as a handler's)
    runB = (await startRun(store, { workflow: 'etl', namespace: 'b' }, clock.now())).id;
    const third = byTask(await store.claimJobs(W2, 10, LEASE));
    clock.advance(100); // T0+5100
    // one batch of leaves, each item with its own usage (or none)
    await store.completeAttempts([
      { fence: third.x!.fence, outcome: { state: 'succeeded', exitCode: 0, usage: { cpuMs: 5, maxRssBytes: 1 * MiB } } },
      { fence: third.n!.fence, outcome: { state: 'succeeded', exitCode: 0 } },
    ]);
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  function byTask(cs: ClaimedJob[]): Record<string, ClaimedJob> {
    return Object.fromEntries(cs.map((c) => [c.job.task, c]));
  }

  it('sums attempts, outcomes, wall and CPU time and peak memory per namespace', async () => {
    expect(await store.accountUsage({ by: ['namespace'] })).toEqual([
      { namespace: 'a', attempts: 4, succeeded: 2, failed: 2, wallMs: 2000 + 2000 + 500 + 1000, cpuMs: 1550, measured: 4, maxRssBytes: 100 * MiB, meanRssBytes: 45 * MiB },
      { namespace: 'b', attempts: 2, succeeded: 2, failed: 0, wallMs: 200, cpuMs: 5, measured: 1, maxRssBytes: 1 * MiB, meanRssBytes: 1 * MiB },
    ]);
    // no grouping: one total
    expect(await store.accountUsage({ by: [] })).toEqual([
      { attempts: 6, succeeded: 4, failed: 2, wallMs: 5700, cpuMs: 1555, measured: 5, maxRssBytes: 100 * MiB, meanRssBytes: Math.round((181 * MiB) / 5) },
    ]);
  });

  it('groups a task within its workflow and namespace, and by worker', async () => {
    const tasks = await store.accountUsage({ by: ['task'] });
    expect(tasks.map((r) => [r.namespace, r.workflow, r.task, r.attempts, r.failed, r.cpuMs, r.maxRssBytes])).toEqual([
      ['a', 'etl', 'f', 2, 2, 1050, 20 * MiB],
      ['a', 'etl', 'x', 1, 0, 300, 100 * MiB],
      ['a', 'etl', 'y', 1, 0, 200, 50 * MiB],
      ['b', 'etl', 'n', 1, 0, 0, null],
      ['b', 'etl', 'x', 1, 0, 5, 1 * MiB],
    ]);
    expect((await store.accountUsage({ by: ['worker'] })).map((r) => [r.worker, r.attempts, r.cpuMs])).toEqual([
      ['w1', 4, 1550],
      ['w2', 2, 5],
    ]);
    expect((await store.accountUsage({ by: ['workflow', 'worker'] })).map((r) => [r.namespace, r.workflow, r.worker, r.attempts])).toEqual([
      ['a', 'etl', 'w1', 4],
      ['b', 'etl', 'w2', 2],
    ]);
  });

  it('counts an attempt in the range its end falls in, and only the namespaces asked for', async () => {
    const range = await store.accountUsage({ by: ['task'], since: T0 + 4500, until: T0 + 5100 });
    expect(range.map((r) => [r.task, r.attempts, r.cpuMs, r.wallMs])).toEqual([
      ['f', 1, 1000, 1000],
      ['y', 1, 200, 500],
    ]);
    expect((await store.accountUsage({ by: ['namespace'], namespace: 'b' })).map((r) => r.namespace)).toEqual(['b']);
    expect((await store.accountUsage({ by: ['namespace'], namespaces: ['b', 'c'] })).map((r) => r.namespace)).toEqual(['b']);
    expect(await store.accountUsage({ by: ['namespace'], namespaces: [] })).toEqual([]);
    expect(await store.accountUsage({ by: [], since: T0 + 10_000 })).toEqual([]);
  });

  it("shows each job's latest attempt and each attempt's own figures", async () => {
    expect(await store.getJob(`${runA}:x`)).toMatchObject({ cpuMs: 300, maxRssBytes: 100 * MiB });
    expect(await store.getJob(`${runA}:f`)).toMatchObject({ state: 'failed', cpuMs: 1000, maxRssBytes: 20 * MiB });
    expect(await store.getJob(`${runB}:n`)).toMatchObject({ cpuMs: null, maxRssBytes: null });
    const attempts = await store.listAttempts(`${runA}:f`);
    expect(attempts.map((a) => [a.state, a.cpuMs, a.maxRssBytes])).toEqual([
      ['failed', 50, 10 * MiB],
      ['timed_out', 1000, 20 * MiB],
    ]);
    const jobs = await store.listJobs({ runId: runA });
    expect(Object.fromEntries(jobs.map((j) => [j.task, j.cpuMs]))).toEqual({ x: 300, y: 200, f: 1000 });
  });
});
