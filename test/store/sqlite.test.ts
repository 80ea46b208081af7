import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { storeContract } from './contract.js';
import { serviceContract } from './serviceContract.js';

storeContract('SQLite', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-sqlite-'));
  const file = path.join(dir, 'gantry.db');
  const open = async (clock: import('../../src/store/types.js').Clock) => {
    const s = new SqliteStore(file, { clock });
    await s.migrate();
    return s;
  };
  return { create: open, reopen: open, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

serviceContract('SQLite', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-sqlite-svc-'));
  const file = path.join(dir, 'gantry.db');
  const open = async (clock: import('../../src/store/types.js').Clock) => {
    const s = new SqliteStore(file, { clock });
    await s.migrate();
    return s;
  };
  return { create: open, reopen: open, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});
