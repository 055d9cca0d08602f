import type { Queryable } from '../db/database.ts';
import { AppError, notFound } from '../errors/app-error.ts';
import {
  BUILT_IN_ROLE_KEYS,
  BUILT_IN_ROLES,
  type BuiltInRoleKey,
  type Permission,
} from './permissions.ts';

/** A role as the API shows it: built-in roles have their key as id. */
export interface Role {
  id: string;
  name: string;
  builtIn: boolean;
  permissions: Permission[];
}

export function builtInRole(key: BuiltInRoleKey): Role {
  return {
    id: key,
    name: BUILT_IN_ROLES[key].name,
    builtIn: true,
    permissions: [...BUILT_IN_ROLES[key].permissions],
  };
}

export function isBuiltInRoleKey(value: string): value is BuiltInRoleKey {
  return (BUILT_IN_ROLE_KEYS as readonly string[]).includes(value);
}

interface RoleRow {
  id: string;
  name: string;
  permissions: Permission[];
}

const toRole = (row: RoleRow): Role => ({
  id: row.id,
  name: row.name,
  builtIn: false,
  permissions: row.permissions,
});

export async function listRoles(db: Queryable, accountId: string): Promise<Role[]> {
  const rows = await db.query<RoleRow>(
    'SELECT id, name, permissions FROM roles WHERE account_id = $1 ORDER BY lower(name)',
    [accountId],
  );
  return [...BUILT_IN_ROLE_KEYS.map(builtInRole), ...rows.map(toRole)];
}

/** Find a role by id: a built-in key or a custom role of the account. */
export async function getRole(db: Queryable, accountId: string, roleId: string): Promise<Role> {
  if (isBuiltInRoleKey(roleId)) return builtInRole(roleId);
  if (!/^[0-9a-f-]{36}$/i.test(roleId)) throw notFound('role', roleId);
  const [row] = await db.query<RoleRow>(
    'SELECT id, name, permissions FROM roles WHERE account_id = $1 AND id = $2',
    [accountId, roleId],
  );
  if (!row) throw notFound('role', roleId);
  return toRole(row);
}

export async function saveCustomRole(
  db: Queryable,
  accountId: string,
  input: { id?: string; name: string; permissions: Permission[] },
): Promise<Role> {
  const permissions = [...new Set(input.permissions)].sort();
  try {
    if (input.id) {
      const [row] = await db.query<RoleRow>(
        'UPDATE roles SET name = $3, permissions = $4 WHERE account_id = $1 AND id = $2 RETURNING id, name, permissions',
        [accountId, input.id, input.name, permissions],
      );
      if (!row) throw notFound('role', input.id);
      return toRole(row);
    }
    const [row] = await db.query<RoleRow>(
      'INSERT INTO roles (account_id, name, permissions) VALUES ($1, $2, $3) RETURNING id, name, permissions',
      [accountId, input.name, permissions],
    );
    return toRole(row!);
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new AppError('conflict', `A role named "${input.name}" already exists.`, {
        field: 'name',
        cause: error,
      });
    }
    throw error;
  }
}

export async function deleteCustomRole(
  db: Queryable,
  accountId: string,
  roleId: string,
): Promise<void> {
  const [inUse] = await db.query<{ count: number }>(
    'SELECT count(*)::int AS count FROM users WHERE account_id = $1 AND custom_role_id = $2',
    [accountId, roleId],
  );
  if (inUse && inUse.count > 0) {
    throw new AppError(
      'conflict',
      `The role is assigned to ${inUse.count} user(s); give them another role first.`,
    );
  }
  const rows = await db.query('DELETE FROM roles WHERE account_id = $1 AND id = $2 RETURNING id', [
    accountId,
    roleId,
  ]);
  if (rows.length === 0) throw notFound('role', roleId);
}
