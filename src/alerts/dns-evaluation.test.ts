import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import type { TestDnsServer } from '../../test/support/dns-server.ts';
import { startDnsServer } from '../../test/support/dns-server.ts';
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
import { txt } from '../dns/test-dns.ts';
import { formatTicket } from '../integration/ticket-content.ts';
import type { Alert, DnsEvidence } from './alert-store.ts';

const domain = 'tickets.example';
const reject = `v=DMARC1; p=reject; rua=mailto:dmarc@${domain}`;
const none = `v=DMARC1; p=none; rua=mailto:dmarc@${domain}`;

interface EmulatorRecord {
  id: number;
  [field: string]: unknown;
}

describe('DNS alert ticket text', () => {
  const evidence: DnsEvidence = {
    kind: 'dns',
    recordKind: 'dmarc',
    name: `_dmarc.${domain}`,
    selector: null,
    change: 'weakened',
    severity: 'critical',
    meaning: 'The DMARC record at _dmarc.tickets.example became weaker. Failing mail is delivered.',
    details: [
      {
        field: 'p',
        before: 'reject',
        after: 'none',
        severity: 'critical',
        message: 'The policy changed from reject to none.',
      },
    ],
    before: {
      observationId: 'b',
      observedAt: '2026-12-04T12:00:00.000Z',
      lookupStatus: 'ok',
      records: [reject],
      cnameChain: [],
      verdict: 'Receivers reject failing mail.',
      findings: [],
    },
    after: {
      observationId: 'a',
      observedAt: '2026-12-04T12:20:00.000Z',
      lookupStatus: 'ok',
      records: [none],
      cnameChain: [],
      verdict: 'Receivers only report failing mail.',
      findings: [
        { code: 'dmarc_policy_none', severity: 'warning', message: 'p=none only monitors.' },
      ],
    },
    firstSeenAt: '2026-12-04T12:10:00.000Z',
    confirmedAt: '2026-12-04T12:20:00.000Z',
    meaningHash: 'f'.repeat(64),
  };
  const alert = {
    id: '00000000-0000-4000-8000-000000000001',
    domainName: domain,
    kind: 'dns',
    groupId: null,
    evidence,
  } as unknown as Alert;

  test('names the DKIM selector in the summary', () => {
    const dkim = {
      ...alert,
      evidence: {
        ...evidence,
        recordKind: 'dkim',
        selector: 's1',
        name: `s1._domainkey.${domain}`,
      },
    } as unknown as Alert;
    const { summary } = formatTicket(dkim, 'https://dmarc.example.net');
    assert.equal(summary, `DMARC dns alert: ${domain} (DKIM key s1)`);
  });

  test('shows before, after and meaning', () => {
    const { summary, details } = formatTicket(alert, 'https://dmarc.example.net');
    const lines = details.split('\n');

    assert.equal(summary, `DMARC dns alert: ${domain} (DMARC record)`);
    assert.ok(lines.includes(`Domain: ${domain}`));
    assert.ok(lines.includes(`Alert: DMARC record at _dmarc.${domain}: the record became weaker`));
    assert.ok(lines.includes('Severity: critical'));
    assert.ok(lines.includes(`  ${evidence.meaning}`));
    const beforeAt = lines.indexOf('Before (looked up 2026-12-04T12:00:00.000Z UTC, ok):');
    const afterAt = lines.indexOf('After (looked up 2026-12-04T12:20:00.000Z UTC, ok):');
    assert.ok(beforeAt >= 0, 'a Before line');
    assert.ok(afterAt > beforeAt, 'an After line below it');
    assert.equal(lines[beforeAt + 1], `  ${reject}`);
    assert.equal(lines[beforeAt + 2], '  Verdict: Receivers reject failing mail.');
    assert.equal(lines[afterAt + 1], `  ${none}`);
    assert.ok(lines.includes('  p: reject -> none (critical)'));
    assert.ok(lines.includes('  [warning] p=none only monitors.'));
    assert.ok(lines.includes(`dmarcdesk alert id: ${alert.id}`));
  });

  test('says when there was no earlier record', () => {
    const first = {
      ...alert,
      evidence: { ...evidence, before: null, change: 'invalid_at_first_check' },
    };
    const lines = formatTicket(first as Alert, 'https://dmarc.example.net').details.split('\n');

    assert.ok(lines.includes('Before: (not checked before)'));
    assert.ok(
      lines.includes(
        `Alert: DMARC record at _dmarc.${domain}: the record was invalid when the domain was first checked`,
      ),
    );
  });
});

