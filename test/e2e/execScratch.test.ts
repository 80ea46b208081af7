// `gantry exec` never starts in the grid's own state: without --cwd its job
// runs in a fresh scratch folder the worker creates and removes (not the
// server's working directory, not the caller's), with none of the worker's
// keys in its environment, on both stores.
import { it, expect, beforeEach, afterEach, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { cleanup, gantry, rememberToken, tempDir } from './helpers.js';

afterAll(cleanup);
Object.assign(process.env, { GANTRY_SECRET_KEY: 'worker-secret-key', GANTRY_DB: 'postgres://u:pw@h/db', GANTRY_TOKEN: 'worker-token' });

onEveryStore('gantry exec runs in a scratch folder', (storeName) => {
  let g: Cluster;
  let server: string;
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 2, leaseMs: 3_000 });
    server = await g.app.listen({ port: 0, host: '127.0.0.1' });
    rememberToken(server, g.token);
  });
  afterEach(async () => {
    await g.close();
  });

  it('from the folder holding gantry.token: the job cannot read it, sees an empty scratch folder that is gone afterwards, and no grid key', async () => {
    // the folder `gantry up` runs in: its token and secret key
    const state = tempDir();
    fs.writeFileSync(path.join(state, 'gantry.token'), 'gantry_admin_secret_token\n');
    fs.writeFileSync(path.join(state, 'gantry.secret-key'), 'the-secret-key\n');
    const r = await gantry(['exec', '--', 'sh', '-c', 'pwd; ls -A | wc -l; cat gantry.token; env | grep -c "^GANTRY_\\(DB\\|TOKEN\\|SECRET_KEY\\)=" ; true'], { server, cwd: state });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('gantry_admin_secret_token');
    const [cwd, count, grid] = r.stdout.trim().split('\n');
    expect(path.dirname(cwd!)).toBe(fs.realpathSync(os.tmpdir()));
    expect(path.basename(cwd!)).toMatch(/^gantry-job-\d+-/);
    expect(count).toBe('0');
    expect(grid).toBe('0');
    expect(r.stderr).toMatch(/gantry\.token: No such file/);
    expect(fs.existsSync(cwd!)).toBe(false); // removed when the job ended
  });

  it('through the API with no cwd: not the server\'s working directory; --cwd DIR runs there', async () => {
    const started = await g.inject<{ run: { id: number }; job: string }>('POST', '/api/v1/exec', { argv: ['sh', '-c', 'pwd; ls -A'] });
    expect(started.status).toBe(201);
    await g.waitRun(started.body.run.id, 20_000);
    const out = await g.stdout(started.body.job);
    expect(fs.realpathSync(process.cwd())).not.toBe(out[0]);
    expect(out[0]).toMatch(/\/gantry-job-\d+-/);
    expect(out).toHaveLength(1); // empty folder

    const chosen = tempDir();
    fs.writeFileSync(path.join(chosen, 'here.txt'), '');
    const r = await gantry(['exec', '--cwd', chosen, '--', 'sh', '-c', 'pwd; ls'], { server, cwd: os.tmpdir() });
    expect(r.stdout).toBe(`${chosen}\nhere.txt\n`);
  });
});
