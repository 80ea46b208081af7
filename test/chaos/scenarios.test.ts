// Chaos scenarios, one failure mode each, on real processes and the real
// PostgreSQL: every worker killed, PostgreSQL restarted (and down for longer
// than the lease), one worker killed over and over, Gantry's connections
// terminated, the scheduler leader killed, and the placement rules across
// differently equipped workers. Each proves from the stamps its jobs wrote
// (harness.ts) that nothing was lost: every job succeeded, each ended from its
// final attempt, and no two executions of a job overlapped. The scenarios under
// load (connection exhaustion, retry storm, priority) are in
// scenarios-load.test.ts, to keep each file within its time budget.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  LEASE_MS,
  cluster,
  destroyClusters,
  prove,
  rand,
  readExecutions,
  restartPostgres,
  sleep,
  succeeded,
  tasks,
  terminateBackends,
  waitRun,
  type TaskDef,
} from './harness.js';

afterEach(destroyClusters);

describe('chaos scenarios', () => {
  it('crash recovery: every worker killed with kill -9 mid-run, fresh ones finish the run', async () => {
    const c = await cluster('crash');
    const ts = tasks('c', 60, 200, 800);
    await c.apply('crash', c.workflowYaml('crash', ts));
    const id = await c.startRun('crash');
    await c.waitFor('15 jobs done', async () => (await succeeded(c, id)) >= 15, 30_000, 100);
    await Promise.all([c.kill9Worker('w1'), c.kill9Worker('w2')]);
    // their supervised jobs die with them
    await c.waitFor('the orphaned jobs to die', async () => c.jobProcesses().length === 0, 3_000, 100);
    await Promise.all([c.startWorker('fresh1'), c.startWorker('fresh2')]);
    await waitRun(c, id, 60_000);
    await prove(c, id, ts);
    const execs = readExecutions(c.stampDir);
    expect(execs.filter((e) => e.outcome === 'killed').length, 'executions cut short by the kill').toBeGreaterThan(0);
  });

  it('PostgreSQL restart mid-run: every process reconnects and carries on', async () => {
    const c = await cluster('pgrestart');
    // long jobs (claimed first) running while the database restarts, and short ones claimed and completed around it
    const ts = [...tasks('long', 4, 6_000, 7_000), ...tasks('p', 60, 200, 800)];
    await c.apply('pgr', c.workflowYaml('pgr', ts));
    const id = await c.startRun('pgr');
    await c.waitFor('10 jobs done', async () => (await succeeded(c, id)) >= 10, 30_000, 100);
    const before = c.processes.map((p) => p.pid);
    const { tookMs } = await restartPostgres();
    console.log(`PostgreSQL restarted in ${tookMs} ms`);
    await waitRun(c, id, 60_000);
    // the same processes, still running, still serving
    expect(c.processes.filter((p) => p.running).map((p) => p.pid)).toEqual(before);
    expect(JSON.parse(await c.cli(['status', String(id), '--json'])).state).toBe('succeeded');
    await prove(c, id, ts);
  });

  it('PostgreSQL down for longer than the lease: leases lapse, the jobs come back and succeed', async () => {
    const c = await cluster('pgdown');
    const ts = [...tasks('long', 4, 9_000, 10_000), ...tasks('d', 30, 200, 800)];
    await c.apply('pgd', c.workflowYaml('pgd', ts));
    const id = await c.startRun('pgd');
    await c.waitFor('the long jobs to run and 5 others to be done', async () => (await succeeded(c, id)) >= 5, 30_000, 100);
    const before = c.processes.map((p) => p.pid);
    // the long jobs cannot have their leases renewed: their supervisors kill them; they must go back to the queue
    const { downMs, tookMs } = await restartPostgres({ downMs: LEASE_MS + 1_000 });
    console.log(`PostgreSQL down for ${downMs} ms (back after ${tookMs} ms)`);
    await waitRun(c, id, 60_000);
    expect(c.processes.filter((p) => p.running).map((p) => p.pid)).toEqual(before);
    await prove(c, id, ts);
  });

  it('repeated worker kills: one worker killed 5 times in a row at short intervals', async () => {
    const c = await cluster('repeat');
    const ts = tasks('r', 80, 100, 600);
    await c.apply('rep', c.workflowYaml('rep', ts));
    const id = await c.startRun('rep');
    await c.waitFor('5 jobs done', async () => (await succeeded(c, id)) >= 5, 30_000, 100);
    for (let i = 0; i < 5; i++) {
      await c.kill9Worker('w1');
      await c.startWorker('w1', [], i % 2 === 0); // sometimes killed before it is even up
      await sleep(rand(500, 1_200));
    }
    await waitRun(c, id, 60_000);
    await prove(c, id, ts);
  });

  it("backend kill: Gantry's connections terminated mid-run (pg_terminate_backend)", async () => {
    const c = await cluster('backends');
    const ts = [...tasks('b', 120, 50, 300), ...tasks('blong', 4, 3_000, 4_000)];
    await c.apply('bk', c.workflowYaml('bk', ts));
    const id = await c.startRun('bk');
    await c.waitFor('10 jobs done', async () => (await succeeded(c, id)) >= 10, 30_000, 100);
    // several times, while jobs are claimed and completed busily: connections die in and between statements
    const terminated: number[] = [];
    for (let i = 0; i < 5; i++) {
      terminated.push(await terminateBackends(c.db));
      await sleep(400);
    }
    console.log(`terminated ${terminated.join(' + ')} connections`);
    expect(terminated[0]).toBeGreaterThan(0);
    await waitRun(c, id, 60_000);
    await prove(c, id, ts);
  });

  it('leader failover: the scheduler leader killed with kill -9, the other one takes over and runs the due retry within 5 s', async () => {
    const c = await cluster('leader', { schedulers: 2, workers: 1 });
    const ts: TaskDef[] = [
      { id: 'flaky', ms: 600, mode: 'fail-first', extra: ['    retries: { max: 1, delay: 1s }'] },
      ...tasks('l', 10, 100, 400),
    ];
    await c.apply('lf', c.workflowYaml('lf', ts));
    const leader = await c.waitFor('a scheduler leader', () => c.store.currentLeader('scheduler'), 10_000);
    const pid = Number(/^.*-(\d+)-[0-9a-f]{6}$/.exec(leader.holder)?.[1]);
    const [lead, other] = c.schedulers[0]!.pid === pid ? [c.schedulers[0]!, c.schedulers[1]!] : [c.schedulers[1]!, c.schedulers[0]!];
    expect(lead.pid, `leader ${leader.holder} is one of ours`).toBe(pid);

    const id = await c.startRun('lf');
    // kill the leader while flaky's first attempt runs: its retry falls due after the kill
    await c.waitFor('flaky to start', async () => fs.readdirSync(c.stampDir).some((f) => f.startsWith('flaky.1.')), 15_000, 20);
    await lead.kill9();
    const killedAt = Date.now();

    await waitRun(c, id, 30_000);
    const execs = readExecutions(c.stampDir).filter((e) => e.task === 'flaky');
    const second = execs.find((e) => e.attempt === 2);
    expect(execs.find((e) => e.attempt === 1)?.outcome).toBe('fail');
    expect(second?.outcome).toBe('end');
    const afterKill = second!.start / 1000 - killedAt;
    console.log(`flaky retried ${afterKill.toFixed(0)} ms after the leader was killed`);
    expect(afterKill).toBeLessThan(5_000);
    const now = await c.store.currentLeader('scheduler');
    expect(now?.holder).toMatch(new RegExp(`-${other.pid}-[0-9a-f]{6}$`));
    await prove(c, id, ts);
  });

  it('placement across differently equipped workers: resources, queue preference, unfittable jobs', async () => {
    const c = await Cluster.create({ lease: LEASE_MS, label: 'hosts' });
    await c.startServer();
    await c.startScheduler();
    // "gpu-host": default queue, one gpu; "bigmem-host": bigmem and default, no gpu
    await Promise.all([
      c.startWorker('gpu-host', ['--queues', 'default', '--cpu', '4', '--resource', 'gpu=1', '--slots', '4']),
      c.startWorker('bigmem-host', ['--queues', 'bigmem,default', '--cpu', '8', '--slots', '4']),
    ]);
    const gpu = tasks('g', 6, 300, 500, { extra: ['    resources: { gpu: 1 }'] });
    const plain = tasks('n', 12, 100, 300);
    const prefer = (id: string): TaskDef => ({ id, ms: 300, extra: ['    queue: [bigmem, default]'] });
    await c.apply('place', c.workflowYaml('place', [...gpu, ...plain]));
    await c.apply('pref1', c.workflowYaml('pref1', [prefer('pref1')]));
    await c.apply('pref2', c.workflowYaml('pref2', [prefer('pref2')]));
    await c.apply('huge', c.workflowYaml('huge', [{ id: 'huge', ms: 100, extra: ['    resources: { cpu: 64 }'] }]));

    const t0 = Date.now();
    const phase = (what: string) => console.log(`placement: ${what} after ${Date.now() - t0} ms`);
    const id = await c.startRun('place');
    await waitRun(c, id, 60_000);
    phase('first run done');
    const jobs = new Map((await c.jobs(id)).map((j) => [j.task, j]));
    for (const g of gpu) expect(jobs.get(g.id)?.worker, `${g.id} needs a gpu`).toBe('gpu-host');
    // one gpu: the gpu jobs never ran two at once
    const gpuSet = new Set(gpu.map((g) => g.id));
    const gpuExecs = readExecutions(c.stampDir)
      .filter((e) => gpuSet.has(e.task))
      .sort((a, b) => a.start - b.start);
    for (let i = 1; i < gpuExecs.length; i++) expect(gpuExecs[i]!.start, `${gpuExecs[i]!.file} started while ${gpuExecs[i - 1]!.file} ran`).toBeGreaterThanOrEqual(gpuExecs[i - 1]!.stop);
    await prove(c, id, [...gpu, ...plain]);

    // both workers idle: the default-queue worker could take it, but the bigmem worker is preferred
    const id1 = await c.startRun('pref1');
    await waitRun(c, id1, 30_000);
    expect((await c.jobs(id1))[0]?.worker, 'queue [bigmem, default] while the bigmem worker is alive and free').toBe('bigmem-host');
    await prove(c, id1, [prefer('pref1')]);

    await c.kill9Worker('bigmem-host');
    const id2 = await c.startRun('pref2');
    await waitRun(c, id2, 30_000);
    phase('pref2 done');
    expect((await c.jobs(id2))[0]?.worker, 'queue [bigmem, default] once the bigmem worker is gone').toBe('gpu-host');
    await prove(c, id2, [prefer('pref2')]);

    const id3 = await c.startRun('huge');
    const waiting = await c.waitFor(
      'a waiting reason for the cpu: 64 job',
      async () => {
        const list = JSON.parse(await c.cli(['jobs', '--run', String(id3), '--json'])) as { task: string; state: string; waitingReason?: string | null }[];
        const j = list.find((x) => x.task === 'huge');
        return j?.waitingReason ? j : null;
      },
      15_000,
      300,
    );
    phase('waiting reason seen');
    console.log(`cpu: 64 job: ${waiting.state}, waitingReason: ${waiting.waitingReason}`);
    expect(waiting.state).toBe('queued');
    expect(waiting.waitingReason).toMatch(/cpu/);
    expect(waiting.waitingReason).toMatch(/64/);
    expect(fs.readdirSync(c.stampDir).some((f) => f.startsWith('huge.'))).toBe(false);
    await c.cli(['cancel', String(id3)]);
  });
});
