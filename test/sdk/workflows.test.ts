// Workflows written in TypeScript (defineWorkflow): loaded from their module,
// checked by the same validator as YAML, run by real workers (function
// handlers imported from the workflow's own module), on an embedded Gantry and
// through the HTTP API on both stores.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSpecError, loadDefinitions } from '../../src/spec/index.js';
import { embedded, type Embedded } from '../helpers/embedded.js';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { BAD_FLOW, FLOW, makeProject } from './project.js';

describe('a TypeScript workflow on an embedded Gantry (a CommonJS project)', () => {
  let e: Embedded;
  beforeAll(async () => {
    e = await embedded({ slots: 4 });
    // CommonJS: no "type": "module" — tsx compiles the file as CommonJS, exports land under `default` too
    makeProject(e.dir, { 'flows/flow.workflow.ts': FLOW, 'flows/helper.ts': 'export const notAWorkflow = 1;\n' }, { module: 'cjs' });
    // a folder, as `gantry up DIR` is given: *.workflow.ts is picked up, other .ts files (handlers, helpers) are not
    const { definitions, errors } = await loadDefinitions([path.join(e.dir, 'flows')]);
    expect(errors.map(formatSpecError)).toEqual([]);
    expect(definitions.map((d) => d.name)).toEqual(['sdk-flow', 'sdk-tiny']);
    await e.up.store.putDefinitions(definitions);
  });
  afterAll(() => e?.close());

  it('runs function handlers, a split of functions and shell tasks in order, results and outputs flowing downstream', async () => {
    const { run, jobs } = await e.run({ workflow: 'sdk-flow', params: { who: 'ada' } });
    expect(run.state, JSON.stringify(jobs, null, 1)).toBe('succeeded');
    expect(run.labels).toMatchObject({ kind: 'sdk' });
    expect(jobs.measure!.result).toEqual({ chars: 9, words: ['hello', 'ada'], punct: '!' });
    const byId = Object.fromEntries((await e.up.store.listJobs({ runId: run.id })).map((j) => [j.id.slice(j.id.indexOf(':') + 1), j]));
    expect(byId['shout#0']!.result).toBe('HELLO');
    expect(byId['shout#1']!.result).toBe('ADA');
    expect(byId.shout!.result).toBe('HELLO ADA');
    const out = (await e.up.store.readLogs({ jobId: jobs.report!.id })).filter((l) => l.stream === 'stdout').map((l) => l.line);
    expect(out).toEqual(['9 HELLO ADA!']);
    const measured = (await e.up.store.readLogs({ jobId: jobs.measure!.id })).map((l) => l.line);
    expect(measured).toContain('measured hello ada');
    // dependencies held: each task started after what it needs had finished
    expect(jobs.measure!.startedAt!).toBeGreaterThanOrEqual(jobs.greet!.finishedAt!);
    expect(byId.report!.startedAt!).toBeGreaterThanOrEqual(byId.shout!.finishedAt!);
  });

  it('runs a named export too', async () => {
    const { run, jobs } = await e.run({ workflow: 'sdk-tiny' });
    expect(run.state).toBe('succeeded');
    expect(jobs.answer!.result).toEqual({ answer: 42 });
  });
});

onEveryStore('a TypeScript workflow applied through the API', (storeName) => {
  let c: Cluster;
  beforeAll(async () => {
    c = await cluster(storeName);
    makeProject(c.dir, { 'flow.workflow.ts': FLOW, 'bad.ts': BAD_FLOW }, { module: 'esm' });
  });
  afterAll(() => c?.close());

  it('is stored from its documents and runs with its function handlers', async () => {
    const applied = await c.apply('flow.workflow.ts');
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(applied.body.applied).toEqual([
      expect.objectContaining({ name: 'sdk-flow', change: 'created' }),
      expect.objectContaining({ name: 'sdk-tiny', change: 'created' }),
    ]);
    const started = await c.startRun('sdk-flow', { who: 'grace', punct: '?' });
    expect(started.status).toBe(201);
    const run = await c.waitRun(started.body.id);
    const jobs = await c.jobs(run.id);
    expect(run.state, JSON.stringify(jobs, null, 1)).toBe('succeeded');
    expect(jobs.measure!.result).toEqual({ chars: 11, words: ['hello', 'grace'], punct: '?' });
    expect(await c.stdout(jobs.report!.id)).toEqual(['11 HELLO GRACE?']);
  });

  it('refuses an invalid one with a 400 naming each field, and stores nothing', async () => {
    const r = await c.apply('bad.ts');
    expect(r.status).toBe(400);
    const errors = r.body.errors as Array<{ file: string; path: string; message: string }>;
    expect(errors.map((x) => [x.path, x.message])).toEqual(expect.arrayContaining([
      ['tasks.a.timeout', expect.stringMatching(/'soon' is not a duration/)],
      ['tasks.b.run', expect.stringMatching(/unknown task 'zz'/)],
      ['tasks.c.run', expect.stringMatching(/has both handler and run/)],
    ]));
    expect(errors.every((x) => x.file === path.join(c.dir, 'bad.ts'))).toBe(true);
    const stored = (await c.store.listDefinitions()).map((d) => d.definition.name);
    expect(stored).not.toContain('sdk-bad');
  });
});

describe('validating TypeScript workflows', () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-sdk-')));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  makeProject(dir, {
    'bad.ts': BAD_FLOW,
    'throws.ts': "throw new Error('no config');\nexport {};\n",
    'none.ts': 'export const x = 1;\n',
    'uses.workflow.ts': "import { defineWorkflow } from 'gantry';\nexport default defineWorkflow({ name: 'uses', tasks: { sub: { workflow: 'sdk-bad' }, other: { workflow: 'nowhere' } } });\n",
  });

  it('names the field of every mistake, with its line in the .ts file', async () => {
    const file = path.join(dir, 'bad.ts');
    const { definitions, errors } = await loadDefinitions([file]);
    expect(definitions).toEqual([]);
    expect(errors.map(formatSpecError)).toEqual([
      `${file}:7:23: tasks.a.timeout: 'soon' is not a duration (use e.g. 30s, 10m, 6h, 2d)`,
      `${file}:8:24: tasks.b.run: unknown task 'zz' in {{ tasks.zz.result }} (tasks are: a, b, c)`,
      `${file}:9:48: tasks.c.run: task 'c' has both handler and run; use exactly one`,
    ]);
  });

  it('says why a module gives no workflow', async () => {
    const { errors } = await loadDefinitions([path.join(dir, 'throws.ts'), path.join(dir, 'none.ts'), path.join(dir, 'missing.ts')]);
    expect(errors.map((e) => `${path.basename(e.file)}: ${e.message}`)).toEqual([
      'missing.ts: cannot read: no such file or directory',
      'throws.ts: cannot load this module: no config',
      expect.stringMatching(/^none\.ts: exports no workflow: export the result of defineWorkflow/),
    ]);
  });

  it('checks references across YAML and TypeScript files as one set', async () => {
    fs.writeFileSync(path.join(dir, 'sdk-bad.yaml'), 'name: sdk-bad\ntasks: { t: { run: "true" } }\n');
    const { errors } = await loadDefinitions([path.join(dir, 'uses.workflow.ts'), path.join(dir, 'sdk-bad.yaml')]);
    expect(errors.map((e) => `${e.path}: ${e.message}`)).toEqual(["tasks.other.workflow: task 'other' uses unknown workflow 'nowhere'"]);
  });
});
