import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  startService,
  type TestService,
} from '../../test/support/service.ts';
import { createTestUser, sessionClient } from '../../test/support/sessions.ts';
import { createAccount } from '../platform/accounts.ts';
import { createApiToken, revokeApiToken } from './api-tokens.ts';
import {
  ALL_PERMISSIONS,
  BUILT_IN_ROLES,
  type BuiltInRoleKey,
  type Permission,
} from './permissions.ts';
import type { RouteAccess } from './request-auth.ts';
import { saveCustomRole } from './roles.ts';
import { createSession } from './sessions.ts';

type Call = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: any }>;

interface Caller {
  name: string;
  call: Call;
  /** Whether this caller may pass a route with this access rule. */
  allows(access: RouteAccess, url: string): boolean;
  /** The status a denied request must get. */
  deniedStatus: 401 | 403;
}

const HALOPSA_PREFIX = '/api/v1/integrations/halopsa';

/**
 * The expected access of every API route, written down independently of the routes' own
 * declarations. A route missing here, or declaring something else, fails the test.
 */
const EXPECTED_ACCESS: Record<string, RouteAccess> = {
  'POST /api/v1/auth/sign-in': 'public',
  'POST /api/v1/auth/sign-out': 'authenticated',
  'GET /api/v1/auth/session': 'authenticated',
  'GET /api/v1/permissions': 'authenticated',
  'GET /api/v1/roles': 'users.manage',
  'POST /api/v1/roles': 'users.manage',
  'PUT /api/v1/roles/:id': 'users.manage',
  'DELETE /api/v1/roles/:id': 'users.manage',
  'GET /api/v1/users': 'users.manage',
  'POST /api/v1/users': 'users.manage',
  'PATCH /api/v1/users/:id': 'users.manage',
  'DELETE /api/v1/users/:id': 'users.manage',
  'GET /api/v1/api-tokens': 'users.manage',
  'POST /api/v1/api-tokens': 'users.manage',
  'DELETE /api/v1/api-tokens/:id': 'users.manage',
  'GET /api/v1/auth/oidc/provider': 'users.manage',
  'PUT /api/v1/auth/oidc/provider': 'users.manage',
  'DELETE /api/v1/auth/oidc/provider': 'users.manage',
  'DELETE /api/v1/users/:id/oidc-link': 'users.manage',
  'GET /api/v1/auth/oidc/:accountId/start': 'public',
  'GET /api/v1/auth/oidc/callback': 'public',
  'GET /api/v1/audit-log': 'audit.read',
  'GET /api/v1/account': 'account.read',
  'PATCH /api/v1/account': 'account.manage',
  'GET /api/v1/customers': 'customers.read',
  'POST /api/v1/customers': 'customers.write',
  'GET /api/v1/customers/:id': 'customers.read',
  'PATCH /api/v1/customers/:id': 'customers.write',
  'DELETE /api/v1/customers/:id': 'customers.write',
  'GET /api/v1/customers/:id/domains': 'customers.read',
  'POST /api/v1/customers/:id/domains': 'customers.write',
  'GET /api/v1/domains': 'customers.read',
  'GET /api/v1/domains/:id': 'customers.read',
  'PATCH /api/v1/domains/:id': 'customers.write',
  'DELETE /api/v1/domains/:id': 'customers.write',
  'GET /api/v1/customers/:id/groups': 'customers.read',
  'POST /api/v1/customers/:id/groups': 'customers.write',
  'GET /api/v1/groups/:id': 'customers.read',
  'PUT /api/v1/groups/:id': 'customers.write',
  'DELETE /api/v1/groups/:id': 'customers.write',
  'POST /api/v1/reports': 'reports.upload',
  'GET /api/v1/reports': 'reports.read',
  'GET /api/v1/reports/unknown-domains': 'reports.read',
  'GET /api/v1/reports/:id': 'reports.read',
  'GET /api/v1/failure-reports': 'reports.read',
  'GET /api/v1/failure-reports/unknown-domains': 'reports.read',
  'GET /api/v1/failure-reports/:id': 'reports.read',
  'GET /api/v1/failure-reports/:id/message': 'reports.read',
  'GET /api/v1/rejected-inputs': 'reports.read',
  'GET /api/v1/rejected-inputs/:id': 'reports.read',
  'GET /api/v1/rejected-inputs/:id/content': 'reports.read',
  'GET /api/v1/receiving-address': 'reports.upload',
  'POST /api/v1/receiving-address/rotate': 'account.manage',
  'GET /api/v1/alerts': 'alerts.read',
  'GET /api/v1/alerts/:id': 'alerts.read',
  'GET /api/v1/threshold-rules': 'alerts.read',
  'GET /api/v1/domains/:id/threshold': 'alerts.read',
  'PUT /api/v1/domains/:id/threshold': 'alerts.manage',
  'DELETE /api/v1/domains/:id/threshold': 'alerts.manage',
  'GET /api/v1/groups/:id/threshold': 'alerts.read',
  'PUT /api/v1/groups/:id/threshold': 'alerts.manage',
  'DELETE /api/v1/groups/:id/threshold': 'alerts.manage',
  'GET /api/v1/incidents': 'alerts.read',
  'GET /api/v1/incidents/:id': 'alerts.read',
  'GET /api/v1/domains/:id/dns': 'customers.read',
  'GET /api/v1/domains/:id/dns/history': 'customers.read',
  'PUT /api/v1/domains/:id/dns/selectors': 'customers.write',
  'POST /api/v1/domains/:id/dns/check': 'customers.write',
  'GET /api/v1/dns/settings': 'account.read',
  'PUT /api/v1/dns/settings': 'account.manage',
  'GET /api/v1/integrations/halopsa': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/connection': 'halopsa.access',
  'PUT /api/v1/integrations/halopsa/connection': 'halopsa.access',
  'DELETE /api/v1/integrations/halopsa/connection': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/clients': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/items': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/ticket-types': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/sites': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/users': 'halopsa.access',
  'POST /api/v1/integrations/halopsa/reconcile': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/mappings': 'halopsa.access',
  'PUT /api/v1/integrations/halopsa/mappings': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/ticket-rules/:customerId': 'halopsa.access',
  'PUT /api/v1/integrations/halopsa/ticket-rules/:customerId': 'halopsa.access',
  'POST /api/v1/integrations/halopsa/submit': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/history': 'halopsa.access',
  'GET /api/v1/integrations/halopsa/history/calls': 'halopsa.access',
  'POST /api/v1/integrations/halopsa/alerts/:alertId/retry': 'halopsa.access',
};

