// Sub-workflows and foreach, end to end on both stores: workflow files applied
// through the API, runs started through it, real processes run by a worker.
// What is checked is what a user sees: job ids, job states and times, logs,
// files, and the API's answers.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import type { Job } from '../../src/store/types.js';

const started = (j: Job) => j.startedAt!;
const finished = (j: Job) => j.finishedAt!;

onEveryStore('sub-workflows', (storeName) => {
  let g: Cluster;
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 8 });
  });
  afterEach(async () => {
    await g.close();
  });

  it('runs three levels with a shared child used twice: prefixed ids, each copy with its params, sibling outputs and its own folder', async () => {
    g.write('top.yaml', `name: top
defaults: { retries: 0 }
tasks:
  prep: { run: "echo prep" }
  a:
    needs: [prep]
    workflow: mid
    with: { tag: first }
  b:
    needs: [prep]
    workflow: mid
    with: { tag: second }
  done:
    needs: [a, b]
    run: "echo done"
`);
    g.write('mid/mid.yaml', `name: mid
params: { tag: { required: true } }
defaults: { retries: 0 }
tasks:
  start: { run: "echo start {{ params.tag }}" }
  inner:
    needs: [start]
    workflow: leaf
    with: { label: "{{ params.tag }}-inner" }
`);
    g.write('leaf/leaf.yaml', `name: leaf
params: { label: { required: true } }
defaults: { retries: 0 }
tasks:
  x:
    run: |
      echo "cwd=$(pwd)"
      echo "label=$GANTRY_PARAM_LABEL"
      echo {{ params.label }} > {{ outputs.f }}
    outputs: { f: "out/{{ params.label }}.txt" }
  y:
    needs: [x]
    run: cat {{ tasks.x.outputs.f }}
`);
    expect((await g.apply('top.yaml', 'mid/mid.yaml', 'leaf/leaf.yaml')).status).toBe(200);
    const { status, body } = await g.startRun('top');
    expect(status).toBe(201);
    const run = await g.waitRun(body.id);
    expect(run.state).toBe('succeeded');
    const jobs = await g.jobs(run.id);
    expect(Object.keys(jobs).sort()).toEqual([
      'a.inner.x', 'a.inner.y', 'a.start', 'b.inner.x', 'b.inner.y', 'b.start', 'done', 'prep',
    ]);
    expect(Object.values(jobs).every((j) => j.state === 'succeeded')).toBe(true);
    const leafDir = fs.realpathSync(path.join(g.dir, 'leaf'));
    expect(await g.stdout(`${run.id}:a.inner.x`)).toEqual([`cwd=${leafDir}`, 'label=first-inner']);
    expect(await g.stdout(`${run.id}:a.inner.y`)).toEqual(['first-inner']);
    expect(await g.stdout(`${run.id}:b.inner.y`)).toEqual(['second-inner']);
    expect(await g.stdout(`${run.id}:b.start`)).toEqual(['start second']);
    expect(jobs['b.inner.x']!.outputs).toEqual({ f: path.join(g.dir, 'leaf', 'out', 'second-inner.txt') });
    expect(fs.readFileSync(path.join(g.dir, 'leaf', 'out', 'second-inner.txt'), 'utf8')).toBe('second-inner\n');
    // entries wait for the parent task's needs; dependents wait for every leaf of every copy
    for (const entry of ['a.start', 'b.start']) expect(started(jobs[entry]!)).toBeGreaterThanOrEqual(finished(jobs.prep!));
    expect(started(jobs['a.inner.x']!)).toBeGreaterThanOrEqual(finished(jobs['a.start']!));
    for (const leaf of ['a.inner.y', 'b.inner.y']) expect(started(jobs.done!)).toBeGreaterThanOrEqual(finished(jobs[leaf]!));
  });

  it('rejects a cycle through two workflow files with its path: at apply, and at run start after a child changed', async () => {
    const cycle = 'sub-workflow cycle: nightly → dumps.stubs → nightly (nightly.dumps runs dumpwiki, dumpwiki.stubs runs nightly)';
    g.write('nightly.yaml', 'name: nightly\ntasks:\n  dumps:\n    workflow: dumpwiki\n');
    g.write('dumpwiki-cyclic.yaml', 'name: dumpwiki\ntasks:\n  prep: { run: "true" }\n  stubs:\n    needs: [prep]\n    workflow: nightly\n');
    g.write('dumpwiki.yaml', 'name: dumpwiki\ntasks:\n  prep: { run: "true" }\n');

    // both files in one apply
    const both = await g.apply('nightly.yaml', 'dumpwiki-cyclic.yaml');
    expect(both.status).toBe(400);
    expect(both.body.errors!.map((e) => e.message)).toEqual([cycle]);
    // the child alone, closing the cycle through the stored parent
    expect((await g.apply('nightly.yaml', 'dumpwiki.yaml')).status).toBe(200);
    const alone = await g.apply('dumpwiki-cyclic.yaml');
    expect(alone.status).toBe(400);
    expect(alone.body.errors!.map((e) => e.message)).toEqual([
      'sub-workflow cycle: dumpwiki → stubs.dumps → dumpwiki (dumpwiki.stubs runs nightly, nightly.dumps runs dumpwiki)',
    ]);
    expect((await g.startRun('nightly')).status).toBe(201);

    // the child changed anyway (stored by another way than this apply): the next run start refuses, with the path
    const { parseDefinitionSource } = await import('../../src/spec/parse.js');
    const file = path.join(g.dir, 'dumpwiki-cyclic.yaml');
    await g.store.putDefinitions([parseDefinitionSource(fs.readFileSync(file, 'utf8'), file).definition!]);
    const refused = await g.startRun('nightly');
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([`nightly: ${cycle}`]);

    // a child that is not there at all is as clear
    g.write('orphan.yaml', 'name: orphan\ntasks:\n  t: { run: "true" }\n  uses:\n    workflow: never-applied\n');
    await g.store.putDefinitions([parseDefinitionSource(fs.readFileSync(path.join(g.dir, 'orphan.yaml'), 'utf8'), path.join(g.dir, 'orphan.yaml')).definition!]);
    const missing = await g.startRun('orphan');
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toEqual(["orphan: task 'uses' uses workflow 'never-applied', which does not exist (no 'never-applied' is applied)"]);
  });

  it('rejects with: values the child refuses when the run starts, naming the task path', async () => {
    g.write('p.yaml', `name: p
params: { wikis: { default: [enwiki, dewiki] }, size: { default: regular } }
tasks:
  dump:
    workflow: c
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}", size: "{{ params.size }}" }
`);
    g.write('c.yaml', 'name: c\nparams:\n  wiki: { required: true }\n  size: { default: regular, enum: [regular, large] }\ntasks:\n  t: { run: "true" }\n');
    expect((await g.apply('p.yaml', 'c.yaml')).status).toBe(200);
    const bad = await g.startRun('p', { size: 'huge', wikis: ['enwiki'] });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual(["p: task 'dump[enwiki]' (workflow 'c'): parameter 'size' is 'huge', must be one of: regular, large"]);
    const dup = await g.startRun('p', { wikis: ['enwiki', 'enwiki'] });
    expect(dup.status).toBe(400);
    expect(dup.body.errors).toEqual(["p: task 'dump': foreach items 0 and 1 are both 'enwiki' (each item names its copy, dump[enwiki], so items must be unique)"]);
    expect(await g.store.listRuns({ workflow: 'p' })).toEqual([]);
  });

  it('runs the child as it was when the run was created; a later run uses the edited child', async () => {
    const gate = path.join(g.dir, 'gate');
    g.write('parent.yaml', `name: parent
tasks:
  wait:
    run: while [ ! -e ${gate} ]; do sleep 0.05; done
  child:
    needs: [wait]
    workflow: child
`);
    g.write('child.yaml', 'name: child\ntasks:\n  say: { run: "echo version one" }\n');
    expect((await g.apply('parent.yaml', 'child.yaml')).status).toBe(200);
    const first = (await g.startRun('parent')).body;
    g.write('child.yaml', 'name: child\ntasks:\n  say: { run: "echo version two" }\n  more: { needs: [say], run: "echo added" }\n');
    expect((await g.apply('child.yaml')).status).toBe(200);
    fs.writeFileSync(gate, '');
    expect((await g.waitRun(first.id)).state).toBe('succeeded');
    expect(Object.keys(await g.jobs(first.id)).sort()).toEqual(['child.say', 'wait']);
    expect(await g.stdout(`${first.id}:child.say`)).toEqual(['version one']);

    const second = (await g.startRun('parent')).body;
    expect((await g.waitRun(second.id)).state).toBe('succeeded');
    expect(Object.keys(await g.jobs(second.id)).sort()).toEqual(['child.more', 'child.say', 'wait']);
    expect(await g.stdout(`${second.id}:child.say`)).toEqual(['version two']);
  });

  it('runs a foreach over 50 items: every copy sees its item, and what needs the task waits for every copy', async () => {
    g.write('many.yaml', `name: many
params: { wikis: { default: [] } }
defaults: { retries: 0 }
tasks:
  first: { run: "echo first" }
  each:
    needs: [first]
    workflow: perwiki
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}" }
  after:
    needs: [each]
    run: echo all done
`);
    g.write('perwiki.yaml', `name: perwiki
params: { wiki: { required: true } }
defaults: { retries: 0 }
tasks:
  fetch:
    run: echo item={{ item }} wiki={{ params.wiki }} env="$GANTRY_ITEM"
  pack:
    needs: [fetch]
    run: echo packed {{ item }}
`);
    expect((await g.apply('many.yaml', 'perwiki.yaml')).status).toBe(200);
    const wikis = Array.from({ length: 50 }, (_, i) => `wiki${i}`);
    const { status, body } = await g.startRun('many', { wikis });
    expect(status).toBe(201);
    const run = await g.waitRun(body.id, 120_000);
    expect(run.state).toBe('succeeded');
    const jobs = await g.jobs(run.id);
    expect(Object.keys(jobs)).toHaveLength(2 + 2 * 50);
    expect(Object.values(jobs).every((j) => j.state === 'succeeded')).toBe(true);
    for (const w of wikis) {
      expect(await g.stdout(`${run.id}:each[${w}].fetch`)).toEqual([`item=${w} wiki=${w} env=${w}`]);
      expect(started(jobs[`each[${w}].fetch`]!)).toBeGreaterThanOrEqual(finished(jobs.first!));
      expect(started(jobs[`each[${w}].pack`]!)).toBeGreaterThanOrEqual(finished(jobs[`each[${w}].fetch`]!));
      expect(started(jobs.after!)).toBeGreaterThanOrEqual(finished(jobs[`each[${w}].pack`]!));
    }
    expect(await g.stdout(`${run.id}:each[wiki7].pack`)).toEqual(['packed wiki7']);
  });

  it('still runs the jobs of a run created before sub-workflows were inlined (its snapshot holds no children)', async () => {
    g.write('old.yaml', 'name: old\nparams: { p: { default: x } }\ntasks:\n  plain: { run: "echo {{ params.p }}" }\n  sub: { workflow: gone }\n');
    g.write('gone.yaml', 'name: gone\ntasks:\n  t: { run: "true" }\n');
    expect((await g.apply('old.yaml', 'gone.yaml')).status).toBe(200);
    const spec = (await g.store.getWorkflow('default', 'old'))!.definition as import('../../src/spec/model.js').WorkflowSpec;
    // what planRun produced then: one job per task of the workflow itself
    const job = (task: string) => ({
      task, needs: [], trigger: 'all_success' as const, priority: 0, queues: ['default'], resources: { cpu: 1, memoryBytes: null, custom: {} },
      pool: null, outputs: {}, refs: [], maxRetries: 0, retryDelayMs: 0, retryBackoff: 1, retryMaxDelayMs: 0,
    });
    const run = await g.store.createRun({
      spec, params: { p: 'legacy' }, priority: 0, force: false, logicalDate: '20260101',
      plan: () => ({ jobs: [job('plain'), job('sub')], labels: {} }),
    });
    expect((await g.waitRun(run.id)).state).toBe('failed');
    const jobs = await g.jobs(run.id);
    expect(jobs.plain!.state).toBe('succeeded');
    expect(await g.stdout(`${run.id}:plain`)).toEqual(['legacy']);
    expect([jobs.sub!.state, jobs.sub!.error]).toEqual(['failed', "task 'sub' has nothing to run in this run's snapshot"]);
  });

  it('retry --failed reruns only the failed job inside a sub-workflow and what it skipped', async () => {
    const marker = path.join(g.dir, 'fixed');
    g.write('outer.yaml', `name: outer
defaults: { retries: 0 }
tasks:
  pre: { run: "true" }
  sub:
    needs: [pre]
    workflow: inner
    foreach: [one, two]
    with: { wiki: "{{ item }}" }
  final: { needs: [sub], run: "true" }
`);
    g.write('inner.yaml', `name: inner
params: { wiki: { required: true } }
defaults: { retries: 0 }
tasks:
  ok: { run: "true" }
  flaky:
    needs: [ok]
    run: test {{ params.wiki }} != two || test -e ${marker}
  after: { needs: [flaky], run: "true" }
`);
    expect((await g.apply('outer.yaml', 'inner.yaml')).status).toBe(200);
    const id = (await g.startRun('outer')).body.id;
    expect((await g.waitRun(id)).state).toBe('failed');
    const before = await g.jobs(id);
    const states = (jobs: Record<string, Job>) => Object.fromEntries(Object.entries(jobs).map(([t, j]) => [t, j.state]));
    expect(states(before)).toEqual({
      pre: 'succeeded',
      'sub[one].ok': 'succeeded',
      'sub[one].flaky': 'succeeded',
      'sub[one].after': 'succeeded',
      'sub[two].ok': 'succeeded',
      'sub[two].flaky': 'failed',
      'sub[two].after': 'skipped',
      final: 'skipped',
    });

    fs.writeFileSync(marker, '');
    const retried = await g.retry(id, { failed: true });
    expect(retried.status).toBe(200);
    expect(retried.body.reset).toBe(3);
    expect((await g.waitRun(id)).state).toBe('succeeded');
    const after = await g.jobs(id);
    expect(Object.values(after).every((j) => j.state === 'succeeded')).toBe(true);
    for (const t of ['pre', 'sub[one].ok', 'sub[one].flaky', 'sub[one].after', 'sub[two].ok']) {
      // untouched: one attempt, the same finish time
      expect([t, after[t]!.attempts, after[t]!.finishedAt]).toEqual([t, 1, before[t]!.finishedAt]);
    }
    expect((await g.store.listAttempts(`${id}:sub[two].flaky`)).map((a) => a.state)).toEqual(['failed', 'succeeded']);
  });
});
