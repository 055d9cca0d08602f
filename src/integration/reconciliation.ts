import type { Logger } from 'pino';
import type { Alert } from '../alerts/alert-store.ts';
import { setTicketStatus } from '../alerts/alert-store.ts';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Transaction } from '../db/database.ts';
import {
  HaloPsaError,
  type HaloLicence,
  type HaloPsaClient,
  type HaloSite,
  type HaloUser,
} from '../halopsa/index.ts';
import type { JobQueue, QueueDefinition } from '../jobs/queue.ts';
import { countBillableDomains } from '../platform/domains.ts';
import { integrationEnabled } from './account-gate.ts';
import type { ConnectionService } from './connection.ts';
import { recordEvent } from './history.ts';
import { deferralOf } from './rate-budget.ts';
import {
  LICENCE_RELEASE_QUEUE,
  TICKET_CREATE_QUEUE,
  type LicenceReleaseJob,
  type TicketCreateJob,
} from './jobs.ts';
import { getMapping, listMappings, type CustomerMapping } from './mappings.ts';
import {
  customersWithProblemsOrWaitingTickets,
  deferTicket,
  listOpenProblems,
  resolveAllProblems,
  resolveProblem,
  storeFindings,
  takeDeferredTickets,
  TICKET_BLOCKING_KINDS,
  type IntegrationProblem,
  type ProblemChanges,
  type ProblemFinding,
  type ProblemKind,
} from './problems.ts';
import { CHECKED_KINDS, findMappingProblems, type HaloSnapshot } from './reconciliation-checks.ts';
import type { TicketProblemGate } from './ticket-dispatch.ts';
import { getTicketRule } from './ticket-rules.ts';

export const RECONCILE_QUEUE = 'halopsa-reconcile';

/** One account's reconciliation, or, without an account, the scheduled run that queues all. */
export interface ReconcileJob {
  accountId?: string;
}

/** Stately and keyed by the account, so one run per account is active and at most one waits. */
export const RECONCILE_QUEUE_DEFINITION: QueueDefinition = {
  name: RECONCILE_QUEUE,
  policy: 'stately',
  retryLimit: 3,
  retryDelaySeconds: 60,
  retryDelayMaxSeconds: 900,
  // One run reads every client, item, ticket type and licence of the instance.
  expireInSeconds: 1800,
};

/** Counts of one reconciliation of an account. */
export interface ReconcileResult {
  customers: number;
  repaired: number;
  problemsOpened: number;
  problemsResolved: number;
  openProblems: number;
  ticketsReleased: number;
  failedCustomers: number;
  /** Mapped customers without a licence: mapped or mapped again since the last Submit. */
  notSubmitted: number;
}

// Kinds after which the licence is not touched: its client or item is gone.
const LICENCE_BLOCKING_KINDS: readonly ProblemKind[] = [
  'client_missing',
  'client_merged',
  'item_missing',
];
// NOTE: HaloPSA's wording for a mandatory ticket field is not public, so these words are a guess.
const FIELD_REQUIRED = /\b(required|mandatory)\b/i;

/**
 * Convert a reconciliation interval in minutes to a cron expression. The interval must divide
 * an hour, or be a whole number of hours that divides a day, so that the runs are evenly spaced.
 */
export function reconcileCron(intervalMinutes: number): string {
  if (intervalMinutes >= 1 && intervalMinutes < 60 && 60 % intervalMinutes === 0) {
    return `*/${intervalMinutes} * * * *`;
  }
  if (intervalMinutes % 60 === 0 && 1440 % intervalMinutes === 0) {
    if (intervalMinutes === 60) return '0 * * * *';
    return intervalMinutes === 1440 ? '0 0 * * *' : `0 */${intervalMinutes / 60} * * *`;
  }
  throw new Error(
    `Invalid reconciliation interval ${intervalMinutes} minutes: use a divisor of 60 (1 to 30) or of 1440 in whole hours (60, 120, 180, 240, 360, 480, 720, 1440).`,
  );
}

