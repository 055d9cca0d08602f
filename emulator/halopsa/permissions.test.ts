import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from './server.ts';
import { apiClient, asObject, control, getToken, type ReadResponse } from './test-support.ts';

const PRODUCT_PERMISSIONS = [
  'read:customers',
  'edit:customers',
  'read:softwarelicensing',
  'edit:softwarelicensing',
  'read:tickets',
  'edit:tickets',
  'read:items',
];

/** Every call dmarcdesk makes, with the one permission it needs. */
const CALLS: Array<{ method: 'GET' | 'POST' | 'DELETE'; path: string; permission: string }> = [
  { method: 'GET', path: '/Client', permission: 'read:customers' },
  { method: 'GET', path: '/Client/12', permission: 'read:customers' },
  { method: 'GET', path: '/Site', permission: 'read:customers' },
  { method: 'GET', path: '/Users', permission: 'read:customers' },
  { method: 'POST', path: '/Client', permission: 'edit:customers' },
  { method: 'POST', path: '/Site', permission: 'edit:customers' },
  { method: 'POST', path: '/Users', permission: 'edit:customers' },
  { method: 'DELETE', path: '/Client/999999', permission: 'edit:customers' },
  { method: 'DELETE', path: '/Site/999999', permission: 'edit:customers' },
  { method: 'DELETE', path: '/Users/999999', permission: 'edit:customers' },
  { method: 'GET', path: '/Item', permission: 'read:items' },
  { method: 'POST', path: '/Item', permission: 'edit:items' },
  { method: 'GET', path: '/SoftwareLicence', permission: 'read:softwarelicensing' },
  { method: 'POST', path: '/SoftwareLicence', permission: 'edit:softwarelicensing' },
  { method: 'DELETE', path: '/SoftwareLicence/999999', permission: 'edit:softwarelicensing' },
  { method: 'GET', path: '/Tickets', permission: 'read:tickets' },
  { method: 'GET', path: '/Actions?ticket_id=1001', permission: 'read:tickets' },
  { method: 'GET', path: '/TicketType', permission: 'read:tickets' },
  { method: 'POST', path: '/Tickets', permission: 'edit:tickets' },
  { method: 'POST', path: '/Actions', permission: 'edit:tickets' },
  { method: 'DELETE', path: '/Tickets/999999', permission: 'edit:tickets' },
];

let emulator: RunningEmulator;

before(async () => {
  // Off, because this file makes a few hundred calls.
  emulator = await startEmulator({ seed: { clients: 3 }, rateLimit: null });
});
after(async () => {
  await emulator.close();
});

async function tokenFor(clientId: string, permissions: string[]): Promise<string> {
  const response = await control(emulator.url, 'PUT', `/applications/${clientId}`, {
    clientSecret: 'secret',
    permissions,
  });
  assert.equal(response.status, 200);
  return getToken(emulator.url, { clientId, clientSecret: 'secret' });
}

async function call(token: string, entry: (typeof CALLS)[number]): Promise<ReadResponse> {
  const api = apiClient(emulator.url, token);
  // An empty array saves nothing, so the POST calls change no data.
  if (entry.method === 'POST') return api.post(entry.path, []);
  if (entry.method === 'DELETE') return api.delete(entry.path);
  return api.get(entry.path);
}

describe('permissions', () => {
  for (const missing of [...PRODUCT_PERMISSIONS, 'edit:items']) {
    test(`calls without ${missing} are 403`, async () => {
      const granted = [...PRODUCT_PERMISSIONS, 'edit:items'].filter((name) => name !== missing);
      const token = await tokenFor(`without-${missing}`, granted);
      for (const entry of CALLS) {
        const response = await call(token, entry);
        const label = `${entry.method} ${entry.path}`;
        if (entry.permission === missing) {
          assert.equal(response.status, 403, label);
        } else {
          assert.notEqual(response.status, 403, label);
          assert.ok(response.status < 500, label);
        }
      }
    });
  }

  test('demo application cannot write items', async () => {
    const token = await getToken(emulator.url);
    const response = await apiClient(emulator.url, token).post('/Item', [{ name: 'New item' }]);
    assert.equal(response.status, 403);
  });

  test('demo application can make every other call', async () => {
    const token = await getToken(emulator.url);
    for (const entry of CALLS.filter((candidate) => candidate.permission !== 'edit:items')) {
      const response = await call(token, entry);
      assert.notEqual(response.status, 403, `${entry.method} ${entry.path}`);
    }
  });

  test('403 body names no permission', async () => {
    const token = await tokenFor('tickets-only', ['read:tickets']);
    const response = await apiClient(emulator.url, token).get('/Client');
    assert.equal(response.status, 403);
    const message = String(asObject(response.json).Message);
    assert.ok(message.length > 0);
    assert.doesNotMatch(message, /customers|read:|edit:|scope/i);
  });

  test('application without permissions gets 403, not 401', async () => {
    const token = await tokenFor('no-permissions', []);
    assert.equal((await apiClient(emulator.url, token).get('/Tickets')).status, 403);
  });
});
