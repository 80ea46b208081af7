// A worker: claims jobs it has free slots for, runs each attempt (command or
// handler) with staged outputs and shipped logs, renews its leases by
// heartbeat, and kills attempts the store revoked (cancel, lost lease). It is
// woken by store signals; a slow fallback poll only guards against a missed one.
//
// src/worker owns: the claim loop (this file), executors (runCommand, and
// handlerHosts: handlers run in host processes), output staging (outputs), log
// shipping (logShipper).
import os from 'node:os';
import fs from 'node:fs/promises';
import { statSync } from 'node:fs';
import type { RunSnapshot, TemplateContext, WorkflowSpec } from '../spec/model.js';
import { paramEnv, renderArgv, renderLiteral, renderShell, TemplateError } from '../spec/template.js';
import { expandWorkflow, ExpansionError, workflowKey, type ExpandedTask, type TaskScope } from '../spec/expand.js';
import { registerPlanUser, runPlan } from './runPlans.js';
import { chunkContext, jobStep, planChunks, splitArray, type JobStep } from './jobStep.js';
import { snapshotLookup } from '../spec/snapshot.js';
import { formatDuration } from '../spec/duration.js';
import { ConflictError, NotFoundError, StaleFenceError, type AttemptOutcome, type Capacity, type ClaimedJob, type ClaimRequest, type LogLine, type ResourceUsage, type Store, type WorkerStopMode } from '../store/types.js';
import { strongerStopMode } from '../store/rows.js';
import { addCapacity, freeOf, NO_CAPACITY } from '../store/claimSelection.js';
import type { Logger } from '../log.js';
import { LogShipper } from './logShipper.js';
import { allOutputsExist, commitOutputs, discardStaging, missingStagedOutputs, removeFinalOutputs } from './outputs.js';
import { runCommand, type LauncherKind } from './runCommand.js';
import { acquireLauncher, SUPERVISOR_KILL_LINE, type Launcher } from './launcher.js';
import { CompletionBatcher } from './completionBatcher.js';
import { killLostAttempt } from './processTree.js';
import { HandlerHostPool } from './handlerHosts.js';
import { declaredLimits } from './jobBounds.js';
import type { HandlerJobData } from './handlerProtocol.js';
import { CheckpointFile } from './checkpointFile.js';
import { SecretError, type SecretKey } from '../secrets/seal.js';
import { maskValue, noMask, secretMasker, type Masker } from './secretMask.js';
import { secretNames } from '../spec/template.js';
import { ServiceRunner } from './serviceRunner.js';
import { JobEnvironment } from './jobEnvironment.js';
import { setUpAttempt, tearDownAttempt, type AttemptSetup } from './attemptSetup.js';
import { openJobFile } from './attemptFiles.js';
import { ownUserName, RunAsPolicy } from './runAs.js';


export interface WorkerOptions {
  name: string;
  queues: string[];
  slots: number;
  /** what this worker offers; a job is claimed only if it fits what is free */
  resources: Capacity;
  leaseMs: number;
  heartbeatMs: number;
  killGraceMs: number;
  pollMs: number;
  maxResultBytes: number;
  maxLogBytes: number;
  /**
   * Supervise commands: a job whose worker stopped renewing its lease (paused,
   * cut off, dead) is killed before another worker can take it.
   */
  supervise: boolean;
  /**
   * How commands are started: `helper` (default), by the process's small
   * launcher (bin/gantry-launcher), which also supervises them; `spawn`, by
   * Node's spawn from this process, under bin/gantry-supervise when supervised.
   */
  launcher?: LauncherKind;
  /** names of this worker's environment variables its jobs and services get too (`--pass-env`); the rest of its environment they never see */
  passEnv?: string[];
  /**
   * A root worker runs the jobs of a namespace mapped to no user as this user
   * (e.g. nobody); null: as itself, with a warning line in the job's log.
   */
  runAsDefault?: string | null;
  /** opens the secrets jobs use (`{{ secrets.NAME }}`); null: this worker cannot, and such jobs fail saying so */
  secretKey?: SecretKey | null;
  logger: Logger;
}

export { WORKER_DEFAULTS } from './defaults.js';

interface ActiveAttempt {
  fence: number;
  jobId: string;
  need: Capacity;
  abort: AbortController;
  /** why it was aborted: decides how the attempt ends */
  abortReason: 'timeout' | 'stalled' | 'revoked' | 'shutdown' | 'terminated' | null;
  /** last output line or progress report: what stall_timeout measures from */
  lastActivity: number;
  progress: number | null;
  /** tells the job's supervisor the lease was renewed */
  renew: (() => void) | null;
  /** when the lease was last renewed (by claim or heartbeat) */
  renewedAt: number;
  /** its process is over and its outcome known; only the completion's commit is pending */
  finishing?: boolean;
  /** its completion's batch claimed for the slot it frees: ending it needs no claim loop wake-up */
  refilled?: boolean;
  /** other jobs wait for it: its completion claims with it */
  hasDependents: boolean;
  /** a split step's stdout, where its JSON array may be */
  splitStdout?: string[];
  splitBytes?: number;
  /** a command's $GANTRY_CHECKPOINT, looked at each heartbeat */
  checkpoint?: CheckpointFile;
  /** what its command's process tree used (from the launcher), whatever the outcome becomes after */
  usage?: ResourceUsage;
  done: Promise<void>;
}

const PROGRESS_INTERVAL_MS = 1000;
/** a split's array (stdout, $GANTRY_RESULT or returned): 100,000 chunks of a few fields fit */
const MAX_SPLIT_BYTES = 64 * 1024 * 1024;
/** a supervised job dies when no renewal came for this share of its lease: before the lease can be handed on */
const SUPERVISE_FRACTION = 0.8;
const ORPHAN_CHECK_MS = 2_000;
const STOP_CHECK_MS = 1_000;
/** how far back lost attempts are looked at (pids are reused eventually) */
const ORPHAN_WINDOW_MS = 60 * 60_000;
const PROGRESS_LINE = /^gantry-progress\s+(\d+(?:\.\d+)?)\s*$/;