/**
 * Compares each mapped customer's HaloPSA licence and records with what dmarcdesk holds, and
 * repairs what it can: a count edited in HaloPSA is set back, and a deleted licence is
 * recreated and the mapping pointed at it. A mapping whose HaloPSA client, item, site, user or
 * ticket type is gone becomes an open problem, and the customer's tickets wait until it is
 * resolved. Only changes are recorded, so a run that finds no new drift records no repair.
 */
export class Reconciliation implements TicketProblemGate {
  constructor(
    private readonly db: Database,
    private readonly queue: JobQueue,
    private readonly connections: ConnectionService,
    private readonly logger: Logger,
  ) {}

  /** Queue a reconciliation of one account. */
  async enqueue(accountId: string, tx?: Transaction): Promise<void> {
    await this.queue.enqueue(RECONCILE_QUEUE, { accountId } satisfies ReconcileJob, {
      ...(tx ? { tx } : {}),
      singletonKey: accountId,
    });
  }

  /**
   * Queue a reconciliation of an account that has open problems or waiting tickets, after a
   * change that may fix them. Without any, the change needs no check before the next run.
   */
  async enqueueIfProblems(accountId: string): Promise<void> {
    if ((await customersWithProblemsOrWaitingTickets(this.db, accountId)).length === 0) return;
    await this.enqueue(accountId);
  }

  /** Install or update the schedule of the run that queues every account. */
  async schedule(intervalMinutes: number): Promise<void> {
    await this.queue.schedule(RECONCILE_QUEUE, reconcileCron(intervalMinutes), {});
  }

  /** The job handler. */
  async run(job: ReconcileJob): Promise<void> {
    if (!job.accountId) {
      const accounts = await this.db.query<{ account_id: string }>(
        `SELECT c.account_id FROM halopsa_connections c
           JOIN mssp_accounts a ON a.id = c.account_id
          WHERE a.halopsa_integration_enabled`,
      );
      for (const account of accounts) await this.enqueue(account.account_id);
      this.logger.info({ accounts: accounts.length }, 'queued reconciliation of every account');
      return;
    }
    await this.reconcileAccount(job.accountId);
  }

  /** Reconcile every mapped customer of one account. */
  async reconcileAccount(accountId: string): Promise<ReconcileResult> {
    const result: ReconcileResult = {
      customers: 0,
      repaired: 0,
      problemsOpened: 0,
      problemsResolved: 0,
      openProblems: 0,
      ticketsReleased: 0,
      failedCustomers: 0,
      notSubmitted: 0,
    };
    if (!(await integrationEnabled(this.db, accountId))) {
      this.logger.info({ accountId }, 'integration is off; reconciliation skipped');
      return result;
    }
    const client = await this.connections.clientFor(accountId);
    // Mappings first: a licence that a sync creates after this read is not on its mapping yet,
    // so it cannot look deleted for lack of being in the snapshot.
    const mappings = await listMappings(this.db, accountId);
    const halo = await readSnapshot(client);

    for (const mapping of mappings) {
      result.customers += 1;
      if (mapping.licenceId === null) result.notSubmitted += 1;
      try {
        const changes = await this.checkCustomer(accountId, mapping, halo);
        result.problemsOpened += changes.opened.length;
        result.problemsResolved += changes.resolved.length;
        if (!changes.open.some((problem) => LICENCE_BLOCKING_KINDS.includes(problem.kind))) {
          result.repaired += await this.repairLicence(client, halo, accountId, mapping);
        }
        result.ticketsReleased += await this.releaseWaitingTickets(accountId, mapping.customerId);
      } catch (error) {
        // Out of request budget: the whole run waits and starts again, which repeats nothing
        // because every repair writes an absolute value.
        const deferral = deferralOf(error);
        if (deferral) throw deferral;
        result.failedCustomers += 1;
        await this.recordCustomerFailure(accountId, mapping, error);
      }
    }

    // A customer no longer mapped has nothing to check: its problems go, and its waiting
    // tickets are queued so that they fail with the reason instead of waiting for ever.
    const mapped = new Set(mappings.map((mapping) => mapping.customerId));
    for (const customerId of await customersWithProblemsOrWaitingTickets(this.db, accountId)) {
      if (mapped.has(customerId)) continue;
      const resolved = await resolveAllProblems(this.db, accountId, customerId);
      for (const problem of resolved) await this.recordResolved(accountId, problem);
      result.problemsResolved += resolved.length;
      result.ticketsReleased += await this.releaseWaitingTickets(accountId, customerId);
    }

    result.openProblems = (await listOpenProblems(this.db, accountId)).length;
    await recordEvent(this.db, {
      accountId,
      event: 'reconcile.completed',
      outcome: result.failedCustomers === 0 ? 'succeeded' : 'failed',
      message:
        `Reconciliation checked ${result.customers} mapped customers: ${result.repaired} repaired, ` +
        `${result.problemsOpened} new problems, ${result.problemsResolved} resolved, ` +
        `${result.openProblems} open.` +
        (result.notSubmitted > 0
          ? ` ${result.notSubmitted} mapped customers have no HaloPSA subscription yet, because their mapping was saved without a Submit; Submit to HaloPSA creates them.`
          : ''),
      detail: { ...result },
    });
    this.logger.info({ accountId, ...result }, 'reconciled HaloPSA');
    return result;
  }

