import type { Logger } from 'pino';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Transaction } from '../db/database.ts';
import {
  HaloPsaError,
  type HaloLicence,
  type HaloLicenceInput,
  type HaloPsaClient,
} from '../halopsa/index.ts';
import type { JobQueue } from '../jobs/queue.ts';
import { countBillableDomains } from '../platform/domains.ts';
import type { ConnectionService } from './connection.ts';
import { recordEvent } from './history.ts';
import { currentCallContext, deferralOf, runWithCallContext } from './rate-budget.ts';
import { integrationEnabled } from './account-gate.ts';
import {
  LICENCE_RELEASE_QUEUE,
  LICENCE_SYNC_QUEUE,
  type LicenceReleaseJob,
  type LicenceSyncJob,
} from './jobs.ts';
import { getMapping, type CustomerMapping } from './mappings.ts';

// Failures after which HaloPSA may or may not have done the write.
const AMBIGUOUS_CODES = ['timeout', 'connection_failed', 'server_error'];

/**
 * Keeps one HaloPSA SoftwareLicence per mapped customer whose `count` is the customer's number
 * of billable domains. Each run writes the absolute count, so runs can repeat or coalesce.
 */
export class LicenceSync {
  constructor(
    private readonly db: Database,
    private readonly queue: JobQueue,
    private readonly connections: ConnectionService,
    private readonly logger: Logger,
    private readonly options: { writeSettleSeconds: number } = { writeSettleSeconds: 120 },
  ) {}

  /** Queue a sync of one customer inside `tx`, if that customer is mapped. */
  async enqueueInTransaction(
    tx: Transaction,
    accountId: string,
    customerId: string,
  ): Promise<void> {
    const mapped = await tx.query(
      'SELECT 1 FROM halopsa_customer_mappings WHERE account_id = $1 AND customer_id = $2',
      [accountId, customerId],
    );
    if (mapped.length === 0) return;
    await this.queue.enqueue(
      LICENCE_SYNC_QUEUE,
      { accountId, customerId } satisfies LicenceSyncJob,
      {
        tx,
        singletonKey: customerId,
      },
    );
  }

  async enqueue(accountId: string, customerId: string): Promise<void> {
    await this.queue.enqueue(
      LICENCE_SYNC_QUEUE,
      { accountId, customerId } satisfies LicenceSyncJob,
      {
        singletonKey: customerId,
      },
    );
  }

  /** Customer-removing listener: release the licence of a mapped customer that is deleted. */
  async releaseCustomerInTransaction(
    tx: Transaction,
    accountId: string,
    customerId: string,
  ): Promise<void> {
    const [mapping] = await tx.query<{ halo_licence_id: number | null }>(
      // FOR UPDATE waits for a sync that is recording a licence id right now, so that id is seen.
      'SELECT halo_licence_id FROM halopsa_customer_mappings WHERE account_id = $1 AND customer_id = $2 FOR UPDATE',
      [accountId, customerId],
    );
    if (mapping?.halo_licence_id == null) return;
    await this.enqueueReleaseInTransaction(tx, {
      accountId,
      customerId,
      licenceId: mapping.halo_licence_id,
    });
  }

  /** Queue, inside `tx`, the job that sets a licence no mapping uses any more to 0. */
  async enqueueReleaseInTransaction(tx: Transaction, released: LicenceReleaseJob): Promise<void> {
    await this.queue.enqueue(LICENCE_RELEASE_QUEUE, released satisfies LicenceReleaseJob, { tx });
  }

  /** Tell whether the job's customer is mapped now to the client and item of `licence`. */
  private async mappedToLicenceOwner(
    job: LicenceReleaseJob,
    licence: { client_id: number; item_id?: number },
  ): Promise<boolean> {
    const [mapping] = await this.db.query<{ halo_client_id: number; halo_item_id: number }>(
      `SELECT halo_client_id, halo_item_id FROM halopsa_customer_mappings
        WHERE account_id = $1 AND customer_id = $2`,
      [job.accountId, job.customerId],
    );
    if (!mapping || mapping.halo_client_id !== licence.client_id) return false;
    return licence.item_id === undefined || licence.item_id === mapping.halo_item_id;
  }

