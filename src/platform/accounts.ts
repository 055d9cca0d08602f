import type { Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';

export interface MsspAccount {
  id: string;
  name: string;
  halopsaIntegrationEnabled: boolean;
  createdAt: Date;
}

interface AccountRow {
  id: string;
  name: string;
  halopsa_integration_enabled: boolean;
  created_at: Date;
}

function toAccount(row: AccountRow): MsspAccount {
  return {
    id: row.id,
    name: row.name,
    halopsaIntegrationEnabled: row.halopsa_integration_enabled,
    createdAt: row.created_at,
  };
}

export async function createAccount(
  db: Queryable,
  input: { name: string; halopsaIntegrationEnabled?: boolean },
): Promise<MsspAccount> {
  const [row] = await db.query<AccountRow>(
    `INSERT INTO mssp_accounts (name, halopsa_integration_enabled) VALUES ($1, $2) RETURNING *`,
    [input.name, input.halopsaIntegrationEnabled ?? false],
  );
  return toAccount(row!);
}

export async function getAccount(db: Queryable, accountId: string): Promise<MsspAccount> {
  const [row] = await db.query<AccountRow>('SELECT * FROM mssp_accounts WHERE id = $1', [
    accountId,
  ]);
  if (!row) throw new AppError('not_found', `No MSSP account with id ${accountId} exists.`);
  return toAccount(row);
}

export async function listAccounts(db: Queryable): Promise<MsspAccount[]> {
  const rows = await db.query<AccountRow>('SELECT * FROM mssp_accounts ORDER BY created_at');
  return rows.map(toAccount);
}

export async function updateAccount(
  db: Queryable,
  accountId: string,
  changes: { name?: string | undefined; halopsaIntegrationEnabled?: boolean | undefined },
): Promise<MsspAccount> {
  const [row] = await db.query<AccountRow>(
    `UPDATE mssp_accounts
        SET name = COALESCE($2, name),
            halopsa_integration_enabled = COALESCE($3, halopsa_integration_enabled)
      WHERE id = $1
      RETURNING *`,
    [accountId, changes.name ?? null, changes.halopsaIntegrationEnabled ?? null],
  );
  if (!row) throw new AppError('not_found', `No MSSP account with id ${accountId} exists.`);
  return toAccount(row);
}
