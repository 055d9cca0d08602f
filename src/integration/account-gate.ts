import type { Queryable } from '../db/database.ts';

/**
 * Tell whether the account's "HaloPSA Integration" setting is on. Every write to HaloPSA checks
 * it when it runs, so that turning the setting off stops queued work too.
 */
export async function integrationEnabled(db: Queryable, accountId: string): Promise<boolean> {
  const [row] = await db.query<{ enabled: boolean }>(
    'SELECT halopsa_integration_enabled AS enabled FROM mssp_accounts WHERE id = $1',
    [accountId],
  );
  return row?.enabled ?? false;
}
