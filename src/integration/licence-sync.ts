import type { Logger } from 'pino';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Transaction } from '../db/database.ts';
import { HaloPsaError, type HaloLicence } from '../halopsa/index.ts';
import type { JobQueue } from '../jobs/queue.ts';
import { countBillableDomains } from '../platform/domains.ts';
import type { ConnectionService } from './connection.ts';
import { recordEvent } from './history.ts';
import { deferralOf } from './rate-budget.ts';
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

      let saved: HaloLicence;
      let event: 'licence.created' | 'licence.updated' | 'licence.unchanged';
      if (!licence) {
        [saved] = (await client.saveLicences([
          {
            client_id: mapping.haloClientId,
            item_id: mapping.haloItemId,
            name: mapping.haloItemName,
            count,
          },
        ])) as [HaloLicence];
        event = 'licence.created';
      } else if (licence.count !== count) {
        [saved] = (await client.saveLicences([{ id: licence.id, count }])) as [HaloLicence];
        event = 'licence.updated';
      } else {
        saved = licence;
        event = 'licence.unchanged';
      }

      // The mapping may have been removed or pointed elsewhere while HaloPSA was called; then
      // the licence just written belongs to no mapping and is released instead of recorded.
      const recorded = await this.db.transaction(async (tx) => {
        const rows = await tx.query(
          `UPDATE halopsa_customer_mappings
              SET halo_licence_id = $3, synced_count = $4, synced_at = now(), sync_error = NULL
            WHERE account_id = $1 AND customer_id = $2 AND halo_client_id = $5 AND halo_item_id = $6
            RETURNING customer_id`,
          [
            job.accountId,
            job.customerId,
            saved.id,
            count,
            mapping.haloClientId,
            mapping.haloItemId,
          ],
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
          action:
            event === 'licence.created' ? 'halopsa.licence.created' : 'halopsa.licence.updated',
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
      await this.connections.setStatus(job.accountId, 'healthy', null);
      this.logger.info(
        { accountId: job.accountId, customerId: job.customerId, licenceId: saved.id, count, event },
        'synced licence count',
      );
    } catch (error) {
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
