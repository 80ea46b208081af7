// Twenty event-stream clients that never read cannot take the server's memory:
// a real `gantry server` process (SQLite) with 20 clients on
// /api/v1/events?after=0 that read nothing while tens of thousands of events
// land in the outbox stays under 250 MB resident (VmRSS); before, every event
// was queued in the server for every client (110 -> 518 MB). A client that
// does read gets every event, in order, meanwhile.
// GANTRY_TEST_BIN runs the same test against another build (e.g. a checkout before the fix).
import { it, expect, afterEach } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { BIN, tempDir, cleanup, sleep } from './helpers.js';

const SERVER_BIN = process.env.GANTRY_TEST_BIN ?? BIN;
const CLIENTS = 20;
const EVENTS = 40_000;
const RSS_LIMIT_MB = 250;

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

let server: ChildProcess | null = null;
afterEach(async () => {
  server?.kill('SIGKILL');
  server = null;
  await cleanup();
});

it('20 clients that never read leave the server under 250 MB while 40,000 events stream; a reading client gets them all', async () => {
  const dir = tempDir('gantry-sse-memory-');
  server = spawn(process.execPath, [SERVER_BIN, 'server', '--db', path.join(dir, 'gantry.db'), '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  server.stderr!.resume();
  const deadline = Date.now() + 20_000;
  while (!/listening at http:\/\/[^:]+:(\d+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`gantry server did not start: ${out}`);
    await sleep(50);
  }
  const port = Number(/listening at http:\/\/[^:]+:(\d+)/.exec(out)![1]);
  const token = fs.readFileSync(path.join(dir, '.gantry', 'gantry.token'), 'utf8').trim();
  const request = `GET /api/v1/events?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`;

  // the idle clients: connect, ask, and never read a byte
  const idle: net.Socket[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined); // cut off by the server: expected
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.pause();
    s.write(request);
    idle.push(s);
  }
  // one client that reads everything
  const seen: number[] = [];
  const reader = net.connect(port, '127.0.0.1');
  let buf = '';
  reader.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const m = /^id: (\d+)$/m.exec(buf.slice(0, i));
      if (m) seen.push(Number(m[1]));
      buf = buf.slice(i + 2);
    }
  });
  reader.write(request);
  await sleep(500);
  const before = rssMb(server.pid!);

  // the events: worker events with a few hundred bytes each, inserted as another process would
  const db = new Database(path.join(dir, 'gantry.db'));
  db.pragma('busy_timeout = 10000');
  const insert = db.prepare(`INSERT INTO events (ts, kind, run_id, job_id, state, subject, namespace, detail) VALUES (?, 'worker', 0, NULL, 'online', ?, NULL, ?)`);
  const reason = 'x'.repeat(400);
  let peak = before;
  for (let done = 0; done < EVENTS; done += 2_000) {
    db.transaction(() => {
      for (let i = done; i < done + 2_000; i++) insert.run(Date.now(), `w${i}`, JSON.stringify({ worker: `w${i}`, reason }));
    })();
    await sleep(200);
    peak = Math.max(peak, rssMb(server.pid!));
  }
  db.close();
  // the server finds them within its 2 s fallback poll, and pushes
  const until = Date.now() + 30_000;
  while (seen.length < EVENTS && Date.now() < until) {
    await sleep(250);
    peak = Math.max(peak, rssMb(server.pid!));
  }
  for (let i = 0; i < 8; i++) {
    await sleep(250);
    peak = Math.max(peak, rssMb(server.pid!));
  }
  console.log(`server VmRSS: ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB with ${CLIENTS} idle clients and ${EVENTS} events`);
  expect(seen.length).toBe(EVENTS);
  expect(seen).toEqual([...seen].sort((a, b) => a - b));
  expect(peak).toBeLessThan(RSS_LIMIT_MB);
  // the server still answers
  const health = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
  expect(health.status).toBe(200);
  reader.destroy();
  for (const s of idle) s.destroy();
}, 120_000);
