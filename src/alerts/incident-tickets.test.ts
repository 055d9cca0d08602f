import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../../test/support/service.ts';
import { aggregateReportXml, reportDay, rows } from './test-reports.ts';

interface EmulatorRecord {
  id: number;
  [field: string]: unknown;
}

const NOTE_OUTCOME = 7;

async function emulatorRecords(
  emulator: RunningEmulator,
  resource: string,
): Promise<EmulatorRecord[]> {
  const response = await fetch(`${emulator.url}/_emulator/records/${resource}`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { records: EmulatorRecord[] }).records;
}

async function emulatorControl(emulator: RunningEmulator, path: string, body: unknown) {
  const response = await fetch(`${emulator.url}/_emulator${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.ok(response.ok, `${path}: ${response.status}`);
}

/**
 * Start a service connected to a fresh emulator, with one customer mapped and its ticket rule
 * covering the threshold alerts of the domains that `domainsWithTickets` adds.
 */
function connectedService(
  engine: (typeof DATABASE_ENGINES)[number],
  environment: Record<string, string>,
) {
  const context = {
    database: undefined as TestDatabase | undefined,
    emulator: undefined as unknown as RunningEmulator,
    service: undefined as unknown as TestService,
    api: undefined as unknown as ReturnType<typeof apiClient>,
    customerId: '',
    haloClientId: 0,
    ticketTypeId: 0,
    reportNumber: 0,
  };

  before(async () => {
    context.database = await openTestDatabase(engine);
    context.emulator = await startEmulator({ rateLimit: null });
    context.service = await startService(context.database, {
      allowedHosts: [new URL(context.emulator.url).host],
      environment,
    });
    const api = apiClient(
      context.service.url,
      (await createTestAccount(context.service.app)).token,
    );
    context.api = api;
    context.customerId = (await api('POST', '/customers', { name: 'Incident Clinic' })).body.id;
    const connected = await api('PUT', '/integrations/halopsa/connection', {
      url: context.emulator.url,
      clientId: 'dmarcdesk-demo',
      clientSecret: 'demo-secret-change-me',
    });
    assert.equal(connected.status, 200, JSON.stringify(connected.body));
    const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients;
    context.haloClientId = clients.find((client: { inactive: boolean }) => !client.inactive).id;
    const items = (await api('GET', '/integrations/halopsa/items')).body.items;
    const item = items.find(
      (entry: { name: string }) => entry.name === 'DMARC Monitoring (per domain)',
    );
    context.ticketTypeId = (
      await api('GET', '/integrations/halopsa/ticket-types')
    ).body.defaultTicketTypeId;
    const mapped = await api('PUT', '/integrations/halopsa/mappings', {
      mappings: [
        { customerId: context.customerId, haloClientId: context.haloClientId, haloItemId: item.id },
      ],
    });
    assert.equal(mapped.status, 200);
  });

  after(async () => {
    await context.service?.stop();
    await context.emulator?.close();
    await context.database?.drop();
  });

  return context;
}

type Context = ReturnType<typeof connectedService>;

/** Add domains with a 24-hour count rule (more than 3 failing) whose alerts make tickets. */
async function domainsWithTickets(context: Context, names: string[]): Promise<string[]> {
  const { api } = context;
  const ids: string[] = [];
  for (const name of names) {
    const domain = await api('POST', `/customers/${context.customerId}/domains`, { name });
    assert.equal(domain.status, 201);
    ids.push(domain.body.id);
    const rule = await api('PUT', `/domains/${domain.body.id}/threshold`, {
      maxFailedMessages: 3,
      windowHours: 24,
    });
    assert.equal(rule.status, 200);
  }
  const current = (await api('GET', `/integrations/halopsa/ticket-rules/${context.customerId}`))
    .body.rule;
  const saved = await api('PUT', `/integrations/halopsa/ticket-rules/${context.customerId}`, {
    ticketTypeId: context.ticketTypeId,
    thresholdDomainIds: [...(current?.thresholdDomainIds ?? []), ...ids],
  });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  return ids;
}

async function uploadDay(context: Context, domain: string, day: number, failed: number) {
  context.reportNumber += 1;
  const xml = aggregateReportXml({
    domain,
    orgName: 'google.com',
    reportId: `incident-${context.reportNumber}`,
    period: reportDay(day),
    records: rows(failed, 20),
  });
  const response = await context.api('POST', '/reports', xml, 'application/xml');
  assert.equal(response.status, 201, JSON.stringify(response.body));
}

async function incidentOf(context: Context, domain: string) {
  const incidents = (await context.api('GET', '/incidents?kind=threshold')).body.incidents.filter(
    (incident: { subjectName: string }) => incident.subjectName === domain,
  );
  assert.equal(incidents.length, 1, `one incident for ${domain}`);
  return (await context.api('GET', `/incidents/${incidents[0].id}`)).body;
}

/** List the notes dmarcdesk added to a ticket: actions with the note outcome. */
async function notesOn(context: Context, ticketId: number): Promise<EmulatorRecord[]> {
  return (await emulatorRecords(context.emulator, 'Actions')).filter(
    (action) => action.ticket_id === ticketId && action.outcome_id === NOTE_OUTCOME,
  );
}

async function ticketsOf(context: Context, domain: string): Promise<EmulatorRecord[]> {
  return (await emulatorRecords(context.emulator, 'Tickets')).filter(
    (ticket) =>
      typeof ticket.third_party_id_string === 'string' &&
      String(ticket.summary).endsWith(`: ${domain}`),
  );
}

for (const engine of DATABASE_ENGINES) {
  describe(`incident tickets on ${engine}`, () => {
    const context = connectedService(engine, {
      DMARCDESK_INCIDENT_NOTE_INTERVAL_MINUTES: '0',
      DMARCDESK_HALOPSA_TICKET_SOURCE_ID: '9',
      DMARCDESK_HALOPSA_TICKET_PRIORITIES: 'threshold=2,forensic=4',
    });

    test('first connection leaves the note outcome unverified', async () => {
      const { connection } = (await context.api('GET', '/integrations/halopsa/connection')).body;
      assert.equal(connection.noteOutcome.id, NOTE_OUTCOME);
      assert.equal(connection.noteOutcome.status, 'unverified');
      assert.match(connection.noteOutcome.detail, /Outcome 7 \("Internal Note"\) exists/);
    });

    test('repeated firings make one ticket and notes', async () => {
      await domainsWithTickets(context, ['notes.example']);
      await uploadDay(context, 'notes.example', 1, 5);
      const ticket = await eventually(async () => {
        const tickets = await ticketsOf(context, 'notes.example');
        return tickets.length === 1 ? tickets[0] : undefined;
      }, 'the incident ticket');
      assert.equal(ticket.source, 9);
      assert.equal(ticket.priority_id, 2);
      assert.match(String(ticket.details), /Window: 24 hours/);
      assert.match(String(ticket.details), /Failed DMARC: 5 of 25 messages \(20\.0 %\)/);
      assert.match(String(ticket.details), /198\.51\.100\.10: 3 messages/);

      await uploadDay(context, 'notes.example', 2, 6);
      const first = await eventually(async () => {
        const notes = await notesOn(context, ticket.id);
        return notes.length === 1 ? notes[0] : undefined;
      }, 'a note for the second firing');
      assert.equal(first.hiddenfromuser, true);
      assert.match(String(first.note), /fired again: 1 firing since the last update/);
      assert.match(String(first.note), /6 of 26 messages failed DMARC/);
      assert.match(
        String(first.note),
        /Incident in dmarcdesk: http:\/\/\S+\/alerts\/[0-9a-f-]{36}\n/,
      );

      await uploadDay(context, 'notes.example', 3, 7);
      const notes = await eventually(async () => {
        const current = await notesOn(context, ticket.id);
        return current.length === 2 ? current : undefined;
      }, 'a note for the third firing');
      assert.match(String(notes[1]!.note), /7 of 27 messages failed DMARC/);
      assert.equal((await ticketsOf(context, 'notes.example')).length, 1);

      const { incident, alerts } = await incidentOf(context, 'notes.example');
      assert.equal(incident.halopsaTicketId, ticket.id);
      assert.equal(incident.firingCount, 3);
      assert.deepEqual(alerts.map((alert: { ticketStatus: string }) => alert.ticketStatus).sort(), [
        'created',
        'noted',
        'noted',
      ]);
    });

    test('incident resolves after the clear time with a closing note', async () => {
      const { incident: open } = await incidentOf(context, 'notes.example');
      // Day 4 is clear, and its window ends 24 hours (the clear time) after the last firing.
      await uploadDay(context, 'notes.example', 4, 0);
      const closing = await eventually(async () => {
        const notes = await notesOn(context, open.halopsaTicketId);
        return notes.length === 3 ? notes[2] : undefined;
      }, 'the closing note');
      assert.match(String(closing.note), /is resolved/);
      assert.match(String(closing.note), /clear for at least 24 hours of report time/);

      const { incident, notes } = await incidentOf(context, 'notes.example');
      assert.equal(incident.status, 'resolved');
      assert.deepEqual(
        notes.map((note: { kind: string; status: string }) => `${note.kind}:${note.status}`),
        ['firing:sent', 'firing:sent', 'closing:sent'],
      );
    });

    test('connection check verifies the note outcome', async () => {
      const before = (
        await notesOn(
          context,
          (await incidentOf(context, 'notes.example')).incident.halopsaTicketId,
        )
      ).length;
      const connected = await context.api('PUT', '/integrations/halopsa/connection', {
        url: context.emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      assert.equal(connected.status, 200);
      assert.equal(connected.body.connection.noteOutcome.status, 'verified');
      const ticketId = (await incidentOf(context, 'notes.example')).incident.halopsaTicketId;
      const notes = await notesOn(context, ticketId);
      assert.equal(notes.length, before + 1);
      assert.match(String(notes.at(-1)!.note), /connection check/);
      assert.equal(notes.at(-1)!.hiddenfromuser, true);
    });

    test('forbidden note outcome is reported at connect time', async () => {
      await emulatorControl(context.emulator, '/config', { forbiddenOutcomeIds: [NOTE_OUTCOME] });
      try {
        const refused = await context.api('PUT', '/integrations/halopsa/connection', {
          url: context.emulator.url,
          clientId: 'dmarcdesk-demo',
          clientSecret: 'demo-secret-change-me',
        });
        assert.equal(refused.status, 422);
        assert.equal(refused.body.error.code, 'halopsa_connection_failed');
        assert.equal(refused.body.error.details.noteOutcomeId, NOTE_OUTCOME);
        assert.match(refused.body.error.message, /outcome 7/);
        assert.match(refused.body.error.message, /You do not have access to this Action/);

        // A note that fails the same way is reported in the summary; tickets still go out.
        await domainsWithTickets(context, ['forbidden.example']);
        await uploadDay(context, 'forbidden.example', 1, 5);
        await eventually(
          async () =>
            (await ticketsOf(context, 'forbidden.example')).length === 1 ? true : undefined,
          'the ticket of forbidden.example',
        );
        await uploadDay(context, 'forbidden.example', 2, 5);
        const failed = await eventually(async () => {
          const { alerts } = await incidentOf(context, 'forbidden.example');
          return alerts.find((alert: { ticketStatus: string }) => alert.ticketStatus === 'failed');
        }, 'the firing whose note failed');
        assert.match(failed.ticketError, /outcome 7/);
        const { connection } = (await context.api('GET', '/integrations/halopsa/connection')).body;
        assert.equal(connection.status, 'healthy');
        assert.equal(connection.noteOutcome.status, 'forbidden');
        const summary = (await context.api('GET', '/integrations/halopsa')).body;
        assert.match(summary.attention, /outcome 7/);

        // Tickets of other incidents are not held back by the rejected outcome.
        await domainsWithTickets(context, ['after-forbidden.example']);
        await uploadDay(context, 'after-forbidden.example', 1, 5);
        await eventually(
          async () =>
            (await ticketsOf(context, 'after-forbidden.example')).length === 1 ? true : undefined,
          'the ticket of after-forbidden.example',
        );
      } finally {
        await emulatorControl(context.emulator, '/config', { forbiddenOutcomeIds: [] });
        // A successful check clears the rejected outcome from the summary.
        const reconnected = await context.api('PUT', '/integrations/halopsa/connection', {
          url: context.emulator.url,
          clientId: 'dmarcdesk-demo',
          clientSecret: 'demo-secret-change-me',
        });
        assert.equal(reconnected.status, 200, JSON.stringify(reconnected.body));
        const summary = (await context.api('GET', '/integrations/halopsa')).body;
        assert.equal(summary.attention, null);
      }
    });

    test('rejected priority is dropped from the ticket', async () => {
      await domainsWithTickets(context, ['priority.example']);
      await emulatorControl(context.emulator, '/faults', {
        faults: [
          {
            match: { method: 'POST', path: '/api/Tickets' },
            kind: 'status',
            status: 400,
            body: {
              ClassName: 'System.Exception',
              Message: 'The priority is not valid for this SLA',
            },
            times: 1,
          },
        ],
      });
      await uploadDay(context, 'priority.example', 1, 5);
      const ticket = await eventually(async () => {
        const tickets = await ticketsOf(context, 'priority.example');
        return tickets.length === 1 ? tickets[0] : undefined;
      }, 'the ticket made without a priority');
      assert.equal(ticket.priority_id, undefined);
      assert.equal(ticket.source, 9);
    });

    test('lost note response adds one note', async () => {
      await domainsWithTickets(context, ['lost-note.example']);
      await uploadDay(context, 'lost-note.example', 1, 5);
      const ticket = await eventually(async () => {
        const tickets = await ticketsOf(context, 'lost-note.example');
        return tickets.length === 1 ? tickets[0] : undefined;
      }, 'the incident ticket');

      // HaloPSA saves the note, then the connection drops before its response.
      await emulatorControl(context.emulator, '/faults', {
        faults: [{ match: { method: 'POST', path: '/api/Actions' }, kind: 'drop-response' }],
      });
      await uploadDay(context, 'lost-note.example', 2, 6);
      await eventually(async () => {
        const response = await fetch(`${context.emulator.url}/_emulator/requests/counts`);
        const counts = (await response.json()) as { byFault: Record<string, number> };
        return (counts.byFault['drop-response'] ?? 0) > 0 ? true : undefined;
      }, 'the note whose response was dropped');
      // A firing that arrives before the retry is not in the saved note, so it gets its own.
      await uploadDay(context, 'lost-note.example', 3, 7);
      const noted = await eventually(async () => {
        const { alerts } = await incidentOf(context, 'lost-note.example');
        const count = alerts.filter(
          (alert: { ticketStatus: string }) => alert.ticketStatus === 'noted',
        ).length;
        return count === 2 ? alerts : undefined;
      }, 'both later firings recorded as noted');
      assert.equal(noted.length, 3);
      const notes = await eventually(async () => {
        const current = await notesOn(context, ticket.id);
        return current.length >= 2 ? current : undefined;
      }, 'the notes on the ticket');
      assert.equal(notes.length, 2);
      assert.match(String(notes[0]!.note), /6 of 26 messages failed DMARC/);
      assert.doesNotMatch(String(notes[0]!.note), /7 of 27 messages/);
      assert.match(String(notes[0]!.note), /dmarcdesk note reference: [0-9a-f-]{36}\/1\/1$/);
      assert.match(String(notes[1]!.note), /7 of 27 messages failed DMARC/);
      assert.doesNotMatch(String(notes[1]!.note), /6 of 26 messages/);
      assert.match(String(notes[1]!.note), /dmarcdesk note reference: [0-9a-f-]{36}\/2\/1$/);
    });

    test('incident resolved before its ticket gets a closing note', async () => {
      await domainsWithTickets(context, ['late-ticket.example']);
      // The ticket's POST takes 4 s, and the incident resolves while it is in flight.
      await emulatorControl(context.emulator, '/faults', {
        faults: [
          {
            match: { method: 'POST', path: '/api/Tickets' },
            kind: 'latency',
            delayMs: 4000,
            times: 1,
          },
        ],
      });
      await uploadDay(context, 'late-ticket.example', 1, 5);
      await eventually(async () => {
        const response = await fetch(`${context.emulator.url}/_emulator/requests/counts`);
        const counts = (await response.json()) as { inFlight: number };
        return counts.inFlight > 0 ? true : undefined;
      }, 'the ticket POST to be in flight');
      await uploadDay(context, 'late-ticket.example', 2, 0);
      const { incident: resolved } = await incidentOf(context, 'late-ticket.example');
      assert.equal(resolved.status, 'resolved');
      assert.equal(resolved.halopsaTicketId, null);

      const ticket = await eventually(async () => {
        const tickets = await ticketsOf(context, 'late-ticket.example');
        return tickets.length === 1 ? tickets[0] : undefined;
      }, 'the incident ticket');
      const closing = await eventually(async () => {
        const notes = await notesOn(context, ticket.id);
        return notes.length === 1 ? notes[0] : undefined;
      }, 'the closing note on the late ticket');
      assert.match(String(closing.note), /is resolved/);
      const { notes } = await incidentOf(context, 'late-ticket.example');
      assert.deepEqual(
        notes.map((note: { kind: string; status: string }) => `${note.kind}:${note.status}`),
        ['closing:sent'],
      );
    });
  });

  describe(`flapping on ${engine}`, () => {
    // The default minimum interval between notes, 60 minutes, applies.
    const context = connectedService(engine, {});

    test('flapping makes one ticket and one note', async () => {
      await domainsWithTickets(context, ['flap.example']);
      await uploadDay(context, 'flap.example', 1, 5);
      const ticket = await eventually(async () => {
        const tickets = await ticketsOf(context, 'flap.example');
        return tickets.length === 1 ? tickets[0] : undefined;
      }, 'the incident ticket');
      await eventually(async () => {
        const { incident } = await incidentOf(context, 'flap.example');
        return incident.ticketStatus === 'created' ? true : undefined;
      }, 'the incident to record its ticket');

      // Clear, failing, clear, failing, clear: each clear day resolves the incident and each
      // failing day reopens it, all within the minimum interval after the ticket was made.
      for (const [day, failed] of [
        [2, 0],
        [3, 6],
        [4, 0],
        [5, 7],
        [6, 0],
      ] as const) {
        await uploadDay(context, 'flap.example', day, failed);
      }
      const { incident, alerts } = await incidentOf(context, 'flap.example');
      assert.equal(incident.status, 'resolved');
      assert.equal(incident.reopenCount, 2);
      assert.equal(incident.firingCount, 3);
      assert.deepEqual(alerts.map((alert: { ticketStatus: string }) => alert.ticketStatus).sort(), [
        'created',
        'held',
        'held',
      ]);
      // Nothing is due yet: the interval since the ticket has not passed.
      assert.equal((await context.service.app.incidents.runOnce()).notesQueued, 0);
      assert.equal((await notesOn(context, ticket.id)).length, 0);
      assert.equal((await ticketsOf(context, 'flap.example')).length, 1);

      // Two hours later (the stored time of the ticket moves back), one note covers it all.
      await context.service.app.db.query(
        `UPDATE alert_incidents SET last_note_at = last_note_at - interval '2 hours' WHERE id = $1`,
        [incident.id],
      );
      assert.equal((await context.service.app.incidents.runOnce()).notesQueued, 1);
      const [note] = await eventually(async () => {
        const notes = await notesOn(context, ticket.id);
        return notes.length === 1 ? notes : undefined;
      }, 'the one note after the interval');
      assert.match(String(note!.note), /is resolved/);
      assert.match(String(note!.note), /6 of 26 messages failed DMARC/);
      assert.match(String(note!.note), /7 of 27 messages failed DMARC/);
      assert.match(String(note!.note), /Firings in this incident: 3/);

      await eventually(async () => {
        const current = await incidentOf(context, 'flap.example');
        return current.notes.length === 1 ? true : undefined;
      }, 'the note to be recorded');
      assert.equal((await context.service.app.incidents.runOnce()).notesQueued, 0);
      assert.equal((await notesOn(context, ticket.id)).length, 1);
      assert.equal((await ticketsOf(context, 'flap.example')).length, 1);
    });
  });
}

for (const engine of DATABASE_ENGINES) {
  describe(`missing note outcome on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator({ rateLimit: null });
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: { DMARCDESK_HALOPSA_NOTE_OUTCOME_ID: '99' },
      });
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('connect rejects an unknown outcome', async () => {
      const api = apiClient(service.url, (await createTestAccount(service.app)).token);

      const refused = await api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      const stored = await api('GET', '/integrations/halopsa/connection');

      assert.equal(refused.status, 422);
      assert.equal(refused.body.error.code, 'halopsa_connection_failed');
      assert.equal(refused.body.error.field, 'noteOutcomeId');
      assert.equal(refused.body.error.details.problem, 'missing');
      assert.match(refused.body.error.message, /no action outcome with id 99/);
      assert.match(refused.body.error.message, /DMARCDESK_HALOPSA_NOTE_OUTCOME_ID/);
      assert.equal(stored.body.connection, null);
    });
  });
}
