import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { HaloPsaError } from './errors.ts';
import type { FakeHalo } from './test-support.ts';
import { createTestClient, listPage, startFakeHalo } from './test-support.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function fakeHalo(options: Parameters<typeof startFakeHalo>[0]): Promise<FakeHalo> {
  const halo = await startFakeHalo(options);
  cleanups.push(() => halo.server.close());
  return halo;
}

function savedTicket(input: Record<string, unknown>, id: number) {
  return { ...input, id, tickettype_name: 'Alert', _warning: null };
}

describe('POST responses', () => {
  test('one posted ticket answered as an object', async () => {
    const halo = await fakeHalo({
      routes: {
        'POST /api/tickets': (request) => {
          const [input] = JSON.parse(request.body) as Record<string, unknown>[];
          return { status: 201, json: savedTicket(input ?? {}, 501) };
        },
      },
    });
    const { client } = createTestClient(halo.server.url);

    const created = await client.createTickets([
      {
        summary: 'DMARC record removed',
        tickettype_id: 3,
        client_id: 12,
        third_party_id_string: 'alert-1',
      },
    ]);

    assert.deepEqual(created, [
      {
        summary: 'DMARC record removed',
        tickettype_id: 3,
        client_id: 12,
        third_party_id_string: 'alert-1',
        id: 501,
        tickettype_name: 'Alert',
        _warning: null,
      },
    ]);
    const [request] = halo.apiRequests();
    assert.equal(request?.url, '/api/Tickets');
    assert.match(String(request?.headers['content-type']), /^application\/json/);
    assert.ok(Array.isArray(JSON.parse(request?.body ?? '')));
  });

  test('several posted actions answered as a list', async () => {
    const halo = await fakeHalo({
      routes: {
        'POST /api/actions': (request) => {
          const inputs = JSON.parse(request.body) as Record<string, unknown>[];
          return { status: 201, json: inputs.map((input, index) => ({ ...input, id: index + 1 })) };
        },
      },
    });
    const { client } = createTestClient(halo.server.url);

    const actions = await client.addActions([
      { ticket_id: 501, outcome_id: 7, note: 'First' },
      { ticket_id: 501, outcome_id: 7, note: 'Second' },
    ]);

    assert.deepEqual(
      actions.map((action) => [action.ticket_id, action.id, action.note]),
      [
        [501, 1, 'First'],
        [501, 2, 'Second'],
      ],
    );
  });

  test('a 200 answer is accepted like 201', async () => {
    const halo = await fakeHalo({
      routes: {
        'POST /api/softwarelicence': () => ({
          status: 200,
          json: [{ id: 88, client_id: 12, count: 4 }],
        }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    const saved = await client.saveLicences([{ id: 88, count: 4 }]);

    assert.deepEqual(saved, [{ id: 88, client_id: 12, count: 4 }]);
    assert.deepEqual(JSON.parse(halo.apiRequests()[0]?.body ?? ''), [{ id: 88, count: 4 }]);
  });

  test('an empty POST answer is unexpected_response', async () => {
    const halo = await fakeHalo({
      routes: { 'POST /api/tickets': () => ({ status: 201, text: '' }) },
    });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.createTickets([{ summary: 'x', tickettype_id: 1, client_id: 1 }]), {
      code: 'unexpected_response',
    });
  });

  test('an empty input sends nothing', async () => {
    const halo = await fakeHalo({ routes: {} });
    const { client } = createTestClient(halo.server.url);

    assert.deepEqual(await client.createTickets([]), []);
    assert.equal(halo.server.requests.length, 0);
  });
});

describe('integral ids', () => {
  test('doubles such as 95.0 are read as integers', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/users': () => ({
          // Written by hand because JSON.stringify would drop the ".0".
          text: '{"record_count":1,"users":[{"id":3,"name":"Ann","site_id":95.0,"site_id_int":95,"client_id":12.0}]}',
          headers: { 'content-type': 'application/json' },
        }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    const [user] = await client.listUsers();

    assert.equal(user?.site_id, 95);
    assert.ok(Number.isInteger(user?.site_id));
    assert.equal(JSON.stringify({ site_id: user?.site_id }), '{"site_id":95}');
  });

  test('a fractional id in a response is unexpected_response', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/site': () => ({
          json: listPage('sites', [{ id: 1, name: 'Main', client_id: 12.5 }]),
        }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.listSites(), (error: unknown) => {
      assert.ok(error instanceof HaloPsaError);
      assert.equal(error.code, 'unexpected_response');
      assert.match(error.message, /client_id/);
      return true;
    });
  });

  test('a fractional id is rejected before sending', async () => {
    const halo = await fakeHalo({ routes: {} });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(
      client.createTickets([{ summary: 'x', tickettype_id: 3, client_id: 12, site_id: 95.5 }]),
      (error: unknown) => {
        assert.ok(error instanceof HaloPsaError);
        assert.equal(error.code, 'validation_failed');
        assert.match(
          error.message,
          /tickets\[0\]\.site_id must be a whole number, but it is 95\.5/,
        );
        return true;
      },
    );
    await assert.rejects(client.getTicket(1.5), { code: 'validation_failed' });
    await assert.rejects(client.listUsers({ siteId: Number.NaN }), { code: 'validation_failed' });
    assert.equal(halo.server.requests.length, 0);
  });

  test('ids are posted without a fraction', async () => {
    const halo = await fakeHalo({
      routes: {
        'POST /api/softwarelicence': () => ({
          status: 201,
          json: { id: 5, client_id: 12, count: 3 },
        }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    await client.saveLicences([
      { client_id: 12, item_id: 40, name: 'DMARC monitoring', count: 3, site_id: -1 },
    ]);

    assert.equal(
      halo.apiRequests()[0]?.body,
      '[{"client_id":12,"item_id":40,"name":"DMARC monitoring","count":3,"site_id":-1}]',
    );
  });
});

describe('single records', () => {
  test('getLicence and getTicket return the record', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/softwarelicence/88': () => ({
          json: {
            id: 88,
            client_id: 12,
            count: 9,
            item_id: null,
            name: 'DMARC',
            licences_in_use: 2,
          },
        }),
        'GET /api/tickets/501': () => ({
          json: { id: 501, summary: 'S', tickettype_id: 3, client_id: 12, site_id: 40.0 },
        }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    assert.deepEqual(await client.getLicence(88), {
      id: 88,
      client_id: 12,
      count: 9,
      name: 'DMARC',
      licences_in_use: 2,
    });
    assert.deepEqual(await client.getTicket(501), {
      id: 501,
      summary: 'S',
      tickettype_id: 3,
      client_id: 12,
      site_id: 40,
    });
  });

  test('404 on a record returns null', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/softwarelicence/404': () => ({
          status: 404,
          json: { message: 'Licence not found' },
        }),
        'GET /api/tickets/404': () => ({ status: 404, text: '' }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    assert.equal(await client.getLicence(404), null);
    assert.equal(await client.getTicket(404), null);
  });
});

