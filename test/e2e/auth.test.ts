// Tokens end to end with real processes: the first `gantry up` on a store
// writes an admin token to .gantry/gantry.token (0600, in a 0700 state
// directory) and says where; the CLI finds it there (from any folder below),
// in $XDG_CONFIG_HOME/gantry/token, or takes --token / GANTRY_TOKEN; `gantry
// token` makes, lists and revokes tokens, and `--db` makes an admin token when
// the file is lost. Reads need a token too while no namespace is public.
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, gantry, gantryJson, startUp, tempDir, writeFile, type UpProcess } from './helpers.js';

afterAll(cleanup);

const WF = `name: hi\nnamespace: dumps\ntasks:\n  a: { run: "echo hi" }\n`;

describe('gantry up and the CLI with tokens', () => {
  it('first start: an admin token in .gantry/gantry.token (0600), found there by the CLI; elsewhere a mutation exits 2 saying how to get a token', async () => {
    const dir = tempDir();
    writeFile(dir, 'hi.yaml', WF);
    const up = await startUp(dir, ['hi.yaml']);
    const file = path.join(dir, '.gantry', 'gantry.token');
    expect(up.stdout()).toContain(`admin token created and written to ${file} (mode 0600)`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const token = fs.readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^gantry_[0-9a-f]{12}_/);

    // from its folder, with nothing else: .gantry/gantry.token
    const inDir = await gantryJson(['run', 'dumps/hi'], { server: up.url, cwd: dir, token: false });
    expect(inDir.res.code, inDir.res.stderr).toBe(0);
    // and from any folder below it
    const deeper = path.join(dir, 'tools', 'dumps');
    fs.mkdirSync(deeper, { recursive: true });
    const below = await gantry(['runs', '--json'], { server: up.url, cwd: deeper, token: false });
    expect(below.code, below.stderr).toBe(0);
    expect(JSON.parse(below.stdout)).toHaveLength(1);
    // elsewhere without a token: refused, and told how
    const none = await gantry(['run', 'dumps/hi'], { server: up.url, token: false });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/needs an API token.*--token, GANTRY_TOKEN, \.gantry\/gantry\.token/);
    // reads too: no namespace is public
    const anonymous = await gantry(['runs'], { server: up.url, token: false });
    expect(anonymous.code).toBe(2);
    expect(anonymous.stderr).toMatch(/reading this needs an API token/);
    // the user's own config: $XDG_CONFIG_HOME/gantry/token
    const config = tempDir();
    fs.mkdirSync(path.join(config, 'gantry'));
    fs.writeFileSync(path.join(config, 'gantry', 'token'), token + '\n', { mode: 0o600 });
    const xdg = await gantry(['runs', '--json'], { server: up.url, token: false, env: { XDG_CONFIG_HOME: config } });
    expect(xdg.code, xdg.stderr).toBe(0);
    expect(JSON.parse(xdg.stdout)).toHaveLength(1);
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
    fs.rmSync(path.join(dir, '.gantry', 'gantry.token'));
    up = await startUp(dir);
    expect(up.stdout()).toMatch(/this store already has tokens and there is no .*gantry\.token; make an admin token with: gantry token create --db/);
    expect(fs.existsSync(path.join(dir, '.gantry', 'gantry.token'))).toBe(false);
    const direct = await gantryJson<{ token: string; role: string }>(['token', 'create', '--db', path.join(dir, '.gantry', 'gantry.db'), '--role', 'admin'], { token: false });
    expect(direct.res.code, direct.res.stderr).toBe(0);
    expect(direct.json.role).toBe('admin');
    expect((await gantry(['pool', 'set', 'db', '2'], { server: up.url, token: direct.json.token })).code).toBe(0);
    await up.stop();
  }, 180_000);

  it('secrets: gantry up keeps its key in .gantry/gantry.secret-key (0600); gantry secret set reads the value from stdin; a job echoing it logs ***', async () => {
    const dir = tempDir();
    writeFile(dir, 'sec.yaml', `name: sec\nnamespace: dumps\ntasks:\n  a: { run: "echo using {{ secrets.DB_PASSWORD }}" }\n`);
    const up = await startUp(dir, ['sec.yaml']);
    const keyFile = path.join(dir, '.gantry', 'gantry.secret-key');
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
    for (const f of ['.gantry/gantry.db', '.gantry/gantry.db-wal']) if (fs.existsSync(path.join(dir, f))) expect(fs.readFileSync(path.join(dir, f)).includes(Buffer.from('horse')), f).toBe(false);
    expect((await gantry(['secret', 'delete', 'DB_PASSWORD', '--namespace', 'dumps'], { server: up.url })).code).toBe(0);
    await up.stop();
  }, 180_000);
});

