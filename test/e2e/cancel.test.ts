// Cancel of a running split task from another process, on both stores: the
// jobs run in a real `gantry worker` process, the cancel comes from the CLI (a
// third process) through the API. The worker learns it through the store
// (NOTIFY on PostgreSQL, its heartbeat on SQLite), kills the process trees of
// the running chunks, and --clean deletes their partial outputs; completed
// chunks keep theirs.
import { it, expect, beforeEach, afterEach, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { BIN, cleanup, gantry, isAlive, trackPid, waitFor, rememberToken } from './helpers.js';

afterAll(cleanup);

const pidsIn = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number) : []);

onEveryStore('cancel from another process', (storeName) => {
  let g: Cluster;
  let server: string;
  let worker: ChildProcess | null = null;
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 1, leaseMs: 3_000 });
    server = await g.app.listen({ port: 0, host: '127.0.0.1' });
    rememberToken(server, g.token);
  });
  afterEach(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    await g.close();
  });

  it('gantry cancel --clean of a running split task run by a gantry worker process: process trees gone, only completed outputs remain', async () => {
    g.write('wf.yaml', `name: chunks
params: { dir: { required: true } }
defaults: { queue: chunks }
tasks:
  parts:
    split: echo '[0, 1, 2, 3]'
    run: |
      if [ {{ chunk.index }} -ge 2 ]; then
        echo partial > {{ params.dir }}/out/part-{{ chunk.index }}.txt
        sleep 600 & echo $! $$ > {{ params.dir }}/pids-{{ chunk.index }}; wait
      fi
      echo whole > {{ outputs.part }}
    outputs: { part: "out/part-{{ chunk.index }}.txt" }
`);
    fs.mkdirSync(path.join(g.dir, 'out'));
    expect((await g.apply('wf.yaml')).status).toBe(200);
    worker = spawn(process.execPath, [BIN, 'worker', '--db', g.db, '--name', 'chunker', '--queues', 'chunks', '--slots', '4', '--lease', '3000'], { stdio: 'ignore' });
    const run = (await g.startRun('chunks', { dir: g.dir })).body;
    const pidFiles = [2, 3].map((i) => path.join(g.dir, `pids-${i}`));
    await waitFor('chunks 0 and 1 done, 2 and 3 running', async () => {
      const js = await g.store.listJobs({ runId: run.id });
      const done = js.filter((j) => j.chunk !== null && j.state === 'succeeded').length;
      return done === 2 && pidFiles.every((f) => pidsIn(f).length === 2);
    }, { timeoutMs: 30_000 });
    const pids = pidFiles.flatMap(pidsIn);
    pids.forEach(trackPid);
    expect((await g.store.listJobs({ runId: run.id })).filter((j) => j.state === 'running').every((j) => j.worker === 'chunker')).toBe(true);

    const cancelled = await gantry(['cancel', String(run.id), '--clean'], { server });
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(/cancelled/);
    await waitFor('the process trees gone', async () => pids.every((p) => !isAlive(p)), { timeoutMs: 10_000 });
    const out = (i: number) => path.join(g.dir, 'out', `part-${i}.txt`);
    await waitFor('partial outputs deleted', async () => !fs.existsSync(out(2)) && !fs.existsSync(out(3)), { timeoutMs: 10_000 });
    expect(fs.readFileSync(out(0), 'utf8')).toBe('whole\n');
    expect(fs.readFileSync(out(1), 'utf8')).toBe('whole\n');
    expect(fs.readdirSync(path.join(g.dir, 'out')).sort()).toEqual(['part-0.txt', 'part-1.txt']);
    expect((await g.store.getRun(run.id))!.state).toBe('cancelled');
  });
});