  /**
   * Hold a ticket while its customer has an open problem that stops tickets (the ticket job
   * calls it before creating). `recheckProblemId` is the problem this job was queued to test,
   * which does not hold it. Returns true when the ticket now waits.
   */
  async deferIfBlocked(alert: Alert, recheckProblemId?: string): Promise<boolean> {
    const blocking = (await listOpenProblems(this.db, alert.accountId, alert.customerId)).filter(
      (problem) => TICKET_BLOCKING_KINDS.includes(problem.kind) && problem.id !== recheckProblemId,
    );
    if (blocking.length === 0) return false;
    await this.defer(alert, blocking[0]!);
    return true;
  }

  /**
   * Check the customer's mapping after HaloPSA rejected its ticket as invalid. When the check
   * finds a missing record, or HaloPSA's message names a required field, the ticket waits
   * for that problem instead of failing. Returns true when the ticket now waits.
   */
  async deferAfterRejection(alert: Alert, ticketTypeId: number, error: unknown): Promise<boolean> {
    if (!(error instanceof HaloPsaError) || error.code !== 'validation_failed') return false;
    const mapping = await getMapping(this.db, alert.accountId, alert.customerId);
    if (!mapping) return false;
    const client = await this.connections.clientFor(alert.accountId);
    const halo = await readSnapshot(client, mapping.licenceId);
    const changes = await this.checkCustomer(alert.accountId, mapping, halo);
    let blocking = changes.open.find((problem) => TICKET_BLOCKING_KINDS.includes(problem.kind));
    const halopsaMessage = error.detail ?? error.message;
    if (!blocking && FIELD_REQUIRED.test(halopsaMessage)) {
      const rule = await getTicketRule(this.db, alert.accountId, alert.customerId);
      const finding: ProblemFinding = {
        kind: 'ticket_type_field_required',
        haloRecordType: 'ticket_type',
        haloRecordId: ticketTypeId,
        action: `HaloPSA rejected the ticket of "${mapping.customerName}" for ticket type "${rule?.ticketTypeName ?? ticketTypeId}" (id ${ticketTypeId}) with "${halopsaMessage}"; make that field optional for API tickets in HaloPSA, or choose another ticket type in Integrations, then HaloPSA, step 3.`,
        detail: { halopsaMessage },
      };
      const opened = await this.storeAndRecord(alert.accountId, mapping.customerId, [], [finding]);
      blocking = opened.open.find((problem) => problem.kind === 'ticket_type_field_required');
    }
    if (!blocking) return false;
    await this.defer(alert, blocking);
    return true;
  }

  /** After a ticket was created by a job queued to test a problem, resolve that problem. */
  async ticketCreated(alert: Alert, recheckProblemId?: string): Promise<void> {
    if (!recheckProblemId) return;
    const [problem] = (await listOpenProblems(this.db, alert.accountId, alert.customerId)).filter(
      (open) => open.id === recheckProblemId,
    );
    if (!problem || !(await resolveProblem(this.db, alert.accountId, problem.id))) return;
    await this.recordResolved(alert.accountId, problem);
    await this.releaseWaitingTickets(alert.accountId, alert.customerId);
  }

