// Event retention on PostgreSQL (see ../eventPrune.ts): one batch per call, in one transaction.
import type pg from 'pg';
import type { EventHorizon, EventPrune } from '../types.js';
import { HORIZON_SQL, pruneEnd, pruneHeadSql } from '../eventPrune.js';

const HEAD = pruneHeadSql((i) => `$${i}`);

type Query = Pick<pg.PoolClient, 'query'>;

export async function pruneEvents(c: Query, o: { before: number; keep: number; limit: number }): Promise<EventPrune> {
  const head = await c.query<{ last: string | null; stop: string | null }>(HEAD, [o.keep, o.before, o.limit]);
  const end = pruneEnd(head.rows[0]);
  if (end <= 0) return { deleted: 0, through: (await eventHorizon(c)).prunedThrough };
  const deleted = await c.query(`DELETE FROM events WHERE id <= $1`, [end]);
  const r = await c.query<{ through: string }>(`UPDATE events_pruned SET through = greatest(through, $1) WHERE id = 1 RETURNING through`, [end]);
  return { deleted: deleted.rowCount ?? 0, through: Number(r.rows[0]?.through ?? end) };
}

export async function eventHorizon(c: Query): Promise<EventHorizon> {
  const r = (await c.query<{ through: string | null; oldest: string | null }>(HORIZON_SQL)).rows[0];
  return { prunedThrough: Number(r?.through ?? 0), oldest: r?.oldest === null || r?.oldest === undefined ? null : Number(r.oldest) };
}