  /** The job handler of a released licence: set its count to 0 unless it is gone already. */
  async release(job: LicenceReleaseJob): Promise<void> {
    if (!(await integrationEnabled(this.db, job.accountId))) {
      this.logger.info(
        { accountId: job.accountId, licenceId: job.licenceId },
        'integration is off; licence left as it is',
      );
      return;
    }
    const client = await this.connections.clientFor(job.accountId);
    const licence = await client.getLicence(job.licenceId);
    if (!licence || licence.count === 0) return;
    if (await this.mappedToLicenceOwner(job, licence)) {
      // The customer is now mapped to the client that owns this licence, as after a merge of
      // its old client into the new one: the licence sync adopts it instead of a new one.
      this.logger.info(
        { accountId: job.accountId, customerId: job.customerId, licenceId: job.licenceId },
        'licence kept: the customer is mapped to its client again',
      );
      await this.enqueue(job.accountId, job.customerId);
      return;
    }
    try {
      await client.saveLicences([{ id: job.licenceId, count: 0 }]);
    } catch (error) {
      if (!(error instanceof HaloPsaError) || error.code !== 'validation_failed') throw error;
      // NOTE: the emulator rejects any update of a licence whose customer or item was deleted.
      // HaloPSA's rule is not public. A retry would fail the same way, so none is made.
      const message = `HaloPSA rejected setting licence ${job.licenceId} to 0, which no mapping uses any more: ${error.message} Set its count to 0 or remove it in HaloPSA.`;
      this.logger.warn(
        { accountId: job.accountId, licenceId: job.licenceId, err: error },
        'releasing a licence failed',
      );
      await recordEvent(this.db, {
        accountId: job.accountId,
        customerId: job.customerId,
        event: 'licence.failed',
        outcome: 'failed',
        message,
        detail: { licenceId: job.licenceId, halopsaError: error.code },
      });
      return;
    }
    await recordAudit(this.db, {
      accountId: job.accountId,
      actor: SYSTEM_ACTOR,
      action: 'halopsa.licence.released',
      customerId: job.customerId,
      targetType: 'halopsa_licence',
      targetId: job.licenceId,
      before: { count: licence.count },
      after: { endpoint: 'POST /api/SoftwareLicence', count: 0, result: 'succeeded' },
    });
    await recordEvent(this.db, {
      accountId: job.accountId,
      customerId: job.customerId,
      event: 'licence.updated',
      outcome: 'succeeded',
      message: `HaloPSA licence ${job.licenceId} is no longer mapped; its count was set from ${licence.count} to 0.`,
      detail: { licenceId: job.licenceId, count: 0, previousCount: licence.count },
    });
  }

  /** The job handler: bring one customer's licence to its billable count. */
  async run(job: LicenceSyncJob): Promise<void> {
    const mapping = await getMapping(this.db, job.accountId, job.customerId);
    if (!mapping) return;
    if (!(await integrationEnabled(this.db, job.accountId))) {
      this.logger.info(
        { accountId: job.accountId, customerId: job.customerId },
        'integration is off; licence sync skipped',
      );
      return;
    }

    const count = await countBillableDomains(this.db, job.accountId, job.customerId);
    try {
      const client = await this.connections.clientFor(job.accountId);
      const current = mapping.licenceId ? await client.getLicence(mapping.licenceId) : null;
      const licence =
        current && current.client_id === mapping.haloClientId
          ? current
          : await this.findAdoptable(job, mapping);
      await this.writeOne({ job, mapping, count, licence });
      await this.connections.setStatus(job.accountId, 'healthy', null);
    } catch (error) {
      await this.handleFailure(job, error);
    }
  }

  /**
   * The batch job handler: sync every customer of `jobs`, with one list of each account's
   * licences and one POST for its updates and one for its creates. Returns, per job id, null or
   * what that customer's sync threw, as run() would have thrown it.
   */
  async runBatch(jobs: QueuedSync[]): Promise<Map<string, unknown>> {
    const outcomes = new Map<string, unknown>();
    const byAccount = new Map<string, Map<string, QueuedSync[]>>();
    for (const job of jobs) {
      const customers = byAccount.get(job.data.accountId) ?? new Map();
      byAccount.set(job.data.accountId, customers);
      // A customer can appear twice (a retry next to a new run); one sync serves both.
      customers.set(job.data.customerId, [...(customers.get(job.data.customerId) ?? []), job]);
    }

    for (const [accountId, customers] of byAccount) {
      const syncs = [...customers.values()].map((sameCustomer) => sameCustomer[0]!.data);
      const results =
        syncs.length === 1
          ? new Map([[syncs[0]!.customerId, await this.runOneOutcome(syncs[0]!)]])
          : await this.runAccount(accountId, syncs);
      for (const [customerId, sameCustomer] of customers) {
        for (const job of sameCustomer) outcomes.set(job.id, results.get(customerId) ?? null);
      }
    }
    return outcomes;
  }

