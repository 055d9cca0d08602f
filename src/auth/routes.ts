import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../audit/audit-log.ts';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { parseInput } from '../errors/validation.ts';
import { createApiToken, listApiTokens, revokeApiToken } from './api-tokens.ts';
import { ALL_PERMISSIONS, isPermission, PERMISSIONS, type Permission } from './permissions.ts';
import { accountOf, actorOf } from './request-auth.ts';
import { deleteCustomRole, getRole, listRoles, saveCustomRole } from './roles.ts';
import { deleteSession, SESSION_COOKIE, SESSION_LIFETIME_SECONDS } from './sessions.ts';
import type { SignInService } from './sign-in.ts';
import { createUser, deleteUser, getUser, listUsers, toUser, updateUser } from './users.ts';

const uuid = z.uuid({ error: 'must be a UUID' });
const idParams = z.object({ id: uuid });
const roleParams = z.object({ id: z.string().min(1).max(100) });
const permissionList = z
  .array(z.string())
  .max(ALL_PERMISSIONS.length)
  .transform((values, context) => {
    values.forEach((value, index) => {
      if (!isPermission(value)) {
        context.addIssue({
          code: 'custom',
          path: [index],
          message: `"${value}" is not a permission; GET /api/v1/permissions lists them`,
        });
      }
    });
    return values.filter(isPermission);
  })
  .describe('a list of permission names');
const email = z.email({ error: 'must be an email address' }).max(254);
const password = z.string().max(1000);

const signInBody = z.strictObject({ email: z.string().max(254), password });
const userBody = z.strictObject({
  email,
  displayName: z.string().trim().min(1).max(200),
  password: password.optional(),
  roleId: z.string().min(1).max(100),
});
const userPatch = z.strictObject({
  displayName: z.string().trim().min(1).max(200).optional(),
  roleId: z.string().min(1).max(100).optional(),
  disabled: z.boolean().optional(),
  password: password.optional(),
});
const roleBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  permissions: permissionList,
});
const tokenBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  permissions: permissionList,
});

export interface AuthRoutesOptions {
  db: Database;
  signIn: SignInService;
}

/** Refuse to hand out permissions that the caller does not hold itself. */
export function requireSubset(
  request: FastifyRequest,
  permissions: readonly Permission[],
  field: string,
): void {
  const held = request.auth!.permissions;
  const missing = permissions.filter((permission) => !held.has(permission));
  if (missing.length > 0) {
    throw new AppError(
      'forbidden',
      `You cannot grant permissions you do not hold: ${missing.join(', ')}.`,
      {
        field,
        details: { permissions: missing },
      },
    );
  }
}

/** Set the session cookie; every way of signing in sets it the same way. */
export function setSessionCookie(reply: FastifyReply, token: string): void {
  void reply.setCookie(SESSION_COOKIE, token, {
    path: '/',
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    maxAge: SESSION_LIFETIME_SECONDS,
  });
}

