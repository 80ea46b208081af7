// Services on both stores with real processes: started by a worker through the
// API, restarted after `kill -9` within its delay, stopped gracefully (SIGTERM,
// grace, SIGKILL), marked flapping, and moved to another worker when its
// worker (a real `gantry worker` process) is killed with `kill -9`; its output
// in the store, per instance, over the API.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { workerFor } from '../../src/up.js';
import { silentLogger } from '../../src/log.js';
import { processAlive } from '../../src/worker/processTree.js';
import type { Worker } from '../../src/worker/worker.js';
import type { ServiceStatus } from '../../src/server/schemas.js';
import type { ServiceLogLine } from '../../src/store/types.js';
import { BIN } from '../e2e/helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
const pidsIn = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number) : []);

onEveryStore('services', (storeName) => {
  let g: Cluster;
  const extra: Worker[] = [];
  const procs: ChildProcess[] = [];
  const pids: number[] = [];
  beforeEach(async () => {
    g = await cluster(storeName, { slots: 2, leaseMs: 3_000 });
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const w of extra.splice(0)) await w.stop({ graceful: false });
    await g.close();
    for (const p of pids.splice(0)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
  });

  const api = async <T>(method: 'GET' | 'POST', url: string) => {
    const r = await g.inject<T>(method, url, method === 'POST' ? {} : undefined);
    return { status: r.status, body: r.body };
  };
  const status = async (name: string) => (await api<ServiceStatus>('GET', `/api/v1/services/${name}?namespace=bots`)).body;
  async function applyService(name: string, yaml: string): Promise<void> {
    g.write(`${name}.yaml`, `service: ${name}\nnamespace: bots\n${yaml}`);
    const r = await g.apply(`${name}.yaml`);
    expect(r.status).toBe(200);
  }
  /** a service that writes its pid to FILE and sleeps; the pid file lists every instance */
  const sleeper = (file: string) => `run: echo $$ >> ${file}; exec sleep 600\n`;

  it('applied, it is down until started; started, a worker runs it; kill -9 of its process: restarted within its delay, the restart counted', async () => {
    const pidFile = path.join(g.dir, 'pids');
    await applyService('notifier', `${sleeper(pidFile)}restart: { delay: 400ms, max_delay: 5s }\n`);
    // never started: listed down
    const listed = (await api<{ services: ServiceStatus[] }>('GET', '/api/v1/services')).body.services;
    expect(listed).toMatchObject([{ namespace: 'bots', name: 'notifier', desired: 'down', state: 'down', restarts: 0 }]);
    expect((await api('POST', '/api/v1/services/nope/start?namespace=bots')).status).toBe(404);

    const started = await api<ServiceStatus>('POST', '/api/v1/services/notifier/start?namespace=bots');
    expect(started.status).toBe(200);
    const first = await until('the service up', async () => pidsIn(pidFile)[0]);
    pids.push(first);
    const up = await until('status up with its pid', async () => {
      const s = await status('notifier');
      return s.state === 'up' && s.pid !== null ? s : null;
    });
    expect(up).toMatchObject({ desired: 'up', restarts: 0, lastExit: null, command: `echo $$ >> ${pidFile}; exec sleep 600` });
    expect(up.worker).toBeTruthy();
    expect(up.uptimeMs).toBeGreaterThanOrEqual(0);

    process.kill(first, 'SIGKILL');
    const second = await until('a new instance', async () => pidsIn(pidFile)[1], 10_000);
    pids.push(second);
    expect(processAlive(first)).toBe(false);
    expect(processAlive(second)).toBe(true);
    const s = await until('status up again', async () => {
      const x = await status('notifier');
      return x.state === 'up' && x.restarts === 1 ? x : null;
    });
    expect(s.lastExit).toMatchObject({ code: 137 });
    // restarted after its delay, and not much later (a loaded machine may add a little)
    const waited = s.startedAt! - s.lastExit!.at;
    expect(waited).toBeGreaterThanOrEqual(400);
    expect(waited).toBeLessThan(400 + 3_000);
  });

  it('stop is graceful: SIGTERM to its process group, its handler finishes within the grace period; one that ignores SIGTERM is killed after it', async () => {
    const byeFile = path.join(g.dir, 'bye');
    await applyService('polite', `run: trap 'sleep 0.2; echo bye > ${byeFile}; exit 0' TERM; echo $$ > ${g.dir}/polite.pid; while :; do sleep 0.1; done\nrestart: { delay: 200ms, max_delay: 1s }\n`);
    await applyService('stubborn', `run: trap '' TERM; echo $$ > ${g.dir}/stubborn.pid; while :; do sleep 0.1; done\nrestart: { delay: 200ms, max_delay: 1s }\n`);
    for (const n of ['polite', 'stubborn']) await api('POST', `/api/v1/services/${n}/start?namespace=bots`);
    const politePid = await until('polite up', async () => pidsIn(path.join(g.dir, 'polite.pid'))[0]);
    const stubbornPid = await until('stubborn up', async () => pidsIn(path.join(g.dir, 'stubborn.pid'))[0]);
    pids.push(politePid, stubbornPid);
    await until('both up', async () => (await status('polite')).state === 'up' && (await status('stubborn')).state === 'up');

    const stopping = await api<ServiceStatus>('POST', '/api/v1/services/polite/stop?namespace=bots');
    expect(['stopping', 'down']).toContain(stopping.body.state);
    const down = await until('polite down', async () => {
      const s = await status('polite');
      return s.state === 'down' ? s : null;
    });
    expect(fs.readFileSync(byeFile, 'utf8')).toBe('bye\n');
    expect(down).toMatchObject({ desired: 'down', restarts: 0, worker: null, uptimeMs: null });
    expect(down.lastExit).toMatchObject({ code: 0, reason: 'stopped' });
    expect(processAlive(politePid)).toBe(false);

    const t0 = Date.now();
    await api('POST', '/api/v1/services/stubborn/stop?namespace=bots');
    const s2 = await until('stubborn down', async () => {
      const s = await status('stubborn');
      return s.state === 'down' ? s : null;
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500); // the cluster's grace period
    expect(processAlive(stubbornPid)).toBe(false);
    expect(s2.lastExit?.reason).toBe('stopped');
    await sleep(600);
    expect((await status('stubborn')).state).toBe('down'); // stays down
  });

  it('dying quickly over and over: flapping, still restarted (at its max_delay)', async () => {
    await applyService('crashy', `run: echo starting; echo "cannot connect" >&2; exit 3\nrestart: { delay: 100ms, max_delay: 400ms }\n`);
    await api('POST', '/api/v1/services/crashy/start?namespace=bots');
    const s = await until('flapping', async () => {
      const x = await status('crashy');
      return x.flapping ? x : null;
    }, 20_000);
    expect(s.restarts).toBeGreaterThanOrEqual(5);
    expect(s.lastExit).toMatchObject({ code: 3, reason: 'exit code 3: cannot connect' });
    const later = await until('restarted again while flapping', async () => {
      const x = await status('crashy');
      return x.restarts > s.restarts ? x : null;
    }, 10_000);
    expect(later.flapping).toBe(true);
  });

  it('its worker killed with kill -9: the service (its process gone with it) is moved to another worker', async () => {
    const pidFile = path.join(g.dir, 'pids');
    await applyService('mover', `${sleeper(pidFile)}queue: svc\nrestart: { delay: 200ms, max_delay: 1s }\n`);
    const wA = spawn(process.execPath, [BIN, 'worker', '--db', g.db, '--name', 'wA', '--queues', 'svc', '--slots', '1', '--lease', '3000'], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    procs.push(wA);
    await until('wA registered', async () => (await g.store.listWorkers()).some((w) => w.name === 'wA' && w.state === 'active'));
    await api('POST', '/api/v1/services/mover/start?namespace=bots');
    const first = await until('the service up', async () => pidsIn(pidFile)[0]);
    pids.push(first);
    expect((await until('up on wA', async () => ((await status('mover')).worker === 'wA' ? status('mover') : null))).state).toBe('up');

    const wB = workerFor(g.store, { name: 'wB', queues: ['svc'], slots: 1, leaseMs: 3_000, killGraceMs: 500, logger: silentLogger() });
    extra.push(wB);
    await wB.start();
    wA.kill('SIGKILL');
    const moved = await until('moved to wB', async () => {
      const s = await status('mover');
      return s.state === 'up' && s.worker === 'wB' ? s : null;
    }, 20_000);
    const second = await until('its new instance', async () => pidsIn(pidFile)[1]);
    pids.push(second);
    expect(moved.restarts).toBe(1);
    expect(moved.lastExit?.reason).toMatch(/worker wA lost/);
    // the old instance died with its worker (gantry-supervise): never two at once
    await until('the old instance gone', async () => !processAlive(first), 5_000);
    expect(processAlive(second)).toBe(true);
  });

  it("its output reaches the store per instance: the crashed one's lines told apart from its successor's, the last ones shown with its status once stopped", async () => {
    const marker = path.join(g.dir, 'crashed-once');
    await applyService(
      'bot',
      `run: 'if [ -e ${marker} ]; then echo "second start"; echo $$ > ${g.dir}/bot.pid; exec sleep 600; else touch ${marker}; echo "connecting to irc"; echo "fatal: token expired" >&2; exit 4; fi'\n` +
        `restart: { delay: 300ms, max_delay: 2s }\n`,
    );
    await api('POST', '/api/v1/services/bot/start?namespace=bots');
    pids.push(await until('the second instance', async () => pidsIn(path.join(g.dir, 'bot.pid'))[0]));
    const up = await until('up again after one restart', async () => {
      const s = await status('bot');
      return s.state === 'up' && s.restarts === 1 ? s : null;
    });
    expect(up.lastExitLines).toBeUndefined(); // up and not flapping: nothing to explain
    const logs = async (query: string) =>
      (await g.inject<{ lines: ServiceLogLine[]; next: number; finished: boolean }>('GET', `/api/v1/services/bot/logs?namespace=bots${query}`)).body;
    const current = await until('the second instance has written', async () => {
      const r = await logs('');
      return r.lines.some((l) => l.line === 'second start') ? r : null;
    });
    expect(current.lines.map((l) => [l.stream, l.line])).toEqual([
      ['system', expect.stringMatching(/^\[gantry\] instance \d+ of bots\/bot on worker w-\S+ \(.+\), after 1 restart$/)],
      ['stdout', 'second start'],
    ]);
    expect(current.finished).toBe(false);
    const both = (await logs('&restarts=1')).lines;
    const first = both[0]!.instance;
    expect(both.filter((l) => l.instance === first).map((l) => [l.stream, l.line])).toEqual([
      ['system', expect.stringMatching(/^\[gantry\] instance \d+ of bots\/bot on worker/)],
      ['stdout', 'connecting to irc'],
      ['stderr', 'fatal: token expired'],
      ['system', expect.stringMatching(/^\[gantry\] instance \d+ ended after [\d.]+ s up: exit code 4: fatal: token expired$/)],
    ]);
    expect(both.filter((l) => l.instance !== first).map((l) => l.instance)).toEqual([up.lastExit!.instance! + 1, up.lastExit!.instance! + 1]);
    expect(up.lastExit!.instance).toBe(first);

    // a follower waiting for new lines is told when the service is stopped: no more will come
    const follow = g.inject<{ lines: ServiceLogLine[]; finished: boolean }>('GET', `/api/v1/services/bot/logs?namespace=bots&after=${current.next}&wait=20`);
    await api('POST', '/api/v1/services/bot/stop?namespace=bots');
    const down = await until('down', async () => {
      const s = await status('bot');
      return s.state === 'down' ? s : null;
    });
    expect(down.lastExitLines!.map((l) => l.line)).toEqual([
      expect.stringMatching(/^\[gantry\] instance \d+ of bots\/bot/),
      'second start',
      expect.stringMatching(/^\[gantry\] instance \d+ ended after [\d.]+ s up: stopped$/),
    ]);
    let tail = (await follow).body;
    while (!tail.finished) tail = (await logs(`&after=${tail.lines.at(-1)?.id ?? current.next}&wait=5`));
    expect((await logs(`&after=${current.next}`)).finished).toBe(true);

    // bad queries: 400 naming the field; an unknown service: 404
    const bad = await g.inject<{ issues: { path: string }[] }>('GET', '/api/v1/services/bot/logs?namespace=bots&restarts=many');
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0]!.path).toBe('query.restarts');
    expect((await g.inject('GET', '/api/v1/services/bot/logs?namespace=bots&restarts=11')).status).toBe(400);
    expect((await g.inject('GET', '/api/v1/services/nope/logs?namespace=bots')).status).toBe(404);
  });
});
