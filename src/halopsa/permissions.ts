/** HaloPSA API application permissions (OAuth scopes) this client's calls need. */
export type HaloPermission =
  | 'read:customers'
  | 'edit:customers'
  | 'read:softwarelicensing'
  | 'edit:softwarelicensing'
  | 'read:tickets'
  | 'edit:tickets'
  | 'read:items';

/** Every permission that some call of this client needs. */
export const HALO_PERMISSIONS: readonly HaloPermission[] = [
  'read:customers',
  'edit:customers',
  'read:softwarelicensing',
  'edit:softwarelicensing',
  'read:tickets',
  'edit:tickets',
  'read:items',
];

// Keyed by the first path segment after /api, lower-cased because HaloPSA's routes are
// case-insensitive. HaloPSA does not document which permission covers Site and Users;
// integrations that read them ask for read:customers, and this table follows them.
const PERMISSION_BY_RESOURCE: Record<string, { read: HaloPermission; write?: HaloPermission }> = {
  client: { read: 'read:customers', write: 'edit:customers' },
  site: { read: 'read:customers', write: 'edit:customers' },
  users: { read: 'read:customers', write: 'edit:customers' },
  // This client never writes items or ticket types, so their edit scopes are not listed.
  item: { read: 'read:items' },
  softwarelicence: { read: 'read:softwarelicensing', write: 'edit:softwarelicensing' },
  tickets: { read: 'read:tickets', write: 'edit:tickets' },
  actions: { read: 'read:tickets', write: 'edit:tickets' },
  tickettype: { read: 'read:tickets' },
};

/**
 * Returns the permission a call to `resourcePath` (relative to /api, for example
 * "Tickets/12") needs, or undefined for a resource this client does not know.
 * GET needs the read permission and every other method the edit permission, which is
 * undefined for Item and TicketType.
 */
export function permissionFor(method: string, resourcePath: string): HaloPermission | undefined {
  const resource = resourcePath.replace(/^\/+/, '').split(/[/?]/, 1)[0]?.toLowerCase() ?? '';
  const permissions = PERMISSION_BY_RESOURCE[resource];
  if (!permissions) return undefined;
  return method.toUpperCase() === 'GET' ? permissions.read : permissions.write;
}

/** Returns the sentence that tells where in HaloPSA a missing permission is granted. */
export function describePermissionLocation(permission: HaloPermission): string {
  return (
    `Add ${permission} to the API application's permissions in HaloPSA ` +
    '(Configuration > Integrations > Halo API > Applications), and check that the role of the ' +
    'agent the application logs in as allows the same feature.'
  );
}
