import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  test('defaults to PGlite in ./data', () => {
    const config = loadConfig({});
    assert.equal(config.databaseUrl, null);
    assert.equal(config.dataDir, './data');
    assert.equal(config.port, 8080);
    assert.equal(config.publicUrl, 'http://127.0.0.1:8080');
  });

  test('lists every problem at once', () => {
    assert.throws(
      () =>
        loadConfig({
          DMARCDESK_PORT: 'eighty',
          DMARCDESK_LOG_LEVEL: 'loud',
          DMARCDESK_SECRET_KEY: 'c2hvcnQ=',
          DMARCDESK_PORTT: '1',
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 4);
        assert.match(error.message, /DMARCDESK_PORTT is not a known setting/);
        assert.match(error.message, /DMARCDESK_PORT must be a whole number/);
        assert.match(error.message, /DMARCDESK_LOG_LEVEL must be one of/);
        assert.match(error.message, /DMARCDESK_SECRET_KEY must be 32 bytes/);
        return true;
      },
    );
  });

  test('problems echo the value given', () => {
    assert.throws(
      () =>
        loadConfig({
          DMARCDESK_PORT: 'eighty',
          DMARCDESK_SMTP_PORT: '70000',
          DMARCDESK_LOG_LEVEL: 'loud',
          DMARCDESK_HALOPSA_TIMEOUT_MS: '5',
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [
          'DMARCDESK_PORT must be a whole number (got "eighty")',
          'DMARCDESK_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
          'DMARCDESK_HALOPSA_TIMEOUT_MS must be at least 1000 (got 5)',
          'DMARCDESK_SMTP_PORT must be at most 65535 (got 70000)',
        ]);
        return true;
      },
    );
  });

  test('problems never echo secrets', () => {
    assert.throws(
      () =>
        loadConfig({
          DMARCDESK_DATABASE_URL: 'mysql://dmarcdesk:hunter2@db.example/dmarcdesk',
          DMARCDESK_SECRET_KEY: 'aHVudGVyMg==',
          DMARCDESK_METRICS_TOKEN: 'hunter2',
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /DMARCDESK_DATABASE_URL must start with postgres:\/\/ .*\(got "mysql:\/\/dmarcdesk:\*\*\*@db.example\/dmarcdesk"\)/,
        );
        assert.match(
          error.message,
          /DMARCDESK_METRICS_TOKEN must be at least 16 characters; generate/,
        );
        assert.match(error.message, /DMARCDESK_SECRET_KEY must be 32 bytes/);
        assert.doesNotMatch(error.message, /hunter2|aHVudGVyMg/);
        return true;
      },
    );
  });

  test('reconcile interval must space runs evenly', () => {
    assert.equal(loadConfig({}).reconcileIntervalMinutes, 60);
    assert.equal(
      loadConfig({ DMARCDESK_RECONCILE_INTERVAL_MINUTES: '15' }).reconcileIntervalMinutes,
      15,
    );
    assert.equal(
      loadConfig({ DMARCDESK_RECONCILE_INTERVAL_MINUTES: '360' }).reconcileIntervalMinutes,
      360,
    );
    for (const invalid of ['45', '90', '0']) {
      assert.throws(
        () => loadConfig({ DMARCDESK_RECONCILE_INTERVAL_MINUTES: invalid }),
        /DMARCDESK_RECONCILE_INTERVAL_MINUTES must/,
        invalid,
      );
    }
  });

  test('ignores the CLI and test variables', () => {
    const config = loadConfig({
      DMARCDESK_URL: 'http://127.0.0.1:8080',
      DMARCDESK_TOKEN: 'ddk_x',
      DMARCDESK_TEST_DATABASE_URL: 'postgres://127.0.0.1/test',
      DMARCDESK_BENCH_SKIP_POSTGRES: '1',
    });
    assert.equal(config.port, 8080);
  });

  test('ignores variables of other programs', () => {
    assert.equal(loadConfig({ PORT: 'not a number', NODE_ENV: 'production' }).port, 8080);
  });
});
