// Sealing secrets (AES-256-GCM) and the key file; masking secret values in log lines.
import { describe, it, expect, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SecretError, SecretKey, loadSecretKey, SECRET_KEY_FILE } from '../../src/secrets/seal.js';
import { maskValue, secretMasker } from '../../src/worker/secretMask.js';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-secrets-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('sealing', () => {
  const { key } = SecretKey.generate('test');

  it('seals to a value that holds nothing of the clear text, and opens back; each seal differs (random IV)', () => {
    const value = "p@ss w0rd'; $(rm -rf /)\nline two ✓";
    const a = key.seal(value, 'dumps', 'DB');
    const b = key.seal(value, 'dumps', 'DB');
    expect(a).not.toBe(b);
    expect(a).toMatch(new RegExp(`^v1:${key.id}:[A-Za-z0-9+/=]+$`));
    expect(a).not.toContain('p@ss');
    expect(Buffer.from(a.split(':')[2]!, 'base64').toString('latin1')).not.toContain('p@ss');
    expect(key.open(a, 'dumps', 'DB')).toBe(value);
    expect(key.open(key.seal('', 'dumps', 'E'), 'dumps', 'E')).toBe('');
  });

  it('refuses another key, an altered value, and a value moved to another secret or namespace', () => {
    const sealed = key.seal('v', 'dumps', 'DB');
    const other = SecretKey.generate('other').key;
    expect(() => other.open(sealed, 'dumps', 'DB')).toThrow(/sealed with another key/);
    const raw = Buffer.from(sealed.split(':')[2]!, 'base64');
    raw[raw.length - 1]! ^= 1;
    expect(() => key.open(`v1:${key.id}:${raw.toString('base64')}`, 'dumps', 'DB')).toThrow(SecretError);
    expect(() => key.open(sealed, 'bots', 'DB')).toThrow(/does not open/);
    expect(() => key.open(sealed, 'dumps', 'DB2')).toThrow(/does not open/);
    expect(() => key.open('clear text', 'dumps', 'DB')).toThrow(SecretError);
  });

  it('keys: 64 hex digits or base64 of 32 bytes; anything else is refused saying how to make one', () => {
    expect(SecretKey.parse('ab'.repeat(32), 'env').id).toMatch(/^[0-9a-f]{8}$/);
    expect(SecretKey.parse(Buffer.alloc(32, 7).toString('base64'), 'env').id).toBe(SecretKey.parse('07'.repeat(32), 'env').id);
    expect(() => SecretKey.parse('short', 'GANTRY_SECRET_KEY')).toThrow(/GANTRY_SECRET_KEY: a secret key is 32 bytes.*openssl rand -base64 32/);
  });
});

describe('the key file', () => {
  it('is created once, mode 0600, and read back; never replaced; GANTRY_SECRET_KEY comes first; a worker does not create one', () => {
    const dir = tmp();
    expect(loadSecretKey(dir, { env: {} }).key).toBeNull(); // without create: none
    expect(fs.existsSync(path.join(dir, SECRET_KEY_FILE))).toBe(false);
    const first = loadSecretKey(dir, { create: true, env: {} });
    expect(first.created).toBe(true);
    expect(fs.statSync(first.file).mode & 0o777).toBe(0o600);
    const again = loadSecretKey(dir, { create: true, env: {} });
    expect(again.created).toBe(false);
    expect(again.key!.id).toBe(first.key!.id);
    expect(fs.readdirSync(dir)).toEqual([SECRET_KEY_FILE]); // no temp file left behind
    const fromEnv = loadSecretKey(dir, { create: true, env: { GANTRY_SECRET_KEY: '11'.repeat(32) } });
    expect(fromEnv.key!.id).toBe(SecretKey.parse('11'.repeat(32), 'x').id);
    expect(fromEnv.key!.id).not.toBe(first.key!.id);
  });
});

describe('masking', () => {
  it('replaces every secret value, longest first, and each line of a multi-line one', () => {
    const mask = secretMasker(['hunter2', 'hunter2-long', 'first line\nsecond line', '']);
    expect(mask('token=hunter2-long and hunter2 twice hunter2')).toBe('token=*** and *** twice ***');
    expect(mask('second line')).toBe('***');
    expect(mask('nothing here')).toBe('nothing here');
    expect(secretMasker([])('hunter2')).toBe('hunter2');
  });

  it('masks a JSON result whole: strings, keys, and numbers whose text holds a secret; its shape and other values stay', () => {
    const mask = secretMasker(['hunter2', '31337']);
    expect(maskValue({ pw: 'hunter2', hunter2: ['a', 'x-hunter2-y', 31337, 42, true, null], n: { deep: 'hunter2' } }, mask)).toEqual({
      pw: '***',
      '***': ['a', 'x-***-y', '***', 42, true, null],
      n: { deep: '***' },
    });
    const plain = { a: [1, 'b'] };
    expect(maskValue(plain, secretMasker([]))).toBe(plain);
  });
});
