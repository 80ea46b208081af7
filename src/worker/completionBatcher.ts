// Batches attempt completions: one completes at once; those that finish while a
// batch is being written go together in the next transaction (one commit, one
// fsync, for many jobs). No added latency when the worker is not busy.
import { StaleFenceError, type AttemptOutcome, type Job, type LogLine, type Store } from '../store/types.js';

interface Pending {
  item: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] };
  resolve: (j: Job) => void;
  reject: (e: unknown) => void;
}

export class CompletionBatcher {
  private queue: Pending[] = [];
  private writing = false;

  constructor(
    private readonly store: Store,
    /** wraps the store call (retries through transient failures) */
    private readonly call: <T>(fn: () => Promise<T>) => Promise<T>,
    private readonly maxBatch = 100,
  ) {}

  /** Resolves with the completed job, rejects with StaleFenceError if the attempt was not current. */
  complete(fence: number, outcome: AttemptOutcome, lines?: LogLine[]): Promise<Job> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item: { fence, outcome, lines }, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const results = await this.call(() => this.store.completeAttempts(batch.map((p) => p.item)));
        results.forEach((r, i) => (r instanceof StaleFenceError ? batch[i]!.reject(r) : batch[i]!.resolve(r)));
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.writing = false;
  }
}
