// A paused domain raises no alert of any kind. Its aggregate and failure reports are still
// stored, and a manual DNS check still stores its lookups, so that the history is complete
// when the domain is resumed. Pending domains alert like active ones, because pending is about
// billing, and a domain being set up is where a broken record matters most.
import type { Queryable } from '../db/database.ts';

/** Return true when the domain exists in the account and its status is paused. */
export async function isDomainPaused(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<boolean> {
  const [row] = await db.query<{ status: string }>(
    'SELECT status FROM domains WHERE account_id = $1 AND id = $2',
    [accountId, domainId],
  );
  return row?.status === 'paused';
}
