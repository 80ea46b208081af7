// A worker that is not root takes only the jobs it can run: those of
// namespaces mapped to no Unix user or to its own (the claim filters by the
// user it names); a job no live worker can run as its namespace's user says so
// in its waiting reason (gantry jobs / status). On both stores.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { onEveryStore } from '../helpers/cluster.js';
import { openTestStore, type TestStore } from '../helpers/testStore.js';
import { parseDefinitionSource } from '../../src/spec/parse.js';
import { startRun } from '../../src/server/runs.js';
import type { Store } from '../../src/store/types.js';

const LEASE = 30_000;
const RES = { cpu: 4, memoryBytes: null, custom: {} };

onEveryStore('claims by run-as user', (storeName) => {
  let t: TestStore;
  let store: Store;
  beforeEach(async () => {
    t = await openTestStore(storeName);
    store = t.store;
    for (const ns of ['toola', 'toolb', 'free']) {
      const file = path.join(t.dir, `${ns}.yaml`);
      fs.writeFileSync(file, `name: wf\nnamespace: ${ns}\ntasks:\n  t: { run: "true" }\n`);
      const r = parseDefinitionSource(fs.readFileSync(file, 'utf8'), file);
      await store.putDefinitions([r.definition!]);
    }
    await store.setNamespaceSettings('toola', { user: 'alice' });
    await store.setNamespaceSettings('toolb', { user: 'bob' });
  });
  afterEach(async () => {
    await store.close();
    await t.cleanup();
  });

  const nsOf = async (jobId: string) => (await store.getRun(Number(jobId.split(':')[0])))!.namespace;

  it("a worker running as alice claims toola's and unmapped jobs, never toolb's; a root worker claims them", async () => {
    for (const ns of ['toola', 'toolb', 'free']) await startRun(store, { workflow: 'wf', namespace: ns });
    const alice = await store.claimJobs({ name: 'wa', host: 'h', queues: ['default'], unixUser: 'alice' }, 10, LEASE);
    expect((await Promise.all(alice.map((c) => nsOf(c.job.id)))).sort()).toEqual(['free', 'toola']);
    expect(await store.claimJobs({ name: 'wa', host: 'h', queues: ['default'], unixUser: 'alice' }, 10, LEASE)).toEqual([]);
    const root = await store.claimJobs({ name: 'wr', host: 'h', queues: ['default'] }, 10, LEASE);
    expect(await Promise.all(root.map((c) => nsOf(c.job.id)))).toEqual(['toolb']);
  });

  it("a job of a namespace no live worker runs as says why it waits, and the note goes when one can", async () => {
    const run = await startRun(store, { workflow: 'wf', namespace: 'toolb' });
    const free = await startRun(store, { workflow: 'wf', namespace: 'free' });
    await store.registerWorker({ name: 'wa', host: 'h', pid: 1, queues: ['default'], slots: 2, resources: RES, unixUser: 'alice' });
    await store.updateWaitingReasons(LEASE);
    const job = (await store.listJobs({ runId: run.id }))[0]!;
    expect(job.waitingReason).toBe('its namespace runs as user bob: no live worker of queue default runs as root or as bob (they run as alice)');
    expect((await store.listJobs({ runId: free.id }))[0]!.waitingReason).toBeNull();
    await store.registerWorker({ name: 'wroot', host: 'h', pid: 2, queues: ['default'], slots: 2, resources: RES, unixUser: 'root' });
    await store.updateWaitingReasons(LEASE);
    expect((await store.listJobs({ runId: run.id }))[0]!.waitingReason).toBeNull();
  });
});
