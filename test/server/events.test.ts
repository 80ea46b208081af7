// The event stream (GET /api/v1/events) on both stores shows workers and
// services, not only runs and jobs: a real `gantry worker` process coming
// online, its service killed with kill -9 and restarted, the worker drained,
// then killed with kill -9 and declared dead (its service moved off it), an
// in-process worker stopping cleanly; a reconnect with Last-Event-ID resumes
// across those kinds; `gantry events` prints them as they happen.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { workerFor } from '../../src/up.js';
import { silentLogger } from '../../src/log.js';
import { GantryClient } from '../../src/client/client.js';
import type { StoreEvent } from '../../src/store/types.js';
import { BIN, gantry } from '../e2e/helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pidsIn = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number) : []);

/** Follows the stream in the background: `seen` grows as events arrive; `until` waits for one matching. */
function follow(url: string, q: Parameters<GantryClient['events']>[0], token: string) {
  const ac = new AbortController();
  const seen: StoreEvent[] = [];
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  const done = (async () => {
    for await (const e of new GantryClient(url, token).events(q, ac.signal, () => opened())) seen.push(e);
  })().catch(() => undefined); // the server went away (a failed test's cleanup): nothing more to see
  return {
    seen,
    open,
    async until(what: string, match: (e: StoreEvent) => boolean, timeoutMs = 20_000): Promise<StoreEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = seen.find(match);
        if (e) return e;
        if (Date.now() > deadline) throw new Error(`no event: ${what}; saw ${JSON.stringify(seen, null, 1)}`);
        await sleep(30);
      }
    },
    async close() {
      ac.abort();
      await done;
    },
  };
}