export class Worker {
  private readonly active = new Map<number, ActiveAttempt>();
  private stopping = false;
  /** ends this worker's share of the process's run plans (runPlans.ts) */
  private releasePlans: (() => void) | undefined;
  /** what an operator (or SIGTERM) asked of this worker; set: it claims nothing new */
  private stopMode: WorkerStopMode | null = null;
  private exiting: Promise<void> | null = null;
  private resolveStopped!: () => void;
  /** resolves once a requested stop (gantry stop, SIGTERM) has ended this worker: its process may exit */
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly host = os.hostname();
  /** starts this worker's commands (shared by the process's workers); null: Node's spawn */
  private launcher: Launcher | null = null;

  /** what a job's environment starts from (never the worker's own environment) */
  private readonly jobEnv: JobEnvironment;
  /** who a namespace's jobs run as on this worker */
  private readonly runAs: RunAsPolicy;
  private readonly completions: CompletionBatcher;
  /** continuous services this worker runs (claimed like jobs, beside them) */
  private readonly services: ServiceRunner;
  /** a wake-up that came while the claim loop was busy: its next wait returns at once */
  private wakeMissed = false;
  /** the processes handlers run in, out of this event loop */
  private readonly handlerHosts: HandlerHostPool;

  constructor(private readonly store: Store, private readonly o: WorkerOptions) {
    this.jobEnv = new JobEnvironment(o.passEnv ?? []);
    this.runAs = new RunAsPolicy(store, o.runAsDefault ?? null);
    this.completions = new CompletionBatcher(store, (fn) => this.withStoreRetry(fn), {
      request: (fences) => this.batchClaimRequest(fences),
      claimed: (jobs, fences, ok) => this.batchClaimed(jobs, fences, ok),
    });
    this.services = new ServiceRunner(
      store,
      { worker: o.name, host: this.host, queues: o.queues, leaseMs: o.leaseMs, stopGraceMs: o.killGraceMs, logger: o.logger, launcher: () => this.launcher, baseEnv: (who) => this.jobEnv.base(who), runAs: (ns) => this.runAs.decide(ns) },
      () => this.poke(),
    );
    this.handlerHosts = new HandlerHostPool({
      launcher: () => this.launcher,
      killGraceMs: o.killGraceMs,
      superviseSeconds: o.supervise ? (o.leaseMs * SUPERVISE_FRACTION) / 1000 : null,
      logger: o.logger,
    });
  }

  // One claim at a time (the loop's or a completion batch's), so that free slots are counted once.
  /** the loop's claim in flight: a completion batch waits for it (its jobs must be counted) and then claims with its own */
  private loopClaim: Promise<void> | null = null;
  /** a completion batch's claim is in flight: the loop skips its claim */
  private batchClaiming = false;
  /** the loop skipped its claim for a batch's: the batch wakes the loop when done */
  private loopSkipped = false;

  /** Slots left and the resources jobs use, counting only attempts that are not finishing (see claimLoop). */
  private jobsHeld(): { free: number; used: Capacity } {
    const holding = [...this.active.values()].filter((a) => !a.finishing);
    return { free: this.o.slots - holding.length, used: holding.reduce((acc, a) => addCapacity(acc, a.need), NO_CAPACITY) };
  }

  /**
   * A completion batch that can make jobs ready claims with it (Store.completeAndClaim): the slots and
   * resources free when the claim is made, once the loop's claim in flight (woken as the attempts
   * finished) has taken its share. Leaves' completions leave claiming to the loop.
   */
  private batchClaimRequest(fences: number[]): (() => Promise<ClaimRequest | null>) | null {
    if (!fences.some((f) => this.active.get(f)?.hasDependents)) return null;
    return async () => {
      while (this.loopClaim) await this.loopClaim;
      if (this.stopping || this.stopMode !== null) return null;
      const { free, used: jobsUsed } = this.jobsHeld();
      if (free <= 0) return null;
      this.batchClaiming = true;
      const used = addCapacity(jobsUsed, this.services.used());
      return { worker: this.claimingWorker(), limit: free, leaseMs: this.o.leaseMs, free: freeOf(this.o.resources, used) };
    };
  }

  private batchClaimed(jobs: ClaimedJob[], fences: number[], ok: boolean): void {
    this.batchClaiming = false;
    if (ok)
      for (const f of fences) {
        const a = this.active.get(f);
        if (a) a.refilled = true;
      }
    if (this.stopping) {
      // claimed while stopping: give them back at once rather than run them
      for (const c of jobs) void this.store.releaseAttempt(c.fence, 'worker stopping').catch(() => undefined);
    } else for (const c of jobs) this.startAttempt(c);
    if (this.loopSkipped) {
      this.loopSkipped = false;
      this.poke();
    }
  }

  /** Who claims: a worker that is not root names its Unix user, and gets only jobs it can run as (runAs.ts). */
  private claimingWorker(): ClaimRequest['worker'] {
    const unixUser = this.runAs.claimUser;
    return { name: this.o.name, host: this.host, queues: this.o.queues, ...(unixUser !== undefined ? { unixUser } : {}) };
  }

  private poke(): void {
    if (this.wake) this.wake();
    else this.wakeMissed = true;
  }

  get name(): string {
    return this.o.name;
  }

  async start(): Promise<void> {
    await this.store.registerWorker({
      name: this.o.name,
      host: this.host,
      pid: process.pid,
      queues: this.o.queues,
      slots: this.o.slots,
      resources: this.o.resources,
      unixUser: ownUserName(),
    });
    this.unsubscribe = this.store.subscribe((s) => {
      if (s.type === 'queued') this.poke();
      else if (s.type === 'revoked') for (const f of s.fences) this.abortAttempt(f, 'revoked');
      else if (s.type === 'worker' && s.name === this.o.name) void this.readStopMode();
      else if (s.type === 'services') {
        // a service started, stopped, freed or exited: claim (if one is due) and stop (if one of ours is asked to)
        this.services.markDue();
        this.poke();
        void this.renewServices();
      }
    });
    this.releasePlans = registerPlanUser(this.store);
    if ((this.o.launcher ?? 'helper') === 'helper') this.launcher = acquireLauncher(this.o.logger);
    this.heartbeatTimer = setInterval(() => this.beat(), this.o.heartbeatMs);
    await this.killOrphans();
    this.orphanTimer = setInterval(() => void this.killOrphans(), ORPHAN_CHECK_MS);
    // SQLite has no cross-process signal: a drain or stop asked by another process is read this often
    // (PostgreSQL's NOTIFY brings it at once; the heartbeat reads it too, as a fallback).
    // A service stop asked by another process reaches its SQLite worker the same way.
    if (this.store.dialect === 'sqlite')
      this.stopCheckTimer = setInterval(() => {
        void this.readStopMode();
        void this.renewServices();
      }, STOP_CHECK_MS);
    this.loopDone = this.claimLoop();
  }

