// A job's environment is built, not inherited: the worker's own environment
// holds what jobs must never see (GANTRY_DB with its password, GANTRY_TOKEN,
// GANTRY_SECRET_KEY, cloud credentials...). A job gets a short allow-list of
// the worker's (PATH, LANG, LC_*, TZ, TMPDIR), the identity of the user it runs
// as (HOME, USER, LOGNAME), what the operator passes on purpose
// (`--pass-env NAME`), then its own variables (GANTRY_*, the task's `env:`),
// which the caller adds. Services get the same base.
import os from 'node:os';

/** What every job gets from the worker's environment, when the worker has it. */
const ALLOWED = new Set(['PATH', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR']);
const ALLOWED_PREFIX = 'LC_';
/** A job has a PATH even when the worker was started without one. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The grid's own keys: never given to a job, not even when asked by --pass-env. */
export const NEVER_PASSED = ['GANTRY_DB', 'GANTRY_TOKEN', 'GANTRY_SECRET_KEY'] as const;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks `--pass-env` names: a message naming the bad one, or null. */
export function passEnvError(names: readonly string[]): string | null {
  for (const n of names) {
    if (!ENV_NAME.test(n)) return `--pass-env: '${n}' is not an environment variable name (letters, digits and _, not starting with a digit)`;
    if ((NEVER_PASSED as readonly string[]).includes(n)) return `--pass-env: ${n} is the grid's own secret and is never passed to jobs`;
  }
  return null;
}

/** Whose identity a job has: HOME, USER and LOGNAME. */
export interface JobIdentity {
  name: string;
  home: string;
}

/** The worker's own user, for jobs that run as it (no run-as user). */
export function workerIdentity(env: NodeJS.ProcessEnv = process.env): JobIdentity {
  let name = env.USER ?? env.LOGNAME ?? '';
  let home = env.HOME ?? '';
  try {
    const u = os.userInfo();
    name = u.username;
    // a worker started with HOME set elsewhere on purpose keeps it for its own jobs
    home = env.HOME ?? u.homedir;
  } catch {
    // no passwd entry for this uid (a container): what the environment says
  }
  return { name, home };
}

/**
 * What the processes that start commands (the launcher, a command's keeper) run
 * with: the allow-list alone. They are the parents of jobs, and a job that may
 * read its parent's /proc/PID/environ (one of the worker's own user) must find
 * nothing of the worker's there.
 */
export function launcherEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (v !== undefined && (ALLOWED.has(k) || k.startsWith(ALLOWED_PREFIX))) env[k] = v;
  env.PATH ??= DEFAULT_PATH;
  return env;
}

/**
 * The base every job and service of this identity starts from: frozen, built
 * once per worker and user (the hot path spreads it).
 */
export function baseJobEnv(source: NodeJS.ProcessEnv, passEnv: readonly string[], who: JobIdentity): Readonly<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined) continue;
    if (ALLOWED.has(k) || k.startsWith(ALLOWED_PREFIX)) env[k] = v;
  }
  env.PATH ??= DEFAULT_PATH;
  for (const k of passEnv) {
    const v = source[k];
    if (v !== undefined && !(NEVER_PASSED as readonly string[]).includes(k)) env[k] = v;
  }
  if (who.home) env.HOME = who.home;
  if (who.name) {
    env.USER = who.name;
    env.LOGNAME = who.name;
  }
  return Object.freeze(env);
}

/** Builds (and caches) the base environment per run-as identity for one worker. */
export class JobEnvironment {
  private readonly bases = new Map<string, Readonly<Record<string, string>>>();
  private readonly own: JobIdentity;

  constructor(
    private readonly passEnv: readonly string[] = [],
    private readonly source: NodeJS.ProcessEnv = process.env,
  ) {
    this.own = workerIdentity(source);
  }

  /** The base for a job run as `who` (null: as the worker's own user). */
  base(who: JobIdentity | null = null): Readonly<Record<string, string>> {
    const id = who ?? this.own;
    const key = `${id.name}\0${id.home}`;
    let b = this.bases.get(key);
    if (!b) {
      b = baseJobEnv(this.source, this.passEnv, id);
      this.bases.set(key, b);
    }
    return b;
  }
}
