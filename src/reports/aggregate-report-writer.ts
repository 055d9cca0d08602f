import type { Queryable } from '../db/database.ts';
import type {
  AggregateRecord,
  AggregateReportHeader,
  AggregateReportSummary,
  ParsedAggregateReport,
} from './aggregate-parser.ts';
import { failsDmarc, readCount, type StoredAggregateReport } from './report-store.ts';

export type StoreOutcome =
  { status: 'stored'; report: StoredAggregateReport } | { status: 'duplicate'; existingId: string };

/** Failing sources listed on a stored report for its listeners. */
const TOP_FAILING_SOURCES = 10;

// One statement stays well under PostgreSQL's limit of 65,535 parameters (12 per row here).
const RECORDS_PER_INSERT = 500;
const RECORD_COLUMNS = 12;

/**
 * Stores one aggregate report while it is parsed, inside the caller's transaction: the report
 * row when the header is known, the records batch by batch, and the totals, warnings and
 * content hash at the end. A report is the same as a stored one when its reporter and report id
 * match, found when the header is written, or when its bytes are identical, found at the end. A
 * duplicate's records are not written. The caller rolls the transaction back when the parse
 * fails, so a report rejected midway leaves nothing stored.
 */
export class AggregateReportWriter {
  private reportRowId: string | null = null;
  private existingId: string | null = null;
  private header: AggregateReportHeader | null = null;
  private domainId: string | null = null;
  private messageCount = 0;
  private failedCount = 0;
  private recordCount = 0;

  constructor(
    private readonly tx: Queryable,
    private readonly input: { accountId: string; receivedVia: string },
  ) {}

  /**
   * Inserts the report row, unless the account already has a report of this reporter, report
   * id and policy domain. The content hash is not known yet, so the row gets a placeholder that is unique
   * until finish replaces it.
   */
  async begin(header: AggregateReportHeader, domainId: string | null): Promise<void> {
    this.header = header;
    this.domainId = domainId;
    const [inserted] = await this.tx.query<{ id: string }>(
      `INSERT INTO aggregate_reports (account_id, domain_id, policy_domain, org_name,
          reporter_email, report_id, period_begin, period_end, schema, policy, message_count,
          failed_count, warnings, content_sha256, received_via)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'rfc7489', $9, 0, 0, '[]',
               'pending:' || gen_random_uuid(), $10)
       ON CONFLICT DO NOTHING
       RETURNING id`,
      [
        this.input.accountId,
        domainId,
        header.policy.domain,
        header.reporter.orgName,
        header.reporter.email,
        header.reportId,
        header.period.begin,
        header.period.end,
        JSON.stringify(header.policy),
        this.input.receivedVia,
      ],
    );
    if (inserted) {
      this.reportRowId = inserted.id;
      return;
    }
    const [existing] = await this.tx.query<{ id: string }>(
      `SELECT id FROM aggregate_reports
        WHERE account_id = $1 AND org_name = $2 AND report_id = $3
          AND lower(policy_domain) = lower($4)`,
      [this.input.accountId, header.reporter.orgName, header.reportId, header.policy.domain],
    );
    if (!existing) {
      throw new Error(
        `Inserting aggregate report ${header.reportId} of ${header.reporter.orgName} for ` +
          `${header.policy.domain} conflicted, but no report with that reporter, id and policy ` +
          'domain exists; retry the upload.',
      );
    }
    this.existingId = existing.id;
  }

  /** Inserts records of the report begun, in statements of at most RECORDS_PER_INSERT rows. */
  async add(records: AggregateRecord[]): Promise<void> {
    if (this.header === null) throw new Error('AggregateReportWriter.add was called before begin.');
    for (const record of records) {
      this.recordCount += 1;
      this.messageCount += record.count;
      if (failsDmarc(record)) this.failedCount += record.count;
    }
    if (this.reportRowId === null) return;
    for (let start = 0; start < records.length; start += RECORDS_PER_INSERT) {
      await insertRecords(
        this.tx,
        this.reportRowId,
        records.slice(start, start + RECORDS_PER_INSERT),
      );
    }
  }

