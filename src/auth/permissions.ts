/** Every permission a role or API token can hold, with the name the UI and docs show. */
export const PERMISSIONS = {
  'account.read': 'Read the MSSP account',
  'account.manage': 'Change the MSSP account settings',
  'users.manage': 'Manage users, roles and API tokens',
  'customers.read': 'Read customer accounts, domains and domain groups',
  'customers.write': 'Change customer accounts, domains and domain groups',
  'reports.read': 'Read DMARC reports',
  'reports.upload': 'Upload DMARC reports',
  'alerts.read': 'Read alerts',
  'alerts.manage': 'Change alert thresholds',
  'halopsa.access': 'Access HaloPSA Integration',
  'audit.read': 'Read the audit log',
} as const;

export type Permission = keyof typeof PERMISSIONS;

export const ALL_PERMISSIONS = Object.keys(PERMISSIONS) as Permission[];

export function isPermission(value: string): value is Permission {
  return Object.hasOwn(PERMISSIONS, value);
}

export const BUILT_IN_ROLE_KEYS = ['mssp_owner', 'mssp_admin', 'mssp_analyst', 'viewer'] as const;
export type BuiltInRoleKey = (typeof BUILT_IN_ROLE_KEYS)[number];

const READ_ONLY: Permission[] = ['account.read', 'customers.read', 'reports.read', 'alerts.read'];

/**
 * The built-in roles. Owner and Admin hold "Access HaloPSA Integration"; only the Owner changes
 * the account settings, among them the HaloPSA Integration switch.
 */
export const BUILT_IN_ROLES: Record<BuiltInRoleKey, { name: string; permissions: Permission[] }> = {
  mssp_owner: { name: 'MSSP Owner', permissions: ALL_PERMISSIONS },
  mssp_admin: {
    name: 'MSSP Admin',
    permissions: ALL_PERMISSIONS.filter((permission) => permission !== 'account.manage'),
  },
  mssp_analyst: {
    name: 'MSSP Analyst',
    permissions: [...READ_ONLY, 'reports.upload', 'alerts.manage', 'customers.write'],
  },
  viewer: { name: 'Viewer', permissions: READ_ONLY },
};
