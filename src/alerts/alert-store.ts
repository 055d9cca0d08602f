import type { Queryable, Transaction } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';

import {
  ALERT_KINDS,
  type AlertEvidence,
  type AlertKind,
  type DnsEvidence,
  type DnsRecordSnapshot,
  type ForensicEvidence,
  type ThresholdEvidence,
  type TicketStatus,
} from '../contract/alerts.ts';

export { ALERT_KINDS };
export type {
  AlertEvidence,
  AlertKind,
  DnsEvidence,
  DnsRecordSnapshot,
  ForensicEvidence,
  ThresholdEvidence,
  TicketStatus,
};

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