describe('the state directory', () => {
  const mode = (f: string) => fs.statSync(f).mode & 0o777;

  it('gantry up keeps token, secret key and SQLite file (its -wal and -shm too) in .gantry: the folder 0700, every file 0600; a looser folder is tightened', async () => {
    const dir = tempDir();
    writeFile(dir, 'hi.yaml', WF);
    // made by hand, too open: gantry tightens it rather than trusting it
    fs.mkdirSync(path.join(dir, '.gantry'), { mode: 0o755 });
    fs.chmodSync(path.join(dir, '.gantry'), 0o755);
    const up = await startUp(dir, ['hi.yaml']);
    const state = path.join(dir, '.gantry');
    expect(mode(state)).toBe(0o700);
    const run = await gantryJson<{ state: string }>(['run', 'dumps/hi', '--wait'], { server: up.url });
    expect(run.json.state).toBe('succeeded');
    // while it runs: the write-ahead log and shared memory exist beside the database
    const files = ['gantry.token', 'gantry.secret-key', 'gantry.db', 'gantry.db-wal', 'gantry.db-shm'];
    for (const f of files) expect(mode(path.join(state, f)), f).toBe(0o600);
    // nothing of the state is left in the working directory
    for (const f of ['gantry.token', 'gantry.secret-key', 'gantry.db']) expect(fs.existsSync(path.join(dir, f)), f).toBe(false);
    await up.stop();
  }, 120_000);

  it('the old layout (./gantry.token, ./gantry.secret-key, ./gantry.db) is still read, said so, and its files are tightened to 0600', async () => {
    const dir = tempDir();
    writeFile(dir, 'hi.yaml', WF);
    const first = await startUp(dir, ['hi.yaml']);
    expect((await gantryJson<{ state: string }>(['run', 'dumps/hi', '--wait'], { server: first.url })).json.state).toBe('succeeded');
    await first.stop();
    // what an older gantry left: its files in the working directory, world-readable
    for (const f of ['gantry.token', 'gantry.secret-key', 'gantry.db']) {
      fs.renameSync(path.join(dir, '.gantry', f), path.join(dir, f));
      fs.chmodSync(path.join(dir, f), 0o644);
    }
    fs.rmSync(path.join(dir, '.gantry'), { recursive: true });
    const up = await startUp(dir);
    expect(up.stdout()).toMatch(/store: .*\/gantry\.db, the old place \(still read/);
    expect(up.stdout()).toMatch(/API token: .*\/gantry\.token \(the old place, still read/);
    // the same store (the run of the first start is there) and the same token
    const runs = await gantry(['runs', '--json'], { server: up.url, cwd: dir, token: false });
    expect(runs.code, runs.stderr).toBe(0);
    expect(JSON.parse(runs.stdout)).toHaveLength(1);
    for (const f of ['gantry.token', 'gantry.secret-key', 'gantry.db']) expect(mode(path.join(dir, f)), f).toBe(0o600);
    await up.stop();
  }, 120_000);
});

describe('gantry namespace set / show and gantry namespaces', () => {
  it('an admin maps a namespace to a user and group, makes it public and confines its outputs; bad names exit 2 and change nothing; a maintainer may not', async () => {
    const dir = tempDir();
    writeFile(dir, 'hi.yaml', WF);
    const up = await startUp(dir, ['hi.yaml']);
    const set = await gantryJson<Record<string, unknown>>(['namespace', 'set', 'dumps', '--user', 'tools.dumps', '--group', 'tools', '--public', '--output-root', '/srv/dumps', '--json'], { server: up.url });
    expect(set.res.code, set.res.stderr).toBe(0);
    expect(set.json).toEqual({ namespace: 'dumps', user: 'tools.dumps', group: 'tools', public: true, outputRoots: ['/srv/dumps'] });
    // roots add up; --clear-output-roots starts again
    expect((await gantryJson<{ outputRoots: string[] }>(['namespace', 'set', 'dumps', '--output-root', '/srv/more', '--json'], { server: up.url })).json.outputRoots).toEqual(['/srv/dumps', '/srv/more']);
    const bad = await gantry(['namespace', 'set', 'dumps', '--user', 'no such user!'], { server: up.url });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/body\.user: a Unix user name/);
    expect((await gantry(['namespace', 'set', 'dumps'], { server: up.url })).code).toBe(2); // nothing to change
    const maintainer = (await gantryJson<{ token: string }>(['token', 'create', '--namespace', 'dumps', '--json'], { server: up.url })).json.token;
    const refused = await gantry(['namespace', 'set', 'dumps', '--no-public'], { server: up.url, token: maintainer });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/needs an admin token/);
    const show = await gantry(['namespace', 'show', 'dumps'], { server: up.url, token: maintainer });
    expect(show.stdout).toMatch(/user\s+tools\.dumps\n/);
    expect(show.stdout).toMatch(/public\s+yes/);
    expect(show.stdout).toMatch(/output roots\s+\/srv\/dumps, \/srv\/more/);
    // public: readable without any token, nothing doable
    expect((await gantry(['runs'], { server: up.url, token: false })).code).toBe(0);
    expect((await gantry(['run', 'dumps/hi'], { server: up.url, token: false })).code).toBe(2);
    const list = await gantry(['namespaces'], { server: up.url });
    expect(list.stdout).toMatch(/^NAMESPACE\s+USER\s+GROUP\s+PUBLIC\s+OUTPUT ROOTS\ndumps\s+tools\.dumps\s+tools\s+yes\s+\/srv\/dumps,\/srv\/more$/m);
    // the webhook secret command of the same group still answers
    expect((await gantry(['namespace', 'secret', 'dumps'], { server: up.url })).stdout).toMatch(/^[0-9a-f]{64}\n$/);
    await up.stop();
  }, 120_000);
});
