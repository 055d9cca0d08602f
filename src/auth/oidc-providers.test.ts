import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { MAX_PROVIDER_RESPONSE_BYTES } from './oidc-http.ts';
import { checkIssuerUrl, isInsecureIssuerAllowed, OIDC_CALLBACK_PATH } from './oidc-providers.ts';
import { startTestIdentityProvider, type TestIdentityProvider } from './oidc-test-provider.ts';
import { saveCustomRole } from './roles.ts';
import { createSession } from './sessions.ts';

const REDIRECT_URI = `http://dmarcdesk.test${OIDC_CALLBACK_PATH}`;

describe('issuer URL policy', () => {
  test('accepts the issuers of Google and Entra ID', () => {
    assert.equal(
      checkIssuerUrl('https://accounts.google.com', []).href,
      'https://accounts.google.com/',
    );
    const entra = 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0';
    assert.equal(checkIssuerUrl(entra, []).href, entra);
  });

  test('rejects unsafe issuer URLs', () => {
    const cases: [string, RegExp][] = [
      ['not a url', /is not a URL/],
      ['ftp://idp.example.com', /must start with https:\/\//],
      ['http://idp.example.com', /must start with https:\/\/.*DMARCDESK_OIDC_ALLOWED_HOSTS/],
      ['https://10.0.0.5', /points at an IP address/],
      ['https://[::1]', /points at an IP address/],
      ['https://localhost', /local name/],
      ['https://idp.localhost', /local name/],
      ['https://intranet', /local name/],
      ['https://idp.example.com:444', /uses port 444/],
      ['https://idp.example.com/?tenant=a', /must not contain a user name, password, query/],
      ['https://idp.example.com/#a', /must not contain/],
      ['https://user:pass@idp.example.com', /must not contain/],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => checkIssuerUrl(input, []), message, input);
    }
  });

  test('exempts a listed host:port', () => {
    assert.equal(
      checkIssuerUrl('http://127.0.0.1:9000', ['127.0.0.1:9000']).href,
      'http://127.0.0.1:9000/',
    );
    assert.throws(() => checkIssuerUrl('http://127.0.0.1:9001', ['127.0.0.1:9000']));
    assert.equal(
      isInsecureIssuerAllowed(new URL('http://127.0.0.1:9000'), ['127.0.0.1:9000']),
      true,
    );
    assert.equal(
      isInsecureIssuerAllowed(new URL('http://127.0.0.1:9001'), ['127.0.0.1:9000']),
      false,
    );
    assert.equal(
      isInsecureIssuerAllowed(new URL('https://127.0.0.1:9000'), ['127.0.0.1:9000']),
      false,
    );
  });
});

/** Listen on 127.0.0.1 port 0 and return the server with its port. */
async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

