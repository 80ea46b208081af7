// A root worker runs each namespace's jobs as the namespace's Unix user (users
// this test creates and removes): tool A's job cannot read tool B's outputs
// (a 0700 folder of B's) nor the grid's state (a root-only token), its outputs
// are its user's own; a user that does not exist fails the attempt as a try;
// an unmapped namespace runs as root with a warning, or as --run-as-default.
// On both stores.
import { it, expect, beforeAll, afterAll, beforeEach, afterEach, describe } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';

const tag = process.pid % 100000;
const A = `gta${tag}`;
const B = `gtb${tag}`;
const uidOf = (u: string) => Number(execFileSync('id', ['-u', u], { encoding: 'utf8' }).trim());

beforeAll(() => {
  for (const u of [A, B]) execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', '--user-group', u]);
});
afterAll(() => {
  for (const u of [A, B]) execFileSync('userdel', [u]);
});

/** a tool's folder, owned by its user, 0700 */
function toolDir(g: Cluster, user: string): string {
  const dir = path.join(g.dir, user);
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, uidOf(user), uidOf(user));
  fs.chmodSync(dir, 0o700);
  return dir;
}

onEveryStore('jobs run as their namespace user', (storeName) => {
  let g: Cluster;
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 2, leaseMs: 3_000 });
    fs.chmodSync(g.dir, 0o711); // the tools' folders inside it are theirs
    await g.store.setNamespaceSettings('toola', { user: A });
    await g.store.setNamespaceSettings('toolb', { user: B });
  });
  afterEach(async () => {
    await g.close();
  });

  async function runWorkflow(file: string) {
    const applied = await g.apply(file);
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const text = fs.readFileSync(path.join(g.dir, file), 'utf8');
    const started = await g.inject('POST', '/api/v1/runs', { workflow: /^name: (\S+)/m.exec(text)![1], namespace: /^namespace: (\S+)/m.exec(text)![1] });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const run = await g.waitRun(started.body.id, 30_000);
    return { run, jobs: await g.jobs(run.id) };
  }

  it("tool A's job runs as A: cannot read B's outputs nor a root-only token; its own output is A's", async () => {
    const state = path.join(g.dir, 'state');
    fs.mkdirSync(state, { mode: 0o700 });
    fs.writeFileSync(path.join(state, 'gantry.token'), 'admin-token-value\n', { mode: 0o600 });
    const bDir = toolDir(g, B);
    const aDir = toolDir(g, A);
    fs.writeFileSync(path.join(g.dir, `${B}.yaml`), `name: bwrite\nnamespace: toolb\ntasks:\n  w:\n    outputs: { o: out/secret.txt }\n    run: echo b-secret > {{ outputs.o }}; id -un\n`);
    fs.renameSync(path.join(g.dir, `${B}.yaml`), path.join(bDir, 'bwrite.yaml'));
    const b = await runWorkflow(`${B}/bwrite.yaml`);
    expect(b.jobs.w!.state, b.jobs.w!.error ?? '').toBe('succeeded');
    expect(await g.stdout(b.jobs.w!.id)).toEqual([B]);
    const bOut = path.join(bDir, 'out', 'secret.txt');
    expect(fs.statSync(bOut).uid).toBe(uidOf(B));
    expect(fs.statSync(path.dirname(bOut)).uid).toBe(uidOf(B));

    fs.writeFileSync(
      path.join(aDir, 'aread.yaml'),
      `name: aread\nnamespace: toola\ntasks:\n  r:\n    outputs: { mine: out/mine.txt }\n    run: |\n      id -un\n      cat ${bOut} || echo no-b\n      cat ${state}/gantry.token || echo no-token\n      echo a > {{ outputs.mine }}\n      echo '{"who": "a"}' > "$GANTRY_RESULT"\n`,
    );
    const a = await runWorkflow(`${A}/aread.yaml`);
    expect(a.jobs.r!.state, a.jobs.r!.error ?? '').toBe('succeeded');
    expect(await g.stdout(a.jobs.r!.id)).toEqual([A, 'no-b', 'no-token']);
    expect(a.jobs.r!.result).toEqual({ who: 'a' });
    expect(fs.statSync(path.join(aDir, 'out', 'mine.txt')).uid).toBe(uidOf(A));
  });

  it('an output where the user may not write is refused with the path; a mapped user that does not exist fails each try with that cause', async () => {
    const aDir = toolDir(g, A);
    fs.writeFileSync(path.join(aDir, 'etc.yaml'), `name: etcw\nnamespace: toola\ntasks:\n  w:\n    outputs: { o: /etc/gantry-test-${tag}.conf }\n    run: echo x > {{ outputs.o }}\n`);
    const e = await runWorkflow(`${A}/etc.yaml`);
    expect(e.jobs.w!.state).toBe('failed');
    expect(e.jobs.w!.error).toMatch(new RegExp(`${A}, whom this job runs as, may not write in /etc`));
    expect(fs.existsSync(`/etc/gantry-test-${tag}.conf`)).toBe(false);

    await g.store.setNamespaceSettings('ghost', { user: `nosuch${tag}` });
    g.write('ghost.yaml', `name: ghostjob\nnamespace: ghost\ntasks:\n  t:\n    retries: { max: 1, delay: 0s }\n    run: echo never\n`);
    const gh = await runWorkflow('ghost.yaml');
    expect(gh.jobs.t!.state).toBe('failed');
    expect(gh.jobs.t!.attempts).toBe(2);
    expect(gh.jobs.t!.error).toMatch(new RegExp(`user 'nosuch${tag}' does not exist on this worker`));
    expect(await g.stdout(gh.jobs.t!.id)).toEqual([]);
  });

  it("a service of a mapped namespace runs as its user, with the user's HOME and USER", async () => {
    const aDir = toolDir(g, A);
    const out = path.join(aDir, 'who');
    fs.writeFileSync(path.join(aDir, 'svc.yaml'), `service: whoami\nnamespace: toola\nrun: echo "$(id -un) $USER" > ${out}.tmp && mv ${out}.tmp ${out}; exec sleep 600\n`);
    expect((await g.apply(`${A}/svc.yaml`)).status).toBe(200);
    expect((await g.inject('POST', '/api/v1/services/whoami/start?namespace=toola', {})).status).toBe(200);
    const deadline = Date.now() + 15_000;
    while (!fs.existsSync(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await g.inject('POST', '/api/v1/services/whoami/stop?namespace=toola', {});
    expect(fs.readFileSync(out, 'utf8')).toBe(`${A} ${A}\n`);
    expect(fs.statSync(out).uid).toBe(uidOf(A));
  });

  it("a handler of a mapped namespace runs in a host of its user: it cannot read B's outputs, its output is A's", async () => {
    const bDir = toolDir(g, B);
    fs.writeFileSync(path.join(bDir, 'secret.txt'), 'b-secret\n', { mode: 0o600 });
    fs.chownSync(path.join(bDir, 'secret.txt'), uidOf(B), uidOf(B));
    const aDir = toolDir(g, A);
    fs.writeFileSync(
      path.join(aDir, 'who.mjs'),
      `import fs from 'node:fs';
export async function who(ctx) {
  let b = 'read-b';
  try { fs.readFileSync(${JSON.stringify(path.join(bDir, 'secret.txt'))}); } catch (e) { b = e.code; }
  fs.writeFileSync(ctx.outputs.o, 'a');
  return { uid: process.getuid(), gid: process.getgid(), user: process.env.USER, b };
}
`,
    );
    fs.writeFileSync(path.join(aDir, 'hwho.yaml'), `name: hwho\nnamespace: toola\ntasks:\n  h:\n    outputs: { o: out/h.txt }\n    handler: ./who.mjs#who\n`);
    const h = await runWorkflow(`${A}/hwho.yaml`);
    expect(h.jobs.h!.state, h.jobs.h!.error ?? '').toBe('succeeded');
    expect(h.jobs.h!.result).toEqual({ uid: uidOf(A), gid: uidOf(A), user: A, b: 'EACCES' });
    expect(fs.statSync(path.join(aDir, 'out', 'h.txt')).uid).toBe(uidOf(A));
  });

  it('an unmapped namespace runs as the worker (root) with a warning line in its log', async () => {
    g.write('plain.yaml', `name: plain\nnamespace: free\ntasks:\n  t:\n    run: id -un\n`);
    const p = await runWorkflow('plain.yaml');
    expect(await g.stdout(p.jobs.t!.id)).toEqual(['root']);
    const log = (await g.store.readLogs({ jobId: p.jobs.t!.id })).map((l) => l.line);
    expect(log.some((l) => l.includes("namespace 'free' is mapped to no user: this job runs as root"))).toBe(true);
  });
});

describe('--run-as-default', () => {
  let g: Cluster;
  beforeEach(async () => {
    g = await cluster('SQLite', { slots: 1, leaseMs: 3_000, worker: { runAsDefault: 'nobody' } });
    fs.chmodSync(g.dir, 0o755);
  });
  afterEach(async () => {
    await g.close();
  });

  it('a root worker started with --run-as-default nobody runs unmapped namespaces as nobody', async () => {
    g.write('plain.yaml', `name: plain\nnamespace: free\ntasks:\n  t:\n    run: id -un; echo "$HOME $USER"\n`);
    expect((await g.apply('plain.yaml')).status).toBe(200);
    const started = await g.inject('POST', '/api/v1/runs', { workflow: 'plain', namespace: 'free' });
    const run = await g.waitRun(started.body.id, 30_000);
    const job = (await g.jobs(run.id)).t!;
    expect(job.state, job.error ?? '').toBe('succeeded');
    const home = execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).split(':')[5];
    expect(await g.stdout(job.id)).toEqual(['nobody', `${home} nobody`]);
  });
});
