// Dependency counting without loading the graph (pg-boss navigator style): each
// job keeps deps_total / deps_ok / deps_bad; a finished upstream bumps its
// dependents' counters with one indexed update, and only dependents whose
// counters are complete are looked at. Runs inside the caller's transaction.
//
// Trigger rules: see partitionSettled in ../rules.ts.
import type Database from 'better-sqlite3';
import { partitionSettled, SKIP_MESSAGES } from '../rules.js';

export class DependencyResolver {
  private readonly bumpOk: Database.Statement;
  private readonly bumpBad: Database.Statement;
  private readonly settled: Database.Statement;
  private readonly queue: Database.Statement;
  private readonly skip: Database.Statement;
  private readonly recountStmt: Database.Statement;

  constructor(db: Database.Database) {
    const bump = (col: string) =>
      db.prepare(
        `UPDATE jobs SET ${col} = ${col} + c.n
         FROM (SELECT job_id, count(*) AS n FROM job_deps WHERE upstream_id IN (SELECT value FROM json_each(?)) GROUP BY job_id) AS c
         WHERE jobs.id = c.job_id RETURNING jobs.id`,
      );
    this.bumpOk = bump('deps_ok');
    this.bumpBad = bump('deps_bad');
    this.settled = db.prepare(
      `SELECT id, trigger_rule, deps_bad FROM jobs
       WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending' AND deps_ok + deps_bad = deps_total
         AND run_id IN (SELECT id FROM runs WHERE state = 'running')`,
    );
    this.queue = db.prepare(`UPDATE jobs SET state = 'queued', enqueued_at = ? WHERE id IN (SELECT value FROM json_each(?))`);
    this.skip = db.prepare(
      `UPDATE jobs SET state = 'skipped', skip_reason = ?, finished_at = ?, error = ? WHERE id IN (SELECT value FROM json_each(?))`,
    );
    // Recomputes counters from the current states of upstreams (after a retry reset).
    this.recountStmt = db.prepare(
      `UPDATE jobs SET
         deps_ok = (SELECT count(*) FROM job_deps d JOIN jobs u ON u.id = d.upstream_id
                    WHERE d.job_id = jobs.id AND (u.state = 'succeeded' OR (u.state = 'skipped' AND u.skip_reason = 'outputs_exist'))),
         deps_bad = (SELECT count(*) FROM job_deps d JOIN jobs u ON u.id = d.upstream_id
                     WHERE d.job_id = jobs.id AND (u.state IN ('failed', 'cancelled') OR (u.state = 'skipped' AND u.skip_reason <> 'outputs_exist')))
       WHERE id IN (SELECT value FROM json_each(?))`,
    );
  }

  /** Adds finished upstreams to their dependents' counters; returns the dependents touched. */
  countInto(good: number[], bad: number[]): number[] {
    const touched: number[] = [];
    if (good.length) for (const r of this.bumpOk.all(JSON.stringify(good)) as { id: number }[]) touched.push(r.id);
    if (bad.length) for (const r of this.bumpBad.all(JSON.stringify(bad)) as { id: number }[]) touched.push(r.id);
    return touched;
  }

  /** Queues or skips the given jobs whose upstreams have all settled. */
  resolve(ids: number[], now: number): { queued: number[]; skipped: number[] } {
    if (ids.length === 0) return { queued: [], skipped: [] };
    const rows = this.settled.all(JSON.stringify([...new Set(ids)])) as { id: number; trigger_rule: string; deps_bad: number }[];
    const { queued, skipUpstream, skipTrigger } = partitionSettled(rows);
    if (queued.length) this.queue.run(now, JSON.stringify(queued));
    if (skipUpstream.length) this.skip.run('upstream', now, SKIP_MESSAGES.upstream, JSON.stringify(skipUpstream));
    if (skipTrigger.length) this.skip.run('trigger', now, SKIP_MESSAGES.trigger, JSON.stringify(skipTrigger));
    return { queued, skipped: [...skipUpstream, ...skipTrigger] };
  }

  recount(ids: number[]): void {
    this.recountStmt.run(JSON.stringify(ids));
  }
}
