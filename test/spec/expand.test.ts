// Inlining sub-workflows and foreach copies (spec/expand.ts, spec/snapshot.ts,
// scheduler/planRun.ts): ids, dependencies, parameters, items, and the errors
// a person sees when a run cannot be expanded. Pure: no store, no processes.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDefinitionFiles, type WorkflowSpec } from '../../src/spec/index.js';
import { expandWorkflow, ExpansionError, type ExpandedTask } from '../../src/spec/expand.js';
import { snapshotLookup, takeSnapshot } from '../../src/spec/snapshot.js';
import type { RunSnapshot } from '../../src/spec/model.js';
import { planRun } from '../../src/scheduler/planRun.js';
import { writeFiles } from './helpers.js';

const RUN = { id: '7', date: '20260101' };

/** Loads files (relative path → YAML); `errors` as `file:line: message`, the workflows by name. */
function load(files: Record<string, string>) {
  const dir = writeFiles(files);
  const { definitions, errors } = loadDefinitionFiles([dir]);
  const byName = new Map(definitions.filter((d): d is WorkflowSpec => d.kind === 'workflow').map((d) => [d.name, d]));
  return { dir, errors: errors.map((e) => `${path.basename(e.file)}:${e.line}: ${e.message}`), wf: (n: string) => byName.get(n)!, byName };
}

async function snapshot(files: Record<string, string>, root: string) {
  const l = load(files);
  const r = await takeSnapshot(l.wf(root), async (key) => l.byName.get(key.split('/')[1]!) ?? null);
  return { ...l, ...r };
}

function expand(snap: RunSnapshot, params: Record<string, unknown> = {}): ExpandedTask[] {
  return expandWorkflow(snap, snapshotLookup(snap), params, RUN);
}

const needsOf = (tasks: ExpandedTask[]) => Object.fromEntries(tasks.map((t) => [t.id, t.needs]));

function expansionErrors(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ExpansionError) return e.errors;
    throw e;
  }
  throw new Error('expected an ExpansionError');
}

describe('expandWorkflow: ids and dependencies', () => {
  it('inlines three levels with a shared child used twice: prefixed ids, entries wait for the parent task\'s needs, dependents for the leaves', async () => {
    const s = await snapshot({
      'top.yaml': `name: top
tasks:
  prep: { run: "true" }
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
    run: "true"
`,
      'mid.yaml': `name: mid
params: { tag: { required: true } }
tasks:
  start: { run: "echo {{ params.tag }}" }
  inner:
    needs: [start]
    workflow: leaf
    with: { label: "{{ params.tag }}-inner" }
`,
      'leaf.yaml': `name: leaf
params: { label: { required: true } }
tasks:
  x: { run: "echo {{ params.label }}" }
  y: { run: "true" }
  z: { needs: [x, y], run: "true" }
`,
    }, 'top');
    expect(s.errors).toEqual([]);
    expect(Object.keys(s.snapshot.subworkflows!).sort()).toEqual(['default/leaf', 'default/mid']);
    const tasks = expand(s.snapshot);
    expect(needsOf(tasks)).toEqual({
      prep: [],
      'a.start': ['prep'],
      'a.inner.x': ['a.start'],
      'a.inner.y': ['a.start'],
      'a.inner.z': ['a.inner.x', 'a.inner.y'],
      'b.start': ['prep'],
      'b.inner.x': ['b.start'],
      'b.inner.y': ['b.start'],
      'b.inner.z': ['b.inner.x', 'b.inner.y'],
      done: ['a.inner.z', 'b.inner.z'],
    });
    const byId = new Map(tasks.map((t) => [t.id, t]));
    expect(byId.get('a.inner.x')!.scope.params).toEqual({ label: 'first-inner' });
    expect(byId.get('b.inner.x')!.scope.params).toEqual({ label: 'second-inner' });
    expect(byId.get('b.inner.x')!.scope.taskIds).toEqual({ x: 'b.inner.x', y: 'b.inner.y', z: 'b.inner.z' });
    expect(byId.get('a.start')!.scope.baseDir).toBe(s.dir);
  });

  it('gives the entry tasks the sub-workflow task\'s trigger rule, and lets an empty foreach pass its needs through', async () => {
    const s = await snapshot({
      'p.yaml': `name: p
params: { wikis: { default: [] } }
tasks:
  first: { run: "true" }
  cleanup:
    needs: [first]
    trigger: all_done
    workflow: c
  each:
    needs: [first]
    workflow: c
    foreach: "{{ params.wikis }}"
  last: { needs: [each], run: "true" }
`,
      'c.yaml': 'name: c\ntasks:\n  only: { run: "true" }\n',
    }, 'p');
    const tasks = expand(s.snapshot, { wikis: [] });
    expect(tasks.map((t) => [t.id, t.trigger, t.needs])).toEqual([
      ['first', 'all_success', []],
      ['cleanup.only', 'all_done', ['first']],
      ['last', 'all_success', ['first']],
    ]);
  });
});

