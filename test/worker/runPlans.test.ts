// The run plans a process's workers share (src/worker/runPlans.ts): `gantry up`
// runs several workers on one store, and expanding a run of 100,000 tasks costs
// seconds and ~40 MB — once per process, not once per worker, and not at all
// when the run was created in the same process.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { loadDefinitionFiles } from '../../src/spec/parse.js';
import { embedded, waitForRun, type Embedded } from '../helpers/embedded.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { startRun } from '../../src/server/runs.js';

const FANOUT = `name: fan
params: { items: { default: [a, b, c, d, e, f, g, h] } }
tasks:
  each: { workflow: one, foreach: "{{ params.items }}", with: { x: "{{ item }}" } }
  end: { run: "echo end", needs: [each] }
`;
const ONE = `name: one
params: { x: { required: true } }
tasks:
  first: { run: "echo {{ params.x }}" }
  second: { run: "echo {{ params.x }}-2", needs: [first] }
`;

describe('run plans shared by the workers of a process', () => {
  let e: Embedded | undefined;
  afterEach(async () => {
    await e?.close();
    e = undefined;
  });

  it('three workers read and expand the snapshot of a run once; a run created in the process not at all', async () => {
    e = await embedded({ workers: 3, slots: 4 });
    fs.writeFileSync(path.join(e.dir, 'one.yaml'), ONE);
    fs.writeFileSync(path.join(e.dir, 'fan.yaml'), FANOUT);
    const { definitions, errors } = loadDefinitionFiles([path.join(e.dir, 'one.yaml'), path.join(e.dir, 'fan.yaml')]);
    expect(errors).toEqual([]);
    await e.up.store.putDefinitions(definitions);
    const store = e.up.store;
    let specReads = 0;
    const read = store.getRunSpec.bind(store);
    store.getRunSpec = (id: number) => (specReads++, read(id));

    // created here (the API's path): the workers take the plan the run was created from
    const here = await e.run({ workflow: 'fan' });
    expect(here.run.state).toBe('succeeded');
    expect(Object.keys(here.jobs)).toHaveLength(17);
    expect(specReads).toBe(0);

    // created by another process on the same file: read and expanded once for the three workers
    const other = new SqliteStore(path.join(e.dir, 'gantry.db'));
    try {
      const run = await startRun(other, { workflow: 'fan', params: { items: ['p', 'q', 'r', 's', 't', 'u'] } });
      const done = await waitForRun(store, run.id, 30_000);
      expect(done.state).toBe('succeeded');
      const jobs = await store.listJobs({ runId: run.id });
      expect(new Set(jobs.map((j) => j.worker)).size).toBeGreaterThan(1);
    } finally {
      await other.close();
    }
    expect(specReads).toBe(1);
  });
});
