import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import type { Clock } from '../../src/store/types.js';
import { storeContract } from './contract.js';
import { serviceContract } from './serviceContract.js';
import { namespaceContract } from './namespaceContract.js';

/** A store in a file of its own, reopened on the same file. */
function sqliteFactory(prefix: string) {
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const file = path.join(dir, 'gantry.db');
    const open = async (clock: Clock) => {
      const s = new SqliteStore(file, { clock });
      await s.migrate();
      return s;
    };
    return { create: open, reopen: open, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
  };
}

storeContract('SQLite', sqliteFactory('gantry-sqlite-'));
serviceContract('SQLite', sqliteFactory('gantry-sqlite-svc-'));
namespaceContract('SQLite', sqliteFactory('gantry-sqlite-ns-'));