describe('expandWorkflow: foreach', () => {
  const files = {
    'nightly.yaml': `name: nightly
params:
  wikis: { default: [enwiki, dewiki] }
tasks:
  dump:
    workflow: xmldump
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}", size: "{{ params.size }}" }
  report: { needs: [dump], run: "true" }
`,
    'xmldump.yaml': `name: xmldump
params:
  wiki: { required: true }
  size: { default: regular, enum: [regular, large] }
tasks:
  stubs:
    run: "echo {{ item }} {{ params.wiki }}"
    outputs: { xml: "out/{{ params.wiki }}/{{ item }}-{{ run.date }}.xml" }
  articles: { needs: [stubs], run: "echo {{ tasks.stubs.outputs.xml }}" }
`,
  };
  const nightly = (extraParams = 'size: { default: regular }') => ({ ...files, 'nightly.yaml': files['nightly.yaml'].replace('params:\n', `params:\n  ${extraParams}\n`) });

  it('makes one copy per item of a list parameter, ids task[item].child, with the item in with: and in the child\'s templates', async () => {
    const s = await snapshot(nightly(), 'nightly');
    expect(s.errors).toEqual([]);
    const tasks = expand(s.snapshot, { wikis: ['enwiki', 'dewiki'], size: 'large' });
    expect(needsOf(tasks)).toEqual({
      'dump[enwiki].stubs': [],
      'dump[enwiki].articles': ['dump[enwiki].stubs'],
      'dump[dewiki].stubs': [],
      'dump[dewiki].articles': ['dump[dewiki].stubs'],
      report: ['dump[enwiki].articles', 'dump[dewiki].articles'],
    });
    const en = tasks[0]!;
    expect(en.scope).toMatchObject({ params: { wiki: 'enwiki', size: 'large' }, item: { value: 'enwiki' }, prefix: 'dump[enwiki].' });
    // plan: outputs rendered with the copy's params and item, against the child's folder; refs are ids in the run
    const { jobs } = planRun(s.snapshot, { wikis: ['enwiki', 'dewiki'], size: 'large' }, { id: 7, date: RUN.date, priority: 0, extraLabels: {} });
    const byTask = new Map(jobs.map((j) => [j.task, j]));
    expect(byTask.get('dump[dewiki].stubs')!.outputs).toEqual({ xml: path.join(s.dir, 'out/dewiki/dewiki-20260101.xml') });
    expect(byTask.get('dump[dewiki].articles')!.refs).toEqual(['dump[dewiki].stubs']);
  });

  it('keys strings and numbers by their text, other items by their index; a literal list works too', async () => {
    const s = await snapshot({
      'p.yaml': `name: p
tasks:
  n: { workflow: c, foreach: [1, two, true], with: { v: "{{ item }}" } }
  o:
    workflow: c
    foreach: [{ wiki: enwiki }, { wiki: dewiki }]
    with: { v: "{{ item.wiki }}" }
`,
      'c.yaml': 'name: c\nparams: { v: { required: true } }\ntasks:\n  t: { run: "echo {{ params.v }}" }\n',
    }, 'p');
    const tasks = expand(s.snapshot);
    expect(tasks.map((t) => [t.id, t.scope.params.v])).toEqual([
      ['n[1].t', 1],
      ['n[two].t', 'two'],
      ['n[true].t', true],
      ['o[0].t', 'enwiki'],
      ['o[1].t', 'dewiki'],
    ]);
  });

  it('rejects duplicate item keys, a foreach value that is not a list, and with: values the child refuses, naming the task path', async () => {
    const s = await snapshot(nightly(), 'nightly');
    expect(expansionErrors(() => expand(s.snapshot, { wikis: ['enwiki', 'dewiki', 'enwiki'], size: 'regular' }))).toEqual([
      "task 'dump': foreach items 0 and 2 are both 'enwiki' (each item names its copy, dump[enwiki], so items must be unique)",
    ]);
    expect(expansionErrors(() => expand(s.snapshot, { wikis: 'enwiki', size: 'regular' }))).toEqual([
      `task 'dump': foreach must be a list; {{ params.wikis }} is "enwiki"`,
    ]);
    expect(expansionErrors(() => expand(s.snapshot, { wikis: ['enwiki'], size: 'huge' }))).toEqual([
      "task 'dump[enwiki]' (workflow 'xmldump'): parameter 'size' is 'huge', must be one of: regular, large",
    ]);
  });

  it('expands 1,000 copies quickly (creation stays set-based)', async () => {
    const s = await snapshot(nightly(), 'nightly');
    const wikis = Array.from({ length: 1000 }, (_, i) => `wiki${i}`);
    const t0 = performance.now();
    const { jobs } = planRun(s.snapshot, { wikis, size: 'regular' }, { id: 1, date: RUN.date, priority: 0, extraLabels: {} });
    const ms = performance.now() - t0;
    expect(jobs).toHaveLength(2001);
    expect(jobs.at(-1)!.needs).toHaveLength(1000);
    expect(ms).toBeLessThan(1000);
  });
});

