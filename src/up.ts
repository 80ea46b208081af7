// `gantry up`: the whole system in one process tree on one store: the API
// server, the scheduler and N local workers, with the workflow files of a
// folder applied at start. Also what tests and benchmarks embed.
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadDefinitions } from './spec/parse.js';
import { SpecValidationError } from './spec/model.js';
import type { Capacity, Store } from './store/types.js';
import { openStore } from './store/open.js';
import { DEFAULT_STATE_DIR, isSqliteFile, prepareSqliteFile, prepareStateDir } from './auth/stateDir.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { EventRetention } from './scheduler/pruneDuty.js';
import { Worker, WORKER_DEFAULTS } from './worker/worker.js';
import { buildApp } from './server/app.js';
import type { Logger } from './log.js';
import { bootstrapAdminToken, type TokenBootstrap } from './auth/bootstrap.js';
import { loadSecretKey, type SecretKey } from './secrets/seal.js';
import type { NotifyOptions } from './notify/duty.js';
import type { LauncherKind } from './worker/runCommand.js';

export interface UpOptions {
  db: string;
  host: string;
  port: number;
  workers: number;
  slots: number;
  queues?: string[];
  /** files or folders of workflow definitions to apply at start */
  apply?: string[];
  leaseMs?: number;
  killGraceMs?: number;
  /** what each local worker offers (default: the machine) */
  resources?: Partial<Capacity>;
  /** supervise commands: killed when their worker stops renewing (default: on for PostgreSQL) */
  supervise?: boolean;
  /** how commands start (default `helper`: bin/gantry-launcher) */
  launcher?: LauncherKind;
  /** the state directory: `gantry.token` and `gantry.secret-key` (made 0700, files 0600; default ./.gantry) */
  stateDir?: string;
  /** where the old layout kept them (./gantry.token, ./gantry.secret-key), read when the state directory has none */
  legacyDir?: string;
  /** variables of this process's environment its jobs get too (`--pass-env`) */
  passEnv?: string[];
  /** a root worker runs jobs of namespaces mapped to no user as this user (`--run-as-default`) */
  runAsDefault?: string | null;
  /** notifications: SMTP server, From:, the UI's public address (mail links, the Atom feed) */
  notify?: NotifyOptions;
  /** how long and how many outbox events are kept (default 7 days, 1,000,000) */
  eventRetention?: EventRetention;
  logger: Logger;
}

export interface Up {
  url: string;
  store: Store;
  app: FastifyInstance;
  scheduler: Scheduler;
  workers: Worker[];
  /** an admin token of this store: created on its first start, or read back from `gantry.token`; undefined when neither */
  adminToken?: string;
  /** where the admin token is, and what to tell the operator about it */
  auth: TokenBootstrap;
  /** seals and opens secrets: GANTRY_SECRET_KEY, or gantry.secret-key beside the token (made on the first start) */
  secretKey: SecretKey;
  /** the state directory, absolute */
  stateDir: string;
  /** graceful: running jobs get `graceMs` to finish, then are killed and requeued on the next start */
  stop(graceMs?: number): Promise<void>;
}

