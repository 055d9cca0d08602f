import type { Queryable, Transaction } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';

export const ALERT_KINDS = ['dns', 'threshold', 'forensic'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
/**
 * The ticket state of one firing. not_routed: no ticket rule covers it. pending: a ticket or
 * note job is queued. created: it opened its incident's ticket. held: it waits for the next
 * note, because the minimum interval between notes has not passed. noted: a note on its
 * incident's ticket covered it. failed: the ticket or the note failed.
 */
export type TicketStatus = 'not_routed' | 'pending' | 'created' | 'failed' | 'held' | 'noted';

/** The numbers behind a threshold alert, for one rule over one window of reports. */
export interface ThresholdEvidence {
  kind: 'threshold';
  ruleId: string;
  /** The domain, or the domain group whose member domains are summed. */
  subject: { type: 'domain' | 'group'; id: string; name: string; domains: string[] };
  failedMessages: number;
  totalMessages: number;
  /** Percentage of messages failing DMARC, rounded to two decimals. */
  failurePercent: number;
  /** The limits of the rule; null when the rule has no such limit. */
  maxFailedMessages: number | null;
  maxFailurePercent: number | null;
  /** Below this many messages the rate is not judged. */
  minMessages: number;
  /** The rolling window in hours; null when each report is judged alone. */
  windowHours: number | null;
  /** The limits the window exceeded. */
  exceeded: ('failed_count' | 'failure_percent')[];
  /** The window judged: the report's own period, or windowHours up to a report period end. */
  period: { begin: string; end: string };
  /** How many aggregate reports overlap the window, and from which reporters. */
  reportCount: number;
  reporters: string[];
  /** The report whose arrival led to this evaluation. */
  reporter: string;
  reportId: string;
  topSources: { sourceIp: string; failedMessages: number }[];
}

/** The facts of a failure report that a forensic alert and its ticket show. */
export interface ForensicEvidence {
  kind: 'forensic';
  failureReportId: string;
  reporter: string;
  format: 'arf' | 'text';
  /** When the reporter received the original message, ISO 8601 in UTC; null when not given. */
  arrivalDate: string | null;
  sourceIp: string | null;
  authFailure: string[];
  identityAlignment: string[] | null;
  deliveryResult: string | null;
  authenticationResults: string[];
  originalMailFrom: string | null;
  originalRcptTo: string[];
  headers: {
    from: string | null;
    to: string | null;
    subject: string | null;
    date: string | null;
    messageId: string | null;
  };
}

/** A DNS record as one lookup saw it, as a DNS alert and its ticket show it. */
export interface DnsRecordSnapshot {
  observationId: string;
  /** ISO 8601 time of the lookup. */
  observedAt: string;
  /** ok, nxdomain or nodata. */
  lookupStatus: string;
  /** Each TXT record with its strings joined, sorted; empty when there is none. */
  records: string[];
  /** CNAME targets followed from the name, in order. */
  cnameChain: string[];
  /** The validator's verdict in one or two sentences. */
  verdict: string;
  findings: { code: string; severity: string; message: string }[];
}

/** The facts of a confirmed change of a DMARC, SPF or DKIM record. */
export interface DnsEvidence {
  kind: 'dns';
  recordKind: 'dmarc' | 'spf' | 'dkim';
  /** The DNS name looked up, such as _dmarc.example.com. */
  name: string;
  /** The DKIM selector, or null for DMARC and SPF. */
  selector: string | null;
  /**
   * meaning, removed, appeared, became_invalid or weakened; invalid_at_first_check for a
   * record that was invalid when the domain was first checked.
   */
  change: string;
  /** The highest severity of the details (info, warning, critical), or null without details. */
  severity: string | null;
  /** The meaning of the change for mail, in sentences. */
  meaning: string;
  details: { field: string; before: string; after: string; severity: string; message: string }[];
  /** The record before the change; null when the domain had not been checked before. */
  before: DnsRecordSnapshot | null;
  after: DnsRecordSnapshot;
  /** When a lookup first showed the change, and when a second lookup confirmed it. */
  firstSeenAt: string;
  confirmedAt: string;
  /** SHA-256 of the new meaning, the part of the fingerprint that distinguishes changes. */
  meaningHash: string;
}

export type AlertEvidence = ThresholdEvidence | ForensicEvidence | DnsEvidence;

export interface Alert {
  id: string;
  accountId: string;
  customerId: string;
  domainId: string | null;
  /** The domain's name, or the group's name for an alert about a domain group. */
  domainName: string;
  groupId: string | null;
  kind: AlertKind;
  /** The condition: account, customer, domain or group, kind and rule. Shared by an incident. */
  fingerprint: string;
  /** The firing itself: a second alert with the same key is never stored. */
  dedupeKey: string;
  incidentId: string | null;
  summary: string;
  evidence: AlertEvidence;
  aggregateReportId: string | null;
  createdAt: Date;
  ticketStatus: TicketStatus;
  halopsaTicketId: number | null;
  ticketError: string | null;
}

interface AlertRow {
  id: string;
  account_id: string;
  customer_id: string;
  domain_id: string | null;
  domain_name: string;
  group_id: string | null;
  kind: AlertKind;
  fingerprint: string;
  dedupe_key: string;
  incident_id: string | null;
  summary: string;
  evidence: AlertEvidence;
  aggregate_report_id: string | null;
  created_at: Date;
  ticket_status: TicketStatus;
  halopsa_ticket_id: number | null;
  ticket_error: string | null;
}

function toAlert(row: AlertRow): Alert {
  return {
    id: row.id,
    accountId: row.account_id,
    customerId: row.customer_id,
    domainId: row.domain_id,
    domainName: row.domain_name,
    groupId: row.group_id,
    kind: row.kind,
    fingerprint: row.fingerprint,
    dedupeKey: row.dedupe_key,
    incidentId: row.incident_id,
    summary: row.summary,
    evidence: row.evidence,
    aggregateReportId: row.aggregate_report_id,
    createdAt: row.created_at,
    ticketStatus: row.ticket_status,
    halopsaTicketId: row.halopsa_ticket_id,
    ticketError: row.ticket_error,
  };
}

export interface NewAlert {
  accountId: string;
  customerId: string;
  /** The domain; null for an alert about a domain group, which sets groupId instead. */
  domainId: string | null;
  /** The domain's name, or the group's name. */
  domainName: string;
  groupId?: string;
  kind: AlertKind;
  /**
   * The condition, never derived from the summary text: firings with the same fingerprint
   * belong to one incident while it is open.
   */
  fingerprint: string;
  /** The firing; defaults to the fingerprint, which makes every firing its own incident. */
  dedupeKey?: string;
  summary: string;
  evidence: AlertEvidence;
  aggregateReportId?: string;
}

/** Insert an alert unless one with the same dedupe key exists; null when it already did. */
export async function insertAlert(tx: Queryable, alert: NewAlert): Promise<Alert | null> {
  const [row] = await tx.query<AlertRow>(
    `INSERT INTO alerts (account_id, customer_id, domain_id, domain_name, kind, fingerprint,
                         summary, evidence, aggregate_report_id, group_id, dedupe_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (account_id, dedupe_key) DO NOTHING
     RETURNING *`,
    [
      alert.accountId,
      alert.customerId,
      alert.domainId,
      alert.domainName,
      alert.kind,
      alert.fingerprint,
      alert.summary,
      JSON.stringify(alert.evidence),
      alert.aggregateReportId ?? null,
      alert.groupId ?? null,
      alert.dedupeKey ?? alert.fingerprint,
    ],
  );
  return row ? toAlert(row) : null;
}

export async function getAlert(db: Queryable, accountId: string, alertId: string): Promise<Alert> {
  const [row] = await db.query<AlertRow>('SELECT * FROM alerts WHERE account_id = $1 AND id = $2', [
    accountId,
    alertId,
  ]);
  if (!row) throw notFound('alert', alertId);
  return toAlert(row);
}

export interface AlertFilter {
  customerId?: string | undefined;
  kind?: AlertKind | undefined;
  incidentId?: string | undefined;
  limit?: number | undefined;
  /** Rows to skip, for the pages after the first. */
  offset?: number | undefined;
}

export async function listAlerts(
  db: Queryable,
  accountId: string,
  filter: AlertFilter = {},
): Promise<Alert[]> {
  const rows = await db.query<AlertRow>(
    `SELECT * FROM alerts
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR customer_id = $2)
        AND ($3::text IS NULL OR kind = $3)
        AND ($5::uuid IS NULL OR incident_id = $5)
      ORDER BY created_at DESC, id
      LIMIT $4 OFFSET $6`,
    [
      accountId,
      filter.customerId ?? null,
      filter.kind ?? null,
      filter.limit ?? 100,
      filter.incidentId ?? null,
      filter.offset ?? 0,
    ],
  );
  return rows.map(toAlert);
}

/** Count the alerts that listAlerts pages through, ignoring limit and offset. */
export async function countAlerts(
  db: Queryable,
  accountId: string,
  filter: AlertFilter = {},
): Promise<number> {
  const [row] = await db.query<{ total: number }>(
    `SELECT count(*)::int AS total FROM alerts
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR customer_id = $2)
        AND ($3::text IS NULL OR kind = $3)
        AND ($4::uuid IS NULL OR incident_id = $4)`,
    [accountId, filter.customerId ?? null, filter.kind ?? null, filter.incidentId ?? null],
  );
  return row?.total ?? 0;
}

export async function setTicketStatus(
  db: Queryable,
  alertId: string,
  update: { status: TicketStatus; ticketId?: number | null; error?: string | null },
): Promise<void> {
  await db.query(
    `UPDATE alerts SET ticket_status = $2, halopsa_ticket_id = COALESCE($3, halopsa_ticket_id),
                       ticket_error = $4
      WHERE id = $1`,
    [alertId, update.status, update.ticketId ?? null, update.error ?? null],
  );
}

/**
 * What a new alert did to its incident: opened one, fired again in an open one, reopened one
 * that had resolved a short while ago, or arrived late with evidence about a time that a
 * resolved incident already covers (it makes no ticket and no note).
 */
export type IncidentChange = 'opened' | 'fired' | 'reopened' | 'late';

/** Called in the transaction that created a new alert, after it joined its incident. */
export type AlertCreatedListener = (
  tx: Transaction,
  alert: Alert,
  change: { incidentId: string; change: IncidentChange },
) => Promise<void>;