onEveryStore('event stream: workers and services', (storeName) => {
  let g: Cluster;
  let url: string;
  const procs: ChildProcess[] = [];
  const pids: number[] = [];
  beforeEach(async () => {
    g = await cluster(storeName, { leaseMs: 1_500 });
    await g.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = g.app.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    url = `http://127.0.0.1:${addr.port}`;
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await g.close();
    for (const p of pids.splice(0)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
  });

  it('a worker online, its service killed and restarted, drained, killed and declared dead, another stopping; resumed with Last-Event-ID; gantry events prints them', async () => {
    const start = await g.store.lastEventId();
    const stream = follow(url, { kinds: ['worker', 'service'] }, g.token);
    await stream.open;
    const cli = gantry(['events', '--kinds', 'worker,service'], { server: url, token: g.token });

    const pidFile = path.join(g.dir, 'pids');
    g.write('pinger.yaml', `service: pinger\nnamespace: bots\nqueue: svc\nrun: echo $$ >> ${pidFile}; exec sleep 600\nrestart: { delay: 300ms, max_delay: 2s }\n`);
    expect((await g.apply('pinger.yaml')).status).toBe(200);
    const wX = spawn(process.execPath, [BIN, 'worker', '--db', g.db, '--name', 'wX', '--queues', 'svc', '--slots', '1', '--lease', '1500'], { stdio: 'ignore' });
    procs.push(wX);
    const online = await stream.until('wX online', (e) => e.kind === 'worker' && e.worker === 'wX' && e.state === 'online');
    expect(online.reason).toMatch(new RegExp(`^registered on .+ \\(pid ${wX.pid}\\): queues svc, 1 slot$`));

    // its service: up on wX; kill -9 of its process: backoff (how it died), then up again, restart 1
    expect((await g.inject('POST', '/api/v1/services/pinger/start?namespace=bots', {})).status).toBe(200);
    const up = await stream.until('pinger up', (e) => e.kind === 'service' && e.state === 'up');
    expect(up).toMatchObject({ service: 'bots/pinger', worker: 'wX', restarts: 0, runId: 0 });
    const first = await (async () => {
      for (let i = 0; i < 200 && !pidsIn(pidFile)[0]; i++) await sleep(50);
      return pidsIn(pidFile)[0]!;
    })();
    pids.push(first);
    process.kill(first, 'SIGKILL');
    const died = await stream.until('pinger killed', (e) => e.kind === 'service' && e.state === 'backoff');
    expect(died.exit).toEqual({ code: 137, signal: null });
    expect(died.reason).toMatch(/^exit code 137.* after [\d.]+ s up; restart in 300 ms$/);
    const again = await stream.until('pinger up again', (e) => e.kind === 'service' && e.state === 'up' && e.id > died.id);
    expect(again).toMatchObject({ worker: 'wX', restarts: 1, reason: expect.stringMatching(/^started on worker wX .*, restart 1$/) });
    for (let i = 0; i < 100 && !pidsIn(pidFile)[1]; i++) await sleep(50);
    pids.push(...pidsIn(pidFile).slice(1));

    // drained through the API, then kill -9: declared dead (its process is gone), its service moved off it
    expect((await g.inject('POST', '/api/v1/workers/wX/drain', {})).status).toBe(200);
    const draining = await stream.until('wX draining', (e) => e.kind === 'worker' && e.worker === 'wX' && e.state === 'draining');
    expect(draining.reason).toMatch(/^drain asked/);
    wX.kill('SIGKILL');
    const dead = await stream.until('wX dead', (e) => e.kind === 'worker' && e.worker === 'wX' && e.state === 'dead');
    expect(dead.reason).toMatch(new RegExp(`its process ${wX.pid} on .+ is gone|no heartbeat for`));
    const movedOff = await stream.until('pinger moved off wX', (e) => e.kind === 'service' && e.state === 'starting' && e.id > dead.id);
    expect(movedOff).toMatchObject({ worker: 'wX', reason: 'worker wX lost: moved to another worker', restarts: 2 });
    expect((await g.store.listAudit({ action: 'worker.dead' })).map((a) => a.subject)).toEqual(['wX']);

    // a worker that stops cleanly: online, then stopped (exited)
    const wY = workerFor(g.store, { name: 'wY', queues: ['none'], slots: 1, leaseMs: 1_500, logger: silentLogger() });
    await wY.start();
    await wY.stop({ graceful: true });
    const stopped = await stream.until('wY stopped', (e) => e.kind === 'worker' && e.worker === 'wY' && e.state === 'stopped');
    expect(stopped.reason).toBe('exited');
    await stream.close();

    // the stream held exactly the outbox's worker and service events, in order, each once
    const stored = await g.store.readEvents(start, { kinds: ['worker', 'service'] });
    expect(stream.seen.map((e) => e.id)).toEqual(stored.filter((e) => e.id <= stopped.id).map((e) => e.id));
    expect(stream.seen.every((e) => e.kind === 'worker' || e.kind === 'service')).toBe(true);

    // resume after the drain: exactly what came after it, across both kinds
    const resumed = follow(url, { kinds: ['worker', 'service'], lastEventId: draining.id }, g.token);
    await resumed.until('wY stopped, resumed', (e) => e.id === stopped.id);
    await resumed.close();
    expect(resumed.seen.map((e) => e.id)).toEqual(stream.seen.filter((e) => e.id > draining.id).map((e) => e.id));
    expect(resumed.seen.map((e) => `${e.kind} ${e.state}`)).toEqual(expect.arrayContaining(['worker dead', 'service starting', 'worker online', 'worker stopped']));

    // the SSE event name is the kind (what EventSource listeners, the web UI's, dispatch on)
    const raw = await fetch(`${url}/api/v1/events?kinds=worker&after=${draining.id - 1}`, { signal: AbortSignal.timeout(5_000), headers: { authorization: `Bearer ${g.token}` } });
    const reader = raw.body!.getReader();
    let text = '';
    while (!text.includes('event: worker')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toContain(`id: ${draining.id}\nevent: worker\ndata: {`);

    // gantry events: a line per change, with its reason
    cli.proc.kill('SIGINT');
    const out = await cli;
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/ worker wX online: registered on /);
    expect(out.stdout).toMatch(/ service bots\/pinger backoff: exit code 137/);
    expect(out.stdout).toMatch(/ worker wX draining: drain asked/);
    expect(out.stdout).toMatch(/ worker wX dead: /);
    expect(out.stdout).toMatch(/ worker wY stopped: exited/);
  });

  it('kinds: a bad one is a 400 naming the field (exit 2 in the CLI); a namespace filter keeps its services and drops workers unless kinds names them', async () => {
    const bad = await g.inject<{ error: string }>('GET', '/api/v1/events?kinds=worker,bogus');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/query\.kinds: unknown kind 'bogus': use run, job, worker, service/);
    const cli = await gantry(['events', '--kinds', 'nope'], { server: url, token: g.token });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/--kinds: unknown kind nope/);

    const start = await g.store.lastEventId();
    g.write('svc.yaml', `service: idle\nnamespace: bots\nqueue: nowhere\nrun: sleep 600\n`);
    expect((await g.apply('svc.yaml')).status).toBe(200);
    expect((await g.inject('POST', '/api/v1/services/idle/start?namespace=bots', {})).status).toBe(200);
    const wZ = workerFor(g.store, { name: 'wZ', queues: ['none'], slots: 1, leaseMs: 1_500, logger: silentLogger() });
    await wZ.start();
    await wZ.stop({ graceful: true });
    const read = async (query: string) => {
      const s = follow(url, { ...Object.fromEntries(new URLSearchParams(query)), after: start } as Parameters<GantryClient["events"]>[0], g.token);
      await s.open;
      await sleep(300);
      await s.close();
      return s.seen.map((e) => `${e.kind} ${e.service ?? e.worker} ${e.state}`);
    };
    expect(await read('namespace=bots')).toEqual(['service bots/idle starting']);
    expect(await read('namespace=other')).toEqual([]);
    expect(await read('')).toEqual(['service bots/idle starting', 'worker wZ online', 'worker wZ stopped']);
    expect(await read('namespace=bots&kinds=service,worker')).toEqual(['service bots/idle starting', 'worker wZ online', 'worker wZ stopped']);
  });
});
