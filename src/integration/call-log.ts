import type { Queryable } from '../db/database.ts';
import type { HaloCallRecord } from '../halopsa/index.ts';
import type { QueueDefinition } from '../jobs/queue.ts';
import type { HaloCallContext } from './rate-budget.ts';

/** One HTTP call to HaloPSA as the call log stores it. */
export interface HaloCallLogEntry {
  id: number;
  customerId: string | null;
  method: string;
  /** The path only: the query string is never stored. */
  path: string;
  purpose: 'token' | 'api';
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  /** The HaloPsaError code of a failed call. */
  errorCode: string | null;
  durationMs: number;
  priority: string;
  jobKind: string | null;
  createdAt: Date;
}

export interface CallLogFilter {
  customerId?: string | undefined;
  /** An HTTP status, or 0 for calls that got no response. */
  status?: number | undefined;
  jobKind?: string | undefined;
  purpose?: 'token' | 'api' | undefined;
  /** Only entries with a smaller id: the `nextBefore` of the previous page. */
  before?: number | undefined;
  limit?: number | undefined;
}

/**
 * Appends one call to the account's call log. The query string is dropped, because HaloPSA
 * search terms and ids in it are not needed to read the log. The record never contains headers
 * or bodies.
 */
export async function recordCall(
  db: Queryable,
  accountId: string,
  call: HaloCallRecord,
  context: HaloCallContext,
): Promise<void> {
  const path = call.path.split('?')[0]!;
  await db.query(
    `INSERT INTO halopsa_call_log (account_id, customer_id, method, path, purpose, status,
                                   error_code, duration_ms, priority, job_kind)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      accountId,
      context.customerId,
      call.method,
      path,
      call.purpose,
      call.status,
      call.errorCode ?? null,
      call.durationMs,
      context.priority,
      context.jobKind,
    ],
  );
}

/** Returns one page of the account's call log, newest first, and the cursor of the next page. */
export async function listCalls(
  db: Queryable,
  accountId: string,
  filter: CallLogFilter = {},
): Promise<{ calls: HaloCallLogEntry[]; nextBefore: number | null }> {
  const limit = filter.limit ?? 100;
  const rows = await db.query<{
    id: string;
    customer_id: string | null;
    method: string;
    path: string;
    purpose: 'token' | 'api';
    status: number | null;
    error_code: string | null;
    duration_ms: number;
    priority: string;
    job_kind: string | null;
    created_at: Date;
  }>(
    `SELECT * FROM halopsa_call_log
      WHERE account_id = $1
        AND ($2::uuid IS NULL OR customer_id = $2)
        AND ($3::int IS NULL OR ($3 = 0 AND status IS NULL) OR status = $3)
        AND ($4::text IS NULL OR job_kind = $4)
        AND ($5::text IS NULL OR purpose = $5)
        AND ($6::bigint IS NULL OR id < $6)
      ORDER BY id DESC LIMIT $7`,
    [
      accountId,
      filter.customerId ?? null,
      filter.status ?? null,
      filter.jobKind ?? null,
      filter.purpose ?? null,
      filter.before ?? null,
      limit + 1,
    ],
  );
  const page = rows.slice(0, limit).map((row) => ({
    id: Number(row.id),
    customerId: row.customer_id,
    method: row.method,
    path: row.path,
    purpose: row.purpose,
    status: row.status,
    errorCode: row.error_code,
    durationMs: row.duration_ms,
    priority: row.priority,
    jobKind: row.job_kind,
    createdAt: row.created_at,
  }));
  return { calls: page, nextBefore: rows.length > limit ? page[page.length - 1]!.id : null };
}

/**
 * Deletes call log rows and integration events older than `days` days, for every account.
 * Returns how many rows of each went.
 */
export async function purgeIntegrationHistory(
  db: Queryable,
  days: number,
): Promise<{ calls: number; events: number }> {
  const deleteOlder = async (table: string): Promise<number> => {
    const [row] = await db.query<{ count: string }>(
      `WITH gone AS (DELETE FROM ${table} WHERE created_at < now() - make_interval(days => $1) RETURNING 1)
       SELECT count(*) AS count FROM gone`,
      [days],
    );
    return Number(row?.count ?? 0);
  };
  return {
    calls: await deleteOlder('halopsa_call_log'),
    events: await deleteOlder('integration_events'),
  };
}

export const HISTORY_RETENTION_QUEUE = 'integration-history-retention';

/** The daily job that deletes call log rows and integration events past their retention. */
export const HISTORY_RETENTION_QUEUE_DEFINITION: QueueDefinition = {
  name: HISTORY_RETENTION_QUEUE,
  policy: 'singleton',
  retryLimit: 3,
  retryDelaySeconds: 60,
  retryDelayMaxSeconds: 600,
  expireInSeconds: 600,
};
