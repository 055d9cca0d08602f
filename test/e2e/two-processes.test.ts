// Two service processes on one PostgreSQL database share one pg-boss queue. pg-boss hands each
// job to one worker at a time, so every ticket must be made once and every job must run to
// completion once, with both processes doing part of the work.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import { LICENCE_SYNC_QUEUE, TICKET_CREATE_QUEUE } from '../../src/integration/jobs.ts';
import { createPostgresDatabase, type TestDatabase } from '../support/databases.ts';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../support/service.ts';

const CUSTOMERS = 100;
const DOMAINS_PER_CUSTOMER = 2;
const DRAIN_TIMEOUT_MS = 180_000;
// The emulator has no rate limit here, so dmarcdesk's own HaloPSA budget must not hold jobs back.
const NO_RATE_BUDGET = {
  DMARCDESK_HALOPSA_RATE_LIMIT: '100000',
  DMARCDESK_HALOPSA_RATE_WINDOW_SECONDS: '300',
};
const SKIP_REASON = process.env.DMARCDESK_TEST_DATABASE_URL
  ? false
  : 'needs PostgreSQL, because PGlite serves one process: set DMARCDESK_TEST_DATABASE_URL';

interface Ticket {
  id: number;
  client_id: number;
  third_party_id_string?: string;
  deleted?: boolean;
}

interface Licence {
  id: number;
  client_id: number;
  item_id: number;
  count: number;
}

/** Build an aggregate report for `domain` in which 3 messages from one source fail DMARC. */
function failingReport(domain: string, reportId: string): Buffer {
  return Buffer.from(`<?xml version="1.0"?><feedback><report_metadata><org_name>two.example</org_name>
<email>r@two.example</email><report_id>${reportId}</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
</report_metadata><policy_published><domain>${domain}</domain><p>reject</p></policy_published>
<record><row><source_ip>198.51.100.9</source_ip><count>3</count><policy_evaluated><disposition>reject</disposition>
<dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>${domain}</header_from></identifiers>
<auth_results><spf><domain>${domain}</domain><result>fail</result></spf></auth_results></record></feedback>`);
}