  /** Stops claiming; `graceful` waits for running attempts, otherwise kills them (they are requeued by the reaper). */
  async stop(opts: { graceful: boolean }): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (!opts.graceful) for (const a of this.active.values()) this.abortAttempt(a.fence, 'shutdown');
    await this.loopDone;
    // Services are given back (stopped with their grace period) for another worker to start.
    await this.services.releaseAll();
    await Promise.all([...this.active.values()].map((a) => a.done));
    await this.handlerHosts.close();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.progressTimer) clearTimeout(this.progressTimer);
    // a beat still under way would bring a worker that has stopped back online
    await Promise.all(this.beating);
    if (this.orphanTimer) clearInterval(this.orphanTimer);
    if (this.stopCheckTimer) clearInterval(this.stopCheckTimer);
    this.unsubscribe?.();
    this.releasePlans?.();
    this.releasePlans = undefined;
    this.launcher?.release();
    this.launcher = null;
    const why = this.stopMode && this.stopMode !== 'drain' ? `exited (${this.stopMode} asked)` : opts.graceful ? 'exited' : 'exited: its running jobs were killed, the reaper requeues them';
    await this.store.stopWorker(this.o.name, why).catch(() => undefined);
    this.resolveStopped();
  }

  /**
   * SIGTERM: drain (shown as draining in the store), and once `graceMs` has
   * passed with jobs still running, terminate them (killed, requeued as lost).
   * Resolves when the worker has stopped.
   */
  async drainAndStop(graceMs: number): Promise<void> {
    await this.requestStop('stop');
    const timer = setTimeout(() => void this.requestStop('terminate'), graceMs);
    await this.stopped;
    clearTimeout(timer);
  }

  /** Records the request in the store (so `gantry workers` shows it) and acts on it here at once. */
  private async requestStop(mode: WorkerStopMode): Promise<void> {
    await this.store.requestWorkerStop(this.o.name, mode).catch((e) => this.o.logger.warn({ err: e }, 'could not record the stop request in the store'));
    this.applyStopMode(mode);
  }

  /** What the store says was asked of this worker (gantry drain / stop): read at a `worker` signal and each heartbeat. */
  private async readStopMode(): Promise<void> {
    if (this.stopping) return;
    try {
      const mode = await this.store.workerStopMode(this.o.name);
      if (mode) this.applyStopMode(mode);
    } catch (e) {
      this.o.logger.error({ err: e }, 'reading the stop request failed');
    }
  }

  private applyStopMode(mode: WorkerStopMode): void {
    const next = strongerStopMode(this.stopMode, mode);
    if (next === this.stopMode || this.stopping) return;
    this.stopMode = next;
    this.o.logger.info({ worker: this.o.name, mode: next, running: this.runningJobs() }, next === 'drain' ? 'draining: claiming no more jobs' : `${next} requested`);
    if (next === 'terminate') for (const a of this.active.values()) if (!a.finishing) this.abortAttempt(a.fence, 'terminated');
    if (next !== 'drain' && !this.exiting) {
      // stop: the running attempts finish (or are terminated), then the worker ends.
      this.exiting = (async () => {
        while (this.active.size > 0) await Promise.all([...this.active.values()].map((a) => a.done));
        await this.stop({ graceful: true });
      })();
    }
  }

  runningJobs(): string[] {
    return [...this.active.values()].map((a) => a.jobId);
  }

  private async claimLoop(): Promise<void> {
    while (!this.stopping) {
      // An attempt whose outcome is only waiting for its completion to commit holds no slot or resources:
      // the next job's claim overlaps that round trip. It stays in `active`, so its lease is still renewed.
      const { free, used: jobsUsed } = this.jobsHeld();
      if (this.stopMode === null) {
        // Services first (they take no slot, only resources): a service that must stay up is not starved by a queue of jobs.
        try {
          await this.services.claim(freeOf(this.o.resources, addCapacity(jobsUsed, this.services.used())));
        } catch (e) {
          this.o.logger.error({ err: e }, 'claiming services failed; retrying');
        }
      }
      if (free > 0 && this.stopMode === null && this.batchClaiming) this.loopSkipped = true;
      else if (free > 0 && this.stopMode === null) {
        let claimDone!: () => void;
        this.loopClaim = new Promise<void>((r) => (claimDone = r));
        try {
          const used = addCapacity(jobsUsed, this.services.used());
          const claimed = await this.store.claimJobs(
            this.claimingWorker(),
            free,
            this.o.leaseMs,
            freeOf(this.o.resources, used),
          );
          for (const c of claimed) this.startAttempt(c);
          // Fewer than asked: nothing more fits now. The loop waits for a wake-up (a job queued elsewhere,
          // a slot freed without its completion claiming) rather than claim again, which would hold the
          // claim while quick jobs complete and keep their completions from claiming their dependents.
          if (claimed.length > 0 && claimed.length >= free) {
            // Let I/O in between claims: with the synchronous SQLite store and quick handlers the
            // loop never leaves the microtask queue, and the API of the same process stops answering.
            await new Promise((r) => setImmediate(r));
            continue;
          }
        } catch (e) {
          this.o.logger.error({ err: e }, 'claiming jobs failed; retrying');
        } finally {
          this.loopClaim = null;
          claimDone();
        }
      }
      if (this.wakeMissed) {
        this.wakeMissed = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.o.pollMs);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  private progressTimer: NodeJS.Timeout | null = null;
  /** heartbeats under way */
  private readonly beating = new Set<Promise<void>>();
  private orphanTimer: NodeJS.Timeout | null = null;
  private stopCheckTimer: NodeJS.Timeout | null = null;
  private readonly orphansHandled = new Set<number>();

  /**
   * Attempts of this host that the store declared lost (their worker was
   * killed, or paused past its lease) may still have processes running: kill
   * their process groups and drop their staged outputs, so a job never runs
   * twice at once. Any worker on the host does it for every worker of the host.
   */
  private async killOrphans(): Promise<void> {
    try {
      const lost = await this.store.listLostAttempts(this.host, Date.now() - ORPHAN_WINDOW_MS);
      for (const l of lost) {
        if (this.orphansHandled.has(l.fence) || this.active.has(l.fence)) continue;
        this.orphansHandled.add(l.fence);
        if (await killLostAttempt(l)) this.o.logger.warn({ job: l.jobId, fence: l.fence, pid: l.pid }, 'killed the processes of a lost attempt');
      }
    } catch (e) {
      this.o.logger.error({ err: e }, 'looking for orphaned attempts failed');
    }
  }

  /** Progress is shipped with the heartbeat; a change brings the next one forward, at most once a second. */
  private heartbeatSoon(): void {
    if (this.progressTimer || this.stopping) return;
    this.progressTimer = setTimeout(() => {
      this.progressTimer = null;
      this.beat();
    }, PROGRESS_INTERVAL_MS);
  }

  private beat(): void {
    const p = this.heartbeat().finally(() => this.beating.delete(p));
    this.beating.add(p);
  }

  private async heartbeat(): Promise<void> {
    try {
      const fences = [...this.active.values()].map((a) => ({ fence: a.fence, progress: a.progress }));
      const lost = await this.store.heartbeat(this.o.name, fences, this.o.leaseMs);
      for (const f of lost) this.abortAttempt(f, 'revoked');
      for (const { fence } of fences) {
        const a = lost.includes(fence) ? undefined : this.active.get(fence);
        if (!a) continue;
        a.renewedAt = Date.now();
        a.renew?.();
      }
      // What commands wrote to $GANTRY_CHECKPOINT since the last beat: a stat each, a save only when it changed.
      for (const a of this.active.values()) void a.checkpoint?.sync();
    } catch (e) {
      this.o.logger.error({ err: e }, 'heartbeat failed');
    }
    await this.renewServices();
    // A drain or stop asked from another process reaches a SQLite worker here (PostgreSQL also signals it).
    if (!this.stopping) await this.readStopMode();
  }

  private async renewServices(): Promise<void> {
    try {
      await this.services.renew();
    } catch (e) {
      this.o.logger.error({ err: e }, 'renewing services failed');
    }
  }

  private abortAttempt(fence: number, reason: NonNullable<ActiveAttempt['abortReason']>): void {
    const a = this.active.get(fence);
    if (!a || a.abortReason) return;
    a.abortReason = reason;
    a.abort.abort();
  }

  private startAttempt(c: ClaimedJob): void {
    const a: ActiveAttempt = {
      fence: c.fence,
      jobId: c.job.id,
      need: c.job.resources,
      abort: new AbortController(),
      abortReason: null,
      progress: null,
      renew: null,
      renewedAt: Date.now(),
      lastActivity: Date.now(),
      hasDependents: c.hasDependents,
      done: Promise.resolve(),
    };
    this.active.set(c.fence, a);
    a.done = this.runAttempt(c, a)
      .catch(async (e) => {
        this.o.logger.error({ err: e, job: c.job.id }, 'attempt crashed in the worker');
        // Not left running until its lease ends (then requeued as lost, forever): a failed try, with the cause.
        if (!a.finishing)
          await this.finish(c, { state: 'failed', exitCode: null, error: `the worker failed running it: ${errorMessage(e)}` }).catch((e2) =>
            this.o.logger.error({ err: e2, job: c.job.id }, 'could not record the failed attempt; the reaper will requeue it'),
          );
      })
      .finally(() => {
        this.active.delete(c.fence);
        // Its completion's batch already claimed for its slot (or found nothing): no claim of the loop's own.
        if (!a.refilled) this.wake?.();
      });
  }

  /**
   * The run's tasks as planned: its snapshot expanded the way planRun did when
   * the run was created (same snapshot, params, id and date), once per run.
   */
  private plan(c: ClaimedJob): Promise<Map<string, ExpandedTask>> {
    const runId = c.run.id;
    return runPlan(this.store, runId, () =>
      this.store.getRunSpec(runId).then((spec) => {
        const snapshot = spec as RunSnapshot;
        let tasks: ExpandedTask[];
        try {
          tasks = expandWorkflow(snapshot, snapshotLookup(snapshot), c.run.params, { id: String(runId), date: c.run.logicalDate });
        } catch (e) {
          // A run created before sub-workflows were inlined has no children in its snapshot (its
          // sub-workflow tasks were jobs that fail): its other jobs still run as they were planned.
          if (!(e instanceof ExpansionError) || snapshot.subworkflows) throw e;
          tasks = unexpandedTasks(snapshot, c.run.params);
        }
        return new Map(tasks.map((t) => [t.id, t]));
      }),
    );
  }

  private async runAttempt(c: ClaimedJob, a: ActiveAttempt): Promise<void> {
    const { job, fence } = c;
    let step: JobStep | undefined;
    try {
      step = jobStep(await this.plan(c), job);
    } catch (e) {
      if (!(e instanceof ExpansionError || e instanceof TemplateError)) throw e;
      await this.finish(c, { state: 'failed', exitCode: null, error: `this run's snapshot cannot be expanded: ${e.message}`, retryable: false });
      return;
    }
    const expanded = step?.expanded;
    const task = expanded?.task;
    if (!step || !expanded || !task || (!step.command && step.kind !== 'combine')) {
      await this.finish(c, { state: 'failed', exitCode: null, error: `task '${job.task}' has nothing to run in this run's snapshot`, retryable: false });
      return;
    }
    if (!step.command) {
      // A split task without a combine: its main job joins its chunks, all of which succeeded.
      await this.finish(c, { state: 'succeeded', exitCode: null });
      return;
    }
    const command = step.command;
    if (!job.force && !c.run.force && allOutputsExist(job.outputs)) {
      await this.finish(c, { state: 'skipped' });
      return;
    }
    // Secrets are opened here, for this job only, and every value is masked in what it ships.
    let secrets: Record<string, string>;
    try {
      secrets = await this.openSecrets(step, expanded);
    } catch (e) {
      if (!(e instanceof SecretError)) throw e;
      await this.finish(c, { state: 'failed', exitCode: null, error: e.message, retryable: false });
      return;
    }
    const mask = secretMasker(Object.values(secrets));
    const logs = new LogShipper((lines) => this.store.appendLogs(fence, lines), {
      mask,
      intervalMs: 100,
      maxBatch: 500,
      maxBytes: this.o.maxLogBytes,
      onStale: () => this.abortAttempt(fence, 'revoked'),
      onError: (e) => this.o.logger.error({ err: e, job: job.id }, 'shipping log lines failed'),
    });
    const system = (line: string) => logs.push('system', `[gantry] ${line}`);
    system(`attempt ${job.attempts} of ${job.id} on worker ${this.o.name} (${this.host})`);

    // Who it runs as, where its outputs may go, their staging, its scratch folder and result file.
    const prepared = await setUpAttempt({
      fence,
      outputs: job.outputs,
      kind: command.kind,
      baseDir: expanded.scope.baseDir,
      namespace: expanded.scope.workflow.slice(0, expanded.scope.workflow.indexOf('/')),
      policy: this.runAs,
    });
    if ('error' in prepared) {
      // the worker's own preparation failed: a failed try with its real cause, not a job left running until its lease ends
      await this.failAttempt(c, logs, prepared.error, mask, prepared.retryable);
      return;
    }
    const setup = prepared.ok;
    if (setup.warning) system(setup.warning);
    const { staged } = setup;
    // Not created up front: most jobs never write a result.
    const resultFile = setup.files.result;
    let timer: NodeJS.Timeout | null = null;
    if (task.timeoutMs !== null) {
      timer = setTimeout(() => {
        system(`timed out after ${formatDuration(task.timeoutMs!)}: stopping its process tree`);
        this.abortAttempt(fence, 'timeout');
      }, task.timeoutMs);
    }
    // stall_timeout: alive but silent (no output line, no progress report) for that long.
    const stallMs = task.stallTimeoutMs;
    let stallTimer: NodeJS.Timeout | null = null;
    if (stallMs !== null) {
      a.lastActivity = Date.now();
      stallTimer = setInterval(() => {
        if (a.abortReason || Date.now() - a.lastActivity < stallMs) return;
        system(`stalled: no output or progress for ${formatDuration(stallMs)} (stall_timeout): killing its process tree`);
        this.o.logger.warn({ job: job.id, fence }, 'stalled job killed');
        this.abortAttempt(fence, 'stalled');
      }, Math.max(100, Math.min(1000, stallMs / 4)));
    }
    let outcome: AttemptOutcome;
    try {
      outcome = await this.execute(c, a, step, setup, logs, secrets);
    } catch (e) {
      outcome = { state: 'failed', exitCode: null, error: errorMessage(e), retryable: !(e instanceof TemplateError) };
    } finally {
      if (timer) clearTimeout(timer);
      if (stallTimer) clearInterval(stallTimer);
    }
    if (a.abortReason === 'timeout') outcome = { state: 'timed_out', exitCode: null, error: `timed out after ${formatDuration(task.timeoutMs!)}` };
    // A failed try like any other: retried per the task's retry policy.
    if (a.abortReason === 'stalled') outcome = { state: 'failed', exitCode: null, error: `stalled: no output or progress for ${formatDuration(stallMs!)}`, cause: 'stalled' };

    try {
      if (a.abortReason === 'revoked' || a.abortReason === 'shutdown') {
        system(a.abortReason === 'revoked' ? 'attempt revoked (cancelled or lease lost): killed' : 'worker shutting down: attempt killed');
        await logs.flush();
        await discardStaging(job.outputs, fence, setup.user);
        if (a.abortReason === 'revoked' && (await this.store.cleanRequested(fence).catch(() => false))) {
          // gantry cancel --clean: the process tree is gone (runCommand returned), so nothing writes there any more.
          const removed = await removeFinalOutputs(job.outputs, setup.user);
          if (removed.length) this.o.logger.info({ job: job.id, removed }, 'cancelled with --clean: partial outputs deleted');
        }
        return;
      }
      if (a.abortReason === 'terminated') {
        // gantry stop --terminate (or SIGTERM past its grace): not the job's fault, so lost and requeued, not failed.
        const reason = `worker ${this.o.name} was stopped with --terminate: attempt killed, job requeued`;
        system(reason);
        await logs.flush();
        await discardStaging(job.outputs, fence, setup.user);
        await this.withStoreRetry(() => this.store.releaseAttempt(fence, reason)).catch((e) =>
          this.o.logger.warn({ err: e, job: job.id }, 'could not give the job back; the reaper will'),
        );
        return;
      }
      if (outcome.state === 'succeeded') {
        const missing = missingStagedOutputs(staged);
        if (missing.length > 0)
          outcome = {
            state: 'failed',
            exitCode: outcome.exitCode,
            error: `declared output${missing.length > 1 ? 's' : ''} not written: ${missing.map((m) => `${m} (expected at ${staged[m]})`).join(', ')}`,
          };
      }
      // A handler returns its result: it has no $GANTRY_RESULT file (two syscalls per job saved).
      if (outcome.state === 'succeeded' && outcome.result === undefined && command.kind !== 'handler') {
        const r = await readResult(resultFile, step.kind === 'split' ? MAX_SPLIT_BYTES : this.o.maxResultBytes, setup.files.owner);
        if ('error' in r) outcome = { state: 'failed', exitCode: outcome.exitCode, error: r.error, retryable: false };
        else if (r.value !== undefined) outcome = { ...outcome, result: r.value };
      }
      if (outcome.state === 'succeeded' && step.kind === 'split') outcome = this.splitOutcome(c, expanded, outcome, a.splitStdout ?? [], mask);
      if (outcome.state === 'succeeded' && Object.keys(job.outputs).length > 0) {
        // Only a still-current attempt may put files in place (fencing), then it reports success.
        // The check renews the lease, so the reaper cannot take the job back while the renames run.
        await this.withStoreRetry(() => this.store.assertCurrent(fence, this.o.leaseMs));
        try {
          await commitOutputs(job.outputs, fence, setup.user);
          system(`succeeded; outputs in place: ${Object.values(job.outputs).join(', ')}`);
        } catch (e) {
          outcome = { state: 'failed', exitCode: outcome.exitCode, error: `cannot move its outputs into place: ${errorMessage(e)}` };
          await discardStaging(job.outputs, fence, setup.user).catch(() => undefined);
          system(`failed: ${outcome.error}`);
        }
      } else if (outcome.state === 'succeeded') {
        system('succeeded');
      } else {
        await discardStaging(job.outputs, fence, setup.user);
        if (outcome.state === 'failed' || outcome.state === 'timed_out') system(`failed: ${outcome.error}`);
      }
      const lines = await logs.drain();
      // accounted on every ending (timeouts, stalls, missing outputs too): the tree used it either way
      if (a.usage && outcome.state !== 'skipped') outcome = { ...outcome, usage: a.usage };
      await this.finish(c, maskOutcome(outcome, mask), lines);
    } catch (e) {
      if (!(e instanceof StaleFenceError)) throw e;
      await discardStaging(job.outputs, fence, setup.user);
      this.o.logger.warn({ job: job.id, fence }, 'attempt no longer owns its job; its result was discarded');
    } finally {
      if (command.kind !== 'handler' && statSync(resultFile, { throwIfNoEntry: false })) await fs.unlink(resultFile).catch(() => undefined);
      await tearDownAttempt(setup);
    }
  }

  /**
   * Retries a store call through transient failures (a lost connection, a
   * restarting database) with backoff, for up to two leases; after that the
   * lease is gone anyway and the reaper hands the job to someone else.
   * Answers the store gave (stale fence, not found, conflict) are not retried.
   */
  private async withStoreRetry<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 2 * this.o.leaseMs;
    let delay = 100;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (e instanceof StaleFenceError || e instanceof NotFoundError || e instanceof ConflictError || Date.now() + delay > deadline) throw e;
        this.o.logger.warn({ err: e, retryInMs: delay }, 'store call failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  /** A handler's ctx.checkpoint(): durable when it resolves; a failure is told in the job's log and to the handler. */
  private async saveCheckpoint(c: ClaimedJob, logs: LogShipper, data: unknown): Promise<void> {
    try {
      await this.withStoreRetry(() => this.store.saveCheckpoint(c.fence, data));
    } catch (e) {
      logs.push('system', `[gantry] checkpoint not saved: ${errorMessage(e)}`);
      if (e instanceof StaleFenceError) this.abortAttempt(c.fence, 'revoked');
      throw e;
    }
  }

  /** Ends an attempt the worker could not start or finish (its preparation failed): a failed try, its cause in the log and as its error. */
  private async failAttempt(c: ClaimedJob, logs: LogShipper, error: string, mask: Masker, retryable = true): Promise<void> {
    logs.push('system', `[gantry] failed: ${error}`);
    await discardStaging(c.job.outputs, c.fence).catch(() => undefined);
    const lines = await logs.drain();
    await this.finish(c, maskOutcome({ state: 'failed', exitCode: null, error, ...(retryable ? {} : { retryable: false }) }, mask), lines);
  }

  private async finish(c: ClaimedJob, outcome: AttemptOutcome, lines: LogLine[] = []): Promise<void> {
    // An attempt whose outcome only waits for its completion to commit holds no slot or resources:
    // its completion's batch claims the next job for it.
    const a = this.active.get(c.fence);
    if (a) {
      a.finishing = true;
      // A leaf's slot is claimed by the loop at once. A completion that can make jobs ready claims with it
      // (completeAndClaim): on SQLite in its own transaction, so the loop is not woken for an extra one; on
      // PostgreSQL after its commit, round trips later, so the loop claims for the slot in the meantime.
      if (!a.hasDependents || this.store.dialect !== 'sqlite') this.wake?.();
    }
    try {
      await this.completions.complete(c.fence, outcome, lines);
    } catch (e) {
      if (e instanceof StaleFenceError) this.o.logger.warn({ job: c.job.id, fence: c.fence }, 'completion refused: attempt is stale');
      else throw e;
    }
  }

  /**
   * The secrets a job's step names (in its command and its task's env), opened
   * with this worker's key. They are looked up in the namespace of the workflow
   * the task is written in: a sub-workflow's commands read their own namespace's
   * secrets, never those of the run that inlined them. SecretError when one is
   * missing or does not open, or this worker has no key.
   */
  private async openSecrets(step: JobStep, expanded: ExpandedTask): Promise<Record<string, string>> {
    const names = secretNames(step.command, expanded.task.env);
    if (names.length === 0) return {};
    const namespace = expanded.scope.workflow.slice(0, expanded.scope.workflow.indexOf('/'));
    const key = this.o.secretKey;
    if (!key)
      throw new SecretError(
        `this job uses secrets (${names.join(', ')}) but worker ${this.o.name} has no secret key: give it the server's (GANTRY_SECRET_KEY, or gantry.secret-key in its working directory)`,
      );
    const sealed = await this.withStoreRetry(() => this.store.readSecrets(namespace, names));
    const missing = names.filter((n) => sealed[n] === undefined);
    if (missing.length)
      throw new SecretError(`secret${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not set in namespace '${namespace}' (gantry secret set NAME --namespace ${namespace})`);
    return Object.fromEntries(names.map((n) => [n, key.open(sealed[n]!, namespace, n)]));
  }

  /** What the templates of a job see: its copy's params and item, its upstream by local id, its chunk or its task's chunks, its secrets. */
  private templateContext(c: ClaimedJob, expanded: ExpandedTask, outputs: Record<string, string>, secrets: Record<string, string> = {}): TemplateContext {
    const { scope } = expanded;
    const ctx: TemplateContext = {
      params: scope.params,
      run: { id: String(c.run.id), date: c.run.logicalDate },
      outputs,
      tasks: localUpstream(c.upstream, scope),
      secrets,
    };
    if (scope.item) ctx.item = scope.item.value;
    if (c.job.chunk !== null) ctx.chunk = chunkContext(c.job.chunk, c.job.chunkValue ?? null);
    if (c.chunks) ctx.chunks = c.chunks;
    return ctx;
  }

  /** A split step that ran fine: its array becomes the chunks the store creates with its completion. */
  private splitOutcome(c: ClaimedJob, expanded: ExpandedTask, outcome: Extract<AttemptOutcome, { state: 'succeeded' }>, stdout: string[], mask: Masker): AttemptOutcome {
    if (stdout.reduce((n, l) => n + l.length + 1, 0) > MAX_SPLIT_BYTES)
      return { state: 'failed', exitCode: outcome.exitCode, error: `split printed more than ${MAX_SPLIT_BYTES} bytes`, retryable: false };
    const values = splitArray(outcome.result, stdout.join('\n'));
    if (!Array.isArray(values)) return { state: 'failed', exitCode: outcome.exitCode, error: values.error, retryable: false };
    try {
      // each chunk value is stored with its job: a secret in it is masked, and its outputs are named after the masked value
      const chunks = planChunks(expanded, this.templateContext(c, expanded, {}), values.map((v) => maskValue(v, mask)));
      return { state: 'succeeded', exitCode: outcome.exitCode, result: { chunks: chunks.length }, chunks };
    } catch (e) {
      return { state: 'failed', exitCode: outcome.exitCode, error: `split: ${errorMessage(e)}`, retryable: false };
    }
  }

  /** Not a failed try: the job lost its lease and its supervisor killed it. Give it back (lost, requeued), report no outcome. */
  private async supervisorKilled(c: ClaimedJob, a: ActiveAttempt, exitCode: number | null = null): Promise<AttemptOutcome> {
    a.abortReason = 'revoked';
    const reason = `killed by its supervisor: the lease was not renewed for ${formatDuration(Date.now() - a.renewedAt)}`;
    await this.withStoreRetry(() => this.store.releaseAttempt(c.fence, reason)).catch((e) =>
      this.o.logger.warn({ err: e, job: c.job.id }, 'could not give the job back; the reaper will'),
    );
    return { state: 'failed', exitCode, error: reason };
  }

  private async execute(
    c: ClaimedJob,
    a: ActiveAttempt,
    step: JobStep,
    setup: AttemptSetup,
    logs: LogShipper,
    secrets: Record<string, string>,
  ): Promise<AttemptOutcome> {
    const { task, scope } = step.expanded;
    const { staged, user } = setup;
    const resultFile = setup.files.result;
    const owner = user ? { uid: user.uid, gid: user.gid } : null;
    const ctx = this.templateContext(c, step.expanded, staged, secrets);
    const command = step.command!;
    if (step.kind === 'split') a.splitStdout = [];
    const setProgress = (n: number) => {
      a.lastActivity = Date.now();
      a.progress = Math.max(0, Math.min(100, n));
      this.heartbeatSoon();
    };
    if (command.kind === 'handler') {
      const data: HandlerJobData = {
        params: scope.params,
        outputs: staged,
        tasks: ctx.tasks,
        run: ctx.run,
        job: { id: c.job.id, attempt: c.job.attempts },
        env: Object.fromEntries(Object.entries(task.env).map(([k, v]) => [k, renderLiteral(v, ctx)])),
        secrets,
        lastCheckpoint: c.job.checkpoint,
      };
      if (scope.item) data.item = scope.item.value;
      if (ctx.chunk !== undefined) data.chunk = ctx.chunk;
      if (ctx.chunks) data.chunks = ctx.chunks;
      const r = await this.handlerHosts.run({
        key: { namespace: scope.workflow.slice(0, scope.workflow.indexOf('/')), folder: scope.baseDir, runAs: user ? { uid: user.uid, gid: user.gid, groups: user.groups } : null },
        env: this.jobEnv.base(user),
        module: command.module,
        exportName: command.exportName,
        resultLimit: step.kind === 'split' ? MAX_SPLIT_BYTES : this.o.maxResultBytes,
        data,
        signal: a.abort.signal,
        onLine: (stream, line) => {
          a.lastActivity = Date.now();
          logs.push(stream, line);
        },
        onProgress: setProgress,
        onCheckpoint: (cp) => this.saveCheckpoint(c, logs, cp),
        // The host's pid is not the attempt's: a host outlives its jobs and runs the next one, so a
        // worker that finds this attempt lost must not kill it by pid (killOrphans). A lost attempt's
        // host is stopped by its own worker (abort) or by the launcher's supervision instead.
        onStart: (_pid, renew) => {
          a.renew = renew;
        },
      });
      if (r.ok) return r.result === undefined ? { state: 'succeeded', exitCode: null } : { state: 'succeeded', exitCode: null, result: r.result };
      if (r.stack) for (const line of r.stack.split('\n')) logs.push('stderr', line);
      if (r.supervisorKilled) return this.supervisorKilled(c, a);
      return { state: 'failed', exitCode: null, error: r.error, ...(r.final ? { retryable: false } : {}) };
    }

    const argv = command.kind === 'shell' ? ['/bin/sh', '-c', renderShell(command.script, ctx)] : renderArgv(command.argv, ctx);
    const env: NodeJS.ProcessEnv = {
      ...this.jobEnv.base(user),
      ...paramEnv(scope.params),
      ...(scope.item ? { GANTRY_ITEM: typeof scope.item.value === 'string' ? scope.item.value : JSON.stringify(scope.item.value) } : {}),
      GANTRY_RUN_ID: String(c.run.id),
      GANTRY_RUN_DATE: c.run.logicalDate,
      GANTRY_JOB_ID: c.job.id,
      GANTRY_ATTEMPT: String(c.job.attempts),
      GANTRY_RESULT: resultFile,
      ...(c.job.chunk !== null ? { GANTRY_CHUNK_INDEX: String(c.job.chunk), GANTRY_CHUNK: JSON.stringify(c.job.chunkValue ?? null) } : {}),
    };
    for (const [name, p] of Object.entries(staged)) env[`GANTRY_OUTPUT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = p;
    for (const [k, v] of Object.entries(task.env)) env[k] = renderLiteral(v, ctx);
    const checkpoint = await CheckpointFile.create(
      setup.files.checkpoint,
      c.job.checkpoint,
      (text) => this.withStoreRetry(() => this.store.saveCheckpoint(c.fence, text)),
      (message) => logs.push('system', `[gantry] ${message}`),
      owner,
    );
    a.checkpoint = checkpoint;
    env.GANTRY_CHECKPOINT = checkpoint.path;
    let lastErr = '';
    let supervisorKilled = false;
    const r = await runCommand({
      argv,
      cwd: setup.scratch ?? scope.baseDir,
      env,
      runAs: user ? { uid: user.uid, gid: user.gid, groups: user.groups } : null,
      limits: declaredLimits(task.resources.memoryBytes, task.limits),
      signal: a.abort.signal,
      killGraceMs: this.o.killGraceMs,
      superviseSeconds: this.o.supervise ? (this.o.leaseMs * SUPERVISE_FRACTION) / 1000 : null,
      launcher: this.launcher,
      onSpawn: (pid, renew) => {
        a.renew = renew;
        void this.store.setAttemptPid(c.fence, pid).catch(() => undefined);
      },
      onLine: (stream, line) => {
        a.lastActivity = Date.now();
        if (stream === 'stderr') {
          const m = PROGRESS_LINE.exec(line);
          if (m) return setProgress(Number(m[1]));
          if (this.o.supervise && line.startsWith(SUPERVISOR_KILL_LINE)) supervisorKilled = true;
          if (line.trim()) lastErr = line.trim();
        }
        if (stream === 'stdout' && a.splitStdout) {
          a.splitBytes = (a.splitBytes ?? 0) + line.length + 1;
          if (a.splitBytes <= MAX_SPLIT_BYTES) a.splitStdout.push(line);
        }
        logs.push(stream, line);
      },
    });
    if (r.usage) a.usage = r.usage;
    // The attempt's last checkpoint, failed or not (a retry resumes from it); a revoked attempt's fence is stale.
    await checkpoint.close({ save: a.abortReason !== 'revoked' });
    if (r.spawnError) return { state: 'failed', exitCode: null, error: r.spawnError };
    if (r.exitCode === 0) return { state: 'succeeded', exitCode: 0 };
    if (supervisorKilled) return this.supervisorKilled(c, a, r.exitCode);
    const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`;
    return { state: 'failed', exitCode: r.exitCode, error: lastErr ? `${how}: ${lastErr.slice(0, 500)}` : how };
  }
}

/** The workflow's own tasks, as runs were planned before sub-workflows were inlined. */
function unexpandedTasks(wf: WorkflowSpec, params: Record<string, unknown>): ExpandedTask[] {
  const scope: TaskScope = { workflow: workflowKey(wf), prefix: '', params, taskIds: {}, baseDir: wf.baseDir };
  for (const t of wf.tasks) scope.taskIds[t.id] = t.id;
  return wf.tasks.map((t) => ({ id: t.id, task: t, needs: t.needs, trigger: t.trigger, scope }));
}

/**
 * Upstream tasks as the job's templates name them: by their id in the job's own
 * workflow (`tasks.stubs` inside the copy `dump[enwiki]` is `dump[enwiki].stubs`).
 */
function localUpstream(upstream: ClaimedJob['upstream'], scope: TaskScope): ClaimedJob['upstream'] {
  if (!scope.prefix) return upstream;
  const local: ClaimedJob['upstream'] = {};
  // walk the job's few upstreams, not the copy's tasks (a root workflow may hold thousands)
  for (const [global, u] of Object.entries(upstream)) {
    if (!global.startsWith(scope.prefix)) continue; // an entry task's needs belong to the parent
    const id = global.slice(scope.prefix.length);
    if (scope.taskIds[id] === global) local[id] = u;
  }
  return local;
}

async function readResult(file: string, maxBytes: number, owner: number | null): Promise<{ value: unknown } | { error: string }> {
  // Most jobs write no result: a stat that answers "absent" costs less than an ENOENT exception per job.
  if (!statSync(file, { throwIfNoEntry: false })) return { value: undefined };
  let text: string;
  try {
    // never through a symbolic link, only the job user's own file: a job cannot have the worker read another file for it
    const fh = await openJobFile(file, owner).catch((e: Error) => e);
    if (fh instanceof Error) return (fh as NodeJS.ErrnoException).code === 'ENOENT' ? { value: undefined } : { error: `$GANTRY_RESULT: ${fh.message}` };
    try {
      const { size } = await fh.stat();
      if (size > maxBytes) return { error: `result too large: $GANTRY_RESULT holds ${size} bytes, the limit is ${maxBytes}` };
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { value: undefined };
    throw e;
  }
  if (text.trim() === '') return { value: undefined };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { error: `$GANTRY_RESULT is not valid JSON: ${text.slice(0, 80)}` };
  }
}

/**
 * An outcome with the job's secret values masked before it reaches the store:
 * a failed attempt's error (its last stderr line, a handler's message), a
 * result (downstream `{{ tasks.x.result }}` sees *** too). A split's chunk
 * values are masked before its chunks are planned (splitOutcome).
 */
function maskOutcome(outcome: AttemptOutcome, mask: Masker): AttemptOutcome {
  if (outcome.state === 'failed' || outcome.state === 'timed_out') return { ...outcome, error: mask(outcome.error) };
  if (outcome.state !== 'succeeded' || mask === noMask) return outcome;
  const out: AttemptOutcome = { ...outcome };
  if (outcome.result !== undefined) out.result = maskValue(outcome.result, mask);
  return out;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
