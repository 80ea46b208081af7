// The worker's own preparation and finishing fail the attempt with their real
// cause, as a try of the job (retried per its policy), never left running
// until the lease ends and requeued as lost; concurrent attempts of a job keep
// their staged outputs apart.
import { it, expect, beforeEach, afterEach, describe } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { commitOutputs, discardStaging, prepareStaging } from '../../src/worker/outputs.js';

onEveryStore('preparation failures', (storeName) => {
  let g: Cluster;
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 2, leaseMs: 3_000 });
  });
  afterEach(async () => {
    await g.close();
  });

  it('an output that cannot be created fails the attempt with its error, and the job ends failed after retries.max + 1 attempts', async () => {
    g.write('badout.yaml', `name: badout\ntasks:\n  t:\n    retries: { max: 1, delay: 0s }\n    outputs: { o: /etc/hostname/sub/x.txt }\n    run: echo hi > {{ outputs.o }}\n`);
    expect((await g.apply('badout.yaml')).status).toBe(200);
    const started = await g.startRun('badout');
    const run = await g.waitRun(started.body.id, 20_000);
    expect(run.state).toBe('failed');
    const job = (await g.jobs(run.id)).t!;
    expect(job.state).toBe('failed');
    expect(job.attempts).toBe(2);
    expect(job.error).toMatch(/ENOTDIR.*mkdir '\/etc\/hostname\/sub/);
    const attempts = await g.store.listAttempts(job.id);
    expect(attempts.map((a) => a.state)).toEqual(['failed', 'failed']);
    for (const a of attempts) expect(a.error).toMatch(/cannot prepare its outputs: ENOTDIR/);
    const log = (await g.store.readLogs({ jobId: job.id })).map((l) => l.line);
    expect(log.filter((l) => l.includes('failed: cannot prepare its outputs'))).toHaveLength(2);
  });

  it('an output that cannot be moved into place fails the attempt with the error, as a try', async () => {
    // the job makes its output a directory and puts a file at the final path: a directory cannot be renamed over a file
    const out = path.join(g.dir, 'out');
    g.write('norename.yaml', `name: norename\ntasks:\n  t:\n    outputs: { o: ${out}/x }\n    run: mkdir {{ outputs.o }} && touch ${out}/x\n`);
    expect((await g.apply('norename.yaml')).status).toBe(200);
    const started = await g.startRun('norename');
    const run = await g.waitRun(started.body.id, 20_000);
    const job = (await g.jobs(run.id)).t!;
    expect(job.state).toBe('failed');
    expect(job.attempts).toBe(1);
    expect(job.error).toMatch(/^cannot move its outputs into place: ENOTDIR.*rename/);
    expect(fs.readdirSync(out)).toEqual(['x']);
  });
});

describe('staging', () => {
  it('two attempts of one output stage in folders of their own: one discarded leaves the other whole', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-staging-'));
    try {
      const outputs = { o: path.join(dir, 'out', 'x.txt') };
      const a = await prepareStaging(outputs, 7);
      const b = await prepareStaging(outputs, 8);
      expect(path.dirname(a.o!)).not.toBe(path.dirname(b.o!));
      fs.writeFileSync(a.o!, 'seven');
      fs.writeFileSync(b.o!, 'eight');
      await discardStaging(outputs, 7);
      expect(fs.readFileSync(b.o!, 'utf8')).toBe('eight');
      await commitOutputs(outputs, 8);
      expect(fs.readFileSync(outputs.o, 'utf8')).toBe('eight');
      expect(fs.readdirSync(path.join(dir, 'out'))).toEqual(['x.txt']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
