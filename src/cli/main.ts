// The `gantry` command line (SPEC §3). Every command except `up` and `validate`
// is a client of the HTTP API. Exit codes: 0 ok, 1 the thing asked about
// failed, 2 bad usage or input, 3 cannot reach the server or store.
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ApiError, GantryClient, UnreachableError } from '../client/client.js';
import { formatSpecError, SpecValidationError } from '../spec/model.js';
import { parseTarget } from '../store/jobId.js';
import { WORKER_DEFAULTS } from '../worker/defaults.js';
// The commands that start processes load the server, stores and workers when
// they run (dynamic imports below): the client commands (`gantry status` during
// a big drain) must start in tens of milliseconds, not load all of it.
import { LAUNCHER_KINDS, type LauncherKind } from '../worker/runCommand.js';
import { passEnvError } from '../worker/jobEnvironment.js';
import type { Logger } from '../log.js';
import type { Capacity } from '../store/types.js';
import { parseDuration, parseMemory } from '../spec/duration.js';
import { etaText, eventLine, failureLine, FAILURE_HEADERS, JOB_HEADERS, RUN_HEADERS, chunksLine, stageLine, jobLine, kv, runLine, table, time, elapsed, TERMINAL_RUN, DEFERRED_HEADERS, deferredLine, nextStartText, utcTime } from './format.js';
import { taskProgress } from '../store/taskProgress.js';
import { watchRun } from './watchRun.js';
import { registerSecretCommands, registerTokenCommands } from './authCommands.js';
import { EVENT_KINDS, NotFoundError, type EventKind } from '../store/types.js';
import { watchEvents } from './watchEvents.js';
import { registerNotifyCommands } from './notifyCommands.js';
import { registerAcctCommand } from './acctCommand.js';
import { registerNamespaceCommands } from './namespaceCommands.js';
import { DB_FILE, DEFAULT_STATE_DIR, findCliToken, isSqliteFile, prepareSqliteFile, prepareStateDir, stateFile } from '../auth/stateDir.js';
import type { NotifyOptions } from '../notify/duty.js';

/** Exit with a code and a message on stderr. */
class Exit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

const usage = (m: string) => new Exit(2, m);

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function keyValues(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw usage(`${what} '${item}' is not key=value`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** Prints state changes of the kinds in `show` as they happen, until Ctrl-C (or SIGTERM). */
async function follow(client: GantryClient, filter: Parameters<typeof watchEvents>[1], show: readonly EventKind[], json: boolean | undefined): Promise<void> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await watchEvents(
    client,
    filter,
    show,
    (e) => process.stdout.write((json ? JSON.stringify(e) : eventLine(e)) + '\n'),
    ac.signal,
    () => process.stderr.write('watching state changes (Ctrl-C stops)\n'),
  );
}

function intOption(v: string): number {
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`'${v}' is not a whole number`);
  return Number(v);
}