  /** Check one mapping against the snapshot and store what was found. */
  private async checkCustomer(
    accountId: string,
    mapping: CustomerMapping,
    halo: HaloSnapshot,
  ): Promise<ProblemChanges> {
    const rule = await getTicketRule(this.db, accountId, mapping.customerId);
    const findings = await findMappingProblems(mapping, rule, halo);
    const changes = await this.storeAndRecord(
      accountId,
      mapping.customerId,
      CHECKED_KINDS,
      findings,
    );
    // A required field belongs to the ticket type it was found on, so choosing another type,
    // or removing the rule, resolves it. Otherwise only a ticket that goes through does.
    const fieldRequired = changes.open.find(
      (problem) => problem.kind === 'ticket_type_field_required',
    );
    if (fieldRequired && (!rule || rule.ticketTypeId !== fieldRequired.haloRecordId)) {
      await resolveProblem(this.db, accountId, fieldRequired.id);
      await this.recordResolved(accountId, fieldRequired);
      return {
        opened: changes.opened,
        resolved: [...changes.resolved, fieldRequired],
        open: changes.open.filter((problem) => problem.id !== fieldRequired.id),
      };
    }
    return changes;
  }

  private async storeAndRecord(
    accountId: string,
    customerId: string,
    checkedKinds: readonly ProblemKind[],
    findings: ProblemFinding[],
  ): Promise<ProblemChanges> {
    const changes = await this.db.transaction((tx) =>
      storeFindings(tx, accountId, customerId, checkedKinds, findings),
    );
    for (const problem of changes.opened) {
      await recordEvent(this.db, {
        accountId,
        customerId,
        event: 'reconcile.problem',
        outcome: 'failed',
        message: problem.action,
        detail: {
          problemId: problem.id,
          kind: problem.kind,
          haloRecordType: problem.haloRecordType,
          haloRecordId: problem.haloRecordId,
        },
      });
      this.logger.warn(
        { accountId, customerId, kind: problem.kind, haloRecordId: problem.haloRecordId },
        'integration problem opened',
      );
    }
    for (const problem of changes.resolved) await this.recordResolved(accountId, problem);
    return changes;
  }

  private async recordResolved(accountId: string, problem: IntegrationProblem): Promise<void> {
    await recordEvent(this.db, {
      accountId,
      customerId: problem.customerId,
      event: 'reconcile.resolved',
      outcome: 'succeeded',
      message: `The ${problem.haloRecordType.replace('_', ' ')} problem of "${problem.customerName}" (HaloPSA id ${problem.haloRecordId}, ${problem.kind}) is resolved.`,
      detail: { problemId: problem.id, kind: problem.kind, haloRecordId: problem.haloRecordId },
    });
  }

