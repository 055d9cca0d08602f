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

/**
 * Check at start that the configured keys decrypt every stored HaloPSA client secret, so that a
 * wrong DMARCDESK_SECRET_KEY stops the start with a clear message instead of failing each job.
 */
export async function checkStoredSecrets(db: Database, secrets: SecretBox): Promise<void> {
  const rows = await db.query<{
    account_id: string;
    base_url: string;
    client_secret_encrypted: Uint8Array;
  }>('SELECT account_id, base_url, client_secret_encrypted FROM halopsa_connections');
  const unreadable = rows.filter((row) => {
    try {
      secrets.decrypt(
        Buffer.from(row.client_secret_encrypted),
        halopsaSecretContext(row.account_id, row.base_url),
      );
      return false;
    } catch {
      return true;
    }
  });
  if (unreadable.length > 0) {
    throw new Error(
      `The configured secret keys do not decrypt the stored HaloPSA client secret of ${unreadable.length} of ${rows.length} ` +
        `account(s) (first: ${unreadable[0]!.account_id}). Set DMARCDESK_SECRET_KEY to the key they were encrypted with, ` +
        'or list it in DMARCDESK_PREVIOUS_SECRET_KEYS.',
    );
  }
}
