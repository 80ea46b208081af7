// `gantry exec` and `gantry service` as a user runs them: the real CLI as a
// child process against a server on a socket, with real workers, on both
// stores. exec: exit codes come back, output is streamed (live, in order),
// Ctrl-C cancels the job remotely (its process tree is gone) and exits 130.
// service logs: a crashed instance's output told apart, followed with -f until
// the service is stopped; service status shows the last lines of the last exit.
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
    // no shell: arguments arrive as given, templates and all; --cwd: it runs there (output is shipped by line)
    const argv = await gantry(['exec', '--', 'printf', '%s|', 'a b', '{{ params.x }}', '$HOME'], { server, cwd: g.dir });
    expect(argv.stdout).toBe('a b|{{ params.x }}|$HOME|\n');
    const pwd = await gantry(['exec', '--cwd', g.dir, '--', 'pwd'], { server });
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

  it('gantry service logs [--restarts K] [-f] and the last lines of the last exit in gantry service status', async () => {
    const marker = path.join(g.dir, 'crashed-once');
    g.write(
      'bot.yaml',
      `service: bot\nnamespace: bots\n` +
        `run: 'if [ -e ${marker} ]; then echo "second start"; while :; do sleep 0.2; done; else touch ${marker}; echo "connecting to irc"; echo "fatal: token expired" >&2; exit 4; fi'\n` +
        `restart: { delay: 200ms, max_delay: 2s }\n`,
    );
    expect((await gantry(['apply', 'bot.yaml'], { server, cwd: g.dir })).code).toBe(0);
    expect((await gantry(['service', 'start', 'bots/bot'], { server })).code).toBe(0);
    await waitFor('up again after its crash', async () => {
      const s = await g.store.getService('bots', 'bot');
      return s?.state === 'up' && s.restarts === 1 && (await g.store.readServiceLogs({ namespace: 'bots', name: 'bot' })).some((l) => l.line === 'second start');
    }, { timeoutMs: 15_000 });

    // the last instance only
    const last = await gantry(['service', 'logs', 'bots/bot'], { server });
    expect(last.code).toBe(0);
    expect(last.stdout).toMatch(/^\[gantry\] instance \d+ of bots\/bot on worker \S+ \(.+\), after 1 restart\nsecond start\n$/);
    // and the one before: the crash, its stderr marked, its end
    const both = await gantry(['service', 'logs', 'bot', '--namespace', 'bots', '--restarts', '1'], { server });
    expect(both.stdout).toMatch(
      /^\[gantry\] instance (\d+) of bots\/bot .*\nconnecting to irc\n! fatal: token expired\n\[gantry\] instance \1 ended after [\d.]+ s up: exit code 4: fatal: token expired\n\[gantry\] instance \d+ of bots\/bot .*after 1 restart\nsecond start\n$/,
    );
    const json = (await gantry(['service', 'logs', 'bots/bot', '--restarts', '1', '--json'], { server })).stdout.trim().split('\n').map((l) => JSON.parse(l) as { instance: number; stream: string; line: string });
    expect(new Set(json.map((l) => l.instance)).size).toBe(2);
    expect(json.find((l) => l.line === 'fatal: token expired')).toMatchObject({ stream: 'stderr' });
    expect((await gantry(['service', 'logs', 'bots/bot', '--tail', '1'], { server })).stdout).toBe('second start\n');

    // -f follows until the service is stopped, then exits 0
    const follow = gantry(['service', 'logs', 'bots/bot', '-f'], { server, timeoutMs: 30_000 });
    let out = '';
    follow.proc.stdout!.on('data', (c: string) => (out += c));
    await waitFor('the follower caught up', async () => out.includes('second start'), { timeoutMs: 15_000 });
    expect((await gantry(['service', 'stop', 'bots/bot'], { server })).code).toBe(0);
    const followed = await follow;
    expect(followed.code).toBe(0);
    expect(followed.stdout).toMatch(/second start\n\[gantry\] instance \d+ ended after [\d.]+ s up: stopped\n$/);

    // down: its status says what it said last
    const status = await gantry(['service', 'status', 'bots/bot'], { server });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/bots\/bot\s+down\s+1\s+stopped/);
    expect(status.stdout).toMatch(/last lines of instance \d+ \(ended .*: stopped .*\):\n {2}\[gantry\] instance \d+ of bots\/bot .*\n {2}second start\n {2}\[gantry\] instance \d+ ended after [\d.]+ s up: stopped\n$/);

    // bad usage: exit 2 naming the option
    const bad = await gantry(['service', 'logs', 'bots/bot', '--restarts', 'many'], { server });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/restarts/);
    const tooMany = await gantry(['service', 'logs', 'bots/bot', '--restarts', '50'], { server });
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/restarts/);
    expect((await gantry(['service', 'logs', 'bots/nope'], { server })).code).toBe(2);
  });
});
