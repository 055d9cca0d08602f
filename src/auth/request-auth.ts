import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { verifyApiToken, type ApiTokenIdentity } from './api-tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on /api routes; null before it runs. */
    auth: ApiTokenIdentity | null;
  }
}

/**
 * A fastify onRequest hook that authenticates `Authorization: Bearer <API token>` and sets
 * `request.auth`. Every route under /api/v1 requires it.
 */
export function authenticateApiToken(db: Queryable) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    if (!header) {
      throw new AppError(
        'unauthenticated',
        'This request has no Authorization header; send "Authorization: Bearer <API token>".',
      );
    }
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      throw new AppError(
        'unauthenticated',
        'The Authorization header must be "Bearer <API token>".',
      );
    }
    const identity = await verifyApiToken(db, match[1]!);
    if (!identity) {
      throw new AppError(
        'unauthenticated',
        'The API token is unknown or revoked; create a new one with "dmarcdesk token create".',
      );
    }
    request.auth = identity;
  };
}

/** The account of the authenticated caller; every data access is scoped by it. */
export function accountOf(request: FastifyRequest): string {
  if (!request.auth) throw new AppError('unauthenticated', 'This route requires an API token.');
  return request.auth.accountId;
}
