import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import type { Dispatcher } from 'undici';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { describeProviderError, discoverProvider } from './oidc-http.ts';
import {
  checkIssuerUrl,
  findOidcProvider,
  isInsecureIssuerAllowed,
  OIDC_CALLBACK_PATH,
  readClientSecret,
  type OidcProviderRow,
  type SecretSealer,
} from './oidc-providers.ts';
import { BUILT_IN_ROLES } from './permissions.ts';
import { getRole, type Role } from './roles.ts';
import { createSession, type NewSession } from './sessions.ts';
import { createUser, type UserRow } from './users.ts';

/**
 * The cookie that ties the provider's redirect to the browser that started the sign-in. It is
 * SameSite=Lax, unlike the session cookie, because the provider's redirect back is a cross-site
 * navigation, on which browsers send Lax cookies but not Strict ones.
 */
export const OIDC_ATTEMPT_COOKIE = '__Host-dmarcdesk_oidc';

/** A started sign-in must come back within this time. */
export const OIDC_ATTEMPT_LIFETIME_SECONDS = 10 * 60;

const SCOPE = 'openid email profile';

/** Permissions of the Viewer role. Any users.manage holder may give new users a role within them. */
const VIEWER_PERMISSIONS = new Set(BUILT_IN_ROLES.viewer.permissions);

/** Tell whether a role grants anything the Viewer role does not. */
export function exceedsViewer(role: Role): boolean {
  return role.permissions.some((permission) => !VIEWER_PERMISSIONS.has(permission));
}

/** The person as the provider describes them, after openid-client checked the ID token. */
export interface ProviderIdentity {
  issuer: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
}

export interface OidcSignInOptions {
  db: Database;
  secrets: SecretSealer;
  /** The dispatcher of every call to an identity provider, which decides which addresses are reachable. */
  dispatcher: Dispatcher;
  /** host:port pairs that may be called over http or on a private address (DMARCDESK_OIDC_ALLOWED_HOSTS). */
  allowedHosts: readonly string[];
  /** The service's public base URL, which the redirect URI is built from. */
  publicUrl: string;
}

/** A users row with the provider identity columns that sign-in reads. */
type LinkableUserRow = UserRow & { oidc_issuer: string | null; oidc_subject: string | null };

interface AttemptRow {
  account_id: string;
  issuer: string;
  state: string;
  nonce: string;
  code_verifier: string;
  live: boolean;
}

function hashAttemptToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function failed(message: string, cause?: unknown): AppError {
  return new AppError('unauthenticated', message, cause === undefined ? {} : { cause });
}

function attemptProblem(message: string): AppError {
  return new AppError('validation_failed', message);
}

/**
 * OpenID Connect sign-in with the authorization code flow and PKCE (S256). `start` stores the
 * state, nonce and code verifier server-side under a random id that the browser's cookie
 * carries. `finish` uses that row once, redeems the code, and matches the person to a user of
 * the account that started the sign-in.
 */
export class OidcSignInService {
  constructor(private readonly options: OidcSignInOptions) {}

  /** The redirect URI that every provider configuration must register. */
  get redirectUri(): string {
    return `${this.options.publicUrl}${OIDC_CALLBACK_PATH}`;
  }

  /**
   * Check the issuer URL against the outbound policy and run discovery. Without
   * `clientSecret` the configuration can only build authorization URLs.
   */
  async configure(
    issuer: string,
    clientId: string,
    clientSecret?: string,
  ): Promise<client.Configuration> {
    const url = checkIssuerUrl(issuer, this.options.allowedHosts);
    return discoverProvider({
      issuer: url,
      clientId,
      ...(clientSecret === undefined ? {} : { clientSecret }),
      dispatcher: this.options.dispatcher,
      allowInsecure: isInsecureIssuerAllowed(url, this.options.allowedHosts),
    });
  }

