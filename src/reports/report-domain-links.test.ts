import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
import { syntheticReport } from './synthetic-reports.ts';

// An OpenDMARC failure report about interpublication.org from 148.163.85.135.
const FAILURE_REPORT = readFileSync(
  new URL('../../test/fixtures/reports/mail-auth/arf/004.eml', import.meta.url),
);

for (const engine of DATABASE_ENGINES) {
  describe(`linking earlier reports on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let otherApi: ReturnType<typeof apiClient>;
    let customerId = '';

    const unknownDomains = async (path: string): Promise<string[]> => {
      const response = await api('GET', path);
      assert.equal(response.status, 200);
      return response.body.domains.map((entry: { domain: string }) => entry.domain);
    };

    before(async () => {
      database = await openTestDatabase(engine);
      service = await startService(database);
      api = apiClient(service.url, (await createTestAccount(service.app, 'Contoso MSP')).token);
      otherApi = apiClient(
        service.url,
        (await createTestAccount(service.app, 'Fabrikam MSP')).token,
      );
      customerId = (await api('POST', '/customers', { name: 'Nobody Corp' })).body.id;

      const report = syntheticReport({ records: 5, domain: 'Nobody-Monitors.example' });
      for (const client of [api, otherApi]) {
        const upload = await client('POST', '/reports', report, 'application/xml');
        assert.equal(upload.status, 201);
        assert.equal(upload.body.documents[0].monitored, false);
      }
      const failure = await api('POST', '/reports', FAILURE_REPORT, 'message/rfc822');
      assert.equal(failure.status, 201);
      assert.equal(failure.body.documents[0].monitored, false);
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
    });

    test('adding a domain links its reports', async () => {
      assert.deepEqual(await unknownDomains('/reports/unknown-domains'), [
        'nobody-monitors.example',
      ]);

      const added = await api('POST', `/customers/${customerId}/domains`, {
        name: 'nobody-monitors.example',
      });
      assert.equal(added.status, 201);

      const linked = (await api('GET', `/reports?domainId=${added.body.id}`)).body.reports;
      assert.equal(linked.length, 1);
      assert.equal(linked[0].domainId, added.body.id);
      assert.deepEqual(await unknownDomains('/reports/unknown-domains'), []);
    });

    test('adding a domain links no other account', async () => {
      const unknown = (await otherApi('GET', '/reports/unknown-domains')).body.domains;
      assert.deepEqual(
        unknown.map((entry: { domain: string }) => entry.domain),
        ['nobody-monitors.example'],
      );
    });

    test('adding a parent links failure reports', async () => {
      assert.deepEqual(await unknownDomains('/failure-reports/unknown-domains'), [
        'interpublication.org',
      ]);

      const added = await api('POST', `/customers/${customerId}/domains`, {
        name: 'interpublication.org',
      });
      assert.equal(added.status, 201);

      const linked = (await api('GET', `/failure-reports?domainId=${added.body.id}`)).body.reports;
      assert.equal(linked.length, 1);
      assert.deepEqual(await unknownDomains('/failure-reports/unknown-domains'), []);
    });

    test('linking raises no alerts', async () => {
      const alerts = (await api('GET', '/alerts')).body.alerts;
      assert.deepEqual(alerts, []);
    });

    test('adding a removed domain again links its reports', async () => {
      const domains = (await api('GET', `/customers/${customerId}/domains`)).body.domains;
      const old = domains.find(
        (entry: { name: string }) => entry.name === 'nobody-monitors.example',
      );
      assert.ok(old);
      assert.equal((await api('DELETE', `/domains/${old.id}`)).status, 204);
      assert.deepEqual(await unknownDomains('/reports/unknown-domains'), [
        'nobody-monitors.example',
      ]);

      const added = await api('POST', `/customers/${customerId}/domains`, {
        name: 'nobody-monitors.example',
      });
      assert.equal(added.status, 201);

      const linked = (await api('GET', `/reports?domainId=${added.body.id}`)).body.reports;
      assert.equal(linked.length, 1);
      assert.deepEqual(await unknownDomains('/reports/unknown-domains'), []);
    });
  });
}
