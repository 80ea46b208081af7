// The scheduler's cron duty on real stores (SQLite and PostgreSQL) with a
// controllable clock: schedules across DST, several schedules with their own
// params, overlap rules, catch-up after a 3-day outage, exactly one run per
// tick with two schedulers racing on one database, deferred runs; and the
// real scheduler loop starting a schedule added while it sleeps.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDefinitionSource } from '../../src/spec/parse.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import type { Clock, Run, Store } from '../../src/store/types.js';
import { ScheduleDuty, SCHEDULE_LABEL, TICK_LABEL, DEFERRED_LABEL } from '../../src/scheduler/scheduleDuty.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { deferRun, startRun } from '../../src/server/runs.js';
import { silentLogger } from '../../src/log.js';
import { TestClock } from '../store/contract.js';
import { PG_URL, dropSchema, postgresAvailable, uniqueSchema } from '../helpers/postgres.js';

interface Db {
  /** a store on the test's database (each call: another connection, as another process would have) */
  open(clock: Clock): Promise<Store>;
  cleanup(): Promise<void>;
}

const pgAvailable = await postgresAvailable();
const DBS: { name: string; available: boolean; make(): Db }[] = [
  {
    name: 'SQLite',
    available: true,
    make() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-sched-'));
      return {
        async open(clock) {
          const s = new SqliteStore(path.join(dir, 'gantry.db'), { clock });
          await s.migrate();
          return s;
        },
        cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'PostgreSQL',
    available: pgAvailable,
    make() {
      const schema = uniqueSchema();
      return {
        async open(clock) {
          const s = new PostgresStore(PG_URL, { clock, schema, max: 4 });
          await s.migrate();
          return s;
        },
        cleanup: () => dropSchema(schema),
      };
    },
  },
];

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const W = { name: 'w1', host: 'test-host', queues: ['default'] };

for (const kind of DBS) {
  (kind.available ? describe : describe.skip)(`schedules on ${kind.name}`, () => {
    let db: Db;
    let clock: TestClock;
    let store: Store;
    const extra: Store[] = [];

    beforeEach(async () => {
      db = kind.make();
      clock = new TestClock(Date.parse('2026-03-27T12:00:00Z'));
      store = await db.open(clock);
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await store.close();
      await db.cleanup();
    });

    const duty = (o: { catchupLimit?: number; refreshMs?: number; on?: Store } = {}) =>
      new ScheduleDuty(o.on ?? store, { logger: silentLogger(), clock, catchupLimit: o.catchupLimit, refreshMs: o.refreshMs });

    async function define(yaml: string): Promise<void> {
      const r = parseDefinitionSource(yaml, path.join(os.tmpdir(), `wf-${Math.random().toString(36).slice(2)}.yaml`));
      expect(r.errors).toEqual([]);
      await store.putDefinitions([r.definition!]);
    }

    /** Moves the clock to `until` in steps, one pass after each: a scheduler that never stopped. */
    async function runUntil(d: ScheduleDuty, until: number, step = HOUR): Promise<void> {
      while (clock.t < until) {
        clock.t = Math.min(until, clock.t + step);
        await d.pass();
      }
    }

    /** Runs of a workflow, oldest first. */
    async function runsOf(workflow: string): Promise<Run[]> {
      return (await store.listRuns({ workflow, limit: 1000 })).reverse();
    }
    const ticksOf = (runs: Run[]) => runs.map((r) => r.labels[TICK_LABEL]);

    it('runs 30 2 * * * Europe/Berlin once a day across both DST changes; run.date is the local day of the tick', async () => {
      const yaml = (name: string) => `name: ${name}
schedule: { cron: "30 2 * * *", timezone: Europe/Berlin, overlap: queue }
tasks:
  dump:
    run: "true"
    outputs: { file: "/data/{{ run.date }}/dump.txt" }
`;
      await define(yaml('spring'));
      const d = duty();
      await runUntil(d, Date.parse('2026-03-28T12:00:00Z'));
      // A pass says how long to sleep: until the next tick (02:30 does not exist on 2026-03-29: 03:00 CEST), at most refreshMs.
      expect(await duty({ refreshMs: DAY }).pass()).toBe(Date.parse('2026-03-29T01:00:00Z') - clock.t);
      expect(await d.pass()).toBe(60_000);
      await runUntil(d, Date.parse('2026-03-31T12:00:00Z'));
      const spring = await runsOf('spring');
      expect(ticksOf(spring)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z']);
      expect(spring.map((r) => r.logicalDate)).toEqual(['20260328', '20260329', '20260330', '20260331']);
      expect((await store.listJobs({ runId: spring[1]!.id }))[0]!.outputs).toEqual({ file: '/data/20260329/dump.txt' });
      expect(spring.map((r) => r.createdAt)).toEqual([
        Date.parse('2026-03-28T02:00:00Z'), // the first pass after the tick (passes are an hour apart here)
        Date.parse('2026-03-29T01:00:00Z'),
        Date.parse('2026-03-30T01:00:00Z'),
        Date.parse('2026-03-31T01:00:00Z'),
      ]);

      clock.t = Date.parse('2026-10-23T12:00:00Z');
      await define(yaml('autumn'));
      await runUntil(d, Date.parse('2026-10-27T12:00:00Z'), 15 * 60_000);
      const autumn = await runsOf('autumn');
      // 02:30 happens twice on 2026-10-25: one run, at the first (CEST)
      expect(ticksOf(autumn)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
      expect(autumn.map((r) => r.logicalDate)).toEqual(['20261024', '20261025', '20261026', '20261027']);
    });

    it('keeps several schedules of one workflow apart, each with its own params and key', async () => {
      await define(`name: dumps
params:
  wiki: { required: true }
  size: { default: regular }
schedule:
  - { cron: "0 3 * * *", params: { wiki: enwiki, size: large }, overlap: queue }
  - { cron: "0 4 * * *", timezone: Europe/Berlin, params: { wiki: dewiki }, overlap: queue }
tasks:
  dump: { run: "echo {{ params.wiki }}" }
`);
      await runUntil(duty(), clock.t + 2 * DAY, 30 * 60_000);
      const runs = await runsOf('dumps');
      expect(runs.map((r) => [r.labels[TICK_LABEL], r.params])).toEqual([
        ['2026-03-28T03:00:00.000Z', { wiki: 'enwiki', size: 'large' }],
        ['2026-03-28T03:00:00.000Z', { wiki: 'dewiki', size: 'regular' }], // 04:00 CET
        ['2026-03-29T02:00:00.000Z', { wiki: 'dewiki', size: 'regular' }], // 04:00 CEST
        ['2026-03-29T03:00:00.000Z', { wiki: 'enwiki', size: 'large' }],
      ]);
      const keys = runs.map((r) => r.labels[SCHEDULE_LABEL]);
      expect(new Set(keys).size).toBe(2);
      expect([keys[0] === keys[3], keys[1] === keys[2]]).toEqual([true, true]);
    });

    it('applies each overlap rule at the tick: skip, queue, cancel_running', async () => {
      const wf = (name: string, overlap: string, extraLines = '') =>
        `name: ${name}\n${extraLines}schedule: { cron: "*/10 * * * *", overlap: ${overlap} }\ntasks:\n  work: { run: "sleep 1000" }\n`;
      await define(wf('skipper', 'skip'));
      await define(wf('queuer', 'queue', 'max_active_runs: 1\n'));
      await define(wf('canceller', 'cancel_running'));
      const d = duty();
      clock.t = Date.parse('2026-03-27T12:10:00Z');
      await d.pass(); // the first tick of each: three runs, all running
      const claimed = await store.claimJobs(W, 10, 60_000);
      expect(claimed).toHaveLength(3);
      clock.t += 10 * 60_000;
      await d.pass();
      // skip: its run is still running, the tick does nothing
      expect((await runsOf('skipper')).map((r) => r.state)).toEqual(['running']);
      // queue: a second run, held queued by max_active_runs
      expect((await runsOf('queuer')).map((r) => r.state)).toEqual(['running', 'queued']);
      // cancel_running: the running one is cancelled, the new one runs
      expect((await runsOf('canceller')).map((r) => r.state)).toEqual(['cancelled', 'running']);
      // skip starts fresh once its run has ended (here: failed)
      const first = (await runsOf('skipper'))[0]!;
      const c = claimed.find((x) => x.job.runId === first.id)!;
      await store.completeAttempt(c.fence, { state: 'failed', exitCode: 1, error: 'boom', retryable: false });
      clock.t += 10 * 60_000;
      await d.pass();
      expect((await runsOf('skipper')).map((r) => r.state)).toEqual(['failed', 'running']);
    });

    /**
     * Two hourly schedules in New York (UTC-5 in November) that ran once, at their 13:00Z tick (that run
     * finished), before a 3-day outage of every scheduler: 72 ticks missed, from 14:00Z on 2026-11-20.
     */
    async function beforeOutage(overlap: 'skip' | 'queue'): Promise<void> {
      const wf = (name: string, catchup: boolean) =>
        `name: ${name}\nschedule: { cron: "0 * * * *", timezone: America/New_York, catchup: ${catchup}, overlap: ${overlap} }\ntasks:\n  a: { run: "true" }\n`;
      clock.t = Date.parse('2026-11-20T12:30:00Z');
      await define(wf('hourly', true));
      await define(wf('latest', false));
      clock.t = Date.parse('2026-11-20T13:30:00Z');
      await duty().pass();
      const claimed = await store.claimJobs(W, 10, 60_000);
      expect(claimed).toHaveLength(2);
      for (const c of claimed) await store.completeAttempt(c.fence, { state: 'succeeded', exitCode: 0 });
      clock.t += 3 * DAY;
    }
    const missed = Array.from({ length: 72 }, (_, i) => new Date(Date.parse('2026-11-20T14:00:00Z') + i * HOUR).toISOString());
    /** The day in New York of a tick in November (EST, UTC-5), computed apart from the code under test. */
    const newYorkDay = (tick: string) => new Date(Date.parse(tick) - 5 * HOUR).toISOString().slice(0, 10).replace(/-/g, '');

    it('catch-up after a 3-day outage: every missed run, oldest first, with its own logical date; catchup false runs only the latest', async () => {
      // overlap skip: the catch-up runs do not skip each other (none was there when the later missed ticks came)
      await beforeOutage('skip');
      const d = duty(); // a scheduler started after the outage
      await d.pass();
      const hourly = (await runsOf('hourly')).slice(1);
      expect(ticksOf(hourly)).toEqual(missed);
      expect(hourly.map((r) => r.state)).toEqual(missed.map(() => 'running'));
      expect(hourly.map((r) => r.logicalDate)).toEqual(missed.map(newYorkDay));
      // midnight in New York is 05:00Z
      expect(hourly.filter((r) => r.labels[TICK_LABEL]!.startsWith('2026-11-21T0')).map((r) => r.logicalDate)).toEqual([
        '20261120', '20261120', '20261120', '20261120', '20261120', '20261121', '20261121', '20261121', '20261121', '20261121',
      ]);
      const latest = (await runsOf('latest')).slice(1);
      expect(ticksOf(latest)).toEqual(['2026-11-23T13:00:00.000Z']);
      // the audit log has each run created late (all missed ticks but the latest), with its run and the scheduler
      const catchups = await store.listAudit({ action: 'catchup.run_created', limit: 1000 });
      expect(catchups.map((e) => e.runId).sort((a, b) => a! - b!)).toEqual(hourly.slice(0, -1).map((r) => r.id).sort((a, b) => a - b));
      expect(catchups[0]).toMatchObject({ actor: 'scheduler', namespace: 'default', details: { workflow: 'hourly' } });
      expect(catchups[0]!.reason).toMatch(/^schedule 0 \* \* \* \* \(America\/New_York\) of hourly missed its tick of 2026-11-20T14:00:00.000Z: run created late \(catchup: true, 71 missed\)$/);
      // nothing twice: not on the next pass, nor by another scheduler reading the store afresh
      await d.pass();
      await duty().pass();
      expect(await runsOf('hourly')).toHaveLength(1 + 72);
      expect(await runsOf('latest')).toHaveLength(2);
      // back to normal: the next tick finds the catch-up runs running, and skips
      clock.t += HOUR;
      await d.pass();
      expect(await runsOf('hourly')).toHaveLength(1 + 72);
    });

    it('catch-up is bounded: past the limit only the latest missed ticks run, oldest first, and the older ones never do', async () => {
      await beforeOutage('queue');
      await duty({ catchupLimit: 24 }).pass();
      expect(ticksOf((await runsOf('hourly')).slice(1))).toEqual(missed.slice(-24));
      await duty().pass();
      expect(await runsOf('hourly')).toHaveLength(1 + 24);
    });

    it('starts exactly one run per tick with two schedulers racing on one database (no leader election to help)', async () => {
      await beforeOutage('queue');
      const other = await db.open(clock);
      extra.push(other);
      await Promise.all([duty().pass(), duty({ on: other }).pass(), duty({ on: other }).pass()]);
      const hourly = (await runsOf('hourly')).slice(1);
      expect(ticksOf(hourly)).toEqual(missed);
      expect(ticksOf((await runsOf('latest')).slice(1))).toEqual(['2026-11-23T13:00:00.000Z']);
      // and the whole scheduler, twice: one leads, one run for the next tick
      const opts = { reapIntervalMs: 1000, workerTimeoutMs: 60_000, logger: silentLogger(), clock };
      const a = new Scheduler(store, opts);
      const b = new Scheduler(other, opts);
      clock.t += HOUR;
      await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
      expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
      expect(await runsOf('hourly')).toHaveLength(1 + 72 + 1);
    });

    it('starts a deferred run (run --at) when due, as a run labelled with its record; one that can no longer start is marked failed', async () => {
      await define(`name: later\nparams:\n  who: { default: x }\ntasks:\n  a: { run: "echo {{ params.who }}" }\n`);
      await define(`name: strict\ntasks:\n  a: { run: "true" }\n`);
      const d = duty();
      const deferred = await deferRun(store, { workflow: 'later', params: { who: 'y' }, labels: { by: 'test' }, priority: 3 }, '+10m', clock.now());
      await deferRun(store, { workflow: 'strict' }, new Date(clock.now() + 5 * 60_000).toISOString(), clock.now());
      expect(deferred).toMatchObject({ state: 'waiting', dueAt: clock.now() + 10 * 60_000, runId: null });
      expect(await duty({ refreshMs: HOUR }).pass()).toBe(5 * 60_000); // sleeps until the first is due
      expect(await d.pass()).toBe(60_000); // (at most a minute)
      expect(await runsOf('later')).toEqual([]);
      // strict now needs a parameter its deferred run was not given
      await define(`name: strict\nparams:\n  must: { required: true }\ntasks:\n  a: { run: "true" }\n`);
      d.invalidate();
      clock.t += 10 * 60_000;
      await d.pass();
      const [run] = await runsOf('later');
      expect(run).toMatchObject({ params: { who: 'y' }, labels: { by: 'test', [DEFERRED_LABEL]: String(deferred.id) }, priority: 3, state: 'running' });
      expect(await store.listDeferredRuns({ workflow: 'later' })).toMatchObject([{ id: deferred.id, state: 'started', runId: run!.id }]);
      expect(await runsOf('strict')).toEqual([]);
      const [failed] = await store.listDeferredRuns({ workflow: 'strict' });
      expect(failed).toMatchObject({ state: 'failed', runId: null });
      expect(failed!.error).toMatch(/must/);
      // bad requests are refused up front
      await expect(deferRun(store, { workflow: 'later' }, 'tomorrow', clock.now())).rejects.toThrow(/at: 'tomorrow' is not a time/);
      await expect(deferRun(store, { workflow: 'later' }, '2020-01-01T00:00:00Z', clock.now())).rejects.toThrow(/in the past/);
      await expect(deferRun(store, { workflow: 'later', params: { nope: 1 } }, '+1m', clock.now())).rejects.toThrow(/nope/);
      await expect(deferRun(store, { workflow: 'missing' }, '+1m', clock.now())).rejects.toThrow(/no workflow 'missing'/);
      expect(await store.listDeferredRuns({})).toHaveLength(2);
    });

    it('the scheduler loop, asleep, is woken by the apply of a schedule and starts its ticks on time', async () => {
      const live = await db.open({ now: () => Date.now() });
      extra.push(live);
      const scheduler = new Scheduler(live, { reapIntervalMs: 60_000, workerTimeoutMs: 60_000, leaderTtlMs: 120_000, logger: silentLogger() });
      scheduler.start();
      try {
        // let it lead and go to sleep (nothing scheduled: it would sleep up to the lease renewal)
        await new Promise((r) => setTimeout(r, 300));
        const r = parseDefinitionSource(`name: every-second\nschedule: { cron: "* * * * * *", overlap: queue }\ntasks:\n  a: { run: "true" }\n`, '/tmp/every-second.yaml');
        const applied = Date.now();
        await live.putDefinitions([r.definition!]);
        const deadline = Date.now() + 10_000;
        let runs: Run[] = [];
        while (runs.length < 2 && Date.now() < deadline) {
          await new Promise((res) => setTimeout(res, 100));
          runs = await live.listRuns({ workflow: 'every-second' });
        }
        expect(runs.length).toBeGreaterThanOrEqual(2);
        // the first tick after the apply started within a second or so of its time
        const first = runs[runs.length - 1]!;
        const tickAt = Date.parse(first.labels[TICK_LABEL]!);
        expect(tickAt).toBeGreaterThan(applied - 1000);
        expect(first.createdAt - tickAt).toBeLessThan(1500);
      } finally {
        await scheduler.stop();
      }
    });
  });
}
