import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';

import { pino } from 'pino';

import { openDatabase, type Database } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createAccount } from '../platform/accounts.ts';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import { FAILED_FOLDER, FolderWatcher, PROCESSED_FOLDER } from './folder-watcher.ts';
import { ReportIngestService } from './ingest.ts';
import { syntheticReport } from './synthetic-reports.ts';

const silent = pino({ level: 'silent' });
const SETTLE_MS = 300;

/** Wait until a file appears, polling, or fail after timeoutMs. */
async function waitForFile(path: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) assert.fail(`${path} did not appear within ${timeoutMs} ms`);
    await sleep(25);
  }
}

for (const engine of DATABASE_ENGINES) {
  describe(`folder watcher on ${engine}`, () => {
    let testDatabase: TestDatabase;
    let db: Database;
    let accountId = '';
    let ingest: ReportIngestService;
    let folder = '';
    let watcher: FolderWatcher;

    const rejectedCodes = async () =>
      (
        await db.query<{ reason_code: string }>(
          'SELECT reason_code FROM rejected_inputs ORDER BY reason_code',
        )
      ).map((row) => row.reason_code);

    before(async () => {
      testDatabase = await openTestDatabase(engine);
      db = await openDatabase({
        databaseUrl: testDatabase.databaseUrl,
        dataDir: '',
        logger: silent,
        inMemory: true,
      });
      await migrate(db, silent);
      accountId = (await createAccount(db, { name: 'Watched Folder MSP' })).id;
      ingest = new ReportIngestService(db, silent);
    });

    after(async () => {
      await db.close();
      await testDatabase.drop();
    });

    beforeEach(async () => {
      await db.query('DELETE FROM aggregate_reports');
      await db.query('DELETE FROM rejected_inputs');
      folder = mkdtempSync(join(tmpdir(), 'dmarcdesk-watch-'));
      mkdirSync(join(folder, PROCESSED_FOLDER));
      mkdirSync(join(folder, FAILED_FOLDER));
      watcher = new FolderWatcher({
        ingest,
        logger: silent,
        path: folder,
        accountId,
        pollSeconds: 3600,
        maxFileBytes: 1024 * 1024,
        keepBytes: 1024,
        settleMs: SETTLE_MS,
      });
    });

    afterEach(async () => {
      await watcher.stop();
      rmSync(folder, { recursive: true, force: true });
    });

    it('waits for a file still being copied', async () => {
      // A plain cp creates the file empty first and writes its content afterwards.
      const path = join(folder, 'copied.xml');
      writeFileSync(path, '');
      const first = await watcher.scan();
      assert.equal(first.unsettled, 1);
      assert.equal(first.failed, 0);
      assert.equal(existsSync(path), true);

      const xml = syntheticReport({ records: 20, reportId: 'copied-1' });
      appendFileSync(path, xml.subarray(0, 100));
      const second = await watcher.scan();
      assert.equal(second.unsettled, 1);
      appendFileSync(path, xml.subarray(100));

      // No further scan is requested: the watcher scans again once the file has settled.
      await waitForFile(join(folder, PROCESSED_FOLDER, 'copied.xml'));
      assert.deepEqual(readdirSync(join(folder, FAILED_FOLDER)), []);
      assert.deepEqual(await rejectedCodes(), []);
      const [row] = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM aggregate_reports',
      );
      assert.equal(row?.n, 1);
    });

    it('rejects a file that stays empty', async () => {
      const path = join(folder, 'empty.xml');
      writeFileSync(path, '');
      assert.equal((await watcher.scan()).unsettled, 1);
      assert.deepEqual(await rejectedCodes(), []);

      await waitForFile(join(folder, FAILED_FOLDER, 'empty.xml'));
      assert.deepEqual(await rejectedCodes(), ['empty']);
    });

    it('reads an old file at once', async () => {
      const path = join(folder, 'old.xml');
      writeFileSync(path, syntheticReport({ records: 5, reportId: 'old-1' }));
      const minuteAgo = new Date(Date.now() - 60_000);
      utimesSync(path, minuteAgo, minuteAgo);

      const summary = await watcher.scan();
      assert.equal(summary.processed, 1);
      assert.equal(summary.unsettled, 0);
      assert.equal(existsSync(join(folder, PROCESSED_FOLDER, 'old.xml')), true);
    });

    it('reads a renamed file once settled', async () => {
      const xml = syntheticReport({ records: 5, reportId: 'renamed-1' });
      writeFileSync(join(folder, 'renamed.xml.tmp'), xml);
      assert.equal((await watcher.scan()).unsettled, 0);

      renameSync(join(folder, 'renamed.xml.tmp'), join(folder, 'renamed.xml'));
      await watcher.scan();
      await waitForFile(join(folder, PROCESSED_FOLDER, 'renamed.xml'));
      assert.deepEqual(await rejectedCodes(), []);
    });
  });
}
