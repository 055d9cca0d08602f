import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from './server.ts';
import {
  DEMO_CLIENT_SECRET,
  apiClient,
  asObject,
  control,
  getToken,
  postTokenForm,
  storedRecords,
  type ApiClient,
} from './test-support.ts';

let emulator: RunningEmulator;
let api: ApiClient;

before(async () => {
  emulator = await startEmulator({ seed: { clients: 4 } });
});
after(async () => {
  await emulator.close();
});
beforeEach(async () => {
  await control(emulator.url, 'POST', '/reset');
  api = apiClient(emulator.url, await getToken(emulator.url));
});

describe('reset', () => {
  test('restores the seed data', async () => {
    await api.post('/Client', [{ name: 'Temporary Ltd' }]);
    assert.equal((await storedRecords(emulator.url, 'client')).length, 5);
    const response = await control(emulator.url, 'POST', '/reset');
    assert.equal(response.status, 200);
    const names = (await storedRecords(emulator.url, 'client')).map((row) => row.name);
    assert.equal(names.length, 4);
    assert.ok(!names.includes('Temporary Ltd'));
  });

  test('seed false empties the instance', async () => {
    await control(emulator.url, 'POST', '/reset', { seed: false });
    for (const resource of [
      'client',
      'site',
      'users',
      'item',
      'tickettype',
      'tickets',
      'actions',
    ]) {
      assert.deepEqual(await storedRecords(emulator.url, resource), [], resource);
    }
    // The demo application is instance configuration and survives an empty reset.
    assert.ok((await getToken(emulator.url)).length > 0);
  });

  test('seed options set the number of clients', async () => {
    await control(emulator.url, 'POST', '/reset', { seed: { clients: 9 } });
    assert.equal((await storedRecords(emulator.url, 'client')).length, 9);
  });

  test('invalidates tokens and applications', async () => {
    await control(emulator.url, 'PUT', '/applications/extra-app', {
      clientSecret: 's3cret',
      permissions: ['read:tickets'],
    });
    await control(emulator.url, 'POST', '/reset');
    assert.equal((await api.get('/Client')).status, 401);
    const extra = await postTokenForm(emulator.url, {
      grant_type: 'client_credentials',
      client_id: 'extra-app',
      client_secret: 's3cret',
      scope: 'all',
    });
    assert.equal(extra.status, 401);
  });

  test('restores settings and clears faults', async () => {
    await control(emulator.url, 'POST', '/config', { defaultPageSize: 2 });
    await control(emulator.url, 'POST', '/faults', { faults: [{ kind: 'status', status: 500 }] });
    await control(emulator.url, 'POST', '/reset');
    const fresh = apiClient(emulator.url, await getToken(emulator.url));
    const response = await fresh.get('/Users');
    assert.equal(response.status, 200);
    assert.equal(asObject(response.json).page_size, 50);
  });

  test('rejects unknown options', async () => {
    const response = await control(emulator.url, 'POST', '/reset', { seed: { tenants: 3 } });
    assert.equal(response.status, 400);
    assert.match(response.text, /tenants/);
  });
});

describe('records', () => {
  test('lists every record of a resource, any case', async () => {
    const lower = await control(emulator.url, 'GET', '/records/softwarelicence');
    const mixed = await control(emulator.url, 'GET', '/records/SoftwareLicence');
    assert.equal(lower.status, 200);
    assert.deepEqual(lower.json, mixed.json);
  });

  test('includes soft-deleted tickets', async () => {
    const tickets = await storedRecords(emulator.url, 'Tickets');
    assert.ok(tickets.some((ticket) => ticket.deleted === true));
  });

  test('includes actions of every ticket', async () => {
    const actions = await storedRecords(emulator.url, 'actions');
    const ticketIds = new Set(actions.map((action) => action.ticket_id));
    assert.ok(ticketIds.size >= 2);
  });

  test('unknown resource is 404', async () => {
    const response = await control(emulator.url, 'GET', '/records/contract');
    assert.equal(response.status, 404);
    assert.match(response.text, /softwarelicence/);
  });
});

