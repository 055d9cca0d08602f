import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from './server.ts';
import {
  DEMO_CLIENT_ID,
  apiClient,
  asObject,
  asRows,
  control,
  getToken,
  send,
  storedRecords,
  type ApiClient,
} from './test-support.ts';

const DOT_NET_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/;

let emulator: RunningEmulator;
let api: ApiClient;
let token: string;

before(async () => {
  emulator = await startEmulator({ seed: { clients: 5 } });
});
after(async () => {
  await emulator.close();
});
beforeEach(async () => {
  await control(emulator.url, 'POST', '/reset', { seed: { clients: 5 } });
  token = await getToken(emulator.url);
  api = apiClient(emulator.url, token);
});

/** Returns the first site of a client and a user of that site from the seed. */
async function siteAndUser(clientId: number): Promise<{ siteId: number; userId: number }> {
  const sites = asRows(asObject((await api.get(`/Site?client_id=${clientId}`)).json).sites);
  const siteId = sites[0]?.id as number;
  const users = asRows(asObject((await api.get(`/Users?site_id=${siteId}`)).json).users);
  return { siteId, userId: users[1]?.id as number };
}

/** Asserts a 400 in the serialised .NET exception style and returns its message. */
function exceptionMessage(response: { status: number; json: unknown }): string {
  assert.equal(response.status, 400);
  const body = asObject(response.json);
  assert.equal(body.ClassName, 'System.Exception');
  assert.equal(typeof body.Message, 'string');
  return body.Message as string;
}

