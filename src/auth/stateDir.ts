// The state directory of `gantry server` and `gantry up` (issue 14, item 2):
// the admin token, the secret key and (for `up`) the SQLite file live in one
// folder, `./.gantry` unless --state-dir says otherwise, made 0700 with files
// 0600, so that neither another user nor a job started elsewhere reads them.
// Files of the old layout (./gantry.token, ./gantry.secret-key, ./gantry.db in
// the working directory) are still read when the state directory has none.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_STATE_DIR = '.gantry';
export const TOKEN_FILE = 'gantry.token';
export const SECRET_KEY_FILE = 'gantry.secret-key';
export const DB_FILE = 'gantry.db';
/** SQLite's own files beside a database (same secrets: same mode) */
const SQLITE_COMPANIONS = ['', '-wal', '-shm', '-journal'];

/** Whether a --db value is a SQLite file (not a postgres:// URL; store/open.ts decides the same way). */
export function isSqliteFile(db: string): boolean {
  return !/^postgres(ql)?:\/\//.test(db);
}

/** `dir` made (0700) if missing, tightened to 0700 if looser; its absolute path. */
export function prepareStateDir(dir: string): string {
  const abs = path.resolve(dir);
  fs.mkdirSync(abs, { recursive: true, mode: 0o700 });
  tighten(abs, 0o700);
  return abs;
}

/** Takes away group and other rights from `file` (0600, 0700 for a folder) if it exists and has any. */
export function tighten(file: string, mode = 0o600): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return false;
  }
  if ((st.mode & 0o077) === 0) return false;
  fs.chmodSync(file, mode);
  return true;
}

/**
 * Makes a SQLite file private before SQLite opens it: created empty with 0600
 * when missing (SQLite gives its -wal and -shm files the database's mode), and
 * the database and its companions tightened to 0600 when they exist.
 */
export function prepareSqliteFile(file: string): void {
  fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600));
  for (const suffix of SQLITE_COMPANIONS) tighten(file + suffix);
}

/**
 * Where a file of the state is: in the state directory, or, when only the old
 * layout has it, at `legacyDir/name` (`legacy: true`: worth a log line).
 */
export function stateFile(stateDir: string, name: string, legacyDir = process.cwd()): { file: string; legacy: boolean } {
  const file = path.join(stateDir, name);
  const old = path.resolve(legacyDir, name);
  if (!fs.existsSync(file) && old !== file && fs.existsSync(old)) return { file: old, legacy: true };
  return { file, legacy: false };
}

/**
 * The token the CLI presents, first found of: --token, GANTRY_TOKEN,
 * `.gantry/gantry.token` in the working directory or any parent, `./gantry.token`
 * (the old layout), `$XDG_CONFIG_HOME/gantry/token` (default ~/.config/gantry/token).
 * Unreadable files are skipped; empty files too.
 */
export function findCliToken(o: { flag?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): { token: string; from: string } | null {
  const env = o.env ?? process.env;
  if (o.flag) return { token: o.flag, from: '--token' };
  if (env.GANTRY_TOKEN) return { token: env.GANTRY_TOKEN, from: 'GANTRY_TOKEN' };
  const files: string[] = [];
  for (let dir = path.resolve(o.cwd ?? process.cwd()); ; dir = path.dirname(dir)) {
    files.push(path.join(dir, DEFAULT_STATE_DIR, TOKEN_FILE));
    if (path.dirname(dir) === dir) break;
  }
  files.push(path.resolve(o.cwd ?? process.cwd(), TOKEN_FILE));
  const config = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  files.push(path.join(config, 'gantry', 'token'));
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    if (text) return { token: text, from: file };
  }
  return null;
}