  /** Runs run() for `job` with the customer in the call context, and returns null or its error. */
  private async runOneOutcome(job: LicenceSyncJob): Promise<unknown> {
    const context = { ...currentCallContext(), customerId: job.customerId };
    return outcomeOf(() => runWithCallContext(context, () => this.run(job)));
  }

  /** Syncs several customers of one account. Returns, per customer id, null or its error. */
  private async runAccount(
    accountId: string,
    jobs: LicenceSyncJob[],
  ): Promise<Map<string, unknown>> {
    const outcomes = new Map<string, unknown>(jobs.map((job) => [job.customerId, null]));
    if (!(await integrationEnabled(this.db, accountId))) {
      this.logger.info(
        { accountId, customers: jobs.length },
        'integration is off; licence sync skipped',
      );
      return outcomes;
    }

    const pending: { job: LicenceSyncJob; mapping: CustomerMapping; count: number }[] = [];
    for (const job of jobs) {
      const mapping = await getMapping(this.db, accountId, job.customerId);
      if (!mapping) continue;
      pending.push({
        job,
        mapping,
        count: await countBillableDomains(this.db, accountId, job.customerId),
      });
    }
    if (pending.length === 0) return outcomes;

    let client: HaloPsaClient;
    let licences: HaloLicence[];
    try {
      client = await this.connections.clientFor(accountId);
      // NOTE: this reads every licence of the HaloPSA instance, not only this account's
      // customers' ones, so an instance with thousands of licences costs one GET per 100.
      licences = await client.listLicences();
    } catch (error) {
      for (const { job } of pending) {
        outcomes.set(job.customerId, await outcomeOf(() => this.handleFailure(job, error)));
      }
      return outcomes;
    }

    const byId = new Map(licences.map((licence) => [licence.id, licence]));
    const plans: PlannedSync[] = [];
    for (const { job, mapping, count } of pending) {
      const outcome = await outcomeOf(async () => {
        let current = mapping.licenceId ? (byId.get(mapping.licenceId) ?? null) : null;
        // A licence the list leaves out (an inactive one, say) may still exist.
        if (mapping.licenceId && !current) current = await client.getLicence(mapping.licenceId);
        const licence =
          current && current.client_id === mapping.haloClientId
            ? current
            : (licences.find(
                (candidate) =>
                  candidate.client_id === mapping.haloClientId &&
                  candidate.item_id === mapping.haloItemId &&
                  !candidate.deleted,
              ) ?? null);
        plans.push({ job, mapping, count, licence });
      }).then((error) => (error === null ? null : this.failureOutcome(job, error)));
      outcomes.set(job.customerId, outcome);
    }

    const unchanged = plans.filter((plan) => plan.licence && plan.licence.count === plan.count);
    const updates = plans.filter((plan) => plan.licence && plan.licence.count !== plan.count);
    const creates = plans.filter((plan) => !plan.licence);
    for (const plan of unchanged) {
      outcomes.set(
        plan.job.customerId,
        await outcomeOf(() => this.recordSaved(plan, plan.licence!, 'licence.unchanged')),
      );
    }
    for (const group of [updates, creates]) {
      for (const [customerId, outcome] of await this.writeTogether(client, group)) {
        outcomes.set(customerId, outcome);
      }
    }

    if (plans.some((plan) => outcomes.get(plan.job.customerId) === null)) {
      await this.connections.setStatus(accountId, 'healthy', null);
    }
    return outcomes;
  }

  /**
   * Saves the licences of `plans`, all updates or all creates, in one POST. The emulator saves
   * all of a POST or none, so when HaloPSA rejects the POST each licence is sent again alone.
   * NOTE: whether HaloPSA itself saves part of a rejected batch is not documented.
   */
  private async writeTogether(
    client: HaloPsaClient,
    plans: PlannedSync[],
  ): Promise<Map<string, unknown>> {
    const outcomes = new Map<string, unknown>();
    if (plans.length === 0) return outcomes;
    if (plans.length === 1) {
      const [plan] = plans as [PlannedSync];
      outcomes.set(plan.job.customerId, await this.writeOneOutcome(plan));
      return outcomes;
    }

    let saved: HaloLicence[];
    try {
      saved = await client.saveLicences(plans.map(licenceInputOf));
    } catch (error) {
      // A 400 or a 404 (an updated licence removed in HaloPSA) may be the fault of one licence.
      const rejected =
        error instanceof HaloPsaError && ['validation_failed', 'not_found'].includes(error.code);
      if (rejected) {
        this.logger.info(
          { accountId: plans[0]!.job.accountId, licences: plans.length, err: error },
          'HaloPSA rejected a licence batch, so each licence is sent again alone',
        );
      }
      for (const plan of plans) {
        outcomes.set(
          plan.job.customerId,
          rejected
            ? await this.writeOneOutcome(plan)
            : await outcomeOf(() => this.handleFailure(plan.job, error)),
        );
      }
      return outcomes;
    }

    for (const plan of plans) {
      const row = savedRowOf(plan, plans, saved);
      if (!row) {
        // The write went out, but its response does not show this customer's licence. A new
        // run reads the licence back: it adopts a created one, so no second one is made.
        this.logger.warn(
          { accountId: plan.job.accountId, customerId: plan.job.customerId },
          "HaloPSA's response to a licence batch lacks this customer's licence; checking again",
        );
        outcomes.set(
          plan.job.customerId,
          await outcomeOf(() => this.enqueue(plan.job.accountId, plan.job.customerId)),
        );
        continue;
      }
      const event = plan.licence ? 'licence.updated' : 'licence.created';
      outcomes.set(plan.job.customerId, await outcomeOf(() => this.recordSaved(plan, row, event)));
    }
    return outcomes;
  }

