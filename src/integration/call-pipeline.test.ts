import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../../test/support/service.ts';
import { purgeIntegrationHistory } from './call-log.ts';
import { LICENCE_SYNC_QUEUE } from './jobs.ts';

const CLIENT_ID = 'dmarcdesk-demo';
const CLIENT_SECRET = 'demo-secret-change-me';
const METRICS_TOKEN = 'metrics-token-for-the-pipeline-test';

// One Prometheus text sample: a metric name, optional labels and a number.
const SAMPLE_LINE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN|[+-]Inf)$/;

for (const engine of DATABASE_ENGINES) {
  describe(`HaloPSA call pipeline on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let accountId: string;
    let instanceKey: string;
    let mappedCustomerId: string;
    let token: string;

    const control = (method: string, path: string, body?: unknown) =>
      fetch(`${emulator.url}/_emulator/${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const emulatorRequests = async (): Promise<{ path: string; status: number | null }[]> =>
      (await (await control('GET', 'requests')).json()) as {
        path: string;
        status: number | null;
      }[];
    const connect = () =>
      api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
      });
    const budgetState = async () =>
      (await service.app.budget.states()).find((state) => state.instanceKey === instanceKey);

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: {
          // A short window and pause, so that nothing in this file waits for minutes.
          DMARCDESK_HALOPSA_RATE_WINDOW_SECONDS: '2',
          DMARCDESK_HALOPSA_RATE_PAUSE_SECONDS: '2',
          DMARCDESK_HALOPSA_RATE_WAIT_MS: '0',
          DMARCDESK_HALOPSA_ATTENTION_RECHECK_SECONDS: '1',
          // A 5xx on a write queues a check after the settle time, which later syncs wait for.
          DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS: '1',
          DMARCDESK_METRICS_TOKEN: METRICS_TOKEN,
        },
      });
      const account = await createTestAccount(service.app);
      accountId = account.accountId;
      token = account.token;
      api = apiClient(service.url, account.token);
      assert.equal((await connect()).status, 200);
      instanceKey = emulator.url;
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('call log records calls without secrets', async () => {
      const response = await api('GET', '/integrations/halopsa/history/calls?limit=100');
      assert.equal(response.status, 200);
      const calls = response.body.calls as {
        path: string;
        purpose: string;
        status: number | null;
        priority: string;
      }[];
      assert.ok(calls.some((call) => call.purpose === 'token' && call.status === 200));
      assert.ok(calls.some((call) => call.path === '/api/Client' && call.status === 200));
      for (const call of calls) assert.doesNotMatch(call.path, /\?/);
      const stored = JSON.stringify(
        await service.app.db.query('SELECT * FROM halopsa_call_log WHERE account_id = $1', [
          accountId,
        ]),
      );
      assert.doesNotMatch(stored, new RegExp(CLIENT_SECRET));
      assert.doesNotMatch(stored, /Bearer|access_token|page_size/);
      const token = await (await service.app.connections.clientFor(accountId)).getAccessToken();
      assert.ok(!stored.includes(token), 'the access token is in the call log');
    });

    test('call log pages and filters', async () => {
      const first = await api('GET', '/integrations/halopsa/history/calls?limit=2');
      assert.equal(first.body.calls.length, 2);
      assert.equal(typeof first.body.nextBefore, 'number');
      const second = await api(
        'GET',
        `/integrations/halopsa/history/calls?limit=2&before=${first.body.nextBefore}`,
      );
      assert.ok(second.body.calls[0].id < first.body.calls[1].id);
      const tokens = await api('GET', '/integrations/halopsa/history/calls?purpose=token');
      assert.ok(tokens.body.calls.length >= 1);
      assert.ok(tokens.body.calls.every((call: { purpose: string }) => call.purpose === 'token'));
      const bad = await api('GET', '/integrations/halopsa/history/calls?status=abc');
      assert.equal(bad.status, 400);
    });

    test('token refresh is a history event', async () => {
      const history = await api('GET', '/integrations/halopsa/history');
      const refreshed = (history.body.events as { event: string; outcome: string }[]).filter(
        (event) => event.event === 'token.refreshed',
      );
      assert.ok(refreshed.length >= 1);
      assert.equal(refreshed[0]!.outcome, 'succeeded');
    });

    test('429 pauses every caller past the window', async () => {
      await control('DELETE', 'requests');
      await control('POST', 'faults', {
        faults: [
          {
            match: { path: '/api/Item' },
            kind: 'status',
            status: 429,
            body: { Message: 'Rate Limit Reached' },
          },
        ],
      });
      const limitedCall = await fetch(`${service.url}/api/v1/integrations/halopsa/items`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const limited = (await limitedCall.json()) as {
        error: { code: string; details: Record<string, unknown> };
      };
      // The route returns HaloPSA's own 429 as it does the pause that follows: 503 with Retry-After.
      assert.equal(limitedCall.status, 503);
      assert.equal(limited.error.code, 'halopsa_rate_limited');
      assert.equal(limited.error.details.halopsaError, 'rate_limited');
      assert.ok(Number(limitedCall.headers.get('retry-after')) >= 1);

      const paused = await budgetState();
      assert.ok(paused?.pausedUntil instanceof Date, 'the budget is not paused');
      // Another caller is held back by dmarcdesk without reaching HaloPSA.
      const heldCall = await fetch(`${service.url}/api/v1/integrations/halopsa/clients`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const held = (await heldCall.json()) as {
        error: { code: string; message: string; details: Record<string, unknown> };
      };
      assert.equal(heldCall.status, 503);
      assert.equal(held.error.code, 'halopsa_rate_limited');
      assert.equal(held.error.details.halopsaError, 'rate_limited');
      assert.match(held.error.message, /holding back its requests to HaloPSA/);
      assert.match(held.error.message, /answered 429/);
      assert.match(held.error.message, /Try again in \d+ seconds, after \d{4}-\d\d-\d\dT/);
      const retryAfter = Number(heldCall.headers.get('retry-after'));
      assert.ok(
        Number.isInteger(retryAfter),
        `Retry-After: ${heldCall.headers.get('retry-after')}`,
      );
      assert.ok(retryAfter >= 1, `Retry-After: ${retryAfter}`);
      assert.equal(held.error.details.retryAfterSeconds, retryAfter);
      const reached = (await emulatorRequests()).filter((entry) => entry.path === '/api/Client');
      assert.equal(reached.length, 0);

      const resumed = await eventually(async () => {
        const response = await api('GET', '/integrations/halopsa/clients');
        return response.status === 200 ? response : undefined;
      }, 'calls to resume after the pause');
      assert.ok(resumed.body.clients.length > 0);
      assert.ok(Date.now() >= paused!.pausedUntil!.getTime());
    });

    test('401 after refresh needs attention and jobs wait', async () => {
      const customer = (await api('POST', '/customers', { name: 'Attention Ltd' })).body;
      mappedCustomerId = customer.id;
      await api('POST', `/customers/${customer.id}/domains`, { name: 'attention.example' });
      const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients as {
        id: number;
      }[];
      const item = (await api('GET', '/integrations/halopsa/items')).body.items[0] as {
        id: number;
      };

      // Every licence call gets 401, also after the token refresh: token_rejected.
      await control('POST', 'faults', {
        faults: [
          { match: { path: '/api/SoftwareLicence' }, kind: 'status', status: 401, times: 1000 },
        ],
      });
      const saved = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: customer.id, haloClientId: clients[0]!.id, haloItemId: item.id }],
      });
      assert.equal(saved.status, 200);
      await api('POST', '/integrations/halopsa/submit');

      const summary = await eventually(async () => {
        const response = await api('GET', '/integrations/halopsa');
        return response.body.attention ? response.body : undefined;
      }, 'the connection to need attention');
      assert.equal(summary.connection.status, 'needs_attention');
      assert.match(summary.attention, /401|rejects it/);
      assert.match(summary.attention, /Connect & Continue/);

      // The job's retry is deferred while the connection needs attention, not failed.
      await eventually(async () => {
        const [row] = await service.app.db.query<{ deferred: string }>(
          `SELECT count(*) AS deferred FROM pgboss.job
            WHERE name = $1 AND state = 'created' AND start_after > now()`,
          [LICENCE_SYNC_QUEUE],
        );
        return Number(row!.deferred) > 0 ? true : undefined;
      }, 'a deferred licence sync job');
      const failed = await service.app.db.query(
        `SELECT 1 FROM pgboss.job WHERE name = $1 AND state = 'failed'`,
        [LICENCE_SYNC_QUEUE],
      );
      assert.equal(failed.length, 0);

      // A successful connection check makes the connection healthy and the job resume.
      await control('DELETE', 'faults');
      assert.equal((await connect()).status, 200);
      const synced = await eventually(async () => {
        const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings as {
          customerId: string;
          syncedCount: number | null;
        }[];
        const mapping = mappings.find((entry) => entry.customerId === customer.id);
        return mapping?.syncedCount === 1 ? mapping : undefined;
      }, 'the licence count to sync after the connection check');
      assert.equal(synced.syncedCount, 1);
      const healthy = await api('GET', '/integrations/halopsa');
      assert.equal(healthy.body.attention, null);
    });

    test('5xx retries with backoff', async () => {
      const [queue] = await service.app.db.query<{ retry_backoff: boolean; retry_delay: number }>(
        'SELECT retry_backoff, retry_delay FROM pgboss.queue WHERE name = $1',
        [LICENCE_SYNC_QUEUE],
      );
      assert.equal(queue?.retry_backoff, true);
      assert.equal(queue?.retry_delay, 5);

      await control('POST', 'faults', {
        faults: [
          { match: { method: 'POST', path: '/api/SoftwareLicence' }, kind: 'status', status: 500 },
        ],
      });
      await api('POST', `/customers/${mappedCustomerId}/domains`, { name: 'second.example' });
      // The failed attempt waits for its retry, which pg-boss schedules with backoff.
      const retry = await eventually(async () => {
        const [row] = await service.app.db.query<{ ahead: boolean }>(
          `SELECT start_after > now() AS ahead FROM pgboss.job
            WHERE name = $1 AND state = 'retry'`,
          [LICENCE_SYNC_QUEUE],
        );
        return row;
      }, 'a licence sync job waiting for its retry');
      assert.equal(retry.ahead, true);
      const synced = await eventually(
        async () => {
          const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings as {
            customerId: string;
            syncedCount: number | null;
          }[];
          const mapping = mappings.find((entry) => entry.customerId === mappedCustomerId);
          return mapping?.syncedCount === 2 ? mapping : undefined;
        },
        'the licence count to sync after the retry',
        30_000,
      );
      assert.equal(synced.syncedCount, 2);
    });

    test('400 is recorded, not retried', async () => {
      // The retry of the 5xx test's job must be over, so that a retry found below is this one's.
      await eventually(
        async () => {
          const unfinished = await service.app.db.query(
            `SELECT 1 FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')`,
            [LICENCE_SYNC_QUEUE],
          );
          return unfinished.length === 0 ? true : undefined;
        },
        'the earlier licence sync jobs to finish',
        30_000,
      );
      await control('POST', 'faults', {
        faults: [
          {
            match: { method: 'POST', path: '/api/SoftwareLicence' },
            kind: 'status',
            status: 400,
            body: { Message: 'The licence count is locked by a contract' },
          },
        ],
      });
      await api('POST', `/customers/${mappedCustomerId}/domains`, { name: 'third.example' });
      const failed = await eventually(async () => {
        const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings as {
          customerId: string;
          syncError: string | null;
        }[];
        const mapping = mappings.find((entry) => entry.customerId === mappedCustomerId);
        return mapping?.syncError ? mapping : undefined;
      }, 'the licence sync to record the 400');
      assert.match(failed.syncError!, /locked by a contract/);
      const history = await api(
        'GET',
        `/integrations/halopsa/history?customerId=${mappedCustomerId}`,
      );
      const event = (history.body.events as { event: string; message: string }[]).find(
        (entry) => entry.event === 'licence.failed',
      );
      assert.match(event?.message ?? '', /locked by a contract/);
      const retrying = await service.app.db.query(
        `SELECT 1 FROM pgboss.job WHERE name = $1 AND state = 'retry'`,
        [LICENCE_SYNC_QUEUE],
      );
      assert.equal(retrying.length, 0);
      const posts = (await emulatorRequests()).filter(
        (entry) => entry.path === '/api/SoftwareLicence' && entry.status === 400,
      );
      assert.equal(posts.length, 1);
    });

    test('metrics are Prometheus text', async () => {
      const denied = await fetch(`${service.url}/metrics`);
      assert.equal(denied.status, 401);
      const wrong = await fetch(`${service.url}/metrics`, {
        headers: { authorization: 'Bearer not-the-metrics-token' },
      });
      assert.equal(wrong.status, 401);

      const response = await fetch(`${service.url}/metrics`, {
        headers: { authorization: `Bearer ${METRICS_TOKEN}` },
      });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await response.text();
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
        assert.match(line, SAMPLE_LINE);
      }
      assert.match(text, /^dmarcdesk_halopsa_calls_total\{purpose="api",status="200"\} \d+$/m);
      assert.match(text, /^dmarcdesk_halopsa_calls_total\{purpose="api",status="429"\} 1$/m);
      assert.match(text, /^dmarcdesk_halopsa_calls_total\{purpose="api",status="500"\} 1$/m);
      assert.match(
        text,
        /^dmarcdesk_job_runs_total\{queue="halopsa-licence-sync",outcome="retried"\} \d+$/m,
      );
      assert.match(
        text,
        /^dmarcdesk_job_runs_total\{queue="halopsa-licence-sync",outcome="deferred"\} \d+$/m,
      );
      assert.match(
        text,
        /^dmarcdesk_job_runs_total\{queue="halopsa-licence-sync",outcome="completed"\} \d+$/m,
      );
      assert.match(text, /^# TYPE dmarcdesk_queue_jobs gauge$/m);
      const remaining = new RegExp(
        `^dmarcdesk_halopsa_rate_budget_remaining\\{instance="${instanceKey}"\\} (\\d+)$`,
        'm',
      ).exec(text);
      assert.ok(remaining, 'no remaining budget series for the emulator');
      assert.ok(Number(remaining[1]) <= 270);
    });

    test('retention deletes old rows only', async () => {
      const db = service.app.db;
      for (const table of ['halopsa_call_log', 'integration_events']) {
        await db.query(
          `UPDATE ${table} SET created_at = now() - interval '91 days' WHERE id IN (SELECT min(id) FROM ${table} WHERE account_id = $1)`,
          [accountId],
        );
      }
      const before = await db.query<{ calls: string; events: string }>(
        `SELECT (SELECT count(*) FROM halopsa_call_log) AS calls,
                (SELECT count(*) FROM integration_events) AS events`,
      );
      const deleted = await purgeIntegrationHistory(db, 90);
      assert.deepEqual(deleted, { calls: 1, events: 1 });
      const afterPurge = await db.query<{ calls: string; events: string; old: string }>(
        `SELECT (SELECT count(*) FROM halopsa_call_log) AS calls,
                (SELECT count(*) FROM integration_events) AS events,
                (SELECT count(*) FROM halopsa_call_log WHERE created_at < now() - interval '90 days') AS old`,
      );
      assert.equal(Number(afterPurge[0]!.calls), Number(before[0]!.calls) - 1);
      assert.equal(Number(afterPurge[0]!.events), Number(before[0]!.events) - 1);
      assert.equal(Number(afterPurge[0]!.old), 0);
    });
  });
}
