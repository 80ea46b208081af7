// Operations on both stores, with real processes: drain and stop a worker
// (gently or with --terminate), stall_timeout kills, cancel --clean of a
// running split task. What is checked is what an operator sees: worker and
// job states, attempts, files on disk, processes gone.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { workerFor } from '../../src/up.js';
import { silentLogger } from '../../src/log.js';
import type { Worker } from '../../src/worker/worker.js';
import type { WorkerRow } from '../../src/store/types.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
const pidsIn = (file: string) => fs.readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number);

onEveryStore('operations', (storeName) => {
  let g: Cluster;
  const extra: Worker[] = [];
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 4, leaseMs: 3_000 });
  });
  afterEach(async () => {
    for (const w of extra.splice(0)) await w.stop({ graceful: false });
    await g.close();
  });

  const post = async <T>(url: string, payload: object = {}) => {
    return g.inject<T>('POST', url, payload);
  };
  const firstWorker = async () => (await g.store.listWorkers())[0]!;
  /** a second worker: what a deploy starts after the drain */
  async function anotherWorker(name: string): Promise<Worker> {
    const w = workerFor(g.store, { name, queues: ['default'], slots: 4, leaseMs: 3_000, killGraceMs: 500, logger: silentLogger() });
    extra.push(w);
    await w.start();
    return w;
  }

  it('drain: the running job finishes, nothing new is claimed, the worker shows draining; a new worker takes the rest (a deploy loses nothing)', async () => {
    g.write('wf.yaml', `name: slow\ntasks:\n  a: { run: "sleep 1.5; echo done" }\n`);
    expect((await g.apply('wf.yaml')).status).toBe(200);
    const r1 = (await g.startRun('slow')).body;
    await until('a running', async () => (await g.jobs(r1.id)).a!.state === 'running');
    const w = await firstWorker();
    const drained = await post<WorkerRow>(`/api/v1/workers/${w.name}/drain`);
    expect(drained.status).toBe(200);
    expect(drained.body.state).toBe('draining');
    expect(drained.body.running).toEqual([`${r1.id}:a`]);
    await sleep(1_200); // "within a second or two": the worker has seen it
    const r2 = (await g.startRun('slow')).body;
    expect((await g.waitRun(r1.id)).state).toBe('succeeded');
    await sleep(1_500);
    expect((await g.jobs(r2.id)).a!.state).toBe('queued');
    const after = (await g.store.listWorkers()).find((x) => x.name === w.name)!;
    expect(after.state).toBe('draining');
    expect(after.running).toEqual([]);
    expect((await post(`/api/v1/workers/nobody/drain`)).status).toBe(404);
    await anotherWorker('w-new');
    expect((await g.waitRun(r2.id)).state).toBe('succeeded');
    expect((await g.jobs(r2.id)).a!.worker).toBe('w-new');
  });

  it('stop: drains, then the worker ends (stopped); stop --terminate kills the process tree now and requeues the job as lost, another worker runs it', async () => {
    g.write('wf.yaml', `name: tree
params: { dir: { required: true } }
tasks:
  t:
    run: |
      if [ "$GANTRY_ATTEMPT" = 1 ]; then
        sleep 60 & echo $! > {{ params.dir }}/pids; echo $$ >> {{ params.dir }}/pids; wait
      fi
      echo finished on attempt $GANTRY_ATTEMPT
`);
    expect((await g.apply('wf.yaml')).status).toBe(200);
    const run = (await g.startRun('tree', { dir: g.dir })).body;
    const pidFile = path.join(g.dir, 'pids');
    await until('the job and its child running', async () => fs.existsSync(pidFile) && pidsIn(pidFile).length === 2);
    const pids = pidsIn(pidFile);
    const w = await firstWorker();
    expect((await post<WorkerRow>(`/api/v1/workers/${w.name}/stop`, { terminate: true })).body.state).toBe('draining');
    await until('the process tree gone', async () => pids.every((p) => !alive(p)), 5_000);
    await until('the worker stopped', async () => (await g.store.listWorkers()).find((x) => x.name === w.name)!.state === 'stopped');
    const job = (await g.jobs(run.id)).t!;
    expect(job.state).toBe('queued');
    expect(job.failures).toBe(0);
    const [first] = await g.store.listAttempts(job.id);
    expect(first!.state).toBe('lost');
    expect(first!.error).toMatch(/--terminate/);
    await anotherWorker('w-next');
    expect((await g.waitRun(run.id)).state).toBe('succeeded');
    expect(await g.stdout(job.id)).toContain('finished on attempt 2');
    expect((await post(`/api/v1/workers/${w.name}/stop`, {})).status).toBe(409);

    // a plain stop: the running job finishes first, then the worker ends
    const w2 = extra[0]!;
    g.write('wf2.yaml', `name: short\ntasks:\n  s: { run: "sleep 1; echo ok" }\n`);
    await g.apply('wf2.yaml');
    const r2 = (await g.startRun('short')).body;
    await until('s running', async () => (await g.jobs(r2.id)).s!.state === 'running');
    expect((await post<WorkerRow>(`/api/v1/workers/${w2.name}/stop`)).body.state).toBe('draining');
    await w2.stopped;
    expect((await g.jobs(r2.id)).s!.state).toBe('succeeded');
    expect((await g.store.listWorkers()).find((x) => x.name === w2.name)!.state).toBe('stopped');
  });

  it('stall_timeout: a job silent past it is killed and retried; one that reports progress keeps running', async () => {
    g.write('wf.yaml', `name: stall
tasks:
  silent:
    stall_timeout: 1s
    retries: { max: 1, delay: 0s }
    run: |
      if [ "$GANTRY_ATTEMPT" = 1 ]; then sleep 60; fi
      echo second try ok
  chatty:
    stall_timeout: 1s
    run: |
      for i in 1 2 3 4 5 6 7 8; do echo "gantry-progress $((i * 12))" >&2; sleep 0.4; done
      echo chatty ok
`);
    expect((await g.apply('wf.yaml')).status).toBe(200);
    const run = (await g.startRun('stall')).body;
    expect((await g.waitRun(run.id, 30_000)).state).toBe('succeeded');
    const jobs = await g.jobs(run.id);
    expect(jobs.silent!.attempts).toBe(2);
    const [first] = await g.store.listAttempts(jobs.silent!.id);
    expect(first!.state).toBe('failed');
    expect(first!.error).toMatch(/^stalled: no output or progress for 1s/);
    const system = (await g.store.readLogs({ jobId: jobs.silent!.id })).filter((l) => l.stream === 'system').map((l) => l.line);
    expect(system.some((l) => l.includes('stalled') && l.includes('killing its process tree'))).toBe(true);
    expect(jobs.chatty!.attempts).toBe(1);
    expect(await g.stdout(jobs.chatty!.id)).toContain('chatty ok');
  });

  it('cancel --clean of a running split task: process trees gone, completed chunks keep their outputs, partial ones are deleted', async () => {
    g.write('wf.yaml', `name: chunks
params: { dir: { required: true } }
tasks:
  parts:
    split: echo '[0, 1, 2, 3]'
    run: |
      if [ {{ chunk.index }} -ge 2 ]; then
        echo partial > {{ params.dir }}/out/part-{{ chunk.index }}.txt
        sleep 60 & echo $! $$ > {{ params.dir }}/pids-{{ chunk.index }}; wait
      fi
      echo whole > {{ outputs.part }}
    outputs: { part: "out/part-{{ chunk.index }}.txt" }
`);
    fs.mkdirSync(path.join(g.dir, 'out'));
    expect((await g.apply('wf.yaml')).status).toBe(200);
    const run = (await g.startRun('chunks', { dir: g.dir })).body;
    const pidFiles = [2, 3].map((i) => path.join(g.dir, `pids-${i}`));
    await until('chunks 0 and 1 done, 2 and 3 running', async () => {
      const js = await g.store.listJobs({ runId: run.id });
      const done = js.filter((j) => j.chunk !== null && j.state === 'succeeded').length;
      return done === 2 && pidFiles.every((f) => fs.existsSync(f) && pidsIn(f).length === 2);
    });
    const pids = pidFiles.flatMap(pidsIn);
    const out = (i: number) => path.join(g.dir, 'out', `part-${i}.txt`);
    expect(fs.existsSync(out(2))).toBe(true);
    const res = await post<{ state: string }>(`/api/v1/runs/${run.id}/cancel`, { clean: true });
    expect(res.body.state).toBe('cancelled');
    await until('the process trees gone', async () => pids.every((p) => !alive(p)), 5_000);
    await until('partial outputs deleted', async () => !fs.existsSync(out(2)) && !fs.existsSync(out(3)), 5_000);
    expect(fs.readFileSync(out(0), 'utf8')).toBe('whole\n');
    expect(fs.readFileSync(out(1), 'utf8')).toBe('whole\n');
    expect(fs.readdirSync(path.join(g.dir, 'out')).sort()).toEqual(['part-0.txt', 'part-1.txt']);
  });
});
