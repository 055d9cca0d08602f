import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { JobDeferred } from '../../src/jobs/queue.ts';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import type { NoteJob, TicketJob } from '../../src/integration/ticket-dispatch.ts';
import { DATABASE_ENGINES, openTestDatabase, type TestDatabase } from '../support/databases.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../support/service.ts';

interface Ticket {
  id: number;
  third_party_id_string?: string;
  deleted?: boolean;
}

interface RequestCounts {
  byRoute: Record<string, number>;
  byStatus: Record<string, number>;
}

const TICKET_POSTS = 'POST /api/tickets';
const TICKET_LOOKUPS = 'GET /api/tickets';
const NOTE_POSTS = 'POST /api/actions';
const NOTE_LOOKUPS = 'GET /api/actions';

interface Action {
  id: number;
  ticket_id: number;
  note?: string;
}

/** Builds an aggregate report for `domain` in which `failed` messages from one source fail DMARC. */
function failingReport(domain: string, reportId: string, failed: number, day = 0): Buffer {
  const begin = 1700000000 + day * 86400;
  return Buffer.from(`<?xml version="1.0"?><feedback><report_metadata><org_name>batch.example</org_name>
<email>r@batch.example</email><report_id>${reportId}</report_id><date_range><begin>${begin}</begin><end>${begin + 86399}</end></date_range>
</report_metadata><policy_published><domain>${domain}</domain><p>reject</p></policy_published>
<record><row><source_ip>198.51.100.9</source_ip><count>${failed}</count><policy_evaluated><disposition>reject</disposition>
<dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>${domain}</header_from></identifiers>
<auth_results><spf><domain>${domain}</domain><result>fail</result></spf></auth_results></record></feedback>`);
}

