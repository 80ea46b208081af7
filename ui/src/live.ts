// Live updates: one stream of GET /api/v1/events for the whole app (read with
// fetch, not EventSource, so that it carries the bearer token reads need; it
// reconnects by itself, resuming with Last-Event-ID); views subscribe to it and
// reload what they show, at most once a second however many events arrive.
import { useCallback, useEffect, useRef, useState } from 'react';
import { authHeaders } from './api';

/** An event of GET /api/v1/events: views filter on it; a kind they do not know is simply not theirs. */
export interface LiveEvent {
  id: number;
  kind: 'run' | 'job' | 'worker' | 'service' | string;
  /** 0 for a worker's or a service's event */
  runId: number;
  jobId: string | null;
  state: string;
  worker?: string;
  service?: string;
}

type Listener = (e: LiveEvent) => void;
const listeners = new Set<Listener>();
let started = false;
let connected = false;
const statusListeners = new Set<(up: boolean) => void>();
const RECONNECT_MS = 2_000;
let current: AbortController | null = null;

/** Starts the stream again at once (the token changed: logged in or out). */
export function reconnectLive(): void {
  current?.abort();
}

function dispatch(block: string, onId: (id: string) => void): void {
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('id:')) onId(line.slice(3).trim());
    else if (line.startsWith('data:')) data += line.slice(5).trimStart();
  }
  if (!data) return;
  try {
    const e = JSON.parse(data) as LiveEvent;
    for (const l of listeners) l(e);
  } catch {
    // not an event of ours
  }
}

/** Reads the stream until it ends or fails, then again after a pause, from the last event seen. */
async function streamForever(): Promise<void> {
  let last: string | null = null;
  for (;;) {
    const ctl = (current = new AbortController());
    try {
      const r = await fetch('/api/v1/events', { signal: ctl.signal, headers: { accept: 'text/event-stream', ...authHeaders(), ...(last ? { 'last-event-id': last } : {}) } });
      // 410: away longer than the event retention: start again from now (views reload on their own)
      if (r.status === 410) last = null;
      if (!r.ok || !r.body) throw new Error(`events: ${r.status}`);
      last ??= r.headers.get('x-gantry-after');
      setConnected(true);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n/g, '\n');
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          dispatch(buf.slice(0, i), (id) => (last = id));
          buf = buf.slice(i + 2);
        }
      }
    } catch {
      // said by the status dot; tried again below
    }
    setConnected(false);
    if (!ctl.signal.aborted) await new Promise((res) => setTimeout(res, RECONNECT_MS));
  }
}

function ensureSource(): void {
  if (started || typeof fetch === 'undefined') return;
  started = true;
  void streamForever();
}

function setConnected(up: boolean): void {
  if (connected === up) return;
  connected = up;
  for (const l of statusListeners) l(up);
}

export function onLiveEvent(l: Listener): () => void {
  ensureSource();
  listeners.add(l);
  return () => listeners.delete(l);
}

export function useLiveStatus(): boolean {
  const [up, setUp] = useState(connected);
  useEffect(() => {
    ensureSource();
    statusListeners.add(setUp);
    return () => void statusListeners.delete(setUp);
  }, []);
  return up;
}

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  reload: () => void;
}

/**
 * Loads `load()` now, again when `deps` change, when a live event passes
 * `filter` (throttled to once per `minGapMs`), and every `pollMs` as a backstop.
 */
export function useLive<T>(load: () => Promise<T>, deps: unknown[], o: { filter?: (e: LiveEvent) => boolean; minGapMs?: number; pollMs?: number } = {}): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const filterRef = useRef(o.filter);
  filterRef.current = o.filter;
  const state = useRef({ busy: false, again: false, last: 0, took: 0, timer: 0 as unknown as ReturnType<typeof setTimeout> | 0, alive: true, gen: 0 });

  const run = useCallback(async () => {
    const s = state.current;
    if (s.busy) {
      s.again = true;
      return;
    }
    s.busy = true;
    const gen = s.gen;
    try {
      do {
        s.again = false;
        s.last = Date.now();
        try {
          const v = await loadRef.current();
          s.took = Date.now() - s.last;
          if (s.alive && gen === s.gen) {
            setData(v);
            setError(null);
          }
        } catch (e) {
          if (s.alive && gen === s.gen) setError((e as Error).message);
        }
      } while (s.again && s.alive && gen === s.gen);
    } finally {
      s.busy = false;
    }
  }, []);

  const schedule = useCallback(() => {
    const s = state.current;
    if (s.timer) return;
    // a slow read (a huge run, a busy server) is repeated less often: never more than a third of the time
    const wait = Math.max(0, Math.max(o.minGapMs ?? 1000, 3 * s.took) - (Date.now() - s.last));
    s.timer = setTimeout(() => {
      s.timer = 0;
      void run();
    }, wait);
  }, [run, o.minGapMs]);

  useEffect(() => {
    const s = state.current;
    s.alive = true;
    s.gen++;
    s.busy = false;
    void run();
    const off = onLiveEvent((e) => {
      if (!filterRef.current || filterRef.current(e)) schedule();
    });
    const poll = setInterval(() => void run(), o.pollMs ?? 10_000);
    return () => {
      s.alive = false;
      off();
      clearInterval(poll);
      if (s.timer) clearTimeout(s.timer);
      s.timer = 0;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  return { data, error, reload: () => void run() };
}
