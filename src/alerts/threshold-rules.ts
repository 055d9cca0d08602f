import type { Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { getDomainGroup } from '../platform/domain-groups.ts';
import { getDomain } from '../platform/domains.ts';

/**
 * A threshold rule of one domain or one domain group. It fires when more messages fail DMARC
 * than maxFailedMessages, or when more than maxFailurePercent of them fail (judged only from
 * minMessages messages up), over a rolling window of windowHours. A rule without a window
 * judges each aggregate report alone, which is how a plain maxFailedMessages rule has always
 * worked.
 */
export interface ThresholdRule {
  id: string;
  /** Set for a domain rule; null for a group rule. */
  domainId: string | null;
  /** Set for a group rule, which sums the reports of the group's domains. */
  groupId: string | null;
  maxFailedMessages: number | null;
  maxFailurePercent: number | null;
  minMessages: number;
  windowHours: number | null;
  /** As set; null uses the default below. */
  clearAfterHours: number | null;
  /** The report time the condition must stay clear before its incident resolves. */
  effectiveClearAfterHours: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The fields of a rule as the API accepts them. */
export interface ThresholdRuleInput {
  maxFailedMessages?: number | null | undefined;
  maxFailurePercent?: number | null | undefined;
  minMessages?: number | undefined;
  windowHours?: number | null | undefined;
  clearAfterHours?: number | null | undefined;
}

/** Report time a rule without its own clear time must stay clear when it has no window. */
const DEFAULT_CLEAR_AFTER_HOURS = 24;

interface RuleRow {
  id: string;
  domain_id: string | null;
  group_id: string | null;
  max_failed_messages: number | null;
  // Both drivers return numeric columns as strings.
  max_failure_percent: string | number | null;
  min_messages: number;
  window_hours: number | null;
  clear_after_hours: number | null;
  created_at: Date;
  updated_at: Date;
}

function toRule(row: RuleRow): ThresholdRule {
  return {
    id: row.id,
    domainId: row.domain_id,
    groupId: row.group_id,
    maxFailedMessages: row.max_failed_messages,
    maxFailurePercent: row.max_failure_percent === null ? null : Number(row.max_failure_percent),
    minMessages: row.min_messages,
    windowHours: row.window_hours,
    clearAfterHours: row.clear_after_hours,
    effectiveClearAfterHours:
      row.clear_after_hours ?? row.window_hours ?? DEFAULT_CLEAR_AFTER_HOURS,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function checkInput(input: ThresholdRuleInput, subject: 'domain' | 'group'): void {
  if (input.maxFailedMessages == null && input.maxFailurePercent == null) {
    throw new AppError(
      'validation_failed',
      'The request body sets no limit; set maxFailedMessages, maxFailurePercent or both.',
      { field: 'maxFailedMessages' },
    );
  }
  if (subject === 'group' && input.windowHours == null) {
    throw new AppError(
      'validation_failed',
      'Field "windowHours": a domain group rule sums its domains over a window; set windowHours, for example 24.',
      { field: 'windowHours' },
    );
  }
}

async function upsertRule(
  db: Queryable,
  accountId: string,
  subject: { domainId: string } | { groupId: string },
  input: ThresholdRuleInput,
): Promise<ThresholdRule> {
  const isDomain = 'domainId' in subject;
  const values = [
    accountId,
    isDomain ? subject.domainId : subject.groupId,
    input.maxFailedMessages ?? null,
    input.maxFailurePercent ?? null,
    input.minMessages ?? 0,
    input.windowHours ?? null,
    input.clearAfterHours ?? null,
  ];
  // Each subject has at most one rule, so PUT replaces it whole and keeps its id, which the
  // fingerprint of its open incident names.
  const [row] = await db.query<RuleRow>(
    isDomain
      ? `INSERT INTO threshold_rules (account_id, domain_id, max_failed_messages,
            max_failure_percent, min_messages, window_hours, clear_after_hours)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (domain_id) DO UPDATE
           SET max_failed_messages = $3, max_failure_percent = $4, min_messages = $5,
               window_hours = $6, clear_after_hours = $7, updated_at = now()
         RETURNING *`
      : `INSERT INTO threshold_rules (account_id, group_id, max_failed_messages,
            max_failure_percent, min_messages, window_hours, clear_after_hours)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (group_id) WHERE group_id IS NOT NULL DO UPDATE
           SET max_failed_messages = $3, max_failure_percent = $4, min_messages = $5,
               window_hours = $6, clear_after_hours = $7, updated_at = now()
         RETURNING *`,
    values,
  );
  return toRule(row!);
}

/**
 * Create or replace the rule of a domain. A bare number is maxFailedMessages of a rule without
 * a window, the only kind of rule there was before.
 */
export async function setThresholdRule(
  db: Queryable,
  accountId: string,
  domainId: string,
  input: ThresholdRuleInput | number,
): Promise<ThresholdRule> {
  const fields = typeof input === 'number' ? { maxFailedMessages: input } : input;
  await getDomain(db, accountId, domainId);
  checkInput(fields, 'domain');
  return upsertRule(db, accountId, { domainId }, fields);
}

/** Create or replace the rule of a domain group. */
export async function setGroupThresholdRule(
  db: Queryable,
  accountId: string,
  groupId: string,
  input: ThresholdRuleInput,
): Promise<ThresholdRule> {
  await getDomainGroup(db, accountId, groupId);
  checkInput(input, 'group');
  return upsertRule(db, accountId, { groupId }, input);
}

/** Return the rule of a domain, or null; throws not_found for a domain of another account. */
export async function getThresholdRule(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<ThresholdRule | null> {
  await getDomain(db, accountId, domainId);
  const [row] = await db.query<RuleRow>(
    'SELECT * FROM threshold_rules WHERE account_id = $1 AND domain_id = $2',
    [accountId, domainId],
  );
  return row ? toRule(row) : null;
}

/** Return the rule of a domain group, or null; throws not_found for a group of another account. */
export async function getGroupThresholdRule(
  db: Queryable,
  accountId: string,
  groupId: string,
): Promise<ThresholdRule | null> {
  await getDomainGroup(db, accountId, groupId);
  const [row] = await db.query<RuleRow>(
    'SELECT * FROM threshold_rules WHERE account_id = $1 AND group_id = $2',
    [accountId, groupId],
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

export async function deleteGroupThresholdRule(
  db: Queryable,
  accountId: string,
  groupId: string,
): Promise<void> {
  await getDomainGroup(db, accountId, groupId);
  await db.query('DELETE FROM threshold_rules WHERE account_id = $1 AND group_id = $2', [
    accountId,
    groupId,
  ]);
}

export async function listThresholdRules(
  db: Queryable,
  accountId: string,
): Promise<ThresholdRule[]> {
  const rows = await db.query<RuleRow>(
    'SELECT * FROM threshold_rules WHERE account_id = $1 ORDER BY created_at, id',
    [accountId],
  );
  return rows.map(toRule);
}

/** List the rules a report of this domain may fire: the domain's own, and its groups' rules. */
export async function listRulesCoveringDomain(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<ThresholdRule[]> {
  const rows = await db.query<RuleRow>(
    `SELECT r.* FROM threshold_rules r
      WHERE r.account_id = $1
        AND (r.domain_id = $2
             OR r.group_id IN (SELECT group_id FROM domain_group_members WHERE domain_id = $2))
      ORDER BY r.group_id NULLS FIRST, r.id`,
    [accountId, domainId],
  );
  return rows.map(toRule);
}
