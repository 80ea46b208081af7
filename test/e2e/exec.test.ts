// `gantry exec` and `gantry service` as a user runs them: the real CLI as a
// child process against a server on a socket, with real workers, on both
// stores. exec: exit codes come back, output is streamed (live, in order),
// Ctrl-C cancels the job remotely (its process tree is gone) and exits 130.
import { it, expect, beforeEach, afterEach, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { cleanup, gantry, gantryJson, isAlive, trackPid, waitFor, rememberToken } from './helpers.js';

afterAll(cleanup);

const pidsIn = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number) : []);

onEveryStore('gantry exec and gantry service', (storeName) => {
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

  it('exec: the exit code comes back (0, 3, 42), stdout and stderr streamed back in order; bad usage exits 2', async () => {
    const ok = await gantry(['exec', '--', 'sh', '-c', 'for i in 1 2 3 4 5; do echo line-$i; done; echo oops >&2'], { server, cwd: g.dir });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('line-1\nline-2\nline-3\nline-4\nline-5\n');
    expect(ok.stderr).toContain('oops');
    for (const code of [3, 42]) {
      const r = await gantry(['exec', '--cpu', '0.5', '--memory', '64M', '--', 'sh', '-c', `echo before; exit ${code}`], { server, cwd: g.dir });
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('before\n');
    }
    // no shell: arguments arrive as given, templates and all; it runs in the caller's folder (output is shipped by line)
    const argv = await gantry(['exec', '--', 'printf', '%s|', 'a b', '{{ params.x }}', '$HOME'], { server, cwd: g.dir });
    expect(argv.stdout).toBe('a b|{{ params.x }}|$HOME|\n');
    const pwd = await gantry(['exec', '--', 'pwd'], { server, cwd: g.dir });
    expect(fs.realpathSync(pwd.stdout.trim())).toBe(fs.realpathSync(g.dir));
    // the job is a run of its own, listed as workflow exec
    const runs = (await g.store.listRuns({ workflow: 'exec' })).length;
    expect(runs).toBe(5);
    expect((await gantry(['exec', '--memory', 'lots', '--', 'true'], { server })).code).toBe(2);
    expect((await gantry(['exec'], { server })).code).toBe(2);
  });

  it('exec: output arrives while the command still runs', async () => {
    const marker = path.join(g.dir, 'go');
    const p = gantry(['exec', '--', 'sh', '-c', `echo first; while [ ! -e ${marker} ]; do sleep 0.1; done; echo second`], { server, cwd: g.dir });
    let out = '';
    p.proc.stdout!.on('data', (c: string) => (out += c));
    await waitFor('the first line, streamed', async () => out.includes('first'), { timeoutMs: 15_000 });
    expect(out).not.toContain('second');
    fs.writeFileSync(marker, '');
    const r = await p;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('first\nsecond\n');
  });

  it('exec: Ctrl-C cancels the job on its worker (its process tree is gone) and exits 130', async () => {
    const pidFile = path.join(g.dir, 'pids');
    const p = gantry(['exec', '--', 'sh', '-c', `sleep 600 & echo $$ $! > ${pidFile}; echo running; wait`], { server, cwd: g.dir, timeoutMs: 30_000 });
    let out = '';
    p.proc.stdout!.on('data', (c: string) => (out += c));
    await waitFor('the job running', async () => pidsIn(pidFile).length === 2, { timeoutMs: 15_000 });
    const pids = pidsIn(pidFile);
    pids.forEach(trackPid);
    await waitFor('its output streamed', async () => out.includes('running'), { timeoutMs: 10_000 });
    p.proc.kill('SIGINT');
    const r = await p;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/cancelled/);
    await waitFor('the process tree gone', async () => pids.every((pid) => !isAlive(pid)), { timeoutMs: 10_000 });
    const [run] = await g.store.listRuns({ workflow: 'exec' });
    expect(run!.state).toBe('cancelled');
  });

  it('gantry service start / status / stop', async () => {
    g.write('svc.yaml', `service: pinger\nnamespace: bots\nrun: while :; do sleep 0.2; done\nresources: { cpu: 0.5, memory: 64M }\nrestart: { delay: 200ms, max_delay: 2s }\n`);
    expect((await gantry(['apply', 'svc.yaml'], { server, cwd: g.dir })).code).toBe(0);
    const listed = await gantryJson<{ name: string; state: string }[]>(['service', 'status'], { server });
    expect(listed.json).toMatchObject([{ name: 'pinger', state: 'down' }]);
    const started = await gantry(['service', 'start', 'bots/pinger'], { server });
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/service bots\/pinger (starting|up)/);
    await waitFor('up', async () => (await g.store.getService('bots', 'pinger'))?.state === 'up', { timeoutMs: 15_000 });
    const text = await gantry(['service', 'status'], { server });
    expect(text.stdout).toMatch(/SERVICE\s+STATE\s+UPTIME\s+RESTARTS\s+WORKER\s+PID\s+LAST EXIT/);
    expect(text.stdout).toMatch(/bots\/pinger\s+up\s+\d+s\s+0\s+w-/);
    expect((await gantry(['service', 'stop', 'bots/pinger'], { server })).code).toBe(0);
    await waitFor('down', async () => (await g.store.getService('bots', 'pinger'))?.state === 'down', { timeoutMs: 15_000 });
    const one = await gantryJson<{ name: string; state: string; lastExit: { reason: string } }>(['service', 'status', 'pinger', '--namespace', 'bots'], { server });
    expect(one.json).toMatchObject({ name: 'pinger', state: 'down', lastExit: { reason: 'stopped' } });
    expect((await gantry(['service', 'start', 'bots/nope'], { server })).code).toBe(2);
  });
});
