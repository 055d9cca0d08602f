import type { Queryable } from '../db/database.ts';
import { AppError, notFound } from '../errors/app-error.ts';
import { hashPassword, MIN_PASSWORD_LENGTH } from './passwords.ts';
import type { Permission } from './permissions.ts';
import { getRole, isBuiltInRoleKey, type Role } from './roles.ts';

export interface User {
  id: string;
  accountId: string;
  email: string;
  displayName: string;
  role: Role;
  hasPassword: boolean;
  disabled: boolean;
  createdAt: Date;
}

export interface UserRow {
  id: string;
  account_id: string;
  email: string;
  display_name: string;
  password_hash: string | null;
  built_in_role: string | null;
  custom_role_id: string | null;
  failed_sign_ins: number;
  locked_until: Date | null;
  disabled_at: Date | null;
  created_at: Date;
}

export async function toUser(db: Queryable, row: UserRow): Promise<User> {
  return {
    id: row.id,
    accountId: row.account_id,
    email: row.email,
    displayName: row.display_name,
    role: await getRole(db, row.account_id, row.built_in_role ?? row.custom_role_id!),
    hasPassword: row.password_hash !== null,
    disabled: row.disabled_at !== null,
    createdAt: row.created_at,
  };
}

/** Return the permissions a user row holds through its role. */
export async function permissionsOfUser(db: Queryable, row: UserRow): Promise<Permission[]> {
  const role = await getRole(db, row.account_id, row.built_in_role ?? row.custom_role_id!);
  return role.permissions;
}

export async function listUsers(db: Queryable, accountId: string): Promise<User[]> {
  const rows = await db.query<UserRow>('SELECT * FROM users WHERE account_id = $1 ORDER BY email', [
    accountId,
  ]);
  return Promise.all(rows.map((row) => toUser(db, row)));
}

export async function getUser(db: Queryable, accountId: string, userId: string): Promise<User> {
  const [row] = await db.query<UserRow>('SELECT * FROM users WHERE account_id = $1 AND id = $2', [
    accountId,
    userId,
  ]);
  if (!row) throw notFound('user', userId);
  return toUser(db, row);
}

export function checkPasswordStrength(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new AppError(
      'validation_failed',
      `Field "password": must be at least ${MIN_PASSWORD_LENGTH} characters long.`,
      {
        field: 'password',
      },
    );
  }
}

export async function createUser(
  db: Queryable,
  accountId: string,
  input: { email: string; displayName: string; password?: string | undefined; roleId: string },
): Promise<User> {
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(input.email)) {
    throw new AppError(
      'validation_failed',
      `Field "email": "${input.email}" is not an email address.`,
      { field: 'email' },
    );
  }
  await getRole(db, accountId, input.roleId);
  if (input.password !== undefined) checkPasswordStrength(input.password);
  const passwordHash = input.password === undefined ? null : await hashPassword(input.password);
  const builtIn = isBuiltInRoleKey(input.roleId) ? input.roleId : null;
  try {
    const [row] = await db.query<UserRow>(
      `INSERT INTO users (account_id, email, display_name, password_hash, built_in_role, custom_role_id)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [
        accountId,
        input.email.toLowerCase(),
        input.displayName,
        passwordHash,
        builtIn,
        builtIn ? null : input.roleId,
      ],
    );
    return toUser(db, row!);
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new AppError(
        'conflict',
        `A user with the email address ${input.email} already exists.`,
        { field: 'email', cause: error },
      );
    }
    throw error;
  }
}

export async function updateUser(
  db: Queryable,
  accountId: string,
  userId: string,
  changes: {
    displayName?: string | undefined;
    roleId?: string | undefined;
    disabled?: boolean | undefined;
    password?: string | undefined;
  },
): Promise<User> {
  if (changes.roleId !== undefined) await getRole(db, accountId, changes.roleId);
  if (changes.password !== undefined) checkPasswordStrength(changes.password);
  const builtIn =
    changes.roleId === undefined
      ? undefined
      : isBuiltInRoleKey(changes.roleId)
        ? changes.roleId
        : null;
  const [row] = await db.query<UserRow>(
    `UPDATE users SET
        display_name = COALESCE($3, display_name),
        built_in_role = CASE WHEN $4::boolean THEN $5 ELSE built_in_role END,
        custom_role_id = CASE WHEN $4::boolean THEN $6::uuid ELSE custom_role_id END,
        disabled_at = CASE WHEN $7::boolean IS NULL THEN disabled_at WHEN $7 THEN COALESCE(disabled_at, now()) ELSE NULL END,
        password_hash = COALESCE($8, password_hash),
        failed_sign_ins = CASE WHEN $8 IS NULL THEN failed_sign_ins ELSE 0 END,
        locked_until = CASE WHEN $8 IS NULL THEN locked_until ELSE NULL END
      WHERE account_id = $1 AND id = $2 RETURNING *`,
    [
      accountId,
      userId,
      changes.displayName ?? null,
      changes.roleId !== undefined,
      builtIn ?? null,
      builtIn === null ? changes.roleId : null,
      changes.disabled ?? null,
      changes.password === undefined ? null : await hashPassword(changes.password),
    ],
  );
  if (!row) throw notFound('user', userId);
  // A disabled user, or one whose password changed, keeps no open session.
  if (changes.disabled || changes.password !== undefined) {
    await db.query('DELETE FROM sessions WHERE user_id = $1', [userId]);
  }
  return toUser(db, row);
}

export async function deleteUser(db: Queryable, accountId: string, userId: string): Promise<void> {
  const rows = await db.query('DELETE FROM users WHERE account_id = $1 AND id = $2 RETURNING id', [
    accountId,
    userId,
  ]);
  if (rows.length === 0) throw notFound('user', userId);
}
