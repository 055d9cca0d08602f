import type { Queryable } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';
import type { AggregateRecord } from './aggregate-parser.ts';

/**
 * Converts a bigint message count or a sum of counts read from the database to a number.
 * node-postgres returns bigint and numeric values as strings, and PGlite returns bigint as a
 * number, so row types declare both and every reader converts through here.
 * NOTE: a sum over many reports above 2^53 - 1 is rounded to the nearest number.
 */
export function readCount(value: string | number | null | undefined): number {
  if (value === null || value === undefined) return 0;
  const count = Number(value);
  if (!Number.isFinite(count)) {
    throw new Error(
      `The database returned ${JSON.stringify(value)} as a message count, which is not a number.`,
    );
  }
  return count;
}

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
  /** Records stored; they are in aggregate_records, not held in memory. */
  recordCount: number;
  /** The ten sources with the most messages failing DMARC, most first. */
  topFailingSources: { sourceIp: string; failedMessages: number }[];
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
  message_count: string | number;
  failed_count: string | number;
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
    messageCount: readCount(row.message_count),
    failedCount: readCount(row.failed_count),
    warnings: row.warnings,
    receivedVia: row.received_via,
    receivedAt: row.received_at,
  };
}

export interface AggregateReportFilter {
  domainId?: string | undefined;
  unknownDomainsOnly?: boolean;
  limit?: number;
  /** Rows to skip, for the pages after the first. */
  offset?: number;
}

export async function listAggregateReports(
  db: Queryable,
  accountId: string,
  filter: AggregateReportFilter = {},
): Promise<AggregateReportSummary[]> {
  const rows = await db.query<ReportRow>(
    `SELECT * FROM aggregate_reports
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR domain_id = $2)
        AND (NOT $3 OR domain_id IS NULL)
      ORDER BY period_begin DESC, id
      LIMIT $4 OFFSET $5`,
    [
      accountId,
      filter.domainId ?? null,
      filter.unknownDomainsOnly ?? false,
      filter.limit ?? 100,
      filter.offset ?? 0,
    ],
  );
  return rows.map(toSummary);
}

/** Count the reports that listAggregateReports pages through, ignoring limit and offset. */
export async function countAggregateReports(
  db: Queryable,
  accountId: string,
  filter: AggregateReportFilter = {},
): Promise<number> {
  const [row] = await db.query<{ total: number }>(
    `SELECT count(*)::int AS total FROM aggregate_reports
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR domain_id = $2)
        AND (NOT $3 OR domain_id IS NULL)`,
    [accountId, filter.domainId ?? null, filter.unknownDomainsOnly ?? false],
  );
  return row?.total ?? 0;
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
  const records = await db.query<Record<string, unknown> & { count: string | number }>(
    `SELECT source_ip AS "sourceIp", message_count AS "count", disposition,
            dkim_aligned AS "dkim", spf_aligned AS "spf", header_from AS "headerFrom",
            envelope_from AS "envelopeFrom", envelope_to AS "envelopeTo", reasons,
            dkim_results AS "dkimResults", spf_results AS "spfResults"
       FROM aggregate_records WHERE report_id = $1 ORDER BY id`,
    [id],
  );
  return {
    ...toSummary(row),
    records: records.map((record) => ({ ...record, count: readCount(record.count) })),
  };
}

/** Reports received for domains no customer monitors, counted per domain. */
export async function countUnknownDomainReports(
  db: Queryable,
  accountId: string,
): Promise<{ domain: string; reports: number; messages: number; lastReceivedAt: Date }[]> {
  const rows = await db.query<{
    domain: string;
    reports: number;
    messages: string | number;
    lastReceivedAt: Date;
  }>(
    `SELECT policy_domain AS domain, count(*)::int AS reports, sum(message_count) AS messages,
            max(received_at) AS "lastReceivedAt"
       FROM aggregate_reports
      WHERE account_id = $1 AND domain_id IS NULL
      GROUP BY policy_domain ORDER BY count(*) DESC, policy_domain`,
    [accountId],
  );
  return rows.map((row) => ({ ...row, messages: readCount(row.messages) }));
}

/** The totals of the aggregate reports of some domains whose period overlaps a window. */
export interface ReportWindowTotals {
  reportCount: number;
  messageCount: number;
  failedCount: number;
  reporters: string[];
}

/**
 * Sum the reports of `domainIds` whose period overlaps the window from `begin` (exclusive) to
 * `end`. A report overlaps when it begins before the window ends and ends after it begins, so
 * a daily report that ends exactly where a window begins is not counted in it.
 */
export async function sumReportsInWindow(
  db: Queryable,
  accountId: string,
  domainIds: string[],
  window: { begin: Date; end: Date },
): Promise<ReportWindowTotals> {
  const [row] = await db.query<{
    report_count: number;
    message_count: string | number | null;
    failed_count: string | number | null;
    reporters: string[] | null;
  }>(
    `SELECT count(*)::int AS report_count, sum(message_count) AS message_count,
            sum(failed_count) AS failed_count,
            array_agg(DISTINCT org_name ORDER BY org_name) AS reporters
       FROM aggregate_reports
      WHERE account_id = $1 AND domain_id = ANY($2::uuid[])
        AND period_begin < $4 AND period_end > $3`,
    [accountId, domainIds, window.begin, window.end],
  );
  return {
    reportCount: row?.report_count ?? 0,
    messageCount: readCount(row?.message_count),
    failedCount: readCount(row?.failed_count),
    reporters: (row?.reporters ?? []).filter((name) => name !== null),
  };
}

/** List the sources with the most messages failing DMARC in the reports that overlap a window. */
export async function topFailingSourcesInWindow(
  db: Queryable,
  accountId: string,
  domainIds: string[],
  window: { begin: Date; end: Date },
  limit: number,
): Promise<{ sourceIp: string; failedMessages: number }[]> {
  // The same test as failsDmarc: neither DKIM nor SPF passed aligned.
  const rows = await db.query<{ sourceIp: string; failedMessages: string | number }>(
    `SELECT r.source_ip AS "sourceIp", sum(r.message_count) AS "failedMessages"
       FROM aggregate_records r
       JOIN aggregate_reports a ON a.id = r.report_id
      WHERE a.account_id = $1 AND a.domain_id = ANY($2::uuid[])
        AND a.period_begin < $4 AND a.period_end > $3
        AND r.dkim_aligned <> 'pass' AND r.spf_aligned <> 'pass'
      GROUP BY r.source_ip
      ORDER BY sum(r.message_count) DESC, r.source_ip
      LIMIT $5`,
    [accountId, domainIds, window.begin, window.end, limit],
  );
  return rows.map((row) => ({ ...row, failedMessages: readCount(row.failedMessages) }));
}

/**
 * List the distinct period ends of the reports of `domainIds` strictly between `after` and `before`,
 * oldest first, at most `limit` of them (the newest when there are more).
 */
export async function listReportPeriodEnds(
  db: Queryable,
  accountId: string,
  domainIds: string[],
  range: { after: Date; before: Date },
  limit: number,
): Promise<Date[]> {
  const rows = await db.query<{ period_end: Date }>(
    `SELECT DISTINCT period_end FROM aggregate_reports
      WHERE account_id = $1 AND domain_id = ANY($2::uuid[])
        AND period_end > $3 AND period_end < $4
      ORDER BY period_end DESC
      LIMIT $5`,
    [accountId, domainIds, range.after, range.before, limit],
  );
  return rows.map((row) => row.period_end).reverse();
}
