import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import type { FakeHalo, RecordedRequest } from './test-support.ts';
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

function tickets(count: number) {
  return Array.from({ length: count }, (_, index) => ({
    id: index + 1,
    summary: `Ticket ${index + 1}`,
    tickettype_id: 3,
    client_id: 12,
  }));
}

/**
 * Serves `rows` in pages like HaloPSA, with page_size capped at `cap`. Pages are counted in
 * the capped size, so with a cap of 3, page 2 holds rows 4 to 6 whatever page_size was sent.
 */
function pagedRoute(key: string, rows: unknown[], cap: number) {
  return (request: RecordedRequest) => {
    assert.equal(request.query.get('pageinate'), 'true');
    const pageSize = Math.min(Number(request.query.get('page_size')), cap);
    const pageNo = Number(request.query.get('page_no'));
    const start = (pageNo - 1) * pageSize;
    return { json: listPage(key, rows.slice(start, start + pageSize), rows.length, pageNo) };
  };
}

function pagesRequested(halo: FakeHalo) {
  return halo.apiRequests().map((request) => ({
    pageNo: request.query.get('page_no'),
    pageSize: request.query.get('page_size'),
  }));
}

describe('paging', () => {
  test('follows record_count across pages', async () => {
    const rows = tickets(12);
    const halo = await fakeHalo({
      routes: { 'GET /api/tickets': pagedRoute('tickets', rows, 100) },
    });
    const { client } = createTestClient(halo.server.url, { pageSize: 5 });

    const found = await client.findTicketsByThirdPartyId('alert-1');

    assert.deepEqual(
      found.map((ticket) => ticket.id),
      rows.map((row) => row.id),
    );
    assert.deepEqual(pagesRequested(halo), [
      { pageNo: '1', pageSize: '5' },
      { pageNo: '2', pageSize: '5' },
      { pageNo: '3', pageSize: '5' },
    ]);
  });

  test('adapts to a server that caps page_size', async () => {
    const rows = tickets(8);
    const halo = await fakeHalo({ routes: { 'GET /api/tickets': pagedRoute('tickets', rows, 3) } });
    const { client } = createTestClient(halo.server.url, { pageSize: 5 });

    const found = await client.findTicketsByThirdPartyId('alert-1');

    assert.deepEqual(
      found.map((ticket) => ticket.id),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.deepEqual(pagesRequested(halo), [
      { pageNo: '1', pageSize: '5' },
      { pageNo: '2', pageSize: '3' },
      { pageNo: '3', pageSize: '3' },
    ]);
  });

  test('adapts to a server that offsets by the requested size', async () => {
    const rows = tickets(8);
    // This server computes the offset from the page_size asked for, then truncates to 3 rows.
    const halo = await fakeHalo({
      routes: {
        'GET /api/tickets': (request) => {
          const requested = Number(request.query.get('page_size'));
          const start = (Number(request.query.get('page_no')) - 1) * requested;
          return {
            json: listPage(
              'tickets',
              rows.slice(start, start + Math.min(requested, 3)),
              rows.length,
            ),
          };
        },
      },
    });
    const { client } = createTestClient(halo.server.url, { pageSize: 5 });

    const found = await client.findTicketsByThirdPartyId('alert-1');

    assert.deepEqual(
      found.map((ticket) => ticket.id),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
  });

  test('stops when a page is empty before record_count', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/client': (request) =>
          request.query.get('page_no') === '1'
            ? { json: listPage('clients', [{ id: 1, name: 'A' }], 5) }
            : { json: listPage('clients', [], 5) },
      },
    });
    const { client, logLines } = createTestClient(halo.server.url);

    const clients = await client.listClients();

    assert.deepEqual(clients, [{ id: 1, name: 'A' }]);
    assert.equal(halo.apiRequests().length, 2);
    assert.ok(logLines.some((line) => line.includes('ended before record_count')));
  });

  test('stops when a server repeats the same page', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/client': () => ({
          json: listPage(
            'clients',
            [
              { id: 1, name: 'A' },
              { id: 2, name: 'B' },
            ],
            10,
          ),
        }),
      },
    });
    const { client } = createTestClient(halo.server.url, { pageSize: 2 });

    const clients = await client.listClients();

    assert.deepEqual(
      clients.map((row) => row.id),
      [1, 2],
    );
    assert.equal(halo.apiRequests().length, 2);
  });

  test('sends list filters with paging', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/client': () => ({ json: listPage('clients', [], 0) }),
        'GET /api/site': () => ({ json: listPage('sites', [], 0) }),
        'GET /api/users': () => ({ json: listPage('users', [], 0) }),
        'GET /api/softwarelicence': () => ({ json: listPage('licences', [], 0) }),
        'GET /api/item': () => ({ json: listPage('items', [], 0) }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    await client.listClients({ search: 'acme & co', includeInactive: true });
    await client.listSites({ clientId: 12 });
    await client.listUsers({ clientId: 12, siteId: 40 });
    await client.listLicences({ clientId: 12 });
    await client.listItems();

    const urls = halo.apiRequests().map((request) => request.url);
    assert.deepEqual(urls, [
      '/api/Client?search=acme+%26+co&includeinactive=true&pageinate=true&page_size=100&page_no=1',
      '/api/Site?client_id=12&pageinate=true&page_size=100&page_no=1',
      '/api/Users?client_id=12&site_id=40&pageinate=true&page_size=100&page_no=1',
      '/api/SoftwareLicence?client_id=12&pageinate=true&page_size=100&page_no=1',
      '/api/Item?pageinate=true&page_size=100&page_no=1',
    ]);
  });

  test('TicketType is read as a bare array', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/tickettype': () => ({
          json: [
            { id: 1, name: 'Incident', use: 'ticket', group_id: 4 },
            { id: 9, name: 'Alert', visible: null },
          ],
        }),
      },
    });
    const { client } = createTestClient(halo.server.url);

    const types = await client.listTicketTypes();

    assert.deepEqual(types, [
      { id: 1, name: 'Incident', use: 'ticket', group_id: 4 },
      { id: 9, name: 'Alert' },
    ]);
    assert.equal(halo.apiRequests()[0]?.url, '/api/TicketType');
  });

  test('a wrapped TicketType answer is unexpected_response', async () => {
    const halo = await fakeHalo({
      routes: { 'GET /api/tickettype': () => ({ json: listPage('tickettypes', []) }) },
    });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.listTicketTypes(), { code: 'unexpected_response' });
  });

  test('a list without its key is not_halopsa', async () => {
    const halo = await fakeHalo({
      routes: { 'GET /api/site': () => ({ json: { record_count: 1, results: [] } }) },
    });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.listSites(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'not_halopsa');
      assert.match(error.message, /no "sites" list/);
      return true;
    });
  });

  test('a bare array on a paged list is unexpected_response', async () => {
    const halo = await fakeHalo({
      routes: { 'GET /api/item': () => ({ json: [{ id: 1, name: 'DMARC' }] }) },
    });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.listItems(), { code: 'unexpected_response' });
  });

  test('a list without record_count is unexpected_response', async () => {
    const halo = await fakeHalo({
      routes: { 'GET /api/item': () => ({ json: { items: [{ id: 1, name: 'DMARC' }] } }) },
    });
    const { client } = createTestClient(halo.server.url);

    await assert.rejects(client.listItems(), { code: 'unexpected_response' });
  });

  test('checkConnection returns record_count', async () => {
    const halo = await fakeHalo({
      routes: {
        'GET /api/client': (request) => {
          assert.equal(request.query.get('page_size'), '1');
          return { json: listPage('clients', [{ id: 1, name: 'A' }], 717) };
        },
      },
    });
    const { client } = createTestClient(halo.server.url);

    assert.deepEqual(await client.checkConnection(), { clientCount: 717 });
    assert.equal(halo.apiRequests()[0]?.url, '/api/Client?pageinate=true&page_size=1&page_no=1');
  });
});
