import { describe, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/index.js';
import type { Clock } from '../../src/store/types.js';
import { storeContract } from './contract.js';
import { serviceContract } from './serviceContract.js';
import { namespaceContract } from './namespaceContract.js';
import { PG_URL, dropSchema, postgresAvailable, uniqueSchema } from '../helpers/postgres.js';

const available = await postgresAvailable();

/** A store in a schema of its own, reopened on the same schema. */
function postgresFactory() {
  const schema = uniqueSchema();
  const open = async (clock: Clock) => {
    const s = new PostgresStore(PG_URL, { clock, schema, max: 4 });
    await s.migrate();
    return s;
  };
  return { create: open, reopen: open, cleanup: () => dropSchema(schema) };
}

if (available) {
  storeContract('PostgreSQL', postgresFactory);
  serviceContract('PostgreSQL', postgresFactory);
  namespaceContract('PostgreSQL', postgresFactory);
} else {
  describe.skip('Store contract: PostgreSQL (unreachable)', () => it('skipped', () => undefined));
}
