import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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

for (const engine of DATABASE_ENGINES) {
  describe(`platform API on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let otherApi: ReturnType<typeof apiClient>;

    before(async () => {
      database = await openTestDatabase(engine);
      service = await startService(database);
      api = apiClient(service.url, (await createTestAccount(service.app, 'Contoso MSP')).token);
      otherApi = apiClient(
        service.url,
        (await createTestAccount(service.app, 'Fabrikam MSP')).token,
      );
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
    });

    test('rejects requests without a valid token', async () => {
      const missing = await fetch(`${service.url}/api/v1/customers`);
      assert.equal(missing.status, 401);
      assert.equal((await missing.json()).error.code, 'unauthenticated');

      const wrong = await apiClient(service.url, 'ddk_not-a-real-token')('GET', '/customers');
      assert.equal(wrong.status, 401);
      assert.match(wrong.body.error.message, /unknown or revoked/);
    });

    test('creates customers and rejects duplicate names', async () => {
      const created = await api('POST', '/customers', { name: 'Alpine Dental' });
      assert.equal(created.status, 201);
      assert.equal(created.body.name, 'Alpine Dental');
      assert.equal(created.body.billableDomainCount, 0);

      const duplicate = await api('POST', '/customers', { name: 'alpine dental' });
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.body.error.field, 'name');
    });

    test('validates request bodies field by field', async () => {
      const empty = await api('POST', '/customers', { name: '  ' });
      assert.equal(empty.status, 400);
      assert.equal(empty.body.error.code, 'validation_failed');
      assert.equal(empty.body.error.field, 'name');

      const unknownKey = await api('POST', '/customers', { name: 'X', colour: 'red' });
      assert.equal(unknownKey.status, 400);

      const notJson = await api('POST', '/customers', Buffer.from('{name:'), 'application/json');
      assert.equal(notJson.status, 400);
      assert.equal(notJson.body.error.code, 'validation_failed');
    });

    test('normalises domains and counts only active ones as billable', async () => {
      const customer = (await api('POST', '/customers', { name: 'Bergen Logistics' })).body;
      const first = await api('POST', `/customers/${customer.id}/domains`, {
        name: ' Bergen-Logistics.EXAMPLE. ',
      });
      assert.equal(first.status, 201);
      assert.equal(first.body.name, 'bergen-logistics.example');
      assert.equal(first.body.billable, true);

      const idn = await api('POST', `/customers/${customer.id}/domains`, {
        name: 'bücher.example',
        status: 'pending',
      });
      assert.equal(idn.status, 201);
      assert.equal(idn.body.name, 'xn--bcher-kva.example');
      assert.equal(idn.body.billable, false);

      const reread = (await api('GET', `/customers/${customer.id}`)).body;
      assert.equal(reread.domainCount, 2);
      assert.equal(reread.billableDomainCount, 1);

      const paused = await api('PATCH', `/domains/${first.body.id}`, { status: 'paused' });
      assert.equal(paused.body.status, 'paused');
      assert.equal((await api('GET', `/customers/${customer.id}`)).body.billableDomainCount, 0);
    });

    test('rejects invalid and already monitored domains', async () => {
      const customer = (await api('POST', '/customers', { name: 'Cobalt Legal' })).body;
      for (const [name, pattern] of [
        ['https://cobalt.example/', /is a URL/],
        ['admin@cobalt.example', /email address/],
        ['192.0.2.1', /IP address/],
        ['localhost', /no top-level domain/],
        ['bad..example', /invalid|empty label/],
        ['-bad.example', /invalid label/],
      ] as const) {
        const response = await api('POST', `/customers/${customer.id}/domains`, { name });
        assert.equal(response.status, 400, name);
        assert.match(response.body.error.message, pattern, name);
      }

      await api('POST', `/customers/${customer.id}/domains`, { name: 'cobalt.example' });
      const again = await api('POST', `/customers/${customer.id}/domains`, {
        name: 'COBALT.example',
      });
      assert.equal(again.status, 409);
      assert.match(again.body.error.message, /already monitored for customer "Cobalt Legal"/);
    });

    test('keeps each MSSP account apart', async () => {
      const customer = (await api('POST', '/customers', { name: 'Delta Farms' })).body;
      const domain = (
        await api('POST', `/customers/${customer.id}/domains`, { name: 'delta-farms.example' })
      ).body;

      assert.equal((await otherApi('GET', `/customers/${customer.id}`)).status, 404);
      assert.equal((await otherApi('GET', `/domains/${domain.id}`)).status, 404);
      assert.equal(
        (await otherApi('PATCH', `/domains/${domain.id}`, { status: 'paused' })).status,
        404,
      );
      assert.equal((await otherApi('DELETE', `/customers/${customer.id}`)).status, 404);
      const list = (await otherApi('GET', '/customers')).body.customers;
      assert.equal(
        list.some((entry: { id: string }) => entry.id === customer.id),
        false,
      );
      // The same domain name may be monitored by another MSSP account.
      const otherCustomer = (await otherApi('POST', '/customers', { name: 'Delta Farms' })).body;
      assert.equal(
        (
          await otherApi('POST', `/customers/${otherCustomer.id}/domains`, {
            name: 'delta-farms.example',
          })
        ).status,
        201,
      );
    });

    test('saves domain groups of the customer own domains only', async () => {
      const customer = (await api('POST', '/customers', { name: 'Echo Clinics' })).body;
      const other = (await api('POST', '/customers', { name: 'Foxtrot Bakery' })).body;
      const a = (await api('POST', `/customers/${customer.id}/domains`, { name: 'echo-a.example' }))
        .body;
      const b = (await api('POST', `/customers/${customer.id}/domains`, { name: 'echo-b.example' }))
        .body;
      const foreign = (
        await api('POST', `/customers/${other.id}/domains`, { name: 'foxtrot.example' })
      ).body;

      const group = await api('POST', `/customers/${customer.id}/groups`, {
        name: 'Marketing',
        domainIds: [a.id, b.id],
      });
      assert.equal(group.status, 201);
      assert.deepEqual([...group.body.domainIds].sort(), [a.id, b.id].sort());

      const bad = await api('POST', `/customers/${customer.id}/groups`, {
        name: 'Mixed',
        domainIds: [a.id, foreign.id],
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.field, 'domainIds.1');

      const renamed = await api('PUT', `/groups/${group.body.id}`, {
        name: 'Sales',
        domainIds: [b.id],
      });
      assert.equal(renamed.body.name, 'Sales');
      assert.deepEqual(renamed.body.domainIds, [b.id]);
    });
  });
}
