// Tokens end to end with real processes: the first `gantry up` on a store
// writes an admin token to ./gantry.token (0600) and says where; the CLI finds
// it there, or takes --token / GANTRY_TOKEN; `gantry token` makes, lists and
// revokes tokens, and `--db` makes an admin token when the file is lost.
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, gantry, gantryJson, startUp, tempDir, writeFile, type UpProcess } from './helpers.js';

afterAll(cleanup);

const WF = `name: hi\nnamespace: dumps\ntasks:\n  a: { run: "echo hi" }\n`;

describe('gantry up and the CLI with tokens', () => {
  it('first start: an admin token in ./gantry.token (0600), found there by the CLI; elsewhere a mutation exits 2 saying how to get a token', async () => {
    const dir = tempDir();
    writeFile(dir, 'hi.yaml', WF);
    const up = await startUp(dir, ['hi.yaml']);
    const file = path.join(dir, 'gantry.token');
    expect(up.stdout()).toContain(`admin token created and written to ${file} (mode 0600)`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const token = fs.readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^gantry_[0-9a-f]{12}_/);

    // from its folder, with nothing else: ./gantry.token
    const inDir = await gantryJson(['run', 'dumps/hi'], { server: up.url, cwd: dir, token: false });
    expect(inDir.res.code, inDir.res.stderr).toBe(0);
    // elsewhere without a token: refused, and told how
    const none = await gantry(['run', 'dumps/hi'], { server: up.url, token: false });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/needs an API token.*--token, GANTRY_TOKEN or \.\/gantry\.token/);
    // reads need none
    expect((await gantry(['runs'], { server: up.url, token: false })).code).toBe(0);
    // --token and GANTRY_TOKEN
    expect((await gantry(['--token', token, 'run', 'dumps/hi'], { server: up.url, token: false })).code).toBe(0);
    expect((await gantry(['run', 'dumps/hi'], { server: up.url, token: false, env: { GANTRY_TOKEN: token } })).code).toBe(0);
    const bad = await gantry(['run', 'dumps/hi'], { server: up.url, token: false, env: { GANTRY_TOKEN: token.slice(0, -1) + 'x' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown or revoked API token/);
    await up.stop();

    // a second start on the same store keeps the token and says where it is
    const again = await startUp(dir);
    expect(again.stdout()).toContain(`API token: ${file}`);
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(token);
    expect((await gantry(['run', 'dumps/hi'], { server: again.url, cwd: dir, token: false })).code).toBe(0);
    await again.stop();
  }, 180_000);

  it('token create / list / revoke through the server; a lost token file is replaced with token create --db', async () => {
    const dir = tempDir();
    writeFile(dir, 'hi.yaml', WF);
    let up: UpProcess = await startUp(dir, ['hi.yaml']);

    const made = await gantryJson<{ token: string; id: string; role: string; namespaces: string[] }>(['token', 'create', '--namespace', 'dumps', '--name', 'ci'], { server: up.url });
    expect(made.res.code, made.res.stderr).toBe(0);
    expect(made.json).toMatchObject({ role: 'maintainer', namespaces: ['dumps'] });
    const plain = await gantry(['token', 'create', '--namespace', 'bots', '--role', 'viewer'], { server: up.url });
    expect(plain.stdout).toMatch(/^gantry_[0-9a-f]{12}_\S+\n$/); // the token alone on stdout: `> file` keeps just it
    expect(plain.stderr).toMatch(/viewer of bots\. Shown once/);
    expect((await gantry(['token', 'create', '--role', 'maintainer'], { server: up.url })).code).toBe(2); // no namespace
    expect((await gantry(['token', 'create', '--namespace', 'x', '--role', 'root'], { server: up.url })).code).toBe(2);
    // a maintainer cannot make tokens
    const refused = await gantry(['token', 'create', '--namespace', 'dumps'], { server: up.url, token: made.json.token });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/needs an admin token/);

    const list = await gantryJson<{ id: string; name: string | null }[]>(['token', 'list'], { server: up.url });
    expect(list.json.map((t) => t.name)).toEqual(expect.arrayContaining(['admin (first start)', 'ci']));
    expect(list.res.stdout).not.toMatch(/gantry_[0-9a-f]{12}_/);

    expect((await gantry(['run', 'dumps/hi'], { server: up.url, token: made.json.token })).code).toBe(0);
    expect((await gantry(['token', 'revoke', made.json.id], { server: up.url })).stdout).toMatch(/revoked/);
    expect((await gantry(['run', 'dumps/hi'], { server: up.url, token: made.json.token })).code).toBe(2);
    expect((await gantry(['token', 'revoke', made.json.id], { server: up.url })).code).toBe(2); // gone already
    await up.stop();

    // the token file is lost: the next start says how to make one, and token create --db does it on the store
    fs.rmSync(path.join(dir, 'gantry.token'));
    up = await startUp(dir);
    expect(up.stdout()).toMatch(/this store already has tokens and there is no .*gantry\.token; make an admin token with: gantry token create --db/);
    expect(fs.existsSync(path.join(dir, 'gantry.token'))).toBe(false);
    const direct = await gantryJson<{ token: string; role: string }>(['token', 'create', '--db', path.join(dir, 'gantry.db'), '--role', 'admin'], { token: false });
    expect(direct.res.code, direct.res.stderr).toBe(0);
    expect(direct.json.role).toBe('admin');
    expect((await gantry(['pool', 'set', 'db', '2'], { server: up.url, token: direct.json.token })).code).toBe(0);
    await up.stop();
  }, 180_000);

  it('secrets: gantry up keeps its key in ./gantry.secret-key (0600); gantry secret set reads the value from stdin; a job echoing it logs ***', async () => {
    const dir = tempDir();
    writeFile(dir, 'sec.yaml', `name: sec\nnamespace: dumps\ntasks:\n  a: { run: "echo using {{ secrets.DB_PASSWORD }}" }\n`);
    const up = await startUp(dir, ['sec.yaml']);
    const keyFile = path.join(dir, 'gantry.secret-key');
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const value = 'correct horse battery staple';
    const set = await gantry(['secret', 'set', 'DB_PASSWORD', '--namespace', 'dumps'], { server: up.url, input: value + '\n' });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/secret DB_PASSWORD created in namespace dumps/);
    expect((await gantry(['secret', 'set', 'X', '--namespace', 'dumps'], { server: up.url, input: '' })).code).toBe(2); // empty: refused
    const list = await gantryJson<{ name: string }[]>(['secret', 'list', '--namespace', 'dumps'], { server: up.url });
    expect(list.json.map((x) => x.name)).toEqual(['DB_PASSWORD']);
    expect(list.res.stdout).not.toContain('horse');
    const run = await gantryJson<{ id: number; state: string }>(['run', 'dumps/sec', '--wait'], { server: up.url });
    expect(run.json.state).toBe('succeeded');
    const logs = await gantry(['logs', `${run.json.id}:a`], { server: up.url });
    expect(logs.stdout).toContain('using ***');
    expect(logs.stdout).not.toContain('horse');
    // the store's files, write-ahead log included, hold no trace of the value
    for (const f of ['gantry.db', 'gantry.db-wal']) if (fs.existsSync(path.join(dir, f))) expect(fs.readFileSync(path.join(dir, f)).includes(Buffer.from('horse')), f).toBe(false);
    expect((await gantry(['secret', 'delete', 'DB_PASSWORD', '--namespace', 'dumps'], { server: up.url })).code).toBe(0);
    await up.stop();
  }, 180_000);
});
