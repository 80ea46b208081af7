// One worker process of a peer queue in the W1–W4 workloads (bench/queues.js):
//
//   node bench/queue-worker.js graphile|pgboss|bullmq w1|w2|w3|w4 <url> <concurrency> <chain length>
//
// Runs the workload's task with the peer's own worker loop and talks to the
// bench over IPC: sends {ready} once it can take jobs, takes {wake} (pg-boss
// only, see below) and {stop}, answers {stopped, handled, joins, marks, cpuMs}
// and exits. (Gantry's workers are the real `gantry worker` CLI, not this file.)
//
// The tasks, the same for the three peers:
//   w1  noop     a no-op
//   w2  link     records its start and end (bench/marks.mjs), then, for graphile-worker and
//                pg-boss, enqueues link i+1 (their natural chaining: from inside the job);
//                BullMQ's links are a FlowProducer tree (each link the parent of the previous),
//                so its handler only records
//   w3  part     a no-op that, for graphile-worker and pg-boss, decrements a counter row
//                (bench_w3) in the same database and enqueues `join` when it reaches 0;
//                BullMQ's join is the parent of the 1,000 parts in a flow
//       join     a no-op
//   w4  sh       spawns /bin/sh -c true and waits for it to exit 0
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { mark, now, takeMarks } from './marks.mjs';

