import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import pino from 'pino';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { JobDeferred, JobQueue, type JobOutcome } from './queue.ts';

const QUEUE = 'batch-test';
const logger = pino({ level: 'silent' });

interface StoredJob {
  state: string;
  retry_count: number;
  deferred: boolean;
  output: { message?: string } | null;
}

async function waitFor<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

for (const engine of DATABASE_ENGINES) {
  describe(`queue workBatch on ${engine}`, () => {
    let database: TestDatabase;
    let db: Database;
    let queue: JobQueue;

    before(async () => {
      database = await openTestDatabase(engine);
      db = await openDatabase({
        databaseUrl: database.databaseUrl,
        dataDir: '',
        logger,
        inMemory: true,
      });
      await migrate(db, logger);
      queue = new JobQueue(db, logger);
      await queue.start([
        {
          name: QUEUE,
          policy: 'standard',
          retryLimit: 1,
          retryDelaySeconds: 1,
          retryDelayMaxSeconds: 1,
          expireInSeconds: 60,
        },
      ]);
    });

    after(async () => {
      await queue?.stop();
      await db?.close();
      await database?.drop();
    });

    test('each job settles on its own', async () => {
      const outcomes: JobOutcome[] = [];
      queue.onOutcome((name, outcome) => {
        if (name === QUEUE) outcomes.push(outcome);
      });
      for (const name of ['done', 'broken', 'waiting', 'forgotten']) {
        await queue.enqueue(QUEUE, { name });
      }
      const batches: number[] = [];
      await queue.workBatch<{ name: string }>(
        QUEUE,
        async (jobs) => {
          batches.push(jobs.length);
          const results = new Map<string, unknown>();
          for (const job of jobs) {
            if (job.data.name === 'done') results.set(job.id, null);
            if (job.data.name === 'broken') results.set(job.id, new Error('broken job failed'));
            if (job.data.name === 'waiting') results.set(job.id, new JobDeferred(600, 'no slot'));
          }
          return results;
        },
        { batchSize: 10 },
      );

      const jobOf = (name: string) =>
        db.query<StoredJob>(
          `SELECT state::text AS state, retry_count, start_after > now() AS deferred, output
             FROM pgboss.job WHERE name = $1 AND data->>'name' = $2 ORDER BY created_on`,
          [QUEUE, name],
        );
      const broken = await waitFor(async () => {
        const [row] = await jobOf('broken');
        return row?.state === 'failed' ? row : undefined;
      }, 'the broken job to fail for good');
      const forgotten = await waitFor(async () => {
        const [row] = await jobOf('forgotten');
        return row?.state === 'failed' ? row : undefined;
      }, 'the forgotten job to fail for good');

      assert.equal(batches[0], 4);
      assert.equal(broken.retry_count, 1);
      assert.equal(broken.output?.message, 'broken job failed');
      assert.match(forgotten.output?.message ?? '', /returned no outcome for job/);
      const done = await jobOf('done');
      assert.deepEqual(
        done.map((row) => row.state),
        ['completed'],
      );
      const waiting = await jobOf('waiting');
      assert.deepEqual(
        waiting.map((row) => [row.state, row.deferred]),
        [
          ['completed', false],
          ['created', true],
        ],
      );
      assert.equal(outcomes.filter((outcome) => outcome === 'completed').length, 1);
      assert.equal(outcomes.filter((outcome) => outcome === 'deferred').length, 1);
      assert.equal(outcomes.filter((outcome) => outcome === 'retried').length, 2);
      assert.equal(outcomes.filter((outcome) => outcome === 'failed').length, 2);
    });
  });
}
