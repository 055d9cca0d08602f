import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import { DATABASE_ENGINES, openTestDatabase, type TestDatabase } from '../support/databases.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../support/service.ts';

// A real Fastmail aggregate report for stalw.art: 9 messages, 8 of them failing DMARC, from
// 173.228.157.66 (4), 64.147.108.117 (3) and 64.147.108.173 (1).
const FAILING_REPORT = readFileSync(
  new URL('../fixtures/reports/e2e-failing-report.xml', import.meta.url),
);
const DEMO_SECRET = 'demo-secret-change-me';

interface EmulatorRecord {
  id: number;
  [field: string]: unknown;
}

async function emulatorRecords(
  emulator: RunningEmulator,
  resource: string,
): Promise<EmulatorRecord[]> {
  const response = await fetch(`${emulator.url}/_emulator/records/${resource}`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { records: EmulatorRecord[] }).records;
}

for (const engine of DATABASE_ENGINES) {
  describe(`HaloPSA end to end on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    const ids: Record<string, string> = {};
    const halo: {
      clientA: number;
      clientB: number;
      item: number;
      alertType: number;
      site: number;
      user: number;
    } = {
      clientA: 0,
      clientB: 0,
      item: 0,
      alertType: 0,
      site: 0,
      user: 0,
    };

    const licencesOf = async (clientId: number) =>
      (await emulatorRecords(emulator, 'SoftwareLicence')).filter(
        (licence) =>
          licence.client_id === clientId && licence.item_id === halo.item && !licence.deleted,
      );
    // The emulator seeds tickets of its own; ours carry an alert id.
    const ourTickets = async () =>
      (await emulatorRecords(emulator, 'Tickets')).filter(
        (ticket) =>
          typeof ticket.third_party_id_string === 'string' &&
          ticket.third_party_id_string.length > 0,
      );

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      service = await startService(database, { allowedHosts: [new URL(emulator.url).host] });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('sets up customers, domains and a threshold', async () => {
      const sample = (await api('POST', '/customers', { name: 'Stalwart Labs' })).body;
      const acme = (await api('POST', '/customers', { name: 'Acme Dental' })).body;
      ids.sample = sample.id;
      ids.acme = acme.id;
      ids.stalwart = (
        await api('POST', `/customers/${sample.id}/domains`, { name: 'stalw.art' })
      ).body.id;
      await api('POST', `/customers/${sample.id}/domains`, { name: 'stalwart-mail.example' });
      await api('POST', `/customers/${acme.id}/domains`, { name: 'acme-dental.example' });
      await api('POST', `/customers/${acme.id}/domains`, {
        name: 'acme-staging.example',
        status: 'pending',
      });

      const rule = await api('PUT', `/domains/${ids.stalwart}/threshold`, { maxFailedMessages: 5 });
      assert.equal(rule.status, 200);
      assert.equal(rule.body.maxFailedMessages, 5);
    });

    test('connects to HaloPSA and never returns the secret', async () => {
      const response = await api('PUT', '/integrations/halopsa/connection', {
        url: `${emulator.url}/`,
        clientId: 'dmarcdesk-demo',
        clientSecret: DEMO_SECRET,
      });
      assert.equal(response.status, 200);
      assert.equal(response.body.connection.url, emulator.url);
      assert.equal(response.body.connection.status, 'healthy');
      assert.equal(JSON.stringify(response.body).includes(DEMO_SECRET), false);

      const stored = await service.app.db.query<{ client_secret_encrypted: Uint8Array }>(
        'SELECT client_secret_encrypted FROM halopsa_connections',
      );
      assert.equal(
        Buffer.from(stored[0]!.client_secret_encrypted).includes(Buffer.from(DEMO_SECRET)),
        false,
      );
    });

    test('lists HaloPSA customers, items and ticket types', async () => {
      const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients;
      assert.ok(clients.length >= 20, `expected dozens of clients, got ${clients.length}`);
      const active = clients.filter((client: { inactive: boolean }) => !client.inactive);
      halo.clientA = active[0].id;
      halo.clientB = active[1].id;

      const items = (await api('GET', '/integrations/halopsa/items')).body.items;
      halo.item = items.find(
        (item: { name: string }) => item.name === 'DMARC Monitoring (per domain)',
      ).id;

      const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
      const alertType = types.ticketTypes.find((type: { name: string }) => type.name === 'Alert');
      assert.ok(alertType, 'the emulator seeds a ticket type named Alert');
      assert.equal(types.defaultTicketTypeId, alertType.id);
      halo.alertType = alertType.id;

      const sites = (await api('GET', `/integrations/halopsa/sites?clientId=${halo.clientA}`)).body
        .sites;
      halo.site = sites[0].id;
      const users = (await api('GET', `/integrations/halopsa/users?siteId=${halo.site}`)).body
        .users;
      halo.user = users[0].id;
    });

    test('maps customers and rejects a customer in two rows', async () => {
      const duplicate = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          { customerId: ids.sample, haloClientId: halo.clientA, haloItemId: halo.item },
          { customerId: ids.sample, haloClientId: halo.clientB, haloItemId: halo.item },
        ],
      });
      assert.equal(duplicate.status, 400);
      assert.equal(duplicate.body.error.field, 'mappings.1.customerId');

      const saved = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          { customerId: ids.sample, haloClientId: halo.clientA, haloItemId: halo.item },
          { customerId: ids.acme, haloClientId: halo.clientB, haloItemId: halo.item },
        ],
      });
      assert.equal(saved.status, 200);
      assert.equal(saved.body.mappings.length, 2);
    });

    test('saves a ticket rule with type, site and user', async () => {
      const noSite = await api('PUT', `/integrations/halopsa/ticket-rules/${ids.sample}`, {
        ticketTypeId: halo.alertType,
        userId: halo.user,
      });
      assert.equal(noSite.status, 400);
      assert.equal(noSite.body.error.field, 'userId');

      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${ids.sample}`, {
        ticketTypeId: halo.alertType,
        siteId: halo.site,
        userId: halo.user,
        thresholdDomainIds: [ids.stalwart],
      });
      assert.equal(rule.status, 200);
      assert.equal(rule.body.rule.ticketTypeName, 'Alert');
      assert.deepEqual(rule.body.rule.thresholdDomainIds, [ids.stalwart]);
    });

    test('submit creates one licence per mapped customer with the billable count', async () => {
      const submitted = await api('POST', '/integrations/halopsa/submit');
      assert.equal(submitted.status, 202);
      assert.equal(submitted.body.queued, 2);

      const licenceA = await eventually(async () => {
        const licences = await licencesOf(halo.clientA);
        return licences.length === 1 && licences[0]!.count === 2 ? licences[0] : undefined;
      }, 'a licence with count 2 for the first client');
      assert.equal(licenceA.item_id, halo.item);
      const licenceB = await eventually(async () => {
        const licences = await licencesOf(halo.clientB);
        return licences.length === 1 && licences[0]!.count === 1 ? licences[0] : undefined;
      }, 'a licence with count 1 for the second client (the pending domain is not billable)');
      assert.equal(licenceB.item_id, halo.item);

      // A second submit updates the same licences and never adds one.
      await api('POST', '/integrations/halopsa/submit');
      await eventually(async () => {
        const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings;
        return mappings.every(
          (mapping: { syncedCount: number | null }) => mapping.syncedCount !== null,
        )
          ? true
          : undefined;
      }, 'both mappings synced');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal((await licencesOf(halo.clientA)).length, 1);
      assert.equal((await licencesOf(halo.clientB)).length, 1);

      const summary = (await api('GET', '/integrations/halopsa')).body;
      assert.equal(summary.customers.mapped, 2);
      assert.deepEqual(summary.alerts.enabledKinds, ['threshold']);
    });

    test('a failing report raises one alert and one ticket', async () => {
      const upload = await api('POST', '/reports', FAILING_REPORT, 'application/xml');
      assert.equal(upload.status, 201);
      assert.equal(upload.body.stored, 1);
      assert.equal(upload.body.documents[0].domain, 'stalw.art');

      const alerts = (await api('GET', '/alerts')).body.alerts;
      assert.equal(alerts.length, 1);
      const alert = alerts[0];
      assert.equal(alert.kind, 'threshold');
      assert.equal(alert.domainName, 'stalw.art');
      assert.equal(alert.evidence.failedMessages, 8);
      assert.equal(alert.evidence.totalMessages, 9);
      assert.deepEqual(alert.evidence.topSources.slice(0, 2), [
        { sourceIp: '173.228.157.66', failedMessages: 4 },
        { sourceIp: '64.147.108.117', failedMessages: 3 },
      ]);

      const ticket = await eventually(async () => {
        const tickets = await ourTickets();
        return tickets.length === 1 ? tickets[0] : undefined;
      }, 'one ticket in HaloPSA');
      assert.equal(ticket.tickettype_id, halo.alertType);
      assert.equal(ticket.client_id, halo.clientA);
      assert.equal(ticket.site_id, halo.site);
      assert.equal(ticket.user_id, halo.user);
      assert.equal(ticket.third_party_id_string, alert.id);
      assert.match(String(ticket.summary), /threshold/i);
      assert.match(String(ticket.summary), /stalw\.art/);
      assert.match(String(ticket.details), /8 of 9 messages/);
      assert.match(String(ticket.details), /173\.228\.157\.66: 4 messages/);
      assert.match(String(ticket.details), /64\.147\.108\.117: 3 messages/);
      assert.match(
        String(ticket.details),
        new RegExp(`http://dmarcdesk\\.test/alerts/${alert.id}`),
      );

      const stored = await eventually(async () => {
        const current = (await api('GET', `/alerts/${alert.id}`)).body;
        return current.ticketStatus === 'created' ? current : undefined;
      }, 'the alert to record its ticket');
      assert.equal(stored.halopsaTicketId, ticket.id);
    });

    test('the same report uploaded again makes no second ticket', async () => {
      const again = await api('POST', '/reports', FAILING_REPORT, 'application/octet-stream');
      assert.equal(again.status, 200);
      assert.equal(again.body.stored, 0);
      assert.equal(again.body.duplicates, 1);

      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal((await api('GET', '/alerts')).body.alerts.length, 1);
      assert.equal((await ourTickets()).length, 1);
      assert.equal((await api('GET', '/reports')).body.reports.length, 1);
    });

    test('the audit log records changes and HaloPSA writes', async () => {
      const all = (await api('GET', '/audit-log?limit=1000')).body.entries;
      const actions = new Set(all.map((entry: { action: string }) => entry.action));
      for (const action of [
        'halopsa.connection.saved',
        'halopsa.mappings.saved',
        'halopsa.ticket_rule.saved',
        'halopsa.submitted',
        'halopsa.licence.created',
        'halopsa.ticket.created',
        'domain.added',
      ]) {
        assert.ok(actions.has(action), `audit log has ${action}`);
      }
      assert.equal(JSON.stringify(all).includes(DEMO_SECRET), false);

      const forCustomer = (await api('GET', `/audit-log?customerId=${ids.sample}`)).body.entries;
      assert.ok(forCustomer.length > 0);
      assert.ok(forCustomer.every((entry: { customerId: string }) => entry.customerId === ids.sample));
      const ticket = forCustomer.find((entry: { action: string }) => entry.action === 'halopsa.ticket.created');
      assert.equal(ticket.actor.type, 'system');
      assert.equal(ticket.after.endpoint, 'POST /api/Tickets');

      await assert.rejects(service.app.db.query('UPDATE audit_log SET action = $1', ['tampered']), /append-only/);
      await assert.rejects(service.app.db.query('DELETE FROM audit_log'), /append-only/);
    });

    test('licence count follows domains added, paused and removed', async () => {
      const added = (
        await api('POST', `/customers/${ids.sample}/domains`, { name: 'stalwart-labs.example' })
      ).body;
      await eventually(async () => {
        const licences = await licencesOf(halo.clientA);
        return licences.length === 1 && licences[0]!.count === 3 ? true : undefined;
      }, 'the licence count to reach 3 after a domain was added');

      await api('PATCH', `/domains/${added.id}`, { status: 'paused' });
      await eventually(
        async () => ((await licencesOf(halo.clientA))[0]?.count === 2 ? true : undefined),
        'count 2 after pausing',
      );

      const pending = (await api('GET', `/customers/${ids.acme}/domains`)).body.domains.find(
        (domain: { status: string }) => domain.status === 'pending',
      );
      await api('PATCH', `/domains/${pending.id}`, { status: 'active' });
      await eventually(
        async () => ((await licencesOf(halo.clientB))[0]?.count === 2 ? true : undefined),
        'count 2 after activating',
      );

      await api('DELETE', `/domains/${added.id}`);
      await api('DELETE', `/domains/${ids.stalwart}`);
      await eventually(
        async () => ((await licencesOf(halo.clientA))[0]?.count === 1 ? true : undefined),
        'count 1 after removals',
      );
      assert.equal((await licencesOf(halo.clientA)).length, 1);
    });
  });
}
