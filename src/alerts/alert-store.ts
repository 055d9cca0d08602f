import type { Queryable, Transaction } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';

export const ALERT_KINDS = ['dns', 'threshold', 'forensic'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
export type TicketStatus = 'not_routed' | 'pending' | 'created' | 'failed';

export interface ThresholdEvidence {
  kind: 'threshold';
  failedMessages: number;
  totalMessages: number;
  maxFailedMessages: number;
  period: { begin: string; end: string };
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

export type AlertEvidence = ThresholdEvidence | ForensicEvidence;

export interface Alert {
  id: string;
  accountId: string;
  customerId: string;
  domainId: string | null;
  domainName: string;
  kind: AlertKind;
  fingerprint: string;
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
  kind: AlertKind;
  fingerprint: string;
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
    kind: row.kind,
    fingerprint: row.fingerprint,
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
  domainId: string;
  domainName: string;
  kind: AlertKind;
  fingerprint: string;
  summary: string;
  evidence: AlertEvidence;
  aggregateReportId?: string;
}

/** Insert an alert unless one with the same fingerprint exists; null when it already did. */
export async function insertAlert(tx: Queryable, alert: NewAlert): Promise<Alert | null> {
  const [row] = await tx.query<AlertRow>(
    `INSERT INTO alerts (account_id, customer_id, domain_id, domain_name, kind, fingerprint,
                         summary, evidence, aggregate_report_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (account_id, fingerprint) DO NOTHING
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

export async function listAlerts(
  db: Queryable,
  accountId: string,
  filter: { customerId?: string | undefined; kind?: AlertKind | undefined; limit?: number } = {},
): Promise<Alert[]> {
  const rows = await db.query<AlertRow>(
    `SELECT * FROM alerts
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR customer_id = $2)
        AND ($3::text IS NULL OR kind = $3)
      ORDER BY created_at DESC, id
      LIMIT $4`,
    [accountId, filter.customerId ?? null, filter.kind ?? null, filter.limit ?? 100],
  );
  return rows.map(toAlert);
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

/** Called in the transaction that created a new alert. */
export type AlertCreatedListener = (tx: Transaction, alert: Alert) => Promise<void>;
