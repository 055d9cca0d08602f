import type { Queryable } from '../db/database.ts';

export type IntegrationEventKind =
  | 'connection.checked'
  | 'mappings.saved'
  | 'ticket_rules.saved'
  | 'submit'
  | 'licence.created'
  | 'licence.updated'
  | 'licence.unchanged'
  | 'licence.failed'
  | 'ticket.created'
  | 'ticket.failed'
  | 'ticket.retrying'
  | 'ticket.deferred'
  | 'reconcile.repaired'
  | 'reconcile.problem'
  | 'reconcile.resolved'
  | 'reconcile.failed'
  | 'reconcile.completed'
  | 'token.refreshed';

export interface IntegrationEvent {
  id: number;
  customerId: string | null;
  event: IntegrationEventKind;
  outcome: 'succeeded' | 'failed';
  message: string;
  detail: Record<string, unknown>;
  createdAt: Date;
}

/** Append one entry to an account's integration history. `detail` must hold no secret. */
export async function recordEvent(
  db: Queryable,
  entry: {
    accountId: string;
    customerId?: string | null;
    event: IntegrationEventKind;
    outcome: 'succeeded' | 'failed';
    message: string;
    detail?: Record<string, unknown>;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO integration_events (account_id, customer_id, event, outcome, message, detail)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      entry.accountId,
      entry.customerId ?? null,
      entry.event,
      entry.outcome,
      entry.message,
      JSON.stringify(entry.detail ?? {}),
    ],
  );
}

export async function listEvents(
  db: Queryable,
  accountId: string,
  filter: { customerId?: string | undefined; limit?: number } = {},
): Promise<IntegrationEvent[]> {
  const rows = await db.query<{
    id: string;
    customer_id: string | null;
    event: IntegrationEventKind;
    outcome: 'succeeded' | 'failed';
    message: string;
    detail: Record<string, unknown>;
    created_at: Date;
  }>(
    `SELECT * FROM integration_events
      WHERE account_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)
      ORDER BY id DESC LIMIT $3`,
    [accountId, filter.customerId ?? null, filter.limit ?? 200],
  );
  return rows.map((row) => ({
    id: Number(row.id),
    customerId: row.customer_id,
    event: row.event,
    outcome: row.outcome,
    message: row.message,
    detail: row.detail,
    createdAt: row.created_at,
  }));
}
