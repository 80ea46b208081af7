// Ships output lines to the store in batches: a flush every `intervalMs` or
// every `maxBatch` lines, and bounded memory. A job attempt's log has a size cap
// after which one truncation mark is written and further lines are dropped; a
// service instance has none (the store keeps its tail), but what waits for the
// store is capped (`maxPendingBytes`): lines past it are dropped and counted,
// and a mark says how many once the store catches up. A batch the store
// refuses (full disk, lost connection past the worker's retries) is counted
// too, and the next batch that goes out starts with a mark saying so.
import { StaleFenceError, type LogLine } from '../store/types.js';
import type { Masker } from './secretMask.js';

export interface LogShipperOptions {
  intervalMs: number;
  maxBatch: number;
  /** bytes an attempt may write in all; past it one truncation mark, then nothing (Infinity: no cap) */
  maxBytes: number;
  /** bytes buffered or on their way to the store at most; past it lines are dropped until the store catches up (default: no bound) */
  maxPendingBytes?: number;
  /** called once if the store refuses the lines (the attempt's or instance's fence is stale) */
  onStale: () => void;
  onError: (e: unknown) => void;
  /** hides the secret values the job uses (secretMask.ts), before a line is counted or kept */
  mask?: Masker;
}

/** Where batches go: the store's appendLogs of a job attempt, or appendServiceLogs of a service instance. */
export type LogSink = (lines: LogLine[]) => Promise<void>;

export class LogShipper {
  private buffer: LogLine[] = [];
  private bytes = 0;
  /** bytes buffered or in flight */
  private pending = 0;
  /** lines dropped since the last mark, while the store was behind */
  private dropped = 0;
  private truncated = false;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private stale = false;
  /** lines of batches the store refused (not for a stale fence), and why: marked in the next batch */
  private refused = 0;
  private refusedWhy = '';

  constructor(private readonly send: LogSink, private readonly o: LogShipperOptions) {}

  push(stream: LogLine['stream'], line: string): void {
    if (this.truncated || this.stale) return;
    if (this.o.mask) line = this.o.mask(line);
    const size = Buffer.byteLength(line) + 1;
    if (this.o.maxPendingBytes !== undefined) {
      if (this.pending + size > this.o.maxPendingBytes) {
        this.dropped++;
        return;
      }
      if (this.dropped > 0) {
        this.enqueue({ stream: 'system', ts: Date.now(), line: `[gantry] ${this.dropped} lines dropped here: the store did not take them as fast as they came` });
        this.dropped = 0;
      }
    }
    this.bytes += size;
    if (this.bytes > this.o.maxBytes) {
      this.truncated = true;
      this.enqueue({ stream: 'system', ts: Date.now(), line: `[gantry] log truncated: this attempt wrote more than ${this.o.maxBytes} bytes` });
    } else {
      this.enqueue({ stream, ts: Date.now(), line });
    }
  }

  private enqueue(l: LogLine): void {
    this.buffer.push(l);
    this.pending += Buffer.byteLength(l.line) + 1;
    if (this.buffer.length >= this.o.maxBatch) void this.flush();
    else if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.o.intervalMs);
  }

  /**
   * Waits for batches in flight and hands back what is still buffered, to be
   * stored with the attempt's completion (one transaction instead of two).
   */
  async drain(): Promise<LogLine[]> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.flushing;
    const rest = this.buffer;
    this.buffer = [];
    this.pending = 0;
    if (this.dropped > 0 && !this.stale) rest.push({ stream: 'system', ts: Date.now(), line: `[gantry] ${this.dropped} lines dropped here: the store did not take them as fast as they came` });
    this.dropped = 0;
    const mark = this.refusedMark();
    if (mark) rest.unshift(mark);
    return this.stale ? [] : rest;
  }

  /** Sends what is buffered; resolves when every earlier batch has been written. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0 || this.stale) return;
      const carried = this.refused;
      const mark = this.refusedMark();
      const lines = mark ? [mark, ...batch] : batch;
      try {
        await this.send(lines);
      } catch (e) {
        if (e instanceof StaleFenceError) {
          this.stale = true;
          this.o.onStale();
        } else {
          // the lines are gone: say so in the log once the store takes lines again
          this.refused += carried + batch.length;
          this.refusedWhy = e instanceof Error ? e.message : String(e);
          this.o.onError(e);
        }
      } finally {
        for (const l of batch) this.pending -= Buffer.byteLength(l.line) + 1;
      }
    });
    return this.flushing;
  }

  /** The mark for lines the store refused since the last one (and forgets them), or null. */
  private refusedMark(): LogLine | null {
    if (this.refused === 0) return null;
    const line = `[gantry] ${this.refused} lines lost here: the store refused them (${this.refusedWhy.slice(0, 200)})`;
    this.refused = 0;
    return { stream: 'system', ts: Date.now(), line };
  }
}
