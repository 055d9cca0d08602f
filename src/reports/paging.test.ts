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
import { aggregateReportXml, reportDay, rows } from '../alerts/test-reports.ts';

const REPORTS = 5;

for (const engine of DATABASE_ENGINES) {
  describe(`list paging on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;

    /** Follow the next links from `path` and return every page's body. */
    async function pages(path: string): Promise<any[]> {
      const found: any[] = [];
      let next: string | null = path;
      while (next !== null) {
        const response: { status: number; body: any } = await api(
          'GET',
          next.replace(/^\/api\/v1/, ''),
        );
        assert.equal(response.status, 200, JSON.stringify(response.body));
        found.push(response.body);
        next = response.body.next;
      }
      return found;
    }

    before(async () => {
      database = await openTestDatabase(engine);
      service = await startService(database);
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
      const customerId = (await api('POST', '/customers', { name: 'Paged Retail' })).body.id;
      const domainId = (
        await api('POST', `/customers/${customerId}/domains`, { name: 'paged.example' })
      ).body.id;
      // Every report with a failing message fires the rule, so each report makes one alert.
      await api('PUT', `/domains/${domainId}/threshold`, { maxFailedMessages: 0 });
      for (let day = 1; day <= REPORTS; day += 1) {
        const xml = aggregateReportXml({
          domain: 'paged.example',
          orgName: 'google.com',
          reportId: `paged-${day}`,
          period: reportDay(day),
          records: rows(2, 5),
        });
        const upload = await api('POST', '/reports', xml, 'application/xml');
        assert.equal(upload.status, 201, JSON.stringify(upload.body));
      }
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
    });

    test('reports page with total and next', async () => {
      const found = await pages('/reports?limit=2');
      const ids = found.flatMap((page) => page.reports.map((report: { id: string }) => report.id));

      assert.equal(found.length, 3);
      assert.deepEqual(
        found.map((page) => page.reports.length),
        [2, 2, 1],
      );
      assert.deepEqual(
        found.map((page) => page.offset),
        [0, 2, 4],
      );
      assert.ok(found.every((page) => page.total === REPORTS));
      assert.equal(found[0].next, '/api/v1/reports?limit=2&offset=2');
      assert.equal(found[2].next, null);
      assert.equal(new Set(ids).size, REPORTS);
    });

    test('alerts page keeps the filter', async () => {
      const found = await pages('/alerts?kind=threshold&limit=3');
      const ids = found.flatMap((page) => page.alerts.map((alert: { id: string }) => alert.id));

      assert.equal(found.length, 2);
      assert.equal(found[0].total, REPORTS);
      assert.equal(found[0].next, '/api/v1/alerts?kind=threshold&limit=3&offset=3');
      assert.equal(found[1].alerts.length, 2);
      assert.equal(found[1].next, null);
      assert.equal(new Set(ids).size, REPORTS);
    });

    test('offset past the end is empty', async () => {
      const response = await api('GET', '/reports?offset=50');
      const invalid = await api('GET', '/alerts?offset=-1');

      assert.equal(response.status, 200);
      assert.deepEqual(response.body.reports, []);
      assert.equal(response.body.total, REPORTS);
      assert.equal(response.body.next, null);
      assert.equal(invalid.status, 400);
      assert.equal(invalid.body.error.field, 'offset');
    });
  });
}