describe('findTicketsByThirdPartyId', () => {
  test('filters by third_party_id_string', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/tickets': () => ({
          json: listPage('tickets', [
            {
              id: 1,
              summary: 'A',
              tickettype_id: 3,
              client_id: 12,
              third_party_id_string: 'alert-7',
            },
            // A server that ignored the filter would return this one too.
            {
              id: 2,
              summary: 'B',
              tickettype_id: 3,
              client_id: 12,
              third_party_id_string: 'alert-8',
            },
          ]),
        }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    const found = await client.findTicketsByThirdPartyId('alert-7');

    assert.deepEqual(
      found.map((ticket) => ticket.id),
      [1],
    );
    assert.equal(halo.apiRequests()[0]?.query.get('third_party_id_string'), 'alert-7');
  });

  test('an empty value is rejected', async () => {
    const halo = await fakeHalo({ routes: {} });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.findTicketsByThirdPartyId('  '), { code: 'validation_failed' });
    assert.equal(halo.server.requests.length, 0);
  });
});

describe('constructor', () => {
  test('normalises the base URL', () => {
    const { client } = createTestClient(' https://acme.halopsa.com/api/ ');
    assert.equal(client.instanceUrl.href, 'https://acme.halopsa.com/');
  });

  test('rejects empty credentials and bad options', () => {
    assert.throws(() => createTestClient('https://acme.halopsa.com', { clientSecret: ' ' }), {
      code: 'invalid_credentials',
      message: /client secret is empty/,
    });
    assert.throws(() => createTestClient('https://acme.halopsa.com', { clientId: '' }), {
      code: 'invalid_credentials',
    });
    assert.throws(() => createTestClient('https://acme.halopsa.com', { timeoutMs: 0 }), RangeError);
    assert.throws(
      () => createTestClient('https://acme.halopsa.com', { pageSize: 2.5 }),
      RangeError,
    );
    assert.throws(() => createTestClient('ftp://acme.halopsa.com'), { code: 'invalid_url' });
  });
});
