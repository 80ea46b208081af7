// A stream client that stops reading is cut off, not buffered for: on both
// stores, a client that reads nothing while megabytes of events happen finds
// its connection closed by the server once it looks again (after the stall
// limit), holding whole events up to some id; it resumes with Last-Event-ID
// and gets exactly the rest, in order, none twice. The server listens on a
// Unix socket here: its kernel buffers are small and fixed, where a loopback
// TCP socket may absorb tens of megabytes before the server has to wait.
import { it, expect, beforeEach, afterEach } from 'vitest';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { onEveryStore, makeToken } from '../helpers/cluster.js';
import { apiHarness, type ApiHarness } from '../helpers/apiHarness.js';

const WORKERS = 600;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const idsIn = (text: string) => [...text.matchAll(/^id: (\d+)\n(?:.*\n)*?\n/gm)].map((m) => Number(m[1]));

/** Sends the request on a new connection to `sock`; the socket and everything it reads. */
function stream(sock: string, request: string) {
  const s = net.connect(sock);
  const chunks: string[] = [];
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.on('error', () => undefined);
  s.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
  s.write(request);
  return { s, closed, text: () => chunks.join('') };
}

onEveryStore('event stream limits', (storeName) => {
  let h: ApiHarness;
  let dir: string;
  beforeEach(async () => {
    h = await apiHarness(storeName, { eventStream: { stallMs: 500 } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-sse-'));
  });
  afterEach(async () => {
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a client that reads nothing is cut off after the stall limit and resumes with Last-Event-ID', async () => {
    const sock = path.join(dir, 'api.sock');
    await h.app.listen({ path: sock });
    const token = await makeToken(h.store, 'admin', [], 'sse');
    const start = await h.store.lastEventId();
    const get = (headers: string) => `GET /api/v1/events?${headers ? '' : `after=${start}`} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${headers}\r\n`;
    const idle = stream(sock, get(''));
    idle.s.pause();
    await sleep(200);
    // events of ~5 KB each (a worker registering with many queues): megabytes of them
    const queues = Array.from({ length: 40 }, (_, i) => `queue-${i}-${'q'.repeat(100)}`);
    for (let i = 0; i < WORKERS; i++) {
      await h.store.registerWorker({ name: `w${i}`, host: 'h', pid: 1, queues, slots: 1, resources: { cpu: 1, memoryBytes: null, custom: {} } });
      if (i % 100 === 0) await sleep(1); // let the server serve meanwhile (SQLite calls do not yield)
    }
    const end = await h.store.lastEventId();
    await sleep(2_000);
    // reading again: what the kernel held, then the end the server sent
    idle.s.resume();
    const ended = await Promise.race([idle.closed.then(() => true), sleep(5_000).then(() => false)]);
    expect(ended, 'the server closed the stalled stream').toBe(true);
    const first = idsIn(idle.text());
    expect(first.length).toBeGreaterThan(0);
    expect(first[first.length - 1]!).toBeLessThan(end);
    // resume where it stopped
    const again = stream(sock, get(`Last-Event-ID: ${first[first.length - 1]}\r\n`));
    const deadline = Date.now() + 20_000;
    while (!again.text().includes(`id: ${end}\n`) && Date.now() < deadline) await sleep(50);
    again.s.destroy();
    const all = [...first, ...idsIn(again.text())];
    expect(all).toEqual([...new Set(all)].sort((a, b) => a - b));
    expect(all.length).toBe(end - start);
  }, 60_000);
});
