// A handler's attempt names its host's process group while it runs: another
// worker of the machine kills that group when the attempt is lost (the pid is
// recorded a turn after the job is sent, off the hot path of a chain).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { embedded, type Embedded } from '../helpers/embedded.js';
import { startRun } from '../../src/server/runs.js';

let g: Embedded;
beforeAll(async () => {
  g = await embedded({ slots: 2, killGraceMs: 500 });
});
afterAll(async () => {
  await g.close();
});

describe('handler attempts', () => {
  it('record the pid of the host running them, while they run', async () => {
    const mark = path.join(g.dir, 'host-pid');
    fs.writeFileSync(
      path.join(g.dir, 'slow.mjs'),
      `import fs from 'node:fs';
export async function slow() {
  fs.writeFileSync(${JSON.stringify(mark)}, String(process.pid));
  await new Promise((r) => setTimeout(r, 1500));
}
`,
    );
    await g.define('slowpid', `name: slowpid\ntasks:\n  first:\n    handler: ./slow.mjs#slow\n  second:\n    needs: [first]\n    handler: ./slow.mjs#slow\n`);
    const run = await startRun(g.up.store, { workflow: 'slowpid' });
    for (const task of ['first', 'second']) {
      const jobId = `${run.id}:${task}`;
      // the host of the chain is reused: wait for this job's own attempt to be running
      let attempt;
      for (const until = Date.now() + 10_000; !attempt && Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
        const a = (await g.up.store.listAttempts(jobId))[0];
        if (a && a.state === 'running' && a.pid !== null && fs.existsSync(mark)) attempt = a;
      }
      if (!attempt) throw new Error(`${task}: no running attempt with a pid within 10 s`);
      const hostPid = Number(fs.readFileSync(mark, 'utf8'));
      fs.rmSync(mark);
      expect(attempt.pid).toBe(hostPid);
      expect(hostPid).not.toBe(process.pid);
    }
  });
});
