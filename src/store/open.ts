// Opens the store a `--db` value names: a file path (SQLite, the default) or,
// from the distributed issue on, a postgres:// URL. Migrates before returning.
import path from 'node:path';
import fs from 'node:fs';
import type { Store } from './types.js';
import { SqliteStore } from './sqlite/index.js';

export async function openStore(db: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(db)) throw new Error(`PostgreSQL stores are not supported yet: ${db}`);
  const file = path.resolve(db);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const store = new SqliteStore(file);
  await store.migrate();
  return store;
}