describe('expandWorkflow: what a run cannot hold', () => {
  it('rejects reading a sub-workflow task\'s outputs, and {{ item }} outside a foreach copy', async () => {
    const s = await snapshot({
      'p.yaml': 'name: p\ntasks:\n  sub: { workflow: c }\n  after: { needs: [sub], run: "true" }\n',
      'c.yaml': 'name: c\ntasks:\n  t: { run: "echo {{ item }}" }\n',
    }, 'p');
    // validation refuses this when the file is loaded (see below); a TypeScript-defined workflow could still hold it
    s.snapshot.tasks[1]!.command = { kind: 'shell', script: 'echo {{ tasks.sub.result }}' };
    expect(expansionErrors(() => expand(s.snapshot))).toEqual([
      "task 'sub.t' uses {{ item }}, but it is not inside a foreach copy",
      "task 'after' reads {{ tasks.sub.result }}, but 'sub' is a sub-workflow task: it has no outputs or result of its own (read them from a file its tasks write)",
    ]);
  });

  it('reports a cycle with its path, and a missing child, when the snapshot is taken and when it is expanded', async () => {
    const files = {
      'nightly.yaml': 'name: nightly\ntasks:\n  dumps: { workflow: dumpwiki }\n',
      'dumpwiki.yaml': 'name: dumpwiki\ntasks:\n  prep: { run: "true" }\n  stubs: { needs: [prep], workflow: nightly }\n',
    };
    const s = await snapshot(files, 'nightly');
    const cycle = 'sub-workflow cycle: nightly → dumps.stubs → nightly (nightly.dumps runs dumpwiki, dumpwiki.stubs runs nightly)';
    expect(s.errors).toEqual([cycle]);
    expect(expansionErrors(() => expand(s.snapshot))).toEqual([cycle]);

    const deeper = await snapshot({ ...files, 'nightly.yaml': 'name: nightly\ntasks:\n  a: { workflow: dumpwiki }\n', 'dumpwiki.yaml': 'name: dumpwiki\ntasks:\n  b: { workflow: gone }\n' }, 'nightly');
    expect(deeper.errors).toEqual(["task 'a.b' uses workflow 'gone', which does not exist (no 'gone' is applied)"]);
  });
});

describe('validation of sub-workflow reads', () => {
  it('rejects {{ tasks.<sub-workflow task>... }} when the file is loaded', () => {
    const l = load({
      'p.yaml': 'name: p\ntasks:\n  sub: { workflow: c }\n  after:\n    needs: [sub]\n    run: "echo {{ tasks.sub.outputs.x }}"\n',
      'c.yaml': 'name: c\ntasks:\n  t: { run: "true" }\n',
    });
    expect(l.errors).toEqual([
      "p.yaml:6: {{ tasks.sub.outputs.x }}: 'sub' is a sub-workflow task; it has no outputs or result of its own (read a file its tasks write)",
    ]);
  });
});
