import { isIP } from 'node:net';
import type { Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';

/**
 * Encryption of secrets at rest, implemented by the service's SecretBox. src/auth takes it as a
 * parameter because it may not import src/integration, where SecretBox lives.
 */
export interface SecretSealer {
  encrypt(plaintext: string, associatedData: string): Buffer;
  decrypt(sealed: Buffer, associatedData: string): string;
  isSealedWithOldKey(sealed: Buffer): boolean;
}

/** Return the associated data of an OpenID Connect client secret, which binds it to its account and issuer. */
export function oidcSecretContext(accountId: string, issuer: string): string {
  return `dmarcdesk/oidc-client-secret/v1/${accountId}/${issuer}`;
}

/** A row of oidc_providers. */
export interface OidcProviderRow {
  account_id: string;
  issuer: string;
  client_id: string;
  client_secret_encrypted: Uint8Array;
  allowed_domains: string[];
  provision_users: boolean;
  provision_role_id: string;
  provision_role_set_by_owner: boolean;
  created_at: Date;
  updated_at: Date;
}

/** An identity provider configuration as the API returns it: everything but the secret. */
export interface OidcProviderView {
  issuer: string;
  clientId: string;
  allowedDomains: string[];
  provisionUsers: boolean;
  provisionRoleId: string;
  /** The redirect URI to register at the provider. */
  redirectUri: string;
  /** The address that starts a sign-in for this account. */
  signInUrl: string;
  createdAt: Date;
  updatedAt: Date;
}

/** The path of the callback, under the public URL. */
export const OIDC_CALLBACK_PATH = '/api/v1/auth/oidc/callback';

export function toOidcProviderView(row: OidcProviderRow, publicUrl: string): OidcProviderView {
  return {
    issuer: row.issuer,
    clientId: row.client_id,
    allowedDomains: row.allowed_domains,
    provisionUsers: row.provision_users,
    provisionRoleId: row.provision_role_id,
    redirectUri: `${publicUrl}${OIDC_CALLBACK_PATH}`,
    signInUrl: `${publicUrl}/api/v1/auth/oidc/${row.account_id}/start`,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function findOidcProvider(
  db: Queryable,
  accountId: string,
): Promise<OidcProviderRow | null> {
  const [row] = await db.query<OidcProviderRow>(
    'SELECT * FROM oidc_providers WHERE account_id = $1',
    [accountId],
  );
  return row ?? null;
}

/** Insert or replace the account's provider configuration. `sealedSecret` is already encrypted. */
export async function upsertOidcProvider(
  db: Queryable,
  accountId: string,
  input: {
    issuer: string;
    clientId: string;
    sealedSecret: Buffer;
    allowedDomains: string[];
    provisionUsers: boolean;
    provisionRoleId: string;
    provisionRoleSetByOwner: boolean;
  },
): Promise<OidcProviderRow> {
  const [row] = await db.query<OidcProviderRow>(
    `INSERT INTO oidc_providers (account_id, issuer, client_id, client_secret_encrypted,
            allowed_domains, provision_users, provision_role_id, provision_role_set_by_owner)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (account_id) DO UPDATE SET
            issuer = EXCLUDED.issuer,
            client_id = EXCLUDED.client_id,
            client_secret_encrypted = EXCLUDED.client_secret_encrypted,
            allowed_domains = EXCLUDED.allowed_domains,
            provision_users = EXCLUDED.provision_users,
            provision_role_id = EXCLUDED.provision_role_id,
            provision_role_set_by_owner = EXCLUDED.provision_role_set_by_owner,
            updated_at = now()
     RETURNING *`,
    [
      accountId,
      input.issuer,
      input.clientId,
      input.sealedSecret,
      input.allowedDomains,
      input.provisionUsers,
      input.provisionRoleId,
      input.provisionRoleSetByOwner,
    ],
  );
  return row!;
}

/** Delete the account's provider configuration and the sign-ins still waiting for it. */
export async function deleteOidcProvider(db: Queryable, accountId: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM oidc_providers WHERE account_id = $1 RETURNING 1', [
    accountId,
  ]);
  await db.query('DELETE FROM oidc_sign_in_attempts WHERE account_id = $1', [accountId]);
  return rows.length > 0;
}

/**
 * Decrypt the stored client secret. A secret sealed with a previous key is sealed again with
 * the current one, so that secrets in use move to the new key after a rotation.
 * NOTE: `dmarcdesk secrets reencrypt` re-encrypts only HaloPSA secrets, so the secret of an
 * account that signs in with no one between rotations still needs the previous key.
 */
export async function readClientSecret(
  db: Queryable,
  secrets: SecretSealer,
  row: OidcProviderRow,
): Promise<string> {
  const sealed = Buffer.from(row.client_secret_encrypted);
  const context = oidcSecretContext(row.account_id, row.issuer);
  let secret: string;
  try {
    secret = secrets.decrypt(sealed, context);
  } catch (error) {
    throw new AppError(
      'internal',
      'The stored OpenID Connect client secret of this account could not be decrypted. Set the key it was encrypted with in DMARCDESK_SECRET_KEY or DMARCDESK_PREVIOUS_SECRET_KEYS, or save the provider configuration again with its client secret.',
      { cause: error },
    );
  }
  if (secrets.isSealedWithOldKey(sealed)) {
    await db.query(
      `UPDATE oidc_providers SET client_secret_encrypted = $3
        WHERE account_id = $1 AND client_secret_encrypted = $2`,
      [row.account_id, sealed, secrets.encrypt(secret, context)],
    );
  }
  return secret;
}

/**
 * Parse an issuer URL typed by an administrator and apply the outbound policy. The URL must use
 * https, a host name rather than an IP address, no local name, and port 443 or 1024 and above.
 * It may hold no credentials, query or fragment (OpenID Connect Discovery 1.0 forbids the last
 * two in an issuer). A host:port listed in DMARCDESK_OIDC_ALLOWED_HOSTS is exempt from the
 * first four rules, for an on-premises provider or a test provider on 127.0.0.1.
 * NOTE: the addresses a name resolves to are checked at every connection only by the
 * dispatcher the caller passes in; src/app.ts passes the guarded one of src/integration.
 */
export function checkIssuerUrl(input: string, allowedHosts: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw invalidIssuer(
      `"${input}" is not a URL. Use the issuer URL, such as https://accounts.google.com.`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidIssuer(`The issuer URL must start with https:// (got ${url.protocol}//).`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw invalidIssuer(
      'The issuer URL must not contain a user name, password, query or fragment. Use the issuer exactly as the provider documents it.',
    );
  }
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const hostPort = `${url.hostname}:${port}`.toLowerCase();
  if (allowedHosts.includes(hostPort)) return url;

  const allowHint = `An administrator of this server can allow an on-premises provider by adding ${hostPort} to DMARCDESK_OIDC_ALLOWED_HOSTS.`;
  if (url.protocol !== 'https:') {
    throw invalidIssuer(`The issuer URL must start with https:// (got http://). ${allowHint}`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (isIP(host)) {
    throw invalidIssuer(
      `The issuer URL points at an IP address (${url.hostname}). Use the provider's host name. ${allowHint}`,
    );
  }
  if (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) {
    throw invalidIssuer(
      `The issuer URL points at a local name (${url.hostname}). Use the provider's full host name. ${allowHint}`,
    );
  }
  if (port !== '443' && Number(port) < 1024) {
    throw invalidIssuer(
      `The issuer URL uses port ${port}, but only 443 and ports from 1024 up are accepted. ${allowHint}`,
    );
  }
  return url;
}

/** Tell whether the issuer may be called over plain http, which only a listed host:port may. */
export function isInsecureIssuerAllowed(issuer: URL, allowedHosts: readonly string[]): boolean {
  const port = issuer.port || '80';
  return (
    issuer.protocol === 'http:' && allowedHosts.includes(`${issuer.hostname}:${port}`.toLowerCase())
  );
}

function invalidIssuer(message: string): AppError {
  return new AppError('validation_failed', message, { field: 'issuer' });
}
