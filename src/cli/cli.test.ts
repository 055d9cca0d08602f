import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { pino } from 'pino';

import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import { openDatabase } from '../db/database.ts';
import { describeDatabaseFailure } from './database-errors.ts';

const CLI = fileURLToPath(new URL('./main.ts', import.meta.url));

for (const engine of DATABASE_ENGINES) {
  describe(`CLI database errors on ${engine}`, () => {
    let database: TestDatabase;
    let dataDir = '';
    let accountId = '';

    /** Run the CLI on the test database and return its exit code and output. */
    function cli(...args: string[]) {
      const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '',
          DMARCDESK_DATA_DIR: dataDir,
          ...(database.databaseUrl ? { DMARCDESK_DATABASE_URL: database.databaseUrl } : {}),
        },
      });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
    }

    before(async () => {
      database = await openTestDatabase(engine);
      dataDir = mkdtempSync(join(tmpdir(), 'dmarcdesk-cli-'));
      const created = cli('account', 'create', '--name', 'CLI MSP');
      assert.equal(created.status, 0, created.stderr);
      accountId = JSON.parse(created.stdout).account.id;
    });

    after(async () => {
      rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    });

    test('duplicate email names the fix', () => {
      const first = cli('user', 'create', '--account', accountId, '--email', 'ops@cli.example');
      const second = cli('user', 'create', '--account', accountId, '--email', 'ops@cli.example');

      assert.equal(first.status, 0, first.stderr);
      assert.equal(second.status, 1);
      assert.equal(
        second.stderr,
        'dmarcdesk: A user with the email address ops@cli.example already exists. ' +
          'Choose another --email, or sign in as that user.',
      );
    });

    test('malformed account id is explained', () => {
      const result = cli('token', 'create', '--account', 'not-a-uuid');

      assert.equal(result.status, 1);
      assert.match(result.stderr, /--account "not-a-uuid" is not an id: ids are UUIDs/);
      assert.doesNotMatch(result.stderr, /invalid input syntax/);
    });

    test('driver errors become sentences', async () => {
      const db = await openDatabase({
        databaseUrl: database.databaseUrl,
        dataDir: '',
        logger: pino({ level: 'silent' }),
        inMemory: true,
      });
      const failureOf = async (sql: string) => {
        try {
          await db.query(sql);
        } catch (error) {
          return describeDatabaseFailure(error, 'test run');
        }
        return 'no error';
      };
      try {
        await db.query('CREATE TABLE cli_items (name text PRIMARY KEY, n integer)');
        await db.query("INSERT INTO cli_items VALUES ('a', 1)");

        const duplicate = await failureOf("INSERT INTO cli_items VALUES ('a', 2)");
        const malformed = await failureOf("INSERT INTO cli_items VALUES ('b', 'many')");

        assert.match(duplicate ?? '', /^test run: a record with the same value already exists/);
        assert.match(duplicate ?? '', /choose another value\.$/);
        assert.match(malformed ?? '', /^test run: a value is not in the form the database expects/);
        assert.equal(describeDatabaseFailure(new Error('plain'), 'test run'), null);
      } finally {
        await db.query('DROP TABLE IF EXISTS cli_items');
        await db.close();
      }
    });

    test('unknown account is explained', () => {
      const missing = '00000000-0000-4000-8000-000000000000';
      const result = cli('user', 'create', '--account', missing, '--email', 'x@cli.example');

      assert.equal(result.status, 1);
      assert.equal(
        result.stderr,
        `dmarcdesk: No MSSP account with id ${missing} exists. ` +
          'Run "dmarcdesk account list" to see the accounts and their ids.',
      );
      assert.doesNotMatch(result.stderr, /foreign key/);
    });
  });
}
