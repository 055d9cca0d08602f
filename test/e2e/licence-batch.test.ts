import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import { apiClient as haloApiClient, getToken } from '../../emulator/halopsa/test-support.ts';
import { JobDeferred } from '../../src/jobs/queue.ts';
import { LicenceSync } from '../../src/integration/licence-sync.ts';
import { DATABASE_ENGINES, openTestDatabase } from '../support/databases.ts';

type DatabaseEngine = (typeof DATABASE_ENGINES)[number];
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../support/service.ts';

interface Licence {
  id: number;
  client_id: number;
  item_id: number;
  count: number;
}

interface RequestCounts {
  byRoute: Record<string, number>;
  byStatus: Record<string, number>;
}

const LICENCE_POSTS = 'POST /api/softwarelicence';

/** Starts a service and an emulator with `clients` HaloPSA clients, connected to each other. */
async function startPair(engine: DatabaseEngine, clientCount: number, runWorkers: boolean) {
  const database = await openTestDatabase(engine);
  const emulator = await startEmulator({ seed: { clients: clientCount } });
  const service = await startService(database, {
    allowedHosts: [new URL(emulator.url).host],
    environment: {
      DMARCDESK_HALOPSA_TIMEOUT_MS: '1500',
      DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS: '4',
      DMARCDESK_RUN_WORKERS: String(runWorkers),
    },
  });
  const account = await createTestAccount(service.app);
  const api = apiClient(service.url, account.token);
  await api('PUT', '/integrations/halopsa/connection', {
    url: emulator.url,
    clientId: 'dmarcdesk-demo',
    clientSecret: 'demo-secret-change-me',
  });
  const clients = (
    (await api('GET', '/integrations/halopsa/clients')).body.clients as {
      id: number;
      inactive: boolean;
    }[]
  )
    .filter((client) => !client.inactive)
    .map((client) => client.id);
  const item: number = (await api('GET', '/integrations/halopsa/items')).body.items.find(
    (entry: { name: string }) => entry.name === 'DMARC Monitoring (per domain)',
  ).id;

  const licences = async (): Promise<Licence[]> =>
    (
      (await (await fetch(`${emulator.url}/_emulator/records/SoftwareLicence`)).json()) as {
        records: Licence[];
      }
    ).records.filter((licence) => licence.item_id === item);
  const requestCounts = async (): Promise<RequestCounts> =>
    (await (await fetch(`${emulator.url}/_emulator/requests/counts`)).json()) as RequestCounts;
  const clearRequests = async () => {
    await fetch(`${emulator.url}/_emulator/requests`, { method: 'DELETE' });
  };
  const addFault = async (fault: unknown) => {
    const response = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ faults: [fault] }),
    });
    assert.equal(response.status, 200);
  };

  /**
   * Creates customers with 1, 2 or 3 domains and maps customer i to clients[offset + i]. The
   * mappings saved before are kept unless `replace` is set.
   */
  async function mapCustomers(prefix: string, count: number, offset: number, replace = false) {
    const created: { id: string; clientId: number; domains: number }[] = [];
    for (let index = 0; index < count; index += 1) {
      const customer = (await api('POST', '/customers', { name: `${prefix} ${index}` })).body;
      const domains = 1 + (index % 3);
      for (let domain = 0; domain < domains; domain += 1) {
        await api('POST', `/customers/${customer.id}/domains`, {
          name: `${prefix.toLowerCase()}-${index}-${domain}.example`,
        });
      }
      created.push({ id: customer.id, clientId: clients[offset + index]!, domains });
    }
    const kept = replace
      ? []
      : ((await api('GET', '/integrations/halopsa/mappings')).body.mappings as {
          customerId: string;
          haloClientId: number;
          haloItemId: number;
        }[]);
    const response = await api('PUT', '/integrations/halopsa/mappings', {
      mappings: [
        ...kept.map((mapping) => ({
          customerId: mapping.customerId,
          haloClientId: mapping.haloClientId,
          haloItemId: mapping.haloItemId,
        })),
        ...created.map((customer) => ({
          customerId: customer.id,
          haloClientId: customer.clientId,
          haloItemId: item,
        })),
      ],
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return created;
  }

  return {
    emulator,
    service,
    accountId: account.accountId,
    api,
    clients,
    licences,
    requestCounts,
    clearRequests,
    addFault,
    mapCustomers,
    async stop() {
      await service.stop();
      await emulator.close();
      await database.drop();
    },
  };
}

for (const engine of DATABASE_ENGINES) {
  describe(`licence batches on ${engine}`, () => {
    test('Submit of 60 customers takes few POSTs', async (t) => {
      const pair = await startPair(engine, 70, true);
      try {
        const customers = await pair.mapCustomers('Batch', 60, 0);
        const byClient = new Map(customers.map((customer) => [customer.clientId, customer]));
        const rightCounts = async () => {
          const right = (await pair.licences()).filter(
            (licence) => licence.count === byClient.get(licence.client_id)?.domains,
          );
          return right.length === 60 ? true : undefined;
        };
        // depths() reads pg-boss's job table; its queue statistics lag behind.
        const drained = async () =>
          (await pair.service.app.queue.depths()).some(
            (depth) => depth.queue === 'halopsa-licence-sync',
          )
            ? undefined
            : true;

        // The first Submit creates every licence.
        await pair.clearRequests();
        const created = await pair.api('POST', '/integrations/halopsa/submit');
        assert.equal(created.status, 202);
        assert.equal(created.body.queued, 60);
        await eventually(rightCounts, 'every licence created', 60_000);
        await eventually(drained, 'licence sync queue drained', 60_000);
        const createPosts = (await pair.requestCounts()).byRoute[LICENCE_POSTS] ?? 0;
        assert.ok(createPosts >= 1, 'at least one licence POST');
        assert.ok(createPosts <= 6, `${createPosts} licence POSTs to create 60 licences`);
        t.diagnostic(`first Submit of 60 customers: ${createPosts} licence POSTs`);

        // Someone edits every count in HaloPSA; the second Submit sets them back.
        const halo = haloApiClient(pair.emulator.url, await getToken(pair.emulator.url));
        const edited = await halo.post(
          '/SoftwareLicence',
          (await pair.licences()).map((licence) => ({ id: licence.id, count: licence.count + 5 })),
        );
        assert.equal(edited.status, 201);
        await pair.clearRequests();
        const submitted = await pair.api('POST', '/integrations/halopsa/submit');
        assert.equal(submitted.status, 202);
        await eventually(rightCounts, 'every count right after Submit', 60_000);
        await eventually(drained, 'licence sync queue drained after Submit', 60_000);

        const licences = await pair.licences();
        assert.equal(licences.length, 60);
        for (const customer of customers) {
          const own = licences.filter((licence) => licence.client_id === customer.clientId);
          assert.equal(own.length, 1, `licences of client ${customer.clientId}`);
          assert.equal(own[0]!.count, customer.domains, `count of client ${customer.clientId}`);
        }
        const counts = await pair.requestCounts();
        const updatePosts = counts.byRoute[LICENCE_POSTS] ?? 0;
        assert.ok(updatePosts >= 1, 'at least one licence POST');
        assert.ok(updatePosts <= 6, `${updatePosts} licence POSTs to update 60 licences`);
        // A batch with one customer costs a GET of its licence, and larger ones share a list.
        const licenceGets =
          (counts.byRoute['GET /api/softwarelicence'] ?? 0) +
          (counts.byRoute['GET /api/softwarelicence/:id'] ?? 0);
        assert.ok(licenceGets <= 12, `${licenceGets} licence GETs to update 60 licences`);
        t.diagnostic(
          `second Submit of 60 edited counts: ${updatePosts} licence POSTs, ${licenceGets} licence GETs`,
        );

        const mappings = (await pair.api('GET', '/integrations/halopsa/mappings')).body
          .mappings as {
          customerId: string;
          syncedCount: number | null;
          syncError: string | null;
        }[];
        for (const customer of customers) {
          const mapping = mappings.find((row) => row.customerId === customer.id);
          assert.equal(mapping?.syncedCount, customer.domains, `synced count of ${customer.id}`);
          assert.equal(mapping?.syncError, null);
        }
        for (const action of ['halopsa.licence.created', 'halopsa.licence.updated']) {
          const [audited] = await pair.service.app.db.query<{ count: string }>(
            `SELECT count(DISTINCT customer_id) AS count FROM audit_log
              WHERE account_id = $1 AND action = $2`,
            [pair.accountId, action],
          );
          assert.equal(Number(audited!.count), 60, `customers with ${action}`);
        }
      } finally {
        await pair.stop();
      }
    });

    describe('one batch run', () => {
      let pair: Awaited<ReturnType<typeof startPair>>;
      let sync: LicenceSync;

      before(async () => {
        // No workers run, so each test passes its own batch of jobs to runBatch.
        pair = await startPair(engine, 20, false);
        const app = pair.service.app;
        sync = new LicenceSync(app.db, app.queue, app.connections, pino({ level: 'silent' }), {
          writeSettleSeconds: 4,
        });
      });

      after(async () => {
        await pair?.stop();
      });

      const jobsOf = (customers: { id: string }[]) =>
        customers.map((customer) => ({
          id: randomUUID(),
          data: { accountId: pair.accountId, customerId: customer.id },
        }));

      test('a rejected licence fails alone', async () => {
        const customers = await pair.mapCustomers('Reject', 4, 0);
        const created = await sync.runBatch(jobsOf(customers));
        assert.deepEqual([...created.values()], [null, null, null, null]);
        assert.equal((await pair.licences()).length, 4);

        // HaloPSA rejects any write to a licence of a deleted client.
        const doomed = customers[1]!;
        const token = await getToken(pair.emulator.url);
        const halo = haloApiClient(pair.emulator.url, token);
        assert.equal((await halo.delete(`/Client/${doomed.clientId}`)).status, 200);
        for (const customer of customers) {
          await pair.api('POST', `/customers/${customer.id}/domains`, {
            name: `reject-extra-${customer.id}.example`,
          });
        }
        await pair.clearRequests();

        const jobs = jobsOf(customers);
        const outcomes = await sync.runBatch(jobs);
        // A 400 is recorded and not retried, so every job completes.
        for (const job of jobs) assert.equal(outcomes.get(job.id), null);

        const counts = await pair.requestCounts();
        // One batch POST rejected, then one POST per licence, of which one is rejected again.
        assert.equal(counts.byRoute[LICENCE_POSTS], 5);
        assert.equal(counts.byStatus['400'], 2);

        const licences = await pair.licences();
        for (const customer of customers) {
          const own = licences.find((licence) => licence.client_id === customer.clientId);
          if (customer === doomed) continue;
          assert.equal(own?.count, customer.domains + 1, `count of client ${customer.clientId}`);
        }
        const [failed] = await pair.service.app.db.query<{ sync_error: string | null }>(
          'SELECT sync_error FROM halopsa_customer_mappings WHERE customer_id = $1',
          [doomed.id],
        );
        assert.match(
          failed!.sync_error ?? '',
          new RegExp(`client_id ${doomed.clientId} does not exist`),
        );
        const events = await pair.service.app.db.query<{ customer_id: string; message: string }>(
          `SELECT customer_id, message FROM integration_events
            WHERE account_id = $1 AND event = 'licence.failed'`,
          [pair.accountId],
        );
        assert.deepEqual(
          events.map((event) => event.customer_id),
          [doomed.id],
        );
        const saved = await pair.service.app.db.query<{
          customer_id: string;
          sync_error: string | null;
        }>(
          `SELECT customer_id, sync_error FROM halopsa_customer_mappings
            WHERE account_id = $1 AND customer_id = ANY($2) AND synced_count IS NOT NULL`,
          [pair.accountId, customers.filter((c) => c !== doomed).map((c) => c.id)],
        );
        assert.equal(saved.length, 3);
        for (const row of saved) assert.equal(row.sync_error, null);
      });

      test('a lost batch response creates no duplicate', async () => {
        // The test before mapped clients 0 to 3 and deleted one, so its mappings are dropped.
        const customers = await pair.mapCustomers('Lost', 4, 4, true);
        await pair.clearRequests();
        await pair.addFault({
          match: { method: 'POST', path: '/api/SoftwareLicence' },
          kind: 'drop-response',
          times: 1,
        });

        const jobs = jobsOf(customers);
        const outcomes = await sync.runBatch(jobs);
        for (const job of jobs) {
          const outcome = outcomes.get(job.id);
          assert.ok(outcome instanceof Error, `outcome of job ${job.id} is an error`);
          assert.ok(!(outcome instanceof JobDeferred), `job ${job.id} is retried, not deferred`);
        }
        // HaloPSA stored the licences although the response was lost.
        assert.equal(
          (await pair.licences()).filter((licence) =>
            customers.some((customer) => customer.clientId === licence.client_id),
          ).length,
          4,
        );

        // The retry finds the created licences and adopts them.
        const retried = await sync.runBatch(jobsOf(customers));
        assert.deepEqual([...retried.values()], [null, null, null, null]);
        const licences = await pair.licences();
        for (const customer of customers) {
          const own = licences.filter((licence) => licence.client_id === customer.clientId);
          assert.equal(own.length, 1, `licences of client ${customer.clientId}`);
          assert.equal(own[0]!.count, customer.domains);
        }
        const counts = await pair.requestCounts();
        assert.equal(counts.byRoute[LICENCE_POSTS], 1);
        const rows = await pair.service.app.db.query<{
          halo_licence_id: number | null;
          synced_count: number | null;
        }>(
          `SELECT halo_licence_id, synced_count FROM halopsa_customer_mappings
            WHERE customer_id = ANY($1) ORDER BY halo_client_id`,
          [customers.map((customer) => customer.id)],
        );
        assert.deepEqual(
          rows.map((row) => row.synced_count),
          customers.map((customer) => customer.domains),
        );
        for (const row of rows) assert.notEqual(row.halo_licence_id, null);
      });
    });
  });
}
