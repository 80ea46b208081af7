// End to end, on SQLite and PostgreSQL: `gantry workflows` shows the next
// start of every schedule (in its zone and in UTC), and `gantry run --at`
// defers a run that `gantry runs` lists as waiting and the scheduler of a real
// `gantry up` starts when due. The real CLI against real servers.
import pg from 'pg';
import { Cron } from 'croner';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, gantry, gantryJson, startUp, tempDir, waitFor, writeFile, type RunJson } from './helpers.js';
import { PG_URL, postgresAvailable } from '../helpers/postgres.js';
import type { DeferredRun } from '../../src/store/types.js';
import type { WorkflowSummary } from '../../src/client/client.js';

afterEach(cleanup);

const NIGHTLY = `
name: nightly
params:
  wiki: { default: enwiki }
schedule:
  - { cron: "30 2 * * *", timezone: Europe/Berlin, params: { wiki: dewiki } }
  - { cron: "0 3 1 * *" }
tasks:
  hello:
    run: echo hello {{ params.wiki }} {{ run.date }}
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

describe('schedules and deferred runs through the CLI', () => {
  for (const storeName of ['SQLite', 'PostgreSQL'] as const) {
    const test = storeName === 'PostgreSQL' && !pgAvailable ? it.skip : it;
    test(`${storeName}: gantry workflows shows each schedule's next start; run --at defers a run, listed as waiting, started when due`, async () => {
      const dir = tempDir();
      writeFile(dir, 'nightly.yaml', NIGHTLY);
      const db = storeName === 'PostgreSQL' ? await freshDatabase() : null;
      try {
        const up = await startUp(dir, [...(db ? ['--db', db.url] : []), 'nightly.yaml']);
        const o = { server: up.url, cwd: dir };

        // ---- gantry workflows: the next start of every schedule
        const asked = Date.now();
        const { json: workflows } = await gantryJson<WorkflowSummary[]>(['workflows'], o);
        const [berlin, monthly] = workflows[0]!.schedules;
        const expected = (cron: string, timezone: string) => new Cron(cron, { timezone, paused: true }).nextRun(new Date(asked))!.getTime();
        expect(berlin).toMatchObject({ cron: '30 2 * * *', timezone: 'Europe/Berlin', params: { wiki: 'dewiki' }, overlap: 'skip', catchup: false, lastTick: null });
        expect(berlin!.nextAt).toBe(expected('30 2 * * *', 'Europe/Berlin'));
        expect(berlin!.next).toBe(new Date(berlin!.nextAt!).toISOString());
        expect(berlin!.nextLocal).toMatch(/^\d{4}-\d\d-\d\dT0(2:30|3:00):00\+0[12]:00$/);
        expect(monthly).toMatchObject({ cron: '0 3 1 * *', timezone: 'UTC', nextAt: expected('0 3 1 * *', 'UTC'), nextLocal: expect.stringMatching(/-01T03:00:00\+00:00$/) });
        const text = await gantry(['workflows'], o);
        expect(text.code).toBe(0);
        const textLines = text.stdout.split('\n');
        expect(textLines[0]).toMatch(/SCHEDULE\s+NEXT START/);
        expect(textLines[1]).toMatch(/^nightly .*30 2 \* \* \* Europe\/Berlin wiki=dewiki\s+\d{4}-\d\d-\d\d 0[23]:[03]0:00 Europe\/Berlin \(\S+ UTC\)/);
        expect(textLines[2]).toMatch(/^\s+0 3 1 \* \* UTC\s+\d{4}-\d\d-01 03:00:00 UTC/);

        // ---- gantry run --at: bad times are bad usage, nothing is stored
        const bad = await gantry(['run', 'nightly', '--at', 'tomorrow'], o);
        expect(bad.code).toBe(2);
        expect(bad.stderr).toMatch(/--at: 'tomorrow' is not a time: use an ISO 8601 date-time/);
        const past = await gantry(['run', 'nightly', '--at', '2020-01-01T00:00:00Z'], o);
        expect(past.code).toBe(2);
        expect(past.stderr).toMatch(/2020-01-01T00:00:00.000Z is in the past/);
        expect((await gantry(['run', 'nightly', '--at', '+1m', '--wait'], o)).code).toBe(2);
        const badParam = await gantry(['run', 'nightly', '--at', '+1m', '-p', 'nope=1'], o);
        expect(badParam.code).toBe(2);
        expect(badParam.stderr).toMatch(/nope/);
        expect((await gantryJson<DeferredRun[]>(['runs', '--deferred'], o)).json).toEqual([]);

        // ---- a deferred run: waiting, listed, then started by the scheduler
        const { json: deferred, res } = await gantryJson<DeferredRun>(['run', 'nightly', '--at', '+3s', '-p', 'wiki=frwiki', '--label', 'who=e2e'], o);
        expect(res.code).toBe(0);
        expect(deferred).toMatchObject({ workflow: 'nightly', state: 'waiting', params: { wiki: 'frwiki' }, labels: { who: 'e2e' }, runId: null });
        const { json: other } = await gantryJson<DeferredRun>(['run', 'nightly', '--at', '2099-01-01T00:00:00Z'], o);
        const listed = await gantry(['runs'], o);
        expect(listed.stdout).toMatch(/waiting to start \(gantry run --at\):/);
        expect(listed.stdout).toMatch(new RegExp(`\\n${deferred.id}\\s+nightly\\s+waiting\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\s+wiki=frwiki\\s+who=e2e`));
        expect(listed.stdout).toMatch(new RegExp(`\\n${other.id}\\s+nightly\\s+waiting\\s+2099-01-01 00:00:00 UTC`));
        const cancelled = await gantry(['cancel', '--deferred', String(other.id)], o);
        expect(cancelled.code).toBe(0);
        expect(cancelled.stdout).toMatch(`deferred run ${other.id} of nightly cancelled`);
        expect((await gantry(['cancel', '--deferred', String(other.id)], o)).code).toBe(2); // not waiting any more

        const run = await waitFor(
          'the deferred run to start and succeed',
          async () => {
            const { json } = await gantryJson<RunJson[]>(['runs', '--label', `gantry.deferred=${deferred.id}`], o);
            return json[0]?.state === 'succeeded' ? json[0] : undefined;
          },
          { timeoutMs: 20_000, intervalMs: 200 },
        );
        expect(run.startedAt!).toBeGreaterThanOrEqual(deferred.dueAt);
        expect(run).toMatchObject({ params: { wiki: 'frwiki' }, labels: { who: 'e2e', 'gantry.deferred': String(deferred.id) } });
        const logs = await gantry(['logs', String(run.id)], o);
        const day = new Date(deferred.dueAt).toISOString().slice(0, 10).replace(/-/g, '');
        expect(logs.stdout).toContain(`hello frwiki ${day}`);
        const { json: all } = await gantryJson<DeferredRun[]>(['runs', '--deferred'], o);
        expect(all.map((d) => [d.id, d.state, d.runId])).toEqual([
          [deferred.id, 'started', run.id],
          [other.id, 'cancelled', null],
        ]);
        expect((await gantry(['runs'], o)).stdout).not.toMatch(/waiting to start/);
        await up.stop();
      } finally {
        await cleanup();
        await db?.drop();
      }
    });
  }
});