/** a duration: plain milliseconds (as before) or with a unit (30s, 5m) */
function graceOption(v: string): number {
  if (/^\d+$/.test(v)) return Number(v);
  try {
    return parseDuration(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function launcherOption(v: string): LauncherKind {
  if (!(LAUNCHER_KINDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`'${v}' is not one of ${LAUNCHER_KINDS.join(', ')}`);
  return v as LauncherKind;
}

/** `--pass-env NAME` (repeatable) and `--run-as-default USER` of a worker, checked. */
function jobBoundaryOptions(o: { passEnv?: string[]; runAsDefault?: string }): { passEnv: string[]; runAsDefault: string | null } {
  const passEnv = o.passEnv ?? [];
  const bad = passEnvError(passEnv);
  if (bad) throw usage(bad);
  if (o.runAsDefault !== undefined && !/^[a-z_][a-z0-9_.-]*\$?$/i.test(o.runAsDefault)) throw usage(`--run-as-default: '${o.runAsDefault}' is not a user name`);
  return { passEnv, runAsDefault: o.runAsDefault ?? null };
}

function numberOption(v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new InvalidArgumentError(`'${v}' is not a number`);
  return Number(v);
}

/** `--cpu`, `--memory`, `--resource k=n` of a worker, checked. */
function offeredResources(o: { cpu?: number; memory?: string; resource?: string[] }): Partial<Capacity> {
  const out: Partial<Capacity> = {};
  if (o.cpu !== undefined) out.cpu = o.cpu;
  if (o.memory !== undefined) {
    try {
      out.memoryBytes = parseMemory(o.memory);
    } catch (e) {
      throw usage(`--memory: ${(e as Error).message}`);
    }
  }
  const custom: Record<string, number> = {};
  for (const [k, v] of Object.entries(keyValues(o.resource, 'resource'))) {
    if (!/^\d+(\.\d+)?$/.test(v)) throw usage(`--resource ${k}=${v}: '${v}' is not a number`);
    if (k === 'cpu' || k === 'memory') throw usage(`--resource ${k}: use --${k} instead`);
    custom[k] = Number(v);
  }
  if (o.resource) out.custom = custom;
  return out;
}

function round(n: number): string {
  return String(Math.round(n * 100) / 100);
}

function bytes(n: number): string {
  for (const [unit, size] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (n >= size) return `${round(n / size)}${unit}`;
  return `${n}`;
}

function runId(s: string): number {
  if (!/^\d+$/.test(s)) throw usage(`'${s}' is not a run id (a number, e.g. 17)`);
  return Number(s);
}

interface Globals {
  server?: string;
  token?: string;
}

function clientOf(cmd: Command): GantryClient {
  const g = cmd.optsWithGlobals<Globals>();
  const server = g.server || process.env.GANTRY_SERVER || 'http://127.0.0.1:7070';
  let parsed: URL | null = null;
  try {
    parsed = new URL(server);
  } catch {
    // reported below
  }
  if (!parsed || !/^https?:$/.test(parsed.protocol)) throw usage(`'${server}' is not a server URL (e.g. http://127.0.0.1:7070), from ${g.server ? '--server' : 'GANTRY_SERVER'}`);
  return new GantryClient(server, findCliToken({ flag: g.token })?.token);
}

/** The state directory, and where the old layout's files are read from (only when the directory was not chosen). */
function stateOptions(stateDir: string, chosen: boolean): { stateDir: string; legacyDir?: string } {
  return chosen ? { stateDir } : { stateDir, legacyDir: process.cwd() };
}

/** `gantry up`'s default SQLite file: in the state directory, or ./gantry.db of the old layout when only that exists. */
function upDatabase(stateDir: string, legacyDir: string | undefined): string {
  if (legacyDir === undefined) return path.join(stateDir, DB_FILE);
  const { file, legacy } = stateFile(path.resolve(stateDir), DB_FILE, legacyDir);
  if (legacy) process.stdout.write(`store: ${file}, the old place (still read; move gantry.db and its -wal/-shm files into ${path.resolve(stateDir)})\n`);
  return legacy ? file : path.join(stateDir, DB_FILE);
}

function print(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text() + '\n');
}

export function buildProgram(): Command {
  const program = new Command('gantry')
    .description('Gantry: DAGs of jobs on a pool of workers, state in SQLite or PostgreSQL')
    .option('--server <url>', 'API server (env GANTRY_SERVER; default http://127.0.0.1:7070)')
    .option('--token <token>', 'API token (env GANTRY_TOKEN, else .gantry/gantry.token here or in a parent folder, ./gantry.token, $XDG_CONFIG_HOME/gantry/token)')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('up')
    .description('API, scheduler and local workers in one process, on the embedded SQLite store; applies the workflows in DIR')
    .argument('[dir...]', 'workflow files or folders to apply at start')
    .option('--db <path>', 'store: a SQLite file (env GANTRY_DB; default gantry.db in the state directory)')
    .option('--state-dir <dir>', 'where the admin token, the secret key and the default SQLite file live (made 0700)', DEFAULT_STATE_DIR)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', intOption, 7070)
    .option('--workers <n>', 'local workers', intOption, 1)
    .option('--slots <m>', 'jobs each worker runs at once (default: cpu count)', intOption)
    .option('--queues <list>', 'queues the local workers listen on', 'default')
    .option('--cpu <n>', 'cpus each local worker offers (default: the cpu count, at least --slots)', numberOption)
    .option('--memory <size>', 'memory each local worker offers, e.g. 32G (default: the machine\'s)')
    .option('--resource <name=n>', 'a custom resource each local worker offers, e.g. dbconn=4 (repeatable)', collect)
    .option('--lease <ms>', 'lease of a claimed job, renewed by heartbeats', intOption)
    .option('--supervise', 'supervise commands: killed when their worker stops renewing (default with PostgreSQL)')
    .option('--no-supervise', 'do not')
    .option('--launcher <kind>', "how commands start: helper (a small helper process forks and supervises them) or spawn (Node's spawn from this process, under gantry-supervise)", launcherOption, 'helper')
    .option('--pass-env <name>', "a variable of this process's environment its jobs and services get too (repeatable; nothing else of it reaches them)", collect)
    .option('--run-as-default <user>', 'when running as root: the user that jobs of namespaces mapped to no user run as (default: this process\'s user, with a warning in the job\'s log)')
    .option('--run <workflow>', 'start a run of this workflow once up, and show its progress')
    .option('-p, --param <k=v>', 'parameter for --run (repeatable)', collect)
    .option('--force', 'with --run: rerun jobs even if their outputs exist')
    .option('--once', 'with --run: stop when the run has finished, exiting with its outcome')
    .option('--smtp <url>', 'SMTP server for mailto: notifications, e.g. smtp://mail.example.org:25 (env GANTRY_SMTP)')
    .option('--mail-from <address>', 'From: of notification mail (env GANTRY_MAIL_FROM; default gantry@localhost)')
    .option('--public-url <url>', "the UI's public address, for links in mail, webhooks and the feed (env GANTRY_PUBLIC_URL)")
    .option('--event-retention <time>', 'how long the event history is kept: older events are pruned (default 7d)', graceOption)
    .option('--event-retention-count <n>', 'how many of the newest events are kept at most (default 1000000)', intOption)
    .action(async (dirs: string[], o: { db?: string; stateDir: string; host: string; port: number; workers: number; slots?: number; queues: string; cpu?: number; memory?: string; resource?: string[]; lease?: number; supervise?: boolean; launcher: LauncherKind; passEnv?: string[]; runAsDefault?: string; run?: string; param?: string[]; force?: boolean; once?: boolean; smtp?: string; mailFrom?: string; publicUrl?: string; eventRetention?: number; eventRetentionCount?: number }, cmd: Command) => {
      if (o.once && !o.run) throw usage('--once needs --run WORKFLOW');
      const resources = offeredResources(o);
      const boundary = jobBoundaryOptions(o);
      const [{ createLogger }, { startUp }, { InvalidRunRequest, startRun }] = await Promise.all([import('../log.js'), import('../up.js'), import('../server/runs.js')]);
      const logger = createLogger();
      const state = stateOptions(o.stateDir, cmd.getOptionValueSource('stateDir') !== 'default');
      const db = o.db ?? process.env.GANTRY_DB ?? upDatabase(state.stateDir, state.legacyDir);
      let up;
      try {
        up = await startUp({
          db,
          ...state,
          host: o.host,
          port: o.port,
          workers: o.workers,
          slots: o.slots ?? os.cpus().length,
          queues: o.queues.split(',').map((q) => q.trim()).filter(Boolean),
          apply: dirs,
          leaseMs: o.lease,
          resources,
          supervise: o.supervise,
          launcher: o.launcher,
          ...boundary,
          notify: notifyOptions(o),
          eventRetention: { maxAgeMs: o.eventRetention, maxCount: o.eventRetentionCount },
          logger,
        });
      } catch (e) {
        if (e instanceof SpecValidationError) throw new Exit(2, e.errors.map(formatSpecError).join('\n'));
        throw e;
      }
      const defs = (await up.store.listDefinitions()).filter((d) => d.kind === 'workflow');
      // before the "up" line: whoever waits for that line has this one too
      process.stdout.write(`${up.auth.message}\n`);
      // as Jupyter does: a link that logs a browser in (the UI keeps the token and sends it as a bearer token)
      if (up.adminToken) process.stdout.write(`log in a browser: ${up.url}/?token=${up.adminToken}\n`);
      process.stdout.write(`gantry is up at ${up.url} (store: ${db}; ${o.workers} worker${o.workers > 1 ? 's' : ''})\n`);
      process.stdout.write(`workflows: ${defs.map((d) => d.name).join(', ') || 'none'}\n`);
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) {
          process.stderr.write('stopping now\n');
          process.exit(130);
        }
        stopping = true;
        process.stderr.write(`${signal}: stopping (running jobs get 10s, then are requeued for the next start; again to force)\n`);
        void up.stop(10_000).then(() => process.exit(0));
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      if (!o.run) return new Promise<void>(() => undefined);
      // Started in-process, on the store this process owns (no token needed); followed through the API's reads.
      const client = new GantryClient(up.url, up.adminToken);
      let run;
      try {
        run = await startRun(up.store, { workflow: o.run, params: keyValues(o.param, 'parameter'), force: o.force });
      } catch (e) {
        if (e instanceof NotFoundError || e instanceof InvalidRunRequest) {
          await up.stop(0);
          throw new Exit(2, `gantry: ${e.message}`);
        }
        throw e;
      }
      process.stdout.write(`started run ${run.id} of ${run.workflow}: follow it with \`gantry status ${run.id}\` or ${up.url}/api/v1/runs/${run.id}\n`);
      const done = await watchRun(client, run.id, { tty: process.stdout.isTTY === true });
      if (!o.once) return new Promise<void>(() => undefined);
      printRunSummary(done);
      await up.stop(0);
      if (done.state !== 'succeeded') throw new Exit(1, `run ${done.id} ${done.state}`);
    });

  program
    .command('server')
    .description('the HTTP API on its own (run any number against one PostgreSQL store)')
    .option('--db <url>', 'store: postgres://… or a SQLite file (env GANTRY_DB)', process.env.GANTRY_DB ?? 'gantry.db')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on', intOption, 7070)
    .option('--public-url <url>', "the UI's public address, for links in the Atom feed (env GANTRY_PUBLIC_URL)")
    .option('--state-dir <dir>', 'where the admin token and the secret key live (made 0700)', DEFAULT_STATE_DIR)
    .action(async (o: { db: string; host: string; port: number; publicUrl?: string; stateDir: string }, cmd: Command) => {
      const [{ createLogger }, { bootstrapAdminToken }, { loadSecretKey, SECRET_KEY_ENV }, { buildApp }] = await Promise.all([
        import('../log.js'),
        import('../auth/bootstrap.js'),
        import('../secrets/seal.js'),
        import('../server/app.js'),
      ]);
      const logger = createLogger({ name: 'gantry-server' });
      const publicUrl = notifyOptions({ publicUrl: o.publicUrl }).publicUrl;
      const { stateDir, legacyDir } = stateOptions(o.stateDir, cmd.getOptionValueSource('stateDir') !== 'default');
      const dir = prepareStateDir(stateDir);
      if (isSqliteFile(o.db)) prepareSqliteFile(o.db);
      const store = await openStoreOrExit(o.db);
      const auth = await bootstrapAdminToken(store, dir, { db: o.db, legacyDir });
      const secret = loadSecretKey(dir, { create: true, legacyDir });
      if (secret.legacy) process.stdout.write(`secret key read from ${secret.file}, the old place (still read; move it into ${dir})\n`);
      if (secret.created)
        process.stdout.write(`secret key created: ${secret.file} (mode 0600); servers and workers on other machines need the same key (${SECRET_KEY_ENV} or that file)\n`);
      const app = await buildApp({ store, logger, secretKey: secret.key, publicUrl });
      await app.listen({ host: o.host, port: o.port });
      const addr = app.server.address();
      process.stdout.write(`${auth.message}\n`);
      process.stdout.write(`gantry server listening at http://${o.host}:${typeof addr === 'object' && addr ? addr.port : o.port} (store: ${redact(o.db)})\n`);
      await untilSignal(logger, async () => {
        await app.close();
        await store.close();
      });
    });

  program
    .command('scheduler')
    .description('the scheduler on its own: due retries, lost leases (safe to run several)')
    .option('--db <url>', 'store: postgres://… or a SQLite file (env GANTRY_DB)', process.env.GANTRY_DB ?? 'gantry.db')
    .option('--lease <ms>', 'lease length the workers use', intOption, WORKER_DEFAULTS.leaseMs)
    .option('--smtp <url>', 'SMTP server for mailto: notifications, e.g. smtp://mail.example.org:25 (env GANTRY_SMTP)')
    .option('--mail-from <address>', 'From: of notification mail (env GANTRY_MAIL_FROM; default gantry@localhost)')
    .option('--public-url <url>', "the UI's public address, for links in mail and webhooks (env GANTRY_PUBLIC_URL)")
    .option('--event-retention <time>', 'how long the event history is kept: older events are pruned (default 7d)', graceOption)
    .option('--event-retention-count <n>', 'how many of the newest events are kept at most (default 1000000)', intOption)
    .action(async (o: { db: string; lease: number; smtp?: string; mailFrom?: string; publicUrl?: string; eventRetention?: number; eventRetentionCount?: number }) => {
      const [{ createLogger }, { schedulerFor }] = await Promise.all([import('../log.js'), import('../up.js')]);
      const logger = createLogger({ name: 'gantry-scheduler' });
      const notify = notifyOptions(o);
      const store = await openStoreOrExit(o.db);
      const scheduler = schedulerFor(store, o.lease, logger, notify, { maxAgeMs: o.eventRetention, maxCount: o.eventRetentionCount });
      scheduler.start();
      process.stdout.write(`gantry scheduler running (store: ${redact(o.db)})\n`);
      await untilSignal(logger, async () => {
        await scheduler.stop();
        await store.close();
      });
    });

  program
    .command('worker')
    .description('a worker on its own: claims and runs jobs of its queues; SIGTERM drains it')
    .option('--db <url>', 'store: postgres://… or a SQLite file (env GANTRY_DB)', process.env.GANTRY_DB ?? 'gantry.db')
    .option('--name <name>', 'unique worker name (default: host-pid)')
    .option('--queues <list>', 'queues to listen on, comma-separated', 'default')
    .option('--slots <n>', 'jobs run at once (default: cpu count)', intOption)
    .option('--cpu <n>', 'cpus offered to jobs (default: the cpu count, at least --slots)', numberOption)
    .option('--memory <size>', 'memory offered to jobs, e.g. 32G (default: the machine\'s)')
    .option('--resource <name=n>', 'a custom resource offered, e.g. dbconn=4 (repeatable)', collect)
    .option('--lease <ms>', 'lease of a claimed job, renewed by heartbeats', intOption, WORKER_DEFAULTS.leaseMs)
    .option('--supervise', 'supervise commands: killed when this worker stops renewing (default with PostgreSQL)')
    .option('--no-supervise', 'do not')
    .option('--launcher <kind>', "how commands start: helper (a small helper process forks and supervises them) or spawn (Node's spawn from this process, under gantry-supervise)", launcherOption, 'helper')
    .option('--pass-env <name>', "a variable of this process's environment its jobs and services get too (repeatable; nothing else of it reaches them)", collect)
    .option('--run-as-default <user>', 'when running as root: the user that jobs of namespaces mapped to no user run as (default: this process\'s user, with a warning in the job\'s log)')
    .option('--grace <time>', 'on SIGTERM/SIGINT: how long running jobs may finish before they are killed and requeued (ms, or 30s, 5m)', graceOption, 5 * 60_000)
    .option('--state-dir <dir>', 'where the secret key is, when GANTRY_SECRET_KEY does not give it', DEFAULT_STATE_DIR)
    .action(async (o: { db: string; name?: string; queues: string; slots?: number; cpu?: number; memory?: string; resource?: string[]; lease: number; supervise?: boolean; launcher: LauncherKind; passEnv?: string[]; runAsDefault?: string; grace: number; stateDir: string }, cmd: Command) => {
      const [{ createLogger }, { workerFor }, { loadSecretKey, SECRET_KEY_ENV }] = await Promise.all([import('../log.js'), import('../up.js'), import('../secrets/seal.js')]);
      const logger = createLogger({ name: 'gantry-worker' });
      const resources = offeredResources(o);
      const boundary = jobBoundaryOptions(o);
      const store = await openStoreOrExit(o.db);
      const name = o.name ?? `${os.hostname()}-${process.pid}`;
      const state = stateOptions(o.stateDir, cmd.getOptionValueSource('stateDir') !== 'default');
      const { key: secretKey, legacy, file: keyFile } = loadSecretKey(state.stateDir, state);
      if (!secretKey) process.stdout.write(`no secret key (${SECRET_KEY_ENV}, or gantry.secret-key in ${path.resolve(state.stateDir)}): jobs that use secrets fail on this worker\n`);
      else if (legacy) process.stdout.write(`secret key read from ${keyFile}, the old place (still read; move it into ${path.resolve(state.stateDir)})\n`);
      const worker = workerFor(store, {
        secretKey,
        name,
        queues: o.queues.split(',').map((q) => q.trim()).filter(Boolean),
        slots: o.slots ?? os.cpus().length,
        leaseMs: o.lease,
        resources,
        supervise: o.supervise,
        launcher: o.launcher,
        ...boundary,
        logger,
      });
      await worker.start();
      process.stdout.write(`gantry worker ${name} running (queues: ${o.queues}; store: ${redact(o.db)})\n`);
      // SIGTERM drains (claims nothing new, shows as draining), then terminates what still runs after the grace period.
      // gantry stop W ends the worker the same way, from the store: the process exits once it has stopped.
      await Promise.race([untilSignal(logger, () => worker.drainAndStop(o.grace)), worker.stopped]);
      await worker.stopped;
      await store.close();
      process.stdout.write(`gantry worker ${name} stopped\n`);
    });

  program
    .command('validate')
    .description('check workflow and service files, YAML or TypeScript (no server needed)')
    .argument('<files...>')
    .option('--json', 'machine-readable output')
    .action(async (files: string[], o: { json?: boolean }) => {
      const { loadDefinitions } = await import('../spec/parse.js');
      const { definitions, errors } = await loadDefinitions(files);
      if (o.json) process.stdout.write(JSON.stringify({ ok: errors.length === 0, errors, definitions: definitions.map((d) => ({ kind: d.kind, namespace: d.namespace, name: d.name, file: d.file })) }, null, 2) + '\n');
      if (errors.length) {
        if (!o.json) throw new Exit(2, `${errors.map(formatSpecError).join('\n')}\n${errors.length} error${errors.length > 1 ? 's' : ''}`);
        throw new Exit(2, '');
      }
      if (!o.json) process.stdout.write(definitions.map((d) => `ok  ${d.kind} ${d.namespace === 'default' ? d.name : `${d.namespace}/${d.name}`}  (${d.file})`).join('\n') + '\n');
    });

  program
    .command('apply')
    .description('register (or update) workflow and service files, YAML or TypeScript, on the server')
    .argument('<files...>')
    .option('--json', 'machine-readable output')
    .action(async (files: string[], o: { json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      const known = (await client.workflows()).workflows.map((w) => `${w.namespace}/${w.name}`);
      const { loadDefinitions } = await import('../spec/parse.js');
      const loaded = await loadDefinitions(files, { knownWorkflows: known });
      if (loaded.errors.length) throw new Exit(2, loaded.errors.map(formatSpecError).join('\n'));
      const r = await client.applyDefinitions(loaded.files);
      print(o.json, r, () => r.applied.map((a) => `${a.change.padEnd(9)} ${a.kind} ${a.namespace === 'default' ? a.name : `${a.namespace}/${a.name}`}`).join('\n'));
    });

  program
    .command('workflows')
    .description('workflows on the server, with the next start of each schedule')
    .argument('[name]', 'only this workflow (name, or namespace/name)')
    .option('--json', 'machine-readable output')
    .action(async (name: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const r = await clientOf(cmd).workflows();
      if (name !== undefined) {
        const [ns, wf] = name.includes('/') ? (name.split('/', 2) as [string, string]) : [undefined, name];
        r.workflows = r.workflows.filter((w) => w.name === wf && (ns === undefined || w.namespace === ns));
        if (r.workflows.length === 0) throw usage(`no workflow '${name}' (gantry workflows lists them)`);
      }
      // One line per schedule: a workflow with several gets continuation lines under its own.
      print(o.json, r.workflows, () =>
        table(
          ['WORKFLOW', 'TASKS', 'VERSION', 'UPDATED', 'SCHEDULE', 'NEXT START', 'DESCRIPTION'],
          r.workflows.flatMap((w) => {
            const [first, ...more] = w.schedules;
            const schedule = (s: (typeof w.schedules)[number]) => `${s.cron} ${s.timezone}${Object.keys(s.params).length ? ` ${kv(s.params)}` : ''}`;
            return [
              [w.namespace === 'default' ? w.name : `${w.namespace}/${w.name}`, w.tasks, w.version, time(w.updatedAt), first ? schedule(first) : '', first ? nextStartText(first) : '', w.description],
              ...more.map((s) => ['', '', '', '', schedule(s), nextStartText(s), '']),
            ];
          }),
        ),
      );
    });

  program
    .command('run')
    .description('start a run of a workflow')
    .argument('<workflow>', 'workflow name, or namespace/name')
    .option('-p, --param <k=v>', 'parameter (repeatable)', collect)
    .option('--label <k=v>', 'label of the run (repeatable)', collect)
    .option('--priority <n>', 'added to every task priority of this run', intOption)
    .option('--force', 'rerun jobs even if their outputs exist')
    .option('--at <time>', 'start later: an ISO 8601 time (2026-11-24T13:00:00Z; without an offset: local time) or a delay (+10m, +2h, +1d)')
    .option('--wait', 'follow the run to its end; exit 0 if it succeeded, 1 if not')
    .option('--json', 'machine-readable output')
    .action(async (workflow: string, o: { param?: string[]; label?: string[]; priority?: number; force?: boolean; at?: string; wait?: boolean; json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      const [namespace, name] = workflow.includes('/') ? workflow.split('/', 2) : [undefined, workflow];
      const req = {
        workflow: name!,
        namespace,
        params: keyValues(o.param, 'parameter'),
        labels: keyValues(o.label, 'label'),
        priority: o.priority,
        force: o.force,
      };
      if (o.at !== undefined) {
        if (o.wait) throw usage('--at and --wait do not go together: the run starts later (follow it then with gantry status)');
        const { parseStartTime } = await import('../scheduler/schedules.js');
        let due: number;
        try {
          due = parseStartTime(o.at, Date.now());
        } catch (e) {
          throw usage(`--at: ${(e as Error).message}`);
        }
        // Sent as an absolute time: a delay or a local time means this machine's clock and zone.
        const d = await client.deferRun({ ...req, at: new Date(due).toISOString() });
        return print(o.json, d, () => `run of ${d.workflow} deferred to ${utcTime(d.dueAt)} (deferred run ${d.id}, waiting; gantry runs lists it)`);
      }
      const run = await client.startRun(req);
      if (!o.wait) return print(o.json, run, () => `started run ${run.id} of ${run.workflow} (${run.state})`);
      const done = await watchRun(client, run.id, { tty: process.stdout.isTTY === true && !o.json, quiet: o.json });
      if (o.json) process.stdout.write(JSON.stringify(done, null, 2) + '\n');
      else printRunSummary(done);
      if (done.state !== 'succeeded') throw new Exit(1, '');
    });

  program
    .command('status')
    .description('a run: tasks done / running / left, what runs where, errors, ETA (default: the latest run)')
    .argument('[run]')
    .option('--json', 'machine-readable output')
    .option('--active', 'list only running, retrying and failed jobs, with progress per stage (the default above 10,000 jobs)')
    .option('--all', 'list every job, however many')
    .action(async (id: string | undefined, o: { json?: boolean; active?: boolean; all?: boolean }, cmd: Command) => {
      if (o.active && o.all) throw usage('--active and --all do not go together');
      const client = clientOf(cmd);
      let rid: number;
      if (id === undefined) {
        const latest = (await client.runs({ limit: 1 })).runs[0];
        if (!latest) return print(o.json, null, () => 'no runs yet');
        rid = latest.id;
      } else rid = runId(id);
      const run = await client.run(rid, { jobs: o.active ? 'active' : o.all ? 'all' : undefined });
      print(o.json, run, () => statusText(run));
      if (run.state === 'failed' || run.state === 'cancelled') throw new Exit(1, '');
    });

  program
    .command('runs')
    .description('runs, newest first')
    .option('--workflow <w>')
    .option('--label <k=v>', 'only runs with this label (repeatable)', collect)
    .option('--state <s>')
    .option('--latest', 'only the latest run of each workflow')
    .option('--worker <w>', 'only runs with a job claimed by this worker')
    .option('--since <time>', 'created at or after: ISO 8601, epoch ms, or a duration ago (30m, 2h, 7d)')
    .option('--until <time>', 'created before: ISO 8601, epoch ms, or a duration ago')
    .option('--deferred', 'only deferred runs (gantry run --at): waiting, started, failed or cancelled')
    .option('--namespace <ns>', 'only runs of this namespace')
    .option('--watch', 'then print every state change of matching runs and their jobs as it happens (until Ctrl-C)')
    .option('--limit <n>', 'how many', intOption, 50)
    .option('--offset <n>', 'skip this many (the next page)', intOption)
    .option('--json', 'machine-readable output (with --watch: one event per line)')
    .action(async (o: { workflow?: string; label?: string[]; state?: string; latest?: boolean; worker?: string; since?: string; until?: string; deferred?: boolean; namespace?: string; watch?: boolean; limit: number; offset?: number; json?: boolean }, cmd: Command) => {
      keyValues(o.label, 'label');
      const client = clientOf(cmd);
      if (o.watch) {
        if (o.deferred || o.state || o.latest || o.worker || o.since || o.until || o.offset !== undefined)
          throw usage('--watch takes --workflow, --namespace and --label only: it follows state changes from now on');
        await follow(client, { namespace: o.namespace, workflow: o.workflow, label: o.label, kinds: ['run', 'job'] }, ['run', 'job'], o.json);
        return;
      }
      if (o.deferred) {
        const d = await client.deferredRuns({ workflow: o.workflow, state: o.state, limit: o.limit });
        return print(o.json, d.deferred, () => (d.deferred.length ? table(DEFERRED_HEADERS, d.deferred.map(deferredLine)) : 'no deferred runs'));
      }
      const r = await client.runs({
        workflow: o.workflow,
        namespace: o.namespace,
        label: o.label,
        state: o.state,
        latest: o.latest,
        worker: o.worker,
        since: o.since,
        until: o.until,
        limit: o.limit,
        offset: o.offset,
      });
      // Deferred runs are not runs yet: listed apart, after the runs (--json keeps printing the runs; --deferred --json lists them).
      const waiting = r.deferred ?? [];
      print(o.json, r.runs, () => {
        const parts: string[] = [];
        if (r.runs.length) parts.push(table(RUN_HEADERS, r.runs.map(runLine)));
        if (waiting.length) parts.push(`waiting to start (gantry run --at):\n${table(DEFERRED_HEADERS, waiting.map(deferredLine))}`);
        return parts.join('\n\n') || 'no runs';
      });
    });

  program
    .command('jobs')
    .description('jobs, filtered')
    .option('--run <id>')
    .option('--worker <w>')
    .option('--state <s>')
    .option('--stale', 'claimed but not running (lease lapsed, or process never started)')
    .option('--workflow <w>', 'only jobs of runs of this workflow')
    .option('--label <k=v>', "only jobs of runs with this label (repeatable)", collect)
    .option('--since <time>', 'started at or after: ISO 8601, epoch ms, or a duration ago (30m, 2h, 7d)')
    .option('--until <time>', 'started before: ISO 8601, epoch ms, or a duration ago')
    .option('--limit <n>', 'how many', intOption, 1000)
    .option('--offset <n>', 'skip this many (the next page)', intOption)
    .option('--json', 'machine-readable output')
    .action(async (o: JobsOptions, cmd: Command) => {
      keyValues(o.label, 'label');
      const r = await clientOf(cmd).jobs({
        run: o.run === undefined ? undefined : runId(o.run),
        worker: o.worker,
        state: o.state,
        stale: o.stale,
        workflow: o.workflow,
        label: o.label,
        since: o.since,
        until: o.until,
        limit: o.limit,
        offset: o.offset,
      });
      print(o.json, r.jobs, () => (r.jobs.length ? table(JOB_HEADERS, r.jobs.map(jobLine)) : 'no jobs'));
    });

  program
    .command('logs')
    .description('central logs of a run (RUN) or a job (RUN:TASK), from any worker')
    .argument('<target>')
    .option('-f, --follow', 'keep following new lines until the run or job ends')
    .option('--json', 'one JSON object per line')
    .action(async (target: string, o: { follow?: boolean; json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      const t = parseTarget(target);
      if (!t) throw usage(`'${target}' is neither a run id (17) nor a job id (17:stubs)`);
      const q = t.kind === 'run' ? { run: t.runId } : { job: t.jobId };
      const show = (l: { jobId: string; stream: string; line: string }) =>
        process.stdout.write(o.json ? JSON.stringify(l) + '\n' : `${t.kind === 'run' ? `${l.jobId}: ` : ''}${l.stream === 'stderr' ? '! ' : ''}${l.line}\n`);
      let after = 0;
      for (;;) {
        const r = await client.logs({ ...q, after, wait: o.follow ? 10 : undefined });
        for (const l of r.lines) show(l);
        after = r.next;
        if (r.finished || (!o.follow && r.lines.length === 0)) return;
      }
    });

  program
    .command('cancel')
    .description('cancel a run (RUN) or one job (RUN:TASK): kills its processes wherever they run')
    .argument('<target>')
    .option('--deferred', 'TARGET is a deferred run (gantry run --at) that has not started: it never will')
    .option('--clean', "also delete the partial outputs the cancelled jobs left at their final paths (completed jobs' outputs stay)")
    .option('--reschedule-at <time>', 'start the run again then (ISO 8601 or +10m), as a deferred run: tasks whose outputs exist are skipped')
    .option('--json', 'machine-readable output')
    .action(async (target: string, o: { deferred?: boolean; clean?: boolean; rescheduleAt?: string; json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      if (o.deferred) {
        if (!/^\d+$/.test(target)) throw usage(`'${target}' is not a deferred run id (a number, as gantry runs shows it)`);
        const d = await client.cancelDeferredRun(Number(target));
        return print(o.json, d, () => `deferred run ${d.id} of ${d.workflow} cancelled`);
      }
      const t = parseTarget(target);
      if (!t) throw usage(`'${target}' is neither a run id (17) nor a job id (17:stubs)`);
      if (t.kind === 'run') {
        const r = await client.cancelRun(t.runId, { clean: o.clean });
        if (o.rescheduleAt === undefined) return print(o.json, r, () => `run ${r.id} cancelled${o.clean ? ' (partial outputs deleted)' : ''}`);
        // The same run again, later: a deferred run of its workflow with its params and labels; what is done
        // (its outputs exist) is skipped when it runs. `gantry runs` lists it while it waits.
        const d = await client.deferRun({
          workflow: r.workflow,
          namespace: r.namespace,
          params: r.params,
          labels: { ...r.labels, 'gantry.rescheduled-from': String(r.id) },
          priority: r.priority,
          at: o.rescheduleAt,
        });
        print(o.json, { run: r, rescheduled: d }, () => `run ${r.id} cancelled; rescheduled for ${utcTime(d.dueAt)} (deferred run ${d.id})`);
      } else {
        if (o.rescheduleAt !== undefined) throw usage('--reschedule-at takes a run: reschedule the run of the job (gantry cancel RUN --reschedule-at TIME)');
        const j = await client.cancelJob(t.jobId, { clean: o.clean });
        print(o.json, j, () => `job ${j.id} cancelled${o.clean ? ' (partial outputs deleted)' : ''}`);
      }
    });

  program
    .command('retry')
    .description('rerun the failed jobs of a run (--failed), or all of it')
    .argument('<run>')
    .option('--failed', 'only failed and cancelled jobs, and those skipped because of them')
    .option('--force', 'rerun jobs even if their outputs exist')
    .option('--wait', 'follow the run to its end')
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { failed?: boolean; force?: boolean; wait?: boolean; json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      const r = await client.retryRun(runId(id), { failed: o.failed, force: o.force });
      if (!o.wait) return print(o.json, r, () => `run ${r.run.id}: ${r.reset} job${r.reset === 1 ? '' : 's'} to run again`);
      const done = await watchRun(client, r.run.id, { tty: process.stdout.isTTY === true && !o.json, quiet: o.json });
      if (o.json) process.stdout.write(JSON.stringify(done, null, 2) + '\n');
      else printRunSummary(done);
      if (done.state !== 'succeeded') throw new Exit(1, '');
    });

  program
    .command('eta')
    .description("when a run should end: from past runs' task durations along its remaining critical path (default: the latest active run)")
    .argument('[target]', 'a run id, or a workflow name: its latest active run')
    .option('--json', 'machine-readable output')
    .action(async (target: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      let rid: number;
      if (target !== undefined && /^\d+$/.test(target)) rid = Number(target);
      else {
        const [namespace, workflow] = target?.includes('/') ? (target.split('/', 2) as [string, string]) : [undefined, target];
        const q = { namespace, workflow, limit: 1 };
        const active = [...(await client.runs({ ...q, state: 'running' })).runs, ...(await client.runs({ ...q, state: 'queued' })).runs];
        const run = active.sort((a, b) => b.id - a.id)[0];
        if (!run) throw usage(target === undefined ? 'no run is active' : `no active run of '${target}' (gantry runs --workflow ${target} lists its runs)`);
        rid = run.id;
      }
      const e = await client.runEta(rid);
      print(o.json, { run: rid, ...e }, () => `run ${rid}: ${etaText(e)}`);
    });

  program
    .command('errors')
    .description('errors raised: failed and timed-out attempts, grouped by message, then each (latest first)')
    .option('--since <time>', 'ended at or after: ISO 8601, epoch ms, or a duration ago (30m, 2h, 7d)')
    .option('--until <time>', 'ended before')
    .option('--run <id>')
    .option('--workflow <w>')
    .option('--namespace <ns>')
    .option('--label <k=v>', "only jobs of runs with this label (repeatable)", collect)
    .option('--limit <n>', 'how many attempts', intOption, 200)
    .option('--json', 'machine-readable output')
    .action(async (o: { since?: string; until?: string; run?: string; workflow?: string; namespace?: string; label?: string[]; limit: number; json?: boolean }, cmd: Command) => {
      keyValues(o.label, 'label');
      const r = await clientOf(cmd).errors({
        run: o.run === undefined ? undefined : runId(o.run),
        workflow: o.workflow,
        namespace: o.namespace,
        label: o.label,
        since: o.since,
        until: o.until,
        limit: o.limit,
      });
      print(o.json, r, () =>
        r.errors.length
          ? [
              table(['COUNT', 'JOBS', 'FIRST', 'LAST', 'ERROR'], r.summary.map((s) => [s.count, s.jobs, time(s.first), time(s.last), s.error.slice(0, 160)])),
              '',
              table(['JOB', 'ATTEMPT', 'WORKER', 'ENDED', 'EXIT', 'ERROR'], r.errors.map((e) => [e.jobId, e.number, e.worker, time(e.finishedAt ?? e.startedAt), e.exitCode ?? '', e.error.split('\n')[0]!.slice(0, 120)])),
            ].join('\n')
          : 'no errors',
      );
    });

  program
    .command('failures')
    .description('jobs that failed (for good), with how many retries each made and when each started and stopped')
    .option('--since <time>', 'started at or after: ISO 8601, epoch ms, or a duration ago (30m, 2h, 7d)')
    .option('--until <time>', 'started before')
    .option('--run <id>')
    .option('--workflow <w>')
    .option('--label <k=v>', "only jobs of runs with this label (repeatable)", collect)
    .option('--limit <n>', 'how many', intOption, 1000)
    .option('--json', 'machine-readable output')
    .action(async (o: { since?: string; until?: string; run?: string; workflow?: string; label?: string[]; limit: number; json?: boolean }, cmd: Command) => {
      keyValues(o.label, 'label');
      const r = await clientOf(cmd).jobs({
        state: 'failed',
        run: o.run === undefined ? undefined : runId(o.run),
        workflow: o.workflow,
        label: o.label,
        since: o.since,
        until: o.until,
        limit: o.limit,
      });
      print(o.json, r.jobs, () => (r.jobs.length ? table(FAILURE_HEADERS, r.jobs.map(failureLine)) : 'no failed jobs'));
    });

  program
    .command('broken')
    .description('what is broken: failing run series (since when), their failed jobs, stale claims, lost workers, jobs no worker can take, flapping series')
    .option('--workflow <w>')
    .option('--namespace <ns>')
    .option('--label <k=v>', 'only runs with this label (repeatable)', collect)
    .option('--json', 'machine-readable output')
    .action(async (o: { workflow?: string; namespace?: string; label?: string[]; json?: boolean }, cmd: Command) => {
      keyValues(o.label, 'label');
      const b = await clientOf(cmd).broken({ workflow: o.workflow, namespace: o.namespace, label: o.label });
      print(o.json, b, () => brokenText(b));
    });

  program
    .command('workers')
    .description('workers: queues, slots and resources offered / used, heartbeat, running jobs')
    .option('--watch', 'then print every worker coming online, draining, stopping or declared dead, with why (until Ctrl-C)')
    .option('--json', 'machine-readable output (with --watch: one event per line)')
    .action(async (o: { json?: boolean; watch?: boolean }, cmd: Command) => {
      if (o.watch) return follow(clientOf(cmd), { kinds: ['worker'] }, ['worker'], o.json);
      const r = await clientOf(cmd).workers();
      print(o.json, r.workers, () =>
        table(
          ['WORKER', 'STATE', 'HOST', 'QUEUES', 'SLOTS', 'CPU', 'MEMORY', 'RESOURCES', 'HEARTBEAT', 'RUNNING'],
          r.workers.map((w) => [
            w.name,
            w.state,
            w.host,
            w.queues.join(','),
            `${w.running.length}/${w.slots}`,
            `${round(w.used.cpu)}/${round(w.resources.cpu)}`,
            w.resources.memoryBytes === null ? '' : `${bytes(w.used.memoryBytes ?? 0)}/${bytes(w.resources.memoryBytes)}`,
            Object.entries(w.resources.custom)
              .map(([k, v]) => `${k} ${w.used.custom[k] ?? 0}/${v}`)
              .join(', '),
            time(w.heartbeatAt),
            w.running.join(' '),
          ]),
        ),
      );
    });

  program
    .command('events')
    .description('follow every state change as it happens: runs, jobs, workers and services (until Ctrl-C)')
    .option('--kinds <list>', `only these kinds, comma-separated: ${EVENT_KINDS.join(', ')}`)
    .option('--run <id>', "only this run's events", intOption)
    .option('--namespace <ns>', 'only runs and services of this namespace (workers: only when --kinds names them)')
    .option('--workflow <w>', 'only runs of this workflow')
    .option('--label <k=v>', 'only runs with this label (repeatable)', collect, [])
    .option('--json', 'one event per line, as JSON')
    .action(async (o: { kinds?: string; run?: number; namespace?: string; workflow?: string; label: string[]; json?: boolean }, cmd: Command) => {
      keyValues(o.label, 'label');
      const kinds = o.kinds === undefined ? undefined : o.kinds.split(',').map((k) => k.trim()).filter(Boolean);
      const bad = (kinds ?? []).filter((k) => !(EVENT_KINDS as readonly string[]).includes(k));
      if (bad.length || kinds?.length === 0) throw usage(`--kinds: ${bad.length ? `unknown kind ${bad.join(', ')}` : 'none given'}; use ${EVENT_KINDS.join(', ')}`);
      const client = clientOf(cmd);
      const filter = { run: o.run, namespace: o.namespace, workflow: o.workflow, label: o.label.length ? o.label : undefined };
      // --kinds goes to the server only when given (else its rules for filters decide); printed: those kinds, or all this CLI knows
      await follow(client, { ...filter, kinds: kinds as EventKind[] | undefined }, kinds ? (kinds as EventKind[]) : EVENT_KINDS, o.json);
    });

  program
    .command('drain')
    .description('drain a worker: it finishes its running jobs and claims no new ones')
    .argument('<worker>')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      const w = await clientOf(cmd).drainWorker(name);
      print(o.json, w, () => `worker ${w.name} draining${w.running.length ? ` (running: ${w.running.join(' ')})` : ''}`);
    });

  program
    .command('stop')
    .description('stop a worker: drain, then it exits; --terminate kills its running jobs now and requeues them')
    .argument('<worker>')
    .option('--terminate', 'kill its running jobs (their process trees) now; they are requeued as lost, not failed')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { terminate?: boolean; json?: boolean }, cmd: Command) => {
      const w = await clientOf(cmd).stopWorker(name, { terminate: o.terminate });
      print(o.json, w, () => `worker ${w.name} ${o.terminate ? 'terminating: its running jobs are killed and requeued' : 'stopping once its running jobs finish'}`);
    });

  program
    .command('pools')
    .description('pools: slots, running, queued')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await clientOf(cmd).pools();
      print(o.json, r.pools, () =>
        r.pools.length
          ? table(['POOL', 'SLOTS', 'RUNNING', 'QUEUED'], r.pools.map((p) => [p.name, p.slots ?? 'unlimited', p.running, p.queued]))
          : 'no pools',
      );
    });

  // ---- services
  const service = program.command('service').description('continuous services (registered with gantry apply): start, stop, status');
  /** NAME or NAMESPACE/NAME; --namespace otherwise */
  const serviceName = (arg: string, ns?: string): { name: string; namespace: string | undefined } => {
    const i = arg.indexOf('/');
    return i > 0 ? { namespace: arg.slice(0, i), name: arg.slice(i + 1) } : { namespace: ns, name: arg };
  };
  service
    .command('start')
    .description('keep a service up: a worker with its resources starts it; it is restarted with backoff whenever it exits')
    .argument('<name>', 'NAME or NAMESPACE/NAME')
    .option('--namespace <ns>', 'its namespace (default: default)')
    .option('--json', 'machine-readable output')
    .action(async (arg: string, o: { namespace?: string; json?: boolean }, cmd: Command) => {
      const { name, namespace } = serviceName(arg, o.namespace);
      const s = await clientOf(cmd).startService(name, namespace);
      print(o.json, s, () => `service ${s.namespace}/${s.name} ${s.state === 'up' ? `up on ${s.worker}` : 'starting'}`);
    });
  service
    .command('stop')
    .description('stop a service: SIGTERM to its process group, SIGKILL after the grace period; it stays down')
    .argument('<name>', 'NAME or NAMESPACE/NAME')
    .option('--namespace <ns>', 'its namespace (default: default)')
    .option('--json', 'machine-readable output')
    .action(async (arg: string, o: { namespace?: string; json?: boolean }, cmd: Command) => {
      const { name, namespace } = serviceName(arg, o.namespace);
      const s = await clientOf(cmd).stopService(name, namespace);
      print(o.json, s, () => `service ${s.namespace}/${s.name} ${s.state === 'stopping' ? `stopping (on ${s.worker})` : 'down'}`);
    });
  service
    .command('status')
    .description('services: up/down, uptime, restarts, last exit, worker (all of them without NAME)')
    .argument('[name]', 'NAME or NAMESPACE/NAME')
    .option('--namespace <ns>', 'its namespace (default: default; without NAME: only this namespace)')
    .option('--json', 'machine-readable output')
    .action(async (arg: string | undefined, o: { namespace?: string; json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd);
      const rows = arg === undefined ? (await client.services({ namespace: o.namespace })).services : [await client.service(serviceName(arg, o.namespace).name, serviceName(arg, o.namespace).namespace)];
      const exit = (s: (typeof rows)[number]) =>
        s.lastExit ? `${s.lastExit.reason ?? (s.lastExit.signal ?? `exit ${s.lastExit.code}`)} (${time(s.lastExit.at)})` : '';
      const stateText = (s: (typeof rows)[number]) =>
        `${s.state}${s.flapping && s.state !== 'flapping' ? ' (flapping)' : ''}${s.nextStartAt !== null && s.state !== 'up' ? ` (restart ${time(s.nextStartAt)})` : ''}`;
      print(o.json, arg === undefined ? rows : rows[0], () =>
        rows.length
          ? table(
              ['SERVICE', 'STATE', 'UPTIME', 'RESTARTS', 'WORKER', 'PID', 'LAST EXIT'],
              rows.map((s) => [
                `${s.namespace}/${s.name}`,
                stateText(s),
                s.uptimeMs === null ? '' : formatUptime(s.uptimeMs),
                s.restarts,
                s.worker ?? '',
                s.pid ?? '',
                exit(s),
              ]),
            )
          : 'no services (register one with gantry apply)',
      );
      const one = rows[0];
      if (!o.json && arg !== undefined && one?.lastExitLines?.length && one.lastExit) {
        // why it is down or flapping: the end of the instance that died last
        process.stdout.write(`\nlast lines of instance ${one.lastExit.instance} (ended ${time(one.lastExit.at)}: ${exit(one)}):\n`);
        for (const l of one.lastExitLines) process.stdout.write(`  ${l.stream === 'stderr' ? '! ' : ''}${l.line}\n`);
      }
      if (arg !== undefined && rows[0]!.state !== 'up' && rows[0]!.desired === 'up') throw new Exit(1, '');
    });
  service
    .command('logs')
    .description("a service's output from any worker: its last instance (each start or restart is one), with --restarts K the K before it too")
    .argument('<name>', 'NAME or NAMESPACE/NAME')
    .option('--namespace <ns>', 'its namespace (default: default)')
    .option('--restarts <k>', 'also the output of the K instances before the last one (at most 9 earlier ones are kept)', intOption)
    .option('--tail <n>', 'only the last N lines (then follows on with -f)', intOption)
    .option('-f, --follow', 'keep following new lines, across restarts, until the service is stopped')
    .option('--json', 'one JSON object per line')
    .action(async (arg: string, o: { namespace?: string; restarts?: number; tail?: number; follow?: boolean; json?: boolean }, cmd: Command) => {
      if (o.restarts !== undefined && o.restarts < 0) throw usage(`--restarts: '${o.restarts}' is not a count of restarts (0 or more)`);
      if (o.tail !== undefined && o.tail < 1) throw usage(`--tail: '${o.tail}' is not a number of lines (1 or more)`);
      const client = clientOf(cmd);
      const { name, namespace } = serviceName(arg, o.namespace);
      const show = (l: { instance: number; stream: string; line: string }) =>
        process.stdout.write(o.json ? JSON.stringify(l) + '\n' : `${l.stream === 'stderr' ? '! ' : ''}${l.line}\n`);
      let after = 0;
      let tail = o.tail;
      for (;;) {
        const r = await client.serviceLogs(name, { namespace, restarts: o.restarts, tail, after, wait: o.follow ? 10 : undefined });
        for (const l of r.lines) show(l);
        after = r.next;
        tail = undefined; // the tail was the start; from there on, everything new
        if (r.finished || (!o.follow && r.lines.length < 10_000)) return;
      }
    });

  // ---- exec: a one-off job
  program
    .command('exec')
    .description('run a command on the grid as a one-off job: its output streamed back, its exit code returned; Ctrl-C cancels it')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--queue <queue>', 'the queue it goes to (default: default)')
    .option('--cpu <n>', 'cpus it needs (default 1)', numberOption)
    .option('--memory <size>', 'memory it needs, such as 512M or 2G')
    .option('--namespace <ns>', 'the namespace of its run (default: default)')
    .option('--cwd <dir>', "the folder it runs in, on the worker's machine (default: a fresh scratch folder, removed when it ends)")
    .action(async (argv: string[], o: { queue?: string; cpu?: number; memory?: string; namespace?: string; cwd?: string }, cmd: Command) => {
      const client = clientOf(cmd);
      if (o.memory !== undefined) {
        try {
          parseMemory(o.memory);
        } catch (e) {
          throw usage(`--memory: ${(e as Error).message}`);
        }
      }
      const { run, job } = await client.exec({ argv, queue: o.queue, cpu: o.cpu, memory: o.memory, namespace: o.namespace, ...(o.cwd !== undefined ? { cwd: path.resolve(o.cwd) } : {}) });
      process.stderr.write(`gantry: job ${job} (run ${run.id})\n`);
      // Ctrl-C cancels the job wherever it runs (its whole process tree), then exits 130.
      const stop = new AbortController();
      let interrupted: Promise<never> | null = null;
      const onSigint = () => {
        if (interrupted) return;
        stop.abort();
        interrupted = client.cancelRun(run.id).then(
          () => Promise.reject(new Exit(130, `gantry: job ${job} cancelled`)),
          (e: unknown) => Promise.reject(e),
        );
        interrupted.catch(() => undefined); // awaited by the loop below; not an unhandled rejection meanwhile
      };
      process.on('SIGINT', onSigint);
      try {
        let after = 0;
        for (;;) {
          let r;
          try {
            r = await client.logs({ job, after, wait: 10 }, stop.signal);
          } catch (e) {
            if (stop.signal.aborted && interrupted) await interrupted;
            throw e;
          }
          for (const l of r.lines) {
            if (l.stream === 'stdout') process.stdout.write(l.line + '\n');
            else if (l.stream === 'stderr') process.stderr.write(l.line + '\n');
          }
          after = r.next;
          if (r.finished) break;
          if (interrupted) await interrupted;
        }
        if (interrupted) await interrupted;
        const j = await client.job(job);
        if (j.state === 'succeeded' || j.state === 'skipped') return;
        if (j.state === 'cancelled') throw new Exit(130, `gantry: job ${job} was cancelled`);
        const code = j.exitCode !== null && j.exitCode > 0 ? j.exitCode : 1;
        if (j.exitCode === null) process.stderr.write(`gantry: job ${job} ${j.state}: ${j.error ?? 'no exit code'}\n`);
        throw new Exit(code, '');
      } finally {
        process.off('SIGINT', onSigint);
      }
    });

  const pool = program.command('pool').description('change a pool');
  pool
    .command('set')
    .description('set the slots of a pool (cluster-wide, at once; lowering never kills running jobs); "unlimited" lifts the limit')
    .argument('<name>')
    .argument('<slots>')
    .option('--json', 'machine-readable output')
    .action(async (name: string, slots: string, o: { json?: boolean }, cmd: Command) => {
      if (!/^\d+$/.test(slots) && slots !== 'unlimited') throw usage(`'${slots}' is not a number of slots (or 'unlimited')`);
      const p = await clientOf(cmd).setPool(name, slots === 'unlimited' ? null : Number(slots));
      print(o.json, p, () => `pool ${p.name}: ${p.slots ?? 'unlimited'} slots, ${p.running} running, ${p.queued} queued`);
    });
  pool.exitOverride();

  registerTokenCommands(program, { clientOf, usage, openStore: openStoreOrExit, print, collect });
  registerSecretCommands(program, { clientOf, usage, openStore: openStoreOrExit, print, collect });

  registerAcctCommand(program, { clientOf, print, usage });

  for (const c of program.commands) c.exitOverride();
  registerNotifyCommands(program, { clientOf, print, usage, collect, intOption, keyValues });
  registerNamespaceCommands(program, { clientOf, print, usage, collect, intOption, keyValues });
  return program;
}

