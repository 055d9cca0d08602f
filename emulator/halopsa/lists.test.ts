import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from './server.ts';
import {
  apiClient,
  asObject,
  asRows,
  control,
  getToken,
  storedRecords,
  type ApiClient,
} from './test-support.ts';

let emulator: RunningEmulator;
let api: ApiClient;

before(async () => {
  emulator = await startEmulator();
});
after(async () => {
  await emulator.close();
});
beforeEach(async () => {
  await control(emulator.url, 'POST', '/reset');
  api = apiClient(emulator.url, await getToken(emulator.url));
});

/** Posts `count` tickets for the first active client in one request. */
async function createTickets(count: number): Promise<void> {
  const elements = Array.from({ length: count }, (_, index) => ({
    summary: `Load ticket ${index}`,
    client_id: 12,
    tickettype_id: 1,
  }));
  const response = await api.post('/Tickets', elements);
  assert.equal(response.status, 201);
}

describe('routing', () => {
  test('resource names are case-insensitive', async () => {
    for (const path of ['/client', '/Client', '/CLIENT']) {
      const response = await api.get(path);
      assert.equal(response.status, 200, path);
      assert.ok(Array.isArray(asObject(response.json).clients), path);
    }
  });

  test('bare /api is 404', async () => {
    assert.equal((await api.get('')).status, 404);
  });

  test('API prefix is case-insensitive', async () => {
    const response = await api.get('/SoftwareLicence');
    const shouted = await fetch(`${emulator.url}/API/SOFTWARELICENCE`, {
      headers: { authorization: (await tokenHeader()).authorization },
    });
    assert.equal(response.status, 200);
    assert.equal(shouted.status, 200);
  });

  test('unknown resource is 404', async () => {
    for (const path of ['/Contract', '/SoftwareLicense', '/Ticket', '/Client/12/extra']) {
      const response = await api.get(path);
      assert.equal(response.status, 404, path);
    }
  });

  test('unknown resource is 404 even without a token', async () => {
    const response = await fetch(`${emulator.url}/api/Opportunity`);
    assert.equal(response.status, 404);
  });

  test('PUT is 405', async () => {
    const response = await fetch(`${emulator.url}/api/Tickets/1001`, {
      method: 'PUT',
      headers: { ...(await tokenHeader()), 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(response.status, 405);
  });
});

async function tokenHeader(): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await getToken(emulator.url)}` };
}

describe('single records', () => {
  test('GET by id returns the bare object', async () => {
    const response = await api.get('/Client/12');
    assert.equal(response.status, 200);
    const client = asObject(response.json);
    assert.equal(client.id, 12);
    assert.equal(typeof client.name, 'string');
    assert.equal(client.clients, undefined);
  });

  test('missing id is 404', async () => {
    assert.equal((await api.get('/Client/999999')).status, 404);
    assert.equal((await api.get('/Tickets/999999')).status, 404);
  });

  test('malformed id is 400', async () => {
    const response = await api.get('/Client/abc');
    assert.equal(response.status, 400);
    assert.deepEqual(response.json, { id: ["The value 'abc' is not valid."] });
  });

  test('user carries site and client names', async () => {
    const user = asObject((await api.get('/Users/2001')).json);
    assert.equal(user.name, 'General User');
    assert.equal(user.site_id_int, user.site_id);
    assert.equal(typeof user.site_name, 'string');
    assert.equal(typeof user.client_name, 'string');
    assert.ok(Number.isInteger(user.client_id));
  });
});

describe('list wrappers', () => {
  const wrappers: Array<[string, string]> = [
    ['/Client', 'clients'],
    ['/Site', 'sites'],
    ['/Users', 'users'],
    ['/Item', 'items'],
    ['/SoftwareLicence', 'licences'],
    ['/Tickets', 'tickets'],
    ['/Actions?ticket_id=1001', 'actions'],
  ];
  for (const [path, key] of wrappers) {
    test(`${path} lists under ${key}`, async () => {
      const response = await api.get(path);
      assert.equal(response.status, 200);
      const body = asObject(response.json);
      const rows = asRows(body[key]);
      assert.equal(body.page_no, 1);
      assert.equal(typeof body.page_size, 'number');
      assert.equal(typeof body.record_count, 'number');
      assert.ok(rows.length > 0);
      assert.ok(rows.every((row) => Number.isInteger(row.id)));
    });
  }

  test('TicketType returns a bare array', async () => {
    const response = await api.get('/TicketType');
    const types = asRows(response.json);
    assert.ok(types.length >= 4);
    assert.ok(types.some((type) => type.name === 'Alert'));
  });

  test('Outcome lists the stock outcomes', async () => {
    const list = await api.get('/Outcome');
    const outcomes = asRows(list.json);
    const one = await api.get('/outcome/7');
    const missing = await api.get('/Outcome/99');
    const write = await api.post('/Outcome', [{ outcome: 'Escalate' }]);

    assert.equal(list.status, 200);
    assert.equal(outcomes.length, 7);
    assert.deepEqual(outcomes[6], { id: 7, outcome: 'Internal Note', buttonname: 'Internal Note' });
    assert.equal(one.status, 200);
    assert.deepEqual(one.json, { id: 7, outcome: 'Internal Note', buttonname: 'Internal Note' });
    assert.equal(missing.status, 404);
    assert.equal(write.status, 403);
  });

  test('record_count is the total, not the page length', async () => {
    const body = asObject((await api.get('/Users')).json);
    const allUsers = await storedRecords(emulator.url, 'users');
    assert.equal(asRows(body.users).length, 50);
    assert.equal(body.record_count, allUsers.length);
    assert.ok(allUsers.length > 50);
  });
});

describe('paging', () => {
  test('without paging a default page of 50 is returned', async () => {
    const body = asObject((await api.get('/Users?page_size=10')).json);
    assert.equal(asRows(body.users).length, 50);
  });

  test('page_no without pageinate is ignored', async () => {
    const body = asObject((await api.get('/Users?page_no=2&page_size=10')).json);
    assert.equal(asRows(body.users).length, 50);
    assert.equal(asRows(body.users)[0]?.id, 2001);
  });

  test('pageinate without page_no is ignored', async () => {
    const body = asObject((await api.get('/Users?pageinate=true&page_size=10')).json);
    assert.equal(asRows(body.users).length, 50);
  });

  test('pageinate with page_no pages', async () => {
    const first = asObject((await api.get('/Users?pageinate=true&page_size=10&page_no=1')).json);
    const second = asObject((await api.get('/Users?pageinate=true&page_size=10&page_no=2')).json);
    const firstRows = asRows(first.users);
    const secondRows = asRows(second.users);
    assert.equal(firstRows.length, 10);
    assert.equal(secondRows.length, 10);
    assert.equal(second.page_no, 2);
    assert.equal(second.page_size, 10);
    assert.equal(firstRows[0]?.id, 2001);
    assert.equal(secondRows[0]?.id, 2011);
    assert.equal(first.record_count, second.record_count);
  });

  test('page past the end is empty', async () => {
    const body = asObject((await api.get('/Client?pageinate=true&page_size=50&page_no=9')).json);
    assert.deepEqual(body.clients, []);
    assert.equal(body.record_count, 39);
  });

  test('Tickets page_size is capped at 100', async () => {
    await createTickets(130);
    const body = asObject((await api.get('/Tickets?pageinate=true&page_size=1000&page_no=1')).json);
    assert.equal(asRows(body.tickets).length, 100);
    assert.equal(body.page_size, 100);
    assert.equal(body.record_count, 139);

    const last = asObject((await api.get('/Tickets?pageinate=true&page_size=1000&page_no=2')).json);
    assert.equal(asRows(last.tickets).length, 39);
  });

  test('other resources have no page_size cap by default', async () => {
    const body = asObject((await api.get('/Users?pageinate=true&page_size=1000&page_no=1')).json);
    assert.equal(asRows(body.users).length, body.record_count);
  });

  test('configured cap and default page size apply', async () => {
    await control(emulator.url, 'POST', '/config', { defaultPageSize: 7, pageCaps: { Users: 5 } });
    const unpaged = asObject((await api.get('/Client')).json);
    assert.equal(asRows(unpaged.clients).length, 7);
    const paged = asObject((await api.get('/Users?pageinate=true&page_size=20&page_no=1')).json);
    assert.equal(asRows(paged.users).length, 5);
  });

  test('count limits rows when not paging', async () => {
    const body = asObject((await api.get('/Users?count=3')).json);
    assert.equal(asRows(body.users).length, 3);
    const many = asObject((await api.get('/Users?count=80')).json);
    assert.equal(asRows(many.users).length, 80);
  });

  test('non-numeric page_no is 400', async () => {
    const response = await api.get('/Users?pageinate=true&page_no=first');
    assert.equal(response.status, 400);
    assert.deepEqual(response.json, { page_no: ["The value 'first' is not valid."] });
  });

  test('query parameter names are case-insensitive', async () => {
    const body = asObject((await api.get('/Users?Pageinate=TRUE&Page_Size=4&PAGE_NO=1')).json);
    assert.equal(asRows(body.users).length, 4);
  });
});

describe('filters', () => {
  test('Client search matches names', async () => {
    const first = asObject((await api.get('/Client/12')).json);
    const word = String(first.name).split(' ')[0] ?? '';
    const rows = asRows(
      asObject((await api.get(`/Client?search=${word.toLowerCase()}`)).json).clients,
    );
    assert.ok(rows.length >= 1);
    assert.ok(rows.every((row) => String(row.name).includes(word)));
  });

  test('Client hides inactive unless includeinactive', async () => {
    const active = asObject((await api.get('/Client?count=100')).json);
    const all = asObject((await api.get('/Client?count=100&includeinactive=true')).json);
    assert.equal(active.record_count, 39);
    assert.equal(all.record_count, 40);
    assert.ok(asRows(active.clients).every((row) => row.inactive === false));
    assert.equal(asRows(all.clients).filter((row) => row.inactive === true).length, 1);
  });

  test('Site filters by client_id', async () => {
    const rows = asRows(asObject((await api.get('/Site?client_id=13')).json).sites);
    assert.ok(rows.length >= 1);
    assert.ok(rows.length <= 3);
    assert.ok(rows.every((row) => row.client_id === 13));
  });

  test('Users filters by client_id and site_id', async () => {
    const byClient = asRows(asObject((await api.get('/Users?client_id=13')).json).users);
    assert.ok(byClient.length >= 3);
    assert.ok(byClient.every((row) => row.client_id === 13));

    const siteId = byClient[0]?.site_id;
    const bySite = asRows(asObject((await api.get(`/Users?site_id=${String(siteId)}`)).json).users);
    assert.ok(bySite.length >= 1);
    assert.ok(bySite.every((row) => row.site_id === siteId));
  });

  test('SoftwareLicence filters by client_id', async () => {
    const created = await api.post('/SoftwareLicence', [{ client_id: 20, item_id: 35, count: 4 }]);
    assert.equal(created.status, 201);
    const rows = asRows(asObject((await api.get('/SoftwareLicence?client_id=20')).json).licences);
    assert.ok(rows.some((row) => row.item_id === 35 && row.count === 4));
    assert.ok(rows.every((row) => row.client_id === 20));
  });

  test('Tickets filter by client and third-party ids', async () => {
    const created = await api.post('/Tickets', [
      { summary: 'A', client_id: 14, tickettype_id: 5, third_party_id: 77 },
      { summary: 'B', client_id: 14, tickettype_id: 5, third_party_id_string: 'dmarc-alert-9' },
    ]);
    assert.equal(created.status, 201);

    const byInt = asRows(asObject((await api.get('/Tickets?third_party_id=77')).json).tickets);
    assert.deepEqual(
      byInt.map((row) => row.summary),
      ['A'],
    );
    const byString = asRows(
      asObject((await api.get('/Tickets?third_party_id_string=dmarc-alert-9')).json).tickets,
    );
    assert.deepEqual(
      byString.map((row) => row.summary),
      ['B'],
    );
    const byClient = asRows(asObject((await api.get('/Tickets?client_id=14')).json).tickets);
    assert.ok(byClient.length >= 2);
    assert.ok(byClient.every((row) => row.client_id === 14));
  });

  test('Actions need ticket_id', async () => {
    const response = await api.get('/Actions');
    assert.equal(response.status, 400);
    assert.deepEqual(response.json, { ticket_id: ['The ticket_id field is required.'] });
  });

  test('order and orderdesc sort lists', async () => {
    const body = asObject((await api.get('/Client?order=name&orderdesc=true&count=100')).json);
    const names = asRows(body.clients).map((row) => String(row.name));
    assert.deepEqual(
      names,
      [...names].sort((a, b) => b.localeCompare(a)),
    );
  });
});
