import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.ts';

export interface ApiTokenIdentity {
  tokenId: string;
  accountId: string;
}

const TOKEN_PREFIX = 'ddk';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Create an API token for an account. The token is returned once; only its SHA-256 hash is
 * stored, which is enough because the token carries 256 random bits.
 */
export async function createApiToken(
  db: Queryable,
  accountId: string,
  name: string,
): Promise<{ id: string; token: string }> {
  const token = `${TOKEN_PREFIX}_${randomBytes(32).toString('base64url')}`;
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO api_tokens (account_id, name, token_hash, token_prefix)
     VALUES ($1, $2, $3, $4) RETURNING id`,
    [accountId, name, hashToken(token), token.slice(0, 10)],
  );
  return { id: row!.id, token };
}

/** Look up a presented API token; null when it is unknown or revoked. */
export async function verifyApiToken(
  db: Queryable,
  token: string,
): Promise<ApiTokenIdentity | null> {
  if (!token.startsWith(`${TOKEN_PREFIX}_`) || token.length > 200) return null;
  const [row] = await db.query<{ id: string; account_id: string }>(
    `UPDATE api_tokens SET last_used_at = now()
      WHERE token_hash = $1 AND revoked_at IS NULL
      RETURNING id, account_id`,
    [hashToken(token)],
  );
  return row ? { tokenId: row.id, accountId: row.account_id } : null;
}
