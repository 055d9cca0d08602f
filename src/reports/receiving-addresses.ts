import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.ts';

/**
 * Receiving addresses have the form `<localPart>+<token>@<domain>`, such as
 * reports+k3v9q2m7x4ta@dmarc.example.net. The domain and local part are configured once, and
 * the token is stored per MSSP account. So the rua and ruf addresses in customers' DMARC records
 * name the account a report belongs to, without any other set-up.
 */
export interface ReceivingAddressFormat {
  localPart: string;
  domain: string;
}

const TOKEN_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';
const TOKEN_LENGTH = 12;

/** Generate a token of lower-case letters and digits, since some mailers lower-case addresses. */
function generateToken(): string {
  const bytes = randomBytes(TOKEN_LENGTH);
  return [...bytes].map((byte) => TOKEN_ALPHABET[byte % TOKEN_ALPHABET.length]).join('');
}

/** Returns the account's receiving token, creating one on first use. */
export async function getReceivingToken(db: Queryable, accountId: string): Promise<string> {
  await db.query(
    `INSERT INTO report_receiving_tokens (account_id, token) VALUES ($1, $2)
     ON CONFLICT (account_id) DO NOTHING`,
    [accountId, generateToken()],
  );
  const [row] = await db.query<{ token: string }>(
    'SELECT token FROM report_receiving_tokens WHERE account_id = $1',
    [accountId],
  );
  return row!.token;
}

/** Replaces the account's token, so that mail to the old address is rejected from now on. */
export async function rotateReceivingToken(db: Queryable, accountId: string): Promise<string> {
  const token = generateToken();
  await db.query(
    `INSERT INTO report_receiving_tokens (account_id, token) VALUES ($1, $2)
     ON CONFLICT (account_id) DO UPDATE SET token = $2, created_at = now()`,
    [accountId, token],
  );
  return token;
}

/** Returns the account whose token this is, or null. */
export async function findAccountByToken(db: Queryable, token: string): Promise<string | null> {
  const [row] = await db.query<{ account_id: string }>(
    'SELECT account_id FROM report_receiving_tokens WHERE token = $1',
    [token.toLowerCase()],
  );
  return row?.account_id ?? null;
}

export function formatReceivingAddress(token: string, format: ReceivingAddressFormat): string {
  return `${format.localPart}+${token}@${format.domain}`;
}

/**
 * Returns the token of a receiving address, or null when the address is not one. The local
 * part and domain are compared without regard to case.
 */
export function tokenOfAddress(address: string, format: ReceivingAddressFormat): string | null {
  const match = /^<?([^@<>\s]+)@([^@<>\s]+?)\.?>?$/.exec(address.trim());
  if (!match) return null;
  const [, local = '', domain = ''] = match;
  if (domain.toLowerCase() !== format.domain.toLowerCase()) return null;
  const prefix = `${format.localPart.toLowerCase()}+`;
  const lowerLocal = local.toLowerCase();
  if (!lowerLocal.startsWith(prefix)) return null;
  const token = lowerLocal.slice(prefix.length);
  return /^[a-z0-9]{8,32}$/.test(token) ? token : null;
}
