// The rate budget series of GET /metrics: only HaloPSA instances of stored connections, not
// URLs that were only tried in connection checks that failed.
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
  startService,
  type TestService,
} from '../../test/support/service.ts';

const METRICS_TOKEN = 'metrics-token-for-the-budget-test';

for (const engine of DATABASE_ENGINES) {
  describe(`rate budget metrics on ${engine}`, () => {
    let database: TestDatabase;
    let connected: RunningEmulator;
    let tried: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;

    before(async () => {
      database = await openTestDatabase(engine);
      connected = await startEmulator({ rateLimit: null });
      tried = await startEmulator({ rateLimit: null });
      service = await startService(database, {
        allowedHosts: [new URL(connected.url).host, new URL(tried.url).host],
        environment: { DMARCDESK_METRICS_TOKEN: METRICS_TOKEN },
      });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
    });

    after(async () => {
      await service?.stop();
      await connected?.close();
      await tried?.close();
      await database?.drop();
    });

    test('failed check leaves no budget series', async () => {
      const failed = await api('PUT', '/integrations/halopsa/connection', {
        url: tried.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'not-the-secret',
      });
      assert.equal(failed.status, 422, JSON.stringify(failed.body));
      const saved = await api('PUT', '/integrations/halopsa/connection', {
        url: connected.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));

      // The failed check sent a token request, so that URL has a budget of its own.
      const all = (await service.app.budget.states()).map((state) => state.instanceKey);
      assert.ok(all.includes(tried.url), `budgets: ${all.join(', ')}`);
      assert.ok(all.includes(connected.url), `budgets: ${all.join(', ')}`);

      const response = await fetch(`${service.url}/metrics`, {
        headers: { authorization: `Bearer ${METRICS_TOKEN}` },
      });
      assert.equal(response.status, 200);
      const instances = [
        ...(await response.text()).matchAll(
          /^dmarcdesk_halopsa_rate_budget_remaining\{instance="([^"]+)"\} \d+$/gm,
        ),
      ].map((match) => match[1]);
      assert.deepEqual(instances, [connected.url]);
    });
  });
}
