// The chaos scenario: 1,000 shell jobs of random short durations on 4 worker
// processes, every 4th of them in a pool of 3 slots, while a chaos loop kills a
// random worker with kill -9 every 2–4 s (and restarts it), pauses one with
// SIGSTOP for longer than its lease, and restarts PostgreSQL mid-run. Then it
// proves from the stamps the jobs wrote themselves (see harness.ts), not from
// the store's view: every job ended, from its final attempt; no two executions
// of a job overlapped; never more than 3 pooled executions at once.
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  assertProof,
  destroyClusters,
  maxConcurrent,
  proveRun,
  rand,
  readExecutions,
  restartPostgres,
  sleep,
  summary,
  type TaskDef,
} from './harness.js';

afterEach(destroyClusters);

const JOBS = 1_000;
const WORKERS = 4;
const SLOTS = 4;
const POOL_SLOTS = 3;
const LEASE_MS = 2_500;

describe('chaos', () => {
  it(`${JOBS} jobs on ${WORKERS} workers survive kill -9, SIGSTOP past the lease and a PostgreSQL restart`, async () => {
    const t0 = Date.now();
    const c = await Cluster.create({ lease: LEASE_MS, label: 'main' });
    await c.startServer();
    const names = Array.from({ length: WORKERS }, (_, i) => `w${i + 1}`);
    await Promise.all([c.startScheduler(), ...names.map((n) => c.startWorker(n, ['--slots', String(SLOTS)]))]);
    await c.cli(['pool', 'set', 'p3', String(POOL_SLOTS)]);
    expect(JSON.parse(await c.cli(['pools', '--json']))).toContainEqual(expect.objectContaining({ name: 'p3', slots: POOL_SLOTS }));

    const tasks: TaskDef[] = Array.from({ length: JOBS }, (_, i) => ({
      id: `t${String(i).padStart(4, '0')}`,
      ms: rand(20, 300),
      pool: i % 4 === 0 ? 'p3' : undefined,
    }));
    const pooled = new Set(tasks.filter((t) => t.pool).map((t) => t.id));
    await c.apply('chaos', c.workflowYaml('chaos', tasks));
    const started = Date.now();
    const id = await c.startRun('chaos');

    // ---------------------------------------------------------------- chaos
    let done = false;
    const log: string[] = [];
    const note = (s: string) => log.push(`+${((Date.now() - started) / 1000).toFixed(1)}s ${s}`);
    let kills = 0;
    let paused: string | null = null;
    let pausedFor = 0;
    let pgRestart: { at: number; tookMs: number } | null = null;
    const pending: Promise<unknown>[] = [];
    const live = new Map(names.map((n) => [n, n])); // slot → current worker name
    const chaos = (async () => {
      for (let round = 1; !done; round++) {
        await sleep(rand(2_000, 4_000));
        if (done) break;
        if (round === 2) {
          // (before this round's kill: a worker restarted while the database starts up would exit at once, as it should)
          const at = Date.now();
          note('restarting PostgreSQL');
          const r = await restartPostgres();
          pgRestart = { at, tookMs: r.tookMs };
          note(`PostgreSQL back after ${r.tookMs} ms`);
        }
        // kill -9 a random worker (not the paused one) and restart it: same name or a new one
        const slots = [...live.keys()].filter((s) => live.get(s) !== paused);
        const slot = slots[rand(0, slots.length - 1)]!;
        const victim = live.get(slot)!;
        await c.kill9Worker(victim);
        kills++;
        const next = round % 2 === 0 ? victim : `${slot}-r${round}`;
        live.set(slot, next);
        note(`kill -9 ${victim}, restarted as ${next}`);
        pending.push(c.startWorker(next, ['--slots', String(SLOTS)], false));
        if (round === 1) {
          // pause another worker past its lease: its jobs must die (supervisor) and be run elsewhere, never twice at once
          const others = [...live.values()].filter((n) => n !== next);
          paused = others[rand(0, others.length - 1)]!;
          pausedFor = LEASE_MS + 1_500;
          const p = c.workers.get(paused)!;
          p.signal('SIGSTOP');
          note(`SIGSTOP ${paused} for ${pausedFor} ms`);
          pending.push(
            sleep(pausedFor).then(() => {
              p.signal('SIGCONT');
              note(`SIGCONT ${paused}`);
              paused = null;
            }),
          );
        }
      }
    })();

    let run;
    try {
      run = await c.waitRunSucceeded(id, 140_000);
    } finally {
      done = true;
      await chaos;
      await Promise.allSettled(pending);
    }
    const tookMs = Date.now() - started;
    note(`run ${id} succeeded`);

    // The chaos happened while the run was going on.
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(pausedFor).toBeGreaterThan(LEASE_MS);
    expect(pgRestart, 'PostgreSQL was restarted mid-run').not.toBeNull();
    expect(pgRestart!.at).toBeLessThan(run.finishedAt!);

    // No job process outlives the run.
    await sleep(500);
    expect(c.jobProcesses(), 'job processes still alive after the run').toEqual([]);

    // ---------------------------------------------------------------- proof from the stamps
    const execs = readExecutions(c.stampDir);
    const proof = await proveRun(
      c,
      id,
      tasks.map((t) => t.id),
      execs,
    );
    const pool = maxConcurrent(execs.filter((e) => pooled.has(e.task)));
    const stats =
      `chaos: ${summary(proof)}; ${kills} kill -9, 1 SIGSTOP of ${pausedFor} ms, PostgreSQL restart of ${pgRestart!.tookMs} ms; ` +
      `most pooled executions at once ${pool.max}; run took ${(tookMs / 1000).toFixed(1)} s, test ${((Date.now() - t0) / 1000).toFixed(1)} s`;
    const crashes = c.crashes();
    console.log(`${stats}\n${log.join('\n')}${crashes.length ? `\nGantry processes that died by themselves:\n${crashes.join('\n')}` : ''}`);

    // Gantry's processes ride out the chaos: none dies except by the test's kill -9
    expect.soft(crashes, 'Gantry processes that died by themselves').toEqual([]);

    // (a) every job succeeded (store), and (d) ended exactly once from its final attempt (stamps)
    assertProof(proof);
    expect(proof.tasks).toBe(JOBS);
    expect(new Set(execs.filter((e) => e.outcome === 'end').map((e) => e.task)).size).toBe(JOBS);
    // (b) checked in proveRun: no two executions of a job overlapped
    // (c) the pool held
    expect(pool.max, `pooled executions at once at ${pool.at}: ${pool.running.join(', ')}`).toBeLessThanOrEqual(POOL_SLOTS);
    // the chaos did hit running jobs
    expect(proof.killed + proof.endedButLost + (proof.attemptsByState.lost ?? 0)).toBeGreaterThan(0);
  }, 175_000);
});
