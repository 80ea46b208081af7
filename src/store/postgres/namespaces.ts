// Namespace settings on PostgreSQL: one row per configured namespace.
import type pg from 'pg';
import type { NamespaceSettings, NamespaceSettingsPatch } from '../types.js';
import { defaultNamespaceSettings, mergeNamespaceSettings, namespaceValues, toNamespaceSettings, type NamespaceRowDb } from '../namespaceRows.js';

const COLUMNS = 'namespace, run_user, run_group, public, output_roots';

export async function getNamespaceSettings(db: pg.Pool | pg.PoolClient, namespace: string, forUpdate = false): Promise<NamespaceSettings | null> {
  const { rows } = await db.query<NamespaceRowDb>(`SELECT ${COLUMNS} FROM namespaces WHERE namespace = $1${forUpdate ? ' FOR UPDATE' : ''}`, [namespace]);
  return rows[0] ? toNamespaceSettings(rows[0]) : null;
}

export async function setNamespaceSettings(pool: pg.Pool, namespace: string, patch: NamespaceSettingsPatch, now: number): Promise<NamespaceSettings> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    // the row exists and is locked before it is read: concurrent changes of different fields both stay
    await c.query(`INSERT INTO namespaces (namespace, updated_at) VALUES ($1, $2) ON CONFLICT (namespace) DO NOTHING`, [namespace, now]);
    const next = mergeNamespaceSettings((await getNamespaceSettings(c, namespace, true)) ?? defaultNamespaceSettings(namespace), patch);
    await c.query(`UPDATE namespaces SET run_user = $2, run_group = $3, public = $4, output_roots = $5, updated_at = $6 WHERE namespace = $1`, [
      ...namespaceValues(next),
      now,
    ]);
    await c.query('COMMIT');
    return next;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

export async function listNamespaceSettings(pool: pg.Pool): Promise<NamespaceSettings[]> {
  return (await pool.query<NamespaceRowDb>(`SELECT ${COLUMNS} FROM namespaces ORDER BY namespace`)).rows.map(toNamespaceSettings);
}
