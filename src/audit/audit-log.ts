import type { Queryable } from '../db/database.ts';

export interface AuditActor {
  type: 'user' | 'api_token' | 'system';
  id: string | null;
}

export interface AuditEntry {
  id: number;
  actor: AuditActor;
  action: string;
  customerId: string | null;
  targetType: string;
  targetId: string | null;
  before: unknown;
  after: unknown;
  createdAt: Date;
}

/** The actor of work that no request started, such as a job writing to HaloPSA. */
export const SYSTEM_ACTOR: AuditActor = { type: 'system', id: null };

/**
 * Append an entry to the account's audit log. The table rejects updates and deletes, so an
 * entry cannot be changed once written. `before` and `after` must hold no secret.
 */
export async function recordAudit(
  db: Queryable,
  entry: {
    accountId: string;
    actor: AuditActor;
    action: string;
    customerId?: string | null;
    targetType: string;
    targetId?: string | number | null;
    before?: unknown;
    after?: unknown;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (account_id, actor_type, actor_id, action, customer_id, target_type, target_id, before, after)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      entry.accountId,
      entry.actor.type,
      entry.actor.id,
      entry.action,
      entry.customerId ?? null,
      entry.targetType,
      entry.targetId === undefined || entry.targetId === null ? null : String(entry.targetId),
      entry.before === undefined ? null : JSON.stringify(entry.before),
      entry.after === undefined ? null : JSON.stringify(entry.after),
    ],
  );
}

export async function listAudit(
  db: Queryable,
  accountId: string,
  filter: {
    customerId?: string | undefined;
    action?: string | undefined;
    limit?: number;
    beforeId?: number | undefined;
  } = {},
): Promise<AuditEntry[]> {
  const rows = await db.query<{
    id: string;
    actor_type: AuditActor['type'];
    actor_id: string | null;
    action: string;
    customer_id: string | null;
    target_type: string;
    target_id: string | null;
    before: unknown;
    after: unknown;
    created_at: Date;
  }>(
    `SELECT * FROM audit_log
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR customer_id = $2)
        AND ($3::text IS NULL OR action = $3)
        AND ($4::bigint IS NULL OR id < $4)
      ORDER BY id DESC LIMIT $5`,
    [
      accountId,
      filter.customerId ?? null,
      filter.action ?? null,
      filter.beforeId ?? null,
      filter.limit ?? 100,
    ],
  );
  return rows.map((row) => ({
    id: Number(row.id),
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    customerId: row.customer_id,
    targetType: row.target_type,
    targetId: row.target_id,
    before: row.before,
    after: row.after,
    createdAt: row.created_at,
  }));
}
