import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from './server.ts';
import { apiClient, asObject, asRows, control, getToken, storedRecords } from './test-support.ts';

let emulator: RunningEmulator;

before(async () => {
  emulator = await startEmulator();
});
after(async () => {
  await emulator.close();
});

describe('default seed', () => {
  test('has 40 clients, one of them inactive', async () => {
    const clients = await storedRecords(emulator.url, 'client');
    assert.equal(clients.length, 40);
    assert.equal(clients.filter((client) => client.inactive === true).length, 1);
    assert.equal(new Set(clients.map((client) => client.name)).size, 40);
    for (const client of clients) {
      assert.match(String(client.name), /^[A-Z][A-Za-z&' ]+( \d+)?$/);
    }
  });

  test('every client has 1 to 3 sites', async () => {
    const sites = await storedRecords(emulator.url, 'site');
    for (const client of await storedRecords(emulator.url, 'client')) {
      const own = sites.filter((site) => site.client_id === client.id);
      assert.ok(own.length >= 1, String(client.name));
      assert.ok(own.length <= 3, String(client.name));
      assert.equal(client.main_site_id, own[0]?.id);
    }
  });

  test('every site has several users', async () => {
    const users = await storedRecords(emulator.url, 'users');
    for (const site of await storedRecords(emulator.url, 'site')) {
      const own = users.filter((user) => user.site_id === site.id && user.name !== 'General User');
      assert.ok(own.length >= 2, `site ${String(site.id)}`);
      assert.ok(own.every((user) => String(user.emailaddress).includes('@')));
    }
  });

  test('every client has one General User', async () => {
    const users = await storedRecords(emulator.url, 'users');
    for (const client of await storedRecords(emulator.url, 'client')) {
      const general = users.filter(
        (user) => user.client_id === client.id && user.name === 'General User',
      );
      assert.equal(general.length, 1, String(client.name));
      assert.equal(general[0]?.site_id, client.main_site_id);
    }
  });

  test('has the DMARC item and other billing items', async () => {
    const items = await storedRecords(emulator.url, 'item');
    const dmarc = items.find((item) => item.name === 'DMARC Monitoring (per domain)');
    assert.equal(dmarc?.isrecurringitem, true);
    assert.ok(items.some((item) => String(item.name).startsWith('Microsoft 365')));
    assert.ok(items.some((item) => String(item.name).includes('Backup')));
    assert.ok(items.length >= 5);
  });

  test('has Alert as a ticket type, not first', async () => {
    const token = await getToken(emulator.url);
    const types = asRows((await apiClient(emulator.url, token).get('/TicketType')).json);
    const names = types.map((type) => type.name);
    assert.ok(names.includes('Alert'));
    assert.notEqual(names[0], 'Alert');
    assert.ok(names.includes('Incident'));
    assert.ok(names.includes('Service Request'));
  });

  test('has a type that rejects API creation', async () => {
    const token = await getToken(emulator.url);
    const api = apiClient(emulator.url, token);
    const types = asRows((await api.get('/TicketType')).json);
    const rejections: unknown[] = [];
    for (const type of types) {
      const response = await api.post('/Tickets', [
        { summary: 'Probe', client_id: 12, tickettype_id: type.id },
      ]);
      if (response.status === 400) rejections.push(asObject(response.json).errorMessage);
    }
    assert.deepEqual(rejections, ['CODE:APP03/2 Please select the CAB members to approve']);
    await control(emulator.url, 'POST', '/reset');
  });

  test('ids are integers', async () => {
    for (const resource of ['client', 'site', 'users', 'softwarelicence', 'tickets']) {
      for (const record of await storedRecords(emulator.url, resource)) {
        assert.ok(Number.isInteger(record.id), `${resource} ${String(record.id)}`);
        if ('client_id' in record) assert.ok(Number.isInteger(record.client_id), resource);
        if ('site_id' in record) assert.ok(Number.isInteger(record.site_id), resource);
      }
    }
  });
});

describe('seed options', () => {
  test('the same options give the same data', async () => {
    const other = await startEmulator();
    try {
      assert.deepEqual(
        await storedRecords(other.url, 'users'),
        await storedRecords(emulator.url, 'users'),
      );
    } finally {
      await other.close();
    }
  });

  test('another random seed gives other names', async () => {
    const other = await startEmulator({ seed: { randomSeed: 7 } });
    try {
      const names = (await storedRecords(other.url, 'client')).map((client) => client.name);
      const defaults = (await storedRecords(emulator.url, 'client')).map((client) => client.name);
      assert.notDeepEqual(names, defaults);
    } finally {
      await other.close();
    }
  });

  test('asks for thousands of clients', async () => {
    const large = await startEmulator({ seed: { clients: 5000 } });
    try {
      const clients = await storedRecords(large.url, 'client');
      assert.equal(clients.length, 5000);
      assert.equal(new Set(clients.map((client) => client.name)).size, 5000);
      const token = await getToken(large.url);
      const page = asObject((await apiClient(large.url, token).get('/Client')).json);
      assert.equal(page.record_count, 4999);
    } finally {
      await large.close();
    }
  });
});
