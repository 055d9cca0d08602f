import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { rateLimitMessage } from './rate-limit.ts';
import { startEmulator, type RunningEmulator } from './server.ts';
import { apiClient, asObject, control, getToken, send, type ApiClient } from './test-support.ts';

let emulator: RunningEmulator;
let api: ApiClient;

before(async () => {
  emulator = await startEmulator({
    seed: { clients: 2 },
    rateLimit: { limit: 5, windowSeconds: 60 },
  });
});
after(async () => {
  await emulator.close();
});
beforeEach(async () => {
  await control(emulator.url, 'POST', '/reset');
  // The token request is the first of the five admitted requests.
  api = apiClient(emulator.url, await getToken(emulator.url));
});

async function useUpLimit(): Promise<void> {
  for (let call = 0; call < 4; call += 1) {
    assert.equal((await api.get('/TicketType')).status, 200, `call ${call + 2} of 5`);
  }
}

describe('rate limit', () => {
  test('request over the limit is 429 with the HaloPSA message', async () => {
    await useUpLimit();
    const response = await api.get('/TicketType');
    assert.equal(response.status, 429);
    assert.deepEqual(response.json, {
      Message: 'Rate Limit Reached - 5 Requests per rolling 1 minute window',
    });
    assert.equal(response.headers.get('retry-after'), null);
  });

  test('token calls share the window', async () => {
    await useUpLimit();
    const response = await send(`${emulator.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=dmarcdesk-demo&client_secret=demo-secret-change-me&scope=all',
    });
    assert.equal(response.status, 429);
  });

  test('control routes are not limited', async () => {
    await useUpLimit();
    assert.equal((await api.get('/Client')).status, 429);
    const log = await control(emulator.url, 'GET', '/requests');
    assert.equal(log.status, 200);
    const statuses = (log.json as Array<{ status: number }>).map((entry) => entry.status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
  });

  test('window rolls on', async () => {
    await useUpLimit();
    assert.equal((await api.get('/Client')).status, 429);
    await control(emulator.url, 'POST', '/clock', { advanceSeconds: 61 });
    assert.equal((await api.get('/Client')).status, 200);
  });

  test('rejected requests do not extend the window', async () => {
    await useUpLimit();
    await control(emulator.url, 'POST', '/clock', { advanceSeconds: 30 });
    assert.equal((await api.get('/Client')).status, 429);
    await control(emulator.url, 'POST', '/clock', { advanceSeconds: 31 });
    assert.equal((await api.get('/Client')).status, 200);
  });

  test('Retry-After can be switched on', async () => {
    await control(emulator.url, 'POST', '/config', { retryAfter: true });
    await useUpLimit();
    await control(emulator.url, 'POST', '/clock', { advanceSeconds: 20 });
    const response = await api.get('/Client');
    assert.equal(response.status, 429);
    // The oldest admitted request leaves the window about 40 s later.
    const retryAfter = Number(response.headers.get('retry-after'));
    assert.ok(retryAfter > 30, `Retry-After ${retryAfter}`);
    assert.ok(retryAfter <= 40, `Retry-After ${retryAfter}`);
  });

  test('message follows the configured limit', async () => {
    await control(emulator.url, 'POST', '/config', { rateLimit: { limit: 2, windowSeconds: 90 } });
    await api.get('/Client');
    const response = await api.get('/Client');
    assert.equal(response.status, 429);
    assert.equal(
      asObject(response.json).Message,
      'Rate Limit Reached - 2 Requests per rolling 90 second window',
    );
  });

  test('null turns the limit off', async () => {
    await control(emulator.url, 'POST', '/config', { rateLimit: null });
    for (let call = 0; call < 12; call += 1) {
      assert.equal((await api.get('/TicketType')).status, 200);
    }
  });

  test('default limit is 300 per 5 minutes', async () => {
    const fresh = await startEmulator({ seed: false });
    try {
      const config = asObject((await control(fresh.url, 'POST', '/config', {})).json);
      assert.deepEqual(config.rateLimit, { limit: 300, windowSeconds: 300 });
      assert.equal(config.retryAfter, false);
    } finally {
      await fresh.close();
    }
    assert.equal(
      rateLimitMessage({ limit: 300, windowSeconds: 300 }),
      'Rate Limit Reached - 300 Requests per rolling 5 minute window',
    );
  });
});
