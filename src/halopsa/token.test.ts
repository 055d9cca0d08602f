import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { HaloPsaError } from './errors.ts';
import type { FakeHalo, TestServer } from './test-support.ts';
import {
  createTestClient,
  listPage,
  startFakeHalo,
  startServer,
  TEST_CLIENT_ID,
  TEST_SECRET,
  TEST_TOKEN_PREFIX,
} from './test-support.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function fakeHalo(options: Parameters<typeof startFakeHalo>[0]): Promise<FakeHalo> {
  const halo = await startFakeHalo(options);
  cleanups.push(() => halo.server.close());
  return halo;
}

async function server(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const started = await startServer(handler);
  cleanups.push(() => started.close());
  return started;
}

const clientRoutes = {
  'GET /api/client': () => ({ json: listPage('clients', [{ id: 1, name: 'Acme' }], 1) }),
};

describe('token fetch', () => {
  test('posts client credentials as a form', async () => {
    const halo = await fakeHalo({ routes: clientRoutes });
    const { client } = createTestClient(halo.server.url);

    const token = await client.getAccessToken();

    assert.equal(token, `${TEST_TOKEN_PREFIX}1`);
    const [request] = halo.tokenRequests();
    assert.ok(request);
    assert.equal(request.method, 'POST');
    assert.equal(request.url, '/auth/token');
    assert.match(String(request.headers['content-type']), /^application\/x-www-form-urlencoded/);
    const form = new URLSearchParams(request.body);
    assert.equal(form.get('grant_type'), 'client_credentials');
    assert.equal(form.get('client_id'), TEST_CLIENT_ID);
    assert.equal(form.get('client_secret'), TEST_SECRET);
    assert.equal(form.get('scope'), 'all');
  });

  test('sends tenant as a query parameter', async () => {
    const halo = await fakeHalo({ routes: clientRoutes });
    const { client } = createTestClient(halo.server.url, { tenant: 'acme trial' });

    await client.getAccessToken();

    const [request] = halo.tokenRequests();
    assert.equal(request?.query.get('tenant'), 'acme trial');
    assert.equal(new URLSearchParams(request?.body).get('tenant'), null);
  });

  test('uses authUrl and a custom scope', async () => {
    const auth = await server((request) => {
      if (request.method === 'POST' && request.path === '/token') {
        return {
          json: { access_token: 'other-host-token', token_type: 'Bearer', expires_in: 600 },
        };
      }
      return { status: 404 };
    });
    const api = await server((request) =>
      request.headers.authorization === 'Bearer other-host-token'
        ? { json: listPage('clients', [], 0) }
        : { status: 401 },
    );
    const { client } = createTestClient(api.url, {
      authUrl: `${auth.url}/`,
      tenant: 'acme',
      scope: 'read:customers read:tickets',
    });

    const result = await client.checkConnection();

    assert.equal(result.clientCount, 0);
    assert.equal(auth.requests[0]?.url, '/token?tenant=acme');
    assert.equal(
      new URLSearchParams(auth.requests[0]?.body).get('scope'),
      'read:customers read:tickets',
    );
    assert.equal(api.requests.length, 1);
  });

  test('caches one token for many calls', async () => {
    const halo = await fakeHalo({ routes: clientRoutes });
    const { client } = createTestClient(halo.server.url);

    for (let call = 0; call < 5; call += 1) await client.checkConnection();

    assert.equal(halo.tokenRequests().length, 1);
    assert.equal(halo.apiRequests().length, 5);
    for (const request of halo.apiRequests()) {
      assert.equal(request.headers.authorization, `Bearer ${TEST_TOKEN_PREFIX}1`);
    }
  });

  test('concurrent callers share one token request', async () => {
    let releaseToken: () => void = () => {};
    const tokenGate = new Promise<void>((resolve) => {
      releaseToken = resolve;
    });
    let issued = 0;
    const halo = await fakeHalo({
      routes: clientRoutes,
      checkToken: false,
      tokenHandler: async () => {
        issued += 1;
        await tokenGate;
        return { json: { access_token: `shared-${issued}`, expires_in: 3600 } };
      },
    });
    const { client } = createTestClient(halo.server.url);

    const calls = Array.from({ length: 8 }, () => client.checkConnection());
    // Every call requests its token synchronously, so all of them join the first token request.
    releaseToken();
    await Promise.all(calls);

    assert.equal(halo.tokenRequests().length, 1);
    assert.equal(halo.apiRequests().length, 8);
    assert.ok(
      halo.apiRequests().every((request) => request.headers.authorization === 'Bearer shared-1'),
    );
  });

  test('refreshes before expiry by the margin', async () => {
    let nowMs = 1_000_000;
    const halo = await fakeHalo({ routes: clientRoutes, expiresIn: 600 });
    const { client } = createTestClient(halo.server.url, {
      now: () => nowMs,
      refreshMarginSeconds: 60,
    });

    await client.checkConnection();
    nowMs += 539_000;
    await client.checkConnection();
    assert.equal(halo.tokenRequests().length, 1);

    nowMs += 1_000;
    await client.checkConnection();
    assert.equal(halo.tokenRequests().length, 2);
    assert.equal(halo.apiRequests().at(-1)?.headers.authorization, `Bearer ${TEST_TOKEN_PREFIX}2`);
  });

  test('caps the margin at half a short lifetime', async () => {
    let nowMs = 0;
    const halo = await fakeHalo({ routes: clientRoutes, expiresIn: 30 });
    const { client } = createTestClient(halo.server.url, { now: () => nowMs });

    await client.getAccessToken();
    nowMs = 14_000;
    await client.getAccessToken();
    assert.equal(halo.tokenRequests().length, 1);
    nowMs = 15_000;
    await client.getAccessToken();
    assert.equal(halo.tokenRequests().length, 2);
  });

  test('a failed token request is not cached', async () => {
    let fail = true;
    const halo = await fakeHalo({
      routes: clientRoutes,
      checkToken: false,
      tokenHandler: () =>
        fail
          ? { status: 503, json: { message: 'down' } }
          : { json: { access_token: 'late', expires_in: 60 } },
    });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.getAccessToken(), { code: 'server_error' });
    fail = false;
    assert.equal(await client.getAccessToken(), 'late');
    assert.equal(halo.tokenRequests().length, 2);
  });
});

