import type { Queryable } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';
import type { AggregateRecord, ParsedAggregateReport } from './aggregate-parser.ts';

/** Tell whether a record failed DMARC, which it does when neither DKIM nor SPF passed aligned. */
export function failsDmarc(record: Pick<AggregateRecord, 'dkim' | 'spf'>): boolean {
  return record.dkim !== 'pass' && record.spf !== 'pass';
}

export interface StoredAggregateReport {
  id: string;
  accountId: string;
  domainId: string | null;
  policyDomain: string;
  orgName: string;
  reportId: string;
  periodBegin: Date;
  periodEnd: Date;
  messageCount: number;
  failedCount: number;
  records: AggregateRecord[];
}

export interface AggregateReportSummary {
  id: string;
  domainId: string | null;
  policyDomain: string;
  orgName: string;
  reporterEmail: string | null;
  reportId: string;
  periodBegin: Date;
  periodEnd: Date;
  schema: string;
  messageCount: number;
  failedCount: number;
  warnings: string[];
  receivedVia: string;
  receivedAt: Date;
}

interface ReportRow {
  id: string;
  domain_id: string | null;
  policy_domain: string;
  org_name: string;
  reporter_email: string | null;
  report_id: string;
  period_begin: Date;
  period_end: Date;
  schema: string;
  message_count: number;
  failed_count: number;
  warnings: string[];
  received_via: string;
  received_at: Date;
}

function toSummary(row: ReportRow): AggregateReportSummary {
  return {
    id: row.id,
    domainId: row.domain_id,
    policyDomain: row.policy_domain,
    orgName: row.org_name,
    reporterEmail: row.reporter_email,
    reportId: row.report_id,
    periodBegin: row.period_begin,
    periodEnd: row.period_end,
    schema: row.schema,
    messageCount: row.message_count,
    failedCount: row.failed_count,
    warnings: row.warnings,
    receivedVia: row.received_via,
    receivedAt: row.received_at,
  };
}

export type StoreOutcome =
  { status: 'stored'; report: StoredAggregateReport } | { status: 'duplicate'; existingId: string };

/**
 * Store a parsed report and its records unless the account already has it. A report is the
 * same when its reporter and report id match, or when its bytes are identical.
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
  const messageCount = parsed.records.reduce((sum, record) => sum + record.count, 0);
  const failedCount = parsed.records
    .filter(failsDmarc)
    .reduce((sum, record) => sum + record.count, 0);

  const [inserted] = await tx.query<{ id: string }>(
    `INSERT INTO aggregate_reports (account_id, domain_id, policy_domain, org_name, reporter_email,
        report_id, period_begin, period_end, schema, policy, message_count, failed_count,
        warnings, content_sha256, received_via)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT DO NOTHING
     RETURNING id`,
    [
      input.accountId,
      input.domainId,
      parsed.policy.domain,
      parsed.reporter.orgName,
      parsed.reporter.email,
      parsed.reportId,
      parsed.period.begin,
      parsed.period.end,
      parsed.schema,
      JSON.stringify(parsed.policy),
      messageCount,
      failedCount,
      JSON.stringify(parsed.warnings),
      input.contentSha256,
      input.receivedVia,
    ],
  );

  if (!inserted) {
    const [existing] = await tx.query<{ id: string }>(
      `SELECT id FROM aggregate_reports
        WHERE account_id = $1 AND ((org_name = $2 AND report_id = $3) OR content_sha256 = $4)
        LIMIT 1`,
      [input.accountId, parsed.reporter.orgName, parsed.reportId, input.contentSha256],
    );
    return { status: 'duplicate', existingId: existing!.id };
  }

  await insertRecords(tx, inserted.id, parsed.records);
  return {
    status: 'stored',
    report: {
      id: inserted.id,
      accountId: input.accountId,
      domainId: input.domainId,
      policyDomain: parsed.policy.domain,
      orgName: parsed.reporter.orgName,
      reportId: parsed.reportId,
      periodBegin: parsed.period.begin,
      periodEnd: parsed.period.end,
      messageCount,
      failedCount,
      records: parsed.records,
    },
  };
}

// Large reports are inserted in batches so that one statement stays well under PostgreSQL's
// limit of 65,535 parameters (12 per row here).
const RECORDS_PER_INSERT = 500;

async function insertRecords(
  tx: Queryable,
  reportId: string,
  records: AggregateRecord[],
): Promise<void> {
  for (let start = 0; start < records.length; start += RECORDS_PER_INSERT) {
    const batch = records.slice(start, start + RECORDS_PER_INSERT);
    const params: unknown[] = [];
    const rows = batch.map((record) => {
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
      const base = params.length - 12;
      return `(${Array.from({ length: 12 }, (_, index) => `$${base + index + 1}`).join(', ')})`;
    });
    await tx.query(
      `INSERT INTO aggregate_records (report_id, source_ip, message_count, disposition,
          dkim_aligned, spf_aligned, header_from, envelope_from, envelope_to, reasons,
          dkim_results, spf_results)
       VALUES ${rows.join(', ')}`,
      params,
    );
  }
}

export async function listAggregateReports(
  db: Queryable,
  accountId: string,
  filter: { domainId?: string | undefined; unknownDomainsOnly?: boolean; limit?: number } = {},
): Promise<AggregateReportSummary[]> {
  const rows = await db.query<ReportRow>(
    `SELECT * FROM aggregate_reports
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR domain_id = $2)
        AND (NOT $3 OR domain_id IS NULL)
      ORDER BY period_begin DESC, id
      LIMIT $4`,
    [accountId, filter.domainId ?? null, filter.unknownDomainsOnly ?? false, filter.limit ?? 100],
  );
  return rows.map(toSummary);
}

export async function getAggregateReport(
  db: Queryable,
  accountId: string,
  id: string,
): Promise<AggregateReportSummary & { records: Record<string, unknown>[] }> {
  const [row] = await db.query<ReportRow>(
    'SELECT * FROM aggregate_reports WHERE account_id = $1 AND id = $2',
    [accountId, id],
  );
  if (!row) throw notFound('aggregate report', id);
  const records = await db.query(
    `SELECT source_ip AS "sourceIp", message_count AS "count", disposition,
            dkim_aligned AS "dkim", spf_aligned AS "spf", header_from AS "headerFrom",
            envelope_from AS "envelopeFrom", envelope_to AS "envelopeTo", reasons,
            dkim_results AS "dkimResults", spf_results AS "spfResults"
       FROM aggregate_records WHERE report_id = $1 ORDER BY id`,
    [id],
  );
  return { ...toSummary(row), records };
}

/** Reports received for domains no customer monitors, counted per domain. */
export async function countUnknownDomainReports(
  db: Queryable,
  accountId: string,
): Promise<{ domain: string; reports: number; messages: number; lastReceivedAt: Date }[]> {
  return db.query(
    `SELECT policy_domain AS domain, count(*)::int AS reports, sum(message_count)::int AS messages,
            max(received_at) AS "lastReceivedAt"
       FROM aggregate_reports
      WHERE account_id = $1 AND domain_id IS NULL
      GROUP BY policy_domain ORDER BY count(*) DESC, policy_domain`,
    [accountId],
  );
}
