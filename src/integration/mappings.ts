import type { Database, Queryable, Transaction } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import type { HaloPsaClient } from '../halopsa/index.ts';
import { toAppError } from './halopsa-errors.ts';

/** One platform customer account mapped to a HaloPSA client and the item billed for it. */
export interface CustomerMapping {
  customerId: string;
  customerName: string;
  haloClientId: number;
  haloClientName: string;
  haloItemId: number;
  haloItemName: string;
  licenceId: number | null;
  syncedCount: number | null;
  syncedAt: Date | null;
  syncError: string | null;
  billableDomains: number;
}

interface MappingRow {
  customer_id: string;
  customer_name: string;
  halo_client_id: number;
  halo_client_name: string;
  halo_item_id: number;
  halo_item_name: string;
  halo_licence_id: number | null;
  synced_count: number | null;
  synced_at: Date | null;
  sync_error: string | null;
  billable_domains: number;
}

const toMapping = (row: MappingRow): CustomerMapping => ({
  customerId: row.customer_id,
  customerName: row.customer_name,
  haloClientId: row.halo_client_id,
  haloClientName: row.halo_client_name,
  haloItemId: row.halo_item_id,
  haloItemName: row.halo_item_name,
  licenceId: row.halo_licence_id,
  syncedCount: row.synced_count,
  syncedAt: row.synced_at,
  syncError: row.sync_error,
  billableDomains: row.billable_domains,
});

const SELECT_MAPPING = `
  SELECT m.customer_id, c.name AS customer_name, m.halo_client_id, m.halo_client_name,
         m.halo_item_id, m.halo_item_name, m.halo_licence_id, m.synced_count, m.synced_at,
         m.sync_error,
         (SELECT count(*)::int FROM domains d
           WHERE d.customer_id = m.customer_id AND d.status = 'active') AS billable_domains
    FROM halopsa_customer_mappings m JOIN customers c ON c.id = m.customer_id`;

export async function listMappings(db: Queryable, accountId: string): Promise<CustomerMapping[]> {
  const rows = await db.query<MappingRow>(
    `${SELECT_MAPPING} WHERE m.account_id = $1 ORDER BY lower(c.name)`,
    [accountId],
  );
  return rows.map(toMapping);
}

export async function getMapping(
  db: Queryable,
  accountId: string,
  customerId: string,
): Promise<CustomerMapping | null> {
  const [row] = await db.query<MappingRow>(
    `${SELECT_MAPPING} WHERE m.account_id = $1 AND m.customer_id = $2`,
    [accountId, customerId],
  );
  return row ? toMapping(row) : null;
}

/** Called in the saving transaction for each licence that no mapping uses any more. */
export type LicenceReleasedListener = (
  tx: Transaction,
  released: { accountId: string; customerId: string; licenceId: number },
) => Promise<void>;

export interface MappingInput {
  customerId: string;
  haloClientId: number;
  haloItemId: number;
}

/**
 * Replace the account's mappings with `rows`, after checking each against the platform and
 * HaloPSA. Nothing is saved when any row is invalid. A mapping whose HaloPSA client or item
 * changes forgets its licence, so that the next sync creates one for the new pair.
 */
