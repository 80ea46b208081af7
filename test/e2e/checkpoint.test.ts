// End to end: a job's checkpoint survives a `kill -9` of its worker, and the
// attempt that takes the job over starts from it; `gantry status` shows how
// far a running job is. Real `gantry up` processes, the real CLI, shell jobs
// that record what they do in files.
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, gantry, gantryJson, lines, startRun, startUp, tempDir, trackPid, waitFor, waitForJobState, writeFile, type JobJson, type RunJson } from './helpers.js';
import { PG_URL, postgresAvailable } from '../helpers/postgres.js';

afterEach(cleanup);

// Counts to 8, a step every 300 ms, keeping its count in $GANTRY_CHECKPOINT
// (written aside and renamed, so it is never seen half-written).
const RESUME = `
name: resume
tasks:
  count:
    run: |
      n=$(cat "$GANTRY_CHECKPOINT" 2>/dev/null || echo 0)
      echo "$GANTRY_ATTEMPT $n" >> starts
      echo $$ >> shell-pids
      while [ "$n" -lt 8 ]; do
        n=$((n + 1))
        echo "$GANTRY_ATTEMPT $n" >> steps
        echo "$n" > "$GANTRY_CHECKPOINT.new" && mv "$GANTRY_CHECKPOINT.new" "$GANTRY_CHECKPOINT"
        echo "gantry-progress $((n * 100 / 8))" >&2
        sleep 0.3
      done
`;

/** A database of its own for one test on PostgreSQL, dropped by the returned function. */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `gantry_e2e_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

const pgAvailable = await postgresAvailable();

describe('checkpoints across a crash', () => {
  for (const storeName of ['SQLite', 'PostgreSQL'] as const) {
    const test = storeName === 'PostgreSQL' && !pgAvailable ? it.skip : it;
    test(`${storeName}: after kill -9 of the worker, the attempt that takes the job over starts from its last saved checkpoint`, async () => {
      const dir = tempDir();
      writeFile(dir, 'resume.yaml', RESUME);
      const db = storeName === 'PostgreSQL' ? await freshDatabase() : null;
      try {
        const dbArgs = db ? ['--db', db.url] : [];
        const up1 = await startUp(dir, [...dbArgs, '--lease', '1500', 'resume.yaml']);
        const id = await startRun(up1.url, 'resume', [], dir);

        // the running job's checkpoint reached the store: it counted at least to 2
        await waitFor(
          'a checkpoint of 2 or more in the store',
          async () => {
            const { json } = await gantryJson<JobJson[]>(['jobs', '--run', String(id)], { server: up1.url });
            const j = json.find((x) => x.task === 'count');
            return j?.state === 'running' && Number(j.checkpoint) >= 2;
          },
          { timeoutMs: 15_000, intervalMs: 100 },
        );
        const shell1 = Number(lines(path.join(dir, 'shell-pids'))[0]);
        trackPid(shell1);

        // kill -9 of the worker, and of the job with it (a host gone): nothing saves anything on the way out
        up1.proc.kill('SIGKILL');
        await up1.exited;
        try {
          process.kill(-shell1, 'SIGKILL');
        } catch {
          // already gone (killed by its supervisor on PostgreSQL)
        }
        const stepsAtCrash = lines(path.join(dir, 'steps'));

        // a new worker takes the job over once its lease has lapsed
        const up2 = await startUp(dir, [...dbArgs, '--lease', '1500']);
        const run = await waitFor(
          `run ${id} to succeed after the restart`,
          async () => {
            const { json } = await gantryJson<RunJson>(['status', String(id)], { server: up2.url });
            if (json.state === 'failed' || json.state === 'cancelled') throw new Error(`run ended ${json.state}`);
            return json.state === 'succeeded' ? json : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        );
        expect(run.jobs!.map((j) => [j.task, j.state, j.attempts])).toEqual([['count', 'succeeded', 2]]);

        // what the job itself recorded: the second attempt began at the saved count, not at 0 ...
        const starts = lines(path.join(dir, 'starts'));
        expect(starts[0]).toBe('1 0');
        const resumedFrom = Number(starts[1]!.split(' ')[1]);
        expect(starts).toEqual(['1 0', `2 ${resumedFrom}`]);
        expect(resumedFrom).toBeGreaterThanOrEqual(2);
        // ... which the first attempt had reached (at most a heartbeat's worth of steps is done again) ...
        const firstSteps = stepsAtCrash.filter((l) => l.startsWith('1 ')).map((l) => Number(l.split(' ')[1]));
        expect(firstSteps).toEqual(Array.from({ length: firstSteps.length }, (_, i) => i + 1));
        expect(resumedFrom).toBeLessThanOrEqual(firstSteps.length);
        expect(firstSteps.length - resumedFrom).toBeLessThanOrEqual(4);
        // ... and it did none of the steps before it
        const secondSteps = lines(path.join(dir, 'steps')).filter((l) => l.startsWith('2 ')).map((l) => Number(l.split(' ')[1]));
        expect(secondSteps).toEqual(Array.from({ length: 8 - resumedFrom }, (_, i) => resumedFrom + 1 + i));

        const res = await fetch(`${up2.url}/api/v1/jobs/${encodeURIComponent(`${id}:count`)}`, { headers: { authorization: `Bearer ${up2.token}` } });
        const job = (await res.json()) as JobJson & { attemptList: { state: string }[] };
        expect(job.attemptList.map((a) => a.state)).toEqual(['lost', 'succeeded']);
        expect(job.checkpoint).toBe('8\n');
        await up2.stop();
      } finally {
        await cleanup();
        await db?.drop();
      }
    });
  }
});

describe('gantry status', () => {
  it("shows a running job's progress, in text and in --json", async () => {
    const dir = tempDir();
    writeFile(
      dir,
      'prog.yaml',
      `
name: prog
tasks:
  work:
    run: |
      echo "gantry-progress 42" >&2
      while [ ! -e gate ]; do sleep 0.05; done
`,
    );
    const up = await startUp(dir, ['--lease', '1500', 'prog.yaml']);
    const id = await startRun(up.url, 'prog', [], dir);
    await waitForJobState(up.url, id, 'work', 'running');
    const row = await waitFor(
      'status to show 42%',
      async () => {
        const r = await gantry(['status', String(id)], { server: up.url });
        return r.stdout.split('\n').find((l) => l.startsWith(`${id}:work `) && l.includes('42%'));
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    expect(row).toMatch(new RegExp(`^${id}:work\\s+running\\s+1\\s+\\S+\\s+\\S+\\s+42%$`));
    const { json, res } = await gantryJson<RunJson & { tasks: { task: string; progress: number | null; chunks: unknown }[] }>(['status', String(id)], {
      server: up.url,
    });
    expect(res.code).toBe(0);
    const job = json.jobs!.find((j) => j.task === 'work')!;
    // the documented fields are all there, with the progress
    for (const k of ['id', 'runId', 'task', 'chunk', 'state', 'attempts', 'worker', 'startedAt', 'finishedAt', 'error']) expect(job).toHaveProperty(k);
    expect([job.state, job.progress, job.chunk]).toEqual(['running', 42, null]);
    expect(json.tasks).toEqual([{ task: 'work', state: 'running', chunks: null, progress: 42 }]);
    writeFile(dir, 'gate', '');
    await waitForJobState(up.url, id, 'work', 'succeeded');
    await up.stop();
  });
});
