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
import { isHaloPsaError } from '../halopsa/index.ts';
import { JobDeferred } from '../jobs/queue.ts';
import { RateBudget, RateBudgetRefusal, type RateBudgetSettings } from './rate-budget.ts';

const logger = pino({ level: 'silent' });

// A window far longer than any test, so no grant leaves it while a test runs.
const LONG_WINDOW: RateBudgetSettings = {
  limit: 10,
  windowSeconds: 3600,
  standardReserve: 2,
  backgroundReserve: 5,
  minPauseSeconds: 1,
  maxWaitMs: 0,
};

const instance = (name: string) => `http://${name}.halopsa.test`;

async function grantCount(db: Database, instanceKey: string): Promise<number> {
  const [row] = await db.query<{ count: string }>(
    'SELECT count(*) AS count FROM halopsa_rate_grants WHERE instance_key = $1',
    [instanceKey],
  );
  return Number(row!.count);
}

for (const engine of DATABASE_ENGINES) {
  describe(`rate budget on ${engine}`, () => {
    let database: TestDatabase;
    let first: Database;
    // On PostgreSQL a second pool is a second process as far as locking goes; PGlite has one
    // session, so both budgets share it there.
    let second: Database;

    before(async () => {
      database = await openTestDatabase(engine);
      first = await openDatabase({
        databaseUrl: database.databaseUrl,
        dataDir: '',
        logger,
        inMemory: true,
      });
      await migrate(first, logger);
      second =
        database.databaseUrl === null
          ? first
          : await openDatabase({ databaseUrl: database.databaseUrl, dataDir: '', logger });
    });

    after(async () => {
      if (second !== first) await second.close();
      await first.close();
      await database.drop();
    });

    test('two pools never exceed the limit', async () => {
      const key = instance('race');
      const budgets = [new RateBudget(first, LONG_WINDOW), new RateBudget(second, LONG_WINDOW)];
      // 40 urgent requests race for 10 slots, half through each pool.
      const decisions = await Promise.all(
        Array.from({ length: 40 }, (_, index) => budgets[index % 2]!.tryTake(key, 'urgent')),
      );
      const granted = decisions.filter((decision) => decision.granted).length;
      assert.equal(granted, LONG_WINDOW.limit);
      assert.equal(await grantCount(first, key), LONG_WINDOW.limit);
      const refused = decisions.find((decision) => !decision.granted);
      assert.equal(refused?.granted === false && refused.reason, 'exhausted');
    });

    test('reserves keep slots for tickets', async () => {
      const key = instance('priorities');
      const budget = new RateBudget(first, LONG_WINDOW);
      const take = async (priority: 'urgent' | 'standard' | 'background', times: number) => {
        let granted = 0;
        for (let index = 0; index < times; index += 1) {
          if ((await budget.tryTake(key, priority)).granted) granted += 1;
        }
        return granted;
      };
      // Background stops with 5 slots left, standard with 2, urgent uses the rest.
      assert.equal(await take('background', 10), 5);
      assert.equal(await take('standard', 10), 3);
      assert.equal(await take('background', 1), 0);
      assert.equal(await take('urgent', 10), 2);
      const [state] = (await budget.states()).filter((entry) => entry.instanceKey === key);
      assert.equal(state?.remaining, 0);
    });

    test('nearly spent budget serves ticket first', async () => {
      const key = instance('nearly-spent');
      const budget = new RateBudget(first, LONG_WINDOW);
      for (let index = 0; index < LONG_WINDOW.limit - LONG_WINDOW.backgroundReserve; index += 1) {
        assert.equal((await budget.tryTake(key, 'background')).granted, true);
      }
      const reconciliation = await budget.tryTake(key, 'background');
      const ticket = await budget.tryTake(key, 'urgent');
      assert.equal(reconciliation.granted, false);
      assert.equal(ticket.granted, true);
    });

    test('acquire defers a job and rejects a request', async () => {
      const key = instance('deferral');
      const budget = new RateBudget(first, { ...LONG_WINDOW, limit: 6 });
      for (let index = 0; index < 6; index += 1) {
        await budget.acquire(key, { priority: 'urgent', jobKind: null, customerId: null });
      }
      await assert.rejects(
        budget.acquire(key, {
          priority: 'urgent',
          jobKind: 'halopsa-ticket-create',
          customerId: null,
        }),
        (error: unknown) => {
          assert.ok(error instanceof JobDeferred);
          // The oldest grant leaves the one-hour window in about an hour.
          assert.ok(error.seconds > 3500, `deferred for ${error.seconds} s`);
          return true;
        },
      );
      await assert.rejects(
        budget.acquire(key, { priority: 'standard', jobKind: null, customerId: null }),
        (error: unknown) => {
          assert.ok(isHaloPsaError(error));
          assert.equal(error.code, 'rate_limited');
          assert.match(error.message, /no slot left for standard calls/);
          assert.ok(error instanceof RateBudgetRefusal);
          assert.ok(error.retryAfterSeconds! > 3500, `retry after ${error.retryAfterSeconds} s`);
          assert.ok(error.retryAt.getTime() > Date.now() + 3_500_000);
          assert.ok(error.message.includes(error.retryAt.toISOString()), error.message);
          return true;
        },
      );
    });

    test('pause after 429 stops every pool', async () => {
      const key = instance('paused');
      const budgets = [new RateBudget(first, LONG_WINDOW), new RateBudget(second, LONG_WINDOW)];
      assert.equal((await budgets[0]!.tryTake(key, 'urgent')).granted, true);
      const pausedUntil = await budgets[0]!.pause(key, undefined);
      // Without Retry-After the pause lasts until the oldest grant leaves the window.
      assert.ok(pausedUntil.getTime() > Date.now() + 3_500_000, pausedUntil.toISOString());
      for (const budget of budgets) {
        const decision = await budget.tryTake(key, 'urgent');
        assert.equal(decision.granted, false);
        assert.equal(!decision.granted && decision.reason, 'paused');
      }
      const [state] = (await budgets[1]!.states()).filter((entry) => entry.instanceKey === key);
      assert.ok(state?.pausedUntil instanceof Date);
    });

    test('pause honours Retry-After', async () => {
      const key = instance('retry-after');
      const budget = new RateBudget(first, { ...LONG_WINDOW, minPauseSeconds: 0 });
      const pausedUntil = await budget.pause(key, 120);
      const seconds = (pausedUntil.getTime() - Date.now()) / 1000;
      assert.ok(seconds > 100, `paused for ${seconds} s`);
      assert.ok(seconds <= 120, `paused for ${seconds} s`);
    });

    test('slots free up after the window', async () => {
      const key = instance('short-window');
      const budget = new RateBudget(first, {
        ...LONG_WINDOW,
        limit: 2,
        windowSeconds: 1,
        standardReserve: 0,
        backgroundReserve: 0,
        maxWaitMs: 5000,
      });
      for (let index = 0; index < 3; index += 1) {
        // The third call waits inside acquire for the first grant to leave the window.
        await budget.acquire(key, { priority: 'urgent', jobKind: 'test', customerId: null });
      }
      assert.ok((await grantCount(first, key)) <= 2);
    });

    test('reserves must fit in the limit', () => {
      assert.throws(
        () => new RateBudget(first, { ...LONG_WINDOW, backgroundReserve: 10 }),
        /reserves must satisfy/,
      );
    });
  });
}