for (const engine of DATABASE_ENGINES) {
  describe(`permission matrix on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    const ids: Record<string, string> = {};
    const callers: Caller[] = [];

    async function sessionFor(accountId: string, email: string, roleId: string): Promise<Call> {
      const { user } = await createTestUser(service.app, accountId, email, roleId);
      const session = await createSession(service.app.db, { id: user.id, account_id: accountId });
      return sessionClient(service.url, {
        cookie: `__Host-dmarcdesk_session=${session.token}`,
        csrfToken: session.csrfToken,
      });
    }

    before(async () => {
      database = await openTestDatabase(engine);
      service = await startService(database);
      const { accountId, token } = await createTestAccount(service.app, 'Matrix MSP');
      const owner = apiClient(service.url, token);

      const customer = (await owner('POST', '/customers', { name: 'Matrix Customer' })).body;
      ids.customer = customer.id;
      ids.domain = (
        await owner('POST', `/customers/${customer.id}/domains`, { name: 'matrix.example' })
      ).body.id;
      ids.group = (
        await owner('POST', `/customers/${customer.id}/groups`, {
          name: 'G',
          domainIds: [ids.domain],
        })
      ).body.id;
      ids.role = (
        await saveCustomRole(service.app.db, accountId, {
          name: 'Spare',
          permissions: ['customers.read'],
        })
      ).id;
      ids.user = (
        await createTestUser(service.app, accountId, 'spare@matrix.example', 'viewer')
      ).user.id;
      ids.token = (await createApiToken(service.app.db, accountId, 'spare', ['customers.read'])).id;

      for (const key of Object.keys(BUILT_IN_ROLES) as BuiltInRoleKey[]) {
        const permissions = new Set<Permission>(BUILT_IN_ROLES[key].permissions);
        callers.push({
          name: BUILT_IN_ROLES[key].name,
          call: await sessionFor(accountId, `${key}@matrix.example`, key),
          allows: (access) =>
            access === 'public' || access === 'authenticated' || permissions.has(access),
          deniedStatus: 403,
        });
      }
      for (const permission of ALL_PERMISSIONS) {
        const withIt = await saveCustomRole(service.app.db, accountId, {
          name: `only ${permission}`,
          permissions: [permission],
        });
        const withoutIt = await saveCustomRole(service.app.db, accountId, {
          name: `all but ${permission}`,
          permissions: ALL_PERMISSIONS.filter((other) => other !== permission),
        });
        callers.push({
          name: `custom role with only ${permission}`,
          call: await sessionFor(accountId, `with-${permission}@matrix.example`, withIt.id),
          allows: (access) =>
            access === 'public' || access === 'authenticated' || access === permission,
          deniedStatus: 403,
        });
        callers.push({
          name: `custom role without ${permission}`,
          call: await sessionFor(accountId, `without-${permission}@matrix.example`, withoutIt.id),
          allows: (access) => access !== permission,
          deniedStatus: 403,
        });
      }

      const disabledAccount = await createAccount(service.app.db, {
        name: 'Setting Off MSP',
        halopsaIntegrationEnabled: false,
      });
      callers.push({
        name: 'owner of an account with the HaloPSA setting off',
        call: await sessionFor(disabledAccount.id, 'owner@setting-off.example', 'mssp_owner'),
        allows: (_access, url) => !url.startsWith(HALOPSA_PREFIX),
        deniedStatus: 403,
      });

      callers.push({
        name: 'no session',
        call: sessionClient(service.url, { cookie: '', csrfToken: '' }),
        allows: (access) => access === 'public',
        deniedStatus: 401,
      });
      const revoked = await createApiToken(service.app.db, accountId, 'revoked');
      await revokeApiToken(service.app.db, accountId, revoked.id);
      callers.push({
        name: 'revoked API token',
        call: apiClient(service.url, revoked.token),
        allows: (access) => access === 'public',
        deniedStatus: 401,
      });
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
    });

    function concretePath(url: string): string {
      return url
        .replace('/api/v1', '')
        .replace(/^\/customers\/:id/, `/customers/${ids.customer}`)
        .replace(/^\/domains\/:id/, `/domains/${ids.domain}`)
        .replace(/^\/groups\/:id/, `/groups/${ids.group}`)
        .replace(/^\/roles\/:id/, `/roles/${ids.role}`)
        .replace(/^\/users\/:id/, `/users/${ids.user}`)
        .replace(/^\/api-tokens\/:id/, `/api-tokens/${ids.token}`)
        .replace(':customerId', ids.customer!)
        .replace(/:[a-zA-Z]+/g, randomUUID());
    }

    test('every API route declares the expected access', () => {
      const routes = service.app.server.apiRouteTable;
      const declared = new Map(
        routes.map((route) => [`${route.method} ${route.url}`, route.access]),
      );
      const unlisted = [...declared.keys()].filter((key) => !(key in EXPECTED_ACCESS));
      assert.deepEqual(unlisted, [], 'routes with no row in EXPECTED_ACCESS');
      const gone = Object.keys(EXPECTED_ACCESS).filter((key) => !declared.has(key));
      assert.deepEqual(gone, [], 'rows in EXPECTED_ACCESS for routes that no longer exist');
      for (const [key, access] of declared) assert.equal(access, EXPECTED_ACCESS[key], key);
    });

    test('each caller gets exactly the access its permissions give', async (context) => {
      // Sign-out would end the sessions the later rows use, so it runs last.
      const routes = [...service.app.server.apiRouteTable].sort(
        (a, b) =>
          Number(a.url.endsWith('/auth/sign-out')) - Number(b.url.endsWith('/auth/sign-out')),
      );
      let checks = 0;
      let unexpectedAllows = 0;
      const failures: string[] = [];
      for (const route of routes) {
        for (const caller of callers) {
          const expectedAllowed = caller.allows(
            EXPECTED_ACCESS[`${route.method} ${route.url}`] ?? 'public',
            route.url,
          );
          const body = route.method === 'GET' || route.method === 'DELETE' ? undefined : {};
          const response = await caller.call(route.method, concretePath(route.url), body);
          checks += 1;
          // A 403 that lists `permissions` comes from the rule against granting permissions one
          // lacks, inside a route the caller passed, so it is not a route denial.
          const grantRefused =
            response.status === 403 && response.body?.error?.details?.permissions !== undefined;
          const denied = response.status === 401 || (response.status === 403 && !grantRefused);
          if (expectedAllowed && denied) {
            failures.push(
              `${caller.name}: ${route.method} ${route.url} got ${response.status}, expected access`,
            );
          } else if (!expectedAllowed && response.status !== caller.deniedStatus) {
            unexpectedAllows += denied ? 0 : 1;
            failures.push(
              `${caller.name}: ${route.method} ${route.url} got ${response.status}, expected ${caller.deniedStatus}`,
            );
          }
        }
      }
      context.diagnostic(
        `${routes.length} routes x ${callers.length} callers = ${checks} checks; unexpected allows: ${unexpectedAllows}`,
      );
      assert.deepEqual(failures, []);
      assert.equal(unexpectedAllows, 0);
    });

    test('another account sees none of these rows', async () => {
      const other = apiClient(
        service.url,
        (await createTestAccount(service.app, 'Other MSP')).token,
      );
      for (const path of [
        `/customers/${ids.customer}`,
        `/domains/${ids.domain}`,
        `/groups/${ids.group}`,
        `/roles/${ids.role}`,
        `/users/${ids.user}`,
      ]) {
        const response = await other('GET', path);
        assert.ok(
          // /roles/:id and /users/:id have no GET route, so they return 405 for any id.
          response.status === 404 || (/^\/(roles|users)\//.test(path) && response.status === 405),
          `${path}: ${response.status}`,
        );
      }
      assert.equal(
        (await other('PATCH', `/domains/${ids.domain}`, { status: 'paused' })).status,
        404,
      );
      assert.equal((await other('DELETE', `/api-tokens/${ids.token}`)).status, 404);
    });
  });
}
