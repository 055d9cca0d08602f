import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
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

const fixture = (path: string) =>
  readFileSync(new URL(`../../test/fixtures/reports/${path}`, import.meta.url));

// A LinkedIn report about example.com from 10.10.10.10, with a full copy of the message.
const LINKEDIN = fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.eml');
const LINKEDIN_CRLF = fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.crlf.eml');
// An OpenDMARC report about interpublication.org from 148.163.85.135, headers only.
const OPENDMARC = fixture('mail-auth/arf/004.eml');
const EXIM_TEXT = fixture('parsedmarc/failure/exim_plain_text_only_no_arf_part.eml');

interface EmulatorRecord {
  id: number;
  [field: string]: unknown;
}

for (const engine of DATABASE_ENGINES) {
  describe(`failure reports on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let token = '';
    const ids: Record<string, string> = {};

    const ourTickets = async (): Promise<EmulatorRecord[]> => {
      const response = await fetch(`${emulator.url}/_emulator/records/Tickets`);
      const { records } = (await response.json()) as { records: EmulatorRecord[] };
      return records.filter(
        (ticket) =>
          typeof ticket.third_party_id_string === 'string' &&
          ticket.third_party_id_string.length > 0,
      );
    };

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: { DMARCDESK_KEEP_FAILURE_MESSAGES: 'true' },
      });
      token = (await createTestAccount(service.app)).token;
      api = apiClient(service.url, token);

      const customer = (await api('POST', '/customers', { name: 'Example Corp' })).body;
      ids.customer = customer.id;
      ids.domain = (
        await api('POST', `/customers/${customer.id}/domains`, { name: 'example.com' })
      ).body.id;
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('upload stores a failure report', async () => {
      const upload = await api('POST', '/reports', LINKEDIN, 'message/rfc822');
      assert.equal(upload.status, 201);
      assert.equal(upload.body.stored, 1);
      const [document] = upload.body.documents;
      assert.equal(document.kind, 'failure');
      assert.equal(document.domain, 'example.com');
      assert.equal(document.monitored, true);

      const report = (await api('GET', `/failure-reports/${document.reportId}`)).body;
      assert.equal(report.domainId, ids.domain);
      assert.equal(report.reportedDomain, 'example.com');
      assert.equal(report.sourceIp, '10.10.10.10');
      assert.equal(report.arrivalDate, '2019-04-30T02:09:00.000Z');
      assert.equal(report.receivedVia, 'upload');
      assert.equal(report.originalHeaders.subject, 'Subject line, could be UTF8 encoded');
      assert.equal(report.originalContent, 'message');
      assert.equal(report.rawMessageKept, true);
      assert.match(report.receivedAt, /Z$/);

      const message = await download(`/failure-reports/${report.id}/message`);
      assert.equal(message.status, 200);
      assert.deepEqual(message.bytes, LINKEDIN);
    });

    test('same report again is a duplicate', async () => {
      const again = await api('POST', '/reports', LINKEDIN_CRLF, 'message/rfc822');
      assert.equal(again.status, 200);
      assert.equal(again.body.stored, 0);
      assert.equal(again.body.duplicates, 1);
      assert.equal((await api('GET', '/failure-reports')).body.reports.length, 1);
    });

    test('same report encoded again is a duplicate', async () => {
      // Another MIME boundary changes every byte of the body but not the report.
      const boundary = '_000_0d00000000000000000d000000000000f00000s00000someserverloc_';
      const reencoded = Buffer.from(
        LINKEDIN.toString('latin1').replaceAll(boundary, '_re-encoded_boundary_'),
        'latin1',
      );
      const again = await api('POST', '/reports', reencoded, 'message/rfc822');
      assert.equal(again.status, 200);
      assert.equal(again.body.duplicates, 1);
      assert.equal((await api('GET', '/failure-reports')).body.reports.length, 1);
    });

    test('report raises one forensic alert', async () => {
      const alerts = (await api('GET', '/alerts?kind=forensic')).body.alerts;
      assert.equal(alerts.length, 1);
      const [alert] = alerts;
      assert.equal(alert.domainName, 'example.com');
      assert.equal(alert.evidence.sourceIp, '10.10.10.10');
      assert.equal(alert.evidence.headers.from, 'Sender <sender@example.com>');
      assert.deepEqual(alert.evidence.authFailure, ['dmarc']);
      assert.equal(alert.ticketStatus, 'not_routed');
    });

    test('unknown domains are counted', async () => {
      const upload = await api('POST', '/reports', OPENDMARC, 'message/rfc822');
      assert.equal(upload.status, 201);
      assert.equal(upload.body.documents[0].monitored, false);

      const unknown = (await api('GET', '/failure-reports/unknown-domains')).body.domains;
      assert.equal(unknown.length, 1);
      assert.equal(unknown[0].domain, 'interpublication.org');
      assert.equal(unknown[0].reports, 1);
      const onlyUnknown = (await api('GET', '/failure-reports?unknownDomains=true')).body.reports;
      assert.deepEqual(
        onlyUnknown.map((report: { reportedDomain: string }) => report.reportedDomain),
        ['interpublication.org'],
      );
      assert.equal((await api('GET', '/alerts?kind=forensic')).body.alerts.length, 1);
    });

    test('text-only report is stored', async () => {
      const upload = await api('POST', '/reports', EXIM_TEXT, 'message/rfc822');
      assert.equal(upload.status, 201);
      assert.equal(upload.body.documents[0].domain, 'example.com');
      const report = (await api('GET', `/failure-reports/${upload.body.documents[0].reportId}`))
        .body;
      assert.equal(report.format, 'text');
      assert.equal(report.sourceIp, '203.0.113.68');
      assert.equal((await api('GET', '/alerts?kind=forensic')).body.alerts.length, 2);
    });

    test('rejected upload is kept with its reason', async () => {
      const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x41));
      const response = await api('POST', '/reports', bomb, 'application/gzip');
      assert.equal(response.status, 422);
      assert.equal(response.body.error.details.reason, 'compression_ratio');
      const id = response.body.error.details.rejectedInputId;

      const listed = (await api('GET', '/rejected-inputs?receivedVia=upload')).body.rejectedInputs;
      const rejected = listed.find((entry: { id: string }) => entry.id === id);
      assert.ok(rejected, 'the rejected upload is listed');
      assert.equal(rejected.reasonCode, 'compression_ratio');
      assert.equal(rejected.receivedVia, 'upload');
      assert.equal(rejected.sizeBytes, bomb.length);
      assert.match(rejected.reason, /decompression bomb/);

      const content = await download(`/rejected-inputs/${id}/content`);
      assert.equal(content.status, 200);
      assert.deepEqual(content.bytes, bomb);
    });

    test('forensic alert files a HaloPSA ticket', async () => {
      const connected = await api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      assert.equal(connected.status, 200);
      const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients;
      const client = clients.find((entry: { inactive: boolean }) => !entry.inactive);
      const items = (await api('GET', '/integrations/halopsa/items')).body.items;
      const item = items.find(
        (entry: { name: string }) => entry.name === 'DMARC Monitoring (per domain)',
      );
      const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
      const mapped = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: ids.customer, haloClientId: client.id, haloItemId: item.id }],
      });
      assert.equal(mapped.status, 200);
      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${ids.customer}`, {
        ticketTypeId: types.defaultTicketTypeId,
        forensicDomainIds: [ids.domain],
      });
      assert.equal(rule.status, 200);

      const report = Buffer.from(
        LINKEDIN.toString('latin1')
          .replace('<BB.91.26019.C3EA7CC5@mail516.prod.linkedin.com>', '<second@linkedin.example>')
          .replace('Source-IP: 10.10.10.10', 'Source-IP: 198.51.100.77')
          .replace('Subject: Subject line, could be UTF8 encoded', 'Subject: Invoice 4711'),
        'latin1',
      );
      const upload = await api('POST', '/reports', report, 'message/rfc822');
      assert.equal(upload.status, 201);

      const alert = (await api('GET', '/alerts?kind=forensic')).body.alerts.find(
        (entry: { evidence: { sourceIp: string } }) => entry.evidence.sourceIp === '198.51.100.77',
      );
      assert.ok(alert, 'a forensic alert for the new report');
      const ticket = await eventually(async () => {
        const tickets = await ourTickets();
        return tickets.find((entry) => entry.third_party_id_string === alert.id);
      }, 'a forensic ticket in HaloPSA');
      assert.equal(ticket.client_id, client.id);
      assert.equal(ticket.tickettype_id, types.defaultTicketTypeId);
      assert.match(String(ticket.summary), /forensic/);
      assert.match(String(ticket.summary), /example\.com/);
      const details = String(ticket.details);
      assert.match(details, /Source IP: 198\.51\.100\.77/);
      // Ticket text replaces the < of values from reports, so that they cannot open HTML tags.
      assert.match(details, /From: Sender \u2039sender@example\.com>/);
      assert.match(details, /To: LinkedIn \u2039recipient@linkedin\.com>/);
      assert.match(details, /Subject: Invoice 4711/);
      assert.match(details, /Date: Tue, 30 Apr 2019 02:09:09 \+0000/);
      assert.match(details, /Message-ID: \u203901010101010101010101010101010101@ABAB01MS0016/);
      assert.match(details, /dmarc=fail \(p=none; dis=none\) header\.from=example\.com/);
      assert.match(details, new RegExp(`http://dmarcdesk\\.test/alerts/${alert.id}`));

      await eventually(async () => {
        const current = (await api('GET', `/alerts/${alert.id}`)).body;
        return current.ticketStatus === 'created' ? current : undefined;
      }, 'the alert to record its ticket');
    });

    test('a reused Message-ID about another message is stored', async () => {
      // A reporter that gives every report mail the same Message-ID reports another source.
      const before = (await api('GET', '/failure-reports')).body.reports.length;
      const other = Buffer.from(
        LINKEDIN.toString('latin1').replace('Source-IP: 10.10.10.10', 'Source-IP: 10.10.10.99'),
        'latin1',
      );
      const upload = await api('POST', '/reports', other, 'message/rfc822');
      assert.equal(upload.status, 201);
      assert.equal(upload.body.stored, 1);
      const report = (await api('GET', `/failure-reports/${upload.body.documents[0].reportId}`))
        .body;
      assert.equal(report.sourceIp, '10.10.10.99');
      assert.equal((await api('GET', '/failure-reports')).body.reports.length, before + 1);
      // The same report again is still one.
      const again = await api('POST', '/reports', other, 'message/rfc822');
      assert.equal(again.body.duplicates, 1);
    });

    /** Read a binary route, which the JSON api() helper cannot. */
    async function download(path: string): Promise<{ status: number; bytes: Buffer }> {
      const response = await fetch(`${service.url}/api/v1${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
    }
  });
}
