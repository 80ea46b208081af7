// The PostgreSQL audit insert, for transitions to call inside their transaction.
import type pg from 'pg';
import type { AuditNote } from '../types.js';
import { auditInsertSql, auditValues } from '../audit.js';

const INSERT = auditInsertSql((i) => `$${i}`);

export async function insertAudit(c: pg.PoolClient, note: AuditNote, at: number): Promise<void> {
  await c.query({ name: 'gantry_audit_insert', text: INSERT, values: auditValues(note, at) });
}
