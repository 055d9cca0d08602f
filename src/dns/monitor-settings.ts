// The settings of DNS monitoring: the check interval of each MSSP account and the DKIM
// selectors of each domain. DKIM selectors cannot be discovered from DNS, so they are
// configured per domain.
import type { Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { getDomain } from '../platform/domains.ts';

/** The check interval of accounts that did not choose one: four checks a day. */
export const DEFAULT_CHECK_INTERVAL_MINUTES = 6 * 60;
/** Shortest interval: more often adds DNS traffic without noticing changes much sooner. */
export const MIN_CHECK_INTERVAL_MINUTES = 15;
/** Longest interval, a week, so that a removed record is still noticed within days. */
export const MAX_CHECK_INTERVAL_MINUTES = 7 * 24 * 60;
/** Most DKIM selectors per domain; providers rotate between two or three. */
export const MAX_DKIM_SELECTORS = 32;

export interface DnsMonitorSettings {
  checkIntervalMinutes: number;
  /** False while the account uses the default interval. */
  custom: boolean;
}

/** Return the account's check interval, or the default when it has not set one. */
export async function getMonitorSettings(
  db: Queryable,
  accountId: string,
): Promise<DnsMonitorSettings> {
  const [row] = await db.query<{ check_interval_minutes: number }>(
    'SELECT check_interval_minutes FROM dns_monitor_settings WHERE account_id = $1',
    [accountId],
  );
  return row
    ? { checkIntervalMinutes: row.check_interval_minutes, custom: true }
    : { checkIntervalMinutes: DEFAULT_CHECK_INTERVAL_MINUTES, custom: false };
}

/**
 * Set the account's check interval. Domains due later than one new interval from `now` are
 * brought forward to a jittered time within it, so that a shorter interval applies at once.
 */
export async function setCheckInterval(
  db: Queryable,
  accountId: string,
  minutes: number,
  now: Date,
): Promise<DnsMonitorSettings> {
  if (
    !Number.isInteger(minutes) ||
    minutes < MIN_CHECK_INTERVAL_MINUTES ||
    minutes > MAX_CHECK_INTERVAL_MINUTES
  ) {
    throw new AppError(
      'validation_failed',
      `Field "checkIntervalMinutes": ${minutes} is not a whole number of minutes from ${MIN_CHECK_INTERVAL_MINUTES} to ${MAX_CHECK_INTERVAL_MINUTES}.`,
      { field: 'checkIntervalMinutes' },
    );
  }
  await db.query(
    `INSERT INTO dns_monitor_settings (account_id, check_interval_minutes) VALUES ($1, $2)
     ON CONFLICT (account_id) DO UPDATE SET check_interval_minutes = $2, updated_at = now()`,
    [accountId, minutes],
  );
  await db.query(
    `UPDATE dns_check_schedule
        SET next_check_at = $3::timestamptz + make_interval(secs => $2::int * 60 * random())
      WHERE account_id = $1 AND next_check_reason = 'scheduled'
        AND next_check_at > $3::timestamptz + make_interval(mins => $2::int)`,
    [accountId, minutes, now.toISOString()],
  );
  return { checkIntervalMinutes: minutes, custom: true };
}

/**
 * Check and normalise DKIM selectors. Each is one or more dot-separated labels of letters,
 * digits and hyphens, since RFC 6376 section 3.1 takes the sub-domain syntax of RFC 5321.
 * Selectors are lower-cased because DNS names compare case-insensitively, and the key name
 * `<selector>._domainkey.<domain>` must fit in 253 characters. Throws a validation error
 * naming the first bad entry.
 */
export function normaliseDkimSelectors(selectors: string[], domainName: string): string[] {
  if (selectors.length > MAX_DKIM_SELECTORS) {
    throw new AppError(
      'validation_failed',
      `Field "selectors": ${selectors.length} selectors given, at most ${MAX_DKIM_SELECTORS} are checked per domain.`,
      { field: 'selectors' },
    );
  }
  const seen = new Set<string>();
  return selectors.map((input, index) => {
    const field = `selectors.${index}`;
    const selector = input.trim().toLowerCase();
    const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
    if (selector.length === 0 || !selector.split('.').every((part) => label.test(part))) {
      throw new AppError(
        'validation_failed',
        `Field "${field}": "${input}" is not a DKIM selector. Use labels of letters, digits and hyphens separated by dots, such as "selector1" or "s1.mail", without "._domainkey".`,
        { field },
      );
    }
    const keyName = `${selector}._domainkey.${domainName}`;
    if (keyName.length > 253) {
      throw new AppError(
        'validation_failed',
        `Field "${field}": the key name ${keyName.slice(0, 40)}... would be ${keyName.length} characters long, and DNS names have at most 253.`,
        { field },
      );
    }
    if (seen.has(selector)) {
      throw new AppError('validation_failed', `Field "${field}": "${selector}" is listed twice.`, {
        field,
      });
    }
    seen.add(selector);
    return selector;
  });
}

/** Return a domain's DKIM selectors in alphabetical order. Throws not_found for another account's domain. */
export async function listDkimSelectors(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<string[]> {
  await getDomain(db, accountId, domainId);
  const rows = await db.query<{ selector: string }>(
    'SELECT selector FROM dns_dkim_selectors WHERE account_id = $1 AND domain_id = $2 ORDER BY selector',
    [accountId, domainId],
  );
  return rows.map((row) => row.selector);
}

/** Replace a domain's DKIM selectors with a checked list and return them in alphabetical order. */
export async function setDkimSelectors(
  db: Queryable,
  accountId: string,
  domainId: string,
  selectors: string[],
): Promise<string[]> {
  const domain = await getDomain(db, accountId, domainId);
  const normalised = normaliseDkimSelectors(selectors, domain.name);
  await db.query(
    `DELETE FROM dns_dkim_selectors
      WHERE account_id = $1 AND domain_id = $2 AND NOT (selector = ANY($3::text[]))`,
    [accountId, domainId, normalised],
  );
  for (const selector of normalised) {
    await db.query(
      `INSERT INTO dns_dkim_selectors (account_id, domain_id, selector) VALUES ($1, $2, $3)
       ON CONFLICT (domain_id, selector) DO NOTHING`,
      [accountId, domainId, selector],
    );
  }
  return [...normalised].sort();
}
