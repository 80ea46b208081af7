// Event retention, as both stores run it: the outbox loses its oldest events,
// a batch at a time, when they are older than the retention age or beyond the
// newest `keep` ids, but never one the notify duty has not read yet (its
// 'events' cursor: a notification still to be queued needs its event). Only a
// prefix goes (the first young event stops a batch), so "every id up to
// `through` is gone" holds and a reader below it knows it missed events.
// Each batch reads at most `limit` rows in id order: no index beyond the key.

/**
 * The end of the next batch (both dialects; `ph(i)`: the i-th placeholder, from
 * 1: keep, before, limit): `last`, the highest id of the batch's rows, and
 * `stop`, the first among them that must stay (null: none).
 */
export function pruneHeadSql(ph: (i: number) => string): string {
  return `SELECT max(h.id) AS last, min(CASE WHEN h.id > (SELECT coalesce(max(id), 0) FROM events) - ${ph(1)} AND h.ts >= ${ph(2)} THEN h.id END) AS stop
    FROM (SELECT id, ts FROM events WHERE id <= (SELECT position FROM notify_cursors WHERE name = 'events') ORDER BY id LIMIT ${ph(3)}) h`;
}

/** The last id the batch deletes (0: nothing to delete). */
export function pruneEnd(head: { last: number | string | null; stop: number | string | null } | undefined): number {
  if (!head || head.last === null) return 0;
  return head.stop !== null ? Number(head.stop) - 1 : Number(head.last);
}

export const HORIZON_SQL = `SELECT (SELECT through FROM events_pruned WHERE id = 1) AS through, (SELECT min(id) FROM events) AS oldest`;
