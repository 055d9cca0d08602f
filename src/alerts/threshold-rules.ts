import type { Queryable } from '../db/database.ts';
import { getDomain } from '../platform/domains.ts';

export interface ThresholdRule {
  id: string;
  domainId: string;
  maxFailedMessages: number;
}

interface RuleRow {
  id: string;
  domain_id: string;
  max_failed_messages: number;
}

const toRule = (row: RuleRow): ThresholdRule => ({
  id: row.id,
  domainId: row.domain_id,
  maxFailedMessages: row.max_failed_messages,
});

export async function setThresholdRule(
  db: Queryable,
  accountId: string,
  domainId: string,
  maxFailedMessages: number,
): Promise<ThresholdRule> {
  await getDomain(db, accountId, domainId);
  const [row] = await db.query<RuleRow>(
    `INSERT INTO threshold_rules (account_id, domain_id, max_failed_messages) VALUES ($1, $2, $3)
     ON CONFLICT (domain_id) DO UPDATE SET max_failed_messages = $3, updated_at = now()
     RETURNING *`,
    [accountId, domainId, maxFailedMessages],
  );
  return toRule(row!);
}

export async function getThresholdRule(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<ThresholdRule | null> {
  const [row] = await db.query<RuleRow>(
    'SELECT * FROM threshold_rules WHERE account_id = $1 AND domain_id = $2',
    [accountId, domainId],
  );
  return row ? toRule(row) : null;
}

export async function deleteThresholdRule(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<void> {
  await getDomain(db, accountId, domainId);
  await db.query('DELETE FROM threshold_rules WHERE account_id = $1 AND domain_id = $2', [
    accountId,
    domainId,
  ]);
}

export async function listThresholdRules(
  db: Queryable,
  accountId: string,
): Promise<ThresholdRule[]> {
  const rows = await db.query<RuleRow>('SELECT * FROM threshold_rules WHERE account_id = $1', [
    accountId,
  ]);
  return rows.map(toRule);
}