/** Sign-in and sessions, users, roles, API tokens and the permission list. */
export function authRoutes({ db, signIn }: AuthRoutesOptions): FastifyPluginAsync {
  return async (app) => {
    app.post('/auth/sign-in', { config: { access: 'public' } }, async (request, reply) => {
      const input = parseInput(signInBody, request.body);
      const { session, user } = await signIn.signIn({ ...input, clientAddress: request.ip });
      // A session presented with the sign-in is ended, so that a planted cookie never becomes
      // a signed-in session (fixation).
      const previous = request.cookies[SESSION_COOKIE];
      if (previous) await deleteSession(db, previous);
      setSessionCookie(reply, session.token);
      return {
        user: await toUser(db, user),
        csrfToken: session.csrfToken,
        expiresAt: session.expiresAt,
      };
    });

    app.post('/auth/sign-out', { config: { access: 'authenticated' } }, async (request, reply) => {
      if (request.auth?.sessionToken) await deleteSession(db, request.auth.sessionToken);
      void reply.clearCookie(SESSION_COOKIE, {
        path: '/',
        secure: true,
        httpOnly: true,
        sameSite: 'strict',
      });
      return reply.code(204).send();
    });

    app.get('/auth/session', { config: { access: 'authenticated' } }, async (request) => {
      const identity = request.auth!;
      return {
        kind: identity.kind,
        accountId: identity.accountId,
        user:
          identity.kind === 'user' ? await getUser(db, identity.accountId, identity.actorId) : null,
        permissions: [...identity.permissions].sort(),
        csrfToken: identity.csrfToken,
      };
    });

    app.get('/permissions', { config: { access: 'authenticated' } }, async () => ({
      permissions: ALL_PERMISSIONS.map((id) => ({ id, name: PERMISSIONS[id] })),
    }));

    app.get('/roles', { config: { access: 'users.manage' } }, async (request) => ({
      roles: await listRoles(db, accountOf(request)),
    }));

    app.post('/roles', { config: { access: 'users.manage' } }, async (request, reply) => {
      const input = parseInput(roleBody, request.body);
      requireSubset(request, input.permissions, 'permissions');
      const role = await saveCustomRole(db, accountOf(request), input);
      await recordAudit(db, {
        accountId: accountOf(request),
        actor: actorOf(request),
        action: 'role.created',
        targetType: 'role',
        targetId: role.id,
        after: role,
      });
      return reply.code(201).send(role);
    });

    app.put('/roles/:id', { config: { access: 'users.manage' } }, async (request) => {
      const { id } = parseInput(roleParams, request.params, 'path');
      const input = parseInput(roleBody, request.body);
      requireSubset(request, input.permissions, 'permissions');
      const before = await getRole(db, accountOf(request), id);
      if (before.builtIn)
        throw new AppError(
          'validation_failed',
          `The built-in role "${before.name}" cannot be changed; create a custom role instead.`,
        );
      const role = await saveCustomRole(db, accountOf(request), { id, ...input });
      await recordAudit(db, {
        accountId: accountOf(request),
        actor: actorOf(request),
        action: 'role.updated',
        targetType: 'role',
        targetId: id,
        before,
        after: role,
      });
      return role;
    });

    app.delete('/roles/:id', { config: { access: 'users.manage' } }, async (request, reply) => {
      const { id } = parseInput(roleParams, request.params, 'path');
      const before = await getRole(db, accountOf(request), id);
      if (before.builtIn)
        throw new AppError(
          'validation_failed',
          `The built-in role "${before.name}" cannot be deleted.`,
        );
      await deleteCustomRole(db, accountOf(request), id);
      await recordAudit(db, {
        accountId: accountOf(request),
        actor: actorOf(request),
        action: 'role.deleted',
        targetType: 'role',
        targetId: id,
        before,
      });
      return reply.code(204).send();
    });

    app.get('/users', { config: { access: 'users.manage' } }, async (request) => ({
      users: await listUsers(db, accountOf(request)),
    }));

    app.post('/users', { config: { access: 'users.manage' } }, async (request, reply) => {
      const input = parseInput(userBody, request.body);
      const accountId = accountOf(request);
      requireSubset(request, (await getRole(db, accountId, input.roleId)).permissions, 'roleId');
      const user = await createUser(db, accountId, input);
      await recordAudit(db, {
        accountId,
        actor: actorOf(request),
        action: 'user.created',
        targetType: 'user',
        targetId: user.id,
        after: user,
      });
      return reply.code(201).send(user);
    });

    app.patch('/users/:id', { config: { access: 'users.manage' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const input = parseInput(userPatch, request.body);
      const accountId = accountOf(request);
      const before = await getUser(db, accountId, id);
      requireSubset(request, before.role.permissions, 'id');
      if (input.roleId !== undefined)
        requireSubset(request, (await getRole(db, accountId, input.roleId)).permissions, 'roleId');
      if ((input.roleId !== undefined && input.roleId !== 'mssp_owner') || input.disabled)
        await keepAnOwner(accountId, id);
      const user = await updateUser(db, accountId, id, input);
      await recordAudit(db, {
        accountId,
        actor: actorOf(request),
        action: 'user.updated',
        targetType: 'user',
        targetId: id,
        before,
        after: user,
      });
      return user;
    });

    app.delete('/users/:id', { config: { access: 'users.manage' } }, async (request, reply) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const accountId = accountOf(request);
      const before = await getUser(db, accountId, id);
      requireSubset(request, before.role.permissions, 'id');
      await keepAnOwner(accountId, id);
      await deleteUser(db, accountId, id);
      await recordAudit(db, {
        accountId,
        actor: actorOf(request),
        action: 'user.deleted',
        targetType: 'user',
        targetId: id,
        before,
      });
      return reply.code(204).send();
    });

    app.get('/api-tokens', { config: { access: 'users.manage' } }, async (request) => ({
      tokens: await listApiTokens(db, accountOf(request)),
    }));

    app.post('/api-tokens', { config: { access: 'users.manage' } }, async (request, reply) => {
      const input = parseInput(tokenBody, request.body);
      requireSubset(request, input.permissions, 'permissions');
      const accountId = accountOf(request);
      const created = await createApiToken(db, accountId, input.name, input.permissions);
      await recordAudit(db, {
        accountId,
        actor: actorOf(request),
        action: 'api_token.created',
        targetType: 'api_token',
        targetId: created.id,
        after: { name: input.name, permissions: input.permissions },
      });
      return reply.code(201).send({
        id: created.id,
        token: created.token,
        note: 'The token is shown once; store it now.',
      });
    });

    app.delete(
      '/api-tokens/:id',
      { config: { access: 'users.manage' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const accountId = accountOf(request);
        await revokeApiToken(db, accountId, id);
        await recordAudit(db, {
          accountId,
          actor: actorOf(request),
          action: 'api_token.revoked',
          targetType: 'api_token',
          targetId: id,
        });
        return reply.code(204).send();
      },
    );
  };

  /** Refuse a change that would leave the account without an enabled MSSP Owner. */
  async function keepAnOwner(accountId: string, changingUserId: string): Promise<void> {
    const [row] = await db.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM users
        WHERE account_id = $1 AND built_in_role = 'mssp_owner' AND disabled_at IS NULL AND id <> $2`,
      [accountId, changingUserId],
    );
    const [target] = await db.query<{ built_in_role: string | null }>(
      'SELECT built_in_role FROM users WHERE id = $1',
      [changingUserId],
    );
    if (target?.built_in_role === 'mssp_owner' && row!.count === 0) {
      throw new AppError(
        'conflict',
        'This is the last enabled MSSP Owner of the account; make another user an Owner first.',
      );
    }
  }
}
