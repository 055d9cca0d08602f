import type { Database, Queryable, Transaction } from '../db/database.ts';
import { AppError, notFound } from '../errors/app-error.ts';
import { normaliseDomainName, toAsciiDomainName } from './domain-names.ts';

export const DOMAIN_STATUSES = ['active', 'pending', 'paused'] as const;
export type DomainStatus = (typeof DOMAIN_STATUSES)[number];

/** Only domains in this status count towards a customer's subscription quantity. */
export const BILLABLE_STATUS: DomainStatus = 'active';

export interface Domain {
  id: string;
  accountId: string;
  customerId: string;
  name: string;
  status: DomainStatus;
  billable: boolean;
  createdAt: Date;
  updatedAt: Date;
}

interface DomainRow {
  id: string;
  account_id: string;
  customer_id: string;
  name: string;
  status: DomainStatus;
  created_at: Date;
  updated_at: Date;
}

function toDomain(row: DomainRow): Domain {
  return {
    id: row.id,
    accountId: row.account_id,
    customerId: row.customer_id,
    name: row.name,
    status: row.status,
    billable: row.status === BILLABLE_STATUS,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Called inside the transaction of every change that may alter a customer's billable domain
 * count, so that what follows from it (a subscription update) is queued atomically with it.
 */
export type BillableDomainsChangedListener = (
  tx: Transaction,
  change: { accountId: string; customerId: string },
) => Promise<void>;

/**
 * Called inside the transaction that adds a domain, so that the reports stored for its name
 * before it was monitored are attached to it only if the add commits.
 */
export type DomainAddedListener = (
  tx: Transaction,
  added: { accountId: string; customerId: string; domainId: string; name: string },
) => Promise<void>;

/** Called inside the transaction that deletes a customer account, before its rows go. */
export type CustomerRemovingListener = (
  tx: Transaction,
  removing: { accountId: string; customerId: string },
) => Promise<void>;

export class DomainService {
  private readonly listeners: BillableDomainsChangedListener[] = [];
  private readonly removingListeners: CustomerRemovingListener[] = [];
  private readonly addedListeners: DomainAddedListener[] = [];

  constructor(private readonly db: Database) {}

  onBillableDomainsChanged(listener: BillableDomainsChangedListener): void {
    this.listeners.push(listener);
  }

  onDomainAdded(listener: DomainAddedListener): void {
    this.addedListeners.push(listener);
  }

  onCustomerRemoving(listener: CustomerRemovingListener): void {
    this.removingListeners.push(listener);
  }

  /** Delete a customer account with its domains and groups, telling listeners first. */
  async removeCustomer(accountId: string, customerId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const rows = await tx.query(
        'SELECT 1 FROM customers WHERE account_id = $1 AND id = $2 FOR UPDATE',
        [accountId, customerId],
      );
      if (rows.length === 0) throw notFound('customer account', customerId);
      for (const listener of this.removingListeners) await listener(tx, { accountId, customerId });
      await tx.query('DELETE FROM customers WHERE account_id = $1 AND id = $2', [
        accountId,
        customerId,
      ]);
    });
  }

  async list(
    accountId: string,
    filter: { customerId?: string | undefined } = {},
  ): Promise<Domain[]> {
    const rows = await this.db.query<DomainRow>(
      `SELECT * FROM domains
        WHERE account_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)
        ORDER BY name`,
      [accountId, filter.customerId ?? null],
    );
    return rows.map(toDomain);
  }

  async get(accountId: string, domainId: string): Promise<Domain> {
    return getDomain(this.db, accountId, domainId);
  }

  async add(
    accountId: string,
    customerId: string,
    input: { name: string; status?: DomainStatus | undefined },
  ): Promise<Domain> {
    const name = requireDomainName(input.name);
    return this.db.transaction(async (tx) => {
      const customers = await tx.query(
        'SELECT 1 FROM customers WHERE account_id = $1 AND id = $2',
        [accountId, customerId],
      );
      if (customers.length === 0) throw notFound('customer account', customerId);

      const existing = await tx.query<{ customer_name: string }>(
        `SELECT c.name AS customer_name FROM domains d JOIN customers c ON c.id = d.customer_id
          WHERE d.account_id = $1 AND d.name = $2`,
        [accountId, name],
      );
      if (existing[0]) {
        throw new AppError(
          'conflict',
          `The domain ${name} is already monitored for customer "${existing[0].customer_name}".`,
          { field: 'name' },
        );
      }

      // ON CONFLICT covers a concurrent insert of the same name that the check above missed.
      const [row] = await tx.query<DomainRow>(
        `INSERT INTO domains (account_id, customer_id, name, status) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account_id, name) DO NOTHING
         RETURNING *`,
        [accountId, customerId, name, input.status ?? BILLABLE_STATUS],
      );
      if (!row) {
        throw new AppError('conflict', `The domain ${name} is already monitored in this account.`, {
          field: 'name',
        });
      }
      const added = { accountId, customerId, domainId: row.id, name: row.name };
      for (const listener of this.addedListeners) await listener(tx, added);
      await this.notify(tx, accountId, customerId);
      return toDomain(row);
    });
  }

  async setStatus(accountId: string, domainId: string, status: DomainStatus): Promise<Domain> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query<DomainRow>(
        `UPDATE domains SET status = $3, updated_at = now()
          WHERE account_id = $1 AND id = $2 RETURNING *`,
        [accountId, domainId, status],
      );
      if (!row) throw notFound('domain', domainId);
      await this.notify(tx, accountId, row.customer_id);
      return toDomain(row);
    });
  }

  async remove(accountId: string, domainId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [row] = await tx.query<{ customer_id: string }>(
        'DELETE FROM domains WHERE account_id = $1 AND id = $2 RETURNING customer_id',
        [accountId, domainId],
      );
      if (!row) throw notFound('domain', domainId);
      await this.notify(tx, accountId, row.customer_id);
    });
  }

  private async notify(tx: Transaction, accountId: string, customerId: string): Promise<void> {
    for (const listener of this.listeners) await listener(tx, { accountId, customerId });
  }
}

export async function getDomain(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<Domain> {
  const [row] = await db.query<DomainRow>(
    'SELECT * FROM domains WHERE account_id = $1 AND id = $2',
    [accountId, domainId],
  );
  if (!row) throw notFound('domain', domainId);
  return toDomain(row);
}

/** Find the monitored domain of an account by name; null when no customer monitors it. */
export async function findDomainByName(
  db: Queryable,
  accountId: string,
  name: string,
): Promise<Domain | null> {
  const [row] = await db.query<DomainRow>(
    'SELECT * FROM domains WHERE account_id = $1 AND name = $2',
    [accountId, toAsciiDomainName(name)],
  );
  return row ? toDomain(row) : null;
}

export async function countBillableDomains(
  db: Queryable,
  accountId: string,
  customerId: string,
): Promise<number> {
  const [row] = await db.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM domains
      WHERE account_id = $1 AND customer_id = $2 AND status = $3`,
    [accountId, customerId, BILLABLE_STATUS],
  );
  return row!.count;
}

function requireDomainName(input: string): string {
  const result = normaliseDomainName(input);
  if ('problem' in result) {
    throw new AppError('validation_failed', `Field "name": ${result.problem}.`, { field: 'name' });
  }
  return result.name;
}
