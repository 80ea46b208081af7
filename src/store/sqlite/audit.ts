// The SQLite audit insert, for transitions to call inside their transaction.
import type Database from 'better-sqlite3';
import type { AuditNote } from '../types.js';
import { auditInsertSql, auditValues } from '../audit.js';

const statements = new WeakMap<Database.Database, Database.Statement>();

export function insertAudit(db: Database.Database, note: AuditNote, at: number): void {
  let st = statements.get(db);
  if (!st) {
    st = db.prepare(auditInsertSql(() => '?'));
    statements.set(db, st);
  }
  st.run(...auditValues(note, at));
}
