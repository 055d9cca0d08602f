import type { Queryable } from '../db/database.ts';

/** Kind of fault in a customer's mapping. Each kind names the HaloPSA record it concerns. */
export type ProblemKind =
  | 'client_missing'
  | 'client_inactive'
  | 'client_merged'
  | 'item_missing'
  | 'site_missing'
  | 'user_missing'
  | 'ticket_type_missing'
  | 'ticket_type_field_required';

export type HaloRecordType = 'client' | 'item' | 'site' | 'user' | 'ticket_type';

/** Kinds that hold the customer's tickets back until the problem is resolved. */
export const TICKET_BLOCKING_KINDS: readonly ProblemKind[] = [
  'client_missing',
  'client_merged',
  'site_missing',
  'user_missing',
  'ticket_type_missing',
  'ticket_type_field_required',
];

/** A problem found by one check, before it is stored. */
export interface ProblemFinding {
  kind: ProblemKind;
  haloRecordType: HaloRecordType;
  haloRecordId: number;
  /** One sentence of what the operator must do. */
  action: string;
  detail?: Record<string, unknown>;
}

/** An open problem of a customer's mapping. */
export interface IntegrationProblem extends Required<ProblemFinding> {
  id: string;
  customerId: string;
  customerName: string;
  openedAt: Date;
  checkedAt: Date;
}

interface ProblemRow {
  id: string;
  customer_id: string;
  customer_name: string;
  kind: ProblemKind;
  halo_record_type: HaloRecordType;
  halo_record_id: number;
  action: string;
  detail: Record<string, unknown>;
  opened_at: Date;
  checked_at: Date;
}

const toProblem = (row: ProblemRow): IntegrationProblem => ({
  id: row.id,
  customerId: row.customer_id,
  customerName: row.customer_name,
  kind: row.kind,
  haloRecordType: row.halo_record_type,
  haloRecordId: row.halo_record_id,
  action: row.action,
  detail: row.detail,
  openedAt: row.opened_at,
  checkedAt: row.checked_at,
});

/** List the open problems of an account, or of one of its customers, oldest first. */
export async function listOpenProblems(
  db: Queryable,
  accountId: string,
  customerId?: string,
): Promise<IntegrationProblem[]> {
  const rows = await db.query<ProblemRow>(
    `SELECT p.id, p.customer_id, c.name AS customer_name, p.kind, p.halo_record_type,
            p.halo_record_id, p.action, p.detail, p.opened_at, p.checked_at
       FROM integration_problems p JOIN customers c ON c.id = p.customer_id
      WHERE p.account_id = $1 AND p.resolved_at IS NULL
        AND ($2::uuid IS NULL OR p.customer_id = $2)
      ORDER BY p.opened_at, p.kind`,
    [accountId, customerId ?? null],
  );
  return rows.map(toProblem);
}

/** The result of storing one check of a customer. */
export interface ProblemChanges {
  opened: IntegrationProblem[];
  resolved: IntegrationProblem[];
  open: IntegrationProblem[];
}

/**
 * Store what one check of a customer found. For each kind in `checkedKinds`, a finding opens a
 * problem or refreshes the open one of that kind (its record and action may have changed), and
 * an open problem with no finding is resolved. Kinds outside `checkedKinds` stay as they are.
 */