function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

/** `--smtp`, `--mail-from`, `--public-url` (and their environment variables) of the processes that notify. */
function notifyOptions(o: { smtp?: string; mailFrom?: string; publicUrl?: string }): NotifyOptions {
  const smtp = o.smtp ?? process.env.GANTRY_SMTP;
  if (smtp !== undefined && !/^smtps?:\/\//.test(smtp)) throw usage(`--smtp: '${smtp}' is not an SMTP URL (smtp://host:25, smtps://user:pass@host:465)`);
  const publicUrl = o.publicUrl ?? process.env.GANTRY_PUBLIC_URL;
  if (publicUrl !== undefined && !/^https?:\/\//.test(publicUrl)) throw usage(`--public-url: '${publicUrl}' is not an http(s) URL`);
  return { smtp: smtp ?? null, mailFrom: o.mailFrom ?? process.env.GANTRY_MAIL_FROM, publicUrl: publicUrl ?? null };
}

function statusText(run: import('../client/client.js').RunWithJobs): string {
  const c = run.counts;
  const left = (c.pending ?? 0) + (c.queued ?? 0) + (c.retrying ?? 0);
  const total = Object.values(c).reduce((a, n) => a + (n ?? 0), 0);
  const big = run.jobsListed === 'active';
  const tasks = run.tasks ?? taskProgress(run.jobs);
  const lines = [
    `run ${run.id}  ${run.workflow}  ${run.state}`,
    `params: ${kv(run.params) || '-'}   labels: ${kv(run.labels) || '-'}`,
    `created ${time(run.createdAt)}  started ${time(run.startedAt) || '-'}  ${run.finishedAt ? `finished ${time(run.finishedAt)} after ${elapsed(run.startedAt, run.finishedAt)}` : `running for ${elapsed(run.startedAt, null)}`}`,
    `jobs: ${total} total, ${(c.succeeded ?? 0) + (c.skipped ?? 0)} done, ${c.running ?? 0} running, ${left} left, ${c.failed ?? 0} failed`,
    ...(run.eta && !TERMINAL_RUN.has(run.state) ? [etaText(run.eta)] : []),
    // split tasks: their chunks done / total (each chunk is also a row of the table below); a big run: every stage
    ...tasks.flatMap((t) => (big ? stageLine(t) : chunksLine(t)) ?? []).map((l) => `  ${l}`),
    '',
    ...(big ? [`the ${run.jobs.length} running, retrying and failed jobs of ${total} (\`gantry jobs --run ${run.id}\` lists them all):`] : []),
    table(JOB_HEADERS, run.jobs.map(jobLine)),
  ];
  return lines.join('\n');
}

function brokenText(b: import('../client/client.js').BrokenReport): string {
  const out: string[] = [];
  const name = (x: { namespace: string; workflow: string; labels: Record<string, string> }) =>
    `${x.namespace === 'default' ? x.workflow : `${x.namespace}/${x.workflow}`}${Object.keys(x.labels).length ? ` ${kv(x.labels)}` : ''}`;
  if (b.failing.length)
    out.push(
      `failing (latest run failed):\n${table(
        ['SERIES', 'LATEST RUN', 'FAILED IN A ROW', 'BROKEN SINCE', 'LAST SUCCESS'],
        b.failing.map((f) => [name(f), f.latestRun.id, f.failedInARow, time(f.failingSince), f.lastSucceededAt ? time(f.lastSucceededAt) : 'never']),
      )}`,
    );
  if (b.failedJobs.length) out.push(`failed jobs:\n${table(FAILURE_HEADERS, b.failedJobs.map(failureLine))}`);
  if (b.staleClaims.length) out.push(`stale claims (claimed, not running):\n${table(JOB_HEADERS, b.staleClaims.map(jobLine))}`);
  if (b.lostWorkers.length)
    out.push(`lost workers (no heartbeat):\n${table(['WORKER', 'HOST', 'LAST HEARTBEAT', 'RUNNING'], b.lostWorkers.map((w) => [w.name, w.host, time(w.heartbeatAt), w.running.join(' ')]))}`);
  if (b.unplaceable.length) out.push(`queued, no worker can take them:\n${table(['JOB', 'WHY'], b.unplaceable.map((j) => [j.id, j.waitingReason ?? '']))}`);
  if (b.flapping.length)
    out.push(`flapping:\n${table(['SERIES', 'CHANGES', 'RECENT (newest first)'], b.flapping.map((f) => [name(f), f.changes, f.recent.join(' ')]))}`);
  return out.join('\n\n') || 'nothing is broken';
}

function printRunSummary(run: import('../client/client.js').RunWithJobs): void {
  process.stdout.write(statusText(run) + '\n');
}

async function openStoreOrExit(db: string) {
  const { openStore } = await import('../store/open.js');
  try {
    return await openStore(db);
  } catch (e) {
    throw new Exit(3, `gantry: cannot open the store ${redact(db)}: ${(e as Error).message}`);
  }
}

/** Hides the password of a database URL in messages. */
function redact(db: string): string {
  return db.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

interface JobsOptions {
  run?: string;
  worker?: string;
  state?: string;
  stale?: boolean;
  workflow?: string;
  label?: string[];
  since?: string;
  until?: string;
  limit: number;
  offset?: number;
  json?: boolean;
}

/** Waits for SIGINT/SIGTERM, then runs the shutdown once; a second signal exits at once. */
function untilSignal(logger: Logger, shutdown: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const on = (sig: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      logger.info({ signal: sig }, 'stopping');
      shutdown().then(resolve, reject);
    };
    process.on('SIGINT', () => on('SIGINT'));
    process.on('SIGTERM', () => on('SIGTERM'));
  });
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof Exit) {
      if (e.message) process.stderr.write(e.message + '\n');
      return e.code;
    }
    if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? 0 : 2;
    if (e instanceof UnreachableError) {
      process.stderr.write(`gantry: ${e.message}\n(start one with \`gantry up\`, or point --server / GANTRY_SERVER at it)\n`);
      return 3;
    }
    if (e instanceof NotFoundError) {
      process.stderr.write(`gantry: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ApiError) {
      const specErrors = e.specErrors;
      process.stderr.write(`gantry: ${specErrors.length ? specErrors.map(formatSpecError).join('\n') : e.message}\n`);
      return e.status >= 500 ? 1 : 2;
    }
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT') {
      process.stderr.write(`gantry: cannot reach the store: ${(e as Error).message}\n`);
      return 3;
    }
    if (code === 'EADDRINUSE') {
      process.stderr.write(`gantry: ${(e as Error).message} (is another gantry running? use --port)\n`);
      return 3;
    }
    process.stderr.write(`gantry: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
