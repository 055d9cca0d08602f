import type { Queryable } from '../db/database.ts';
import type { ConnectionService, ConnectionView } from './connection.ts';
import { listMappings } from './mappings.ts';
import { listOpenProblems, type IntegrationProblem } from './problems.ts';
import { listTicketRules } from './ticket-rules.ts';
import { customersWithQueuedSync } from './waiting-jobs.ts';

export interface IntegrationSummary {
  connection: ConnectionView | null;
  customers: { mapped: number; synced: number; pending: number; failed: number };
  alerts: {
    /** Alert kinds that at least one customer sends to HaloPSA. */
    enabledKinds: ('dns' | 'threshold' | 'forensic')[];
    perCustomer: { customerId: string; dns: number; threshold: number; forensic: number }[];
  };
  problems: IntegrationProblem[];
  /**
   * Instruction to fix the connection while it needs attention (HaloPSA rejected its
   * credentials or token, or a permission is missing), or null. HaloPSA jobs wait until it is fixed.
   */
  attention: string | null;
}

/** Build the three status cards of the integration summary: connection, customers and alerts. */
export async function buildSummary(
  db: Queryable,
  connections: ConnectionService,
  accountId: string,
): Promise<IntegrationSummary> {
  const [connection, mappings, rules, problems, queued] = await Promise.all([
    connections.get(accountId),
    listMappings(db, accountId),
    listTicketRules(db, accountId),
    listOpenProblems(db, accountId),
    customersWithQueuedSync(db, accountId),
  ]);

  const perCustomer = rules.map((rule) => ({
    customerId: rule.customerId,
    dns: rule.dnsDomainIds.length,
    threshold: rule.thresholdDomainIds.length + rule.thresholdGroupIds.length,
    forensic: rule.forensicDomainIds.length,
  }));
  const enabledKinds = (['dns', 'threshold', 'forensic'] as const).filter((kind) =>
    perCustomer.some((counts) => counts[kind] > 0),
  );

  return {
    connection,
    customers: {
      mapped: mappings.length,
      synced: mappings.filter(
        (mapping) => mapping.syncError === null && mapping.syncedCount === mapping.billableDomains,
      ).length,
      // A customer whose last sync failed is pending while its sync job is queued again
      // (waiting for a retry, a request slot or a fixed connection), as the job may succeed.
      pending: mappings.filter((mapping) =>
        mapping.syncError === null
          ? mapping.syncedCount !== mapping.billableDomains
          : queued.has(mapping.customerId),
      ).length,
      failed: mappings.filter(
        (mapping) => mapping.syncError !== null && !queued.has(mapping.customerId),
      ).length,
    },
    alerts: { enabledKinds, perCustomer },
    problems,
    attention:
      connection?.status === 'needs_attention'
        ? connection.statusDetail
        : connection?.noteOutcome.status === 'forbidden'
          ? connection.noteOutcome.detail
          : null,
  };
}
