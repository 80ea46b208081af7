// A worker's services (SPEC §2 service files): claims the services that are due
// and fit what the worker has free, runs each as a supervised process group
// (so an instance dies with its worker, before the store can hand it to
// another one), renews their leases with the worker's heartbeat,
// stops the ones the store says to stop (SIGTERM to the group, a grace period,
// SIGKILL) and reports every exit; the store decides when it restarts. Each
// instance's output goes to the store (LogShipper, fenced by the instance's
// token), its last lines with its exit, in the same transaction.
import { declaredLimits } from './jobBounds.js';
import type { ServiceSpec } from '../spec/model.js';
import { StaleFenceError, type Capacity, type ClaimedService, type ServiceRef, type Store } from '../store/types.js';
import { addCapacity, NO_CAPACITY } from '../store/claimSelection.js';
import type { Logger } from '../log.js';
import { runCommand } from './runCommand.js';
import { LogShipper } from './logShipper.js';
import type { Launcher } from './launcher.js';
import { makeScratchDir, removeScratchDir } from './scratchDir.js';
import { RunAsError, type RunAsDecision, type UnixUser } from './runAs.js';

export interface ServiceRunnerOptions {
  worker: string;
  host: string;
  queues: string[];
  leaseMs: number;
  /** SIGTERM → SIGKILL when a service is stopped */
  stopGraceMs: number;
  logger: Logger;
  /** the worker's command launcher, null: Node's spawn */
  launcher?: () => Launcher | null;
  /** what an instance's environment starts from (jobEnvironment.ts), for the user it runs as: never the worker's own environment */
  baseEnv: (who: UnixUser | null) => Readonly<Record<string, string>>;
  /** who a namespace's services run as (runAs.ts); absent: as the worker */
  runAs?: (namespace: string) => Promise<RunAsDecision>;
}

interface Instance {
  ref: ServiceRef;
  spec: ServiceSpec;
  abort: AbortController;
  /** why it is being stopped: `stop` (asked), or the worker is going away (`release`: another worker takes it) */
  ending: 'stop' | 'release' | null;
  renew: (() => void) | null;
  done: Promise<void>;
}

/** a supervised service dies when no renewal came for this share of its lease (as jobs do) */
const SUPERVISE_FRACTION = 0.8;
/**
 * Without a `services` signal or a due restart, the claim looks at the store
 * this often (a start asked from another process on SQLite, a missed NOTIFY):
 * the claim loop runs on every job wake-up, and most of them concern no service.
 */
const SERVICE_POLL_MS = 2_000;
/** Output waiting for the store, at most, per instance: a service that floods its output while the store is slow must not grow the worker. */
const MAX_PENDING_LOG_BYTES = 4 * 1024 * 1024;

export class ServiceRunner {
  private readonly running = new Map<string, Instance>();
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private closed = false;
  /** something may be claimable now (a signal, a due restart, freed resources): the next claim asks the store */
  private due = true;
  private lastClaimAt = 0;

  constructor(
    private readonly store: Store,
    private readonly o: ServiceRunnerOptions,
    /** wakes the worker's claim loop (a restart became due) */
    private readonly wake: () => void,
  ) {}

  /** what the running services hold of the worker's resources */
  used(): Capacity {
    let used = NO_CAPACITY;
    for (const i of this.running.values()) used = addCapacity(used, i.spec.resources);
    return used;
  }

  list(): ServiceRef[] {
    return [...this.running.values()].map((i) => i.ref);
  }

  /** A service was started, stopped, freed or exited somewhere (the store's `services` signal). */
  markDue(): void {
    this.due = true;
  }

