import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from './server.ts';
import {
  apiClient,
  asObject,
  control,
  getToken,
  storedRecords,
  type ApiClient,
} from './test-support.ts';

let emulator: RunningEmulator;
let api: ApiClient;

before(async () => {
  emulator = await startEmulator({ seed: { clients: 3 } });
});
after(async () => {
  await emulator.close();
});
beforeEach(async () => {
  await control(emulator.url, 'POST', '/reset', { seed: { clients: 3 } });
  api = apiClient(emulator.url, await getToken(emulator.url));
});

async function addFaults(faults: unknown[]): Promise<void> {
  const response = await control(emulator.url, 'POST', '/faults', { faults });
  assert.equal(response.status, 200, response.text);
}

async function requestLog(): Promise<Array<Record<string, unknown>>> {
  return (await control(emulator.url, 'GET', '/requests')).json as Array<Record<string, unknown>>;
}

const newTicket = { summary: 'Fault test', client_id: 12, tickettype_id: 5 };

describe('faults', () => {
  test('status fault skips the work', async () => {
    await addFaults([
      {
        match: { method: 'POST', path: '/api/tickets' },
        kind: 'status',
        status: 503,
        body: { Message: 'Service Unavailable' },
      },
    ]);
    const storedBefore = (await storedRecords(emulator.url, 'tickets')).length;
    const response = await api.post('/Tickets', [newTicket]);
    assert.equal(response.status, 503);
    assert.deepEqual(response.json, { Message: 'Service Unavailable' });
    assert.equal((await storedRecords(emulator.url, 'tickets')).length, storedBefore);

    const again = await api.post('/Tickets', [newTicket]);
    assert.equal(again.status, 201);
  });

  test('status fault with a text body', async () => {
    await addFaults([{ kind: 'status', status: 504, body: 'Gateway Timeout' }]);
    const response = await api.get('/Client');
    assert.equal(response.status, 504);
    assert.equal(response.text, 'Gateway Timeout');
  });

  test('times counts firings', async () => {
    await addFaults([{ match: { path: '/api/Client' }, kind: 'status', status: 500, times: 2 }]);
    assert.equal((await api.get('/Client')).status, 500);
    assert.equal((await api.get('/client')).status, 500);
    assert.equal((await api.get('/Client')).status, 200);
  });

  test('method and path must both match', async () => {
    await addFaults([
      { match: { method: 'POST', path: '/API/CLIENT' }, kind: 'status', status: 502 },
    ]);
    assert.equal((await api.get('/Client')).status, 200);
    assert.equal((await api.get('/Site')).status, 200);
    assert.equal((await api.post('/Client', [{ name: 'X Ltd' }])).status, 502);
  });

  test('token requests can fail', async () => {
    await addFaults([{ match: { path: '/auth/token' }, kind: 'status', status: 500 }]);
    await assert.rejects(getToken(emulator.url), /500/);
    assert.ok((await getToken(emulator.url)).length > 0);
  });

  test('latency fault still succeeds', async () => {
    await addFaults([{ match: { path: '/api/Client' }, kind: 'latency', delayMs: 50 }]);
    const response = await api.get('/Client');
    assert.equal(response.status, 200);
    const entry = (await requestLog()).at(-1);
    assert.equal(entry?.fault, 'latency');
    assert.equal(entry?.status, 200);
  });

  test('reset destroys the connection before doing anything', async () => {
    await addFaults([{ match: { method: 'POST', path: '/api/Tickets' }, kind: 'reset' }]);
    const storedBefore = (await storedRecords(emulator.url, 'tickets')).length;
    await assert.rejects(api.post('/Tickets', [newTicket]), TypeError);
    assert.equal((await storedRecords(emulator.url, 'tickets')).length, storedBefore);
    const entry = (await requestLog()).at(-1);
    assert.equal(entry?.fault, 'reset');
    assert.equal(entry?.status, null);
  });

  test('drop-response performs the write and sends nothing', async () => {
    await addFaults([{ match: { method: 'POST', path: '/api/Tickets' }, kind: 'drop-response' }]);
    await assert.rejects(
      api.post('/Tickets', [{ ...newTicket, summary: 'Lost answer' }]),
      TypeError,
    );
    const tickets = await storedRecords(emulator.url, 'tickets');
    assert.equal(tickets.filter((ticket) => ticket.summary === 'Lost answer').length, 1);
    const entry = (await requestLog()).at(-1);
    assert.equal(entry?.fault, 'drop-response');
    assert.equal(entry?.status, 201);
  });

  test('DELETE clears faults', async () => {
    await addFaults([{ kind: 'status', status: 500, times: 10 }]);
    assert.equal((await api.get('/Client')).status, 500);
    const cleared = await control(emulator.url, 'DELETE', '/faults');
    assert.equal(asObject(cleared.json).active, 0);
    assert.equal((await api.get('/Client')).status, 200);
  });

  test('faults are consumed in order', async () => {
    await addFaults([
      { kind: 'status', status: 500 },
      { kind: 'status', status: 429, body: { Message: 'Rate Limit Reached' } },
    ]);
    assert.equal((await api.get('/Client')).status, 500);
    assert.equal((await api.get('/Client')).status, 429);
    assert.equal((await api.get('/Client')).status, 200);
  });

  test('invalid fault is rejected', async () => {
    const missingStatus = await control(emulator.url, 'POST', '/faults', {
      faults: [{ kind: 'status' }],
    });
    assert.equal(missingStatus.status, 400);
    assert.match(missingStatus.text, /status/);

    const unknownKind = await control(emulator.url, 'POST', '/faults', {
      faults: [{ kind: 'explode' }],
    });
    assert.equal(unknownKind.status, 400);
    assert.match(unknownKind.text, /kind/);
  });
});
