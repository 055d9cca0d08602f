import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { pino } from 'pino';

import { openDatabase, type Database } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createAccount } from '../platform/accounts.ts';
import { createCustomer } from '../platform/customers.ts';
import { DomainService } from '../platform/domains.ts';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import { parseAggregateReport } from './aggregate-parser.ts';
import { buildZip } from './container-test-archives.ts';
import { ReportIngestService } from './ingest.ts';
import {
  countUnknownDomainReports,
  getAggregateReport,
  listAggregateReports,
  readCount,
  type StoredAggregateReport,
} from './report-store.ts';
import { syntheticReport } from './synthetic-reports.ts';

const silent = pino({ level: 'silent' });
const SOURCE = { via: 'upload', origin: 'aggregate-ingest.test' } as const;

for (const engine of DATABASE_ENGINES) {
  describe(`streaming aggregate ingest on ${engine}`, () => {
    let testDatabase: TestDatabase;
    let db: Database;
    let accountId = '';
    let ingest: ReportIngestService;
    const stored: StoredAggregateReport[] = [];

    const count = async (table: 'aggregate_reports' | 'aggregate_records') => {
      const [row] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
      return row?.n ?? -1;
    };

    before(async () => {
      testDatabase = await openTestDatabase(engine);
      db = await openDatabase({
        databaseUrl: testDatabase.databaseUrl,
        dataDir: '',
        logger: silent,
        inMemory: true,
      });
      await migrate(db, silent);
      accountId = (await createAccount(db, { name: 'Streaming MSP' })).id;
      ingest = new ReportIngestService(db, silent);
      ingest.onAggregateReportStored(async (_tx, report) => {
        stored.push(report);
      });
    });

    after(async () => {
      await db.close();
      await testDatabase.drop();
    });

    beforeEach(async () => {
      await db.query('DELETE FROM aggregate_reports');
      await db.query('DELETE FROM rejected_inputs');
      stored.length = 0;
    });

    it('stores a large gzip report with its totals', async () => {
      const xml = syntheticReport({ records: 3000, reportId: 'large-1' });
      const expected = parseAggregateReport(xml).records;
      const failing = expected.filter((record) => record.dkim === 'fail' && record.spf === 'fail');

      const result = await ingest.receive(accountId, gzipSync(xml), SOURCE);
      assert.equal(result.stored, 1);
      assert.equal(await count('aggregate_records'), 3000);

      const report = stored[0];
      assert.ok(report);
      assert.equal(report.recordCount, 3000);
      assert.equal(
        report.messageCount,
        expected.reduce((sum, record) => sum + record.count, 0),
      );
      assert.equal(
        report.failedCount,
        failing.reduce((sum, record) => sum + record.count, 0),
      );
      assert.equal(report.topFailingSources.length, 10);
      const top = report.topFailingSources[0];
      const mostFailed = Math.max(...failing.map((record) => record.count));
      assert.ok(top);
      assert.ok(top.failedMessages >= mostFailed, `top source has ${top.failedMessages}`);

      const [row] = await db.query<{ content_sha256: string; message_count: string | number }>(
        'SELECT content_sha256, message_count FROM aggregate_reports WHERE id = $1',
        [report.id],
      );
      assert.match(row?.content_sha256 ?? '', /^[0-9a-f]{64}$/);
      assert.equal(readCount(row?.message_count), report.messageCount);
    });

    it('stores a report delivered twice once', async () => {
      const xml = syntheticReport({ records: 700, reportId: 'twice' });
      const first = await ingest.receive(accountId, xml, SOURCE);
      const second = await ingest.receive(accountId, gzipSync(xml), SOURCE);
      assert.equal(first.stored, 1);
      assert.equal(second.duplicates, 1);
      assert.equal(
        second.documents[0]?.status === 'duplicate' && second.documents[0].reportId,
        first.documents[0]?.status === 'stored' && first.documents[0].reportId,
      );
      assert.equal(await count('aggregate_records'), 700);
    });

    it('treats a resent report id as the same report', async () => {
      await ingest.receive(accountId, syntheticReport({ records: 5, reportId: 'resent' }), SOURCE);
      const changed = syntheticReport({ records: 8, reportId: 'resent', seed: 9 });
      const result = await ingest.receive(accountId, changed, SOURCE);
      assert.equal(result.duplicates, 1);
      assert.equal(await count('aggregate_records'), 5);
    });

    it('keeps one report id per policy domain', async () => {
      const first = syntheticReport({ records: 4, reportId: 'shared-id', domain: 'one.example' });
      const second = syntheticReport({ records: 6, reportId: 'shared-id', domain: 'two.example' });
      const resent = syntheticReport({
        records: 6,
        reportId: 'shared-id',
        domain: 'TWO.example',
        seed: 3,
      });

      const results = [
        await ingest.receive(accountId, first, SOURCE),
        await ingest.receive(accountId, second, SOURCE),
        await ingest.receive(accountId, resent, SOURCE),
      ];
      const domains = await db.query<{ policy_domain: string }>(
        'SELECT policy_domain FROM aggregate_reports ORDER BY policy_domain',
      );

      assert.equal(results[0]!.stored, 1);
      assert.equal(results[1]!.stored, 1);
      // The same reporter, id and domain in other case is the same report.
      assert.equal(results[2]!.duplicates, 1);
      assert.deepEqual(
        domains.map((row) => row.policy_domain),
        ['one.example', 'two.example'],
      );
      assert.equal(await count('aggregate_records'), 10);
    });

    it('treats identical bytes as the same report', async () => {
      const xml = syntheticReport({ records: 600, reportId: 'same-bytes' });
      const first = await ingest.receive(accountId, xml, SOURCE);
      const firstId = first.documents[0]?.status === 'stored' ? first.documents[0].reportId : '';
      // With the stored reporter changed, only the content hash can match.
      await db.query(`UPDATE aggregate_reports SET org_name = 'edited' WHERE id = $1`, [firstId]);

      const second = await ingest.receive(accountId, gzipSync(xml), SOURCE);
      const outcome = second.documents[0];
      assert.equal(outcome?.status, 'duplicate');
      assert.equal(outcome?.status === 'duplicate' && outcome.reportId, firstId);
      assert.equal(await count('aggregate_reports'), 1);
      assert.equal(await count('aggregate_records'), 600);
      assert.equal(stored.length, 1);
    });

    it('stores nothing of a report broken midway', async () => {
      const xml = syntheticReport({ records: 4000, reportId: 'broken' }).toString();
      // Past the first batches, so that records were written before the error rolled them back.
      const at = xml.indexOf('<record>', Math.floor(xml.length * 0.8));
      const broken = Buffer.from(`${xml.slice(0, at)}<record><row></record>${xml.slice(at)}`);

      const result = await ingest.receive(accountId, gzipSync(broken), SOURCE);
      const outcome = result.documents[0];
      assert.equal(result.rejected, 1);
      assert.ok(outcome?.status === 'rejected');
      assert.equal(outcome.code, 'not_well_formed');
      assert.equal(await count('aggregate_reports'), 0);
      assert.equal(await count('aggregate_records'), 0);
      assert.equal(stored.length, 0);

      const [rejected] = await db.query<{ id: string; size_bytes: string | number }>(
        'SELECT id, size_bytes FROM rejected_inputs WHERE id = $1',
        [outcome.rejectedInputId],
      );
      assert.ok(rejected);
      assert.ok(Number(rejected.size_bytes) > 0);
    });

    it('stores counts above 2^31 - 1', async () => {
      // One record over 2^31 - 1, and four records whose sum is over it.
      const oneLarge = syntheticReport({ records: 3, reportId: 'large-record' })
        .toString()
        .replace(/<count>\d+<\/count>/, '<count>3000000000</count>');
      const fourLarge = syntheticReport({ records: 4, reportId: 'large-total', seed: 5 })
        .toString()
        .replace(/<count>\d+<\/count>/g, '<count>1500000000</count>');

      const first = await ingest.receive(accountId, Buffer.from(oneLarge), SOURCE);
      const second = await ingest.receive(accountId, Buffer.from(fourLarge), SOURCE);
      assert.equal(first.stored, 1, JSON.stringify(first.documents));
      assert.equal(second.stored, 1, JSON.stringify(second.documents));

      const reports = await listAggregateReports(db, accountId);
      const total = reports.find((report) => report.reportId === 'large-total');
      assert.equal(total?.messageCount, 6_000_000_000);
      assert.equal(stored.find((report) => report.reportId === 'large-total')?.messageCount, 6e9);
      const record = reports.find((report) => report.reportId === 'large-record');
      assert.ok(record);
      const detail = await getAggregateReport(db, accountId, record.id);
      assert.equal(detail.records[0]?.count, 3_000_000_000);
      const unknown = await countUnknownDomainReports(db, accountId);
      assert.equal(typeof unknown[0]?.messages, 'number');
      assert.ok((unknown[0]?.messages ?? 0) > 9_000_000_000);
    });

    it('rejects counts adding up past 2^53 - 1', async () => {
      const xml = syntheticReport({ records: 2, reportId: 'too-large-total' })
        .toString()
        .replace(/<count>\d+<\/count>/g, '<count>5000000000000000</count>');
      const result = await ingest.receive(accountId, Buffer.from(xml), SOURCE);
      const outcome = result.documents[0];
      assert.equal(result.rejected, 1);
      assert.ok(outcome?.status === 'rejected');
      assert.equal(outcome.code, 'invalid_report');
      assert.match(outcome.reason, /add up to more than 9007199254740991/);
      assert.doesNotMatch(outcome.reason, /database error/);
      assert.equal(await count('aggregate_reports'), 0);
      assert.equal(await count('aggregate_records'), 0);
    });

    it('links a Unicode policy domain', async () => {
      const customer = await createCustomer(db, accountId, 'Bookshop');
      const domain = await new DomainService(db).add(accountId, customer.id, {
        name: 'bücher.example',
      });
      assert.equal(domain.name, 'xn--bcher-kva.example');

      const xml = syntheticReport({ records: 2, reportId: 'unicode', domain: 'Bücher.example' });
      const result = await ingest.receive(accountId, xml, SOURCE);
      const outcome = result.documents[0];
      const [row] = await db.query<{ domain_id: string | null; policy_domain: string }>(
        'SELECT domain_id, policy_domain FROM aggregate_reports WHERE report_id = $1',
        ['unicode'],
      );

      assert.equal(result.stored, 1);
      assert.ok(outcome?.status === 'stored');
      assert.equal(outcome.monitored, true);
      assert.equal(row?.domain_id, domain.id);
      assert.equal(row?.policy_domain, 'xn--bcher-kva.example');
    });

    it('stores a small report with a bare ampersand', async () => {
      const xml = syntheticReport({ records: 30, reportId: 'amp', orgName: 'AT&T Mail' });
      const result = await ingest.receive(accountId, gzipSync(xml), SOURCE);
      assert.equal(result.stored, 1);
      assert.equal(await count('aggregate_records'), 30);
      const [row] = await db.query<{ org_name: string; warnings: string[] }>(
        'SELECT org_name, warnings FROM aggregate_reports',
      );
      assert.equal(row?.org_name, 'AT&T Mail');
      assert.match(row?.warnings[0] ?? '', /^The XML is not well-formed as sent/);
      assert.equal(stored[0]?.recordCount, 30);
    });

    it('rejects a gzip with a bad CRC whole', async () => {
      const gzip = gzipSync(syntheticReport({ records: 50, reportId: 'crc' }));
      gzip.writeUInt32LE((gzip.readUInt32LE(gzip.length - 8) ^ 1) >>> 0, gzip.length - 8);
      const result = await ingest.receive(accountId, gzip, SOURCE);
      assert.equal(result.inputRejection?.code, 'corrupt_gzip');
      assert.equal(await count('aggregate_reports'), 0);
      assert.equal(await count('aggregate_records'), 0);
    });

    it('keeps the good member of a zip beside a broken one', async () => {
      const good = syntheticReport({ records: 20, reportId: 'zip-good' });
      const bad = Buffer.from(
        syntheticReport({ records: 20, reportId: 'zip-bad' }).toString().replace('</feedback>', ''),
      );
      const result = await ingest.receive(
        accountId,
        buildZip([
          { name: 'good.xml', data: good },
          { name: 'bad.xml', data: bad },
        ]),
        SOURCE,
      );
      assert.deepEqual(
        result.documents.map((document) => [document.name, document.status]),
        [
          ['good.xml', 'stored'],
          ['bad.xml', 'rejected'],
        ],
      );
      assert.equal(await count('aggregate_records'), 20);
    });

    it('warns of each skipped zip member', async () => {
      const report = syntheticReport({ records: 3, reportId: 'zip-skipped' });
      const result = await ingest.receive(
        accountId,
        buildZip([
          { name: 'README.txt', data: Buffer.from('Reports for the week.\n') },
          { name: 'report.xml', data: report },
          { name: 'logo.png', data: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]) },
        ]),
        SOURCE,
      );
      const expected = [
        'Skipped zip member "README.txt" contains plain text starting with "Reports for the week. ": it is not a report.',
        'Skipped zip member "logo.png" contains a PNG image: it is not a report.',
      ];
      const [row] = await db.query<{ warnings: string[] }>(
        'SELECT warnings FROM aggregate_reports WHERE report_id = $1',
        ['zip-skipped'],
      );

      assert.equal(result.stored, 1);
      assert.deepEqual(result.warnings, expected);
      assert.deepEqual(row?.warnings.slice(-2), expected);
    });

    it('gives no warnings without skipped members', async () => {
      const result = await ingest.receive(
        accountId,
        buildZip([
          { name: 'only.xml', data: syntheticReport({ records: 2, reportId: 'zip-only' }) },
        ]),
        SOURCE,
      );

      assert.equal(result.stored, 1);
      assert.equal(result.warnings, undefined);
    });

    for (const layer of ['xml', 'gzip'] as const) {
      it(`lists zip members past the limit (${layer})`, async () => {
        // Twelve members of one size, with a limit that lets five and a half of them expand.
        // Plain XML members are stopped by their declared size, gzip members while inflating.
        const reports = Array.from({ length: 12 }, (_, index) =>
          syntheticReport({ records: 200, reportId: `fat-${layer}-${index}` }),
        );
        const size = Math.max(...reports.map((report) => report.length));
        const names = reports.map((_, index) =>
          layer === 'xml' ? `fat-${index}.xml` : `fat-${index}.xml.gz`,
        );
        const zip = buildZip(
          reports.map((report, index) => ({
            name: names[index] as string,
            data: layer === 'xml' ? report : gzipSync(report),
          })),
        );
        const limited = new ReportIngestService(db, silent, {
          limits: { maxExpandedBytes: Math.floor(5.5 * size) },
        });

        const result = await limited.receive(accountId, zip, SOURCE);

        assert.equal(result.stored, 5);
        assert.equal(result.rejected, 7);
        assert.deepEqual(
          result.documents.map((document) => [document.name, document.status]),
          names.map((name, index) => [name, index < 5 ? 'stored' : 'rejected']),
        );
        const [stopped, ...unread] = result.documents.slice(5);
        assert.ok(stopped?.status === 'rejected');
        assert.equal(stopped.code, 'too_large');
        assert.match(stopped.reason, /^Zip member "fat-5\.xml(\.gz)?" expands to more than/);
        for (const document of unread) {
          assert.ok(document.status === 'rejected');
          assert.equal(document.code, 'too_large');
          assert.match(document.reason, /^Not read, because reading stopped at "fat-5\.xml/);
        }

        assert.ok(result.storedInPart);
        assert.equal(result.storedInPart.code, 'too_large');
        assert.match(result.storedInPart.reason, /^The input was stored only in part/);
        assert.match(result.storedInPart.reason, /Reading stopped at "fat-5\.xml/);
        assert.match(result.storedInPart.reason, /the 6 members after it \("fat-6\.xml/);

        const rows = await db.query<{ id: string; reason: string }>(
          'SELECT id, reason FROM rejected_inputs',
        );
        assert.equal(rows.length, 1);
        assert.equal(rows[0]?.id, result.storedInPart.rejectedInputId);
        assert.equal(rows[0]?.reason, result.storedInPart.reason);
        assert.equal(await count('aggregate_reports'), 5);
      });
    }
  });
}
