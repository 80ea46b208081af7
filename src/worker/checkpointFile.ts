// A command's checkpoint file ($GANTRY_CHECKPOINT). Before the command starts
// it holds the job's last checkpoint (what an earlier attempt left there, byte
// for byte as text); whatever the job writes there is saved to the store while
// it runs (each heartbeat looks, cheaply: one stat) and once more when it ends,
// failed or not, so the next attempt starts from it. The store keeps the file's
// text as a JSON string. An empty file is never saved: it is what a file being
// rewritten in place looks like (a job with a large checkpoint writes a temp
// file and renames it over $GANTRY_CHECKPOINT).
import fs from 'node:fs/promises';
import { statSync, type BigIntStats } from 'node:fs';
import { MAX_CHECKPOINT_BYTES } from '../store/types.js';
import { openJobFile } from './attemptFiles.js';

export class CheckpointFile {
  /** the file's stat signature when it was last saved or written here: an unchanged file is not read again */
  private seen: string | null = null;
  /** the text last saved or written: a file rewritten with the same text is not saved again */
  private text: string | null;
  /** whether the file may exist (written here, or seen): otherwise close() has nothing to delete */
  private present = false;
  private chain: Promise<void> = Promise.resolve();
  private pending: Promise<void> | null = null;
  private closed = false;
  private lastReport = '';

  private constructor(
    readonly path: string,
    initial: string | null,
    private readonly save: (text: string) => Promise<void>,
    private readonly report: (message: string) => void,
    /** the job's user when it is not the worker's: owns the file, which is read only if it still does */
    private readonly owner: number | null,
  ) {
    this.text = initial;
  }

  /** The file of one attempt, holding `checkpoint` (the job's last one) when there is one. */
  static async create(
    file: string,
    checkpoint: unknown,
    save: (text: string) => Promise<void>,
    report: (message: string) => void,
    owner: { uid: number; gid: number } | null = null,
  ): Promise<CheckpointFile> {
    // A handler's checkpoint (any JSON) reaches a command as its JSON text.
    const initial = checkpoint === null || checkpoint === undefined ? null : typeof checkpoint === 'string' ? checkpoint : JSON.stringify(checkpoint);
    const cp = new CheckpointFile(file, initial, save, report, owner?.uid ?? null);
    if (initial !== null) {
      await fs.writeFile(file, initial, { mode: 0o600 });
      if (owner) await fs.chown(file, owner.uid, owner.gid);
      cp.present = true;
      cp.seen = signature(await fs.stat(file, { bigint: true }));
    }
    return cp;
  }

  /**
   * Saves the file when it changed since the last save. Never rejects: failures
   * go to `report`. Checks run one at a time; a heartbeat's check while one is
   * under way is that one. `final` reads the file even if its stat looks the
   * same (coarse mtimes), so the attempt's last write is never missed.
   */
  sync(o: { final?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!o.final && this.pending) return this.pending;
    const p = this.chain.then(() => this.check(o.final === true));
    this.chain = p;
    if (!o.final) {
      this.pending = p;
      void p.finally(() => {
        if (this.pending === p) this.pending = null;
      });
    }
    return p;
  }

  /** Ends the attempt's use of the file: a last save (not for a revoked attempt, whose fence is stale), then deletes it. */
  async close(o: { save: boolean }): Promise<void> {
    if (this.closed) return;
    if (o.save) await this.sync({ final: true });
    else await this.chain;
    this.closed = true;
    if (this.present) await fs.unlink(this.path).catch(() => undefined);
  }

  private async check(final: boolean): Promise<void> {
    try {
      // Most commands never write one: a stat that answers "absent" costs far less than an ENOENT exception per job.
      const st: BigIntStats | undefined = statSync(this.path, { bigint: true, throwIfNoEntry: false });
      if (!st) return; // not written (yet), or being renamed into place
      this.present = true;
      const sig = signature(st);
      if (sig === this.seen && !final) return;
      // The file's bytes bound its JSON from below: a file past the limit is not even read.
      if (st.size > BigInt(MAX_CHECKPOINT_BYTES)) {
        this.seen = sig;
        throw new Error(`$GANTRY_CHECKPOINT holds ${st.size} bytes, the limit is ${MAX_CHECKPOINT_BYTES}`);
      }
      const fh = await openJobFile(this.path, this.owner);
      let text: string;
      try {
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
      if (text === '' || text === this.text) {
        this.seen = sig;
        return;
      }
      await this.save(text);
      this.text = text;
      this.seen = sig;
      this.lastReport = '';
    } catch (e) {
      const message = `checkpoint not saved: ${e instanceof Error ? e.message : String(e)}`;
      // once per cause: a store that is down should not fill the job's log a line per heartbeat
      if (message !== this.lastReport) this.report(message);
      this.lastReport = message;
    }
  }
}

/** Changes whenever the file is rewritten or replaced (rename: a new inode). */
function signature(st: BigIntStats): string {
  return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}
