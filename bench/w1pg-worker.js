// One worker process of a peer system in the W1-PG workload (bench/w1pg.js):
//
//   node bench/w1pg-worker.js graphile|pgboss <postgres url> <concurrency>
//
// Runs a no-op task with the peer's own worker loop and talks to the bench
// over IPC: sends {ready} once it can take jobs, takes {wake} (pg-boss only,
// see below) and {stop}, answers {stopped, handled, cpuMs} and exits.
// (Gantry's workers are the real `gantry worker` CLI, not this file.)
import { performance } from 'node:perf_hooks';

const [system, url, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
if (!process.send) throw new Error('w1pg-worker.js is started by bench/w1pg.js with an IPC channel');
if (!url || !(concurrency > 0)) throw new Error('usage: w1pg-worker.js graphile|pgboss URL CONCURRENCY');

const QUEUE = 'noop';
let handled = 0;
const send = (m) => process.send(m);

async function graphile() {
  const { EventEmitter } = await import('node:events');
  const { run, Logger } = await import('graphile-worker');
  const events = new EventEmitter();
  const listening = new Promise((resolve) => events.once('pool:listen:success', resolve));
  // Errors only: graphile-worker logs every job at info level by default.
  const logger = new Logger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
  });
  const runner = await run({
    connectionString: url,
    concurrency,
    noHandleSignals: true,
    logger,
    events,
    taskList: {
      [QUEUE]: async () => {
        handled++;
      },
    },
  });
  await listening;
  return { stop: () => runner.stop() };
}

async function pgboss() {
  const { default: PgBoss } = await import('pg-boss');
  // No maintenance or cron in the workers: the bench process created the schema and the queue.
  const boss = new PgBoss({ connectionString: url, migrate: false, supervise: false, schedule: false });
  boss.on('error', (e) => process.stderr.write(`pg-boss: ${e?.message ?? e}\n`));
  await boss.start();
  // pg-boss 10 has no concurrency setting (teamSize is gone): a work() loop fetches up to
  // batchSize jobs, runs the handler on the batch, completes them, then sleeps the polling
  // interval (0.5 s at least) unless notifyWorker() was called meanwhile. So that the figure
  // measures the database work rather than the sleep, a full batch asks for the next one at
  // once (notifyWorker), and the bench wakes every worker right after inserting the jobs
  // (pg-boss 10 has no LISTEN/NOTIFY of its own; graphile-worker and Gantry are woken by theirs).
  let id = null;
  id = await boss.work(QUEUE, { batchSize: concurrency, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    handled += jobs.length;
    if (jobs.length === concurrency) boss.notifyWorker(id);
  });
  process.on('message', (m) => {
    if (m?.type === 'wake') boss.notifyWorker(id);
  });
  return { stop: () => boss.stop({ graceful: true, wait: true, timeout: 10_000 }) };
}

const started = performance.now();
const w = system === 'graphile' ? await graphile() : system === 'pgboss' ? await pgboss() : null;
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
  send({ type: 'stopped', handled, cpuMs: (cpu.user + cpu.system) / 1000 });
  process.disconnect();
  // pg-boss may keep timers for a moment: the bench waits for the exit, so do not linger.
  setTimeout(() => process.exit(0), 200).unref();
});
