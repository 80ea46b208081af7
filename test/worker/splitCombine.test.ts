// split / combine, end to end on both stores: a split step yields a JSON
// array, one job per element runs (claimed, retried and rerun one by one), the
// combine sees every chunk's outputs and results in order. What is checked is
// what a user sees: job ids and states, attempts, files, logs.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import type { Job } from '../../src/store/types.js';

onEveryStore('split/combine', (storeName) => {
  let g: Cluster;
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 8 });
  });
  afterEach(async () => {
    await g.close();
  });

  async function jobsOf(runId: number): Promise<Job[]> {
    return g.store.listJobs({ runId });
  }

  it('splits into 100 chunks, 3 of which fail once and pass on retry; combine sees the parts in order; downstream reads the combine', async () => {
    g.write('wf.yaml', `name: chunky
tasks:
  plan:
    run: 'echo "{\\"n\\": 100}"'
  articles:
    needs: [plan]
    split: |
      node -e 'console.log(JSON.stringify(Array.from({length: 100}, (_, i) => ({start: i * 10, end: i * 10 + 9}))))'
    run: |
      case {{ chunk.index }} in 7|42|99)
        if [ ! -e {{ params.dir }}/tried-{{ chunk.index }} ]; then touch {{ params.dir }}/tried-{{ chunk.index }}; exit 1; fi;;
      esac
      echo {{ chunk.start }}-{{ chunk.end }} > {{ outputs.part }}
      echo '{"rows": {{ chunk.end }}}' > "$GANTRY_RESULT"
    outputs: { part: "out/part-{{ chunk.index }}.txt" }
    retries: { max: 1, delay: 1s }
    combine:
      run: |
        cat {{ chunks.outputs.part }} > {{ outputs.all }}
        echo results: {{ chunks.results }}
      outputs: { all: "out/all.txt" }
  publish:
    needs: [articles]
    run: wc -l < {{ tasks.articles.outputs.all }}
params: { dir: { required: true } }
`);
    expect((await g.apply('wf.yaml')).status).toBe(200);
    const r = await g.startRun('chunky', { dir: g.dir });
    expect(r.status).toBe(201);
    const run = await g.waitRun(r.body.id, 120_000);
    expect(run.state).toBe('succeeded');
    const jobs = await jobsOf(run.id);
    const chunks = jobs.filter((j) => j.task === 'articles' && j.chunk !== null).sort((a, b) => a.chunk! - b.chunk!);
    expect(chunks).toHaveLength(100);
    expect(chunks.every((j) => j.state === 'succeeded')).toBe(true);
    expect(chunks.filter((j) => j.attempts === 2).map((j) => j.chunk)).toEqual([7, 42, 99]);
    expect(chunks[42]!.id).toBe(`${run.id}:articles#42`);
    const all = fs.readFileSync(path.join(g.dir, 'out/all.txt'), 'utf8').trim().split('\n');
    expect(all).toHaveLength(100);
    expect(all[0]).toBe('0-9');
    expect(all[99]).toBe('990-999');
    const split = jobs.find((j) => j.task === 'articles.split')!;
    expect(split.state).toBe('succeeded');
    expect(split.result).toEqual({ chunks: 100 });
    const combine = jobs.find((j) => j.task === 'articles' && j.chunk === null)!;
    // results are one quoted word each: the JSON of each chunk's result
    const resultsLine = (await g.stdout(combine.id)).find((l) => l.startsWith('results: '))!;
    const words = resultsLine.slice('results: '.length).split(' ');
    expect(words).toHaveLength(100);
    expect(JSON.parse(words[99]!)).toEqual({ rows: 999 });
    // each chunk waited for the split, the combine for every chunk
    expect(Math.min(...chunks.map((j) => j.startedAt!))).toBeGreaterThanOrEqual(split.finishedAt!);
    expect(combine.startedAt!).toBeGreaterThanOrEqual(Math.max(...chunks.map((j) => j.finishedAt!)));
    // what `gantry status` shows per task
    const status = await g.inject<{ tasks: { task: string; chunks: unknown }[] }>('GET', `/api/v1/runs/${run.id}`);
    const tasks = status.body.tasks;
    expect(tasks.find((t) => t.task === 'articles')!.chunks).toEqual({ done: 100, total: 100, running: 0, failed: 0 });
    const publish = jobs.find((j) => j.task === 'publish')!;
    expect((await g.stdout(publish.id)).map((l) => l.trim())).toContain('100');
  }, 180_000);

  it('retry --failed reruns only the failed chunks and what they skipped', async () => {
    g.write('wf.yaml', `name: flaky
params: { dir: { required: true } }
defaults: { retries: 0 }
tasks:
  parts:
    split: echo '[1, 2, 3, 4, 5, 6]'
    run: |
      if [ -e {{ params.dir }}/fail-{{ chunk.value }} ]; then echo "chunk {{ chunk.value }} fails"; exit 3; fi
      echo {{ chunk.value }} > {{ outputs.p }}
    outputs: { p: "out/p{{ chunk.value }}.txt" }
  after:
    needs: [parts]
    run: echo after
`);
    fs.writeFileSync(path.join(g.dir, 'fail-3'), '');
    fs.writeFileSync(path.join(g.dir, 'fail-5'), '');
    expect((await g.apply('wf.yaml')).status).toBe(200);
    const r = await g.startRun('flaky', { dir: g.dir });
    const first = await g.waitRun(r.body.id);
    expect(first.state).toBe('failed');
    const before = await jobsOf(first.id);
    const state = (js: Job[]) => Object.fromEntries(js.map((j) => [j.chunk === null ? j.task : `${j.task}#${j.chunk}`, j.state]));
    expect(state(before)).toMatchObject({ 'parts#2': 'failed', 'parts#4': 'failed', 'parts#0': 'succeeded', parts: 'skipped', after: 'skipped' });
    const mid = (await g.inject<{ tasks: { task: string; chunks: unknown }[] }>('GET', `/api/v1/runs/${first.id}`)).body;
    expect(mid.tasks.find((t) => t.task === 'parts')!.chunks).toEqual({ done: 4, total: 6, running: 0, failed: 2 });
    fs.rmSync(path.join(g.dir, 'fail-3'));
    fs.rmSync(path.join(g.dir, 'fail-5'));
    const retry = await g.retry(first.id, { failed: true });
    expect(retry.status).toBe(200);
    expect(retry.body.reset).toBe(4); // two chunks, the join, the dependent
    const second = await g.waitRun(first.id);
    expect(second.state).toBe('succeeded');
    const after = await jobsOf(first.id);
    const byKey = (js: Job[]) => new Map(js.map((j) => [`${j.task}#${j.chunk}`, j]));
    const b = byKey(before);
    for (const j of after) {
      const old = b.get(`${j.task}#${j.chunk}`)!;
      expect(old, `${j.id} kept its id`).toBeDefined();
      if (j.chunk === 2 || j.chunk === 4) expect(j.attempts).toBe(2);
      else if (j.task === 'parts.split' || j.chunk !== null) {
        expect(j.attempts).toBe(1);
        expect(j.finishedAt).toBe(old.finishedAt);
      }
    }
    expect(fs.readdirSync(path.join(g.dir, 'out')).sort()).toEqual(['p1.txt', 'p2.txt', 'p3.txt', 'p4.txt', 'p5.txt', 'p6.txt']);

    // a whole rerun splits again: fresh chunks replace the old ones (forced, so nothing is skipped as done)
    expect((await g.retry(first.id, { failed: false, force: true })).status).toBe(200);
    const third = await g.waitRun(first.id);
    expect(third.state).toBe('succeeded');
    const rerun = await jobsOf(first.id);
    const chunkJobs = rerun.filter((j) => j.chunk !== null);
    expect(chunkJobs).toHaveLength(6);
    expect(chunkJobs.every((j) => j.attempts === 1 && j.state === 'succeeded')).toBe(true);
    expect(rerun.find((j) => j.task === 'parts.split')!.attempts).toBe(2);
  }, 60_000);

  it('goes straight to the combine when the split yields an empty array', async () => {
    g.write('wf.yaml', `name: nothing
tasks:
  parts:
    split: echo '[]'
    run: echo never
    outputs: { p: "out/{{ chunk.index }}" }
    combine: 'echo "got {{ chunks.results }}"'
`);
    await g.apply('wf.yaml');
    const run = await g.waitRun((await g.startRun('nothing')).body.id);
    expect(run.state).toBe('succeeded');
    const jobs = await jobsOf(run.id);
    expect(jobs.map((j) => j.task).sort()).toEqual(['parts', 'parts.split']);
    expect((await g.stdout(`${run.id}:parts`)).map((l) => l.trim())).toEqual(['got']); // no chunks: an empty list, no words
  });

  it('runs split, chunks and combine as handlers', async () => {
    g.write('h.ts', `
export async function plan() { return ['de', 'fr', 'it']; }
export async function chunk(ctx: { chunk: { value: string; index: number } }) { return { wiki: ctx.chunk.value + 'wiki', i: ctx.chunk.index }; }
export async function join(ctx: { chunks: { results: { wiki: string }[] } }) { return { wikis: ctx.chunks.results.map((r) => r.wiki) }; }
`);
    g.write('wf.yaml', `name: handled
tasks:
  wikis:
    split: { handler: "h.ts#plan" }
    handler: "h.ts#chunk"
    combine: { handler: "h.ts#join" }
  show:
    needs: [wikis]
    run: echo '{{ tasks.wikis.result.wikis }}'
`);
    expect((await g.apply('wf.yaml')).status).toBe(200);
    const run = await g.waitRun((await g.startRun('handled')).body.id);
    expect(run.state).toBe('succeeded');
    // a list in a shell template becomes separate words
    expect(await g.stdout(`${run.id}:show`)).toEqual(['dewiki frwiki itwiki']);
    expect((await g.store.getJob(`${run.id}:wikis#2`))!.result).toEqual({ wiki: 'itwiki', i: 2 });
  });

  it('runs at most `concurrency` chunks of a task at once', async () => {
    g.write('wf.yaml', `name: capped
params: { dir: { required: true } }
tasks:
  parts:
    split: echo '[0, 1, 2, 3, 4, 5]'
    concurrency: 2
    run: |
      echo "start $(date +%s%N)" >> {{ params.dir }}/stamps-{{ chunk.index }}
      sleep 0.3
      echo "end $(date +%s%N)" >> {{ params.dir }}/stamps-{{ chunk.index }}
`);
    await g.apply('wf.yaml');
    const run = await g.waitRun((await g.startRun('capped', { dir: g.dir })).body.id);
    expect(run.state).toBe('succeeded');
    // from the jobs' own stamps: how many ran at the same moment
    const marks: [bigint, number][] = [];
    for (let i = 0; i < 6; i++)
      for (const line of fs.readFileSync(path.join(g.dir, `stamps-${i}`), 'utf8').trim().split('\n')) {
        const [what, ns] = line.split(' ');
        marks.push([BigInt(ns!), what === 'start' ? 1 : -1]);
      }
    marks.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
    let now = 0;
    let peak = 0;
    for (const [, d] of marks) peak = Math.max(peak, (now += d));
    expect(peak).toBe(2);
  });

  it('fails the split with a clear error when it does not print a JSON array', async () => {
    g.write('wf.yaml', `name: badsplit
tasks:
  parts:
    split: echo 'not json'
    run: echo x
    retries: 0
`);
    await g.apply('wf.yaml');
    const run = await g.waitRun((await g.startRun('badsplit')).body.id);
    expect(run.state).toBe('failed');
    const split = (await g.store.getJob(`${run.id}:parts.split`))!;
    expect(split.state).toBe('failed');
    expect(split.error).toContain('split output is not JSON: not json');
    expect(split.attempts).toBe(1);
  });
});
