// What bounds a command beyond its process group: the user it runs as, its
// rlimits, and what it used. Both ways of starting commands (the launcher and
// Node's spawn with `gantry-launcher --job`) take them as the same two
// protocol fields and report usage the same way.
import type { JobLimits } from '../spec/model.js';

/** Run as this user: supplementary groups, then gid, then uid (real, effective, saved: no way back). */
export interface RunAs {
  uid: number;
  gid: number;
  groups: number[];
}

/** rlimits set before exec; null or absent: not limited. */
export interface CommandLimits {
  /** address space (RLIMIT_AS), bytes */
  memoryBytes?: number | null;
  /** CPU time (RLIMIT_CPU): SIGXCPU at the limit, SIGKILL a second later */
  cpuSeconds?: number | null;
  /** open files (RLIMIT_NOFILE) */
  openFiles?: number | null;
  /** processes of the user it runs as (RLIMIT_NPROC; not enforced for root) */
  processes?: number | null;
}

/** What the command's whole process tree used. */
export interface CommandUsage {
  /** user + system CPU of every process of the tree */
  cpuMs: number;
  /** the largest of the biggest process's peak RSS and the tree's summed RSS, sampled every second */
  maxRssBytes: number;
}

const LIMIT_NAMES: [keyof CommandLimits, string][] = [
  ['memoryBytes', 'memory'],
  ['cpuSeconds', 'cpu'],
  ['openFiles', 'files'],
  ['processes', 'procs'],
];

const isId = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= 0xfffffffe;

/**
 * The RUN_AS and LIMITS fields of bin/gantry-launcher's protocol
 * (`UID:GID:G,G…`, `memory=N,cpu=N,…`; empty: none), or what is wrong with them.
 */
export function boundsFields(runAs: RunAs | null | undefined, limits: CommandLimits | null | undefined): { runAs: string; limits: string } | { error: string } {
  let ra = '';
  if (runAs) {
    if (!isId(runAs.uid)) return { error: `runAs.uid must be a user id (an integer from 0), got ${JSON.stringify(runAs.uid)}` };
    if (!isId(runAs.gid)) return { error: `runAs.gid must be a group id (an integer from 0), got ${JSON.stringify(runAs.gid)}` };
    const bad = runAs.groups.find((g) => !isId(g));
    if (bad !== undefined) return { error: `runAs.groups must be group ids (integers from 0), got ${JSON.stringify(bad)}` };
    ra = `${runAs.uid}:${runAs.gid}:${runAs.groups.join(',')}`;
  }
  const l: string[] = [];
  for (const [key, name] of LIMIT_NAMES) {
    const v = limits?.[key];
    if (v === undefined || v === null) continue;
    if (!Number.isSafeInteger(v) || v <= 0) return { error: `limits.${key} must be a positive integer, got ${JSON.stringify(v)}` };
    l.push(`${name}=${v}`);
  }
  return { runAs: ra, limits: l.join(',') };
}

/** The CPU_MS and MAX_RSS_BYTES fields of an `exit` report. */
export function usageOf(cpuMs: string | undefined, maxRss: string | undefined): CommandUsage | null {
  const cpu = Number(cpuMs);
  const rss = Number(maxRss);
  return cpuMs && maxRss && Number.isFinite(cpu) && Number.isFinite(rss) ? { cpuMs: cpu, maxRssBytes: rss } : null;
}

/**
 * A job's environment as changes to a base one (most of it is the worker's
 * environment): `KEY=VALUE` sets, a bare `KEY` unsets. A few hundred bytes a
 * job instead of the whole environment.
 */
export function envChanges(base: NodeJS.ProcessEnv, baseSize: number, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  let shared = 0;
  for (const k in env) {
    const v = env[k];
    if (v === undefined) continue;
    if (base[k] !== undefined) shared++;
    if (base[k] !== v) out.push(`${k}=${v}`);
  }
  if (shared === baseSize) return out;
  for (const k in base) if (env[k] === undefined) out.push(k);
  return out;
}

/**
 * A task's or service's declared bounds as rlimits: `resources.memory` its
 * address space, `limits:` the rest (CPU time rounded up to whole seconds).
 * null when nothing is declared.
 */
export function declaredLimits(memoryBytes: number | null, l: JobLimits | undefined): CommandLimits | null {
  const limits: CommandLimits = {
    memoryBytes,
    cpuSeconds: l?.cpuTimeMs != null ? Math.max(1, Math.ceil(l.cpuTimeMs / 1000)) : null,
    openFiles: l?.openFiles ?? null,
    processes: l?.processes ?? null,
  };
  return Object.values(limits).some((v) => v !== null) ? limits : null;
}
