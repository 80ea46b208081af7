// `--wait`: follows a run over the event stream until it ends. On a terminal a
// live progress bar; otherwise one plain line per job state change (for logs
// and CI). Resolves with the finished run.
import cliProgress from 'cli-progress';
import type { GantryClient, RunWithJobs } from '../client/client.js';
import { TERMINAL_RUN, time } from './format.js';

const REFRESH_EVERY_MS = 250;

export async function watchRun(client: GantryClient, runId: number, o: { tty: boolean; quiet?: boolean }): Promise<RunWithJobs> {
  const ac = new AbortController();
  let run = await client.run(runId);
  if (TERMINAL_RUN.has(run.state)) {
    if (!o.quiet) process.stdout.write(`run ${runId} ${run.state}\n`);
    return run;
  }
  // from the counts: a big run's status lists only its active jobs
  const count = (states: string[]) => states.reduce((n, s) => n + (run.counts[s as keyof typeof run.counts] ?? 0), 0);
  const total = () => count(['pending', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled', 'skipped']);
  const done = () => count(['succeeded', 'failed', 'cancelled', 'skipped']);
  const running = () =>
    run.jobs
      .filter((j) => j.state === 'running')
      .map((j) => (j.progress !== null ? `${j.task} ${j.progress}%` : j.task))
      .join(', ');
  const bar = o.tty && !o.quiet
    ? new cliProgress.SingleBar(
        { format: `run ${runId} {workflow} [{bar}] {value}/{total} jobs | {state} | {running}`, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const payload = () => ({ workflow: run.workflow, state: run.state, running: running().slice(0, 60) });
  bar?.start(total(), done(), payload());
  if (!bar && !o.quiet) process.stdout.write(`run ${runId} ${run.workflow}: ${run.state}, ${total()} jobs\n`);

  let refreshing: Promise<void> | null = null;
  let lastRefresh = 0;
  const refresh = () =>
    (refreshing ??= (async () => {
      run = await client.run(runId);
      bar?.setTotal(total());
      bar?.update(done(), payload());
    })().finally(() => (refreshing = null)));
  // While jobs run, progress changes arrive by heartbeat, not as events: refresh the bar now and then.
  const ticker = bar ? setInterval(() => void refresh().catch(() => undefined), 1000) : null;
  try {
    for await (const e of client.events({ run: runId }, ac.signal)) {
      if (e.kind === 'job' && !bar && !o.quiet) process.stdout.write(`${time(e.ts)} ${e.jobId} ${e.state}\n`);
      if (e.kind === 'run' && TERMINAL_RUN.has(e.state)) {
        ac.abort();
        break;
      }
      // The bar needs the whole run; fetching it per event is quadratic on a run of 100,000 chunks.
      if (bar && Date.now() - lastRefresh >= REFRESH_EVERY_MS) {
        lastRefresh = Date.now();
        void refresh().catch(() => undefined);
      }
    }
  } finally {
    if (ticker) clearInterval(ticker);
    ac.abort();
  }
  run = await client.run(runId);
  if (bar) {
    bar.update(done(), payload());
    bar.stop();
  }
  if (!o.quiet) process.stdout.write(`run ${runId} ${run.state}\n`);
  return run;
}
