import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DATABASE_ENGINES } from '../../test/support/databases.ts';
import { AppError } from '../errors/app-error.ts';
import {
  DEFAULT_CHECK_INTERVAL_MINUTES,
  getMonitorSettings,
  listDkimSelectors,
  normaliseDkimSelectors,
  setCheckInterval,
  setDkimSelectors,
} from './monitor-settings.ts';
import type { MonitorTestDatabase } from './monitor-test-support.ts';
import { openMonitorDatabase, TestClock } from './monitor-test-support.ts';

function rejection(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof AppError, `expected an AppError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the call to throw');
}

describe('DKIM selector validation', () => {
  test('lower-cases and keeps valid selectors', () => {
    assert.deepEqual(normaliseDkimSelectors(['Selector1', 's1.mail', ' google '], 'example.com'), [
      'selector1',
      's1.mail',
      'google',
    ]);
  });

  test('rejects names that are not selectors', () => {
    const cases = [
      '',
      's1._domainkey',
      '-s1',
      's1-',
      'a b',
      's1..mail',
      'sel_ector',
      'a'.repeat(64),
    ];
    for (const input of cases) {
      const error = rejection(() => normaliseDkimSelectors(['ok', input], 'example.com'));
      assert.equal(error.code, 'validation_failed', input);
      assert.equal(error.field, 'selectors.1', input);
      assert.match(error.message, /is not a DKIM selector/, input);
    }
  });

  test('rejects repeats after lower-casing', () => {
    const error = rejection(() => normaliseDkimSelectors(['s1', 'S1'], 'example.com'));

    assert.equal(error.field, 'selectors.1');
    assert.equal(error.message, 'Field "selectors.1": "s1" is listed twice.');
  });

  test('rejects a key name longer than DNS allows', () => {
    const selector = Array.from({ length: 4 }, () => 'a'.repeat(60)).join('.');
    const error = rejection(() => normaliseDkimSelectors([selector], 'example.com'));

    assert.equal(error.field, 'selectors.0');
    assert.match(error.message, /at most 253/);
  });

  test('rejects more than 32 selectors', () => {
    const selectors = Array.from({ length: 33 }, (_, index) => `s${index}`);
    const error = rejection(() => normaliseDkimSelectors(selectors, 'example.com'));

    assert.equal(error.field, 'selectors');
  });
});

for (const engine of DATABASE_ENGINES) {
  describe(`DNS monitor settings on ${engine}`, () => {
    let fixture: MonitorTestDatabase;

    before(async () => {
      fixture = await openMonitorDatabase(engine);
    });

    after(async () => {
      await fixture?.close();
    });

    test('stores selectors per domain', async () => {
      const domain = await fixture.domains.add(fixture.accountId, fixture.customerId, {
        name: 'selectors.example',
      });

      const first = await setDkimSelectors(fixture.db, fixture.accountId, domain.id, ['s2', 'S1']);
      const second = await setDkimSelectors(fixture.db, fixture.accountId, domain.id, ['s3', 's1']);

      assert.deepEqual(first, ['s1', 's2']);
      assert.deepEqual(second, ['s1', 's3']);
      assert.deepEqual(await listDkimSelectors(fixture.db, fixture.accountId, domain.id), [
        's1',
        's3',
      ]);
    });

    test('defaults the interval and checks its bounds', async () => {
      const clock = new TestClock();
      const initial = await getMonitorSettings(fixture.db, fixture.accountId);

      assert.equal(initial.checkIntervalMinutes, DEFAULT_CHECK_INTERVAL_MINUTES);
      assert.equal(initial.custom, false);
      await assert.rejects(
        setCheckInterval(fixture.db, fixture.accountId, 14, clock.now()),
        (error: unknown) => error instanceof AppError && error.field === 'checkIntervalMinutes',
      );
      await assert.rejects(
        setCheckInterval(fixture.db, fixture.accountId, 10_081, clock.now()),
        /from 15 to 10080/,
      );
      await assert.rejects(
        setCheckInterval(fixture.db, fixture.accountId, 60.5, clock.now()),
        /from 15 to 10080/,
      );
    });

    test('a shorter interval brings later checks forward', async () => {
      const clock = new TestClock();
      const domain = await fixture.domains.add(fixture.accountId, fixture.customerId, {
        name: 'interval.example',
      });
      const later = new Date(clock.now().getTime() + 6 * 3_600_000);
      await fixture.db.query(
        `INSERT INTO dns_check_schedule (domain_id, account_id, next_check_at) VALUES ($1, $2, $3)`,
        [domain.id, fixture.accountId, later.toISOString()],
      );

      const settings = await setCheckInterval(fixture.db, fixture.accountId, 60, clock.now());
      const [row] = await fixture.db.query<{ next_check_at: Date }>(
        'SELECT next_check_at FROM dns_check_schedule WHERE domain_id = $1',
        [domain.id],
      );

      assert.deepEqual(settings, { checkIntervalMinutes: 60, custom: true });
      assert.deepEqual(await getMonitorSettings(fixture.db, fixture.accountId), settings);
      const due = new Date(row!.next_check_at).getTime();
      assert.ok(due >= clock.now().getTime(), 'not before now');
      assert.ok(due <= clock.now().getTime() + 3_600_000, 'within the new interval');
    });
  });
}