export async function saveMappings(
  db: Database,
  client: HaloPsaClient,
  accountId: string,
  rows: MappingInput[],
  onLicenceReleased: LicenceReleasedListener,
): Promise<CustomerMapping[]> {
  const seen = new Map<string, number>();
  rows.forEach((row, index) => {
    const earlier = seen.get(row.customerId);
    if (earlier !== undefined) {
      throw invalid(
        index,
        'customerId',
        `customer account ${row.customerId} is already mapped in row ${earlier + 1}; a customer account may appear in one row only`,
      );
    }
    seen.set(row.customerId, index);
  });

  // One HaloPSA licence per client and item: two customers on the same pair would share a
  // licence and overwrite each other's count.
  const pairs = new Map<string, number>();
  rows.forEach((row, index) => {
    const key = `${row.haloClientId}/${row.haloItemId}`;
    const earlier = pairs.get(key);
    if (earlier !== undefined) {
      throw invalid(
        index,
        'haloClientId',
        `row ${earlier + 1} already bills HaloPSA customer ${row.haloClientId} with item ${row.haloItemId}; map each customer account to its own HaloPSA customer, or choose another item`,
      );
    }
    pairs.set(key, index);
  });

  const customers = await db.query<{ id: string }>(
    'SELECT id FROM customers WHERE account_id = $1 AND id = ANY($2::uuid[])',
    [accountId, rows.map((row) => row.customerId)],
  );
  const known = new Set(customers.map((row) => row.id));
  rows.forEach((row, index) => {
    if (!known.has(row.customerId)) {
      throw invalid(
        index,
        'customerId',
        `customer account ${row.customerId} does not exist in this account`,
      );
    }
  });

  let haloClients, haloItems;
  try {
    [haloClients, haloItems] = await Promise.all([client.listClients(), client.listItems()]);
  } catch (error) {
    throw toAppError(error);
  }
  const clientsById = new Map(haloClients.map((haloClient) => [haloClient.id, haloClient]));
  const itemsById = new Map(haloItems.map((item) => [item.id, item]));
  rows.forEach((row, index) => {
    const haloClient = clientsById.get(row.haloClientId);
    if (!haloClient) {
      throw invalid(
        index,
        'haloClientId',
        `HaloPSA has no customer with id ${row.haloClientId}; press Resync and choose again`,
      );
    }
    if (haloClient.inactive) {
      throw invalid(
        index,
        'haloClientId',
        `HaloPSA customer "${haloClient.name}" is inactive; choose an active customer`,
      );
    }
    if (!itemsById.has(row.haloItemId)) {
      throw invalid(
        index,
        'haloItemId',
        `HaloPSA has no item with id ${row.haloItemId}; press Resync and choose again`,
      );
    }
  });

  await db.transaction(async (tx) => {
    // A licence that no mapping will use any more is set to 0 by a job, so that HaloPSA stops
    // billing for it: the mapping was removed, or now points at another client or item.
    const released = await tx.query<{ customer_id: string; halo_licence_id: number }>(
      `SELECT m.customer_id, m.halo_licence_id FROM halopsa_customer_mappings m
         LEFT JOIN unnest($2::uuid[], $3::int[], $4::int[]) AS kept(customer_id, client_id, item_id)
                ON kept.customer_id = m.customer_id
        WHERE m.account_id = $1 AND m.halo_licence_id IS NOT NULL
          AND (kept.customer_id IS NULL OR kept.client_id <> m.halo_client_id OR kept.item_id <> m.halo_item_id)
        FOR UPDATE OF m`,
      [
        accountId,
        rows.map((row) => row.customerId),
        rows.map((row) => row.haloClientId),
        rows.map((row) => row.haloItemId),
      ],
    );
    for (const licence of released) {
      await onLicenceReleased(tx, {
        accountId,
        customerId: licence.customer_id,
        licenceId: licence.halo_licence_id,
      });
    }
    await tx.query(
      `DELETE FROM halopsa_customer_mappings WHERE account_id = $1 AND NOT (customer_id = ANY($2::uuid[]))`,
      [accountId, rows.map((row) => row.customerId)],
    );
    for (const row of rows) {
      await tx.query(
        `INSERT INTO halopsa_customer_mappings (account_id, customer_id, halo_client_id, halo_client_name,
                                               halo_item_id, halo_item_name)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (customer_id) DO UPDATE
           SET halo_licence_id = CASE
                 WHEN halopsa_customer_mappings.halo_client_id = $3
                  AND halopsa_customer_mappings.halo_item_id = $5
                 THEN halopsa_customer_mappings.halo_licence_id END,
               synced_count = CASE
                 WHEN halopsa_customer_mappings.halo_client_id = $3
                  AND halopsa_customer_mappings.halo_item_id = $5
                 THEN halopsa_customer_mappings.synced_count END,
               halo_client_id = $3, halo_client_name = $4, halo_item_id = $5, halo_item_name = $6,
               updated_at = now()`,
        [
          accountId,
          row.customerId,
          row.haloClientId,
          clientsById.get(row.haloClientId)!.name,
          row.haloItemId,
          itemsById.get(row.haloItemId)!.name,
        ],
      );
    }
  });
  return listMappings(db, accountId);
}

function invalid(index: number, field: string, message: string): AppError {
  return new AppError('validation_failed', `Row ${index + 1}: ${message}.`, {
    field: `mappings.${index}.${field}`,
  });
}