for (const engine of DATABASE_ENGINES) {
  describe(`DNS alerts to HaloPSA tickets on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let dns: TestDnsServer;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let domainId = '';
    let otherDomainId = '';

    const ourTickets = async (): Promise<EmulatorRecord[]> => {
      const response = await fetch(`${emulator.url}/_emulator/records/Tickets`);
      const { records } = (await response.json()) as { records: EmulatorRecord[] };
      return records.filter(
        (ticket) =>
          typeof ticket.third_party_id_string === 'string' &&
          ticket.third_party_id_string.length > 0,
      );
    };

    /** Ask for a check now and wait until the latest observation of every record is newer. */
    async function checkNow(id: string): Promise<void> {
      const since = (await api('GET', `/domains/${id}/dns`)).body.lastCheckedAt ?? '';
      assert.equal((await api('POST', `/domains/${id}/dns/check`)).status, 202);
      await eventually(async () => {
        const state = (await api('GET', `/domains/${id}/dns`)).body;
        return state.lastCheckedAt && state.lastCheckedAt > since ? true : undefined;
      }, `a new check of domain ${id}`);
    }

    before(async () => {
      dns = await startDnsServer({
        [`_dmarc.${domain}`]: txt(reject),
        [domain]: txt('v=spf1 ip4:192.0.2.0/24 -all'),
        [`_dmarc.untracked.example`]: txt('v=DMARC1; p=reject'),
        'untracked.example': txt('v=spf1 -all'),
      });
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: {
          DMARCDESK_DNS_SERVERS: dns.address,
          DMARCDESK_DNS_TIMEOUT_MS: '250',
          // The second lookup may follow at once: the test changes DNS only between checks.
          DMARCDESK_DNS_CONFIRM_DELAY_SECONDS: '0',
          DMARCDESK_DNS_SWEEP_SECONDS: '1',
        },
      });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);

      const customer = (await api('POST', '/customers', { name: 'Ticket Customer' })).body;
      domainId = (await api('POST', `/customers/${customer.id}/domains`, { name: domain })).body.id;
      otherDomainId = (
        await api('POST', `/customers/${customer.id}/domains`, { name: 'untracked.example' })
      ).body.id;

      const connected = await api('PUT', '/integrations/halopsa/connection', {
        url: `${emulator.url}/`,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      assert.equal(connected.status, 200);
      const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients;
      const client = clients.find((item: { inactive: boolean }) => !item.inactive);
      const items = (await api('GET', '/integrations/halopsa/items')).body.items;
      const item = items.find(
        (candidate: { name: string }) => candidate.name === 'DMARC Monitoring (per domain)',
      );
      const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
      const mapped = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: customer.id, haloClientId: client.id, haloItemId: item.id }],
      });
      assert.equal(mapped.status, 200);
      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
        ticketTypeId: types.defaultTicketTypeId,
        dnsDomainIds: [domainId],
      });
      assert.equal(rule.status, 200);
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
      await dns?.stop();
    });

    test('a confirmed DMARC change makes exactly one ticket', async () => {
      await checkNow(domainId);
      await checkNow(otherDomainId);
      assert.equal((await api('GET', '/alerts?kind=dns')).body.alerts.length, 0);

      dns.set(`_dmarc.${domain}`, txt(none));
      dns.set('_dmarc.untracked.example', txt('v=DMARC1; p=none'));
      await checkNow(domainId);
      await checkNow(otherDomainId);
      // With no confirmation delay the sweep queues the second lookup at once.
      const alerts = await eventually(async () => {
        const found = (await api('GET', '/alerts?kind=dns')).body.alerts;
        return found.length === 2 ? found : undefined;
      }, 'a DNS alert for each domain');
      const ticket = await eventually(async () => {
        const tickets = await ourTickets();
        return tickets.length === 1 ? tickets[0] : undefined;
      }, 'one ticket in HaloPSA');
      const alert = alerts.find((item: Alert) => item.domainId === domainId);

      assert.ok(alert, 'an alert for the domain in the ticket rule');
      assert.equal(alert.evidence.change, 'weakened');
      assert.equal(ticket.third_party_id_string, alert.id);
      assert.match(String(ticket.summary), /dns/i);
      assert.match(String(ticket.summary), /tickets\.example/);
      const details = String(ticket.details);
      assert.ok(details.includes(`  ${reject}`), 'the record before');
      assert.ok(details.includes(`  ${none}`), 'the record after');
      assert.match(details, /became weaker/);
      assert.match(details, /confirmed by a second lookup/);

      // Later checks of the same record state make no second alert and no second ticket.
      await checkNow(domainId);
      await checkNow(domainId);
      assert.equal((await api('GET', '/alerts?kind=dns')).body.alerts.length, 2);
      assert.equal((await ourTickets()).length, 1);
      const stored = await eventually(async () => {
        const current = (await api('GET', `/alerts/${alert.id}`)).body;
        return current.ticketStatus === 'created' ? current : undefined;
      }, 'the alert to record its ticket');
      assert.equal(stored.halopsaTicketId, ticket.id);
    });
  });
}