const [system, workload, url, concurrencyArg, chainArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const CHAIN = Number(chainArg);
if (!process.send) throw new Error('queue-worker.js is started by bench/queues.js with an IPC channel');
if (!url || !(concurrency > 0) || !['w1', 'w2', 'w3', 'w4'].includes(workload)) {
  throw new Error('usage: queue-worker.js graphile|pgboss|bullmq w1|w2|w3|w4 URL CONCURRENCY CHAIN');
}

let handled = 0;
let joins = 0;
const send = (m) => process.send(m);

/** /bin/sh -c true, resolved when it exited 0 */
function sh() {
  return new Promise((resolve, reject) => {
    const c = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sh -c true exited ${code}`))));
  });
}

// ---------------------------------------------------------- graphile-worker

async function graphile() {
  const { EventEmitter } = await import('node:events');
  const { run, Logger } = await import('graphile-worker');
  const events = new EventEmitter();
  const listening = new Promise((resolve) => events.once('pool:listen:success', resolve));
  // Errors only: graphile-worker logs every job at info level by default.
  const logger = new Logger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
  });
  const tasks = {
    w1: {
      noop: async () => {
        handled++;
      },
    },
    w2: {
      link: async (payload, helpers) => {
        const start = now();
        handled++;
        mark(payload.i, start);
        if (payload.i + 1 < CHAIN) await helpers.addJob('link', { i: payload.i + 1 });
      },
    },
    w3: {
      part: async (_payload, helpers) => {
        handled++;
        const r = await helpers.query('UPDATE bench_w3 SET n = n - 1 RETURNING n');
        if (r.rows[0].n === 0) await helpers.addJob('join', {});
      },
      join: async () => {
        joins++;
      },
    },
    w4: {
      sh: async () => {
        await sh();
        handled++;
      },
    },
  }[workload];
  const runner = await run({ connectionString: url, concurrency, noHandleSignals: true, logger, events, taskList: tasks });
  await listening;
  return { stop: () => runner.stop() };
}

// ------------------------------------------------------------------ pg-boss

async function pgboss() {
  const { default: PgBoss } = await import('pg-boss');
  // No maintenance or cron in the workers: the bench process created the schema and the queues.
  const boss = new PgBoss({ connectionString: url, migrate: false, supervise: false, schedule: false });
  boss.on('error', (e) => process.stderr.write(`pg-boss: ${e?.message ?? e}\n`));
  await boss.start();
  // pg-boss 10 has no concurrency setting (teamSize is gone): a work() loop fetches up to
  // batchSize jobs, runs the handler on the batch, completes them, then sleeps the polling
  // interval (0.5 s at least) unless notifyWorker() was called meanwhile. So that the figures
  // measure the database work rather than the sleep, a full batch asks for the next one at
  // once (notifyWorker), a job that enqueues another wakes the loop that will run it, and
  // the bench wakes every worker right after inserting the jobs (pg-boss 10 has no
  // LISTEN/NOTIFY of its own; graphile-worker, BullMQ and Gantry are woken by theirs).
  const opts = { batchSize: concurrency, pollingIntervalSeconds: 0.5 };
  const ids = [];
  const work = async (queue, fn) => {
    let id = null;
    id = await boss.work(queue, opts, async (jobs) => {
      await fn(jobs);
      if (jobs.length === concurrency) boss.notifyWorker(id);
    });
    ids.push(id);
    return id;
  };
  if (workload === 'w1') {
    await work('noop', async (jobs) => {
      handled += jobs.length;
    });
  } else if (workload === 'w2') {
    const linkId = await work('link', async (jobs) => {
      for (const job of jobs) {
        const start = now();
        handled++;
        mark(job.data.i, start);
        if (job.data.i + 1 < CHAIN) {
          await boss.send('link', { i: job.data.i + 1 });
          boss.notifyWorker(linkId);
        }
      }
    });
  } else if (workload === 'w3') {
    let joinId = null;
    await work('part', async (jobs) => {
      handled += jobs.length;
      const r = await boss.getDb().executeSql('UPDATE bench_w3 SET n = n - $1 RETURNING n', [jobs.length]);
      if (r.rows[0].n === 0) {
        await boss.send('join', {});
        boss.notifyWorker(joinId);
      }
    });
    joinId = await work('join', async (jobs) => {
      joins += jobs.length;
    });
  } else {
    await work('sh', async (jobs) => {
      await Promise.all(jobs.map(() => sh()));
      handled += jobs.length;
    });
  }
  process.on('message', (m) => {
    if (m?.type === 'wake') for (const id of ids) boss.notifyWorker(id);
  });
  return { stop: () => boss.stop({ graceful: true, wait: true, timeout: 10_000 }) };
}

// ------------------------------------------------------------------- BullMQ

async function bullmq() {
  const { Worker } = await import('bullmq');
  const u = new URL(url);
  const connection = { host: u.hostname, port: Number(u.port || 6379), db: Number(u.pathname.slice(1) || 0) };
  const [queue, fn] = {
    w1: ['noop', async () => void handled++],
    w2: [
      'chain',
      async (job) => {
        const start = now();
        handled++;
        mark(job.data.i, start);
      },
    ],
    w3: [
      'w3',
      async (job) => {
        if (job.name === 'join') joins++;
        else handled++;
      },
    ],
    w4: [
      'sh',
      async () => {
        await sh();
        handled++;
      },
    ],
  }[workload];
  const worker = new Worker(queue, fn, { connection, concurrency });
  worker.on('error', (e) => process.stderr.write(`bullmq: ${e?.message ?? e}\n`));
  await worker.waitUntilReady();
  return { stop: () => worker.close() };
}

// --------------------------------------------------------------------- main

const started = performance.now();
const w = system === 'graphile' ? await graphile() : system === 'pgboss' ? await pgboss() : system === 'bullmq' ? await bullmq() : null;
if (!w) throw new Error(`unknown system '${system}'`);
send({ type: 'ready', startupMs: performance.now() - started });
process.on('message', async (m) => {
  if (m?.type !== 'stop') return;
  try {
    await w.stop();
  } catch (e) {
    process.stderr.write(`stopping ${system}: ${e?.stack ?? e}\n`);
  }
  const cpu = process.cpuUsage();
  send({ type: 'stopped', handled, joins, marks: takeMarks(), cpuMs: (cpu.user + cpu.system) / 1000 });
  process.disconnect();
  // pg-boss may keep timers for a moment: the bench waits for the exit, so do not linger.
  setTimeout(() => process.exit(0), 200).unref();
});
