import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { verifyApiToken } from './api-tokens.ts';
import { PERMISSIONS, type Permission } from './permissions.ts';
import { findSession, SESSION_COOKIE } from './sessions.ts';
import { permissionsOfUser } from './users.ts';

/** Who makes a request: a signed-in user or an API token, always of one MSSP account. */
export interface Identity {
  kind: 'user' | 'api_token';
  accountId: string;
  /** The user id or the API token id. */
  actorId: string;
  permissions: ReadonlySet<Permission>;
  /** For users: the session's CSRF token, required on every state-changing request. */
  csrfToken: string | null;
  /** For users: the session token from the cookie. */
  sessionToken: string | null;
}

/** What a route requires: a permission, any authenticated caller, or nothing (sign-in). */
export type RouteAccess = Permission | 'authenticated' | 'public';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on /api routes; null when the caller is anonymous. */
    auth: Identity | null;
    /** Why no identity was set, for the 401 message. */
    authProblem: string | null;
  }
  interface FastifyContextConfig {
    /** Required on every /api/v1 route; a route without it is denied to everyone. */
    access?: RouteAccess;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The onRequest hook that reads a Bearer API token or the session cookie. */
export function identifyCaller(db: Queryable) {
  return async function identify(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    if (header) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      const identity = match ? await verifyApiToken(db, match[1]!) : null;
      if (!identity) {
        request.authProblem = match
          ? 'The API token is unknown or revoked; create a new one.'
          : 'The Authorization header must be "Bearer <API token>".';
        return;
      }
      request.auth = {
        kind: 'api_token',
        accountId: identity.accountId,
        actorId: identity.tokenId,
        permissions: new Set(identity.permissions),
        csrfToken: null,
        sessionToken: null,
      };
      return;
    }

    const sessionToken = request.cookies?.[SESSION_COOKIE];
    if (!sessionToken) {
      request.authProblem = 'Sign in first, or send "Authorization: Bearer <API token>".';
      return;
    }
    const session = await findSession(db, sessionToken);
    if (!session) {
      request.authProblem = 'The session has ended; sign in again.';
      return;
    }
    request.auth = {
      kind: 'user',
      accountId: session.user.account_id,
      actorId: session.user.id,
      permissions: new Set(await permissionsOfUser(db, session.user)),
      csrfToken: session.csrfToken,
      sessionToken,
    };
  };
}

/**
 * The preHandler hook that enforces each route's `access` rule, and CSRF protection for
 * signed-in users: a state-changing request must carry the session's token in X-CSRF-Token,
 * which a cross-origin form or image cannot send.
 */
export async function enforceAccess(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const access = request.routeOptions.config.access;
  if (access === undefined) {
    request.log.error({ route: request.routeOptions.url }, 'route has no access rule');
    throw new AppError(
      'forbidden',
      'This route has no access rule, so it is closed to every caller.',
    );
  }
  if (access === 'public') return;

  const identity = request.auth;
  if (!identity) throw new AppError('unauthenticated', request.authProblem ?? 'Sign in first.');

  if (identity.kind === 'user' && !SAFE_METHODS.has(request.method)) checkCsrf(request, identity);

  if (access !== 'authenticated' && !identity.permissions.has(access)) {
    throw new AppError(
      'forbidden',
      `This needs the permission "${PERMISSIONS[access]}" (${access}), which your ${identity.kind === 'user' ? 'role' : 'API token'} does not hold.`,
      { details: { permission: access } },
    );
  }
}

function checkCsrf(request: FastifyRequest, identity: Identity): void {
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    throw new AppError('forbidden', 'Cross-site requests are not accepted with a session cookie.');
  }
  const presented = request.headers['x-csrf-token'];
  const expected = identity.csrfToken ?? '';
  const valid =
    typeof presented === 'string' &&
    presented.length === expected.length &&
    timingSafeEqual(Buffer.from(presented), Buffer.from(expected));
  if (!valid) {
    throw new AppError(
      'forbidden',
      'The X-CSRF-Token header is missing or wrong; read the token from GET /api/v1/auth/session.',
    );
  }
}

/** The account of the authenticated caller; every data access is scoped by it. */
export function accountOf(request: FastifyRequest): string {
  if (!request.auth) throw new AppError('unauthenticated', request.authProblem ?? 'Sign in first.');
  return request.auth.accountId;
}

/** The caller as the audit log records it. */
export function actorOf(request: FastifyRequest): { type: 'user' | 'api_token'; id: string } {
  if (!request.auth) throw new AppError('unauthenticated', 'Sign in first.');
  return { type: request.auth.kind, id: request.auth.actorId };
}
