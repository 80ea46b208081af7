// Ships one attempt's output lines to the store in batches: a flush every
// `intervalMs` or every `maxBatch` lines, bounded memory, and a per-attempt size
// cap after which one truncation mark is written and further lines are dropped.
import { StaleFenceError, type LogLine, type Store } from '../store/types.js';
import type { Masker } from './secretMask.js';

export interface LogShipperOptions {
  intervalMs: number;
  maxBatch: number;
  maxBytes: number;
  /** called once if the store refuses the attempt's lines (its fence is stale) */
  onStale: () => void;
  onError: (e: unknown) => void;
  /** hides the secret values the job uses (secretMask.ts), before a line is counted or kept */
  mask?: Masker;
}

export class LogShipper {
  private buffer: LogLine[] = [];
  private bytes = 0;
  private truncated = false;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private stale = false;

  constructor(private readonly store: Store, private readonly fence: number, private readonly o: LogShipperOptions) {}

  push(stream: LogLine['stream'], line: string): void {
    if (this.truncated || this.stale) return;
    if (this.o.mask) line = this.o.mask(line);
    this.bytes += Buffer.byteLength(line) + 1;
    if (this.bytes > this.o.maxBytes) {
      this.truncated = true;
      this.buffer.push({ stream: 'system', ts: Date.now(), line: `[gantry] log truncated: this attempt wrote more than ${this.o.maxBytes} bytes` });
    } else {
      this.buffer.push({ stream, ts: Date.now(), line });
    }
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
      try {
        await this.store.appendLogs(this.fence, batch);
      } catch (e) {
        if (e instanceof StaleFenceError) {
          this.stale = true;
          this.o.onStale();
        } else this.o.onError(e);
      }
    });
    return this.flushing;
  }
}