describe('two service processes on one queue', { skip: SKIP_REASON }, () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let setup: TestService;
  let sql: pg.Client;
  const workers: ServiceProcess[] = [];
  /** Job ids each worker logged as completed, by worker name. */
  const completedBy = new Map<string, string[]>();
  const alertIds: string[] = [];
  const clientOfCustomer = new Map<string, number>();
  let itemId = 0;

  before(async () => {
    database = await createPostgresDatabase();
    emulator = await startEmulator({ seed: { clients: CUSTOMERS + 10 }, rateLimit: null });
    const secretKey = randomBytes(32).toString('base64');
    // The setup service runs no workers, so the jobs it queues wait for the two processes.
    setup = await startService(database, {
      allowedHosts: [new URL(emulator.url).host],
      environment: {
        ...NO_RATE_BUDGET,
        DMARCDESK_SECRET_KEY: secretKey,
        DMARCDESK_RUN_WORKERS: 'false',
      },
    });
    sql = new pg.Client({ connectionString: database.databaseUrl! });
    await sql.connect();

    for (const name of ['worker-1', 'worker-2']) {
      completedBy.set(name, []);
      workers.push(
        await startServiceProcess({
          name,
          databaseUrl: database.databaseUrl!,
          secretKey,
          allowedHosts: [new URL(emulator.url).host],
          // "job completed" is logged at debug level with the pg-boss job id.
          environment: { ...NO_RATE_BUDGET, DMARCDESK_LOG_LEVEL: 'debug' },
          onOutputLine: (line) => {
            if (!line.includes('"job completed"')) return;
            const entry = JSON.parse(line) as { jobId: string; queue: string };
            if (entry.queue === TICKET_CREATE_QUEUE || entry.queue === LICENCE_SYNC_QUEUE) {
              completedBy.get(name)!.push(entry.jobId);
            }
          },
        }),
      );
    }
  });

  after(async () => {
    for (const worker of workers) await worker.stop();
    await sql?.end();
    await setup?.stop();
    await emulator?.close();
    await database?.drop();
  });

  test('each job runs once, on either process', async (t) => {
    const api = apiClient(setup.url, (await createTestAccount(setup.app)).token);
    assert.equal(
      (
        await api('PUT', '/integrations/halopsa/connection', {
          url: emulator.url,
          clientId: 'dmarcdesk-demo',
          clientSecret: 'demo-secret-change-me',
        })
      ).status,
      200,
    );
    const clients = (
      (await api('GET', '/integrations/halopsa/clients')).body.clients as {
        id: number;
        inactive: boolean;
      }[]
    )
      .filter((client) => !client.inactive)
      .map((client) => client.id);
    itemId = (await api('GET', '/integrations/halopsa/items')).body.items.find(
      (item: { name: string }) => item.name === 'DMARC Monitoring (per domain)',
    ).id;
    const alertType = (
      (await api('GET', '/integrations/halopsa/ticket-types')).body.ticketTypes as {
        id: number;
        name: string;
      }[]
    ).find((type) => type.name === 'Alert')!.id;

    const domainsOf = new Map<string, { id: string; name: string }[]>();
    for (let index = 0; index < CUSTOMERS; index += 1) {
      const customer = (await api('POST', '/customers', { name: `Two Process ${index}` })).body;
      const domains = [];
      for (let domain = 0; domain < DOMAINS_PER_CUSTOMER; domain += 1) {
        const name = `c${index}-d${domain}.two.example`;
        const created = (await api('POST', `/customers/${customer.id}/domains`, { name })).body;
        await api('PUT', `/domains/${created.id}/threshold`, { maxFailedMessages: 0 });
        domains.push({ id: created.id as string, name });
      }
      domainsOf.set(customer.id, domains);
      clientOfCustomer.set(customer.id, clients[index]!);
    }
    const saved = await api('PUT', '/integrations/halopsa/mappings', {
      mappings: [...clientOfCustomer].map(([customerId, haloClientId]) => ({
        customerId,
        haloClientId,
        haloItemId: itemId,
      })),
    });
    assert.equal(saved.status, 200);
    for (const [customerId, domains] of domainsOf) {
      const rule = await api('PUT', `/integrations/halopsa/ticket-rules/${customerId}`, {
        ticketTypeId: alertType,
        thresholdDomainIds: domains.map((domain) => domain.id),
      });
      assert.equal(rule.status, 200);
    }

    // One licence job per customer, and one ticket job per domain: each report opens an incident.
    assert.equal((await api('POST', '/integrations/halopsa/submit')).status, 202);
    for (const domains of domainsOf.values()) {
      for (const domain of domains) {
        const upload = await api(
          'POST',
          '/reports',
          failingReport(domain.name, `two-${domain.name}`),
          'application/xml',
        );
        assert.equal(upload.status, 201);
      }
    }
    const alerts = (await api('GET', '/alerts?limit=1000')).body.alerts as { id: string }[];
    alertIds.push(...alerts.map((alert) => alert.id));
    assert.equal(alertIds.length, CUSTOMERS * DOMAINS_PER_CUSTOMER);

    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    let unfinished = -1;
    while (Date.now() < deadline) {
      const { rows } = await sql.query<{ count: string }>(
        `SELECT count(*) FROM pgboss.job WHERE name = ANY($1) AND state NOT IN ('completed', 'failed', 'cancelled')`,
        [[TICKET_CREATE_QUEUE, LICENCE_SYNC_QUEUE]],
      );
      unfinished = Number(rows[0]!.count);
      if (unfinished === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (unfinished > 0) {
      const { rows: states } = await sql.query(
        'SELECT name, state, count(*)::int AS count FROM pgboss.job GROUP BY name, state ORDER BY name, state',
      );
      const output = workers.map((worker) => `${worker.name}:\n${worker.output()}`).join('\n');
      assert.fail(
        `${unfinished} jobs unfinished after ${DRAIN_TIMEOUT_MS} ms. Jobs by state: ${JSON.stringify(states)}\n${output}`,
      );
    }
    // Stopping flushes each process's output, so every completion line has been read.
    for (const worker of workers) await worker.stop();

    const tickets = (
      (await (await fetch(`${emulator.url}/_emulator/records/Tickets`)).json()) as {
        records: Ticket[];
      }
    ).records.filter((ticket) => ticket.third_party_id_string && !ticket.deleted);
    assert.equal(tickets.length, alertIds.length, 'tickets created');
    const ticketsPerAlert = new Map<string, number>();
    for (const ticket of tickets) {
      const alertId = ticket.third_party_id_string!;
      ticketsPerAlert.set(alertId, (ticketsPerAlert.get(alertId) ?? 0) + 1);
    }
    for (const alertId of alertIds) assert.equal(ticketsPerAlert.get(alertId), 1, alertId);

    const licences = (
      (await (await fetch(`${emulator.url}/_emulator/records/SoftwareLicence`)).json()) as {
        records: Licence[];
      }
    ).records.filter((licence) => licence.item_id === itemId);
    for (const clientId of clientOfCustomer.values()) {
      const ofClient = licences.filter((licence) => licence.client_id === clientId);
      assert.equal(ofClient.length, 1, `licences of client ${clientId}`);
      assert.equal(ofClient[0]!.count, DOMAINS_PER_CUSTOMER, `count of client ${clientId}`);
    }

    const { rows: jobs } = await sql.query<{ id: string; name: string; state: string }>(
      'SELECT id, name, state FROM pgboss.job WHERE name = ANY($1)',
      [[TICKET_CREATE_QUEUE, LICENCE_SYNC_QUEUE]],
    );
    const ticketJobs = jobs.filter((job) => job.name === TICKET_CREATE_QUEUE);
    assert.equal(ticketJobs.length, alertIds.length, 'ticket jobs');
    assert.ok(
      jobs.filter((job) => job.name === LICENCE_SYNC_QUEUE).length >= CUSTOMERS,
      'licence jobs',
    );
    for (const job of jobs) assert.equal(job.state, 'completed', `state of job ${job.id}`);

    const runs = new Map<string, number>();
    for (const ids of completedBy.values()) {
      for (const id of ids) runs.set(id, (runs.get(id) ?? 0) + 1);
    }
    for (const job of jobs) assert.equal(runs.get(job.id), 1, `completed runs of job ${job.id}`);
    assert.equal(runs.size, jobs.length, 'completed job ids that pg-boss does not list');
    t.diagnostic(
      `jobs completed: ${[...completedBy].map(([name, ids]) => `${name} ${ids.length}`).join(', ')} of ${jobs.length}`,
    );
    for (const [name, ids] of completedBy) assert.ok(ids.length > 0, `${name} completed no job`);
  });
});

describe('a killed service process', { skip: SKIP_REASON }, () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let setup: TestService;
  let sql: pg.Client;
  let secretKey = '';
  const workers: ServiceProcess[] = [];

  const startWorker = async (name: string) => {
    const worker = await startServiceProcess({
      name,
      databaseUrl: database.databaseUrl!,
      secretKey,
      allowedHosts: [new URL(emulator.url).host],
      // Longer than the held token request below, so only the kill ends the first attempt.
      environment: { ...NO_RATE_BUDGET, DMARCDESK_HALOPSA_TIMEOUT_MS: '30000' },
    });
    workers.push(worker);
    return worker;
  };

  before(async () => {
    database = await createPostgresDatabase();
    emulator = await startEmulator({ seed: { clients: 5 }, rateLimit: null });
    secretKey = randomBytes(32).toString('base64');
    setup = await startService(database, {
      allowedHosts: [new URL(emulator.url).host],
      environment: {
        ...NO_RATE_BUDGET,
        DMARCDESK_SECRET_KEY: secretKey,
        DMARCDESK_RUN_WORKERS: 'false',
      },
    });
    sql = new pg.Client({ connectionString: database.databaseUrl! });
    await sql.connect();
  });

  after(async () => {
    for (const worker of workers) await worker.stop();
    await sql?.end();
    await setup?.stop();
    await emulator?.close();
    await database?.drop();
  });

  test('its running job runs again elsewhere', async () => {
    const api = apiClient(setup.url, (await createTestAccount(setup.app)).token);
    await api('PUT', '/integrations/halopsa/connection', {
      url: emulator.url,
      clientId: 'dmarcdesk-demo',
      clientSecret: 'demo-secret-change-me',
    });
    const clientId = (
      (await api('GET', '/integrations/halopsa/clients')).body.clients as {
        id: number;
        inactive: boolean;
      }[]
    ).find((client) => !client.inactive)!.id;
    const itemId = (await api('GET', '/integrations/halopsa/items')).body.items[0].id as number;
    const alertType = (
      (await api('GET', '/integrations/halopsa/ticket-types')).body.ticketTypes as {
        id: number;
        name: string;
      }[]
    ).find((type) => type.name === 'Alert')!.id;
    const customer = (await api('POST', '/customers', { name: 'Killed Ltd' })).body;
    const domain = (
      await api('POST', `/customers/${customer.id}/domains`, { name: 'killed.two.example' })
    ).body;
    await api('PUT', `/domains/${domain.id}/threshold`, { maxFailedMessages: 0 });
    await api('PUT', '/integrations/halopsa/mappings', {
      mappings: [{ customerId: customer.id, haloClientId: clientId, haloItemId: itemId }],
    });
    await api('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
      ticketTypeId: alertType,
      thresholdDomainIds: [domain.id],
    });

    // The first process's first HaloPSA call, its token request, is held for 20 s, so its ticket
    // job is still running when the process is killed.
    const fault = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        faults: [{ match: { path: '/auth/token' }, kind: 'reset', delayMs: 20_000, times: 1 }],
      }),
    });
    assert.equal(fault.status, 200);
    const first = await startWorker('killed-1');
    const upload = await api(
      'POST',
      '/reports',
      failingReport('killed.two.example', 'killed-1'),
      'application/xml',
    );
    assert.equal(upload.status, 201);
    const alertId = ((await api('GET', '/alerts')).body.alerts as { id: string }[])[0]!.id;
    await eventually(async () => {
      const counts = (await (await fetch(`${emulator.url}/_emulator/requests/counts`)).json()) as {
        inFlight: number;
      };
      return counts.inFlight > 0 ? true : undefined;
    }, 'the first process to send its held token request');
    const running = await eventually(async () => {
      const { rows } = await sql.query<{ id: string }>(
        `SELECT id FROM pgboss.job WHERE name = $1 AND state = 'active'`,
        [TICKET_CREATE_QUEUE],
      );
      return rows[0];
    }, 'the ticket job to start on the first process');
    await first.kill();
    await startWorker('killed-2');

    // pg-boss would retry the job only after its expireInSeconds of 300 s without a heartbeat.
    const tickets = await eventually(
      async () => {
        const { records } = (await (
          await fetch(`${emulator.url}/_emulator/records/Tickets`)
        ).json()) as { records: Ticket[] };
        const ours = records.filter((ticket) => ticket.third_party_id_string === alertId);
        return ours.length > 0 ? ours : undefined;
      },
      'the ticket from the second process',
      120_000,
    );
    assert.equal(tickets.length, 1);
    // The job completes after the ticket is recorded in dmarcdesk, a moment after HaloPSA has it.
    const job = await eventually(async () => {
      const { rows } = await sql.query<{ state: string; retry_count: number }>(
        'SELECT state, retry_count FROM pgboss.job WHERE id = $1',
        [running.id],
      );
      return rows[0]?.state === 'active' ? undefined : rows[0];
    }, 'the retried ticket job to settle');
    assert.equal(job?.state, 'completed');
    assert.equal(job?.retry_count, 1);
  });
});
