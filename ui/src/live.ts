// Live updates: one EventSource on GET /api/v1/events for the whole app (it
// reconnects by itself, resuming with Last-Event-ID); views subscribe to it and
// reload what they show, at most once a second however many events arrive.
import { useCallback, useEffect, useRef, useState } from 'react';

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
let source: EventSource | null = null;
let connected = false;
const statusListeners = new Set<(up: boolean) => void>();

function ensureSource(): void {
  if (source || typeof EventSource === 'undefined') return;
  source = new EventSource('/api/v1/events');
  const onEvent = (m: MessageEvent<string>) => {
    try {
      const e = JSON.parse(m.data) as LiveEvent;
      for (const l of listeners) l(e);
    } catch {
      // not an event of ours
    }
  };
  for (const kind of ['run', 'job', 'worker', 'service', 'message']) source.addEventListener(kind, onEvent as EventListener);
  source.onopen = () => setConnected(true);
  source.onerror = () => {
    setConnected(false);
    // Refused for good (e.g. 410: away longer than the event retention): start a new stream from now; views reload on their own.
    if (source?.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(ensureSource, 1_000);
    }
  };
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
