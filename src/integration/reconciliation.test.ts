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
import { LICENCE_RELEASE_QUEUE, LICENCE_SYNC_QUEUE, TICKET_CREATE_QUEUE } from './jobs.ts';
import { RECONCILE_QUEUE, reconcileCron } from './reconciliation.ts';

type Api = ReturnType<typeof apiClient>;

interface Licence {
  id: number;
  client_id: number;
  item_id: number;
  count: number;
}

interface Problem {
  customerId: string;
  kind: string;
  haloRecordId: number;
  action: string;
  detail: Record<string, unknown>;
}

interface HistoryEvent {
  event: string;
  message: string;
  customerId: string | null;
  detail: Record<string, unknown>;
}

/** Build an aggregate report for `domain` in which `failed` messages fail DMARC. */
function failingReport(domain: string, reportId: string, failed: number): Buffer {
  return Buffer.from(`<?xml version="1.0"?><feedback><report_metadata><org_name>reconcile.example</org_name>
<email>r@reconcile.example</email><report_id>${reportId}</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
</report_metadata><policy_published><domain>${domain}</domain><p>reject</p></policy_published>
<record><row><source_ip>198.51.100.9</source_ip><count>${failed}</count><policy_evaluated><disposition>reject</disposition>
<dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>${domain}</header_from></identifiers>
<auth_results><spf><domain>${domain}</domain><result>fail</result></spf></auth_results></record></feedback>`);
}

test('reconcile cron follows the interval', () => {
  assert.equal(reconcileCron(60), '0 * * * *');
  assert.equal(reconcileCron(15), '*/15 * * * *');
  assert.equal(reconcileCron(360), '0 */6 * * *');
  assert.equal(reconcileCron(1440), '0 0 * * *');
  assert.throws(() => reconcileCron(45), /Invalid reconciliation interval 45 minutes/);
});