describe('request log', () => {
  test('records API and token requests without secrets', async () => {
    await control(emulator.url, 'DELETE', '/requests');
    await getToken(emulator.url);
    await api.get('/Users?client_id=12&count=3');
    await api.get('/Nothing');

    const log = (await control(emulator.url, 'GET', '/requests')).json as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(
      log.map((entry) => [entry.method, entry.path, entry.status]),
      [
        ['POST', '/auth/token', 200],
        ['GET', '/api/Users', 200],
        ['GET', '/api/Nothing', 404],
      ],
    );
    assert.deepEqual(log[1]?.query, { client_id: '12', count: '3' });
    assert.ok(!Number.isNaN(Date.parse(String(log[0]?.at))));
    assert.ok(!JSON.stringify(log).includes(DEMO_CLIENT_SECRET));
  });

  test('redacts secrets sent in the query', async () => {
    await control(emulator.url, 'DELETE', '/requests');
    await postTokenForm(emulator.url, {}, `/auth/token?client_secret=${DEMO_CLIENT_SECRET}`);
    const log = (await control(emulator.url, 'GET', '/requests')).json as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(log[0]?.query, { client_secret: '[redacted]' });
    assert.ok(!JSON.stringify(log).includes(DEMO_CLIENT_SECRET));
  });

  test('DELETE clears the log', async () => {
    await api.get('/Client');
    await control(emulator.url, 'DELETE', '/requests');
    assert.deepEqual((await control(emulator.url, 'GET', '/requests')).json, []);
  });

  test('counts total every request by status, fault and route', async () => {
    await control(emulator.url, 'DELETE', '/requests');
    await control(emulator.url, 'POST', '/faults', {
      faults: [{ match: { path: '/api/Client' }, kind: 'status', status: 429, times: 1 }],
    });
    await api.get('/Client');
    await api.get('/Client/12');
    await api.get('/Client/13');

    const counts = asObject((await control(emulator.url, 'GET', '/requests/counts')).json);
    assert.equal(counts.total, 3);
    assert.deepEqual(counts.byStatus, { '200': 2, '429': 1 });
    assert.deepEqual(counts.byFault, { status: 1 });
    assert.deepEqual(counts.byRoute, { 'GET /api/client': 1, 'GET /api/client/:id': 2 });

    await control(emulator.url, 'DELETE', '/requests');
    const cleared = asObject((await control(emulator.url, 'GET', '/requests/counts')).json);
    assert.equal(cleared.total, 0);
  });

  test('counts a held request as in flight', async () => {
    const inFlight = async () =>
      asObject((await control(emulator.url, 'GET', '/requests/counts')).json).inFlight;
    await control(emulator.url, 'POST', '/faults', {
      faults: [{ match: { path: '/api/Client' }, kind: 'latency', delayMs: 1000, times: 1 }],
    });
    const held = api.get('/Client');
    let seen = await inFlight();
    for (let poll = 0; poll < 40 && seen === 0; poll += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = await inFlight();
    }
    assert.equal(seen, 1);
    await held;
    assert.equal(await inFlight(), 0);
  });

  test('control calls are not logged', async () => {
    await control(emulator.url, 'DELETE', '/requests');
    await control(emulator.url, 'GET', '/records/client');
    assert.deepEqual((await control(emulator.url, 'GET', '/requests')).json, []);
  });
});

