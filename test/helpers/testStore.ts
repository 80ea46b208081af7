// A fresh, migrated store for tests that drive a store (or the API over it)
// directly: SQLite in a temp folder, PostgreSQL in a schema of its own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import type { Clock, Store } from '../../src/store/types.js';
import { PG_URL, dropSchema, uniqueSchema } from './postgres.js';
import type { StoreName } from './cluster.js';

export interface TestStore {
  store: Store;
  /** a temp folder of the test's own (SQLite keeps its file there), removed by cleanup */
  dir: string;
  /** removes the folder and drops the schema; close the store first */
  cleanup(): Promise<void>;
}

export async function openTestStore(name: StoreName, o: { clock?: Clock; prefix?: string } = {}): Promise<TestStore> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), o.prefix ?? 'gantry-test-'));
  const removeDir = async () => fs.rmSync(dir, { recursive: true, force: true });
  let store: Store;
  let cleanup: () => Promise<void>;
  if (name === 'SQLite') {
    store = new SqliteStore(path.join(dir, 'gantry.db'), { clock: o.clock });
    cleanup = removeDir;
  } else {
    const schema = uniqueSchema();
    store = new PostgresStore(PG_URL, { schema, max: 4, clock: o.clock });
    cleanup = async () => {
      await dropSchema(schema);
      await removeDir();
    };
  }
  await store.migrate();
  return { store, dir, cleanup };
}