describe('POST body rules', () => {
  test('bare object is 400', async () => {
    const response = await api.post('/Client', { name: 'Solo Ltd' });
    assert.equal(response.status, 400);
    const errors = asObject(response.json);
    assert.match(String(asRows(errors.$)[0]), /List`1\[Client\]/);
    assert.equal((await storedRecords(emulator.url, 'client')).length, 5);
  });

  test('invalid JSON is 400', async () => {
    const response = await send(`${emulator.url}/api/Client`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '[{"name": ',
    });
    assert.equal(response.status, 400);
    assert.ok('$' in asObject(response.json));
  });

  test('non-JSON content type is 415', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
      const response = await send(`${emulator.url}/api/Client`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          ...(contentType === undefined ? {} : { 'content-type': contentType }),
        },
        body: contentType === undefined ? undefined : '[{"name":"X"}]',
      });
      assert.equal(response.status, 415, String(contentType));
    }
  });

  test('one element creates and returns the object', async () => {
    const response = await api.post('/Client', [{ name: 'Quayside Bakery Ltd' }]);
    assert.equal(response.status, 201);
    const client = asObject(response.json);
    assert.ok(Number.isInteger(client.id));
    assert.equal(client.name, 'Quayside Bakery Ltd');
    assert.equal(client.inactive, false);
    assert.match(String(client.datecreated), DOT_NET_DATE);
    const fetched = asObject((await api.get(`/Client/${String(client.id)}`)).json);
    assert.equal(fetched.name, 'Quayside Bakery Ltd');
  });

  test('several elements return a list', async () => {
    const response = await api.post('/Client', [{ name: 'One Ltd' }, { name: 'Two Ltd' }]);
    assert.equal(response.status, 201);
    const rows = asRows(response.json);
    assert.deepEqual(
      rows.map((row) => row.name),
      ['One Ltd', 'Two Ltd'],
    );
    assert.notEqual(rows[0]?.id, rows[1]?.id);
  });

  test('update merges scalars and replaces arrays', async () => {
    const created = asObject(
      (
        await api.post('/Client', [
          {
            name: 'Merge Test Ltd',
            notes: 'first',
            website: 'https://merge.example',
            customfields: [
              { name: 'CFa', value: '1' },
              { name: 'CFb', value: '2' },
            ],
          },
        ])
      ).json,
    );

    const updated = await api.post('/Client', [
      { id: created.id, notes: 'second', customfields: [{ name: 'CFc', value: '3' }] },
    ]);
    assert.equal(updated.status, 201);
    const client = asObject(updated.json);
    assert.equal(client.id, created.id);
    assert.equal(client.name, 'Merge Test Ltd');
    assert.equal(client.website, 'https://merge.example');
    assert.equal(client.notes, 'second');
    assert.deepEqual(client.customfields, [{ name: 'CFc', value: '3' }]);
  });

  test('update of a missing id is 400 by default', async () => {
    const message = exceptionMessage(await api.post('/Client', [{ id: 987654, name: 'Ghost' }]));
    assert.match(message, /987654/);
  });

  test('update of a missing id can create instead', async () => {
    await control(emulator.url, 'POST', '/config', { unknownIdPolicy: 'create' });
    const response = await api.post('/Client', [{ id: 987654, name: 'Ghost' }]);
    assert.equal(response.status, 201);
    assert.notEqual(asObject(response.json).id, 987654);
  });

  test('id 0 creates', async () => {
    const response = await api.post('/Client', [{ id: 0, name: 'Zero Ltd' }]);
    assert.equal(response.status, 201);
    assert.ok((asObject(response.json).id as number) > 0);
  });

  test('non-integer id field is a model-state 400', async () => {
    const response = await api.post('/Site', [{ name: 'Annex', client_id: '12' }]);
    assert.equal(response.status, 400);
    const errors = asObject(response.json);
    assert.deepEqual(Object.keys(errors), ['[0].client_id']);
  });

  test('a rejected batch stores nothing', async () => {
    const response = await api.post('/Client', [{ name: 'Valid Ltd' }, { notes: 'no name' }]);
    assert.equal(response.status, 400);
    const names = (await storedRecords(emulator.url, 'client')).map((row) => row.name);
    assert.ok(!names.includes('Valid Ltd'));
  });

  test('control flags are not stored', async () => {
    const response = await api.post('/Client', [{ name: 'Flags Ltd', _novalidate: true }]);
    assert.equal(asObject(response.json)._novalidate, undefined);
  });
});

describe('customer validation', () => {
  test('Client needs a name', async () => {
    assert.match(exceptionMessage(await api.post('/Client', [{ notes: 'x' }])), /name/);
  });

  test('Site needs a name and an existing client', async () => {
    assert.match(exceptionMessage(await api.post('/Site', [{ client_id: 12 }])), /name/);
    assert.match(exceptionMessage(await api.post('/Site', [{ name: 'Annex' }])), /client_id/);
    assert.match(
      exceptionMessage(await api.post('/Site', [{ name: 'Annex', client_id: 999 }])),
      /999/,
    );
    const created = await api.post('/Site', [{ name: 'Annex', client_id: 12 }]);
    assert.equal(created.status, 201);
    assert.equal(
      asObject(created.json).client_name,
      asObject((await api.get('/Client/12')).json).name,
    );
  });

  test('Users need a name and an existing site', async () => {
    const { siteId } = await siteAndUser(13);
    assert.match(exceptionMessage(await api.post('/Users', [{ site_id: siteId }])), /name/);
    assert.match(exceptionMessage(await api.post('/Users', [{ name: 'Pat' }])), /site_id/);
    assert.match(exceptionMessage(await api.post('/Users', [{ name: 'Pat', site_id: 9 }])), /9/);

    const created = await api.post('/Users', [{ name: 'Pat Doe', site_id: siteId }]);
    assert.equal(created.status, 201);
    assert.equal(asObject(created.json).client_id, 13);
  });
});

describe('licence validation', () => {
  test('needs an existing client', async () => {
    assert.match(exceptionMessage(await api.post('/SoftwareLicence', [{ count: 1 }])), /client_id/);
    assert.match(
      exceptionMessage(await api.post('/SoftwareLicence', [{ client_id: 999, count: 1 }])),
      /999/,
    );
  });

  test('needs an existing item when given', async () => {
    const message = exceptionMessage(
      await api.post('/SoftwareLicence', [{ client_id: 12, item_id: 4242, count: 1 }]),
    );
    assert.match(message, /item_id 4242/);
  });

  test('count must be a non-negative integer', async () => {
    assert.match(
      exceptionMessage(await api.post('/SoftwareLicence', [{ client_id: 12, count: -1 }])),
      /count/,
    );
    const fractional = await api.post('/SoftwareLicence', [{ client_id: 12, count: 2.5 }]);
    assert.equal(fractional.status, 400);
    assert.deepEqual(Object.keys(asObject(fractional.json)), ['[0].count']);
  });

  test('creates and updates the quantity', async () => {
    const items = asRows(asObject((await api.get('/Item')).json).items);
    const dmarc = items.find((item) => item.name === 'DMARC Monitoring (per domain)');
    const created = asObject(
      (
        await api.post('/SoftwareLicence', [
          { client_id: 12, item_id: dmarc?.id, name: 'DMARC Monitoring', count: 3 },
        ])
      ).json,
    );
    assert.equal(created.count, 3);

    const updated = asObject(
      (await api.post('/SoftwareLicence', [{ id: created.id, count: 5 }])).json,
    );
    assert.equal(updated.count, 5);
    assert.equal(updated.item_id, dmarc?.id);
    assert.equal(updated.name, 'DMARC Monitoring');
  });
});

describe('ticket validation', () => {
  test('needs an existing ticket type', async () => {
    const message = exceptionMessage(
      await api.post('/Tickets', [{ summary: 'S', client_id: 12, tickettype_id: 77 }]),
    );
    assert.match(message, /tickettype_id 77/);
  });

  test('type that rejects API creation is 400', async () => {
    const types = asRows((await api.get('/TicketType')).json);
    const change = types.find((type) => type.name === 'Change Request');
    const response = await api.post('/Tickets', [
      { summary: 'S', client_id: 12, tickettype_id: change?.id },
    ]);
    assert.equal(response.status, 400);
    assert.deepEqual(response.json, {
      resultCode: 1,
      errorMessage: 'CODE:APP03/2 Please select the CAB members to approve',
    });
  });

  test('nested tickettype is ignored for the default type', async () => {
    const response = await api.post('/Tickets', [
      { summary: 'Nested', client_id: 12, tickettype: { id: 5 } },
    ]);
    assert.equal(response.status, 201);
    const ticket = asObject(response.json);
    assert.equal(ticket.tickettype_id, 1);
    assert.equal(ticket.tickettype_name, 'Incident');
  });

  test('needs an existing client', async () => {
    assert.match(
      exceptionMessage(await api.post('/Tickets', [{ summary: 'S', tickettype_id: 5 }])),
      /client_id/,
    );
    assert.match(
      exceptionMessage(
        await api.post('/Tickets', [{ summary: 'S', tickettype_id: 5, client_id: 999 }]),
      ),
      /999/,
    );
  });

  test('site must belong to the client', async () => {
    const { siteId } = await siteAndUser(13);
    const message = exceptionMessage(
      await api.post('/Tickets', [
        { summary: 'S', tickettype_id: 5, client_id: 12, site_id: siteId },
      ]),
    );
    assert.match(message, new RegExp(`site_id ${siteId}`));
  });

  test('user needs its site', async () => {
    const { siteId, userId } = await siteAndUser(12);
    const withoutSite = await api.post('/Tickets', [
      { summary: 'S', tickettype_id: 5, client_id: 12, user_id: userId },
    ]);
    assert.match(exceptionMessage(withoutSite), /site_id/);

    const other = await siteAndUser(13);
    const wrongUser = await api.post('/Tickets', [
      { summary: 'S', tickettype_id: 5, client_id: 12, site_id: siteId, user_id: other.userId },
    ]);
    assert.match(exceptionMessage(wrongUser), new RegExp(`user_id ${other.userId}`));
  });

  test('needs a summary', async () => {
    assert.match(
      exceptionMessage(await api.post('/Tickets', [{ tickettype_id: 5, client_id: 12 }])),
      /summary/,
    );
  });

  test('stores every posted field', async () => {
    const { siteId, userId } = await siteAndUser(12);
    const posted = {
      summary: 'DMARC failure volume above threshold for example.com',
      details: 'Failing volume 1,204 of 9,880 messages.',
      details_html: '<p>Failing volume 1,204</p>',
      tickettype_id: 5,
      client_id: 12,
      site_id: siteId,
      user_id: userId,
      priority_id: 2,
      source: 'dmarcdesk',
      third_party_id_string: 'alert-42',
      customfields: [{ name: 'CFDomain', value: 'example.com' }],
      donotapplytemplateintheapi: true,
    };
    const response = await api.post('/Tickets', [posted]);
    assert.equal(response.status, 201);
    const ticket = asObject(response.json);
    for (const [field, value] of Object.entries(posted)) {
      assert.deepEqual(ticket[field], value, field);
    }
    assert.match(String(ticket.dateoccurred), DOT_NET_DATE);
    assert.equal(ticket.dateclosed, '1900-01-01T00:00:00');
    assert.equal(ticket.deleted, false);
    assert.equal(ticket.tickettype_name, 'Alert');

    const fetched = asObject((await api.get(`/Tickets/${String(ticket.id)}`)).json);
    assert.equal(fetched.third_party_id_string, 'alert-42');
  });
});

describe('ticket soft delete', () => {
  test('DELETE hides the ticket and deleted=true lists it', async () => {
    const ticket = asObject(
      (await api.post('/Tickets', [{ summary: 'To delete', client_id: 12, tickettype_id: 5 }]))
        .json,
    );
    const path = `/Tickets/${String(ticket.id)}`;

    const deleted = await api.delete(`${path}?reason=duplicate`);
    assert.equal(deleted.status, 200);
    assert.equal(asObject(deleted.json).deleted, true);
    assert.equal((await api.get(path)).status, 404);

    const live = asRows(asObject((await api.get('/Tickets?client_id=12')).json).tickets);
    assert.ok(!live.some((row) => row.id === ticket.id));
    const deletedList = asRows(asObject((await api.get('/Tickets?deleted=true')).json).tickets);
    assert.ok(deletedList.some((row) => row.id === ticket.id));

    const stored = await storedRecords(emulator.url, 'Tickets');
    assert.equal(stored.find((row) => row.id === ticket.id)?.deleted, true);
  });

  test('_recover restores a deleted ticket', async () => {
    const ticket = asObject(
      (await api.post('/Tickets', [{ summary: 'Recover me', client_id: 12, tickettype_id: 5 }]))
        .json,
    );
    await api.delete(`/Tickets/${String(ticket.id)}`);

    const withoutFlag = await api.post('/Tickets', [{ id: ticket.id, summary: 'Recover me' }]);
    assert.equal(withoutFlag.status, 400);

    const recovered = await api.post('/Tickets', [{ id: ticket.id, _recover: true }]);
    assert.equal(recovered.status, 201);
    assert.equal(asObject(recovered.json).deleted, false);
    assert.equal((await api.get(`/Tickets/${String(ticket.id)}`)).status, 200);
  });
});

describe('deletes', () => {
  test('DELETE returns the deleted record', async () => {
    const client = asObject((await api.post('/Client', [{ name: 'Short Lived Ltd' }])).json);
    const response = await api.delete(`/Client/${String(client.id)}`);
    assert.equal(response.status, 200);
    assert.equal(asObject(response.json).name, 'Short Lived Ltd');
    assert.equal((await api.get(`/Client/${String(client.id)}`)).status, 404);
  });

  test('DELETE of a licence removes it', async () => {
    const licence = asObject(
      (await api.post('/SoftwareLicence', [{ client_id: 12, count: 1 }])).json,
    );
    const response = await api.delete(`/SoftwareLicence/${String(licence.id)}`);
    assert.equal(response.status, 200);
    assert.equal(asObject(response.json).id, licence.id);
    assert.equal((await api.get(`/SoftwareLicence/${String(licence.id)}`)).status, 404);
  });

  test('DELETE of a missing id is 404', async () => {
    assert.equal((await api.delete('/Site/999999')).status, 404);
  });
});

describe('actions', () => {
  async function newTicket(): Promise<number> {
    const response = await api.post('/Tickets', [
      { summary: 'Actions', client_id: 12, tickettype_id: 5 },
    ]);
    return asObject(response.json).id as number;
  }

  test('need an outcome', async () => {
    const ticketId = await newTicket();
    const message = exceptionMessage(
      await api.post('/Actions', [{ ticket_id: ticketId, note: 'x' }]),
    );
    assert.equal(message, 'An Outcome must be entered for this Action');
  });

  test('need an existing ticket', async () => {
    assert.match(
      exceptionMessage(await api.post('/Actions', [{ note: 'x', outcome_id: 7 }])),
      /ticket_id/,
    );
    assert.match(
      exceptionMessage(await api.post('/Actions', [{ ticket_id: 5, note: 'x', outcome_id: 7 }])),
      /ticket_id 5/,
    );
  });

  test('are numbered per ticket', async () => {
    const first = await newTicket();
    const second = await newTicket();
    const a = asObject(
      (await api.post('/Actions', [{ ticket_id: first, outcome_id: 7, note: 'a' }])).json,
    );
    const b = asObject(
      (await api.post('/Actions', [{ ticket_id: first, outcome: 'Internal Note', note: 'b' }]))
        .json,
    );
    const c = asObject(
      (await api.post('/Actions', [{ ticket_id: second, outcome_id: 7, note: 'c' }])).json,
    );
    assert.equal(a.id, 2);
    assert.equal(b.id, 3);
    assert.equal(c.id, 2);
    assert.equal(b.outcome_id, 7);
    assert.equal(a.actionby_application_id, DEMO_CLIENT_ID);

    const listed = asObject((await api.get(`/Actions?ticket_id=${first}`)).json);
    assert.equal(listed.ticket_id, first);
    assert.equal(listed.record_count, 3);
    assert.deepEqual(
      asRows(listed.actions).map((row) => row.id),
      [1, 2, 3],
    );

    const single = asObject((await api.get(`/Actions/3?ticket_id=${first}`)).json);
    assert.equal(single.note, 'b');
  });

  test('forbidden outcome is 400', async () => {
    await control(emulator.url, 'POST', '/config', { forbiddenOutcomeIds: [7] });
    const ticketId = await newTicket();
    const message = exceptionMessage(
      await api.post('/Actions', [{ ticket_id: ticketId, outcome_id: 7 }]),
    );
    assert.equal(message, 'You do not have access to this Action at the moment');
  });

  test('DELETE needs ticket_id and removes the action', async () => {
    const ticketId = await newTicket();
    await api.post('/Actions', [{ ticket_id: ticketId, outcome_id: 7, note: 'gone' }]);
    assert.equal((await api.delete('/Actions/2')).status, 400);
    const response = await api.delete(`/Actions/2?ticket_id=${ticketId}`);
    assert.equal(response.status, 200);
    assert.equal(asObject(response.json).note, 'gone');
    assert.equal((await api.get(`/Actions/2?ticket_id=${ticketId}`)).status, 404);
  });
});
