// A job's environment is built, not inherited: on both stores and through both
// launchers (the helper, which is sent a job's environment as a difference
// from its own, and Node's spawn), a job and a service see the allow-list, the
// names the worker passes on purpose, their own variables, and nothing else of
// the worker's: never GANTRY_DB, GANTRY_TOKEN or GANTRY_SECRET_KEY.
import { it, expect, beforeEach, afterEach, describe } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { baseJobEnv, passEnvError } from '../../src/worker/jobEnvironment.js';
import { gantry } from '../e2e/helpers.js';

// The worker's own environment (this process's, which its launcher helper inherits when it starts).
const WORKER_ONLY = {
  GANTRY_SECRET_KEY: 'c2VjcmV0LWtleS1vZi10aGUtZ3JpZA',
  GANTRY_DB: 'postgres://gantry:hunter2@db.example/gantry',
  GANTRY_TOKEN: 'gantry_admin_token_value',
  AWS_SECRET_ACCESS_KEY: 'worker-cloud-credential',
};
Object.assign(process.env, WORKER_ONLY, { PASSED_ON_PURPOSE: 'given', LC_TIME: 'C.UTF-8' });

const envOf = (lines: string[]) => Object.fromEntries(lines.filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

for (const launcher of ['helper', 'spawn'] as const) {
  onEveryStore(`job environment (launcher ${launcher})`, (storeName) => {
    let g: Cluster;
    beforeEach(async () => {
      g = await cluster(storeName, { slots: 2, leaseMs: 3_000, worker: { launcher, passEnv: ['PASSED_ON_PURPOSE'] } });
    });
    afterEach(async () => {
      await g.close();
    });

    it('a job sees the allow-list, the passed names, its GANTRY_* and env: variables, and nothing else of the worker', async () => {
      g.write('envjob.yaml', `name: envjob\ntasks:\n  show:\n    env: { MINE: "from {{ run.id }}" }\n    run: env\n`);
      expect((await g.apply('envjob.yaml')).status).toBe(200);
      const started = await g.startRun('envjob');
      const run = await g.waitRun(started.body.id, 20_000);
      expect(run.state).toBe('succeeded');
      const env = envOf(await g.stdout(`${run.id}:show`));
      for (const k of Object.keys(WORKER_ONLY)) expect(env[k], k).toBeUndefined();
      expect(env.PASSED_ON_PURPOSE).toBe('given');
      expect(env.LC_TIME).toBe('C.UTF-8');
      expect(env.PATH).toBe(process.env.PATH);
      expect(env.MINE).toBe(`from ${run.id}`);
      expect(env.GANTRY_JOB_ID).toBe(`${run.id}:show`);
      const me = os.userInfo();
      expect(env.USER).toBe(me.username);
      expect(env.LOGNAME).toBe(me.username);
      expect(env.HOME).toBe(process.env.HOME ?? me.homedir);
      // only what was built: the allow-list, identity, the passed name, the job's own
      const allowed = /^(PATH|LANG|LANGUAGE|TZ|TMPDIR|LC_\w+|HOME|USER|LOGNAME|PASSED_ON_PURPOSE|MINE|GANTRY_\w+|PWD|SHLVL|_|OLDPWD)$/;
      expect(Object.keys(env).filter((k) => !allowed.test(k))).toEqual([]);
      expect(Object.keys(env).filter((k) => k.startsWith('GANTRY_') && !/^GANTRY_(RUN_ID|RUN_DATE|JOB_ID|ATTEMPT|RESULT|CHECKPOINT)$/.test(k))).toEqual([]);
    });

    it('a service sees the same built environment', async () => {
      const out = path.join(g.dir, 'service-env');
      g.write('svc.yaml', `service: envsvc\nnamespace: bots\nenv: { SVC_OWN: yes }\nrun: env > ${out}.tmp && mv ${out}.tmp ${out}; exec sleep 600\n`);
      expect((await g.apply('svc.yaml')).status).toBe(200);
      expect((await g.inject('POST', '/api/v1/services/envsvc/start?namespace=bots', {})).status).toBe(200);
      const deadline = Date.now() + 15_000;
      while (!fs.existsSync(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const env = envOf(fs.readFileSync(out, 'utf8').split('\n'));
      await g.inject('POST', '/api/v1/services/envsvc/stop?namespace=bots', {});
      for (const k of Object.keys(WORKER_ONLY)) expect(env[k], k).toBeUndefined();
      expect(env.SVC_OWN).toBe('yes');
      expect(env.PASSED_ON_PURPOSE).toBe('given');
      expect(env.GANTRY_SERVICE).toBe('bots/envsvc');
      expect(env.PATH).toBe(process.env.PATH);
    });
  });
}

describe('building the base environment', () => {
  it('takes PATH, LANG, LC_*, TZ, TMPDIR and the passed names; sets the identity; never the grid keys', () => {
    const env = baseJobEnv(
      { PATH: '/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', TMPDIR: '/scratch', HOME: '/root', USER: 'root', GANTRY_DB: 'x', GANTRY_SECRET_KEY: 'y', OTHER: 'z', WANTED: 'w' },
      ['WANTED', 'GANTRY_DB'],
      { name: 'tool-a', home: '/home/tool-a' },
    );
    expect(env).toEqual({ PATH: '/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', TMPDIR: '/scratch', WANTED: 'w', HOME: '/home/tool-a', USER: 'tool-a', LOGNAME: 'tool-a' });
    expect(baseJobEnv({}, [], { name: 'u', home: '/h' }).PATH).toMatch(/\/usr\/bin/);
  });

  it('--pass-env refuses the grid keys and bad names; gantry worker exits 2 naming them', async () => {
    expect(passEnvError(['GANTRY_SECRET_KEY'])).toMatch(/GANTRY_SECRET_KEY is the grid's own secret/);
    expect(passEnvError(['1BAD'])).toMatch(/'1BAD' is not an environment variable name/);
    expect(passEnvError(['HTTP_PROXY', 'PGPASSFILE'])).toBeNull();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-passenv-'));
    try {
      const r = await gantry(['worker', '--db', path.join(dir, 'gantry.db'), '--pass-env', 'GANTRY_DB'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/GANTRY_DB is the grid's own secret/);
      expect(fs.existsSync(path.join(dir, 'gantry.db'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
