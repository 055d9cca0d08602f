import type { Queryable } from '../db/database.ts';
import { AppError, notFound } from '../errors/app-error.ts';

export interface Customer {
  id: string;
  accountId: string;
  name: string;
  createdAt: Date;
  domainCount: number;
  billableDomainCount: number;
}

interface CustomerRow {
  id: string;
  account_id: string;
  name: string;
  created_at: Date;
  domain_count: number;
  billable_domain_count: number;
}

function toCustomer(row: CustomerRow): Customer {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    createdAt: row.created_at,
    domainCount: row.domain_count,
    billableDomainCount: row.billable_domain_count,
  };
}

const SELECT_CUSTOMER = `
  SELECT c.id, c.account_id, c.name, c.created_at,
         (SELECT count(*)::int FROM domains d WHERE d.customer_id = c.id) AS domain_count,
         (SELECT count(*)::int FROM domains d
           WHERE d.customer_id = c.id AND d.status = 'active') AS billable_domain_count
    FROM customers c`;

export async function listCustomers(
  db: Queryable,
  accountId: string,
  options: { search?: string | undefined } = {},
): Promise<Customer[]> {
  const rows = await db.query<CustomerRow>(
    `${SELECT_CUSTOMER}
      WHERE c.account_id = $1 AND ($2::text IS NULL OR c.name ILIKE '%' || $2 || '%')
      ORDER BY lower(c.name)`,
    [accountId, options.search ?? null],
  );
  return rows.map(toCustomer);
}

export async function getCustomer(
  db: Queryable,
  accountId: string,
  customerId: string,
): Promise<Customer> {
  const [row] = await db.query<CustomerRow>(
    `${SELECT_CUSTOMER} WHERE c.account_id = $1 AND c.id = $2`,
    [accountId, customerId],
  );
  if (!row) throw notFound('customer account', customerId);
  return toCustomer(row);
}

export async function createCustomer(
  db: Queryable,
  accountId: string,
  name: string,
): Promise<Customer> {
  try {
    const [row] = await db.query<{ id: string }>(
      'INSERT INTO customers (account_id, name) VALUES ($1, $2) RETURNING id',
      [accountId, name],
    );
    return getCustomer(db, accountId, row!.id);
  } catch (error) {
    throw duplicateNameError(error, name) ?? error;
  }
}

export async function renameCustomer(
  db: Queryable,
  accountId: string,
  customerId: string,
  name: string,
): Promise<Customer> {
  try {
    const rows = await db.query(
      'UPDATE customers SET name = $3 WHERE account_id = $1 AND id = $2 RETURNING id',
      [accountId, customerId, name],
    );
    if (rows.length === 0) throw notFound('customer account', customerId);
    return getCustomer(db, accountId, customerId);
  } catch (error) {
    throw duplicateNameError(error, name) ?? error;
  }
}

export async function deleteCustomer(
  db: Queryable,
  accountId: string,
  customerId: string,
): Promise<void> {
  const rows = await db.query(
    'DELETE FROM customers WHERE account_id = $1 AND id = $2 RETURNING id',
    [accountId, customerId],
  );
  if (rows.length === 0) throw notFound('customer account', customerId);
}

function duplicateNameError(error: unknown, name: string): AppError | null {
  if ((error as { code?: string }).code !== '23505') return null;
  return new AppError('conflict', `A customer account named "${name}" already exists.`, {
    field: 'name',
    cause: error,
  });
}
