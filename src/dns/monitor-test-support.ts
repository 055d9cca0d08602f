// Shared setup for the DNS monitor tests: a migrated database on either engine, an account
// with a customer, domains added through the platform service, and a clock the test moves.
import pino from 'pino';

import type { TestDatabase } from '../../test/support/databases.ts';
import { openTestDatabase } from '../../test/support/databases.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createAccount } from '../platform/accounts.ts';
import { createCustomer } from '../platform/customers.ts';
import { DomainService } from '../platform/domains.ts';

export const silentLogger = pino({ level: 'silent' });

export interface MonitorTestDatabase {
  db: Database;
  accountId: string;
  customerId: string;
  domains: DomainService;
  close(): Promise<void>;
}

/** Open and migrate a database of `engine` with one account and one customer in it. */
export async function openMonitorDatabase(
  engine: 'pglite' | 'postgres',
): Promise<MonitorTestDatabase> {
  const database: TestDatabase = await openTestDatabase(engine);
  const db = await openDatabase({
    databaseUrl: database.databaseUrl,
    dataDir: '',
    logger: silentLogger,
    inMemory: true,
  });
  await migrate(db, silentLogger);
  const account = await createAccount(db, { name: 'Monitor MSP' });
  const customer = await createCustomer(db, account.id, 'Monitor Customer');
  return {
    db,
    accountId: account.id,
    customerId: customer.id,
    domains: new DomainService(db),
    async close() {
      await db.close();
      await database.drop();
    },
  };
}

/** A clock that moves only when the test moves it. */
export class TestClock {
  private time: number;

  constructor(start = '2026-12-04T12:00:00.000Z') {
    this.time = Date.parse(start);
  }

  readonly now = (): Date => new Date(this.time);

  advanceSeconds(seconds: number): void {
    this.time += seconds * 1000;
  }
}
