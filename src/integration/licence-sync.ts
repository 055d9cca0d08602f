import type { Logger } from 'pino';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Transaction } from '../db/database.ts';
import { HaloPsaError, type HaloLicence } from '../halopsa/index.ts';
import type { JobQueue } from '../jobs/queue.ts';
import { countBillableDomains } from '../platform/domains.ts';
import type { ConnectionService } from './connection.ts';
import { recordEvent } from './history.ts';
import { LICENCE_SYNC_QUEUE, type LicenceSyncJob } from './jobs.ts';
import { getMapping, type CustomerMapping } from './mappings.ts';

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

  /** The job handler: bring one customer's licence to its billable count. */
  async run(job: LicenceSyncJob): Promise<void> {
    const mapping = await getMapping(this.db, job.accountId, job.customerId);
    if (!mapping) return;

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

      await this.db.query(
        `UPDATE halopsa_customer_mappings
            SET halo_licence_id = $3, synced_count = $4, synced_at = now(), sync_error = NULL
          WHERE account_id = $1 AND customer_id = $2`,
        [job.accountId, job.customerId, saved.id, count],
      );
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
      await this.recordFailure(job, error);
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
