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
import { aggregateReportXml, reportDay, rows, type TestRecord } from './test-reports.ts';

// A LinkedIn failure report about example.com.
const LINKEDIN = readFileSync(
  new URL(
    '../../test/fixtures/reports/parsedmarc/failure/dmarc_ruf_report_linkedin.eml',
    import.meta.url,
  ),
);

for (const engine of DATABASE_ENGINES) {
  describe(`threshold rules on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let customerId = '';
    let reportNumber = 0;

    async function addDomain(name: string): Promise<string> {
      const response = await api('POST', `/customers/${customerId}/domains`, { name });
      assert.equal(response.status, 201, JSON.stringify(response.body));
      return response.body.id;
    }

    /** Upload a report for day `day`, or for an explicit period. */
    async function upload(
      domain: string,
      day: number | { begin: Date; end: Date },
      records: TestRecord[],
      orgName = 'google.com',
    ) {
      reportNumber += 1;
      const xml = aggregateReportXml({
        domain,
        orgName,
        reportId: `test-${reportNumber}`,
        period: typeof day === 'number' ? reportDay(day) : day,
        records,
      });
      const response = await api('POST', '/reports', xml, 'application/xml');
      assert.equal(response.status, 201, JSON.stringify(response.body));
      assert.equal(response.body.stored, 1);
    }

    async function alertsOf(name: string) {
      const all = (await api('GET', '/alerts?kind=threshold&limit=1000')).body.alerts;
      return all
        .filter((alert: { domainName: string }) => alert.domainName === name)
        .sort((a: any, b: any) => a.evidence.period.end.localeCompare(b.evidence.period.end));
    }

    before(async () => {
      database = await openTestDatabase(engine);
      service = await startService(database);
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
      customerId = (await api('POST', '/customers', { name: 'Window Retail' })).body.id;
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
    });

    test('plain maxFailedMessages judges each report', async () => {
      const domainId = await addDomain('plain.example');
      const rule = await api('PUT', `/domains/${domainId}/threshold`, { maxFailedMessages: 5 });
      assert.equal(rule.status, 200);
      assert.equal(rule.body.maxFailedMessages, 5);
      assert.equal(rule.body.windowHours, null);
      assert.equal(rule.body.maxFailurePercent, null);

      // Two reporters on the same day, 4 failing each: no single report exceeds 5.
      await upload('plain.example', 1, rows(4, 10), 'google.com');
      await upload('plain.example', 1, rows(4, 10), 'Outlook.com');
      assert.equal((await alertsOf('plain.example')).length, 0);

      await upload('plain.example', 2, rows(6, 10));
      const alerts = await alertsOf('plain.example');
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].evidence.failedMessages, 6);
      assert.equal(alerts[0].evidence.reportCount, 1);
      assert.deepEqual(alerts[0].evidence.exceeded, ['failed_count']);
      assert.equal(alerts[0].evidence.period.end, reportDay(2).end.toISOString());
    });

    test('count window re-judges later windows for a late report', async () => {
      const domainId = await addDomain('window.example');
      const rule = await api('PUT', `/domains/${domainId}/threshold`, {
        maxFailedMessages: 10,
        windowHours: 48,
      });
      assert.equal(rule.status, 200);
      assert.equal(rule.body.windowHours, 48);
      assert.equal(rule.body.effectiveClearAfterHours, 48);

      // Day 3 first, then day 1: each window contains one of them, 4 and 5 failing.
      await upload('window.example', 3, rows(4, 46));
      await upload('window.example', 1, rows(5, 45));
      assert.equal((await alertsOf('window.example')).length, 0);

      // Day 2 arrives late. The window ending on day 2 now contains days 1 and 2 (5 + 7), and
      // the one ending on day 3 contains days 2 and 3 (7 + 4): both exceed 10.
      await upload('window.example', 2, rows(7, 43));
      const alerts = await alertsOf('window.example');
      assert.equal(alerts.length, 2);
      assert.equal(alerts[0].evidence.period.end, reportDay(2).end.toISOString());
      assert.equal(
        alerts[0].evidence.period.begin,
        new Date(reportDay(2).end.getTime() - 48 * 3600_000).toISOString(),
      );
      assert.equal(alerts[0].evidence.failedMessages, 12);
      assert.equal(alerts[0].evidence.totalMessages, 100);
      assert.equal(alerts[0].evidence.reportCount, 2);
      assert.equal(alerts[1].evidence.period.end, reportDay(3).end.toISOString());
      assert.equal(alerts[1].evidence.failedMessages, 11);
      assert.equal(alerts[0].incidentId, alerts[1].incidentId);

      const incident = (await api('GET', `/incidents/${alerts[0].incidentId}`)).body;
      assert.equal(incident.incident.status, 'open');
      assert.equal(incident.incident.firingCount, 2);
      assert.equal(incident.alerts.length, 2);
      assert.equal(incident.incident.ruleId, rule.body.id);
      assert.match(
        incident.incident.fingerprint,
        new RegExp(`/domain/${domainId}/rule/${rule.body.id}$`),
      );
    });

    test('rate rule waits for the minimum volume', async () => {
      const domainId = await addDomain('rate.example');
      const rule = await api('PUT', `/domains/${domainId}/threshold`, {
        maxFailurePercent: 20,
        minMessages: 100,
        windowHours: 24,
      });
      assert.equal(rule.status, 200);
      assert.equal(rule.body.maxFailurePercent, 20);
      assert.equal(rule.body.minMessages, 100);

      // 60 % failing, but 50 messages are below the minimum volume.
      await upload('rate.example', 1, rows(30, 20), 'google.com');
      assert.equal((await alertsOf('rate.example')).length, 0);

      // A second reporter for the same day brings the window to 40 of 110 (36.36 %).
      await upload('rate.example', 1, rows(10, 50, '203.0.113'), 'Outlook.com');
      const alerts = await alertsOf('rate.example');
      assert.equal(alerts.length, 1);
      assert.deepEqual(alerts[0].evidence.exceeded, ['failure_percent']);
      assert.equal(alerts[0].evidence.failedMessages, 40);
      assert.equal(alerts[0].evidence.totalMessages, 110);
      assert.equal(alerts[0].evidence.failurePercent, 36.36);
      assert.deepEqual(alerts[0].evidence.reporters, ['Outlook.com', 'google.com']);
      assert.deepEqual(alerts[0].evidence.topSources, [
        { sourceIp: '198.51.100.10', failedMessages: 15 },
        { sourceIp: '198.51.100.20', failedMessages: 15 },
        { sourceIp: '203.0.113.10', failedMessages: 5 },
        { sourceIp: '203.0.113.20', failedMessages: 5 },
      ]);
    });

    test('clear window resolves the incident after the clear time', async () => {
      const [alert] = await alertsOf('rate.example');
      // Day 2: 5 of 200 failing (2.5 %), clear, and 24 hours after the failing window.
      await upload('rate.example', 2, rows(5, 195));
      const { incident } = (await api('GET', `/incidents/${alert.incidentId}`)).body;
      assert.equal(incident.status, 'resolved');
      assert.equal(incident.lastClearObservedAt, reportDay(2).end.toISOString());
      assert.match(incident.resolution, /clear for at least 24 hours of report time/);

      const resolved = (await api('GET', '/incidents?status=resolved&kind=threshold')).body;
      assert.ok(resolved.incidents.some((entry: { id: string }) => entry.id === incident.id));
    });

    test('late report for a resolved window opens nothing', async () => {
      const [first] = await alertsOf('rate.example');
      // A late report for the first half of day 1 ends at noon, a window end not judged before.
      // That window fires, but the incident already saw day 2 clear, so the firing is kept as
      // late evidence of the resolved incident.
      const day1 = reportDay(1);
      const noon = new Date(day1.begin.getTime() + 12 * 3600_000);
      await upload(
        'rate.example',
        { begin: day1.begin, end: noon },
        rows(40, 10, '203.0.113'),
        'Yahoo',
      );
      const alerts = await alertsOf('rate.example');
      assert.equal(alerts.length, 2);
      const late = alerts.find((alert: any) => alert.evidence.period.end === noon.toISOString());
      assert.ok(late, 'a firing for the window ending at noon');
      assert.equal(late.incidentId, first.incidentId);
      assert.equal(late.ticketStatus, 'not_routed');

      const incidents = (await api('GET', '/incidents?kind=threshold')).body.incidents.filter(
        (incident: { subjectName: string }) => incident.subjectName === 'rate.example',
      );
      assert.equal(incidents.length, 1);
      assert.equal(incidents[0].id, first.incidentId);
      assert.equal(incidents[0].status, 'resolved');
      assert.equal(incidents[0].firingCount, 2);
    });

    test('group rule sums its member domains', async () => {
      const first = await addDomain('shop-a.example');
      const second = await addDomain('shop-b.example');
      const group = (
        await api('POST', `/customers/${customerId}/groups`, {
          name: 'Shops',
          domainIds: [first, second],
        })
      ).body;

      const noWindow = await api('PUT', `/groups/${group.id}/threshold`, { maxFailedMessages: 10 });
      assert.equal(noWindow.status, 400);
      assert.equal(noWindow.body.error.field, 'windowHours');

      const rule = await api('PUT', `/groups/${group.id}/threshold`, {
        maxFailedMessages: 10,
        windowHours: 24,
      });
      assert.equal(rule.status, 200);
      assert.equal(rule.body.groupId, group.id);
      assert.equal(rule.body.domainId, null);
      assert.equal((await api('GET', `/groups/${group.id}/threshold`)).body.rule.id, rule.body.id);

      // 6 failing on each domain: neither alone exceeds 10, together they do.
      await upload('shop-b.example', 4, rows(6, 10, '203.0.113'));
      assert.equal((await alertsOf('Shops')).length, 0);
      await upload('shop-a.example', 4, rows(6, 10));
      const alerts = await alertsOf('Shops');
      assert.equal(alerts.length, 1);
      const [alert] = alerts;
      assert.equal(alert.groupId, group.id);
      assert.equal(alert.domainId, null);
      assert.equal(alert.evidence.subject.type, 'group');
      assert.deepEqual(alert.evidence.subject.domains, ['shop-a.example', 'shop-b.example']);
      assert.equal(alert.evidence.failedMessages, 12);
      assert.equal(alert.evidence.totalMessages, 32);
      assert.equal(alert.evidence.reportCount, 2);
      assert.equal(alert.evidence.topSources.length, 4);
      assert.match(alert.summary, /domain group Shops: 12 of 32 messages/);

      const listed = (await api('GET', '/threshold-rules')).body.rules;
      assert.ok(listed.some((entry: { groupId: string }) => entry.groupId === group.id));

      assert.equal((await api('DELETE', `/groups/${group.id}/threshold`)).status, 204);
      assert.equal((await api('GET', `/groups/${group.id}/threshold`)).body.rule, null);
    });

    test('paused domain stores reports silently', async () => {
      const domainId = await addDomain('paused.example');
      const rule = await api('PUT', `/domains/${domainId}/threshold`, { maxFailedMessages: 5 });
      assert.equal(rule.status, 200);
      const paused = await api('PATCH', `/domains/${domainId}`, { status: 'paused' });
      assert.equal(paused.status, 200);

      await upload('paused.example', 1, rows(50, 10));
      const stored = (await api('GET', `/reports?domainId=${domainId}`)).body.reports;
      assert.equal(stored.length, 1);
      assert.equal((await alertsOf('paused.example')).length, 0);

      // Resumed, the next report over the limit alerts.
      assert.equal((await api('PATCH', `/domains/${domainId}`, { status: 'active' })).status, 200);
      await upload('paused.example', 2, rows(50, 10));
      assert.equal((await alertsOf('paused.example')).length, 1);
    });

    test('group rule leaves out paused members', async () => {
      const first = await addDomain('team-a.example');
      const second = await addDomain('team-b.example');
      const group = (
        await api('POST', `/customers/${customerId}/groups`, {
          name: 'Teams',
          domainIds: [first, second],
        })
      ).body;
      const rule = await api('PUT', `/groups/${group.id}/threshold`, {
        maxFailedMessages: 10,
        windowHours: 24,
      });
      assert.equal(rule.status, 200);
      assert.equal((await api('PATCH', `/domains/${second}`, { status: 'paused' })).status, 200);

      // 8 failing on each: together over 10, but the paused member's report does not count.
      await upload('team-b.example', 5, rows(8, 10, '203.0.113'));
      await upload('team-a.example', 5, rows(8, 10));
      assert.equal((await alertsOf('Teams')).length, 0);

      // A second report of the active member brings its own total to 16.
      await upload('team-a.example', 5, rows(8, 10), 'Outlook.com');
      const alerts = await alertsOf('Teams');
      assert.equal(alerts.length, 1);
      assert.deepEqual(alerts[0].evidence.subject.domains, ['team-a.example']);
      assert.equal(alerts[0].evidence.failedMessages, 16);
      assert.equal(alerts[0].evidence.reportCount, 2);
    });

    test('rules of another account are not found', async () => {
      const domainId = await addDomain('private.example');
      const group = (
        await api('POST', `/customers/${customerId}/groups`, {
          name: 'Private',
          domainIds: [domainId],
        })
      ).body;
      await api('PUT', `/domains/${domainId}/threshold`, { maxFailedMessages: 5 });
      const other = apiClient(
        service.url,
        (await createTestAccount(service.app, 'Other MSP')).token,
      );

      const domainRule = await other('GET', `/domains/${domainId}/threshold`);
      const groupRule = await other('GET', `/groups/${group.id}/threshold`);
      const unknown = await api('GET', `/domains/${crypto.randomUUID()}/threshold`);

      assert.equal(domainRule.status, 404);
      assert.equal(domainRule.body.error.code, 'not_found');
      assert.equal(groupRule.status, 404);
      assert.equal(unknown.status, 404);
      assert.equal((await api('GET', `/domains/${domainId}/threshold`)).status, 200);
    });

    test('rule without a limit is rejected', async () => {
      const domainId = await addDomain('nolimit.example');
      const response = await api('PUT', `/domains/${domainId}/threshold`, { windowHours: 24 });
      assert.equal(response.status, 400);
      assert.match(response.body.error.message, /maxFailedMessages, maxFailurePercent or both/);
      const percent = await api('PUT', `/domains/${domainId}/threshold`, {
        maxFailurePercent: 120,
      });
      assert.equal(percent.status, 400);
      assert.equal(percent.body.error.field, 'maxFailurePercent');
    });

    test('forensic incident resolves after a quiet time', async () => {
      await addDomain('example.com');
      const upload = await api('POST', '/reports', LINKEDIN, 'message/rfc822');
      assert.equal(upload.status, 201);
      const [alert] = (await api('GET', '/alerts?kind=forensic')).body.alerts;
      const before = (await api('GET', `/incidents/${alert.incidentId}`)).body.incident;
      assert.equal(before.status, 'open');
      assert.equal(before.clearMode, 'idle');

      const early = await service.app.incidents.runOnce(new Date(Date.now() + 3600_000));
      assert.equal(early.resolved, 0);
      const late = await service.app.incidents.runOnce(new Date(Date.now() + 25 * 3600_000));
      assert.equal(late.resolved, 1);
      const after = (await api('GET', `/incidents/${alert.incidentId}`)).body.incident;
      assert.equal(after.status, 'resolved');
      assert.match(after.resolution, /Nothing fired for 24\.0 hours/);
    });

    test('paused domain raises no forensic alert', async () => {
      // example.com was added by the test before.
      const domain = (await api('GET', '/domains')).body.domains.find(
        (entry: { name: string }) => entry.name === 'example.com',
      );
      assert.ok(domain, 'example.com exists');
      assert.equal((await api('PATCH', `/domains/${domain.id}`, { status: 'paused' })).status, 200);
      const before = (await api('GET', '/alerts?kind=forensic')).body.alerts.length;
      const storedBefore = (await api('GET', '/failure-reports')).body.reports.length;

      // Another report, with its own message id and source, so that it is not a duplicate.
      const copy = Buffer.from(
        LINKEDIN.toString('latin1')
          .replace('BB.91.26019.C3EA7CC5@', 'BB.91.26019.C3EA7CC6@')
          .replaceAll('10.10.10.10', '10.10.10.11'),
        'latin1',
      );
      const upload = await api('POST', '/reports', copy, 'message/rfc822');
      assert.equal(upload.status, 201, JSON.stringify(upload.body));

      assert.equal((await api('GET', '/failure-reports')).body.reports.length, storedBefore + 1);
      assert.equal((await api('GET', '/alerts?kind=forensic')).body.alerts.length, before);
    });
  });
}
