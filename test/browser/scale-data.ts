// An account of the size the wizard must handle: thousands of customer accounts, each with
// one or two domains, named after the emulator's HaloPSA customers so that Add All Customers
// can match most of them. Shared by the scale test and the UI benchmark.
import assert from 'node:assert/strict';
import type { RunningEmulator } from '../../emulator/halopsa/server.ts';
import type { App } from '../../src/app.ts';
import { emulatorRecords } from './support.ts';

export interface ScaleAccount {
  customerIds: string[];
  customerNames: string[];
  /** Customers named exactly like one active HaloPSA customer. */
  matchable: number;
}

/**
 * Insert `count` customer accounts and their domains straight into the database, which takes
 * well under a second where the API would take a request per row. Every customer gets the
 * domain `c<n>.scale.example`, and every second one also `mail.c<n>.scale.example`.
 */
export async function seedScaleAccount(
  app: App,
  accountId: string,
  emulator: RunningEmulator,
  count: number,
): Promise<ScaleAccount> {
  const clients = (await emulatorRecords(emulator, 'Client')).filter(
    (client) => !client.inactive,
  ) as { id: number; name: string }[];
  const seen = new Map<string, number>();
  for (const client of clients) {
    const key = client.name.toLowerCase();
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  // Customer names must be unique per account; a HaloPSA name used twice matches nothing.
  const unique = clients.filter((client) => seen.get(client.name.toLowerCase()) === 1);
  const names = Array.from(
    { length: count },
    (_, index) => unique[index]?.name ?? `Scale Customer ${index + 1}`,
  );

  const customers = await app.db.query<{ id: string; name: string }>(
    `INSERT INTO customers (account_id, name) SELECT $1, unnest($2::text[]) RETURNING id, name`,
    [accountId, names],
  );
  assert.equal(customers.length, count);
  const byName = new Map(customers.map((customer) => [customer.name, customer.id]));
  const ids = names.map((name) => byName.get(name)!);

  const domainCustomers: string[] = [];
  const domainNames: string[] = [];
  ids.forEach((id, index) => {
    domainCustomers.push(id);
    domainNames.push(`c${index + 1}.scale.example`);
    if (index % 2 === 0) {
      domainCustomers.push(id);
      domainNames.push(`mail.c${index + 1}.scale.example`);
    }
  });
  await app.db.query(
    `INSERT INTO domains (account_id, customer_id, name)
     SELECT $1, unnest($2::uuid[]), unnest($3::text[])`,
    [accountId, domainCustomers, domainNames],
  );
  return {
    customerIds: ids,
    customerNames: names,
    matchable: Math.min(unique.length, count),
  };
}

/** Format a number as the web app shows counts, with thousands separators. */
export const groupDigits = (value: number) => new Intl.NumberFormat('en-GB').format(value);
