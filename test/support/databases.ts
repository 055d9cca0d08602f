import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A database the suite runs against: the embedded PGlite, or a fresh PostgreSQL database. */
export interface TestDatabase {
  name: 'pglite' | 'postgres';
  /** null selects PGlite. */
  databaseUrl: string | null;
  /** Drop the PostgreSQL database made for this test file. */
  drop(): Promise<void>;
}

const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** Return the URL of the PostgreSQL server the tests use, from DMARCDESK_TEST_DATABASE_URL if set. */
export function testPostgresUrl(): string {
  return process.env.DMARCDESK_TEST_DATABASE_URL ?? DEFAULT_POSTGRES_URL;
}

/**
 * Create an empty PostgreSQL database for one test file, so that files never see each other's
 * rows or pg-boss schema. Fails when PostgreSQL is not reachable: the suite must run on both.
 */
export async function createPostgresDatabase(): Promise<TestDatabase> {
  const adminUrl = testPostgresUrl();
  const name = `dmarcdesk_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect().catch((error: Error) => {
    throw new Error(
      `PostgreSQL is not reachable at ${adminUrl} (${error.message}); start it or set DMARCDESK_TEST_DATABASE_URL.`,
    );
  });
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name: 'postgres',
    databaseUrl: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export function pgliteDatabase(): TestDatabase {
  return { name: 'pglite', databaseUrl: null, async drop() {} };
}

/** Both storage engines, in the order the suites run them. */
export const DATABASE_ENGINES = ['pglite', 'postgres'] as const;

export async function openTestDatabase(
  engine: (typeof DATABASE_ENGINES)[number],
): Promise<TestDatabase> {
  return engine === 'pglite' ? pgliteDatabase() : createPostgresDatabase();
}
