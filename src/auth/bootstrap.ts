// The first start of `gantry up` or `gantry server` on a store that holds no
// token creates an admin token and writes it to `gantry.token` (mode 0600) in
// its state directory (stateDir.ts), where the CLI looks for it (SPEC §4).
import fs from 'node:fs';
import path from 'node:path';
import type { Store } from '../store/types.js';
import { newToken, verifyToken } from './tokens.js';

import { TOKEN_FILE, stateFile, tighten } from './stateDir.js';

export { TOKEN_FILE };

export interface TokenBootstrap {
  /** where the admin token is (or would be) */
  file: string;
  /** the admin token: just created, or read back from `file` (undefined when neither) */
  token?: string;
  created: boolean;
  /** one line for the operator: where the token is, or how to make one */
  message: string;
  /** the token was read from the old place (./gantry.token), not the state directory */
  legacy: boolean;
}

/** Writes `content` to `file` with mode 0600 from its first byte: a temp file beside it, renamed over. */
export function writePrivateFile(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600, flag: 'w' });
  fs.chmodSync(tmp, 0o600); // an umask cannot loosen 0600, but a leftover tmp file kept its old mode
  fs.renameSync(tmp, file);
}

/**
 * Creates the admin token if the store holds none (atomically: two processes
 * starting at once make one), and writes it to `dir/gantry.token`. On a store
 * that has tokens, reads the file back if it holds one of them (or, when `dir`
 * has none, `legacyDir/gantry.token` of the old layout).
 */
export async function bootstrapAdminToken(store: Store, dir: string, o: { db?: string; legacyDir?: string } = {}): Promise<TokenBootstrap> {
  const { token, record } = newToken({ role: 'admin', namespaces: [], name: 'admin (first start)' });
  if (await store.createFirstToken(record)) {
    const file = path.resolve(dir, TOKEN_FILE);
    writePrivateFile(file, token + '\n');
    return { file, token, created: true, legacy: false, message: `admin token created and written to ${file} (mode 0600): the gantry CLI reads it there, or from --token / GANTRY_TOKEN` };
  }
  const { file, legacy } = o.legacyDir === undefined ? { file: path.resolve(dir, TOKEN_FILE), legacy: false } : stateFile(path.resolve(dir), TOKEN_FILE, o.legacyDir);
  tighten(file);
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(file, 'utf8').trim();
  } catch {
    // no file: said below
  }
  if (existing && (await verifyToken(store, existing)))
    return {
      file,
      token: existing,
      created: false,
      legacy,
      message: legacy ? `API token: ${file} (the old place, still read; move it to ${path.resolve(dir, TOKEN_FILE)})` : `API token: ${file}`,
    };
  // a database URL's password stays out of messages
  const db = (o.db ?? '<store>').replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  const how = `gantry token create --db ${db} --role admin`;
  return {
    file,
    created: false,
    legacy,
    message: existing
      ? `${file} does not hold a token of this store (revoked, or from another store); make an admin token with: ${how}`
      : `this store already has tokens and there is no ${file}; make an admin token with: ${how}`,
  };
}
