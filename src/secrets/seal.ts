// Secrets at rest: AES-256-GCM (node:crypto) with a key that is not in the
// store: GANTRY_SECRET_KEY, or a key file (`gantry.secret-key`, mode 0600)
// beside the token file, created on the first start of `gantry up` / `gantry
// server`. A sealed value is `v1:<key id>:<base64 of iv | tag | ciphertext>`;
// the key id (8 hex digits of the key's SHA-256) tells a wrong key from a
// tampered value. The namespace and name are authenticated data: a sealed value
// copied to another secret's row does not open.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writePrivateFile } from '../auth/bootstrap.js';

import { SECRET_KEY_FILE, stateFile, tighten } from '../auth/stateDir.js';

export { SECRET_KEY_FILE };
export const SECRET_KEY_ENV = 'GANTRY_SECRET_KEY';

export class SecretKey {
  /** the first 8 hex digits of the key's SHA-256: names the key in sealed values, reveals nothing of it */
  readonly id: string;
  private constructor(private readonly key: Buffer, readonly source: string) {
    this.id = createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  /** 32 bytes, written as 64 hex digits or as base64 (44 characters) */
  static parse(text: string, source: string): SecretKey {
    const t = text.trim();
    const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : null;
    if (!key || key.length !== 32) throw new Error(`${source}: a secret key is 32 bytes, as 64 hex digits or base64 (make one with: openssl rand -base64 32)`);
    return new SecretKey(key, source);
  }

  static generate(source: string): { key: SecretKey; text: string } {
    const text = randomBytes(32).toString('base64');
    return { key: SecretKey.parse(text, source), text };
  }

  seal(value: string, namespace: string, name: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`${namespace}/${name}`));
    const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return `v1:${this.id}:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
  }

  /** Throws a SecretError when the value was sealed with another key, or altered. */
  open(sealed: string, namespace: string, name: string): string {
    const m = /^v1:([0-9a-f]{8}):([A-Za-z0-9+/=]+)$/.exec(sealed);
    if (!m) throw new SecretError(`secret ${name} of namespace '${namespace}' is not in a sealed form this version reads`);
    if (m[1] !== this.id) throw new SecretError(`secret ${name} of namespace '${namespace}' was sealed with another key (key ${m[1]}; this process has key ${this.id}, from ${this.source})`);
    const raw = Buffer.from(m[2]!, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(`${namespace}/${name}`));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretError(`secret ${name} of namespace '${namespace}' does not open: altered in the store, or not its own`);
    }
  }
}

/** A secret cannot be opened (or is missing): the job that needs it fails with this message. */
export class SecretError extends Error {
  override name = 'SecretError';
}

/**
 * The key from GANTRY_SECRET_KEY, else from `dir/gantry.secret-key` (or, when
 * `dir` has none, `legacyDir/gantry.secret-key` of the old layout: `legacy`);
 * with `create`, a missing file is made (0600) in `dir` with a fresh key. Null
 * when there is none and `create` is off (a worker without a key cannot open secrets).
 */
export function loadSecretKey(
  dir: string,
  o: { create?: boolean; env?: NodeJS.ProcessEnv; legacyDir?: string } = {},
): { key: SecretKey | null; created: boolean; file: string; legacy?: boolean } {
  const env = o.env ?? process.env;
  const fromEnv = env[SECRET_KEY_ENV];
  if (fromEnv) return { key: SecretKey.parse(fromEnv, SECRET_KEY_ENV), created: false, file: path.resolve(dir, SECRET_KEY_FILE) };
  const found = o.legacyDir === undefined ? { file: path.resolve(dir, SECRET_KEY_FILE), legacy: false } : stateFile(path.resolve(dir), SECRET_KEY_FILE, o.legacyDir);
  if (fs.existsSync(found.file)) {
    tighten(found.file);
    return { key: SecretKey.parse(fs.readFileSync(found.file, 'utf8'), found.file), created: false, file: found.file, legacy: found.legacy };
  }
  const file = path.resolve(dir, SECRET_KEY_FILE);
  if (!o.create) return { key: null, created: false, file };
  // Never over an existing key (its secrets would be lost): written aside, then linked into place only if still absent.
  const { text } = SecretKey.generate(file);
  const tmp = `${file}.${process.pid}.tmp`;
  writePrivateFile(tmp, text + '\n');
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return { key: SecretKey.parse(fs.readFileSync(file, 'utf8'), file), created: false, file }; // another process made it first
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return { key: SecretKey.parse(text, file), created: true, file };
}
