// The typed client as a program gets it from the package entry (`import { GantryClient } from 'gantry'`),
// against a real server: apply a TypeScript workflow's documents, start a run, follow it, read it back.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, GantryClient, type StoreEvent } from '../../src/index.js';
import { loadDefinitions } from '../../src/spec/parse.js';
import { embedded, type Embedded } from '../helpers/embedded.js';
import { FLOW, makeProject } from './project.js';

describe('GantryClient from the package entry', () => {
  let e: Embedded;
  let client: GantryClient;
  beforeAll(async () => {
    e = await embedded({ slots: 4 });
    makeProject(e.dir, { 'flow.workflow.ts': FLOW });
    // the server's admin token, once it has one (auth)
    client = new GantryClient(e.up.url, (e.up as { adminToken?: string }).adminToken);
  });
  afterAll(() => e?.close());

  it('applies, runs and reads a TypeScript workflow through the API, typed end to end', async () => {
    const loaded = await loadDefinitions([path.join(e.dir, 'flow.workflow.ts')]);
    expect(loaded.errors).toEqual([]);
    const applied = await client.applyDefinitions(loaded.files);
    expect(applied.applied.map((a) => `${a.change} ${a.name}`)).toEqual(['created sdk-flow', 'created sdk-tiny']);

    const run = await client.startRun({ workflow: 'sdk-flow', params: { who: 'kay' }, labels: { by: 'client' } });
    const controller = new AbortController();
    const seen: StoreEvent[] = [];
    for await (const ev of client.events({ run: run.id }, controller.signal)) {
      seen.push(ev);
      if (ev.kind === 'run' && ['succeeded', 'failed', 'cancelled'].includes(ev.state)) controller.abort();
    }
    expect(seen.at(-1)!.state).toBe('succeeded');
    const done = await client.run(run.id);
    expect(done.jobs.find((j) => j.task === 'measure')!.result).toEqual({ chars: 9, words: ['hello', 'kay'], punct: '!' });
    const logs = await client.logs({ job: `${run.id}:report` });
    expect(logs.lines.filter((l) => l.stream === 'stdout').map((l) => l.line)).toEqual(['9 HELLO KAY!']);
    expect((await client.runs({ label: ['by=client'] })).runs.map((r) => r.id)).toEqual([run.id]);
    await expect(client.startRun({ workflow: 'sdk-flow' })).rejects.toBeInstanceOf(ApiError);
  });
});
