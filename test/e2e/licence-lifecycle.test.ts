import assert from 'node:assert/strict';
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

interface Licence {
  id: number;
  client_id: number;
  item_id: number;
  count: number;
}

for (const engine of DATABASE_ENGINES) {
  describe(`licence lifecycle on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let clients: number[] = [];
    let item = 0;

    const licences = async (): Promise<Licence[]> =>
      (
        (await (await fetch(`${emulator.url}/_emulator/records/SoftwareLicence`)).json()) as {
          records: Licence[];
        }
      ).records.filter((licence) => licence.item_id === item);
    const licenceOf = async (clientId: number) =>
      (await licences()).filter((licence) => licence.client_id === clientId);
    const emulatorControl = (path: string, body: unknown) =>
      fetch(`${emulator.url}/_emulator/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    async function customerWithDomains(name: string, domains: string[]): Promise<string> {
      const customer = (await api('POST', '/customers', { name })).body;
      for (const domain of domains)
        await api('POST', `/customers/${customer.id}/domains`, { name: domain });
      return customer.id;
    }

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: {
          DMARCDESK_HALOPSA_TIMEOUT_MS: '1500',
          DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS: '4',
        },
      });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
      await api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      clients = (
        (await api('GET', '/integrations/halopsa/clients')).body.clients as {
          id: number;
          inactive: boolean;
        }[]
      )
        .filter((client) => !client.inactive)
        .map((client) => client.id);
      item = (await api('GET', '/integrations/halopsa/items')).body.items.find(
        (entry: { name: string }) => entry.name === 'DMARC Monitoring (per domain)',
      ).id;
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('one HaloPSA client and item serves one customer', async () => {
      const first = await customerWithDomains('Pair One', ['pair-one.example']);
      const second = await customerWithDomains('Pair Two', ['pair-two.example']);
      const response = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          { customerId: first, haloClientId: clients[0], haloItemId: item },
          { customerId: second, haloClientId: clients[0], haloItemId: item },
        ],
      });
      assert.equal(response.status, 400);
      assert.equal(response.body.error.field, 'mappings.1.haloClientId');
      assert.match(response.body.error.message, /row 1 already bills/);
    });

    test('unmapping or re-pointing a customer releases its licence', async () => {
      const kept = await customerWithDomains('Kept Ltd', ['kept-a.example', 'kept-b.example']);
      const moved = await customerWithDomains('Moved Ltd', ['moved.example']);
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          { customerId: kept, haloClientId: clients[1], haloItemId: item },
          { customerId: moved, haloClientId: clients[2], haloItemId: item },
        ],
      });
      await api('POST', '/integrations/halopsa/submit');
      await eventually(
        async () => ((await licenceOf(clients[1]!))[0]?.count === 2 ? true : undefined),
        'licence of Kept Ltd',
      );
      await eventually(
        async () => ((await licenceOf(clients[2]!))[0]?.count === 1 ? true : undefined),
        'licence of Moved Ltd',
      );

      // Moved Ltd now bills another HaloPSA client; Kept Ltd is unmapped.
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: moved, haloClientId: clients[3], haloItemId: item }],
      });
      await api('POST', '/integrations/halopsa/submit');
      await eventually(
        async () => ((await licenceOf(clients[1]!))[0]?.count === 0 ? true : undefined),
        'released licence of Kept Ltd',
      );
      await eventually(
        async () => ((await licenceOf(clients[2]!))[0]?.count === 0 ? true : undefined),
        'old licence of Moved Ltd',
      );
      await eventually(
        async () => ((await licenceOf(clients[3]!))[0]?.count === 1 ? true : undefined),
        'new licence of Moved Ltd',
      );
    });

    test('deleting a mapped customer releases its licence', async () => {
      const doomed = await customerWithDomains('Doomed Ltd', [
        'doomed-a.example',
        'doomed-b.example',
      ]);
      const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.map(
        (mapping: { customerId: string; haloClientId: number; haloItemId: number }) => ({
          customerId: mapping.customerId,
          haloClientId: mapping.haloClientId,
          haloItemId: mapping.haloItemId,
        }),
      );
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [...mappings, { customerId: doomed, haloClientId: clients[4], haloItemId: item }],
      });
      await api('POST', '/integrations/halopsa/submit');
      await eventually(
        async () => ((await licenceOf(clients[4]!))[0]?.count === 2 ? true : undefined),
        'licence of Doomed Ltd',
      );

      assert.equal(
        (await api('DELETE', `/customers/${doomed}`, undefined, 'application/json')).status,
        204,
      );
      await eventually(
        async () => ((await licenceOf(clients[4]!))[0]?.count === 0 ? true : undefined),
        'released licence of Doomed Ltd',
      );
    });

    test('turning the integration off stops HaloPSA writes', async () => {
      const quiet = await customerWithDomains('Quiet Ltd', ['quiet.example']);
      const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.map(
        (mapping: { customerId: string; haloClientId: number; haloItemId: number }) => ({
          customerId: mapping.customerId,
          haloClientId: mapping.haloClientId,
          haloItemId: mapping.haloItemId,
        }),
      );
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [...mappings, { customerId: quiet, haloClientId: clients[5], haloItemId: item }],
      });
      await api('POST', '/integrations/halopsa/submit');
      await eventually(
        async () => ((await licenceOf(clients[5]!))[0]?.count === 1 ? true : undefined),
        'licence of Quiet Ltd',
      );

      await api('PATCH', '/account', { halopsaIntegrationEnabled: false });
      await api('POST', `/customers/${quiet}/domains`, { name: 'quiet-two.example' });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.equal((await licenceOf(clients[5]!))[0]?.count, 1);

      await api('PATCH', '/account', { halopsaIntegrationEnabled: true });
      await api('POST', '/integrations/halopsa/submit');
      await eventually(
        async () => ((await licenceOf(clients[5]!))[0]?.count === 2 ? true : undefined),
        'count after turning it on again',
      );
    });

    test('a write that outlives its timeout is repaired', async () => {
      const slow = await customerWithDomains('Slow Ltd', ['slow.example']);
      const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.map(
        (mapping: { customerId: string; haloClientId: number; haloItemId: number }) => ({
          customerId: mapping.customerId,
          haloClientId: mapping.haloClientId,
          haloItemId: mapping.haloItemId,
        }),
      );
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [...mappings, { customerId: slow, haloClientId: clients[6], haloItemId: item }],
      });
      await api('POST', '/integrations/halopsa/submit');
      await eventually(
        async () => ((await licenceOf(clients[6]!))[0]?.count === 1 ? true : undefined),
        'licence of Slow Ltd',
      );

      // The next write, of count 2, lands 2.5 s after the client gave up at 1.5 s. The count 3 of
      // a later change lands before it, so without a repair the stale 2 would stay.
      await emulatorControl('faults', {
        faults: [
          {
            match: { method: 'POST', path: '/api/SoftwareLicence' },
            kind: 'latency',
            delayMs: 2500,
            times: 1,
          },
        ],
      });
      await api('POST', `/customers/${slow}/domains`, { name: 'slow-two.example' });
      await new Promise((resolve) => setTimeout(resolve, 1800));
      await api('POST', `/customers/${slow}/domains`, { name: 'slow-three.example' });
      await eventually(
        async () => ((await licenceOf(clients[6]!))[0]?.count === 3 ? true : undefined),
        'count 3',
        30_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 6000));
      await eventually(
        async () => ((await licenceOf(clients[6]!))[0]?.count === 3 ? true : undefined),
        'count 3 after the settle time',
        30_000,
      );
      assert.equal((await licenceOf(clients[6]!)).length, 1);
    });

    test('JSON bodies: empty accepted, NUL rejected', async () => {
      const customer = await customerWithDomains('Body Ltd', ['body.example']);
      const domain = (await api('GET', `/customers/${customer}/domains`)).body.domains[0];
      assert.equal(
        (await api('DELETE', `/domains/${domain.id}`, Buffer.alloc(0), 'application/json')).status,
        204,
      );

      const nul = await api('POST', '/customers', { name: 'Null\u0000Byte' });
      assert.equal(nul.status, 400);
      assert.equal(nul.body.error.field, 'name');
      assert.match(nul.body.error.message, /NUL/);
    });

    test('the same domain added at once is one 201', async () => {
      const customer = await customerWithDomains('Race Ltd', []);
      const statuses = await Promise.all(
        Array.from({ length: 6 }, () =>
          api('POST', `/customers/${customer}/domains`, { name: 'race.example' }).then(
            (response) => response.status,
          ),
        ),
      );
      assert.equal(statuses.filter((status) => status === 201).length, 1);
      assert.equal(statuses.filter((status) => status === 409).length, 5);
    });
  });
}