describe('applications', () => {
  test('PUT creates an application with its own permissions', async () => {
    const created = await control(emulator.url, 'PUT', '/applications/reporting', {
      clientSecret: 'reporting-secret',
      permissions: ['read:customers'],
    });
    assert.equal(created.status, 200);
    const token = await getToken(emulator.url, {
      clientId: 'reporting',
      clientSecret: 'reporting-secret',
    });
    const reporting = apiClient(emulator.url, token);
    assert.equal((await reporting.get('/Client')).status, 200);
    assert.equal((await reporting.get('/Tickets')).status, 403);
  });

  test('PUT replaces the secret', async () => {
    await control(emulator.url, 'PUT', '/applications/dmarcdesk-demo', {
      clientSecret: 'rotated',
      permissions: ['read:tickets'],
    });
    await assert.rejects(getToken(emulator.url), /401/);
    assert.ok((await getToken(emulator.url, { clientSecret: 'rotated' })).length > 0);
  });

  test('rejects a body without a secret', async () => {
    const response = await control(emulator.url, 'PUT', '/applications/x', { permissions: [] });
    assert.equal(response.status, 400);
    assert.match(response.text, /clientSecret/);
  });
});

describe('config', () => {
  test('rejects unknown settings and resources', async () => {
    const unknownSetting = await control(emulator.url, 'POST', '/config', { pageLimit: 5 });
    assert.equal(unknownSetting.status, 400);
    const unknownCap = await control(emulator.url, 'POST', '/config', { pageCaps: { Asset: 50 } });
    assert.equal(unknownCap.status, 400);
    assert.match(unknownCap.text, /Asset/);
  });

  test('returns the settings in force', async () => {
    const response = await control(emulator.url, 'POST', '/config', {
      tokenLifetimeSeconds: 120,
      pageCaps: { Client: 25 },
    });
    const config = asObject(response.json);
    assert.equal(config.tokenLifetimeSeconds, 120);
    assert.deepEqual(config.pageCaps, { tickets: 100, client: 25 });
  });
});

describe('client merge', () => {
  test('moves sites, licences and tickets to the target', async () => {
    const [from, into] = (await storedRecords(emulator.url, 'client')).map(
      (row) => row.id as number,
    );
    const created = await api.post('/SoftwareLicence', [{ client_id: from, count: 3 }]);
    const licenceId = asObject(created.json).id;
    const response = await control(emulator.url, 'POST', `/clients/${from}/merge`, { into });
    assert.equal(response.status, 200);

    assert.equal((await api.get(`/Client/${from}`)).status, 404);
    const licence = (await storedRecords(emulator.url, 'softwarelicence')).find(
      (row) => row.id === licenceId,
    );
    assert.equal(licence?.client_id, into);
    const sites = await storedRecords(emulator.url, 'site');
    assert.equal(sites.filter((site) => site.client_id === from).length, 0);
    const tickets = await storedRecords(emulator.url, 'tickets');
    assert.equal(tickets.filter((ticket) => ticket.client_id === from).length, 0);
  });

  test('rejects a missing client', async () => {
    const response = await control(emulator.url, 'POST', '/clients/999999/merge', { into: 12 });
    assert.equal(response.status, 404);
    assert.match(response.text, /999999/);
  });
});

describe('ticket type required fields', () => {
  test('rejects a new ticket without the field', async () => {
    const [client] = await storedRecords(emulator.url, 'client');
    const types = await storedRecords(emulator.url, 'tickettype');
    const incident = types.find((type) => type.name === 'Incident')!;
    const set = await control(
      emulator.url,
      'POST',
      `/ticket-types/${incident.id}/required-fields`,
      {
        fields: ['category_1'],
      },
    );
    assert.equal(set.status, 200);

    const ticket = { tickettype_id: incident.id, client_id: client!.id, summary: 'Test' };
    const rejected = await api.post('/Tickets', [ticket]);
    assert.equal(rejected.status, 400);
    assert.match(rejected.text, /category_1 is required/);
    const accepted = await api.post('/Tickets', [{ ...ticket, category_1: 'Email' }]);
    assert.equal(accepted.status, 201);
  });

  test('rejects an unknown ticket type', async () => {
    const response = await control(emulator.url, 'POST', '/ticket-types/999/required-fields', {
      fields: ['category_1'],
    });
    assert.equal(response.status, 404);
  });
});
