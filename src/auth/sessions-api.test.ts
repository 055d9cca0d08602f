import assert from 'node:assert/strict';
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
import { createTestUser, sessionClient, signIn } from '../../test/support/sessions.ts';
import type { AppError } from '../errors/app-error.ts';
import { LOCKOUT_AFTER_FAILURES, SignInService } from './sign-in.ts';

for (const engine of DATABASE_ENGINES) {
  describe(`sign-in and sessions on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let accountId: string;
    let ownerToken: string;

    before(async () => {
      database = await openTestDatabase(engine);
      service = await startService(database);
      ({ accountId, token: ownerToken } = await createTestAccount(service.app));
      await createTestUser(service.app, accountId, 'owner@northwind.example', 'mssp_owner');
      await createTestUser(service.app, accountId, 'admin@northwind.example', 'mssp_admin');
      await createTestUser(service.app, accountId, 'viewer@northwind.example', 'viewer');
      await createTestUser(service.app, accountId, 'locked@northwind.example', 'viewer');
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
    });

    test('sets a __Host- session cookie with safe attributes', async () => {
      const session = await signIn(
        service.url,
        'owner@northwind.example',
        'correct horse battery staple',
      );
      const attributes = session.setCookie.split(';').map((part) => part.trim().toLowerCase());
      assert.match(session.setCookie, /^__Host-dmarcdesk_session=/);
      assert.ok(attributes.includes('httponly'));
      assert.ok(attributes.includes('secure'));
      assert.ok(attributes.includes('samesite=strict'));
      assert.ok(attributes.includes('path=/'));
      assert.equal(
        attributes.some((part) => part.startsWith('domain=')),
        false,
      );
    });

    test('wrong password and unknown email read the same', async () => {
      const attempt = async (email: string, password: string) => {
        const response = await fetch(`${service.url}/api/v1/auth/sign-in`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email, password }),
        });
        return { status: response.status, body: await response.json() };
      };
      const wrong = await attempt('owner@northwind.example', 'not the password');
      const unknown = await attempt('nobody@northwind.example', 'not the password');
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, 401);
      assert.equal(wrong.body.error.message, unknown.body.error.message);
    });

    test('locks a user after repeated failures', async () => {
      for (let attempt = 0; attempt < LOCKOUT_AFTER_FAILURES; attempt += 1) {
        await fetch(`${service.url}/api/v1/auth/sign-in`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'locked@northwind.example', password: 'wrong password' }),
        });
      }
      const response = await fetch(`${service.url}/api/v1/auth/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: 'locked@northwind.example',
          password: 'correct horse battery staple',
        }),
      });
      assert.equal(response.status, 429);
      assert.match((await response.json()).error.message, /locked/);
    });

    test('an unknown email locks like a user', async () => {
      // A service of its own, so that these attempts stay under the per-address limit.
      const service2 = new SignInService(service.app.db);
      const attempt = (email: string, password: string) =>
        service2.signIn({ email, password, clientAddress: '192.0.2.77' }).then(
          () => null,
          (error: unknown) => error as AppError,
        );
      for (let count = 0; count < LOCKOUT_AFTER_FAILURES; count += 1) {
        const failed = await attempt('ghost@northwind.example', 'any password');
        assert.equal(failed?.code, 'unauthenticated');
      }
      // The user the previous test locked and the address without a user read the same.
      const unknown = await attempt('ghost@northwind.example', 'any password');
      const locked = await attempt('locked@northwind.example', 'correct horse battery staple');
      assert.equal(unknown?.code, 'too_many_requests');
      assert.equal(unknown?.message, locked?.message);
      // Another unknown address is not locked by the first one's failures.
      assert.equal((await attempt('ghost2@northwind.example', 'x'))?.code, 'unauthenticated');
    });

    test('state changes need the CSRF token', async () => {
      const session = await signIn(
        service.url,
        'admin@northwind.example',
        'correct horse battery staple',
      );
      const call = sessionClient(service.url, session);
      assert.equal((await call('GET', '/customers')).status, 200);

      const withoutToken = await call(
        'POST',
        '/customers',
        { name: 'No Token Ltd' },
        { csrf: false },
      );
      assert.equal(withoutToken.status, 403);
      assert.match(withoutToken.body.error.message, /CSRF/);

      const wrongToken = await call(
        'POST',
        '/customers',
        { name: 'Wrong Token Ltd' },
        { csrf: false, headers: { 'x-csrf-token': 'x'.repeat(43) } },
      );
      assert.equal(wrongToken.status, 403);

      assert.equal((await call('POST', '/customers', { name: 'With Token Ltd' })).status, 201);
    });

    test('cross-origin form posts are rejected', async () => {
      const session = await signIn(
        service.url,
        'admin@northwind.example',
        'correct horse battery staple',
      );
      const call = sessionClient(service.url, session);
      const form = await call('POST', '/customers', 'name=Forged', {
        csrf: false,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'sec-fetch-site': 'cross-site',
          origin: 'https://evil.example',
        },
      });
      assert.equal(form.status, 403);
      const crossSite = await call(
        'POST',
        '/customers',
        { name: 'Forged' },
        { headers: { 'sec-fetch-site': 'cross-site' } },
      );
      assert.equal(crossSite.status, 403);
      const list = (await call('GET', '/customers')).body.customers.map(
        (customer: { name: string }) => customer.name,
      );
      assert.equal(list.includes('Forged'), false);
    });

    test('sign-out ends the session for replays', async () => {
      const session = await signIn(
        service.url,
        'viewer@northwind.example',
        'correct horse battery staple',
      );
      const call = sessionClient(service.url, session);
      assert.equal((await call('GET', '/auth/session')).status, 200);
      assert.equal((await call('POST', '/auth/sign-out')).status, 204);
      const replay = await call('GET', '/auth/session');
      assert.equal(replay.status, 401);
      assert.match(replay.body.error.message, /session has ended/);
    });

    test('sign-in replaces a planted session', async () => {
      const planted = await signIn(
        service.url,
        'viewer@northwind.example',
        'correct horse battery staple',
      );
      const response = await fetch(`${service.url}/api/v1/auth/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: planted.cookie },
        body: JSON.stringify({
          email: 'admin@northwind.example',
          password: 'correct horse battery staple',
        }),
      });
      assert.equal(response.status, 200);
      const fresh = (response.headers.get('set-cookie') ?? '').split(';')[0]!;
      assert.notEqual(fresh, planted.cookie);
      assert.equal((await sessionClient(service.url, planted)('GET', '/auth/session')).status, 401);
      const freshSession = await sessionClient(service.url, { cookie: fresh, csrfToken: '' })(
        'GET',
        '/auth/session',
      );
      assert.equal(freshSession.body.user.email, 'admin@northwind.example');
    });

    test('nobody grants a permission they lack', async () => {
      const session = await signIn(
        service.url,
        'admin@northwind.example',
        'correct horse battery staple',
      );
      const call = sessionClient(service.url, session);
      const token = await call('POST', '/api-tokens', {
        name: 'escalate',
        permissions: ['account.manage'],
      });
      assert.equal(token.status, 403);
      assert.match(token.body.error.message, /account\.manage/);
      const owner = await call('POST', '/users', {
        email: 'new-owner@northwind.example',
        displayName: 'New',
        roleId: 'mssp_owner',
      });
      assert.equal(owner.status, 403);
      const analyst = await call('POST', '/users', {
        email: 'analyst@northwind.example',
        displayName: 'Ana',
        roleId: 'mssp_analyst',
        password: 'long enough password',
      });
      assert.equal(analyst.status, 201);
    });

    test('the last owner cannot be removed', async () => {
      const api = apiClient(service.url, ownerToken);
      const users = (await api('GET', '/users')).body.users;
      const owner = users.find(
        (user: { email: string }) => user.email === 'owner@northwind.example',
      );
      const demote = await api('PATCH', `/users/${owner.id}`, { roleId: 'viewer' });
      assert.equal(demote.status, 409);
      assert.equal((await api('DELETE', `/users/${owner.id}`)).status, 409);
    });

    test('revoked API tokens stop working', async () => {
      const api = apiClient(service.url, ownerToken);
      const created = (
        await api('POST', '/api-tokens', { name: 'short-lived', permissions: ['customers.read'] })
      ).body;
      const scoped = apiClient(service.url, created.token);
      assert.equal((await scoped('GET', '/customers')).status, 200);
      assert.equal((await scoped('POST', '/customers', { name: 'Scoped' })).status, 403);
      assert.equal((await api('DELETE', `/api-tokens/${created.id}`)).status, 204);
      assert.equal((await scoped('GET', '/customers')).status, 401);
    });

    test('records user changes in the audit log', async () => {
      const api = apiClient(service.url, ownerToken);
      const entries = (await api('GET', '/audit-log?action=user.created')).body.entries;
      assert.ok(entries.length >= 1);
      assert.equal(entries[0].actor.type, 'user');
      assert.equal(JSON.stringify(entries).includes('password'), false);
    });
  });
}
