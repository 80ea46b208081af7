// An admin confines a namespace's outputs to roots (namespace setting
// outputRoots): a job whose output lies outside them fails, without a retry,
// naming the path and the allowed roots, and nothing is written; inside, or in
// the workflow's own folder, it runs. On both stores.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';

onEveryStore('output roots', (storeName) => {
  let g: Cluster;
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 2, leaseMs: 3_000 });
  });
  afterEach(async () => {
    await g.close();
  });

  it('an output outside the roots fails the job naming it and the roots; inside and in its own folder it runs', async () => {
    const root = path.join(g.dir, 'dumps');
    const elsewhere = path.join(g.dir, 'elsewhere');
    fs.mkdirSync(root);
    await g.store.setNamespaceSettings('dumps', { outputRoots: [root] });
    g.write(
      'wf/confined.yaml',
      `name: confined\nnamespace: dumps\ntasks:\n  out:\n    retries: { max: 2, delay: 0s }\n    outputs: { o: ${elsewhere}/x.txt }\n    run: echo x > {{ outputs.o }}\n  in:\n    outputs: { o: ${root}/x.txt, local: here.txt }\n    run: echo x > {{ outputs.o }}; echo y > {{ outputs.local }}\n`,
    );
    expect((await g.apply('wf/confined.yaml')).status).toBe(200);
    const started = await g.inject('POST', '/api/v1/runs', { workflow: 'confined', namespace: 'dumps' });
    const run = await g.waitRun(started.body.id, 30_000);
    const jobs = await g.jobs(run.id);
    expect(jobs.out!.state).toBe('failed');
    expect(jobs.out!.attempts).toBe(1);
    expect(jobs.out!.error).toBe(`output o (${elsewhere}/x.txt) outside the roots this namespace's outputs are confined to: ${root} (and its workflow's folder ${path.join(g.dir, 'wf')})`);
    expect(fs.existsSync(elsewhere)).toBe(false);
    expect(jobs.in!.state, jobs.in!.error ?? '').toBe('succeeded');
    expect(fs.readFileSync(path.join(root, 'x.txt'), 'utf8')).toBe('x\n');
    expect(fs.readFileSync(path.join(g.dir, 'wf', 'here.txt'), 'utf8')).toBe('y\n');
  });
});
