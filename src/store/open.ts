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

export async function openStore(db: string): Promise<Store> {
  if (isPostgresUrl(db)) {
    const store = new PostgresStore(db);
    try {
      await store.migrate();
    } catch (e) {
      await store.close().catch(() => undefined);
      throw e;
    }
    return store;
  }
  const file = path.resolve(db);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const store = new SqliteStore(file);
  await store.migrate();
  return store;
}