export async function startUp(o: UpOptions): Promise<Up> {
  const stateDir = prepareStateDir(o.stateDir ?? DEFAULT_STATE_DIR);
  if (isSqliteFile(o.db)) prepareSqliteFile(o.db);
  const store = await openStore(o.db);
  try {
    if (o.apply?.length) {
      const { definitions, errors } = await loadDefinitions(o.apply.map((p) => path.resolve(p)));
      if (errors.length) throw new SpecValidationError(errors);
      await store.putDefinitions(definitions);
    }
    const auth = await bootstrapAdminToken(store, stateDir, { db: o.db, legacyDir: o.legacyDir });
    o.logger.info({ file: auth.file, created: auth.created }, auth.message);
    const secret = loadSecretKey(stateDir, { create: true, legacyDir: o.legacyDir });
    if (secret.legacy) o.logger.info({ file: secret.file }, `secret key read from ${secret.file}, the old place (still read; move it into ${stateDir})`);
    const secretKey = secret.key;
    const leaseMs = o.leaseMs ?? WORKER_DEFAULTS.leaseMs;
    const scheduler = schedulerFor(store, leaseMs, o.logger, o.notify, o.eventRetention);
    // Reap what a previous crash left running before any worker claims.
    await scheduler.tick();
    scheduler.start();
    const app = await buildApp({ store, logger: o.logger.child({ part: 'api' }), secretKey, publicUrl: o.notify?.publicUrl ?? null });
    await app.listen({ host: o.host, port: o.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : o.port;
    const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
    const workers: Worker[] = [];
    const base = `${os.hostname()}-${process.pid}`;
    for (let i = 1; i <= o.workers; i++) {
      const w = workerFor(store, {
        name: o.workers === 1 ? base : `${base}-${i}`,
        queues: o.queues ?? WORKER_DEFAULTS.queues,
        slots: o.slots,
        leaseMs,
        killGraceMs: o.killGraceMs,
        resources: o.resources,
        supervise: o.supervise,
        launcher: o.launcher,
        passEnv: o.passEnv,
        runAsDefault: o.runAsDefault,
        secretKey,
        logger: o.logger.child({ part: 'worker', worker: i }),
      });
      await w.start();
      workers.push(w);
    }
    let stopped: Promise<void> | null = null;
    return {
      url,
      store,
      app,
      scheduler,
      workers,
      adminToken: auth.token,
      auth,
      secretKey: secretKey!,
      stateDir,
      stop(graceMs = 0) {
        stopped ??= (async () => {
          const graceful = Promise.all(workers.map((w) => w.stop({ graceful: true })));
          let timer: NodeJS.Timeout | undefined;
          const expired = new Promise<'expired'>((r) => (timer = setTimeout(() => r('expired'), graceMs)));
          if ((await Promise.race([graceful, expired])) === 'expired') await Promise.all(workers.map((w) => w.stop({ graceful: false })));
          clearTimeout(timer);
          await scheduler.stop();
          await app.close();
          await store.close();
        })();
        return stopped;
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** The scheduler with its timings derived from the lease length. */
export function schedulerFor(store: Store, leaseMs: number, logger: Logger, notify?: NotifyOptions, eventRetention?: EventRetention): Scheduler {
  return new Scheduler(store, {
    reapIntervalMs: Math.max(200, Math.floor(leaseMs / 3)),
    workerTimeoutMs: leaseMs * 2,
    notify,
    eventRetention,
    logger: logger.child({ part: 'scheduler' }),
  });
}

/** A worker with the defaults filled in; heartbeats three times per lease. */
export function workerFor(
  store: Store,
  o: {
    name: string;
    queues: string[];
    slots: number;
    leaseMs: number;
    killGraceMs?: number;
    resources?: Partial<Capacity>;
    /** default: on for PostgreSQL (other hosts may take over a job), off for SQLite */
    supervise?: boolean;
    launcher?: LauncherKind;
    secretKey?: SecretKey | null;
    passEnv?: string[];
    runAsDefault?: string | null;
    logger: Logger;
  },
): Worker {
  return new Worker(store, {
    name: o.name,
    queues: o.queues,
    slots: o.slots,
    // Unless told otherwise a worker offers the machine: its memory, and at least as many cpus as slots,
    // so that `--slots` alone limits how many default (cpu: 1) jobs run at once.
    resources: {
      cpu: o.resources?.cpu ?? Math.max(os.cpus().length, o.slots),
      memoryBytes: o.resources?.memoryBytes ?? os.totalmem(),
      custom: o.resources?.custom ?? {},
    },
    leaseMs: o.leaseMs,
    heartbeatMs: Math.max(100, Math.floor(o.leaseMs / 3)),
    killGraceMs: o.killGraceMs ?? WORKER_DEFAULTS.killGraceMs,
    pollMs: WORKER_DEFAULTS.pollMs,
    maxResultBytes: WORKER_DEFAULTS.maxResultBytes,
    maxLogBytes: WORKER_DEFAULTS.maxLogBytes,
    supervise: o.supervise ?? store.dialect === 'postgres',
    launcher: o.launcher ?? 'helper',
    secretKey: o.secretKey ?? null,
    passEnv: o.passEnv ?? [],
    runAsDefault: o.runAsDefault ?? null,
    logger: o.logger,
  });
}