export async function storeFindings(
  db: Queryable,
  accountId: string,
  customerId: string,
  checkedKinds: readonly ProblemKind[],
  findings: ProblemFinding[],
): Promise<ProblemChanges> {
  const before = await listOpenProblems(db, accountId, customerId);
  const openedIds: string[] = [];
  for (const finding of findings) {
    const existing = before.find((problem) => problem.kind === finding.kind);
    if (existing) {
      await db.query(
        `UPDATE integration_problems
            SET halo_record_type = $2, halo_record_id = $3, action = $4, detail = $5, checked_at = now()
          WHERE id = $1`,
        [
          existing.id,
          finding.haloRecordType,
          finding.haloRecordId,
          finding.action,
          JSON.stringify(finding.detail ?? {}),
        ],
      );
      continue;
    }
    const [row] = await db.query<{ id: string }>(
      `INSERT INTO integration_problems (account_id, customer_id, kind, halo_record_type,
                                         halo_record_id, action, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (customer_id, kind) WHERE resolved_at IS NULL DO NOTHING
       RETURNING id`,
      [
        accountId,
        customerId,
        finding.kind,
        finding.haloRecordType,
        finding.haloRecordId,
        finding.action,
        JSON.stringify(finding.detail ?? {}),
      ],
    );
    if (row) openedIds.push(row.id);
  }

  const found = new Set(findings.map((finding) => finding.kind));
  const passed = before.filter(
    (problem) => checkedKinds.includes(problem.kind) && !found.has(problem.kind),
  );
  // Only the problems this call resolved are returned, so that a check running at the same
  // time does not record the same resolution again.
  const rows =
    passed.length === 0
      ? []
      : await db.query<{ id: string }>(
          `UPDATE integration_problems SET resolved_at = now(), checked_at = now()
            WHERE id = ANY($1::uuid[]) AND resolved_at IS NULL
            RETURNING id`,
          [passed.map((problem) => problem.id)],
        );
  const resolvedIds = new Set(rows.map((row) => row.id));
  const resolved = passed.filter((problem) => resolvedIds.has(problem.id));
  const open = await listOpenProblems(db, accountId, customerId);
  return {
    opened: open.filter((problem) => openedIds.includes(problem.id)),
    resolved,
    open,
  };
}

/** Resolve every open problem of a customer, for one that is no longer mapped. */
export async function resolveAllProblems(
  db: Queryable,
  accountId: string,
  customerId: string,
): Promise<IntegrationProblem[]> {
  const open = await listOpenProblems(db, accountId, customerId);
  const rows = await db.query<{ id: string }>(
    `UPDATE integration_problems SET resolved_at = now(), checked_at = now()
      WHERE account_id = $1 AND customer_id = $2 AND resolved_at IS NULL
      RETURNING id`,
    [accountId, customerId],
  );
  const resolvedIds = new Set(rows.map((row) => row.id));
  return open.filter((problem) => resolvedIds.has(problem.id));
}

/** Resolve one problem by id. Returns false when it was not open. */
export async function resolveProblem(
  db: Queryable,
  accountId: string,
  problemId: string,
): Promise<boolean> {
  const rows = await db.query(
    `UPDATE integration_problems SET resolved_at = now(), checked_at = now()
      WHERE account_id = $1 AND id = $2 AND resolved_at IS NULL RETURNING id`,
    [accountId, problemId],
  );
  return rows.length > 0;
}

/** List the customers of an account that have open problems or waiting tickets. */
export async function customersWithProblemsOrWaitingTickets(
  db: Queryable,
  accountId: string,
): Promise<string[]> {
  const rows = await db.query<{ customer_id: string }>(
    `SELECT customer_id FROM integration_problems WHERE account_id = $1 AND resolved_at IS NULL
     UNION
     SELECT customer_id FROM integration_deferred_tickets WHERE account_id = $1`,
    [accountId],
  );
  return rows.map((row) => row.customer_id);
}

/** Record that an alert's ticket waits for the customer's problems to be resolved. */
export async function deferTicket(
  db: Queryable,
  entry: { accountId: string; customerId: string; alertId: string },
): Promise<void> {
  await db.query(
    `INSERT INTO integration_deferred_tickets (alert_id, account_id, customer_id)
     VALUES ($1, $2, $3) ON CONFLICT (alert_id) DO NOTHING`,
    [entry.alertId, entry.accountId, entry.customerId],
  );
}

/**
 * Remove and return the waiting tickets of a customer, oldest first, at most `limit` of them.
 * Call it in the transaction that queues their ticket jobs, so that none is lost.
 */
export async function takeDeferredTickets(
  db: Queryable,
  accountId: string,
  customerId: string,
  limit: number | null = null,
): Promise<string[]> {
  const rows = await db.query<{ alert_id: string }>(
    `DELETE FROM integration_deferred_tickets
      WHERE alert_id IN (SELECT alert_id FROM integration_deferred_tickets
                          WHERE account_id = $1 AND customer_id = $2
                          ORDER BY deferred_at, alert_id LIMIT $3)
      RETURNING alert_id`,
    [accountId, customerId, limit],
  );
  return rows.map((row) => row.alert_id);
}
