import type { Queryable } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';
import type { OriginalHeaders } from './failure-report-fields.ts';
import type { ParsedFailureReport } from './parse-failure-report.ts';

/** A stored failure report, as the forensic alert reads it. */
export interface StoredFailureReport {
  id: string;
  accountId: string;
  domainId: string | null;
  reportedDomain: string;
  format: 'arf' | 'text';
  reporter: string;
  reportMessageId: string | null;
  sourceIp: string | null;
  arrivalDate: Date | null;
  authFailure: string[];
  identityAlignment: string[] | null;
  deliveryResult: string | null;
  authenticationResults: string[];
  originalMailFrom: string | null;
  originalRcptTo: string[];
  originalHeaders: OriginalHeaders;
  contentSha256: string;
  receivedVia: string;
  receivedAt: Date;
}

/** A failure report as the API returns it; the raw message only through its own route. */
export interface FailureReportView extends StoredFailureReport {
  feedbackType: string;
  userAgent: string | null;
  reportSubject: string | null;
  reportDate: Date | null;
  authentication: ParsedFailureReport['authentication'];
  originalEnvelopeId: string | null;
  details: Record<string, unknown>;
  originalContent: 'message' | 'headers' | 'none';
  originalHeaderText: string | null;
  rawMessageKept: boolean;
  warnings: string[];
}

interface FailureReportRow {
  id: string;
  account_id: string;
  domain_id: string | null;
  reported_domain: string;
  format: 'arf' | 'text';
  feedback_type: string;
  reporter: string;
  user_agent: string | null;
  report_message_id: string | null;
  report_subject: string | null;
  report_date: Date | null;
  arrival_date: Date | null;
  source_ip: string | null;
  auth_failure: string[];
  identity_alignment: string[] | null;
  delivery_result: string | null;
  authentication_results: string[];
  authentication: ParsedFailureReport['authentication'];
  original_mail_from: string | null;
  original_rcpt_to: string[];
  original_envelope_id: string | null;
  details: Record<string, unknown>;
  original_content: 'message' | 'headers' | 'none';
  original_headers: OriginalHeaders;
  original_header_text: string | null;
  raw_message_kept: boolean;
  warnings: string[];
  content_sha256: string;
  received_via: string;
  received_at: Date;
}

// Every column but raw_message, which can be large and is read only by getFailureReportMessage.
const VIEW_COLUMNS = `id, account_id, domain_id, reported_domain, format, feedback_type, reporter,
  user_agent, report_message_id, report_subject, report_date, arrival_date, source_ip,
  auth_failure, identity_alignment, delivery_result, authentication_results, authentication,
  original_mail_from, original_rcpt_to, original_envelope_id, details, original_content,
  original_headers, original_header_text, raw_message IS NOT NULL AS raw_message_kept, warnings,
  content_sha256, received_via, received_at`;

function toView(row: FailureReportRow): FailureReportView {
  return {
    id: row.id,
    accountId: row.account_id,
    domainId: row.domain_id,
    reportedDomain: row.reported_domain,
    format: row.format,
    feedbackType: row.feedback_type,
    reporter: row.reporter,
    userAgent: row.user_agent,
    reportMessageId: row.report_message_id,
    reportSubject: row.report_subject,
    reportDate: row.report_date,
    arrivalDate: row.arrival_date,
    sourceIp: row.source_ip,
    authFailure: row.auth_failure,
    identityAlignment: row.identity_alignment,
    deliveryResult: row.delivery_result,
    authenticationResults: row.authentication_results,
    authentication: row.authentication,
    originalMailFrom: row.original_mail_from,
    originalRcptTo: row.original_rcpt_to,
    originalEnvelopeId: row.original_envelope_id,
    details: row.details,
    originalContent: row.original_content,
    originalHeaders: row.original_headers,
    originalHeaderText: row.original_header_text,
    rawMessageKept: row.raw_message_kept,
    warnings: row.warnings,
    contentSha256: row.content_sha256,
    receivedVia: row.received_via,
    receivedAt: row.received_at,
  };
}

export type FailureStoreOutcome =
  { status: 'stored'; report: StoredFailureReport } | { status: 'duplicate'; existingId: string };

// A stored report that is the same as the one being stored: the same body, or the same report
// mail's Message-ID about the same original message (reported domain, source, arrival time and
// Message-ID). Matches the unique index failure_reports_message_id_key.
const SAME_REPORT = `account_id = $1 AND (content_sha256 = $2 OR (
    report_message_id = $3 AND reported_domain = $4
    AND coalesce(source_ip, '') = coalesce($5::text, '')
    AND coalesce(arrival_date, '-infinity'::timestamptz) = coalesce($6::timestamptz, '-infinity'::timestamptz)
    AND coalesce(original_headers ->> 'messageId', '') = coalesce($7::text, '')))`;

/**
 * Store a parsed failure report unless the account already has it. A report is the same when
 * its body hash matches, so that one report that arrives by SMTP and again from a mailbox is
 * stored once. A report whose body was encoded again is the same when its mail's Message-ID
 * matches and it is about the same original message. So a reporter that reuses Message-IDs for
 * other messages loses none of them.
 */
