// PostgreSQL for tests: each store factory works in a schema of its own, dropped
// afterwards. In CI (GANTRY_REQUIRE_POSTGRES=1, set by .ci/run) an unreachable
// server fails the suite; elsewhere its tests are skipped with a visible notice.
import pg from 'pg';

export const PG_URL = process.env.GANTRY_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
export const PG_REQUIRED = process.env.GANTRY_REQUIRE_POSTGRES === '1';

export async function postgresAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch (e) {
    if (PG_REQUIRED) throw new Error(`PostgreSQL is required here (GANTRY_REQUIRE_POSTGRES=1) but ${PG_URL} is unreachable: ${(e as Error).message}`);
    console.warn(`\n*** PostgreSQL at ${PG_URL} is unreachable: skipping the PostgreSQL tests (set GANTRY_TEST_PG) ***\n`);
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function uniqueSchema(prefix = 'gantry_test'): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}
