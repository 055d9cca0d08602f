import assert from 'node:assert/strict';
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

/** Build an aggregate report for `domain` in which `failed` messages from one source fail DMARC. */
function failingReport(domain: string, reportId: string, failed: number): Buffer {
  return Buffer.from(`<?xml version="1.0"?><feedback><report_metadata><org_name>delivery.example</org_name>
<email>r@delivery.example</email><report_id>${reportId}</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
</report_metadata><policy_published><domain>${domain}</domain><p>reject</p></policy_published>
<record><row><source_ip>198.51.100.7</source_ip><count>${failed}</count><policy_evaluated><disposition>reject</disposition>
<dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>${domain}</header_from></identifiers>
<auth_results><spf><domain>${domain}</domain><result>fail</result></spf></auth_results></record></feedback>`);
}

interface Ticket {
  id: number;
  third_party_id_string?: string;
  deleted?: boolean;
}

for (const engine of DATABASE_ENGINES) {
  describe(`ticket delivery on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    const ticketTypes: Record<string, number> = {};

    const ticketsFor = async (alertId: string): Promise<Ticket[]> =>
      (
        (await (await fetch(`${emulator.url}/_emulator/records/Tickets`)).json()) as {
          records: Ticket[];
        }
      ).records.filter((ticket) => ticket.third_party_id_string === alertId && !ticket.deleted);

    async function customerWithRule(
      name: string,
      domain: string,
      clientId: number,
      ticketTypeId: number,
    ) {
      const customer = (await api('POST', '/customers', { name })).body;
      const created = (await api('POST', `/customers/${customer.id}/domains`, { name: domain }))
        .body;
      await api('PUT', `/domains/${created.id}/threshold`, { maxFailedMessages: 0 });
      const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.map(
        (mapping: { customerId: string; haloClientId: number; haloItemId: number }) => ({
          customerId: mapping.customerId,
          haloClientId: mapping.haloClientId,
          haloItemId: mapping.haloItemId,
        }),
      );
      const items = (await api('GET', '/integrations/halopsa/items')).body.items;
      const saved = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          ...mappings,
          { customerId: customer.id, haloClientId: clientId, haloItemId: items[0].id },
        ],
      });
      assert.equal(saved.status, 200);
      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
        ticketTypeId,
        thresholdDomainIds: [created.id],
      });
      assert.equal(rule.status, 200);
      return { customerId: customer.id as string, domainId: created.id as string };
    }

    async function alertOf(reportId: string) {
      return eventually(async () => {
        const alerts = (await api('GET', '/alerts')).body.alerts as {
          id: string;
          evidence: { reportId: string };
          ticketStatus: string;
        }[];
        return alerts.find((alert) => alert.evidence.reportId === reportId);
      }, `the alert of report ${reportId}`);
    }

    let clients: number[] = [];

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: {
          DMARCDESK_HALOPSA_TIMEOUT_MS: '1500',
          DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS: '4',
        },
      });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
      await api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      clients = (
        (await api('GET', '/integrations/halopsa/clients')).body.clients as {
          id: number;
          inactive: boolean;
        }[]
      )
        .filter((client) => !client.inactive)
        .map((client) => client.id);
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

    test('a group rule routes the group threshold alert', async () => {
      const customer = (await api('POST', '/customers', { name: 'Group Ltd' })).body;
      const first = (
        await api('POST', `/customers/${customer.id}/domains`, { name: 'group-a.example' })
      ).body;
      const second = (
        await api('POST', `/customers/${customer.id}/domains`, { name: 'group-b.example' })
      ).body;
      const group = (
        await api('POST', `/customers/${customer.id}/groups`, {
          name: 'Brands',
          domainIds: [first.id, second.id],
        })
      ).body;
      const rule = await api('PUT', `/groups/${group.id}/threshold`, {
        maxFailedMessages: 5,
        windowHours: 48,
      });
      assert.equal(rule.status, 200);
      const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.map(
        (mapping: { customerId: string; haloClientId: number; haloItemId: number }) => ({
          customerId: mapping.customerId,
          haloClientId: mapping.haloClientId,
          haloItemId: mapping.haloItemId,
        }),
      );
      const items = (await api('GET', '/integrations/halopsa/items')).body.items;
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          ...mappings,
          { customerId: customer.id, haloClientId: clients[3], haloItemId: items[0].id },
        ],
      });
      const saved = await api('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
        ticketTypeId: ticketTypes.Alert,
        thresholdGroupIds: [group.id],
      });
      assert.equal(saved.status, 200);

      // 4 + 3 failing messages: neither domain alone passes 5, the group in sum does.
      await api(
        'POST',
        '/reports',
        failingReport('group-a.example', 'group-a-1', 4),
        'application/xml',
      );
      await api(
        'POST',
        '/reports',
        failingReport('group-b.example', 'group-b-1', 3),
        'application/xml',
      );
      const alert = await eventually(async () => {
        const alerts = (await api('GET', '/alerts')).body.alerts as {
          id: string;
          groupId: string | null;
          ticketStatus: string;
        }[];
        return alerts.find((candidate) => candidate.groupId === group.id);
      }, 'the group alert');
      await eventually(
        async () => ((await ticketsFor(alert.id)).length === 1 ? true : undefined),
        'the group ticket',
      );
    });

    test('a failed ticket is retried after its rule is fixed', async () => {
      const { customerId, domainId } = await customerWithRule(
        'Retry Ltd',
        'retry.example',
        clients[0]!,
        ticketTypes['Change Request']!,
      );
      await api(
        'POST',
        '/reports',
        failingReport('retry.example', 'retry-1', 3),
        'application/xml',
      );
      const alert = await alertOf('retry-1');
      const failed = await eventually(async () => {
        const current = (await api('GET', `/alerts/${alert.id}`)).body;
        return current.ticketStatus === 'failed' ? current : undefined;
      }, 'the ticket to fail on the CAB ticket type');
      assert.match(failed.ticketError, /CAB/);

      const early = await api('POST', `/integrations/halopsa/alerts/${alert.id}/retry`);
      assert.equal(early.status, 202);
      await eventually(
        async () =>
          (await api('GET', `/alerts/${alert.id}`)).body.ticketStatus === 'failed'
            ? true
            : undefined,
        'the retry to fail again',
      );

      await api('PUT', `/integrations/halopsa/ticket-rules/${customerId}`, {
        ticketTypeId: ticketTypes.Alert,
        thresholdDomainIds: [domainId],
      });
      assert.equal(
        (await api('POST', `/integrations/halopsa/alerts/${alert.id}/retry`)).status,
        202,
      );
      await eventually(
        async () => ((await ticketsFor(alert.id)).length === 1 ? true : undefined),
        'the ticket after the fix',
      );
      assert.equal(
        (await api('POST', `/integrations/halopsa/alerts/${alert.id}/retry`)).status,
        409,
      );
    });

    test('no ticket while the integration is off', async () => {
      await customerWithRule('Off Ltd', 'off.example', clients[1]!, ticketTypes.Alert!);
      await api('PATCH', '/account', { halopsaIntegrationEnabled: false });
      try {
        await api('POST', '/reports', failingReport('off.example', 'off-1', 4), 'application/xml');
        const alert = await alertOf('off-1');
        await new Promise((resolve) => setTimeout(resolve, 2000));
        assert.equal((await ticketsFor(alert.id)).length, 0);
        assert.notEqual((await api('GET', `/alerts/${alert.id}`)).body.ticketStatus, 'created');
      } finally {
        await api('PATCH', '/account', { halopsaIntegrationEnabled: true });
      }
    });

    test('a ticket write that outlives its timeout makes one ticket', async () => {
      await customerWithRule(
        'Slow Tickets Ltd',
        'slow-tickets.example',
        clients[2]!,
        ticketTypes.Alert!,
      );
      await fetch(`${emulator.url}/_emulator/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          faults: [
            {
              match: { method: 'POST', path: '/api/Tickets' },
              kind: 'latency',
              delayMs: 2500,
              times: 1,
            },
          ],
        }),
      });
      await api(
        'POST',
        '/reports',
        failingReport('slow-tickets.example', 'slow-1', 5),
        'application/xml',
      );
      const alert = await alertOf('slow-1');
      await eventually(
        async () =>
          (await api('GET', `/alerts/${alert.id}`)).body.ticketStatus === 'created'
            ? true
            : undefined,
        'the ticket',
        30_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal((await ticketsFor(alert.id)).length, 1);

      // The unconfirmed attempt is in the history, and the adopted ticket in the audit log.
      const events = (await api('GET', '/integrations/halopsa/history')).body.events as {
        event: string;
        message: string;
        detail: { alertId?: string };
      }[];
      const retrying = events.filter(
        (entry) => entry.event === 'ticket.retrying' && entry.detail.alertId === alert.id,
      );
      assert.equal(retrying.length, 1);
      assert.match(retrying[0]!.message, /did not confirm the ticket/);
      const audit = (await api('GET', '/audit-log?action=halopsa.ticket.created')).body.entries as {
        after: { alertId?: string; adopted?: boolean };
      }[];
      const written = audit.filter((entry) => entry.after.alertId === alert.id);
      assert.equal(written.length, 1);
      assert.equal(written[0]!.after.adopted, true);
    });
  });
}
