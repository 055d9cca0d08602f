import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import { DATABASE_ENGINES, openTestDatabase, type TestDatabase } from '../support/databases.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../support/service.ts';

// A client secret with a value that can appear nowhere by chance.
const CANARY = 'canary-7c1e9b44-secret-a0d2f6';
const FAILING_REPORT = readFileSync(
  new URL('../fixtures/reports/e2e-failing-report.xml', import.meta.url),
);

for (const engine of DATABASE_ENGINES) {
  describe(`canary secret on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    const logLines: string[] = [];
    const responses: string[] = [];

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      await fetch(`${emulator.url}/_emulator/applications/canary-app`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          clientSecret: CANARY,
          permissions: [
            'read:customers',
            'edit:customers',
            'read:softwarelicensing',
            'edit:softwarelicensing',
            'read:tickets',
            'edit:tickets',
            'read:items',
          ],
        }),
      });
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        logLines,
      });
      const call = apiClient(service.url, (await createTestAccount(service.app)).token);
      api = async (...args) => {
        const response = await call(...args);
        responses.push(JSON.stringify(response.body));
        return response;
      };
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('the secret never leaves the encrypted column', async () => {
      const connect = (clientSecret: string) =>
        api('PUT', '/integrations/halopsa/connection', {
          url: emulator.url,
          clientId: 'canary-app',
          clientSecret,
        });
      assert.equal((await connect(`${CANARY}-wrong`)).status, 422);
      assert.equal((await connect(CANARY)).status, 200);

      const customer = (await api('POST', '/customers', { name: 'Canary Customer' })).body;
      const domain = (await api('POST', `/customers/${customer.id}/domains`, { name: 'stalw.art' }))
        .body;
      await api('PUT', `/domains/${domain.id}/threshold`, { maxFailedMessages: 0 });
      const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients;
      const items = (await api('GET', '/integrations/halopsa/items')).body.items;
      const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          { customerId: customer.id, haloClientId: clients[0].id, haloItemId: items[0].id },
        ],
      });
      await api('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
        ticketTypeId: types.defaultTicketTypeId,
        thresholdDomainIds: [domain.id],
      });
      await api('POST', '/integrations/halopsa/submit');

      // Force a token refresh mid-run, so that the token request is made and logged again.
      await fetch(`${emulator.url}/_emulator/clock`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ advanceSeconds: 7200 }),
      });
      await api('POST', '/reports', FAILING_REPORT, 'application/xml');
      await eventually(async () => {
        const alerts = (await api('GET', '/alerts')).body.alerts;
        return alerts[0]?.ticketStatus === 'created' ? true : undefined;
      }, 'the ticket for the alert');
      await api('GET', '/integrations/halopsa');
      await api('GET', '/integrations/halopsa/connection');
      await api('GET', '/integrations/halopsa/history');

      const leaks: string[] = [];
      responses.forEach((body, index) => body.includes(CANARY) && leaks.push(`response ${index}`));
      logLines.forEach((line, index) => line.includes(CANARY) && leaks.push(`log line ${index}`));

      const tables = await service.app.db.query<{ schema: string; name: string }>(
        `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
          WHERE table_schema IN ('public', 'pgboss') AND table_type = 'BASE TABLE'`,
      );
      assert.ok(
        tables.some((table) => table.schema === 'pgboss'),
        'the job tables are searched too',
      );
      for (const table of tables) {
        const rows = await service.app.db.query<{ row: string }>(
          `SELECT row_to_json(t)::text AS row FROM "${table.schema}"."${table.name}" t`,
        );
        if (rows.some((row) => row.row.includes(CANARY)))
          leaks.push(`${table.schema}.${table.name}`);
      }

      assert.ok(
        logLines.length > 20,
        `expected a trace log of the run, got ${logLines.length} lines`,
      );
      assert.deepEqual(leaks, []);
    });
  });
}
