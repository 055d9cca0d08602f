import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { recordAudit } from '../audit/audit-log.ts';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { parseInput } from '../errors/validation.ts';
import { describeProviderError } from './oidc-http.ts';
import {
  checkIssuerUrl,
  deleteOidcProvider,
  findOidcProvider,
  oidcSecretContext,
  toOidcProviderView,
  upsertOidcProvider,
  type SecretSealer,
} from './oidc-providers.ts';
import {
  exceedsViewer,
  OIDC_ATTEMPT_COOKIE,
  OIDC_ATTEMPT_LIFETIME_SECONDS,
  OidcSignInService,
  unlinkOidcIdentity,
} from './oidc-sign-in.ts';
import { ALL_PERMISSIONS } from './permissions.ts';
import { accountOf, actorOf } from './request-auth.ts';
import { getRole } from './roles.ts';
import { requireSubset, setSessionCookie } from './routes.ts';
import { deleteSession, SESSION_COOKIE } from './sessions.ts';
import { getUser } from './users.ts';

const domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/, {
    error: 'must be a domain such as contoso.com',
  });

const providerBody = z.strictObject({
  issuer: z.string().min(1).max(2000),
  clientId: z.string().trim().min(1).max(500),
  /** Omitted to keep the stored secret, which is possible only while the issuer stays the same. */
  clientSecret: z.string().min(1).max(2000).optional(),
  allowedDomains: z
    .array(domain)
    .min(1, { error: 'must list at least one domain' })
    .max(100)
    .transform((values) => [...new Set(values)].sort()),
  provisionUsers: z.boolean().default(false),
  provisionRoleId: z.string().min(1).max(100).default('viewer'),
});

const startParams = z.object({
  accountId: z.uuid({ error: 'must be the UUID of an MSSP account' }),
});
const userParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });

export interface OidcRoutesOptions {
  db: Database;
  secrets: SecretSealer;
  /** The dispatcher of every call to an identity provider, which decides which addresses are reachable. */
  dispatcher: Dispatcher;
  /** host:port pairs that may be called over http or on a private address (DMARCDESK_OIDC_ALLOWED_HOSTS). */
  allowedHosts: readonly string[];
  publicUrl: string;
}

function setAttemptCookie(reply: FastifyReply, token: string): void {
  void reply.setCookie(OIDC_ATTEMPT_COOKIE, token, {
    path: '/',
    httpOnly: true,
    secure: true,
    sameSite: 'lax',
    maxAge: OIDC_ATTEMPT_LIFETIME_SECONDS,
  });
}

function clearAttemptCookie(reply: FastifyReply): void {
  void reply.clearCookie(OIDC_ATTEMPT_COOKIE, {
    path: '/',
    httpOnly: true,
    secure: true,
    sameSite: 'lax',
  });
}

/**
 * OpenID Connect sign-in: the account's identity provider configuration (users.manage), the
 * public start and callback of a sign-in, and removing a user's link to a provider identity.
 */
