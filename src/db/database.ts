import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { fromPglite } from 'pg-boss';
import type { Logger } from 'pino';
import { ensureDataDir } from './data-dir.ts';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.ts';

/** Anything that runs one SQL statement with parameters: the database or an open transaction. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>;
}

/**
 * The `executeSql` shape pg-boss takes in `send(..., { db })`, so that a job is enqueued
 * inside the caller's transaction and exists only if that transaction commits.
 */
export interface JobQueueSqlAdapter {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export interface Transaction extends Queryable {
  readonly jobSql: JobQueueSqlAdapter;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Run `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** The PGlite instance, for pg-boss's PGlite backend; null on PostgreSQL. */
  readonly pglite: PGlite | null;
  /** The connection string, for pg-boss's own pool; null on PGlite. */
  readonly connectionString: string | null;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL connection string; when null, PGlite in `dataDir`/pglite is used. */
  databaseUrl: string | null;
  dataDir: string;
  logger: Logger;
  /** Pool size on PostgreSQL, default 10. */
  maxConnections?: number;
  /** PGlite only: open in memory instead of a folder (tests). */
  inMemory?: boolean;
}

/** Open the configured database. Migrations are applied separately by `migrate`. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options);
  return openPglite(options);
}

async function openPostgres(
  connectionString: string,
  options: OpenDatabaseOptions,
): Promise<Database> {
  const pool = new pg.Pool({ connectionString, max: options.maxConnections ?? 10 });
  pool.on('error', (error) =>
    options.logger.error({ err: error }, 'idle PostgreSQL client failed'),
  );
  // Fail at start, with the server's own message, rather than on the first request.
  const client = await pool.connect();
  client.release();

  return {
    kind: 'postgres',
    pglite: null,
    connectionString,
    async query<Row>(sql: string, params?: unknown[]) {
      const result = await pool.query(sql, params);
      return result.rows as Row[];
    },
    async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
      const connection = await pool.connect();
      const tx: Transaction = {
        async query<Row>(sql: string, params?: unknown[]) {
          const result = await connection.query(sql, params);
          return result.rows as Row[];
        },
        jobSql: {
          async executeSql(text: string, values?: unknown[]) {
            const result = await connection.query(text, values);
            return { rows: result.rows };
          },
        },
      };
      try {
        await connection.query('BEGIN');
        const value = await work(tx);
        await connection.query('COMMIT');
        return value;
      } catch (error) {
        await connection.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        connection.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}

async function openPglite(options: OpenDatabaseOptions): Promise<Database> {
  let lock: DataDirLock | null = null;
  let pglite: PGlite;
  if (options.inMemory) {
    pglite = await PGlite.create();
  } else {
    ensureDataDir(options.dataDir);
    // PGlite has no protection against a second process opening the same folder, and two
    // writers corrupt it, so the folder is locked for the life of this process.
    lock = acquireDataDirLock(options.dataDir);
    try {
      pglite = await PGlite.create(`${options.dataDir}/pglite`);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  return {
    kind: 'pglite',
    pglite,
    connectionString: null,
    async query<Row>(sql: string, params?: unknown[]) {
      const result = await pglite.query<Row>(sql, params);
      return result.rows;
    },
    // PGlite runs one session; its transaction() holds a lock that makes every other query,
    // pg-boss's included, wait until the transaction ends.
    async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
      return pglite.transaction(async (inner) => {
        const tx: Transaction = {
          async query<Row>(sql: string, params?: unknown[]) {
            const result = await inner.query<Row>(sql, params);
            return result.rows;
          },
          jobSql: fromPglite(inner),
        };
        return work(tx);
      });
    },
    async close() {
      await pglite.close();
      lock?.release();
    },
  };
}