for (const engine of DATABASE_ENGINES) {
  describe(`OpenID Connect provider settings on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let idp: TestIdentityProvider;
    let accountId: string;
    let owner: ReturnType<typeof apiClient>;
    let admin: ReturnType<typeof sessionClient>;
    /** An issuer on an allowed port whose token endpoint is on a port that is not allowed. */
    let rogue: Server;
    let roguePort: number;
    let trap: Server;
    let trapPort: number;
    let trapRequests = 0;
    let closedPort: number;

    const body = (changes: Record<string, unknown> = {}) => ({
      issuer: idp.issuer,
      clientId: idp.clientId,
      clientSecret: idp.clientSecret,
      allowedDomains: ['contoso.example'],
      ...changes,
    });

    before(async () => {
      idp = await startTestIdentityProvider({ redirectUri: REDIRECT_URI });

      trap = createServer((_request, response) => {
        trapRequests += 1;
        response.end('{}');
      });
      trapPort = await listen(trap);
      rogue = createServer((request, response) => {
        if (request.url === '/huge/.well-known/openid-configuration') {
          response.setHeader('content-type', 'application/json');
          response.end(`{"issuer":"x","padding":"${'a'.repeat(MAX_PROVIDER_RESPONSE_BYTES)}"}`);
          return;
        }
        const issuer = `http://127.0.0.1:${roguePort}`;
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({
            issuer,
            authorization_endpoint: `${issuer}/auth`,
            token_endpoint: `http://127.0.0.1:${trapPort}/token`,
            jwks_uri: `${issuer}/jwks`,
            response_types_supported: ['code'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
          }),
        );
      });
      roguePort = await listen(rogue);
      const unused = createServer();
      closedPort = await listen(unused);
      await close(unused);

      database = await openTestDatabase(engine);
      service = await startService(database, {
        environment: {
          DMARCDESK_OIDC_ALLOWED_HOSTS: [
            idp.hostPort,
            `127.0.0.1:${roguePort}`,
            `127.0.0.1:${closedPort}`,
          ].join(','),
        },
      });
      const account = await createTestAccount(service.app, 'Settings MSP');
      accountId = account.accountId;
      owner = apiClient(service.url, account.token);
      const { user } = await createTestUser(
        service.app,
        accountId,
        'admin@contoso.example',
        'mssp_admin',
      );
      const session = await createSession(service.app.db, { id: user.id, account_id: accountId });
      admin = sessionClient(service.url, {
        cookie: `__Host-dmarcdesk_session=${session.token}`,
        csrfToken: session.csrfToken,
      });
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
      await idp?.stop();
      if (rogue) await close(rogue);
      if (trap) await close(trap);
    });

    test('first setup needs the client secret', async () => {
      const response = await owner('PUT', '/auth/oidc/provider', body({ clientSecret: undefined }));
      assert.equal(response.status, 400);
      assert.equal(response.body.error.field, 'clientSecret');
      assert.equal((await owner('GET', '/auth/oidc/provider')).status, 404);
    });

    test('invalid settings are rejected', async () => {
      const cases: [Record<string, unknown>, string, RegExp][] = [
        [{ issuer: 'http://127.0.0.1:1' }, 'issuer', /DMARCDESK_OIDC_ALLOWED_HOSTS/],
        [{ allowedDomains: [] }, 'allowedDomains', /must list at least one item/],
        [{ allowedDomains: ['not a domain'] }, 'allowedDomains.0', /must be a domain/],
        [{ provisionRoleId: 'no-such-role' }, 'provisionRoleId', /no role "no-such-role"/],
        [{ clientSecret: '' }, 'clientSecret', /./],
        [{ extra: true }, 'extra', /is not a known field/],
      ];
      for (const [changes, field, message] of cases) {
        const response = await owner('PUT', '/auth/oidc/provider', body(changes));
        assert.equal(response.status, 400, JSON.stringify(changes));
        assert.equal(response.body.error.field, field, JSON.stringify(changes));
        assert.match(response.body.error.message, message, JSON.stringify(changes));
      }
    });

    test('unreachable issuer is reported', async () => {
      const response = await owner(
        'PUT',
        '/auth/oidc/provider',
        body({ issuer: `http://127.0.0.1:${closedPort}` }),
      );
      assert.equal(response.status, 400);
      assert.equal(response.body.error.field, 'issuer');
      assert.match(response.body.error.message, /could not be reached \(ECONNREFUSED\)/);
    });

    test('oversized discovery document is rejected', async () => {
      const response = await owner(
        'PUT',
        '/auth/oidc/provider',
        body({ issuer: `http://127.0.0.1:${roguePort}/huge` }),
      );
      assert.equal(response.status, 400);
      assert.match(response.body.error.message, /larger than 1048576 bytes/);
    });

    test('saves, returns and audits settings without the secret', async () => {
      const saved = await owner(
        'PUT',
        '/auth/oidc/provider',
        body({ allowedDomains: ['Contoso.example', 'contoso.example', 'fabrikam.example'] }),
      );
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      const view = (await owner('GET', '/auth/oidc/provider')).body;
      assert.deepEqual(view, saved.body);
      assert.equal(view.issuer, idp.issuer);
      assert.equal(view.clientId, idp.clientId);
      assert.deepEqual(view.allowedDomains, ['contoso.example', 'fabrikam.example']);
      assert.equal(view.provisionUsers, false);
      assert.equal(view.provisionRoleId, 'viewer');
      assert.equal(view.redirectUri, REDIRECT_URI);
      assert.equal(view.signInUrl, `http://dmarcdesk.test/api/v1/auth/oidc/${accountId}/start`);
      assert.equal(JSON.stringify(view).includes(idp.clientSecret), false);

      const audit = await owner('GET', '/audit-log?action=oidc_provider.created');
      assert.equal(audit.body.entries.length, 1);
      assert.equal(audit.body.entries[0].after.clientSecretChanged, true);
      assert.equal(JSON.stringify(audit.body).includes(idp.clientSecret), false);
    });

    test('omitted secret keeps the stored one', async () => {
      const read = async () =>
        Buffer.from(
          (
            await service.app.db.query<{ client_secret_encrypted: Uint8Array }>(
              'SELECT client_secret_encrypted FROM oidc_providers WHERE account_id = $1',
              [accountId],
            )
          )[0]!.client_secret_encrypted,
        );
      const before = await read();
      const response = await owner('PUT', '/auth/oidc/provider', body({ clientSecret: undefined }));
      assert.equal(response.status, 200, JSON.stringify(response.body));
      assert.deepEqual(await read(), before);
      const audit = await owner('GET', '/audit-log?action=oidc_provider.updated');
      assert.equal(audit.body.entries[0].after.clientSecretChanged, false);
    });

    test('only an owner may give new users more than Viewer', async () => {
      const denied = await admin(
        'PUT',
        '/auth/oidc/provider',
        body({ provisionUsers: true, provisionRoleId: 'mssp_analyst' }),
      );
      assert.equal(denied.status, 403);
      assert.match(denied.body.error.message, /Only an MSSP Owner/);

      const allowed = await admin(
        'PUT',
        '/auth/oidc/provider',
        body({ provisionUsers: true, provisionRoleId: 'viewer' }),
      );
      assert.equal(allowed.status, 200, JSON.stringify(allowed.body));

      const byOwner = await owner(
        'PUT',
        '/auth/oidc/provider',
        body({ provisionUsers: true, provisionRoleId: 'mssp_analyst' }),
      );
      assert.equal(byOwner.status, 200, JSON.stringify(byOwner.body));
      assert.equal(byOwner.body.provisionRoleId, 'mssp_analyst');
    });

    test('role that grew past Viewer stops provisioning', async () => {
      const role = await saveCustomRole(service.app.db, accountId, {
        name: 'Readers',
        permissions: ['customers.read', 'reports.read'],
      });
      const saved = await admin(
        'PUT',
        '/auth/oidc/provider',
        body({ provisionUsers: true, provisionRoleId: role.id }),
      );
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      await saveCustomRole(service.app.db, accountId, {
        id: role.id,
        name: 'Readers',
        permissions: ['customers.read', 'customers.write', 'reports.read'],
      });

      idp.setPerson('new-sub', { email: 'new@contoso.example', email_verified: true });
      const started = await fetch(`${service.url}/api/v1/auth/oidc/${accountId}/start`, {
        redirect: 'manual',
      });
      const cookie = started.headers.getSetCookie()[0]!.split(';')[0]!;
      const back = await idp.authorize(started.headers.get('location')!, 'new-sub');
      const result = await fetch(`${service.url}/api/v1/auth/oidc/callback${back.search}`, {
        redirect: 'manual',
        headers: { cookie },
      });
      assert.equal(result.status, 401);
      assert.match(
        ((await result.json()) as any).error.message,
        /now grants more than the Viewer role/,
      );
      const created = await service.app.db.query('SELECT 1 FROM users WHERE email = $1', [
        'new@contoso.example',
      ]);
      assert.equal(created.length, 0);
    });

    test('secret copied to another account does not decrypt', async () => {
      const other = await createTestAccount(service.app, 'Copy MSP');
      const put = await apiClient(service.url, other.token)(
        'PUT',
        '/auth/oidc/provider',
        body({ clientSecret: 'another secret' }),
      );
      assert.equal(put.status, 200, JSON.stringify(put.body));
      await service.app.db.query(
        `UPDATE oidc_providers SET client_secret_encrypted =
           (SELECT client_secret_encrypted FROM oidc_providers WHERE account_id = $1)
          WHERE account_id = $2`,
        [accountId, other.accountId],
      );
      await createTestUser(service.app, other.accountId, 'copy@contoso.example', 'viewer');
      idp.setPerson('copy-sub', { email: 'copy@contoso.example', email_verified: true });

      const started = await fetch(`${service.url}/api/v1/auth/oidc/${other.accountId}/start`, {
        redirect: 'manual',
      });
      const cookie = started.headers.getSetCookie()[0]!.split(';')[0]!;
      const back = await idp.authorize(started.headers.get('location')!, 'copy-sub');
      const result = await fetch(`${service.url}/api/v1/auth/oidc/callback${back.search}`, {
        redirect: 'manual',
        headers: { cookie },
      });
      assert.equal(result.status, 500);
      assert.match(((await result.json()) as any).error.message, /could not be decrypted/);
    });

    test('token endpoint on a port not allowed is never called', async () => {
      const other = await createTestAccount(service.app, 'Rogue MSP');
      const put = await apiClient(service.url, other.token)(
        'PUT',
        '/auth/oidc/provider',
        body({ issuer: `http://127.0.0.1:${roguePort}` }),
      );
      assert.equal(put.status, 200, JSON.stringify(put.body));

      const started = await fetch(`${service.url}/api/v1/auth/oidc/${other.accountId}/start`, {
        redirect: 'manual',
      });
      assert.equal(started.status, 303);
      const state = new URL(started.headers.get('location')!).searchParams.get('state')!;
      const cookie = started.headers.getSetCookie()[0]!.split(';')[0]!;
      const query = new URLSearchParams({ code: 'any-code', state });
      const result = await fetch(`${service.url}/api/v1/auth/oidc/callback?${query}`, {
        redirect: 'manual',
        headers: { cookie },
      });
      assert.equal(result.status, 401);
      assert.match(((await result.json()) as any).error.message, /could not be reached/);
      assert.equal(trapRequests, 0);
    });

    test('delete removes the settings and is audited', async () => {
      const removed = await owner('DELETE', '/auth/oidc/provider');
      assert.equal(removed.status, 204);
      assert.equal((await owner('GET', '/auth/oidc/provider')).status, 404);
      assert.equal((await owner('DELETE', '/auth/oidc/provider')).status, 404);
      const start = await fetch(`${service.url}/api/v1/auth/oidc/${accountId}/start`, {
        redirect: 'manual',
      });
      assert.equal(start.status, 404);
      const audit = await owner('GET', '/audit-log?action=oidc_provider.deleted');
      assert.equal(audit.body.entries.length, 1);
      assert.equal(audit.body.entries[0].before.issuer, idp.issuer);
    });
  });
}
