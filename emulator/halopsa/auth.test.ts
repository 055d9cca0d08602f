import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from './server.ts';
import {
  DEMO_CLIENT_ID,
  DEMO_CLIENT_SECRET,
  apiClient,
  asObject,
  control,
  getToken,
  postTokenForm,
  send,
} from './test-support.ts';

let emulator: RunningEmulator;

before(async () => {
  emulator = await startEmulator({ seed: { clients: 3 } });
});
after(async () => {
  await emulator.close();
});
beforeEach(async () => {
  await control(emulator.url, 'POST', '/reset', { seed: { clients: 3 } });
});

const demoForm = {
  grant_type: 'client_credentials',
  client_id: DEMO_CLIENT_ID,
  client_secret: DEMO_CLIENT_SECRET,
  scope: 'all',
};

describe('token endpoint', () => {
  test('issues a bearer token for valid credentials', async () => {
    const response = await postTokenForm(emulator.url, demoForm);
    assert.equal(response.status, 200);
    const body = asObject(response.json);
    assert.equal(typeof body.access_token, 'string');
    assert.ok((body.access_token as string).length >= 20);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 3600);
    assert.equal(body.scope, 'all');
  });

  test('token works on an API call', async () => {
    const token = await getToken(emulator.url);
    const response = await apiClient(emulator.url, token).get('/Client');
    assert.equal(response.status, 200);
  });

  test('accepts client credentials by HTTP Basic', async () => {
    const basic = Buffer.from(`${DEMO_CLIENT_ID}:${DEMO_CLIENT_SECRET}`).toString('base64');
    const response = await postTokenForm(
      emulator.url,
      { grant_type: 'client_credentials', scope: 'all' },
      '/auth/token',
      { authorization: `Basic ${basic}` },
    );
    assert.equal(response.status, 200);
    assert.equal(asObject(response.json).token_type, 'Bearer');
  });

  test('rejects a wrong secret by HTTP Basic', async () => {
    const basic = Buffer.from(`${DEMO_CLIENT_ID}:wrong`).toString('base64');
    const response = await postTokenForm(
      emulator.url,
      { grant_type: 'client_credentials', scope: 'all' },
      '/auth/token',
      { authorization: `Basic ${basic}` },
    );
    assert.equal(response.status, 401);
    assert.deepEqual(response.json, { error: 'invalid_client' });
  });

  test('accepts the tenant query parameter', async () => {
    const response = await postTokenForm(emulator.url, demoForm, '/auth/token?tenant=emulator');
    assert.equal(response.status, 200);
  });

  test('accepts the tenant as a body field', async () => {
    const response = await postTokenForm(
      emulator.url,
      { ...demoForm, tenant: 'emulator' },
      '/token',
    );
    assert.equal(response.status, 200);
  });

  test('shared host form needs the tenant', async () => {
    const withTenant = await postTokenForm(emulator.url, demoForm, '/token?tenant=emulator');
    assert.equal(withTenant.status, 200);

    const withoutTenant = await postTokenForm(emulator.url, demoForm, '/token');
    assert.equal(withoutTenant.status, 400);
    assert.equal(asObject(withoutTenant.json).error, 'invalid_request');

    const otherTenant = await postTokenForm(emulator.url, demoForm, '/token?tenant=someone-else');
    assert.equal(otherTenant.status, 401);
    assert.deepEqual(otherTenant.json, { error: 'invalid_client' });
  });

  test('wrong secret is invalid_client 401', async () => {
    const response = await postTokenForm(emulator.url, { ...demoForm, client_secret: 'nope' });
    assert.equal(response.status, 401);
    assert.deepEqual(response.json, { error: 'invalid_client' });
  });

  test('unknown client id is invalid_client 401', async () => {
    const response = await postTokenForm(emulator.url, { ...demoForm, client_id: 'nobody' });
    assert.equal(response.status, 401);
    assert.deepEqual(response.json, { error: 'invalid_client' });
  });

  test('wrong grant type is 400', async () => {
    const response = await postTokenForm(emulator.url, { ...demoForm, grant_type: 'password' });
    assert.equal(response.status, 400);
    assert.equal(asObject(response.json).error, 'unsupported_grant_type');

    const missing = await postTokenForm(emulator.url, { ...demoForm, grant_type: '' });
    assert.equal(missing.status, 400);
    assert.equal(asObject(missing.json).error, 'invalid_request');
  });

  test('JSON body is 400', async () => {
    const response = await send(`${emulator.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(demoForm),
    });
    assert.equal(response.status, 400);
    assert.equal(asObject(response.json).error, 'invalid_request');
  });

  test('token path is case-insensitive', async () => {
    const response = await postTokenForm(emulator.url, demoForm, '/Auth/Token');
    assert.equal(response.status, 200);
  });
});

describe('scopes', () => {
  test('scopeless token is issued but rejected by every API call', async () => {
    const { scope: _scope, ...withoutScope } = demoForm;
    const response = await postTokenForm(emulator.url, withoutScope);
    assert.equal(response.status, 200);
    const token = asObject(response.json).access_token as string;

    const api = apiClient(emulator.url, token);
    for (const path of ['/Client', '/TicketType', '/Tickets', '/Item']) {
      const call = await api.get(path);
      assert.equal(call.status, 401, `GET ${path}`);
    }
  });

  test('scope list grants its intersection with the application', async () => {
    const response = await postTokenForm(emulator.url, {
      ...demoForm,
      scope: 'read:tickets read:customers edit:items',
    });
    assert.equal(response.status, 200);
    assert.equal(asObject(response.json).scope, 'read:tickets read:customers');

    const api = apiClient(emulator.url, asObject(response.json).access_token as string);
    assert.equal((await api.get('/Tickets')).status, 200);
    assert.equal((await api.get('/Client')).status, 200);
    assert.equal((await api.get('/Item')).status, 403);
    assert.equal((await api.get('/SoftwareLicence')).status, 403);
  });

  test('granted scope stays fixed after the application changes', async () => {
    const token = await getToken(emulator.url);
    await control(emulator.url, 'PUT', `/applications/${DEMO_CLIENT_ID}`, {
      clientSecret: DEMO_CLIENT_SECRET,
      permissions: ['read:tickets'],
    });
    assert.equal((await apiClient(emulator.url, token).get('/Client')).status, 200);

    const newToken = await getToken(emulator.url);
    assert.equal((await apiClient(emulator.url, newToken).get('/Client')).status, 403);
  });
});

describe('bearer tokens', () => {
  test('missing Authorization is 401', async () => {
    const response = await send(`${emulator.url}/api/Client`);
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer');
  });

  test('unknown token is 401', async () => {
    const response = await apiClient(emulator.url, 'not-a-real-token').get('/Client');
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /invalid_token/);
  });

  test('token expires after its lifetime', async () => {
    await control(emulator.url, 'POST', '/config', { tokenLifetimeSeconds: 60 });
    const tokenResponse = await postTokenForm(emulator.url, demoForm);
    assert.equal(asObject(tokenResponse.json).expires_in, 60);
    const api = apiClient(emulator.url, asObject(tokenResponse.json).access_token as string);
    assert.equal((await api.get('/Client')).status, 200);

    await control(emulator.url, 'POST', '/clock', { advanceSeconds: 59 });
    assert.equal((await api.get('/Client')).status, 200);

    await control(emulator.url, 'POST', '/clock', { advanceSeconds: 1 });
    assert.equal((await api.get('/Client')).status, 401);
  });

  test('zero lifetime issues an expired token', async () => {
    const short = await startEmulator({ seed: false, tokenLifetimeSeconds: 0 });
    try {
      const token = await getToken(short.url);
      assert.equal((await apiClient(short.url, token).get('/Client')).status, 401);
    } finally {
      await short.close();
    }
  });
});

describe('authinfo', () => {
  test('returns auth_url and tenant_id without a token', async () => {
    const response = await send(`${emulator.url}/api/authinfo`);
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { auth_url: `${emulator.url}/auth`, tenant_id: 'emulator' });
  });

  test('auth_url plus /token is the token endpoint', async () => {
    const info = asObject((await send(`${emulator.url}/api/AuthInfo`)).json);
    const response = await send(`${String(info.auth_url)}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(demoForm).toString(),
    });
    assert.equal(response.status, 200);
  });
});
