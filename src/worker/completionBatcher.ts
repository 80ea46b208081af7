// Batches attempt completions: one completes at once; those that finish while a
// batch is being written go together in the next transaction (one commit, one
// fsync, for many jobs). No added latency when the worker is not busy. When the
// worker has room, the batch also claims its next jobs in the same transaction
// (Store.completeAndClaim): the slots the batch frees are filled without a
// wake-up or a round trip of their own.
import { StaleFenceError, type AttemptOutcome, type ClaimedJob, type ClaimRequest, type Job, type LogLine, type Store } from '../store/types.js';

interface Pending {
  item: { fence: number; outcome: AttemptOutcome; lines?: LogLine[] };
  resolve: (j: Job) => void;
  reject: (e: unknown) => void;
}

/** How a batch claims for its worker. */
export interface BatchClaim {
  /**
   * Whether the batch of these attempts claims with its completion (null: no, nothing it completes can
   * make jobs ready); if so, what to claim is asked when the store makes the claim. `claimed` answers every
   * batch that was given a function.
   */
  request(fences: number[]): (() => Promise<ClaimRequest | null>) | null;
  /** what the request got; `ok` false: the batch failed, nothing was claimed */
  claimed(jobs: ClaimedJob[], fences: number[], ok: boolean): void;
}

export class CompletionBatcher {
  private queue: Pending[] = [];
  private writing = false;

  constructor(
    private readonly store: Store,
    /** wraps the store call (retries through transient failures) */
    private readonly call: <T>(fn: () => Promise<T>) => Promise<T>,
    private readonly claim: BatchClaim | null = null,
    private readonly maxBatch = 100,
  ) {}

  /** Resolves with the completed job, rejects with StaleFenceError if the attempt was not current. */
  complete(fence: number, outcome: AttemptOutcome, lines?: LogLine[]): Promise<Job> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item: { fence, outcome, lines }, resolve, reject });
      if (this.writing) return;
      this.writing = true;
      // SQLite writes synchronously: without a pause no batch would ever form. The attempts that end
      // in this turn of the event loop commit together (a commit per job was most of the store's cost).
      if (this.store.dialect === 'sqlite') setImmediate(() => void this.drain());
      else void this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      const items = batch.map((p) => p.item);
      const fences = items.map((it) => it.fence);
      const req = this.claim ? this.claim.request(fences) : null;
      let claimed: ClaimedJob[] = [];
      let ok = false;
      try {
        let results: (Job | StaleFenceError)[];
        if (req) ({ completed: results, claimed } = await this.call(() => this.store.completeAndClaim(items, req)));
        else results = await this.call(() => this.store.completeAttempts(items));
        ok = true;
        results.forEach((r, i) => (r instanceof StaleFenceError ? batch[i]!.reject(r) : batch[i]!.resolve(r)));
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
      if (req) this.claim!.claimed(claimed, fences, ok);
    }
    this.writing = false;
  }
}
