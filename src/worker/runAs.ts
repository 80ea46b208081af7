// Who a job runs as. An admin maps a namespace to a Unix user (and group):
// `gantry namespace set NS --user U [--group G]`. A worker running as root
// starts every job and service of that namespace as that user (supplementary
// groups, then gid, then uid: no way back; the switch is the launcher's). The
// policy, decided here:
// - root worker, mapped namespace: as its user (a user mapped to root on
//   purpose runs as root);
// - root worker, unmapped namespace: as `--run-as-default USER` when given
//   (e.g. nobody), else as root, with a warning line in the job's log;
// - non-root worker: only the jobs of namespaces mapped to no user or to its
//   own user reach it (its claim filters by its user); as itself.
// Names are resolved through the system's user database (getent: NSS, so LDAP
// users too; /etc/passwd and /etc/group where getent is missing), cached briefly.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { RunAs } from './jobBounds.js';
import type { NamespaceSettings, Store } from '../store/types.js';

/** A resolved Unix user: what the launcher switches to, and the job's HOME, USER and LOGNAME. */
export interface UnixUser extends RunAs {
  name: string;
  home: string;
}

/** A user or group the namespace names does not exist on this worker's machine. */
export class RunAsError extends Error {}

/** How long a resolved name is trusted: a user created or changed is seen within this. */
const CACHE_MS = 30_000;

function getent(db: 'passwd' | 'group', key: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    execFile('getent', [db, key], { timeout: 10_000 }, (err, stdout) => {
      if (!err) return resolve(stdout.split('\n')[0] ?? null);
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number') return resolve(null); // exit 2: no such entry
      if (code === 'ENOENT') return resolve(fileLookup(db, key));
      reject(err);
    });
  });
}

/** /etc/passwd or /etc/group, for systems without getent. */
function fileLookup(db: 'passwd' | 'group', key: string): string | null {
  const lines = readFileSync(`/etc/${db}`, 'utf8').split('\n');
  return lines.find((l) => {
    const f = l.split(':');
    return f[0] === key || (/^\d+$/.test(key) && f[2] === key);
  }) ?? null;
}

/** Every group `user` is a member of (besides its primary group). */
function memberGroups(user: string): Promise<number[]> {
  return new Promise((resolve) => {
    execFile('id', ['-G', user], { timeout: 10_000 }, (err, stdout) => {
      if (!err) return resolve(stdout.trim().split(/\s+/).filter(Boolean).map(Number));
      // no `id`: the group file's member lists
      try {
        const gids = readFileSync('/etc/group', 'utf8')
          .split('\n')
          .map((l) => l.split(':'))
          .filter((f) => (f[3] ?? '').split(',').includes(user))
          .map((f) => Number(f[2]));
        resolve(gids);
      } catch {
        resolve([]);
      }
    });
  });
}

export class UnixUsers {
  private readonly cache = new Map<string, { at: number; user: Promise<UnixUser> }>();

  /** `user` (with `group` as its primary group when given), resolved; rejects with RunAsError when either does not exist. */
  resolve(user: string, group: string | null = null): Promise<UnixUser> {
    const key = `${user}:${group ?? ''}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.user;
    const p = lookup(user, group);
    this.cache.set(key, { at: Date.now(), user: p });
    p.catch(() => this.cache.delete(key)); // a user created after a failure is found at the next job
    return p;
  }
}

async function lookup(user: string, group: string | null): Promise<UnixUser> {
  const pw = await getent('passwd', user);
  if (!pw) throw new RunAsError(`user '${user}' does not exist on this worker (${os.hostname()})`);
  const f = pw.split(':');
  const uid = Number(f[2]);
  let gid = Number(f[3]);
  const groups = new Set(await memberGroups(f[0]!));
  if (group !== null) {
    const gr = await getent('group', group);
    if (!gr) throw new RunAsError(`group '${group}' does not exist on this worker (${os.hostname()})`);
    gid = Number(gr.split(':')[2]);
  }
  groups.add(gid);
  return { name: f[0]!, uid, gid, groups: [...groups].sort((a, b) => a - b), home: f[5] || '/' };
}

/** This process's user name (what a non-root worker registers and claims as). */
export function ownUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/** Who a namespace's jobs run as on this worker; `warning`: a line for the job's log. */
export interface RunAsDecision {
  /** null: as the worker itself (no switch) */
  user: UnixUser | null;
  warning: string | null;
}

/** A namespace's settings are read this often at most per worker (not once per job). */
const SETTINGS_MS = 5_000;

export class RunAsPolicy {
  private readonly users = new UnixUsers();
  private readonly settings = new Map<string, { at: number; value: Promise<NamespaceSettings | null> }>();
  private readonly root = isRoot();
  private readonly own = ownUserName();

  constructor(
    private readonly store: Pick<Store, 'getNamespaceSettings'>,
    private readonly runAsDefault: string | null = null,
  ) {}

  /** The user this worker claims as (non-root workers: only jobs of namespaces mapped to no user or to it); undefined for root, which may run any. */
  get claimUser(): string | undefined {
    return this.root ? undefined : this.own;
  }

  /** Who a job of `namespace` runs as; rejects with RunAsError when the mapped user cannot be used here. */
  async decide(namespace: string): Promise<RunAsDecision> {
    const s = await this.namespaceSettings(namespace);
    const mapped = s?.user ?? null;
    if (!this.root) {
      if (mapped !== null && mapped !== this.own)
        throw new RunAsError(`namespace '${namespace}' runs as user '${mapped}'; this worker runs as '${this.own}' and cannot switch users (run it as root, or as '${mapped}')`);
      return { user: null, warning: null };
    }
    if (mapped !== null) return { user: await this.users.resolve(mapped, s?.group ?? null), warning: null };
    if (this.runAsDefault !== null) return { user: await this.users.resolve(this.runAsDefault, null), warning: null };
    return {
      user: null,
      warning: `namespace '${namespace}' is mapped to no user: this job runs as ${this.own}, the worker's user (map it: gantry namespace set ${namespace} --user USER; or start workers with --run-as-default USER)`,
    };
  }

  private namespaceSettings(namespace: string): Promise<NamespaceSettings | null> {
    const hit = this.settings.get(namespace);
    if (hit && Date.now() - hit.at < SETTINGS_MS) return hit.value;
    const value = this.store.getNamespaceSettings(namespace);
    this.settings.set(namespace, { at: Date.now(), value });
    value.catch(() => this.settings.delete(namespace));
    return value;
  }

  /** The namespace's absolute-output roots ([]: not confined). */
  async outputRoots(namespace: string): Promise<string[]> {
    return (await this.namespaceSettings(namespace))?.outputRoots ?? [];
  }
}