  /** Writes one customer's licence alone and returns null or the error its run would throw. */
  private async writeOneOutcome(plan: PlannedSync): Promise<unknown> {
    return outcomeOf(() =>
      runWithCallContext({ ...currentCallContext(), customerId: plan.job.customerId }, async () => {
        try {
          await this.writeOne(plan);
        } catch (error) {
          await this.handleFailure(plan.job, error);
        }
      }),
    );
  }

  /** Creates or updates the licence of `plan` in its own POST unless its count is right. */
  private async writeOne(plan: PlannedSync): Promise<void> {
    const client = await this.connections.clientFor(plan.job.accountId);
    if (plan.licence && plan.licence.count === plan.count) {
      await this.recordSaved(plan, plan.licence, 'licence.unchanged');
      return;
    }
    const [saved] = (await client.saveLicences([licenceInputOf(plan)])) as [HaloLicence];
    await this.recordSaved(plan, saved, plan.licence ? 'licence.updated' : 'licence.created');
  }

  /** Stores the licence HaloPSA saved for `plan` on its mapping, with audit and history. */
  private async recordSaved(
    plan: PlannedSync,
    saved: HaloLicence,
    event: 'licence.created' | 'licence.updated' | 'licence.unchanged',
  ): Promise<void> {
    const { job, mapping, count, licence } = plan;
    // The mapping may have been removed or pointed elsewhere while HaloPSA was called. The
    // licence just written then belongs to no mapping, so it is released instead of recorded.
    const recorded = await this.db.transaction(async (tx) => {
      const rows = await tx.query(
        `UPDATE halopsa_customer_mappings
            SET halo_licence_id = $3, synced_count = $4, synced_at = now(), sync_error = NULL
          WHERE account_id = $1 AND customer_id = $2 AND halo_client_id = $5 AND halo_item_id = $6
          RETURNING customer_id`,
        [job.accountId, job.customerId, saved.id, count, mapping.haloClientId, mapping.haloItemId],
      );
      if (rows.length === 0) {
        await this.enqueueReleaseInTransaction(tx, { ...job, licenceId: saved.id });
      }
      return rows.length > 0;
    });
    if (!recorded) return;
    if (event !== 'licence.unchanged') {
      await recordAudit(this.db, {
        accountId: job.accountId,
        actor: SYSTEM_ACTOR,
        action: event === 'licence.created' ? 'halopsa.licence.created' : 'halopsa.licence.updated',
        customerId: job.customerId,
        targetType: 'halopsa_licence',
        targetId: saved.id,
        before: licence ? { count: licence.count } : null,
        after: {
          endpoint: 'POST /api/SoftwareLicence',
          clientId: mapping.haloClientId,
          itemId: mapping.haloItemId,
          count,
          result: 'succeeded',
        },
      });
    }
    if (event !== 'licence.unchanged' || mapping.syncedCount !== count) {
      await recordEvent(this.db, {
        accountId: job.accountId,
        customerId: job.customerId,
        event,
        outcome: 'succeeded',
        message: `HaloPSA licence ${saved.id} for ${mapping.haloClientName} has count ${count}.`,
        detail: { licenceId: saved.id, count, previousCount: licence?.count ?? null },
      });
    }
    this.logger.info(
      { accountId: job.accountId, customerId: job.customerId, licenceId: saved.id, count, event },
      'synced licence count',
    );
  }

