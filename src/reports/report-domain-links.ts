import type { Queryable } from '../db/database.ts';

/** The reports that linkReportsToDomain attached to a domain. */
export interface LinkedReportCounts {
  aggregateReports: number;
  failureReports: number;
}

/**
 * Attaches the account's stored reports that no monitored domain claimed to a domain just
 * added, inside the caller's transaction. An aggregate report is attached when its policy
 * domain is the domain's name. A failure report is attached when its reported domain is the
 * name or a subdomain of it, as ingest attaches one to the nearest monitored parent.
 * `name` is the stored form of the domain: lower case, A-labels, no trailing dot.
 */
export async function linkReportsToDomain(
  tx: Queryable,
  domain: { accountId: string; domainId: string; name: string },
): Promise<LinkedReportCounts> {
  const aggregate = await tx.query<{ id: string }>(
    `UPDATE aggregate_reports SET domain_id = $2
      WHERE account_id = $1 AND domain_id IS NULL AND lower(policy_domain) = $3
      RETURNING id`,
    [domain.accountId, domain.domainId, domain.name],
  );
  // A suffix comparison rather than LIKE, because "_" is a LIKE wildcard and may occur in names.
  const failure = await tx.query<{ id: string }>(
    `UPDATE failure_reports SET domain_id = $2
      WHERE account_id = $1 AND domain_id IS NULL
        AND (reported_domain = $3 OR right(reported_domain, length($3) + 1) = '.' || $3)
      RETURNING id`,
    [domain.accountId, domain.domainId, domain.name],
  );
  return { aggregateReports: aggregate.length, failureReports: failure.length };
}
