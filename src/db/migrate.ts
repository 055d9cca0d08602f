import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Database } from './database.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

// Any constant works; it only has to be the same in every process of this product.
const MIGRATION_LOCK_KEY = 720_415_001;

export interface Migration {
  version: string;
  sql: string;
}

/** Read the migration files in order of their numeric prefix. */
export function loadMigrations(directory = MIGRATIONS_DIR): Migration[] {
  return readdirSync(directory)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: file.replace(/\.sql$/, ''),
      sql: readFileSync(`${directory}/${file}`, 'utf8'),
    }));
}

/**
 * Apply every migration not yet recorded in schema_migrations, each in its own transaction.
 * On PostgreSQL an advisory lock makes processes that start together apply them once.
 */
export async function migrate(db: Database, logger: Logger): Promise<string[]> {
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);

  const applied: string[] = [];
  for (const migration of loadMigrations()) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [
        migration.version,
      ]);
      if (rows.length > 0) return true;
      for (const statement of splitStatements(migration.sql)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
      return false;
    });
    if (!done) {
      applied.push(migration.version);
      logger.info({ migration: migration.version }, 'applied database migration');
    }
  }
  return applied;
}

/**
 * Split a migration file into statements at semicolons outside quoted strings, dollar-quoted
 * bodies (function definitions) and comments. Each statement runs alone because PGlite's
 * parameterless query path takes one statement at a time.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  let index = 0;
  while (index < sql.length) {
    const rest = sql.slice(index);
    const dollarTag = /^\$[a-zA-Z_]*\$/.exec(rest)?.[0];
    let token: string;
    if (rest.startsWith('--')) {
      const end = rest.indexOf('\n');
      token = end === -1 ? rest : rest.slice(0, end + 1);
      index += token.length;
      continue;
    } else if (rest.startsWith("'")) {
      const match = /^'(?:[^']|'')*'/.exec(rest);
      token = match ? match[0] : rest;
    } else if (dollarTag) {
      const end = rest.indexOf(dollarTag, dollarTag.length);
      token = end === -1 ? rest : rest.slice(0, end + dollarTag.length);
    } else if (rest.startsWith(';')) {
      if (current.trim()) statements.push(current.trim());
      current = '';
      index += 1;
      continue;
    } else {
      token = rest[0]!;
    }
    current += token;
    index += token.length;
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}