  /**
   * Writes the totals, warnings and content hash once the document has been parsed to its end,
   * and returns the stored report, or the id of the stored report it duplicates.
   */
  async finish(summary: AggregateReportSummary, contentSha256: string): Promise<StoreOutcome> {
    const header = this.header;
    if (header === null) throw new Error('AggregateReportWriter.finish was called before begin.');
    if (this.existingId !== null) return { status: 'duplicate', existingId: this.existingId };
    const id = this.reportRowId as string;

    // The update is skipped when another report has the same bytes, which is checked in the
    // same statement to save a round trip per report.
    const [updated] = await this.tx.query<{ id: string }>(
      `UPDATE aggregate_reports
          SET schema = $2, message_count = $3, failed_count = $4, warnings = $5,
              content_sha256 = $6
        WHERE id = $1
          AND NOT EXISTS (SELECT 1 FROM aggregate_reports
                           WHERE account_id = $7 AND content_sha256 = $6)
        RETURNING id`,
      [
        id,
        summary.schema,
        this.messageCount,
        this.failedCount,
        JSON.stringify(summary.warnings),
        contentSha256,
        this.input.accountId,
      ],
    );
    if (!updated) {
      const [sameBytes] = await this.tx.query<{ id: string }>(
        'SELECT id FROM aggregate_reports WHERE account_id = $1 AND content_sha256 = $2',
        [this.input.accountId, contentSha256],
      );
      // Identical bytes parse to the same reporter and id, so only a stored row edited by hand
      // gets here. Deleting the row removes the records written with it.
      await this.tx.query('DELETE FROM aggregate_reports WHERE id = $1', [id]);
      const existingId = sameBytes?.id ?? id;
      this.existingId = existingId;
      return { status: 'duplicate', existingId };
    }

    const failingSourceRows =
      this.failedCount === 0
        ? []
        : await this.tx.query<{ sourceIp: string; failedMessages: string | number }>(
            // The same test as failsDmarc: neither DKIM nor SPF passed aligned.
            `SELECT source_ip AS "sourceIp", sum(message_count) AS "failedMessages"
               FROM aggregate_records
              WHERE report_id = $1 AND dkim_aligned <> 'pass' AND spf_aligned <> 'pass'
              GROUP BY source_ip
              ORDER BY sum(message_count) DESC, source_ip
              LIMIT $2`,
            [id, TOP_FAILING_SOURCES],
          );
    const topFailingSources = failingSourceRows.map((row) => ({
      sourceIp: row.sourceIp,
      failedMessages: readCount(row.failedMessages),
    }));
    return {
      status: 'stored',
      report: {
        id,
        accountId: this.input.accountId,
        domainId: this.domainId,
        policyDomain: header.policy.domain,
        orgName: header.reporter.orgName,
        reportId: header.reportId,
        periodBegin: header.period.begin,
        periodEnd: header.period.end,
        messageCount: this.messageCount,
        failedCount: this.failedCount,
        recordCount: this.recordCount,
        topFailingSources,
      },
    };
  }
}

/**
 * Stores a report parsed whole, with its records, unless the account already has it. A report is
 * the same when its reporter and report id match, or when its bytes are identical.
 */
export async function storeAggregateReport(
  tx: Queryable,
  input: {
    accountId: string;
    domainId: string | null;
    parsed: ParsedAggregateReport;
    contentSha256: string;
    receivedVia: string;
  },
): Promise<StoreOutcome> {
  const { parsed } = input;
  const writer = new AggregateReportWriter(tx, input);
  await writer.begin(parsed, input.domainId);
  await writer.add(parsed.records);
  const messageCount = parsed.records.reduce((sum, record) => sum + record.count, 0);
  return writer.finish(
    { ...parsed, recordCount: parsed.records.length, messageCount },
    input.contentSha256,
  );
}

async function insertRecords(
  tx: Queryable,
  reportId: string,
  records: AggregateRecord[],
): Promise<void> {
  if (records.length === 0) return;
  const params: unknown[] = [];
  const rows = records.map((record) => {
    params.push(
      reportId,
      record.sourceIp,
      record.count,
      record.disposition,
      record.dkim,
      record.spf,
      record.headerFrom,
      record.envelopeFrom,
      record.envelopeTo,
      JSON.stringify(record.reasons),
      JSON.stringify(record.dkimResults),
      JSON.stringify(record.spfResults),
    );
    const base = params.length - RECORD_COLUMNS;
    const placeholders = Array.from(
      { length: RECORD_COLUMNS },
      (_, index) => `$${base + index + 1}`,
    );
    return `(${placeholders.join(', ')})`;
  });
  await tx.query(
    `INSERT INTO aggregate_records (report_id, source_ip, message_count, disposition,
        dkim_aligned, spf_aligned, header_from, envelope_from, envelope_to, reasons,
        dkim_results, spf_results)
     VALUES ${rows.join(', ')}`,
    params,
  );
}
