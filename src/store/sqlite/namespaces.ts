// Namespace settings on SQLite: one row per configured namespace.
import type Database from 'better-sqlite3';
import type { NamespaceSettings, NamespaceSettingsPatch } from '../types.js';
import { defaultNamespaceSettings, mergeNamespaceSettings, namespaceValues, toNamespaceSettings, type NamespaceRowDb } from '../namespaceRows.js';

const COLUMNS = 'namespace, run_user, run_group, public, output_roots';

export function getNamespaceSettings(db: Database.Database, namespace: string): NamespaceSettings | null {
  const row = db.prepare(`SELECT ${COLUMNS} FROM namespaces WHERE namespace = ?`).get(namespace) as NamespaceRowDb | undefined;
  return row ? toNamespaceSettings(row) : null;
}

export function setNamespaceSettings(db: Database.Database, namespace: string, patch: NamespaceSettingsPatch, now: number): NamespaceSettings {
  // IMMEDIATE: two admins changing different fields at once both keep their change
  return db
    .transaction(() => {
      const next = mergeNamespaceSettings(getNamespaceSettings(db, namespace) ?? defaultNamespaceSettings(namespace), patch);
      const [ns, user, group, pub, roots] = namespaceValues(next);
      db.prepare(
        `INSERT INTO namespaces (${COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (namespace) DO UPDATE SET run_user = excluded.run_user, run_group = excluded.run_group,
           public = excluded.public, output_roots = excluded.output_roots, updated_at = excluded.updated_at`,
      ).run(ns, user, group, pub ? 1 : 0, roots, now);
      return next;
    })
    .immediate();
}

export function listNamespaceSettings(db: Database.Database): NamespaceSettings[] {
  return (db.prepare(`SELECT ${COLUMNS} FROM namespaces ORDER BY namespace`).all() as NamespaceRowDb[]).map(toNamespaceSettings);
}
