// A task's declared bounds hold: `resources.memory` is its address-space
// limit, `limits: {cpu_time, open_files, processes}` its other rlimits
// (defaults inherited, a task's own winning), and a job past its memory fails.
// A bad limit is refused at apply, naming the field.
import { it, expect, beforeEach, afterEach } from 'vitest';
import { cluster, type Cluster } from '../helpers/cluster.js';

let g: Cluster;
beforeEach(async () => {
  g = await cluster('SQLite', { slots: 2 });
});
afterEach(async () => {
  await g.close();
});

it('resources.memory and limits: become the rlimits of the job, defaults inherited', async () => {
  g.write(
    'lim.yaml',
    `name: lim
defaults:
  limits: { open_files: 64, cpu_time: 90s }
tasks:
  show:
    resources: { memory: 200M }
    limits: { processes: 4000 }
    run: echo "$(ulimit -n) $(ulimit -v) $(ulimit -t)"; grep 'Max processes' /proc/self/limits | tr -s ' ' | cut -d' ' -f3
  free:
    limits: { open_files: 100 }
    run: echo "$(ulimit -v)"
  hog:
    resources: { memory: 64M }
    run: head -c 300000000 /dev/zero | sort > /dev/null
`,
  );
  expect((await g.apply('lim.yaml')).status).toBe(200);
  const started = await g.startRun('lim');
  const run = await g.waitRun(started.body.id, 30_000);
  const jobs = await g.jobs(run.id);
  expect(jobs.show!.state, jobs.show!.error ?? '').toBe('succeeded');
  expect(await g.stdout(jobs.show!.id)).toEqual([`64 ${200 * 1024} 90`, '4000']);
  expect(await g.stdout(jobs.free!.id)).toEqual(['unlimited']);
  // sort cannot get the memory it asks for under 64 MB of address space
  expect(jobs.hog!.state).toBe('failed');
});

it('a bad limit is refused at apply with its field', async () => {
  g.write('bad.yaml', `name: bad\ntasks:\n  t:\n    limits: { open_files: 0, cpu_time: soon }\n    run: "true"\n`);
  const r = await g.apply('bad.yaml');
  expect(r.status).toBe(400);
  const text = JSON.stringify(r.body);
  expect(text).toMatch(/open_files/);
  expect(text).toMatch(/cpu_time/);
});