  /** Start a sign-in for an account: returns the provider URL and the id for the cookie. */
  async start(accountId: string): Promise<{ authorizationUrl: URL; attemptToken: string }> {
    const { db } = this.options;
    const provider = await findOidcProvider(db, accountId);
    if (!provider) {
      throw new AppError(
        'not_found',
        `Account ${accountId} has no OpenID Connect sign-in set up; sign in with a password, or ask an administrator to set up the identity provider.`,
      );
    }

    let configuration: client.Configuration;
    try {
      configuration = await this.configure(provider.issuer, provider.client_id);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError(
        'internal',
        `The identity provider ${provider.issuer} could not be reached: ${describeProviderError(error)}. Try again later, or ask an administrator to check the OpenID Connect settings.`,
        { cause: error },
      );
    }

    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const attemptToken = randomBytes(32).toString('base64url');
    // NOTE: starts are not rate limited. Each one stores a row until it expires, and expired
    // rows are removed here, so the table contains at most 10 minutes' worth of starts.
    await db.query('DELETE FROM oidc_sign_in_attempts WHERE expires_at <= now()');
    await db.query(
      `INSERT INTO oidc_sign_in_attempts (id_hash, account_id, issuer, state, nonce, code_verifier, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))`,
      [
        hashAttemptToken(attemptToken),
        accountId,
        provider.issuer,
        state,
        nonce,
        codeVerifier,
        OIDC_ATTEMPT_LIFETIME_SECONDS,
      ],
    );

    const authorizationUrl = client.buildAuthorizationUrl(configuration, {
      redirect_uri: this.redirectUri,
      response_type: 'code',
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { authorizationUrl, attemptToken };
  }

  /**
   * Finish a sign-in from the provider's redirect, whose query string is `query`. Returns a new
   * session for the matched user. Every failure is an AppError whose message tells the user
   * what to do next.
   */
  async finish(
    attemptToken: string | undefined,
    query: string,
  ): Promise<{ session: NewSession; user: UserRow }> {
    const { db } = this.options;
    if (!attemptToken || attemptToken.length > 100) {
      throw attemptProblem(
        'No sign-in was started in this browser, or its cookie was not sent. Start the sign-in again.',
      );
    }
    // Deleting the row before anything else makes every attempt single use, whatever follows.
    const [attempt] = await db.query<AttemptRow>(
      `DELETE FROM oidc_sign_in_attempts WHERE id_hash = $1
       RETURNING account_id, issuer, state, nonce, code_verifier, expires_at > now() AS live`,
      [hashAttemptToken(attemptToken)],
    );
    if (!attempt) {
      throw attemptProblem('This sign-in is unknown or was already used. Start the sign-in again.');
    }
    if (!attempt.live) {
      throw attemptProblem(
        `This sign-in expired: it must be finished within ${OIDC_ATTEMPT_LIFETIME_SECONDS / 60} minutes of starting it. Start the sign-in again.`,
      );
    }

    const parameters = new URLSearchParams(query);
    const returnedState = parameters.get('state') ?? '';
    if (!sameText(returnedState, attempt.state)) {
      throw attemptProblem(
        'The state parameter does not match the sign-in started in this browser. Start the sign-in again.',
      );
    }
    const providerError = parameters.get('error');
    if (providerError !== null) {
      const description = parameters.get('error_description');
      throw failed(
        `The identity provider returned the error ${providerError.slice(0, 100)}${description ? ` (${description.slice(0, 200)})` : ''}. Start the sign-in again, or ask an administrator to check the OpenID Connect settings.`,
      );
    }

    const provider = await findOidcProvider(db, attempt.account_id);
    if (!provider || provider.issuer !== attempt.issuer) {
      throw failed(
        'The OpenID Connect settings of this account changed during the sign-in. Start the sign-in again.',
      );
    }
    const identity = await this.redeem(provider, attempt, query);
    const email = checkEmail(identity, provider);
    return db.transaction(async (tx) => {
      const user = await this.matchUser(tx, provider, identity, email);
      if (user.disabled_at) {
        throw failed(
          `The user ${user.email} is disabled. Ask an administrator of the account to enable it.`,
        );
      }
      return { session: await createSession(tx, user), user };
    });
  }

  /** Redeem the code and return the identity from the checked ID token (or UserInfo). */
  private async redeem(
    provider: OidcProviderRow,
    attempt: AttemptRow,
    query: string,
  ): Promise<ProviderIdentity> {
    const secret = await readClientSecret(this.options.db, this.options.secrets, provider);
    try {
      const configuration = await this.configure(provider.issuer, provider.client_id, secret);
      // openid-client checks the state, the PKCE verifier, and the ID token's issuer, audience,
      // nonce and expiry.
      const tokens = await client.authorizationCodeGrant(
        configuration,
        new URL(`${this.redirectUri}?${query}`),
        {
          pkceCodeVerifier: attempt.code_verifier,
          expectedState: attempt.state,
          expectedNonce: attempt.nonce,
          idTokenExpected: true,
        },
      );
      const claims = tokens.claims();
      if (!claims) throw new Error('the token response contains no ID token');
      let source: Record<string, unknown> = claims;
      // Providers may leave the email claims out of the ID token and serve them from UserInfo.
      if (claims.email === undefined && tokens.access_token) {
        source = await client.fetchUserInfo(configuration, tokens.access_token, claims.sub);
      }
      return {
        issuer: provider.issuer,
        subject: claims.sub,
        email: typeof source.email === 'string' ? source.email.trim().toLowerCase() : null,
        emailVerified: source.email_verified === true,
        name: typeof claims.name === 'string' ? claims.name : null,
      };
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw failed(
        `The sign-in could not be completed with the identity provider: ${describeProviderError(error)}. Start the sign-in again.`,
        error,
      );
    }
  }

  /**
   * Find the user of THIS account: by the linked issuer and subject first, then by email for a
   * user not yet linked to this issuer (and link it), then by creating one when the account
   * allows it. A user of another account is never returned, whatever its email.
   */
  private async matchUser(
    tx: Queryable,
    provider: OidcProviderRow,
    identity: ProviderIdentity,
    email: string,
  ): Promise<UserRow> {
    const accountId = provider.account_id;
    const [linked] = await tx.query<UserRow>(
      'SELECT * FROM users WHERE account_id = $1 AND oidc_issuer = $2 AND oidc_subject = $3',
      [accountId, identity.issuer, identity.subject],
    );
    if (linked) return linked;

    const [byEmail] = await tx.query<LinkableUserRow>(
      'SELECT * FROM users WHERE account_id = $1 AND email = $2',
      [accountId, email],
    );
    if (byEmail) {
      // A user linked to another subject of the same issuer keeps that link, because the
      // address may have passed to someone else at the provider.
      if (byEmail.oidc_issuer === identity.issuer) {
        throw failed(
          `The user ${email} is linked to another identity at this provider. Ask an administrator of the account to remove the link (DELETE /api/v1/users/:id/oidc-link) if the person's provider account was replaced.`,
        );
      }
      if (byEmail.disabled_at) return byEmail;
      await linkUser(tx, byEmail, identity);
      return byEmail;
    }

    if (!provider.provision_users) {
      throw failed(
        `No user with the email address ${email} exists in this account. Ask an administrator of the account to add you.`,
      );
    }
    return this.provisionUser(tx, provider, identity, email);
  }

  private async provisionUser(
    tx: Queryable,
    provider: OidcProviderRow,
    identity: ProviderIdentity,
    email: string,
  ): Promise<UserRow> {
    const accountId = provider.account_id;
    let role: Role;
    try {
      role = await getRole(tx, accountId, provider.provision_role_id);
    } catch (error) {
      throw failed(
        'No user can be created: the role chosen for new users no longer exists. Ask an administrator to choose another role in the OpenID Connect settings.',
        error,
      );
    }
    // A custom role can gain permissions after it was chosen, so the rule is checked again here.
    if (exceedsViewer(role) && !provider.provision_role_set_by_owner) {
      throw failed(
        `No user can be created: the role "${role.name}" now grants more than the Viewer role, and only an MSSP Owner may choose such a role for new users. Ask an Owner to save the OpenID Connect settings again.`,
      );
    }

    const displayName = identity.name?.trim().slice(0, 200) || email.split('@')[0]!;
    let created;
    try {
      created = await createUser(tx, accountId, { email, displayName, roleId: role.id });
    } catch (error) {
      if (error instanceof AppError && error.code === 'conflict') {
        throw failed(
          `No user can be created for ${email}: the address already belongs to a user of another MSSP account on this server.`,
          error,
        );
      }
      throw error;
    }
    const [row] = await tx.query<UserRow>(
      `UPDATE users SET oidc_issuer = $2, oidc_subject = $3 WHERE id = $1 RETURNING *`,
      [created.id, identity.issuer, identity.subject],
    );
    await recordAudit(tx, {
      accountId,
      actor: SYSTEM_ACTOR,
      action: 'user.created',
      targetType: 'user',
      targetId: created.id,
      after: { ...created, source: 'oidc_sign_in', oidcIssuer: identity.issuer },
    });
    return row!;
  }
}

/**
 * Check that the email address is present, verified by the provider and in an allowed domain,
 * and return it in lower case. Throws an AppError naming the failed check otherwise.
 */
function checkEmail(identity: ProviderIdentity, provider: OidcProviderRow): string {
  const email = identity.email;
  if (!email) {
    throw failed(
      'The identity provider sent no email address. Allow the "email" scope for dmarcdesk at the provider.',
    );
  }
  if (!identity.emailVerified) {
    throw failed(
      `The identity provider has not verified the email address ${email}. Verify it at the provider, then sign in again.`,
    );
  }
  const at = email.lastIndexOf('@');
  const domain = at > 0 ? email.slice(at + 1) : '';
  if (!domain || !provider.allowed_domains.includes(domain)) {
    throw failed(
      `The email domain ${domain || '(none)'} may not sign in to this account. Ask an administrator to add it to the allowed domains.`,
    );
  }
  return email;
}

async function linkUser(
  tx: Queryable,
  previous: LinkableUserRow,
  identity: ProviderIdentity,
): Promise<void> {
  await tx.query('UPDATE users SET oidc_issuer = $2, oidc_subject = $3 WHERE id = $1', [
    previous.id,
    identity.issuer,
    identity.subject,
  ]);
  await recordAudit(tx, {
    accountId: previous.account_id,
    actor: SYSTEM_ACTOR,
    action: 'user.oidc_linked',
    targetType: 'user',
    targetId: previous.id,
    before: previous.oidc_issuer
      ? { issuer: previous.oidc_issuer, subject: previous.oidc_subject }
      : null,
    after: { issuer: identity.issuer, subject: identity.subject },
  });
}

/**
 * Remove a user's link to a provider identity, so that the next sign-in matches by email
 * again. Returns the link that was removed, or null when the user had none.
 */
export async function unlinkOidcIdentity(
  db: Queryable,
  accountId: string,
  userId: string,
): Promise<{ issuer: string; subject: string } | null> {
  const [row] = await db.query<{ issuer: string; subject: string }>(
    `WITH old AS (
       SELECT id, oidc_issuer, oidc_subject FROM users
        WHERE account_id = $1 AND id = $2 AND oidc_subject IS NOT NULL
        FOR UPDATE
     )
     UPDATE users u SET oidc_issuer = NULL, oidc_subject = NULL
       FROM old WHERE u.id = old.id
     RETURNING old.oidc_issuer AS issuer, old.oidc_subject AS subject`,
    [accountId, userId],
  );
  return row ?? null;
}