export function oidcRoutes(options: OidcRoutesOptions): FastifyPluginAsync {
  const { db, secrets, publicUrl } = options;
  const signIn = new OidcSignInService(options);

  return async (app) => {
    app.get('/auth/oidc/provider', { config: { access: 'users.manage' } }, async (request) => {
      const row = await findOidcProvider(db, accountOf(request));
      if (!row) throw noProvider();
      return toOidcProviderView(row, publicUrl);
    });

    app.put('/auth/oidc/provider', { config: { access: 'users.manage' } }, async (request) => {
      const input = parseInput(providerBody, request.body);
      const accountId = accountOf(request);
      const issuerUrl = checkIssuerUrl(input.issuer, options.allowedHosts);

      const role = await getRole(db, accountId, input.provisionRoleId).catch((error: unknown) => {
        throw new AppError(
          'validation_failed',
          `Field "provisionRoleId": no role "${input.provisionRoleId}" exists in this account. GET /api/v1/roles lists them.`,
          { field: 'provisionRoleId', cause: error },
        );
      });
      requireSubset(request, role.permissions, 'provisionRoleId');
      const byOwner = ALL_PERMISSIONS.every((permission) =>
        request.auth!.permissions.has(permission),
      );
      if (exceedsViewer(role) && !byOwner) {
        throw new AppError(
          'forbidden',
          `Only an MSSP Owner, or an API token holding every permission, can give new users a role that grants more than Viewer, as "${role.name}" does. Choose "viewer" or a role within it.`,
          { field: 'provisionRoleId' },
        );
      }

      let issuer: string;
      try {
        const configuration = await signIn.configure(issuerUrl.href, input.clientId);
        issuer = configuration.serverMetadata().issuer;
      } catch (error) {
        if (error instanceof AppError) throw error;
        throw new AppError(
          'validation_failed',
          `Field "issuer": the discovery document of ${issuerUrl.href} could not be read: ${describeProviderError(error)}. Check the issuer URL.`,
          { field: 'issuer', cause: error },
        );
      }
      // Entra ID's common, organizations and consumers endpoints accept every tenant.
      if (issuer.includes('{tenantid}')) {
        throw new AppError(
          'validation_failed',
          'Field "issuer": this Microsoft Entra ID endpoint accepts users of every tenant. Use your tenant\'s issuer, https://login.microsoftonline.com/<tenant id>/v2.0.',
          { field: 'issuer' },
        );
      }

      const before = await findOidcProvider(db, accountId);
      let sealedSecret: Buffer;
      if (input.clientSecret !== undefined) {
        sealedSecret = secrets.encrypt(input.clientSecret, oidcSecretContext(accountId, issuer));
      } else if (before && before.issuer === issuer) {
        sealedSecret = Buffer.from(before.client_secret_encrypted);
      } else {
        throw new AppError(
          'validation_failed',
          before
            ? 'Field "clientSecret": required when the issuer changes, because the stored secret belongs to the previous issuer.'
            : 'Field "clientSecret": required when the identity provider is first set up.',
          { field: 'clientSecret' },
        );
      }

      const row = await upsertOidcProvider(db, accountId, {
        issuer,
        clientId: input.clientId,
        sealedSecret,
        allowedDomains: input.allowedDomains,
        provisionUsers: input.provisionUsers,
        provisionRoleId: role.id,
        provisionRoleSetByOwner: byOwner,
      });
      const view = toOidcProviderView(row, publicUrl);
      await recordAudit(db, {
        accountId,
        actor: actorOf(request),
        action: before ? 'oidc_provider.updated' : 'oidc_provider.created',
        targetType: 'oidc_provider',
        targetId: accountId,
        before: before ? toOidcProviderView(before, publicUrl) : undefined,
        after: { ...view, clientSecretChanged: input.clientSecret !== undefined },
      });
      return view;
    });

    app.delete(
      '/auth/oidc/provider',
      { config: { access: 'users.manage' } },
      async (request, reply) => {
        const accountId = accountOf(request);
        const before = await findOidcProvider(db, accountId);
        if (!before || !(await deleteOidcProvider(db, accountId))) throw noProvider();
        await recordAudit(db, {
          accountId,
          actor: actorOf(request),
          action: 'oidc_provider.deleted',
          targetType: 'oidc_provider',
          targetId: accountId,
          before: toOidcProviderView(before, publicUrl),
        });
        return reply.code(204).send();
      },
    );

    app.delete(
      '/users/:id/oidc-link',
      { config: { access: 'users.manage' } },
      async (request, reply) => {
        const { id } = parseInput(userParams, request.params, 'path');
        const accountId = accountOf(request);
        const user = await getUser(db, accountId, id);
        requireSubset(request, user.role.permissions, 'id');
        const removed = await unlinkOidcIdentity(db, accountId, id);
        if (removed) {
          await recordAudit(db, {
            accountId,
            actor: actorOf(request),
            action: 'user.oidc_unlinked',
            targetType: 'user',
            targetId: id,
            before: removed,
          });
        }
        return reply.code(204).send();
      },
    );

    app.get(
      '/auth/oidc/:accountId/start',
      { config: { access: 'public' } },
      async (request, reply) => {
        const { accountId } = parseInput(startParams, request.params, 'path');
        const { authorizationUrl, attemptToken } = await signIn.start(accountId);
        setAttemptCookie(reply, attemptToken);
        void reply.header('cache-control', 'no-store');
        return reply.redirect(authorizationUrl.href, 303);
      },
    );

    app.get('/auth/oidc/callback', { config: { access: 'public' } }, async (request, reply) => {
      void reply.header('cache-control', 'no-store');
      // The attempt is used once whatever the outcome, so its cookie is cleared too.
      // @fastify/cookie sends the Set-Cookie header with error responses as well.
      clearAttemptCookie(reply);
      const queryStart = request.url.indexOf('?');
      const query = queryStart === -1 ? '' : request.url.slice(queryStart + 1);
      let result;
      try {
        result = await signIn.finish(request.cookies[OIDC_ATTEMPT_COOKIE], query);
      } catch (error) {
        if (error instanceof AppError && error.status < 500) {
          request.log.warn({ reason: error.message }, 'OpenID Connect sign-in failed');
        }
        throw error;
      }
      // A session presented with the sign-in is ended, so that a planted cookie never becomes
      // a signed-in session (fixation).
      const previous = request.cookies[SESSION_COOKIE];
      if (previous) await deleteSession(db, previous);
      setSessionCookie(reply, result.session.token);
      request.log.info(
        { accountId: result.user.account_id, userId: result.user.id },
        'OpenID Connect sign-in',
      );
      return reply.redirect('/', 303);
    });
  };
}

function noProvider(): AppError {
  return new AppError(
    'not_found',
    'This account has no OpenID Connect identity provider. Set one up with PUT /api/v1/auth/oidc/provider.',
  );
}