  /**
   * Set the licence back to the billable count, or recreate it when it was deleted. Returns
   * the number of repairs made (0 or 1).
   */
  private async repairLicence(
    client: HaloPsaClient,
    halo: HaloSnapshot,
    accountId: string,
    mapping: CustomerMapping,
  ): Promise<number> {
    // NOTE: a mapping without a licence has not been submitted yet, or its first sync failed.
    // The licence sync job creates that licence, so reconciliation leaves it alone.
    if (mapping.licenceId === null) return 0;
    const count = await countBillableDomains(this.db, accountId, mapping.customerId);
    const licence = halo.licences.get(mapping.licenceId);

    if (licence && licence.client_id === mapping.haloClientId) {
      if (licence.count === count) return 0;
      await client.saveLicences([{ id: licence.id, count }]);
      await this.recordLicence(accountId, mapping, licence.id, count);
      await this.recordRepair(accountId, mapping, {
        repair: 'count_restored',
        licenceId: licence.id,
        previousCount: licence.count,
        count,
        message: `HaloPSA licence ${licence.id} of "${mapping.haloClientName}" had count ${licence.count}, edited in HaloPSA. It was set back to ${count}, the billable domains of "${mapping.customerName}".`,
      });
      return 1;
    }
    if (licence) {
      // NOTE: a licence moved to another client while the mapped client still exists is left
      // as it is, because recreating it would bill both clients.
      this.logger.warn(
        { accountId, customerId: mapping.customerId, licenceId: licence.id },
        'mapped licence belongs to another HaloPSA client; left unchanged',
      );
      return 0;
    }

    // The licence looks deleted. A fresh read confirms it, because the snapshot may be older
    // than a sync that ran meanwhile. A licence of the same client and item is adopted, so that
    // a customer never has two, and otherwise a new one is created.
    if (await client.getLicence(mapping.licenceId)) return 0;
    const ofClient = await client.listLicences({ clientId: mapping.haloClientId });
    const adoptable = ofClient.find(
      (candidate) =>
        candidate.client_id === mapping.haloClientId &&
        candidate.item_id === mapping.haloItemId &&
        !candidate.deleted,
    );
    let saved: HaloLicence;
    if (adoptable) {
      saved =
        adoptable.count === count
          ? adoptable
          : ((await client.saveLicences([{ id: adoptable.id, count }]))[0] as HaloLicence);
    } else {
      [saved] = (await client.saveLicences([
        {
          client_id: mapping.haloClientId,
          item_id: mapping.haloItemId,
          name: mapping.haloItemName,
          count,
        },
      ])) as [HaloLicence];
    }
    halo.licences.set(saved.id, saved);
    if (!(await this.recordLicence(accountId, mapping, saved.id, count))) return 0;
    await this.recordRepair(accountId, mapping, {
      repair: adoptable ? 'licence_adopted' : 'licence_recreated',
      licenceId: saved.id,
      previousLicenceId: mapping.licenceId,
      count,
      message: `HaloPSA licence ${mapping.licenceId} of "${mapping.haloClientName}" was deleted in HaloPSA; ${adoptable ? `licence ${saved.id} of the same item now serves` : `licence ${saved.id} was created for`} "${mapping.customerName}" with count ${count}.`,
    });
    return 1;
  }

