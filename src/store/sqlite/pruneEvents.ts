// Event retention on SQLite (see ../eventPrune.ts): one batch per call, in one transaction.
import type Database from 'better-sqlite3';
import type { EventHorizon, EventPrune } from '../types.js';
import { HORIZON_SQL, pruneEnd, pruneHeadSql } from '../eventPrune.js';

const HEAD = pruneHeadSql(() => '?');

export function pruneEvents(db: Database.Database, o: { before: number; keep: number; limit: number }): EventPrune {
  return db
    .transaction((): EventPrune => {
      const end = pruneEnd(db.prepare(HEAD).get(o.keep, o.before, o.limit) as { last: number | null; stop: number | null });
      if (end <= 0) return { deleted: 0, through: eventHorizon(db).prunedThrough };
      const deleted = db.prepare(`DELETE FROM events WHERE id <= ?`).run(end).changes;
      db.prepare(`UPDATE events_pruned SET through = max(through, ?) WHERE id = 1`).run(end);
      return { deleted, through: eventHorizon(db).prunedThrough };
    })
    .immediate();
}

export function eventHorizon(db: Database.Database): EventHorizon {
  const r = db.prepare(HORIZON_SQL).get() as { through: number | null; oldest: number | null };
  return { prunedThrough: r.through ?? 0, oldest: r.oldest };
}