describe('401 from the API', () => {
  test('refreshes the token once and retries', async () => {
    let rejectNext = true;
    const halo = await fakeHalo({
      checkToken: false,
      routes: {
        'GET /api/client': () => {
          if (rejectNext) {
            rejectNext = false;
            return { status: 401 };
          }
          return { json: listPage('clients', [{ id: 7, name: 'Retry Ltd' }], 1) };
        },
      },
    });
    const { client, calls } = createTestClient(halo.server.url);

    const clients = await client.listClients();

    assert.deepEqual(clients, [{ id: 7, name: 'Retry Ltd' }]);
    assert.equal(halo.tokenRequests().length, 2);
    const authorizations = halo.apiRequests().map((request) => request.headers.authorization);
    assert.deepEqual(authorizations, [
      `Bearer ${TEST_TOKEN_PREFIX}1`,
      `Bearer ${TEST_TOKEN_PREFIX}2`,
    ]);
    assert.deepEqual(
      calls.map((call) => [call.method, call.path.split('?')[0], call.status]),
      [
        ['POST', '/auth/token', 200],
        ['GET', '/api/Client', 401],
        ['POST', '/auth/token', 200],
        ['GET', '/api/Client', 200],
      ],
    );
  });

  test('a second 401 is token_rejected', async () => {
    const halo = await fakeHalo({
      checkToken: false,
      routes: { 'GET /api/client': () => ({ status: 401, json: { message: 'Token not valid' } }) },
    });
    const { client, calls } = createTestClient(halo.server.url);

    const error = await client.checkConnection().then(
      () => assert.fail('expected a failure'),
      (caught: unknown) => caught,
    );

    assert.ok(error instanceof HaloPsaError);
    assert.equal(error.code, 'token_rejected');
    assert.equal(error.status, 401);
    assert.equal(error.retryable, false);
    assert.match(error.message, /issued an access token but rejects it on GET \/api\/Client/);
    assert.match(error.message, /permissions/);
    assert.match(error.message, /login type is Agent/);
    assert.equal(halo.apiRequests().length, 2);
    assert.equal(halo.tokenRequests().length, 2);
    assert.equal(calls.at(-1)?.errorCode, 'token_rejected');
  });
});

describe('token endpoint failures', () => {
  async function tokenFailure(handler: Parameters<typeof startServer>[0]): Promise<HaloPsaError> {
    const halo = await server(handler);
    const { client } = createTestClient(halo.url);
    const error = await client.getAccessToken().then(
      () => assert.fail('expected a failure'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof HaloPsaError);
    return error;
  }

  test('401 invalid_client is invalid_credentials', async () => {
    const error = await tokenFailure(() => ({ status: 401, json: { error: 'invalid_client' } }));

    assert.equal(error.code, 'invalid_credentials');
    assert.equal(error.status, 401);
    assert.equal(error.retryable, false);
    assert.match(error.message, /^HaloPSA rejected the client ID or secret/);
  });

  test('400 invalid_client is invalid_credentials', async () => {
    const error = await tokenFailure(() => ({ status: 400, json: { error: 'invalid_client' } }));
    assert.equal(error.code, 'invalid_credentials');
  });

  test('invalid_scope names the scope', async () => {
    const error = await tokenFailure(() => ({ status: 400, json: { error: 'invalid_scope' } }));
    assert.equal(error.code, 'validation_failed');
    assert.match(error.message, /scope "all"/);
  });

  test('404 is not_halopsa', async () => {
    const error = await tokenFailure(() => ({ status: 404, text: 'Not Found' }));
    assert.equal(error.code, 'not_halopsa');
    assert.match(error.message, /does not look like a HaloPSA instance/);
    assert.match(error.message, /https:\/\/yourcompany\.halopsa\.com/);
  });

  test('JSON without access_token is not_halopsa', async () => {
    const error = await tokenFailure(() => ({ json: { status: 'ok' } }));
    assert.equal(error.code, 'not_halopsa');
    assert.match(error.message, /no access_token/);
  });

  test('an HTML page is not_halopsa', async () => {
    const error = await tokenFailure(() => ({
      headers: { 'content-type': 'text/html' },
      text: '<!doctype html><title>Welcome</title>',
    }));
    assert.equal(error.code, 'not_halopsa');
    assert.match(error.message, /HTML page/);
  });

  test('a token with a line break is rejected', async () => {
    const error = await tokenFailure(() => ({ json: { access_token: 'abc\r\nX-Injected: 1' } }));
    assert.equal(error.code, 'unexpected_response');
  });
});
