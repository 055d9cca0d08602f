import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.ts';
import type { UserRow } from './users.ts';

/**
 * The session cookie. The __Host- prefix makes browsers accept it only with Secure, Path=/
 * and no Domain, so no other host or path can set or shadow it.
 */
export const SESSION_COOKIE = '__Host-dmarcdesk_session';

/** Sessions end this long after sign-in, whatever the activity. */
export const SESSION_LIFETIME_SECONDS = 12 * 60 * 60;

function hashSessionToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface NewSession {
  token: string;
  csrfToken: string;
  expiresAt: Date;
}

/** Start a session for a user; the token goes in the cookie, only its hash is stored. */
export async function createSession(
  db: Queryable,
  user: { id: string; account_id: string },
): Promise<NewSession> {
  const token = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + SESSION_LIFETIME_SECONDS * 1000);
  await db.query(
    `INSERT INTO sessions (id_hash, user_id, account_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)`,
    [hashSessionToken(token), user.id, user.account_id, csrfToken, expiresAt],
  );
  return { token, csrfToken, expiresAt };
}

export interface ActiveSession {
  csrfToken: string;
  expiresAt: Date;
  user: UserRow;
}

/** Look up a session token; null when unknown, expired, or its user is disabled. */
export async function findSession(db: Queryable, token: string): Promise<ActiveSession | null> {
  if (token.length === 0 || token.length > 100) return null;
  const [row] = await db.query<UserRow & { csrf_token: string; expires_at: Date }>(
    `UPDATE sessions s SET last_seen_at = now()
       FROM users u
      WHERE s.id_hash = $1 AND u.id = s.user_id AND s.expires_at > now() AND u.disabled_at IS NULL
      RETURNING u.*, s.csrf_token, s.expires_at`,
    [hashSessionToken(token)],
  );
  if (!row) return null;
  const { csrf_token: csrfToken, expires_at: expiresAt, ...user } = row;
  return { csrfToken, expiresAt, user };
}

export async function deleteSession(db: Queryable, token: string): Promise<void> {
  await db.query('DELETE FROM sessions WHERE id_hash = $1', [hashSessionToken(token)]);
}

export async function deleteExpiredSessions(db: Queryable): Promise<number> {
  const rows = await db.query('DELETE FROM sessions WHERE expires_at <= now() RETURNING user_id');
  return rows.length;
}