export async function storeFailureReport(
  tx: Queryable,
  input: {
    accountId: string;
    domainId: string | null;
    parsed: ParsedFailureReport;
    receivedVia: string;
    rawMessage: Buffer | null;
  },
): Promise<FailureStoreOutcome> {
  const { parsed } = input;
  const messageId = parsed.report.messageId;
  const sameReport = [
    input.accountId,
    parsed.contentSha256,
    messageId,
    parsed.reportedDomain,
    parsed.sourceIp,
    parsed.arrivalDate,
    parsed.original.headers.messageId,
  ];
  const [existing] = await tx.query<{ id: string }>(
    `SELECT id FROM failure_reports WHERE ${SAME_REPORT} LIMIT 1`,
    sameReport,
  );
  if (existing) return { status: 'duplicate', existingId: existing.id };

  const details = {
    version: parsed.version,
    reportedDomains: parsed.reportedDomains,
    reportingMta: parsed.reportingMta,
    incidents: parsed.incidents,
    dkim: parsed.dkim,
    spfDns: parsed.spfDns,
    reportedUris: parsed.reportedUris,
    textFields: parsed.textFields,
  };
  // ON CONFLICT covers a second process that stored the same report since the SELECT above.
  const [row] = await tx.query<{ id: string; received_at: Date }>(
    `INSERT INTO failure_reports (account_id, domain_id, reported_domain, format, feedback_type,
        reporter, user_agent, report_message_id, report_subject, report_date, arrival_date,
        source_ip, auth_failure, identity_alignment, delivery_result, authentication_results,
        authentication, original_mail_from, original_rcpt_to, original_envelope_id, details,
        original_content, original_headers, original_header_text, raw_message, warnings,
        content_sha256, received_via)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)
     ON CONFLICT DO NOTHING
     RETURNING id, received_at`,
    [
      input.accountId,
      input.domainId,
      parsed.reportedDomain,
      parsed.format,
      parsed.feedbackType,
      parsed.reporter,
      parsed.userAgent,
      messageId,
      parsed.report.subject,
      parsed.report.date,
      parsed.arrivalDate,
      parsed.sourceIp,
      JSON.stringify(parsed.authFailure),
      parsed.identityAlignment === null ? null : JSON.stringify(parsed.identityAlignment),
      parsed.deliveryResult,
      JSON.stringify(parsed.authenticationResults),
      JSON.stringify(parsed.authentication),
      parsed.originalMailFrom,
      JSON.stringify(parsed.originalRcptTo),
      parsed.originalEnvelopeId,
      JSON.stringify(details),
      parsed.original.content,
      JSON.stringify(parsed.original.headers),
      parsed.original.headerText,
      input.rawMessage,
      JSON.stringify(parsed.warnings),
      parsed.contentSha256,
      input.receivedVia,
    ],
  );
  if (!row) {
    const [raced] = await tx.query<{ id: string }>(
      `SELECT id FROM failure_reports WHERE ${SAME_REPORT} LIMIT 1`,
      sameReport,
    );
    return { status: 'duplicate', existingId: raced!.id };
  }

  return {
    status: 'stored',
    report: {
      id: row.id,
      accountId: input.accountId,
      domainId: input.domainId,
      reportedDomain: parsed.reportedDomain,
      format: parsed.format,
      reporter: parsed.reporter,
      reportMessageId: messageId,
      sourceIp: parsed.sourceIp,
      arrivalDate: parsed.arrivalDate,
      authFailure: parsed.authFailure,
      identityAlignment: parsed.identityAlignment,
      deliveryResult: parsed.deliveryResult,
      authenticationResults: parsed.authenticationResults,
      originalMailFrom: parsed.originalMailFrom,
      originalRcptTo: parsed.originalRcptTo,
      originalHeaders: parsed.original.headers,
      contentSha256: parsed.contentSha256,
      receivedVia: input.receivedVia,
      receivedAt: row.received_at,
    },
  };
}

/** List an account's failure reports, newest first. */
export async function listFailureReports(
  db: Queryable,
  accountId: string,
  filter: { domainId?: string | undefined; unknownDomainsOnly?: boolean; limit?: number } = {},
): Promise<FailureReportView[]> {
  const rows = await db.query<FailureReportRow>(
    `SELECT ${VIEW_COLUMNS} FROM failure_reports
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR domain_id = $2)
        AND (NOT $3 OR domain_id IS NULL)
      ORDER BY received_at DESC, id
      LIMIT $4`,
    [accountId, filter.domainId ?? null, filter.unknownDomainsOnly ?? false, filter.limit ?? 100],
  );
  return rows.map(toView);
}

export async function getFailureReport(
  db: Queryable,
  accountId: string,
  id: string,
): Promise<FailureReportView> {
  const [row] = await db.query<FailureReportRow>(
    `SELECT ${VIEW_COLUMNS} FROM failure_reports WHERE account_id = $1 AND id = $2`,
    [accountId, id],
  );
  if (!row) throw notFound('failure report', id);
  return toView(row);
}

/** Returns the report mail as received, or null when it was not kept. */
export async function getFailureReportMessage(
  db: Queryable,
  accountId: string,
  id: string,
): Promise<Buffer | null> {
  const [row] = await db.query<{ raw_message: Uint8Array | null }>(
    'SELECT raw_message FROM failure_reports WHERE account_id = $1 AND id = $2',
    [accountId, id],
  );
  if (!row) throw notFound('failure report', id);
  return row.raw_message ? Buffer.from(row.raw_message) : null;
}

/** Failure reports received for domains no customer monitors, counted per domain. */
export async function countUnknownDomainFailureReports(
  db: Queryable,
  accountId: string,
): Promise<{ domain: string; reports: number; lastReceivedAt: Date }[]> {
  return db.query(
    `SELECT reported_domain AS domain, count(*)::int AS reports, max(received_at) AS "lastReceivedAt"
       FROM failure_reports
      WHERE account_id = $1 AND domain_id IS NULL
      GROUP BY reported_domain ORDER BY count(*) DESC, reported_domain`,
    [accountId],
  );
}