  /**
   * Store the licence and count on the mapping. When the mapping changed meanwhile, the licence
   * just written belongs to no mapping, so a job sets it to 0 instead.
   */
  private async recordLicence(
    accountId: string,
    mapping: CustomerMapping,
    licenceId: number,
    count: number,
  ): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query(
        `UPDATE halopsa_customer_mappings
            SET halo_licence_id = $3, synced_count = $4, synced_at = now(), sync_error = NULL
          WHERE account_id = $1 AND customer_id = $2 AND halo_client_id = $5 AND halo_item_id = $6
          RETURNING customer_id`,
        [accountId, mapping.customerId, licenceId, count, mapping.haloClientId, mapping.haloItemId],
      );
      if (rows.length > 0) return true;
      if (licenceId !== mapping.licenceId) {
        await this.queue.enqueue(
          LICENCE_RELEASE_QUEUE,
          { accountId, customerId: mapping.customerId, licenceId } satisfies LicenceReleaseJob,
          { tx },
        );
      }
      return false;
    });
  }

  private async recordRepair(
    accountId: string,
    mapping: CustomerMapping,
    repair: {
      repair: 'count_restored' | 'licence_recreated' | 'licence_adopted';
      licenceId: number;
      previousLicenceId?: number | null;
      previousCount?: number;
      count: number;
      message: string;
    },
  ): Promise<void> {
    const { message, ...detail } = repair;
    await recordAudit(this.db, {
      accountId,
      actor: SYSTEM_ACTOR,
      action: 'halopsa.licence.repaired',
      customerId: mapping.customerId,
      targetType: 'halopsa_licence',
      targetId: repair.licenceId,
      before:
        repair.previousCount !== undefined
          ? { count: repair.previousCount }
          : { licenceId: repair.previousLicenceId ?? null },
      after: {
        endpoint: 'POST /api/SoftwareLicence',
        clientId: mapping.haloClientId,
        itemId: mapping.haloItemId,
        ...detail,
        result: 'succeeded',
      },
    });
    await recordEvent(this.db, {
      accountId,
      customerId: mapping.customerId,
      event: 'reconcile.repaired',
      outcome: 'succeeded',
      message,
      detail,
    });
  }

  private async recordCustomerFailure(
    accountId: string,
    mapping: CustomerMapping,
    error: unknown,
  ): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    this.logger.warn(
      { accountId, customerId: mapping.customerId, err: error },
      'reconciliation of a customer failed',
    );
    await recordEvent(this.db, {
      accountId,
      customerId: mapping.customerId,
      event: 'reconcile.failed',
      outcome: 'failed',
      message: `Reconciling "${mapping.customerName}" failed: ${message} The next run tries again.`,
      detail: { halopsaError: error instanceof HaloPsaError ? error.code : 'unknown' },
    });
  }

  /**
   * Queue the waiting tickets of a customer without open problems that stop tickets. While
   * only a required-field problem is open, one ticket is queued to test it. Returns how many
   * were queued.
   */
  private async releaseWaitingTickets(accountId: string, customerId: string): Promise<number> {
    const blocking = (await listOpenProblems(this.db, accountId, customerId)).filter((problem) =>
      TICKET_BLOCKING_KINDS.includes(problem.kind),
    );
    const recheck = blocking.every((problem) => problem.kind === 'ticket_type_field_required')
      ? blocking[0]
      : undefined;
    if (blocking.length > 0 && !recheck) return 0;
    return this.db.transaction(async (tx) => {
      const alertIds = await takeDeferredTickets(tx, accountId, customerId, recheck ? 1 : null);
      for (const alertId of alertIds) {
        await this.queue.enqueue(
          TICKET_CREATE_QUEUE,
          {
            accountId,
            alertId,
            ...(recheck ? { recheckProblemId: recheck.id } : {}),
          } satisfies TicketCreateJob,
          { tx, priority: 10 },
        );
      }
      if (alertIds.length > 0) {
        this.logger.info(
          { accountId, customerId, tickets: alertIds.length, recheck: recheck?.id ?? null },
          'queued waiting tickets again',
        );
      }
      return alertIds.length;
    });
  }

  private async defer(alert: Alert, problem: IntegrationProblem): Promise<void> {
    await deferTicket(this.db, {
      accountId: alert.accountId,
      customerId: alert.customerId,
      alertId: alert.id,
    });
    await setTicketStatus(this.db, alert.id, {
      status: 'pending',
      error: `Waiting until this is fixed: ${problem.action}`,
    });
    await recordEvent(this.db, {
      accountId: alert.accountId,
      customerId: alert.customerId,
      event: 'ticket.deferred',
      outcome: 'failed',
      message: `The ticket of the ${alert.kind} alert on ${alert.domainName} waits until this is fixed: ${problem.action}`,
      detail: { alertId: alert.id, problemId: problem.id, kind: problem.kind },
    });
    this.logger.info(
      { alertId: alert.id, problemId: problem.id, kind: problem.kind },
      'alert ticket waits for an integration problem',
    );
  }
}

/**
 * Read the HaloPSA records the checks need. `licenceId` limits the licences to that one, for
 * the check of a single customer; without it every licence is listed once.
 * NOTE: listing every licence reads the whole instance's licences, not only dmarcdesk's. That
 * is fewer calls than one GET per customer once an account has more than a page of mappings.
 */
async function readSnapshot(
  client: HaloPsaClient,
  licenceId?: number | null,
): Promise<HaloSnapshot> {
  const [clients, items, ticketTypes, licences] = await Promise.all([
    client.listClients({ includeInactive: true }),
    client.listItems(),
    client.listTicketTypes(),
    licenceId === undefined
      ? client.listLicences()
      : licenceId === null
        ? Promise.resolve([])
        : client.getLicence(licenceId).then((licence) => (licence ? [licence] : [])),
  ]);
  const sites = new Map<number, Promise<HaloSite[]>>();
  const users = new Map<number, Promise<HaloUser[]>>();
  return {
    clients: new Map(clients.map((record) => [record.id, record])),
    items: new Map(items.map((record) => [record.id, record])),
    ticketTypes: new Map(ticketTypes.map((record) => [record.id, record])),
    licences: new Map(licences.map((record) => [record.id, record])),
    sitesOf(clientId) {
      if (!sites.has(clientId)) sites.set(clientId, client.listSites({ clientId }));
      return sites.get(clientId)!;
    },
    usersOf(siteId) {
      if (!users.has(siteId)) users.set(siteId, client.listUsers({ siteId }));
      return users.get(siteId)!;
    },
  };
}
