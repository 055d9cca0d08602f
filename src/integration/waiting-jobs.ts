// The queued HaloPSA jobs of one account, read and moved in pg-boss's job table. A deferred job
// is a new job whose start time is ahead (JobDeferred in src/jobs/queue.ts), so moving that
// time to now lets a worker take it at its next poll.
// NOTE: this reads and writes pg-boss's job table and states (pg-boss 12) directly, as
// JobQueue does to copy a deferred job's priority, so a change of that schema breaks it.
import type { Queryable } from '../db/database.ts';
import { INTEGRATION_QUEUES, LICENCE_SYNC_QUEUE, TICKET_CREATE_QUEUE } from './jobs.ts';

const QUEUED_STATES = ['created', 'retry'];

/** Return the customers of the account whose licence sync job is queued (not yet started). */
export async function customersWithQueuedSync(
  db: Queryable,
  accountId: string,
): Promise<Set<string>> {
  const rows = await db.query<{ customer_id: string }>(
    `SELECT DISTINCT data->>'customerId' AS customer_id FROM pgboss.job
      WHERE name = $1 AND state::text = ANY($2) AND data->>'accountId' = $3`,
    [LICENCE_SYNC_QUEUE, QUEUED_STATES, accountId],
  );
  return new Set(rows.map((row) => row.customer_id));
}

/**
 * Start at once the queued HaloPSA jobs of the account whose start time is still ahead, such
 * as the jobs deferred while its connection needed attention. A ticket job waiting for an
 * earlier write to settle keeps waiting, so that it cannot miss a ticket still being created.
 * Returns how many jobs were moved.
 * NOTE: a licence sync waiting for a write to settle starts too, because the licence queue
 * keeps one queued job per customer for both reasons. A count that the older write then
 * overwrites is set back by reconciliation.
 */
export async function startWaitingJobs(db: Queryable, accountId: string): Promise<number> {
  const rows = await db.query<{ id: string }>(
    `UPDATE pgboss.job SET start_after = now()
      WHERE name = ANY($1) AND state::text = ANY($2) AND start_after > now()
        AND data->>'accountId' = $3
        AND NOT (name = $4 AND data ? 'settleRetries')
      RETURNING id`,
    [INTEGRATION_QUEUES.map((queue) => queue.name), QUEUED_STATES, accountId, TICKET_CREATE_QUEUE],
  );
  return rows.length;
}