for (const engine of DATABASE_ENGINES) {
  describe(`reconciliation on ${engine}`, () => {
    let database: TestDatabase;
    // One HaloPSA instance per account, because dmarcdesk's request budget counts per instance
    // and the tests together send more requests than one instance's budget allows.
    const emulators: RunningEmulator[] = [];
    let emulator: RunningEmulator;
    let service: TestService;
    // A HaloPSA application that may do what an administrator does behind dmarcdesk's back.
    let adminToken = '';

    const records = async <T>(resource: string): Promise<T[]> =>
      (
        (await (await fetch(`${emulator.url}/_emulator/records/${resource}`)).json()) as {
          records: T[];
        }
      ).records;
    const control = async (path: string, body: unknown) => {
      const response = await fetch(`${emulator.url}/_emulator/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(response.status, 200, `control ${path}`);
    };
    const halo = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${emulator.url}/api/${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      assert.ok(response.status < 300, `${method} ${path} returned ${response.status}`);
      return (await response.json()) as Record<string, unknown>;
    };

    async function connectedAccount(name: string): Promise<{ api: Api; accountId: string }> {
      emulator = emulators[emulators.indexOf(emulator) + 1]!;
      await control('config', { rateLimit: null });
      const admin = await fetch(`${emulator.url}/_emulator/applications/reconcile-admin`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          clientSecret: 'admin-secret',
          permissions: ['admin', 'edit:customers', 'edit:items', 'edit:softwarelicensing'],
        }),
      });
      assert.equal(admin.status, 200);
      const token = await fetch(`${emulator.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&client_id=reconcile-admin&client_secret=admin-secret&scope=all',
      });
      adminToken = ((await token.json()) as { access_token: string }).access_token;

      const account = await createTestAccount(service.app, name);
      const api = apiClient(service.url, account.token);
      const connected = await api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      assert.equal(connected.status, 200);
      return { api, accountId: account.accountId };
    }

    async function customer(api: Api, name: string, domains: string[]) {
      const created = (await api('POST', '/customers', { name })).body;
      const domainIds: string[] = [];
      for (const domain of domains) {
        domainIds.push(
          (await api('POST', `/customers/${created.id}/domains`, { name: domain })).body.id,
        );
      }
      return { id: created.id as string, domainIds };
    }

    async function idle(): Promise<void> {
      // pg-boss's queue counters are refreshed by its maintenance, so the job table is read.
      await eventually(async () => {
        const [row] = await service.app.db.query<{ count: number }>(
          `SELECT count(*)::int AS count FROM pgboss.job
            WHERE name = ANY($1::text[]) AND state IN ('created', 'retry', 'active')`,
          [[RECONCILE_QUEUE, LICENCE_SYNC_QUEUE, LICENCE_RELEASE_QUEUE, TICKET_CREATE_QUEUE]],
        );
        return row?.count === 0 ? true : undefined;
      }, 'idle job queues');
    }

    const history = async (api: Api): Promise<HistoryEvent[]> =>
      (await api('GET', '/integrations/halopsa/history?limit=500')).body.events;
    const eventsOf = async (api: Api, kind: string) =>
      (await history(api)).filter((event) => event.event === kind);

    /** Request a reconciliation and wait for the run it queued to complete. */
    async function reconcile(api: Api): Promise<void> {
      await idle();
      const before = (await eventsOf(api, 'reconcile.completed')).length;
      const response = await api('POST', '/integrations/halopsa/reconcile');
      assert.equal(response.status, 202);
      await eventually(
        async () =>
          (await eventsOf(api, 'reconcile.completed')).length === before + 1 ? true : undefined,
        'the reconciliation run',
      );
      await idle();
    }

    before(async () => {
      database = await openTestDatabase(engine);
      for (let index = 0; index < 5; index += 1) emulators.push(await startEmulator());
      service = await startService(database, {
        allowedHosts: emulators.map((running) => new URL(running.url).host),
        // Once a day at midnight UTC, so that no scheduled run lands inside the test.
        environment: { DMARCDESK_RECONCILE_INTERVAL_MINUTES: '1440' },
      });
    });

    after(async () => {
      await service?.stop();
      for (const running of emulators) await running.close();
      await database?.drop();
    });

    test('schedule stored in pg-boss', async () => {
      const rows = await service.app.db.query<{ cron: string }>(
        'SELECT cron FROM pgboss.schedule WHERE name = $1',
        [RECONCILE_QUEUE],
      );
      assert.deepEqual(
        rows.map((row) => row.cron),
        ['0 0 * * *'],
      );
    });

    test('reconciliation repairs each kind of drift exactly once', async () => {
      const { api } = await connectedAccount('Drift MSP');
      const clients = (
        (await api('GET', '/integrations/halopsa/clients')).body.clients as {
          id: number;
          inactive: boolean;
        }[]
      )
        .filter((client) => !client.inactive)
        .map((client) => client.id);
      const items = (await api('GET', '/integrations/halopsa/items')).body.items as {
        id: number;
        name: string;
      }[];
      const item = items.find((entry) => entry.name === 'DMARC Monitoring (per domain)')!.id;
      const spareItem = (await halo('POST', 'Item', [{ name: 'Reconcile Spare Item' }]))
        .id as number;
      const spareType = (await halo('POST', 'TicketType', [{ name: 'Reconcile Type' }]))
        .id as number;

      const countDrift = await customer(api, 'Count Drift', ['count-a.example', 'count-b.example']);
      const licenceGone = await customer(api, 'Licence Gone', ['licence-gone.example']);
      const clientGone = await customer(api, 'Client Gone', ['client-gone.example']);
      const clientMerged = await customer(api, 'Client Merged', ['client-merged.example']);
      const siteGone = await customer(api, 'Site Gone', ['site-gone.example']);
      const userGone = await customer(api, 'User Gone', ['user-gone.example']);
      const typeGone = await customer(api, 'Type Gone', ['type-gone.example']);
      const itemGone = await customer(api, 'Item Gone', ['item-gone.example']);
      const mapping = (customerId: string, index: number, haloItemId = item) => ({
        customerId,
        haloClientId: clients[index]!,
        haloItemId,
      });
      const saved = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [
          mapping(countDrift.id, 0),
          mapping(licenceGone.id, 1),
          mapping(clientGone.id, 2),
          mapping(clientMerged.id, 3),
          mapping(siteGone.id, 5),
          mapping(userGone.id, 6),
          mapping(typeGone.id, 7),
          mapping(itemGone.id, 8, spareItem),
        ],
      });
      assert.equal(saved.status, 200);

      const siteOf = async (index: number) =>
        (await api('GET', `/integrations/halopsa/sites?clientId=${clients[index]}`)).body.sites[0]
          .id as number;
      const siteGoneSite = await siteOf(5);
      const userGoneSite = await siteOf(6);
      const userGoneUser = (await api('GET', `/integrations/halopsa/users?siteId=${userGoneSite}`))
        .body.users[0].id as number;
      const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
      const rules: [string, Record<string, unknown>][] = [
        [siteGone.id, { ticketTypeId: types.defaultTicketTypeId, siteId: siteGoneSite }],
        [
          userGone.id,
          { ticketTypeId: types.defaultTicketTypeId, siteId: userGoneSite, userId: userGoneUser },
        ],
        [typeGone.id, { ticketTypeId: spareType }],
      ];
      for (const [customerId, rule] of rules) {
        const response = await api('PUT', `/integrations/halopsa/ticket-rules/${customerId}`, {
          dnsDomainIds: [],
          thresholdDomainIds: [],
          thresholdGroupIds: [],
          forensicDomainIds: [],
          ...rule,
        });
        assert.equal(response.status, 200, JSON.stringify(response.body));
      }

      assert.equal((await api('POST', '/integrations/halopsa/submit')).status, 202);
      await idle();
      const synced = (await api('GET', '/integrations/halopsa/mappings')).body.mappings as {
        customerId: string;
        licenceId: number | null;
        syncedCount: number | null;
      }[];
      assert.equal(synced.filter((row) => row.licenceId !== null).length, 8);
      const licenceOf = (customerId: string) =>
        synced.find((row) => row.customerId === customerId)!.licenceId!;
      // A clean run first: it must find nothing to repair.
      await reconcile(api);
      assert.equal((await eventsOf(api, 'reconcile.repaired')).length, 0);
      assert.deepEqual((await api('GET', '/integrations/halopsa')).body.problems, []);

      // The drift, made in HaloPSA behind dmarcdesk's back.
      await halo('POST', 'SoftwareLicence', [{ id: licenceOf(countDrift.id), count: 7 }]);
      await halo('DELETE', `SoftwareLicence/${licenceOf(licenceGone.id)}`);
      await halo('DELETE', `Client/${clients[2]}`);
      await control(`clients/${clients[3]}/merge`, { into: clients[4] });
      await halo('DELETE', `Site/${siteGoneSite}`);
      await halo('DELETE', `Users/${userGoneUser}`);
      await halo('DELETE', `TicketType/${spareType}`);
      await halo('DELETE', `Item/${spareItem}`);

      await reconcile(api);
      const licences = await records<Licence>('SoftwareLicence');
      const countLicence = licences.find((licence) => licence.id === licenceOf(countDrift.id));
      assert.equal(countLicence?.count, 2);
      const recreated = licences.filter(
        (licence) => licence.client_id === clients[1] && licence.item_id === item,
      );
      assert.equal(recreated.length, 1);
      assert.equal(recreated[0]!.count, 1);
      assert.notEqual(recreated[0]!.id, licenceOf(licenceGone.id));
      const remapped = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.find(
        (row: { customerId: string }) => row.customerId === licenceGone.id,
      );
      assert.equal(remapped.licenceId, recreated[0]!.id);

      const repairs = await eventsOf(api, 'reconcile.repaired');
      assert.deepEqual(
        repairs.map((event) => event.customerId).sort(),
        [countDrift.id, licenceGone.id].sort(),
      );
      const repairOf = (customerId: string) =>
        repairs.find((event) => event.customerId === customerId)!;
      assert.equal(repairOf(countDrift.id).detail.repair, 'count_restored');
      assert.equal(repairOf(countDrift.id).detail.previousCount, 7);
      assert.equal(repairOf(licenceGone.id).detail.repair, 'licence_recreated');
      const auditRows = (await api('GET', '/audit-log?limit=500')).body.entries as {
        action: string;
      }[];
      assert.equal(auditRows.filter((row) => row.action === 'halopsa.licence.repaired').length, 2);

      const problems = (await api('GET', '/integrations/halopsa')).body.problems as Problem[];
      const problemOf = (customerId: string) =>
        problems
          .filter((problem) => problem.customerId === customerId)
          .map((problem) => problem.kind);
      assert.deepEqual(problemOf(clientGone.id), ['client_missing']);
      assert.deepEqual(problemOf(clientMerged.id), ['client_merged']);
      assert.deepEqual(problemOf(siteGone.id), ['site_missing']);
      assert.deepEqual(problemOf(userGone.id), ['user_missing']);
      assert.deepEqual(problemOf(typeGone.id), ['ticket_type_missing']);
      assert.deepEqual(problemOf(itemGone.id), ['item_missing']);
      assert.equal(problems.length, 6);
      const merged = problems.find((problem) => problem.kind === 'client_merged')!;
      assert.equal(merged.detail.mergedIntoClientId, clients[4]);
      assert.match(merged.action, /was merged into .*; map "Client Merged" to/);
      const gone = problems.find((problem) => problem.kind === 'client_missing')!;
      assert.equal(gone.haloRecordId, clients[2]);
      assert.match(gone.action, /no longer exists; map "Client Gone" to another HaloPSA customer/);
      assert.equal((await eventsOf(api, 'reconcile.problem')).length, 6);

      // A second run with no new drift repairs nothing and records nothing new.
      const licencesBefore = await records<Licence>('SoftwareLicence');
      await reconcile(api);
      assert.equal((await eventsOf(api, 'reconcile.repaired')).length, 2);
      assert.equal((await eventsOf(api, 'reconcile.problem')).length, 6);
      assert.equal((await eventsOf(api, 'reconcile.resolved')).length, 0);
      assert.deepEqual(await records<Licence>('SoftwareLicence'), licencesBefore);
      const again = (await api('GET', '/integrations/halopsa')).body.problems as Problem[];
      assert.equal(again.length, 6);

      // Remapping the gone client's customer resolves its problem at the next check.
      const current = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.map(
        (row: { customerId: string; haloClientId: number; haloItemId: number }) => ({
          customerId: row.customerId,
          haloClientId: row.customerId === clientGone.id ? clients[9] : row.haloClientId,
          haloItemId: row.haloItemId,
        }),
      );
      // Item Gone's item no longer exists, so saving must move it to a real item too.
      for (const row of current) if (row.customerId === itemGone.id) row.haloItemId = item;
      // The merged client is gone from HaloPSA too, so it is mapped to the client it merged into.
      for (const row of current)
        if (row.customerId === clientMerged.id) row.haloClientId = clients[4];
      assert.equal(
        (await api('PUT', '/integrations/halopsa/mappings', { mappings: current })).status,
        200,
      );
      await idle();
      await reconcile(api);
      const left = ((await api('GET', '/integrations/halopsa')).body.problems as Problem[]).map(
        (problem) => problem.kind,
      );
      assert.deepEqual(left.sort(), ['site_missing', 'ticket_type_missing', 'user_missing']);
      assert.equal((await eventsOf(api, 'reconcile.resolved')).length, 3);
      // The merge moved the licence to the client merged into, so remapping there keeps it
      // billing instead of setting it to 0.
      const mergedLicence = (await records<Licence>('SoftwareLicence')).find(
        (licence) => licence.id === licenceOf(clientMerged.id),
      );
      assert.equal(mergedLicence?.client_id, clients[4]);
      assert.equal(mergedLicence?.count, 1);
      const mergedMapping = (await api('GET', '/integrations/halopsa/mappings')).body.mappings.find(
        (row: { customerId: string }) => row.customerId === clientMerged.id,
      );
      assert.equal(mergedMapping.licenceId, licenceOf(clientMerged.id));
      // The licence of the gone item cannot be released: HaloPSA rejects any change to it.
      const releases = (await eventsOf(api, 'licence.failed')).filter(
        (event) => event.customerId === itemGone.id,
      );
      assert.equal(releases.length, 1);
      assert.equal(releases[0]!.detail.halopsaError, 'validation_failed');
    });

    test('inactive client is a problem only', async () => {
      const { api } = await connectedAccount('Inactive MSP');
      const clients = (
        (await api('GET', '/integrations/halopsa/clients')).body.clients as {
          id: number;
          inactive: boolean;
        }[]
      )
        .filter((client) => !client.inactive)
        .map((client) => client.id);
      const item = (await api('GET', '/integrations/halopsa/items')).body.items[0].id as number;
      const dormant = await customer(api, 'Dormant Ltd', ['dormant.example']);
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: dormant.id, haloClientId: clients[13]!, haloItemId: item }],
      });
      await api('POST', '/integrations/halopsa/submit');
      await idle();
      const [mapping] = (await api('GET', '/integrations/halopsa/mappings')).body.mappings;
      await halo('POST', 'Client', [{ id: clients[13], inactive: true }]);
      await halo('POST', 'SoftwareLicence', [{ id: mapping.licenceId, count: 5 }]);

      await reconcile(api);
      const problems = (await api('GET', '/integrations/halopsa')).body.problems as Problem[];
      assert.deepEqual(
        problems.map((problem) => problem.kind),
        ['client_inactive'],
      );
      assert.match(problems[0]!.action, /is inactive; make it active in HaloPSA/);
      // An inactive customer still exists, so its licence count is kept right.
      const licence = (await records<Licence>('SoftwareLicence')).find(
        (entry) => entry.id === mapping.licenceId,
      );
      assert.equal(licence?.count, 1);

      await halo('POST', 'Client', [{ id: clients[13], inactive: false }]);
      await reconcile(api);
      assert.deepEqual((await api('GET', '/integrations/halopsa')).body.problems, []);

      // Mapped again without a Submit: the run reports it, and Submit sets the count back.
      const mappings = [{ customerId: dormant.id, haloClientId: clients[13]!, haloItemId: item }];
      await api('PUT', '/integrations/halopsa/mappings', { mappings: [] });
      await api('PUT', '/integrations/halopsa/mappings', { mappings });
      await reconcile(api);
      // The history lists the newest event first.
      const [completed] = await eventsOf(api, 'reconcile.completed');
      assert.match(
        completed!.message,
        /1 mapped customers have no HaloPSA subscription yet.*Submit to HaloPSA creates them/,
      );
      await api('POST', '/integrations/halopsa/submit');
      await idle();
      const counted = (await records<Licence>('SoftwareLicence')).filter(
        (entry) => entry.client_id === clients[13] && entry.count === 1,
      );
      assert.equal(counted.length, 1);
    });

    test('scheduled run reconciles every account', async () => {
      const { api } = await connectedAccount('Scheduled MSP');
      await idle();
      const before = (await eventsOf(api, 'reconcile.completed')).length;
      // The schedule sends a job without an account, which queues one run per account.
      await service.app.reconciliation.run({});
      await eventually(
        async () =>
          (await eventsOf(api, 'reconcile.completed')).length === before + 1 ? true : undefined,
        'the queued run of the account',
      );
    });

    test('ticket of a gone client waits for remapping', async () => {
      const { api, accountId } = await connectedAccount('Waiting MSP');
      const clients = (
        (await api('GET', '/integrations/halopsa/clients')).body.clients as {
          id: number;
          inactive: boolean;
        }[]
      )
        .filter((client) => !client.inactive)
        .map((client) => client.id);
      const item = (await api('GET', '/integrations/halopsa/items')).body.items[0].id as number;
      const waiting = await customer(api, 'Waiting Ltd', ['waiting.example']);
      await api('PUT', `/domains/${waiting.domainIds[0]}/threshold`, { maxFailedMessages: 0 });
      const goneClient = clients[10]!;
      const newClient = clients[11]!;
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: waiting.id, haloClientId: goneClient, haloItemId: item }],
      });
      const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${waiting.id}`, {
        ticketTypeId: types.defaultTicketTypeId,
        dnsDomainIds: [],
        thresholdDomainIds: waiting.domainIds,
        thresholdGroupIds: [],
        forensicDomainIds: [],
      });
      assert.equal(rule.status, 200);
      await idle();

      // The client disappears before reconciliation notices; the alert comes in.
      await halo('DELETE', `Client/${goneClient}`);
      const upload = await api(
        'POST',
        '/reports',
        failingReport('waiting.example', 'waiting-1', 3),
        'application/xml',
      );
      assert.ok(upload.status < 300, JSON.stringify(upload.body));
      const alert = await eventually(async () => {
        const alerts = (await api('GET', '/alerts')).body.alerts as {
          id: string;
          ticketStatus: string;
          ticketError: string | null;
        }[];
        return alerts.find((entry) => entry.ticketError?.startsWith('Waiting until this is fixed'));
      }, 'the waiting alert');
      assert.equal(alert.ticketStatus, 'pending');
      assert.match(alert.ticketError!, /no longer exists/);
      const tickets = async () =>
        (await records<{ third_party_id_string?: string; client_id: number }>('Tickets')).filter(
          (ticket) => ticket.third_party_id_string === alert.id,
        );
      assert.deepEqual(await tickets(), []);
      const problems = (await api('GET', '/integrations/halopsa')).body.problems as Problem[];
      assert.deepEqual(
        problems.map((problem) => [problem.customerId, problem.kind]),
        [[waiting.id, 'client_missing']],
      );
      assert.equal((await eventsOf(api, 'ticket.failed')).length, 0);
      const deferred = await service.app.db.query(
        'SELECT alert_id FROM integration_deferred_tickets WHERE account_id = $1',
        [accountId],
      );
      assert.equal(deferred.length, 1);

      // A reconciliation without a fix keeps it waiting.
      await reconcile(api);
      assert.deepEqual(await tickets(), []);

      // Remapping the customer releases the ticket, which goes to the new client.
      const remapped = await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: waiting.id, haloClientId: newClient, haloItemId: item }],
      });
      assert.equal(remapped.status, 200);
      const created = await eventually(
        async () => ((await tickets()).length > 0 ? await tickets() : undefined),
        'the released ticket',
      );
      assert.equal(created.length, 1);
      assert.equal(created[0]!.client_id, newClient);
      await idle();
      assert.deepEqual((await api('GET', '/integrations/halopsa')).body.problems, []);
      const after = (await api('GET', '/alerts')).body.alerts.find(
        (entry: { id: string }) => entry.id === alert.id,
      );
      assert.equal(after.ticketStatus, 'created');
    });

    test('required ticket field waits until it is optional', async () => {
      const { api } = await connectedAccount('Field MSP');
      const clients = (
        (await api('GET', '/integrations/halopsa/clients')).body.clients as {
          id: number;
          inactive: boolean;
        }[]
      )
        .filter((client) => !client.inactive)
        .map((client) => client.id);
      const item = (await api('GET', '/integrations/halopsa/items')).body.items[0].id as number;
      const fielded = await customer(api, 'Field Ltd', ['field.example']);
      await api('PUT', `/domains/${fielded.domainIds[0]}/threshold`, { maxFailedMessages: 0 });
      await api('PUT', '/integrations/halopsa/mappings', {
        mappings: [{ customerId: fielded.id, haloClientId: clients[12]!, haloItemId: item }],
      });
      const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
      await api('PUT', `/integrations/halopsa/ticket-rules/${fielded.id}`, {
        ticketTypeId: types.defaultTicketTypeId,
        dnsDomainIds: [],
        thresholdDomainIds: fielded.domainIds,
        thresholdGroupIds: [],
        forensicDomainIds: [],
      });
      await idle();
      await control(`ticket-types/${types.defaultTicketTypeId}/required-fields`, {
        fields: ['category_1'],
      });

      await api(
        'POST',
        '/reports',
        failingReport('field.example', 'field-1', 2),
        'application/xml',
      );
      await eventually(async () => {
        const problems = (await api('GET', '/integrations/halopsa')).body.problems as Problem[];
        return problems.find((problem) => problem.kind === 'ticket_type_field_required');
      }, 'the required-field problem');
      await idle();
      const ticketsOfClient = async () =>
        (await records<{ client_id: number }>('Tickets')).filter(
          (ticket) => ticket.client_id === clients[12],
        );
      const seeded = (await ticketsOfClient()).length;

      // Still required: the next run tests one ticket, which waits again.
      await reconcile(api);
      assert.equal((await ticketsOfClient()).length, seeded);
      assert.equal(
        ((await api('GET', '/integrations/halopsa')).body.problems as Problem[]).length,
        1,
      );

      await control(`ticket-types/${types.defaultTicketTypeId}/required-fields`, { fields: [] });
      await reconcile(api);
      await idle();
      assert.equal((await ticketsOfClient()).length, seeded + 1);
      assert.deepEqual((await api('GET', '/integrations/halopsa')).body.problems, []);
      assert.equal((await eventsOf(api, 'reconcile.resolved')).length, 1);
    });
  });
}
