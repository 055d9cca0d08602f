import type { Database } from '../db/database.ts';
import { halopsaSecretContext, type SecretBox } from './secret-box.ts';

/**
 * Re-encrypt every stored HaloPSA client secret that an older key sealed with the current key.
 * Each row is rewritten in its own transaction, only if it has not changed meanwhile.
 */
export async function reencryptSecrets(
  db: Database,
  secrets: SecretBox,
): Promise<{ checked: number; reencrypted: number }> {
  const rows = await db.query<{
    account_id: string;
    base_url: string;
    client_secret_encrypted: Uint8Array;
  }>('SELECT account_id, base_url, client_secret_encrypted FROM halopsa_connections');
  let reencrypted = 0;
  for (const row of rows) {
    const sealed = Buffer.from(row.client_secret_encrypted);
    if (!secrets.isSealedWithOldKey(sealed)) continue;
    const context = halopsaSecretContext(row.account_id, row.base_url);
    const resealed = secrets.encrypt(secrets.decrypt(sealed, context), context);
    const updated = await db.query(
      `UPDATE halopsa_connections SET client_secret_encrypted = $3
        WHERE account_id = $1 AND client_secret_encrypted = $2 RETURNING account_id`,
      [row.account_id, sealed, resealed],
    );
    reencrypted += updated.length;
  }
  return { checked: rows.length, reencrypted };
}