for (const engine of DATABASE_ENGINES) {
  describe(`ticket batches on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let accountId: string;
    let clients: number[] = [];
    let itemId: number;
    const ticketTypes: Record<string, number> = {};
    const mappings: { customerId: string; haloClientId: number; haloItemId: number }[] = [];

    const tickets = async (): Promise<Ticket[]> =>
      (
        (await (await fetch(`${emulator.url}/_emulator/records/Tickets`)).json()) as {
          records: Ticket[];
        }
      ).records.filter((ticket) => !ticket.deleted);
    const requestCounts = async (): Promise<RequestCounts> =>
      (await (await fetch(`${emulator.url}/_emulator/requests/counts`)).json()) as RequestCounts;
    const clearRequests = async () => {
      await fetch(`${emulator.url}/_emulator/requests`, { method: 'DELETE' });
    };

    /**
     * Maps a customer with one domain to the next HaloPSA client, with a threshold rule of 0
     * and a ticket rule of `ticketType`, then uploads a failing report. No worker runs, so the
     * ticket job stays queued; returns the alert id for the test to run it.
     */
    async function alertFor(prefix: string, index: number, ticketType: string): Promise<string> {
      const name = `${prefix}-${index}.example`;
      const customer = (await api('POST', '/customers', { name: `${prefix} ${index}` })).body;
      const domain = (await api('POST', `/customers/${customer.id}/domains`, { name })).body;
      await api('PUT', `/domains/${domain.id}/threshold`, { maxFailedMessages: 0 });
      mappings.push({
        customerId: customer.id,
        haloClientId: clients[mappings.length]!,
        haloItemId: itemId,
      });
      assert.equal((await api('PUT', '/integrations/halopsa/mappings', { mappings })).status, 200);
      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
        ticketTypeId: ticketTypes[ticketType],
        thresholdDomainIds: [domain.id],
      });
      assert.equal(rule.status, 200);

      const reportId = `${prefix}-report-${index}`;
      const upload = await api(
        'POST',
        '/reports',
        failingReport(name, reportId, 3),
        'application/xml',
      );
      assert.equal(upload.status, 201);
      const alert = await eventually(async () => {
        const alerts = (await api('GET', '/alerts?limit=500')).body.alerts as {
          id: string;
          evidence: { reportId: string };
        }[];
        return alerts.find((candidate) => candidate.evidence.reportId === reportId);
      }, `the alert of report ${reportId}`);
      return alert.id;
    }

    const jobsOf = (alertIds: string[], settleRetries?: number): TicketJob[] =>
      alertIds.map((alertId) => ({
        id: randomUUID(),
        data: { accountId, alertId, ...(settleRetries ? { settleRetries } : {}) },
        retryCount: 0,
      }));

    /**
     * Upload a failing report for day `day` of each alert's domain, which fires its incident
     * again. Returns the note jobs of those incidents for the test to run.
     */
    async function fireAgain(alertIds: string[], day: number): Promise<NoteJob[]> {
      const jobs: NoteJob[] = [];
      for (const alertId of alertIds) {
        const alert = (await api('GET', `/alerts/${alertId}`)).body as {
          incidentId: string;
          domainName: string;
        };
        const reportId = `${alertId}-day-${day}`;
        const upload = await api(
          'POST',
          '/reports',
          failingReport(alert.domainName, reportId, 4, day),
          'application/xml',
        );
        assert.equal(upload.status, 201);
        await eventually(async () => {
          const alerts = (await api('GET', '/alerts?limit=500')).body.alerts as {
            ticketStatus: string;
            evidence: { reportId: string };
          }[];
          const fired = alerts.find((candidate) => candidate.evidence.reportId === reportId);
          return fired?.ticketStatus === 'pending' ? fired : undefined;
        }, `the firing of report ${reportId}, waiting for its note`);
        jobs.push({
          id: randomUUID(),
          data: { accountId, incidentId: alert.incidentId },
          retryCount: 0,
        });
      }
      return jobs;
    }

    const notesOn = async (ticketId: number): Promise<Action[]> =>
      (
        (await (await fetch(`${emulator.url}/_emulator/records/Actions`)).json()) as {
          records: Action[];
        }
      ).records.filter(
        // A new ticket has an action of its own; notes carry dmarcdesk's reference.
        (action) =>
          action.ticket_id === ticketId && /dmarcdesk note reference/.test(action.note ?? ''),
      );

    const ticketIdOf = async (alertId: string): Promise<number> =>
      (await api('GET', `/alerts/${alertId}`)).body.halopsaTicketId;

    const ticketStatus = async (alertId: string): Promise<string> =>
      (await api('GET', `/alerts/${alertId}`)).body.ticketStatus;

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator({ seed: { clients: 30 } });
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: {
          DMARCDESK_HALOPSA_TIMEOUT_MS: '1500',
          DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS: '4',
          // No workers run, so each test passes its own batch of jobs to runBatch.
          DMARCDESK_RUN_WORKERS: 'false',
          // A second firing's note is due at once.
          DMARCDESK_INCIDENT_NOTE_INTERVAL_MINUTES: '0',
        },
      });
      const account = await createTestAccount(service.app);
      accountId = account.accountId;
      api = apiClient(service.url, account.token);
      const connected = await api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      assert.equal(connected.status, 200);
      clients = (
        (await api('GET', '/integrations/halopsa/clients')).body.clients as {
          id: number;
          inactive: boolean;
        }[]
      )
        .filter((client) => !client.inactive)
        .map((client) => client.id);
      itemId = (await api('GET', '/integrations/halopsa/items')).body.items[0].id;
      for (const type of (await api('GET', '/integrations/halopsa/ticket-types')).body
        .ticketTypes as { id: number; name: string }[]) {
        ticketTypes[type.name] = type.id;
      }
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('tickets of one account share a POST', async () => {
      const alertIds: string[] = [];
      for (let index = 0; index < 6; index += 1) {
        alertIds.push(await alertFor('shared', index, 'Alert'));
      }
      await clearRequests();

      const jobs = jobsOf(alertIds);
      const outcomes = await service.app.tickets.runBatch(jobs);
      for (const job of jobs) assert.equal(outcomes.get(job.id), null);

      const counts = await requestCounts();
      assert.equal(counts.byRoute[TICKET_POSTS], 1);
      // No ticket was sent before, so none is looked up.
      assert.equal(counts.byRoute[TICKET_LOOKUPS] ?? 0, 0);
      const stored = await tickets();
      for (const alertId of alertIds) {
        const own = stored.filter((ticket) => ticket.third_party_id_string === alertId);
        assert.equal(own.length, 1, `tickets of alert ${alertId}`);
        assert.equal(await ticketStatus(alertId), 'created');
      }

      // A second run of the same jobs finds every ticket and sends nothing.
      await clearRequests();
      const again = await service.app.tickets.runBatch(jobsOf(alertIds));
      assert.deepEqual(
        [...again.values()],
        alertIds.map(() => null),
      );
      assert.equal((await requestCounts()).byRoute[TICKET_POSTS] ?? 0, 0);
    });

    test('an invalid ticket fails alone', async () => {
      const good = [await alertFor('valid', 0, 'Alert'), await alertFor('valid', 1, 'Alert')];
      // HaloPSA rejects a ticket of a type that needs a CAB, and with it the whole batch.
      const doomed = await alertFor('invalid', 0, 'Change Request');
      await clearRequests();

      const jobs = jobsOf([good[0]!, doomed, good[1]!]);
      const outcomes = await service.app.tickets.runBatch(jobs);
      // A 400 is recorded and not retried, so every job completes.
      for (const job of jobs) assert.equal(outcomes.get(job.id), null);

      const counts = await requestCounts();
      // One batch POST rejected, then one POST per ticket, of which one is rejected again.
      assert.equal(counts.byRoute[TICKET_POSTS], 4);
      assert.equal(counts.byStatus['400'], 2);
      const stored = await tickets();
      for (const alertId of good) {
        assert.equal(stored.filter((ticket) => ticket.third_party_id_string === alertId).length, 1);
        assert.equal(await ticketStatus(alertId), 'created');
      }
      assert.equal(stored.filter((ticket) => ticket.third_party_id_string === doomed).length, 0);
      assert.equal(await ticketStatus(doomed), 'failed');
      assert.match((await api('GET', `/alerts/${doomed}`)).body.ticketError, /CAB/);
    });

    test('a lost batch response creates no duplicate', async () => {
      const alertIds: string[] = [];
      for (let index = 0; index < 4; index += 1) {
        alertIds.push(await alertFor('lost', index, 'Alert'));
      }
      await clearRequests();
      const fault = await fetch(`${emulator.url}/_emulator/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          faults: [
            { match: { method: 'POST', path: '/api/Tickets' }, kind: 'drop-response', times: 1 },
          ],
        }),
      });
      assert.equal(fault.status, 200);

      // The write's outcome is unknown, so each job queues a look after the settle time.
      const outcomes = await service.app.tickets.runBatch(jobsOf(alertIds));
      assert.deepEqual(
        [...outcomes.values()],
        alertIds.map(() => null),
      );
      for (const alertId of alertIds) assert.equal(await ticketStatus(alertId), 'pending');
      // HaloPSA stored the tickets although the response was lost.
      const saved = await tickets();
      for (const alertId of alertIds) {
        assert.equal(saved.filter((ticket) => ticket.third_party_id_string === alertId).length, 1);
      }

      // The settle-and-check run looks each alert up, finds its ticket and adopts it.
      await clearRequests();
      const retried = await service.app.tickets.runBatch(jobsOf(alertIds, 1));
      assert.deepEqual(
        [...retried.values()],
        alertIds.map(() => null),
      );
      const stored = await tickets();
      for (const alertId of alertIds) {
        assert.equal(stored.filter((ticket) => ticket.third_party_id_string === alertId).length, 1);
        assert.equal(await ticketStatus(alertId), 'created');
      }
      const afterRetry = await requestCounts();
      assert.equal(afterRetry.byRoute[TICKET_LOOKUPS], alertIds.length);
      assert.equal(afterRetry.byRoute[TICKET_POSTS] ?? 0, 0);
    });

    test('notes of one account share a POST', async () => {
      const alertIds: string[] = [];
      for (let index = 0; index < 3; index += 1) {
        alertIds.push(await alertFor('noted', index, 'Alert'));
      }
      await service.app.tickets.runBatch(jobsOf(alertIds));
      const noteJobs = await fireAgain(alertIds, 1);
      await clearRequests();

      const outcomes = await service.app.tickets.runNoteBatch(noteJobs);
      assert.deepEqual(
        [...outcomes.values()],
        noteJobs.map(() => null),
      );
      const counts = await requestCounts();
      assert.equal(counts.byRoute[NOTE_POSTS], 1);
      // No note was sent before, so none is looked up on its ticket.
      assert.equal(counts.byRoute[NOTE_LOOKUPS] ?? 0, 0);
      for (const alertId of alertIds) {
        const actions = await notesOn(await ticketIdOf(alertId));
        assert.equal(actions.length, 1, `notes on the ticket of alert ${alertId}`);
        assert.match(String(actions[0]!.note), /4 of 4 messages failed DMARC/);
        assert.match(String(actions[0]!.note), /dmarcdesk note reference: [0-9a-f-]{36}\/1\/1$/);
      }
    });

    test(
      'a note job waits for a firing still being recorded',
      { skip: engine === 'pglite' ? 'PGlite serves one connection at a time' : false },
      async () => {
        const [alertId] = [await alertFor('racing', 0, 'Alert')];
        await service.app.tickets.runBatch(jobsOf([alertId!]));
        const [noteJob] = await fireAgain([alertId!], 1);
        const firingId = (
          (await api('GET', '/alerts?limit=500')).body.alerts as {
            id: string;
            evidence: { reportId: string };
          }[]
        ).find((alert) => alert.evidence.reportId === `${alertId}-day-1`)!.id;

        // The firing is recorded again in a transaction that stays open, as when a report is
        // stored while the incident's queued note job starts.
        const writer = new pg.Client({ connectionString: database.databaseUrl! });
        await writer.connect();
        try {
          await writer.query(`UPDATE alerts SET ticket_status = 'not_routed' WHERE id = $1`, [
            firingId,
          ]);
          await writer.query('BEGIN');
          await writer.query('UPDATE alert_incidents SET updated_at = now() WHERE id = $1', [
            noteJob!.data.incidentId,
          ]);
          await writer.query(`UPDATE alerts SET ticket_status = 'pending' WHERE id = $1`, [
            firingId,
          ]);
          const running = service.app.tickets.runNoteBatch([noteJob!]);
          await new Promise((resolve) => setTimeout(resolve, 300));
          await writer.query('COMMIT');
          assert.deepEqual([...(await running).values()], [null]);
        } finally {
          await writer.end();
        }
        assert.equal((await api('GET', `/alerts/${firingId}`)).body.ticketStatus, 'noted');
        assert.equal((await notesOn(await ticketIdOf(alertId!))).length, 1);
      },
    );

    test('a lost note batch response adds no second note', async () => {
      const alertIds: string[] = [];
      for (let index = 0; index < 3; index += 1) {
        alertIds.push(await alertFor('lost-note', index, 'Alert'));
      }
      await service.app.tickets.runBatch(jobsOf(alertIds));
      const noteJobs = await fireAgain(alertIds, 1);
      const fault = await fetch(`${emulator.url}/_emulator/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          faults: [
            { match: { method: 'POST', path: '/api/Actions' }, kind: 'drop-response', times: 1 },
          ],
        }),
      });
      assert.equal(fault.status, 200);

      // HaloPSA saved the notes, but the response was lost, so each job is retried.
      const outcomes = await service.app.tickets.runNoteBatch(noteJobs);
      for (const job of noteJobs) assert.ok(outcomes.get(job.id) instanceof Error);
      for (const alertId of alertIds) {
        assert.equal((await notesOn(await ticketIdOf(alertId))).length, 1);
      }

      // The retry looks each note up on its ticket, finds it and sends nothing.
      await clearRequests();
      const retried = await service.app.tickets.runNoteBatch(
        noteJobs.map((job) => ({ ...job, id: randomUUID(), retryCount: 1 })),
      );
      assert.deepEqual(
        [...retried.values()],
        noteJobs.map(() => null),
      );
      const counts = await requestCounts();
      assert.equal(counts.byRoute[NOTE_LOOKUPS], alertIds.length);
      assert.equal(counts.byRoute[NOTE_POSTS] ?? 0, 0);
      for (const alertId of alertIds) {
        assert.equal((await notesOn(await ticketIdOf(alertId))).length, 1);
      }
      const alerts = (await api('GET', '/alerts?limit=500')).body.alerts as {
        ticketStatus: string;
        evidence: { reportId: string };
      }[];
      for (const alertId of alertIds) {
        const firing = alerts.find((alert) => alert.evidence.reportId === `${alertId}-day-1`);
        assert.equal(firing?.ticketStatus, 'noted');
      }
    });

    // Last, because it leaves the connection needing attention.
    test('a note waiting for the connection says why', async () => {
      const [alertId] = [await alertFor('attention', 0, 'Alert')];
      await service.app.tickets.runBatch(jobsOf([alertId!]));
      const [noteJob] = await fireAgain([alertId!], 1);
      const fault = await fetch(`${emulator.url}/_emulator/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          faults: [{ match: { path: '/api/Actions' }, kind: 'status', status: 401, times: 1000 }],
        }),
      });
      assert.equal(fault.status, 200);

      const outcomes = await service.app.tickets.runNoteBatch([noteJob!]);
      assert.ok(outcomes.get(noteJob!.id) instanceof JobDeferred);
      const firing = (
        (await api('GET', '/alerts?limit=500')).body.alerts as {
          ticketStatus: string;
          ticketError: string | null;
          evidence: { reportId: string };
        }[]
      ).find((alert) => alert.evidence.reportId === `${alertId}-day-1`);
      assert.equal(firing?.ticketStatus, 'pending');
      assert.match(firing?.ticketError ?? '', /^Waiting for the HaloPSA connection to be fixed: /);
      await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' });
    });
  });
}
