#!/usr/bin/env node
// How fast `gantry acct` answers on PostgreSQL (issue 14: "for a run of 1,000
// jobs in < 200 ms"). A fresh schema gets one run of 1,000 jobs that ended on 4
// workers with varied CPU time and peak memory (claimed and completed through
// the store in batches: the rows are what real completions write), plus
// `--history N` earlier runs of 1,000 jobs that ended a day before (default 0),
// then each question is asked `--reps` times (default 20):
//   - the store's GROUP BY alone (accountUsage),
//   - GET /api/v1/acct over HTTP (the API served by this process on a real port),
//   - the real CLI, `node bin/gantry.js acct` (Node's start included; compared
//     with `gantry runs --limit 1`, a read that does next to nothing).
// Prints medians and p95 per question. Uses dist/ (run `npm run build` first).
//
//   node bench/acct.mjs [--history 100] [--reps 20] [--no-end-index]
// (--no-end-index: attempts_by_end dropped before the questions, to see what it buys)
//   GANTRY_BENCH_PG=postgres://… (default postgres://postgres@127.0.0.1:5432/test)
import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresStore } from '../dist/store/postgres/index.js';
import { buildApp } from '../dist/server/app.js';
import { startRun } from '../dist/server/runs.js';
import { parseDefinitionSource } from '../dist/spec/parse.js';
import { silentLogger } from '../dist/log.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'gantry.js');
const PG_URL = process.env.GANTRY_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const HISTORY = arg('--history', 0);
const REPS = arg('--reps', 20);
const JOBS = 1000;
const DAY = 86_400_000;

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${x.toFixed(1)} ms`;

const clock = { t: Date.now() - (HISTORY + 1) * DAY, now() { return this.t; } };
const schema = `gantry_acct_bench_${process.pid}`;
const store = new PostgresStore(PG_URL, { schema, max: 4, clock });
await store.migrate();
try {
  const yaml = `name: thousand\nnamespace: bench\ntasks:\n${Array.from({ length: JOBS }, (_, i) => `  t${i}: { run: "true" }`).join('\n')}\n`;
  const def = parseDefinitionSource(yaml, path.join(here, 'thousand.yaml'));
  if (def.errors.length) throw new Error(JSON.stringify(def.errors));
  await store.putDefinitions([def.definition]);

  const oneRun = async () => {
    const run = await startRun(store, { workflow: 'thousand', namespace: 'bench' }, clock.now());
    let n = 0;
    for (;;) {
      const w = `w${n++ % 4}`;
      const claimed = await store.claimJobs({ name: w, host: `host-${w}`, queues: ['default'] }, 250, 60_000);
      if (claimed.length === 0) break;
      clock.t += 2_000;
      await store.completeAttempts(
        claimed.map((c, i) => ({
          fence: c.fence,
          outcome: i % 50 === 0
            ? { state: 'failed', exitCode: 1, error: 'exit code 1', usage: { cpuMs: 10 + i, maxRssBytes: (4 + (i % 7)) * 1048576 } }
            : { state: 'succeeded', exitCode: 0, usage: { cpuMs: 100 + ((i * 37) % 900), maxRssBytes: (8 + ((i * 13) % 120)) * 1048576 } },
        })),
      );
    }
    return run.id;
  };
  const t0 = performance.now();
  for (let h = 0; h < HISTORY; h++) {
    await oneRun();
    clock.t += DAY;
  }
  clock.t = Date.now() - 60_000;
  const since = clock.t - 1;
  await oneRun();
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`SET search_path = ${schema}`);
  if (process.argv.includes('--no-end-index')) await c.query('DROP INDEX attempts_by_end');
  await c.query('ANALYZE');
  const attempts = Number((await c.query('SELECT count(*) AS n FROM attempts')).rows[0].n);
  const plan = (await c.query(`EXPLAIN ANALYZE SELECT r.namespace, r.workflow, j.task, count(*), sum(a.cpu_ms), max(a.max_rss_bytes), avg(a.max_rss_bytes)
      FROM attempts a JOIN jobs j ON j.id = a.job_id JOIN runs r ON r.id = j.run_id
      WHERE a.finished_at IS NOT NULL AND a.finished_at >= ${since} GROUP BY 1, 2, 3`)).rows.map((r) => r['QUERY PLAN']);
  await c.end();
  console.log(`${attempts.toLocaleString('en-US')} attempts in the store (${HISTORY} earlier run(s) of ${JOBS} + the last run), made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const app = await buildApp({ store, logger: silentLogger() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${app.server.address().port}`;

  const time = async (fn) => {
    const xs = [];
    await fn(); // warm: prepared plans, connections
    for (let i = 0; i < REPS; i++) {
      const s = performance.now();
      await fn();
      xs.push(performance.now() - s);
    }
    return xs;
  };
  const rows = [];
  const report = (what, xs) => rows.push([what, ms(pct(xs, 50)), ms(pct(xs, 95))]);
  for (const [label, q] of [
    ['by namespace, all time', 'by=namespace'],
    ['by task, all time', 'by=task'],
    ['by worker, all time', 'by=worker'],
    ['by task, the last run (since)', `by=task&since=${since}`],
  ]) {
    const by = new URLSearchParams(q).get('by').split(',');
    const s = new URLSearchParams(q).get('since');
    report(`store  ${label}`, await time(() => store.accountUsage({ by, since: s ? Number(s) : undefined })));
    report(`API    ${label}`, await time(async () => {
      const r = await fetch(`${url}/api/v1/acct?${q}`);
      if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
      await r.json();
    }));
  }
  // not spawnSync: the server answering it lives in this process
  const cli = (args) => () =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [BIN, '--server', url, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`gantry ${args.join(' ')}: ${err}`))));
    });
  report('CLI    gantry acct --by task', await time(cli(['acct', '--by', 'task'])));
  report('CLI    gantry runs --limit 1 (reference)', await time(cli(['runs', '--limit', '1'])));
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`${'question'.padEnd(w)}  p50        p95`);
  for (const r of rows) console.log(`${r[0].padEnd(w)}  ${r[1].padEnd(9)}  ${r[2]}`);
  console.log('\nplan of the by-task GROUP BY over the last run:\n' + plan.join('\n'));
  await app.close();
} finally {
  await store.close();
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
}
