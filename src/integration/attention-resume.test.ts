// Jobs deferred while the HaloPSA connection needs attention start as soon as a connection
// check succeeds. The recheck interval is an hour here, so a job that runs during the test was
// started by the check and not by its own next look at the connection.
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
import { LICENCE_SYNC_QUEUE } from './jobs.ts';

for (const engine of DATABASE_ENGINES) {
  describe(`jobs waiting for attention on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;

    const control = (method: string, path: string, body?: unknown) =>
      fetch(`${emulator.url}/_emulator/${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const connect = () =>
      api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator({ rateLimit: null });
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host],
        environment: { DMARCDESK_HALOPSA_ATTENTION_RECHECK_SECONDS: '3600' },
      });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
      assert.equal((await connect()).status, 200);
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await database?.drop();
    });

    test('connection check starts waiting jobs', async () => {
      const customer = (await api('POST', '/customers', { name: 'Waiting Ltd' })).body;
      await api('POST', `/customers/${customer.id}/domains`, { name: 'waiting.example' });
      const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients as {
        id: number;
        inactive: boolean;
      }[];
      const client = clients.find((entry) => !entry.inactive)!;
      const item = (await api('GET', '/integrations/halopsa/items')).body.items[0] as {
        id: number;
      };

      // Every licence call gets 401, also after the token refresh, so the connection needs
      // attention and the sync job waits for it.
      await control('POST', 'faults', {
        faults: [
          { match: { path: '/api/SoftwareLicence' }, kind: 'status', status: 401, times: 1000 },
        ],
      });
      const saved = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: customer.id, haloClientId: client.id, haloItemId: item.id }],
      });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      assert.equal((await api('POST', '/integrations/halopsa/submit')).status, 202);
      await eventually(async () => {
        const [row] = await service.app.db.query<{ deferred: string }>(
          `SELECT count(*) AS deferred FROM pgboss.job
            WHERE name = $1 AND state = 'created' AND start_after > now() + interval '30 minutes'`,
          [LICENCE_SYNC_QUEUE],
        );
        return Number(row!.deferred) > 0 ? true : undefined;
      }, 'a licence sync job deferred for the recheck interval');

      const waiting = (await api('GET', '/integrations/halopsa')).body;
      assert.equal(waiting.connection.status, 'needs_attention');
      assert.equal(waiting.customers.mapped, 1);
      assert.equal(waiting.customers.pending, 1, 'the waiting customer counts as pending');
      assert.equal(waiting.customers.failed, 0, 'the waiting customer is not failed');

      await control('DELETE', 'faults');
      const checked = await connect();
      assert.equal(checked.status, 200, JSON.stringify(checked.body));
      assert.equal(checked.body.connection.status, 'healthy');

      const synced = await eventually(async () => {
        const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings as {
          customerId: string;
          syncedCount: number | null;
          syncError: string | null;
        }[];
        const mapping = mappings.find((entry) => entry.customerId === customer.id);
        return mapping?.syncedCount === 1 ? mapping : undefined;
      }, 'the licence count to sync right after the connection check');
      assert.equal(synced.syncError, null);
      const summary = (await api('GET', '/integrations/halopsa')).body;
      assert.equal(summary.customers.synced, 1);
      assert.equal(summary.customers.pending, 0);
      assert.equal(summary.customers.failed, 0);
    });

    test('a ticket waits for a lost permission', async () => {
      const customer = (await api('POST', '/customers', { name: 'Permission Ltd' })).body;
      const domain = (
        await api('POST', `/customers/${customer.id}/domains`, { name: 'permission.example' })
      ).body;
      await api('PUT', `/domains/${domain.id}/threshold`, { maxFailedMessages: 0 });
      const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients as {
        id: number;
        inactive: boolean;
      }[];
      const client = clients.filter((entry) => !entry.inactive)[1]!;
      const item = (await api('GET', '/integrations/halopsa/items')).body.items[0] as {
        id: number;
      };
      const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings as {
        customerId: string;
        haloClientId: number;
        haloItemId: number;
      }[];
      const saved = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          ...mappings.map(({ customerId, haloClientId, haloItemId }) => ({
            customerId,
            haloClientId,
            haloItemId,
          })),
          { customerId: customer.id, haloClientId: client.id, haloItemId: item.id },
        ],
      });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      const ticketTypes = (await api('GET', '/integrations/halopsa/ticket-types')).body
        .ticketTypes as { id: number; name: string }[];
      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
        ticketTypeId: ticketTypes.find((type) => type.name === 'Alert')!.id,
        thresholdDomainIds: [domain.id],
      });
      assert.equal(rule.status, 200, JSON.stringify(rule.body));

      // The operator unticks the ticket permissions, and the token in use expires.
      const permissions = [
        'read:customers',
        'edit:customers',
        'read:softwarelicensing',
        'edit:softwarelicensing',
        'read:items',
      ];
      const limited = await control('PUT', 'applications/dmarcdesk-demo', {
        clientSecret: 'demo-secret-change-me',
        permissions,
      });
      assert.equal(limited.ok, true);
      assert.equal((await control('POST', 'clock', { advanceSeconds: 3700 })).ok, true);

      const report = `<?xml version="1.0"?><feedback><report_metadata><org_name>wait.example</org_name>
<email>r@wait.example</email><report_id>permission-1</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
</report_metadata><policy_published><domain>permission.example</domain><p>reject</p></policy_published>
<record><row><source_ip>198.51.100.7</source_ip><count>4</count><policy_evaluated><disposition>reject</disposition>
<dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>permission.example</header_from></identifiers></record></feedback>`;
      const upload = await api('POST', '/reports', Buffer.from(report), 'application/xml');
      assert.equal(upload.status, 201, JSON.stringify(upload.body));

      const waiting = await eventually(async () => {
        const alerts = (await api('GET', '/alerts')).body.alerts as {
          id: string;
          domainId: string;
          ticketStatus: string;
          ticketError: string | null;
        }[];
        const alert = alerts.find((entry) => entry.domainId === domain.id);
        return alert?.ticketError ? alert : undefined;
      }, 'the ticket to wait for the connection');
      assert.equal(waiting.ticketStatus, 'pending');
      // The alert's ticket was never sent, so its first request is the POST.
      assert.match(waiting.ticketError!, /edit:tickets/);
      const attention = (await api('GET', '/integrations/halopsa')).body;
      assert.equal(attention.connection.status, 'needs_attention');
      assert.match(attention.attention, /edit:tickets/);

      // The operator ticks them again and checks the connection: the ticket goes out.
      assert.equal(
        (
          await control('PUT', 'applications/dmarcdesk-demo', {
            clientSecret: 'demo-secret-change-me',
            permissions: [...permissions, 'read:tickets', 'edit:tickets'],
          })
        ).ok,
        true,
      );
      assert.equal((await connect()).status, 200);
      const created = await eventually(async () => {
        const alert = (await api('GET', `/alerts/${waiting.id}`)).body;
        return alert.ticketStatus === 'created' ? alert : undefined;
      }, 'the ticket after the connection check');
      assert.equal(created.ticketError, null);
      const tickets = (
        (await (await control('GET', 'records/Tickets')).json()) as {
          records: { third_party_id_string?: string }[];
        }
      ).records.filter((ticket) => ticket.third_party_id_string === waiting.id);
      assert.equal(tickets.length, 1);
    });
  });
}