  /** Claims and starts the services that are due and fit `free`; wakes the loop again when the next one is due. */
  async claim(free: Capacity): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    if (!this.due && now - this.lastClaimAt < SERVICE_POLL_MS) return;
    this.due = false;
    this.lastClaimAt = now;
    try {
      const { claimed, nextStartAt } = await this.store.claimServices({ name: this.o.worker, host: this.o.host, queues: this.o.queues }, free, this.o.leaseMs);
      for (const c of claimed) this.start(c);
      if (nextStartAt !== null) this.wakeBy(nextStartAt);
    } catch (e) {
      this.due = true;
      throw e;
    }
  }

  /** Renews the leases (and the supervisors); stops what the store says to stop. Called with each heartbeat and on a `services` signal. */
  async renew(): Promise<void> {
    if (this.running.size === 0) return;
    const refs = this.list();
    const toStop = await this.store.renewServices(this.o.worker, refs, this.o.leaseMs);
    const stop = new Set(toStop.map((r) => key(r)));
    for (const i of this.running.values()) {
      if (stop.has(key(i.ref))) this.end(i, 'stop');
      else i.renew?.();
    }
  }

  /** The worker is going away: every instance is stopped (SIGTERM, grace, SIGKILL) and given back, for another worker to start. */
  async releaseAll(): Promise<void> {
    this.closed = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const i of this.running.values()) this.end(i, 'release');
    await Promise.all([...this.running.values()].map((i) => i.done));
  }

  private end(i: Instance, why: 'stop' | 'release'): void {
    if (i.ending) return;
    i.ending = why;
    i.abort.abort();
  }

  private wakeBy(at: number): void {
    if (at >= this.wakeAt || this.closed) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAt = Infinity;
      this.due = true;
      this.wake();
    }, Math.max(0, at - Date.now()));
  }

  private start(c: ClaimedService): void {
    const i: Instance = { ref: { namespace: c.namespace, name: c.name, fence: c.fence }, spec: c.spec, abort: new AbortController(), ending: null, renew: null, done: Promise.resolve() };
    this.running.set(key(i.ref), i);
    i.done = this.run(i, c.restarts)
      .catch((e) => this.o.logger.error({ err: e, service: key(i.ref) }, 'service instance crashed in the worker'))
      .finally(() => {
        this.running.delete(key(i.ref));
        this.due = true; // its resources are free: a waiting service may fit now
        this.wake();
      });
  }

  private async run(i: Instance, restarts: number): Promise<void> {
    const name = key(i.ref);
    const log = this.o.logger.child({ service: name, instance: i.ref.fence });
    log.info({ restarts }, 'service starting');
    const logs = new LogShipper((lines) => this.store.appendServiceLogs(i.ref, lines), {
      intervalMs: 200,
      maxBatch: 500,
      maxBytes: Infinity, // the store keeps each instance's tail
      maxPendingBytes: MAX_PENDING_LOG_BYTES,
      // refused: this instance is no longer the current one; it must not run on
      onStale: () => this.end(i, 'stop'),
      onError: (e) => log.error({ err: e }, 'shipping service output failed'),
    });
    const t0 = Date.now();
    logs.push('system', `[gantry] instance ${i.ref.fence} of ${name} on worker ${this.o.worker} (${this.o.host})${restarts ? `, after ${restarts} restart${restarts === 1 ? '' : 's'}` : ''}`);
    const { command } = i.spec;
    let lastErr = '';
    let result: { code: number | null; signal: string | null; reason: string | null };
    // As its namespace's user (a root worker); a user that does not exist ends the instance with that cause.
    const decided = this.o.runAs ? await this.o.runAs(i.ref.namespace).catch((e: Error) => (e instanceof RunAsError ? e : Promise.reject(e))) : { user: null, warning: null };
    const user = decided instanceof Error ? null : decided.user;
    // (told to the operator, not in the instance's output: it would be the last lines of every exit)
    if (!(decided instanceof Error) && decided.warning) log.warn(decided.warning.replace('this job', 'this service'));
    const owner = user ? { uid: user.uid, gid: user.gid } : null;
    // no folder of its own: a fresh one per instance, never the worker's working directory
    const scratch =
      command.kind === 'handler' || i.spec.baseDir || decided instanceof Error
        ? null
        : await makeScratchDir(`service-${i.ref.namespace}-${i.ref.name}-${i.ref.fence}`, owner).catch((e: Error) => e);
    if (command.kind === 'handler') {
      result = { code: null, signal: null, reason: 'handler services are not supported yet: give the service a run: command' };
    } else if (decided instanceof Error) {
      result = { code: null, signal: null, reason: decided.message };
    } else if (scratch instanceof Error) {
      result = { code: null, signal: null, reason: `cannot create its scratch folder: ${scratch.message}` };
    } else {
      const argv = command.kind === 'shell' ? ['/bin/sh', '-c', command.script] : command.argv;
      const r = await runCommand({
        argv,
        cwd: scratch ?? i.spec.baseDir,
        runAs: user ? { uid: user.uid, gid: user.gid, groups: user.groups } : null,
        limits: declaredLimits(i.spec.resources.memoryBytes, i.spec.limits),
        env: { ...this.o.baseEnv(user), ...i.spec.env, GANTRY_SERVICE: name, GANTRY_SERVICE_INSTANCE: String(i.ref.fence) },
        signal: i.abort.signal,
        killGraceMs: this.o.stopGraceMs,
        // Always supervised: an instance must not outlive its worker, or a moved service would run twice.
        superviseSeconds: (this.o.leaseMs * SUPERVISE_FRACTION) / 1000,
        launcher: this.o.launcher?.() ?? null,
        onSpawn: (pid, renew) => {
          i.renew = renew;
          void this.store.setServicePid(i.ref, pid).catch(() => undefined);
        },
        onLine: (stream, line) => {
          if (stream === 'stderr' && line.trim()) lastErr = line.trim();
          logs.push(stream, line);
          log.info({ stream }, line);
        },
      });
      if (scratch) await removeScratchDir(scratch);
      const how = r.spawnError ?? (r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`);
      result = { code: r.exitCode, signal: r.signal, reason: i.ending === 'stop' ? 'stopped' : lastErr && !r.spawnError ? `${how}: ${lastErr.slice(0, 300)}` : how };
    }
    const upFor = `${Math.round((Date.now() - t0) / 100) / 10} s up`;
    logs.push(
      'system',
      i.ending === 'release'
        ? `[gantry] instance ${i.ref.fence} ended after ${upFor}: worker ${this.o.worker} is stopping; another worker takes the service`
        : `[gantry] instance ${i.ref.fence} ended after ${upFor}: ${result.reason}`,
    );
    // the last lines go with the exit, in its transaction
    const last = await logs.drain();
    try {
      if (i.ending === 'release') {
        await this.store.releaseService(i.ref, `worker ${this.o.worker} stopped`, last);
        log.info('service given back: the worker is stopping');
        return;
      }
      const row = await this.store.serviceExited(i.ref, result, last);
      log.warn({ exit: result, state: row.state, nextStartAt: row.nextStartAt }, row.state === 'down' ? 'service stopped' : 'service exited; restart scheduled');
      if (row.nextStartAt !== null) this.wakeBy(row.nextStartAt);
    } catch (e) {
      if (!(e instanceof StaleFenceError)) throw e;
      log.warn('service exit not recorded: this instance is no longer current');
    }
  }
}

const key = (r: { namespace: string; name: string }) => `${r.namespace}/${r.name}`;
