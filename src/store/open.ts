// Opens the store a `--db` value names: a postgres:// URL (the distributed
// store) or a file path (the embedded SQLite store). Migrates before returning.
import path from 'node:path';
import fs from 'node:fs';
import type { Store } from './types.js';
import { SqliteStore } from './sqlite/index.js';
import { PostgresStore } from './postgres/index.js';

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//.test(db);
}

/** PostgreSQL errors that mean "not now" rather than "never": the server is starting, restarting or full. */
function isTransientPgError(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', '57P03', '57P01', '53300', '08006', '08001'].includes(code) || /Connection terminated/.test(String(e));
}

/**
 * Opens the store; a PostgreSQL server that is starting or restarting is waited
 * for, with backoff, up to `waitMs` (a worker started with its database should not exit).
 */
export async function openStore(db: string, waitMs = 30_000): Promise<Store> {
  if (isPostgresUrl(db)) {
    const deadline = Date.now() + waitMs;
    for (let delay = 200; ; delay = Math.min(delay * 2, 3_000)) {
      const store = new PostgresStore(db);
      try {
        await store.migrate();
        return store;
      } catch (e) {
        await store.close().catch(() => undefined);
        if (!isTransientPgError(e) || Date.now() + delay > deadline) throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
  const file = path.resolve(db);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const store = new SqliteStore(file);
  await store.migrate();
  return store;
}
