// HaloPSA's OAuth 2 client-credentials flow and bearer-token checks. Known behaviour: form
// bodies, an optional `tenant` query parameter, HTTP Basic client authentication, 401
// {"error":"invalid_client"} for wrong credentials, and tokens issued without a scope that
// fail every API call with 401. Everything else here (other OAuth errors, JSON bodies, the
// 401 body on API calls) is the emulator's guess and listed in the README.
import { randomBytes } from 'node:crypto';

import type { ApiResult } from './types.ts';

/** An API application as HaloPSA's Configuration > Integrations > Halo API shows it. */
export interface ApiApplication {
  clientId: string;
  clientSecret: string;
  /** The permissions (scope names) ticked on the application. */
  permissions: string[];
}

/** The application, permissions and expiry of an access token, fixed when it is issued. */
export interface TokenGrant {
  clientId: string;
  permissions: ReadonlySet<string>;
  /** Issued without a scope. HaloPSA issues such tokens but rejects every call with 401. */
  scopeless: boolean;
  expiresAt: number;
}

/** The permissions an operator ticks on dmarcdesk's application in HaloPSA. */
export const PRODUCT_PERMISSIONS = [
  'read:customers',
  'edit:customers',
  'read:softwarelicensing',
  'edit:softwarelicensing',
  'read:tickets',
  'edit:tickets',
  'read:items',
] as const;

/** The application every fresh instance has, with the credentials an operator would copy. */
export const DEMO_APPLICATION: ApiApplication = {
  clientId: 'dmarcdesk-demo',
  clientSecret: 'demo-secret-change-me',
  permissions: [...PRODUCT_PERMISSIONS],
};

/** The tenant name GET /api/authinfo reports and the shared-host token endpoint expects. */
export const EMULATOR_TENANT = 'emulator';

/** The parts of a token request the flow reads. */
export interface TokenRequest {
  contentType: string | undefined;
  authorization: string | undefined;
  body: string | undefined;
  query: Record<string, string | undefined>;
  /** True on the shared auth host form (`/token`), where the tenant picks the instance. */
  tenantRequired: boolean;
  now: number;
  tokenLifetimeSeconds: number;
}

/** Registered applications and the tokens issued to them. */
export class AuthRegistry {
  readonly applications = new Map<string, ApiApplication>();
  private readonly tokens = new Map<string, TokenGrant>();

  constructor() {
    this.putApplication(DEMO_APPLICATION);
  }

  putApplication(application: ApiApplication): void {
    this.applications.set(application.clientId, {
      ...application,
      permissions: [...application.permissions],
    });
  }

  /** Runs the client-credentials flow and returns the token response or an OAuth error. */
  issueToken(request: TokenRequest): ApiResult {
    const contentType = request.contentType?.split(';')[0]?.trim().toLowerCase();
    if (contentType !== undefined && contentType !== 'application/x-www-form-urlencoded') {
      return oauthError(
        400,
        'invalid_request',
        `Content-Type ${contentType} is not supported: send the token request as application/x-www-form-urlencoded`,
      );
    }
    const form = new URLSearchParams(request.body ?? '');

    const tenant = request.query.tenant ?? form.get('tenant') ?? undefined;
    if (request.tenantRequired && (tenant === undefined || tenant === '')) {
      return oauthError(
        400,
        'invalid_request',
        'The tenant query parameter is required on this host',
      );
    }
    if (request.tenantRequired && tenant?.toLowerCase() !== EMULATOR_TENANT) {
      return oauthError(401, 'invalid_client');
    }

    const credentials = readClientCredentials(request.authorization, form);
    if ('error' in credentials) return credentials.error;
    const application = this.applications.get(credentials.clientId);
    if (application === undefined || application.clientSecret !== credentials.clientSecret) {
      return oauthError(401, 'invalid_client');
    }

    const grantType = form.get('grant_type');
    if (grantType === null || grantType === '') {
      return oauthError(400, 'invalid_request', 'grant_type is missing: send client_credentials');
    }
    if (grantType !== 'client_credentials') {
      return oauthError(400, 'unsupported_grant_type', `grant_type ${grantType} is not supported`);
    }

    const requested = (form.get('scope') ?? '').split(/\s+/).filter((name) => name !== '');
    const granted = grantScopes(requested, application.permissions);
    const token = randomBytes(24).toString('base64url');
    this.pruneExpired(request.now);
    this.tokens.set(token, {
      clientId: application.clientId,
      permissions: granted.permissions,
      scopeless: requested.length === 0,
      expiresAt: request.now + request.tokenLifetimeSeconds * 1000,
    });

    return {
      status: 200,
      headers: { 'cache-control': 'no-store' },
      body: {
        access_token: token,
        token_type: 'Bearer',
        expires_in: request.tokenLifetimeSeconds,
        scope: granted.scope,
      },
    };
  }

  /** Returns the grant behind an Authorization header, or the 401 to send. */
  authenticate(authorization: string | undefined, now: number): TokenGrant | ApiResult {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (match?.[1] === undefined) {
      return { status: 401, headers: { 'www-authenticate': 'Bearer' } };
    }
    const grant = this.tokens.get(match[1]);
    if (grant === undefined || grant.scopeless) {
      return { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } };
    }
    if (grant.expiresAt <= now) {
      return {
        status: 401,
        headers: {
          'www-authenticate': 'Bearer error="invalid_token", error_description="The token expired"',
        },
      };
    }
    return grant;
  }

  private pruneExpired(now: number): void {
    // Pruning on every issue would make a token burst quadratic; 1,000 live tokens is plenty.
    if (this.tokens.size < 1000) return;
    for (const [token, grant] of this.tokens) {
      if (grant.expiresAt <= now) this.tokens.delete(token);
    }
  }
}

/**
 * Grants `all` as every permission of the application, and a list of names as its
 * intersection with the application's permissions. Returns the granted permissions and the
 * scope string for the response: the requested names that were granted.
 */
function grantScopes(
  requested: string[],
  applicationPermissions: string[],
): { permissions: Set<string>; scope: string } {
  const owned = new Set(applicationPermissions);
  const permissions = new Set<string>();
  const grantedNames: string[] = [];
  for (const name of requested) {
    if (name === 'all') {
      for (const permission of owned) permissions.add(permission);
      grantedNames.push(name);
    } else if (owned.has(name)) {
      permissions.add(name);
      grantedNames.push(name);
    }
  }
  return { permissions, scope: grantedNames.join(' ') };
}

function readClientCredentials(
  authorization: string | undefined,
  form: URLSearchParams,
): { clientId: string; clientSecret: string } | { error: ApiResult } {
  const basic = /^Basic\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (basic?.[1] !== undefined) {
    if (form.has('client_secret')) {
      // RFC 6749 section 2.3: a client must use one authentication method per request.
      return {
        error: oauthError(
          400,
          'invalid_request',
          'Send the client credentials either in the Authorization header or in the body, not both',
        ),
      };
    }
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const separator = decoded.indexOf(':');
    if (separator === -1) return { error: oauthError(401, 'invalid_client') };
    // RFC 6749 section 2.3.1: both halves are form-encoded before they are joined.
    return {
      clientId: decodeFormComponent(decoded.slice(0, separator)),
      clientSecret: decodeFormComponent(decoded.slice(separator + 1)),
    };
  }
  return { clientId: form.get('client_id') ?? '', clientSecret: form.get('client_secret') ?? '' };
}

function decodeFormComponent(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

function oauthError(status: number, error: string, description?: string): ApiResult {
  const body = description === undefined ? { error } : { error, error_description: description };
  return { status, headers: { 'cache-control': 'no-store' }, body };
}
