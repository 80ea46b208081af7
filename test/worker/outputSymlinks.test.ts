// A root worker moves a job's outputs into place and removes its staging
// folders: with the job's own rights, never root's. A job (run as a tool's
// user, created here and removed after) that swaps its staging folder for a
// symbolic link must not get root to move or delete files it could not touch
// itself: a root-only file stays where it is, and the job fails naming the move.
import { it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, type Cluster } from '../helpers/cluster.js';

const A = `gts${process.pid % 100000}`;
const uidOf = (u: string) => Number(execFileSync('id', ['-u', u], { encoding: 'utf8' }).trim());

beforeAll(() => execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', '--user-group', A]));
afterAll(() => execFileSync('userdel', [A]));

let g: Cluster;
let victim: string;
beforeEach(async () => {
  g = await cluster('SQLite', { slots: 1, leaseMs: 3_000 });
  fs.chmodSync(g.dir, 0o711);
  await g.store.setNamespaceSettings('toola', { user: A });
  victim = fs.mkdtempSync('/tmp/gantry-victim-');
  fs.chmodSync(victim, 0o700);
  fs.writeFileSync(path.join(victim, 'secret.txt'), 'root only\n', { mode: 0o600 });
  fs.mkdirSync(path.join(victim, 'keep'));
  fs.writeFileSync(path.join(victim, 'keep', 'file'), 'keep me\n');
});
afterEach(async () => {
  await g.close();
  fs.rmSync(victim, { recursive: true, force: true });
});

async function run(yaml: string) {
  const dir = path.join(g.dir, A);
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, uidOf(A), uidOf(A));
  fs.writeFileSync(path.join(dir, 'w.yaml'), yaml);
  const applied = await g.apply(`${A}/w.yaml`);
  expect(applied.status, JSON.stringify(applied.body)).toBe(200);
  const started = await g.inject('POST', '/api/v1/runs', { workflow: 'w', namespace: 'toola' });
  expect(started.status, JSON.stringify(started.body)).toBe(201);
  const r = await g.waitRun(started.body.id, 30_000);
  return { dir, jobs: await g.jobs(r.id) };
}

it("a staging folder swapped for a link to a root-only folder: root's file is not moved into the tool's folder", async () => {
  const { dir, jobs } = await run(
    `name: w\nnamespace: toola\ntasks:\n  t:\n    outputs: { o: out/secret.txt }\n    run: d=$(dirname {{ outputs.o }}); rmdir "$d" && ln -s ${victim} "$d"\n`,
  );
  expect(fs.readFileSync(path.join(victim, 'secret.txt'), 'utf8')).toBe('root only\n');
  expect(fs.existsSync(path.join(dir, 'out', 'secret.txt'))).toBe(false);
  expect(jobs.t!.state).toBe('failed');
  expect(jobs.t!.error).toMatch(/cannot move its outputs into place/);
});

it("a failed job's staging folder swapped for a link: root does not empty the folder it points to", async () => {
  const { jobs } = await run(
    `name: w\nnamespace: toola\ntasks:\n  t:\n    outputs: { o: out/x.txt }\n    run: d=$(dirname {{ outputs.o }}); rmdir "$d" && mkdir "$d.real" && ln -s ${victim}/keep "$d.real/in" && mv "$d.real" "$d"; exit 3\n`,
  );
  expect(jobs.t!.state).toBe('failed');
  expect(fs.readFileSync(path.join(victim, 'keep', 'file'), 'utf8')).toBe('keep me\n');
});
