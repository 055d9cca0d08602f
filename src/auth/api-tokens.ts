import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.ts';
import { notFound } from '../errors/app-error.ts';
import { ALL_PERMISSIONS, isPermission, type Permission } from './permissions.ts';

export interface ApiTokenIdentity {
  tokenId: string;
  accountId: string;
  permissions: Permission[];
}

export interface ApiTokenView {
  id: string;
  name: string;
  prefix: string;
  permissions: Permission[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
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
  permissions: readonly Permission[] = ALL_PERMISSIONS,
): Promise<{ id: string; token: string }> {
  const token = `${TOKEN_PREFIX}_${randomBytes(32).toString('base64url')}`;
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO api_tokens (account_id, name, token_hash, token_prefix, permissions)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [accountId, name, hashToken(token), token.slice(0, 10), [...new Set(permissions)].sort()],
  );
  return { id: row!.id, token };
}

/** Look up a presented API token; null when it is unknown or revoked. */
export async function verifyApiToken(
  db: Queryable,
  token: string,
): Promise<ApiTokenIdentity | null> {
  if (!token.startsWith(`${TOKEN_PREFIX}_`) || token.length > 200) return null;
  const [row] = await db.query<{ id: string; account_id: string; permissions: string[] }>(
    `UPDATE api_tokens SET last_used_at = now()
      WHERE token_hash = $1 AND revoked_at IS NULL
      RETURNING id, account_id, permissions`,
    [hashToken(token)],
  );
  if (!row) return null;
  return {
    tokenId: row.id,
    accountId: row.account_id,
    permissions: row.permissions.filter(isPermission),
  };
}

export async function listApiTokens(db: Queryable, accountId: string): Promise<ApiTokenView[]> {
  const rows = await db.query<{
    id: string;
    name: string;
    token_prefix: string;
    permissions: Permission[];
    created_at: Date;
    last_used_at: Date | null;
    revoked_at: Date | null;
  }>('SELECT * FROM api_tokens WHERE account_id = $1 ORDER BY created_at', [accountId]);
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    prefix: row.token_prefix,
    permissions: row.permissions,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  }));
}

export async function revokeApiToken(
  db: Queryable,
  accountId: string,
  tokenId: string,
): Promise<void> {
  const rows = await db.query(
    'UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE account_id = $1 AND id = $2 RETURNING id',
    [accountId, tokenId],
  );
  if (rows.length === 0) throw notFound('API token', tokenId);
}