  /** Returns null or the error that handleFailure() throws for `error`. */
  private async failureOutcome(job: LicenceSyncJob, error: unknown): Promise<unknown> {
    return outcomeOf(() => this.handleFailure(job, error));
  }

  /**
   * Records a failed sync of `job` and throws what the queue needs: the deferral, or the error
   * so that the attempt is retried. Returns without a throw for a 400, which is not retried.
   */
  private async handleFailure(job: LicenceSyncJob, error: unknown): Promise<void> {
    // Waiting for a request slot or for the connection to be fixed is not a failed attempt.
    const deferral = deferralOf(error);
    if (deferral) throw deferral;
    await this.recordFailure(job, error);
    // HaloPSA's message for a 400 is in sync_error and the history. The same request would
    // fail the same way, so it is not retried. The next domain change or reconciliation runs
    // the sync again.
    if (error instanceof HaloPsaError && error.code === 'validation_failed') return;
    if (error instanceof HaloPsaError && AMBIGUOUS_CODES.includes(error.code)) {
      // The write may still land after this attempt gave up (HaloPSA's gateway works on a
      // request for up to about 60 s), and an older count landing last would stay wrong. A
      // check after that window (DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS) repairs it.
      await this.queue.enqueue(LICENCE_SYNC_QUEUE, job, {
        singletonKey: job.customerId,
        startAfterSeconds: this.options.writeSettleSeconds,
      });
    }
    throw error;
  }

  /**
   * A licence of the mapped client created from the mapped item, which an earlier run may have
   * created when its response was lost. Adopting it keeps one licence per customer.
   */
  private async findAdoptable(
    job: LicenceSyncJob,
    mapping: CustomerMapping,
  ): Promise<HaloLicence | null> {
    const client = await this.connections.clientFor(job.accountId);
    const licences = await client.listLicences({ clientId: mapping.haloClientId });
    return (
      licences.find((licence) => licence.item_id === mapping.haloItemId && !licence.deleted) ?? null
    );
  }

  private async recordFailure(job: LicenceSyncJob, error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    await this.db.query(
      `UPDATE halopsa_customer_mappings SET sync_error = $3 WHERE account_id = $1 AND customer_id = $2`,
      [job.accountId, job.customerId, message],
    );
    await recordEvent(this.db, {
      accountId: job.accountId,
      customerId: job.customerId,
      event: 'licence.failed',
      outcome: 'failed',
      message,
      detail: { halopsaError: error instanceof HaloPsaError ? error.code : 'unknown' },
    });
    if (
      error instanceof HaloPsaError &&
      ['invalid_credentials', 'token_rejected', 'permission_missing'].includes(error.code)
    ) {
      await this.connections.setStatus(job.accountId, 'needs_attention', error.message);
    }
  }
}

/** A licence sync job as the queue hands it over. */
export interface QueuedSync {
  id: string;
  data: LicenceSyncJob;
}

/** One customer's sync: its mapping, its billable count and its licence before the write. */
interface PlannedSync {
  job: LicenceSyncJob;
  mapping: CustomerMapping;
  count: number;
  /** The customer's licence in HaloPSA, or null when it has none yet. */
  licence: HaloLicence | null;
}

/** Runs `work` and returns null, or what it threw. */
async function outcomeOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
    return null;
  } catch (error) {
    return error;
  }
}

function licenceInputOf(plan: PlannedSync): HaloLicenceInput {
  if (plan.licence) return { id: plan.licence.id, count: plan.count };
  return {
    client_id: plan.mapping.haloClientId,
    item_id: plan.mapping.haloItemId,
    name: plan.mapping.haloItemName,
    count: plan.count,
  };
}

/**
 * Finds the row of `plan` among the licences one POST of `plans` saved: an update by its id, a
 * created licence by its client and item. Without item_id in the response a client with two
 * created licences in `plans` is ambiguous, so neither is matched.
 */
function savedRowOf(
  plan: PlannedSync,
  plans: PlannedSync[],
  saved: HaloLicence[],
): HaloLicence | undefined {
  if (plan.licence) {
    const id = plan.licence.id;
    return saved.find((row) => row.id === id);
  }
  const { haloClientId, haloItemId } = plan.mapping;
  const sameClient = saved.filter((row) => row.client_id === haloClientId);
  const withItem = sameClient.filter((row) => row.item_id === haloItemId);
  if (withItem.length === 1) return withItem[0];
  const createsOfClient = plans.filter(
    (other) => !other.licence && other.mapping.haloClientId === haloClientId,
  );
  const itemless = sameClient.filter((row) => row.item_id === undefined);
  return createsOfClient.length === 1 && itemless.length === 1 ? itemless[0] : undefined;
}
