// A fault soak of HaloPSA delivery. Service processes on one PostgreSQL database receive
// aggregate and failure reports over HTTP and domain changes through the API. Meanwhile the
// HaloPSA emulator rate-limits, fails, delays, resets and drops responses and expires tokens,
// and the processes are killed with SIGKILL and restarted. Once the queues drain, the emulator's
// records must hold one ticket per incident, no duplicate, every alert accounted for, and
// every licence count equal to its customer's billable domains.
//
// DNS alerts come from the product's DNS alert function (raiseDnsAlertForChange) called from
// the test process on the same database, with observations built from a synthetic lookup
// result. A real DNS change needs two lookups a confirmation delay apart per alert, which does
// not fit the time bound. Threshold and forensic alerts come from uploaded reports.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import { raiseDnsAlertForChange } from '../../src/alerts/dns-evaluation.ts';
import type { ConfirmedDnsChange } from '../../src/dns/monitor.ts';
import { buildDmarcObservation } from '../../src/dns/observation.ts';
import { insertObservation } from '../../src/dns/observation-store.ts';
import {
  LICENCE_RELEASE_QUEUE,
  LICENCE_SYNC_QUEUE,
  TICKET_CREATE_QUEUE,
} from '../../src/integration/jobs.ts';
import { TICKET_NOTE_QUEUE } from '../../src/integration/ticket-dispatch.ts';
import { createPostgresDatabase, type TestDatabase } from '../support/databases.ts';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.ts';
import { createTestAccount, startService, type TestService } from '../support/service.ts';

/** The size of one run and how long its queues may take to drain. */
interface SoakSize {
  customers: number;
  alerts: number;
  domainChanges: number;
  drainTimeoutMs: number;
}

// Each ticket worker of a service process fetches its next job about a second after the last
// one, so a backlog of tickets drains at a few per second. The full size has 600 incidents,
// which takes far longer than the default size.
const FULL_SIZE: SoakSize = {
  customers: 200,
  alerts: 10_000,
  domainChanges: 2_000,
  drainTimeoutMs: 3_600_000,
};
const DEFAULT_SIZE: SoakSize = {
  customers: 20,
  alerts: 1_000,
  domainChanges: 200,
  // On an idle machine the alerts are made in about 10 s, so the faults and kills fall close
  // together and the drain takes about 200 s.
  drainTimeoutMs: 480_000,
};
/** DMARCDESK_SOAK_SIZE=full selects the full size. */
const SIZE = process.env.DMARCDESK_SOAK_SIZE === 'full' ? FULL_SIZE : DEFAULT_SIZE;
// Faults per wave are scaled to the size, so that a small run is not all faults.
const FAULT_SCALE = SIZE.customers / FULL_SIZE.customers;
const faults = (full: number) => Math.max(2, Math.round(full * FAULT_SCALE));

// HaloPSA's hosted limit is 300 requests per rolling 300 s. The soak keeps the 300 and scales
// the window down to 10 s, so that the run fits its time bound with the same burst size.
const RATE_LIMIT = { limit: 300, windowSeconds: 10 };
// dmarcdesk's own budget for HaloPSA requests, shared by its processes, scaled like the limit:
// its default of 270 per 300 s becomes 270 per 10 s, and its pause after a 429 1 s.
const RATE_BUDGET = {
  DMARCDESK_HALOPSA_RATE_LIMIT: '270',
  DMARCDESK_HALOPSA_RATE_WINDOW_SECONDS: String(RATE_LIMIT.windowSeconds),
  DMARCDESK_HALOPSA_RATE_PAUSE_SECONDS: '1',
};
// Short enough for several token renewals in one run; the client renews at half of it.
const TOKEN_LIFETIME_SECONDS = 20;
const UPLOAD_LOOPS = 4;
const DOMAIN_CHANGE_LOOPS = 2;
// Each domain-change customer keeps at most this many extra domains, besides its alert domain.
const MAX_EXTRA_DOMAINS = 6;
// How long one API call keeps trying while processes are killed and restarted.
const CALL_RETRY_MS = 90_000;
const QUEUES = [TICKET_CREATE_QUEUE, TICKET_NOTE_QUEUE, LICENCE_SYNC_QUEUE, LICENCE_RELEASE_QUEUE];
const SKIP_REASON = process.env.DMARCDESK_TEST_DATABASE_URL
  ? false
  : 'needs PostgreSQL, because PGlite serves one process: set DMARCDESK_TEST_DATABASE_URL';

type AlertKind = 'threshold' | 'forensic' | 'dns';

interface SoakCustomer {
  index: number;
  id: string;
  haloClientId: number;
  alertDomain: { id: string; name: string };
  /** Extra domains by name, with the status the test last set. */
  extraDomains: Map<string, { id: string; status: 'active' | 'paused' }>;
  nextExtra: number;
}

interface Ticket {
  id: number;
  client_id: number;
  third_party_id_string?: string;
  deleted?: boolean;
}

interface Action {
  id: number;
  ticket_id: number;
  note?: string;
}

interface Licence {
  id: number;
  client_id: number;
  item_id: number;
  count: number;
}

interface RequestCounts {
  total: number;
  byStatus: Record<string, number>;
  byFault: Record<string, number>;
  byRoute: Record<string, number>;
}

/** A small seeded generator (mulberry32), so that a run can be repeated. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value ^= value + Math.imul(value ^ (value >>> 7), 61 | value);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Build an aggregate report for `domain` in which `failed` messages from one source fail DMARC. */
function aggregateReport(domain: string, reportId: string, failed: number): Buffer {
  return Buffer.from(`<?xml version="1.0"?><feedback><report_metadata><org_name>soak.example</org_name>
<email>r@soak.example</email><report_id>${reportId}</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
</report_metadata><policy_published><domain>${domain}</domain><p>reject</p></policy_published>
<record><row><source_ip>198.51.100.7</source_ip><count>${failed}</count><policy_evaluated><disposition>reject</disposition>
<dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>${domain}</header_from></identifiers>
<auth_results><spf><domain>${domain}</domain><result>fail</result></spf></auth_results></record></feedback>`);
}

/** Build an RFC 6591 failure report about one message from `domain`, unique by `reportId`. */
function failureReport(domain: string, reportId: string, sourceOctet: number): Buffer {
  const lines = [
    'From: ruf-reporter@ruf.soak.example',
    'To: dmarc-ruf@msp.soak.example',
    `Subject: DMARC failure report for ${domain}`,
    'Date: Fri, 04 Dec 2026 10:00:00 +0000',
    `Message-ID: <${reportId}@ruf.soak.example>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="soak-boundary"',
    '',
    '--soak-boundary',
    'Content-Type: text/plain',
    '',
    `An authentication failure report for a message from 203.0.113.${sourceOctet}.`,
    '',
    '--soak-boundary',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: auth-failure',
    'Version: 1',
    'User-Agent: dmarcdesk-soak/1.0',
    'Auth-Failure: dmarc',
    `Authentication-Results: mx.ruf.soak.example; dmarc=fail header.from=${domain}`,
    `Original-Envelope-Id: ${reportId}`,
    `Original-Mail-From: billing@${domain}`,
    `Source-IP: 203.0.113.${sourceOctet}`,
    `Reported-Domain: ${domain}`,
    '',
    '--soak-boundary',
    'Content-Type: text/rfc822-headers',
    '',
    `From: billing@${domain}`,
    'To: someone@recipient.soak.example',
    `Subject: Invoice ${reportId}`,
    `Message-ID: <${reportId}.original@${domain}>`,
    '',
    '--soak-boundary--',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

/** Return whether a fetch failure is one that a killed or restarting process causes. */
function isConnectionFailure(error: unknown): boolean {
  return error instanceof TypeError && /fetch failed/i.test(error.message);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('delivery fault soak', { skip: SKIP_REASON }, () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  let control: TestService;
  let token = '';
  let secretKey = '';
  let itemId = 0;
  const customers: SoakCustomer[] = [];
  const live: ServiceProcess[] = [];
  let processCount = 0;
  const figures = {
    connectionRetries: 0,
    duplicateUploads: 0,
    serverErrors: 0,
    kills: 0,
    restarts: 0,
    alertsProduced: { threshold: 0, forensic: 0, dns: 0 } as Record<AlertKind, number>,
    domainChanges: { add: 0, pause: 0, resume: 0, remove: 0 },
  };
  const emulatorHost = () => new URL(emulator.url).host;

  const emulatorControl = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${emulator.url}/_emulator${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    assert.equal(response.status, 200, `emulator control ${method} ${path}`);
    return response.json();
  };
  const records = async <T>(resource: string): Promise<T[]> =>
    ((await emulatorControl('GET', `/records/${resource}`)) as { records: T[] }).records;

  async function startWorker(): Promise<void> {
    processCount += 1;
    const worker = await startServiceProcess({
      name: `soak-${processCount}`,
      databaseUrl: database.databaseUrl!,
      secretKey,
      allowedHosts: [emulatorHost()],
      environment: {
        ...RATE_BUDGET,
        DMARCDESK_HALOPSA_TIMEOUT_MS: '1500',
        DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS: '4',
        DMARCDESK_INCIDENT_NOTE_INTERVAL_MINUTES: '1',
      },
    });
    live.push(worker);
  }

  async function killWorker(worker: ServiceProcess): Promise<void> {
    live.splice(live.indexOf(worker), 1);
    await worker.kill();
    figures.kills += 1;
  }

  /**
   * Call the API of a live process, moving to another one (or waiting for a restart) when the
   * connection fails because a process was killed. Returns the status and the parsed body.
   */
  async function call(
    method: string,
    path: string,
    body?: Buffer | object,
    contentType = 'application/json',
  ): Promise<{ status: number; body: any }> {
    const deadline = Date.now() + CALL_RETRY_MS;
    for (let attempt = 0; Date.now() < deadline; attempt += 1) {
      const target = live.length > 0 ? live[attempt % live.length] : undefined;
      if (!target) {
        await sleep(100);
        continue;
      }
      const init: RequestInit = { method, headers: { authorization: `Bearer ${token}` } };
      if (body !== undefined) {
        init.body = Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] = contentType;
      }
      try {
        const response = await fetch(`${target.url}/api/v1${path}`, init);
        const text = await response.text();
        if (response.status >= 500) {
          figures.serverErrors += 1;
          process.stderr.write(`soak: ${method} ${path} returned ${response.status}: ${text}\n`);
          await sleep(100);
          continue;
        }
        return { status: response.status, body: text ? JSON.parse(text) : null };
      } catch (error) {
        if (!isConnectionFailure(error)) throw error;
        figures.connectionRetries += 1;
        await sleep(50);
      }
    }
    throw new Error(
      `${method} ${path} failed on every live process for ${CALL_RETRY_MS} ms; see the diagnostics`,
    );
  }

  before(async () => {
    database = await createPostgresDatabase();
    emulator = await startEmulator({
      seed: { clients: SIZE.customers + 10 },
      rateLimit: null,
      tokenLifetimeSeconds: TOKEN_LIFETIME_SECONDS,
    });
    secretKey = randomBytes(32).toString('base64');
    // The control service runs no workers: it sets the account up over HTTP and raises the DNS
    // alerts, and the jobs it queues wait for the worker processes.
    control = await startService(database, {
      allowedHosts: [emulatorHost()],
      environment: {
        ...RATE_BUDGET,
        DMARCDESK_SECRET_KEY: secretKey,
        DMARCDESK_RUN_WORKERS: 'false',
      },
    });
    token = (await createTestAccount(control.app)).token;
  });

  after(async () => {
    for (const worker of [...live]) await worker.stop();
    await control?.stop();
    await emulator?.close();
    if (process.env.DMARCDESK_SOAK_KEEP_DATABASE) {
      console.log(`soak database kept: ${database?.databaseUrl}`);
    } else {
      await database?.drop();
    }
  });

  /** Call the control service, which never dies. */
  async function setupCall(method: string, path: string, body?: object) {
    const response = await fetch(`${control.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  async function setUpAccount(): Promise<void> {
    const connection = await setupCall('PUT', '/integrations/halopsa/connection', {
      url: emulator.url,
      clientId: 'dmarcdesk-demo',
      clientSecret: 'demo-secret-change-me',
    });
    assert.equal(connection.status, 200);
    const clients = (
      (await setupCall('GET', '/integrations/halopsa/clients')).body.clients as {
        id: number;
        inactive: boolean;
      }[]
    )
      .filter((client) => !client.inactive)
      .map((client) => client.id);
    assert.ok(clients.length >= SIZE.customers, 'enough seeded HaloPSA clients');
    itemId = (await setupCall('GET', '/integrations/halopsa/items')).body.items.find(
      (item: { name: string }) => item.name === 'DMARC Monitoring (per domain)',
    ).id;
    const alertType = (
      (await setupCall('GET', '/integrations/halopsa/ticket-types')).body.ticketTypes as {
        id: number;
        name: string;
      }[]
    ).find((type) => type.name === 'Alert')!.id;

    for (let index = 0; index < SIZE.customers; index += 1) {
      const customer = (await setupCall('POST', '/customers', { name: `Soak Customer ${index}` }))
        .body;
      const name = `c${index}.soak.example`;
      const domain = (await setupCall('POST', `/customers/${customer.id}/domains`, { name })).body;
      const threshold = await setupCall('PUT', `/domains/${domain.id}/threshold`, {
        maxFailedMessages: 0,
      });
      assert.equal(threshold.status, 200);
      customers.push({
        index,
        id: customer.id,
        haloClientId: clients[index]!,
        alertDomain: { id: domain.id, name },
        extraDomains: new Map(),
        nextExtra: 0,
      });
    }
    const mappings = await setupCall('PUT', '/integrations/halopsa/mappings', {
      mappings: customers.map((customer) => ({
        customerId: customer.id,
        haloClientId: customer.haloClientId,
        haloItemId: itemId,
      })),
    });
    assert.equal(mappings.status, 200);
    for (const customer of customers) {
      const rule = await setupCall('PUT', `/integrations/halopsa/ticket-rules/${customer.id}`, {
        ticketTypeId: alertType,
        thresholdDomainIds: [customer.alertDomain.id],
        forensicDomainIds: [customer.alertDomain.id],
        dnsDomainIds: [customer.alertDomain.id],
      });
      assert.equal(rule.status, 200);
    }
    assert.equal((await setupCall('POST', '/integrations/halopsa/submit')).status, 202);
  }

  /** Raise one DNS alert on the customer's alert domain, in one transaction of the control app. */
  async function raiseDnsAlert(customer: SoakCustomer, logger: pino.Logger): Promise<void> {
    const accountId = await accountIdOf(customer);
    const name = `_dmarc.${customer.alertDomain.name}`;
    const observation = buildDmarcObservation(
      name,
      { status: 'ok', name, records: [['v=DMARC1; p=none']], cnameChain: [] },
      new Date().toISOString(),
    );
    const raise = raiseDnsAlertForChange(control.app.alerts, logger);
    await control.app.db.transaction(async (tx) => {
      const stored = await insertObservation(tx, {
        accountId,
        domainId: customer.alertDomain.id,
        checkId: randomUUID(),
        selector: null,
        trigger: 'scheduled',
        observation,
        outcome: 'change_confirmed',
        changeKind: 'weakened',
        comparison: null,
      });
      const change: ConfirmedDnsChange = {
        accountId,
        customerId: customer.id,
        domainId: customer.alertDomain.id,
        domainName: customer.alertDomain.name,
        kind: 'dmarc',
        name,
        selector: null,
        changeKind: 'weakened',
        comparison: null,
        before: null,
        firstSeen: stored,
        after: stored,
      };
      await raise(tx, change);
    });
  }

  let accountId = '';
  async function accountIdOf(customer: SoakCustomer): Promise<string> {
    if (!accountId) {
      const [row] = await control.app.db.query<{ account_id: string }>(
        'SELECT account_id FROM customers WHERE id = $1',
        [customer.id],
      );
      accountId = row!.account_id;
    }
    return accountId;
  }

  /** Apply one random domain change to `customer` over the API, keeping the test's model. */
  async function changeDomain(customer: SoakCustomer, random: () => number): Promise<void> {
    const extras = [...customer.extraDomains];
    const active = extras.filter(([, domain]) => domain.status === 'active');
    const paused = extras.filter(([, domain]) => domain.status === 'paused');

    const roll = random();
    if (extras.length === 0 || (roll < 0.35 && extras.length < MAX_EXTRA_DOMAINS)) {
      const name = `c${customer.index}-x${customer.nextExtra}.soak.example`;
      customer.nextExtra += 1;
      const created = await call('POST', `/customers/${customer.id}/domains`, { name });
      let id = created.body?.id as string | undefined;
      if (created.status === 409) {
        // The first attempt was stored before its process died; find the domain it made.
        const listed = await call('GET', `/customers/${customer.id}/domains`);
        id = (listed.body.domains as { id: string; name: string }[]).find(
          (domain) => domain.name === name,
        )?.id;
      } else {
        assert.equal(created.status, 201, `adding ${name}: ${JSON.stringify(created.body)}`);
      }
      assert.ok(id, `the id of ${name}`);
      customer.extraDomains.set(name, { id, status: 'active' });
      figures.domainChanges.add += 1;
      return;
    }

    if (roll < 0.55 && active.length > 0) {
      const [name, domain] = active[Math.floor(random() * active.length)]!;
      const response = await call('PATCH', `/domains/${domain.id}`, { status: 'paused' });
      assert.equal(response.status, 200, `pausing ${name}`);
      domain.status = 'paused';
      figures.domainChanges.pause += 1;
      return;
    }

    if (roll < 0.8 && paused.length > 0) {
      const [name, domain] = paused[Math.floor(random() * paused.length)]!;
      const response = await call('PATCH', `/domains/${domain.id}`, { status: 'active' });
      assert.equal(response.status, 200, `resuming ${name}`);
      domain.status = 'active';
      figures.domainChanges.resume += 1;
      return;
    }

    const [name, domain] = extras[Math.floor(random() * extras.length)]!;
    const response = await call('DELETE', `/domains/${domain.id}`);
    // 404: the first attempt removed it before its process died.
    assert.ok(response.status === 204 || response.status === 404, `removing ${name}`);
    customer.extraDomains.delete(name);
    figures.domainChanges.remove += 1;
  }

  async function unfinishedJobs(): Promise<number> {
    const [row] = await control.app.db.query<{ count: string }>(
      `SELECT count(*) FROM pgboss.job
        WHERE name = ANY($1) AND state IN ('created', 'retry', 'active')`,
      [QUEUES],
    );
    return Number(row!.count);
  }

  /** Unfinished jobs of the integration queues by queue and state, as text for messages. */
  async function jobStates(): Promise<string> {
    const rows = await control.app.db.query<{ name: string; state: string; count: string }>(
      `SELECT name, state, count(*) AS count, min(start_after) AS first_start FROM pgboss.job
        WHERE name = ANY($1) AND state IN ('created', 'retry', 'active')
        GROUP BY name, state ORDER BY name, state`,
      [QUEUES],
    );
    return JSON.stringify(rows);
  }

  test(
    'every fault, three kills: one ticket per incident',
    { timeout: SIZE.drainTimeoutMs + 600_000 },
    async (t) => {
      const started = Date.now();
      await setUpAccount();
      await emulatorControl('DELETE', '/requests');
      await emulatorControl('POST', '/config', { rateLimit: RATE_LIMIT });
      await startWorker();

      const random = seededRandom(20261204);
      const alertKinds: AlertKind[] = [];
      for (let index = 0; index < SIZE.alerts; index += 1) {
        const roll = index % 10;
        if (roll < 4) alertKinds.push('threshold');
        else if (roll < 7) alertKinds.push('forensic');
        else alertKinds.push('dns');
      }
      const customerOfAlert = alertKinds.map(() => Math.floor(random() * SIZE.customers));
      const firedKinds = new Set<string>();
      let nextAlert = 0;
      let produced = 0;
      const uploadedReports: { body: Buffer; contentType: string }[] = [];

      async function produceAlerts(loop: number): Promise<void> {
        const dnsLogger = pino({ level: 'silent' });
        while (nextAlert < SIZE.alerts) {
          const index = nextAlert;
          nextAlert += 1;
          const customer = customers[customerOfAlert[index]!]!;
          const kind = alertKinds[index]!;
          firedKinds.add(`${customer.index}/${kind}`);
          if (kind === 'dns') {
            await raiseDnsAlert(customer, dnsLogger);
          } else {
            const reportId = `soak-${index}`;
            const upload =
              kind === 'threshold'
                ? {
                    body: aggregateReport(customer.alertDomain.name, reportId, 1 + (index % 7)),
                    contentType: 'application/xml',
                  }
                : {
                    body: failureReport(customer.alertDomain.name, reportId, 1 + (index % 250)),
                    contentType: 'message/rfc822',
                  };
            const response = await call('POST', '/reports', upload.body, upload.contentType);
            // 200: a retry after a process died found the report stored by the first attempt.
            assert.ok(
              response.status === 201 || response.status === 200,
              `upload ${reportId} (loop ${loop}): ${response.status} ${JSON.stringify(response.body)}`,
            );
            if (index % 50 === 0) uploadedReports.push(upload);
          }
          figures.alertsProduced[kind] += 1;
          produced += 1;
        }
      }

      const domainChangesPerLoop = Math.ceil(SIZE.domainChanges / DOMAIN_CHANGE_LOOPS);
      let changesMade = 0;
      async function changeDomains(loop: number): Promise<void> {
        const loopRandom = seededRandom(1000 + loop);
        for (let change = 0; change < domainChangesPerLoop; change += 1) {
          if (changesMade >= SIZE.domainChanges) return;
          // Each loop owns every DOMAIN_CHANGE_LOOPS-th customer, so no two change one customer.
          const owned = customers.filter(
            (customer) => customer.index % DOMAIN_CHANGE_LOOPS === loop,
          );
          const customer = owned[Math.floor(loopRandom() * owned.length)]!;
          await changeDomain(customer, loopRandom);
          changesMade += 1;
          // Spread the changes over the alert run instead of finishing them first.
          const target = (changesMade / SIZE.domainChanges) * SIZE.alerts;
          while (produced < target && nextAlert < SIZE.alerts) await sleep(20);
        }
      }

      // Faults, kills and restarts are tied to the share of alerts produced, so that they fall at
      // the same points of the run on a fast or a slow machine.
      const faultWave = async () => {
        const tickets = { method: 'POST', path: '/api/Tickets' };
        const licences = { method: 'POST', path: '/api/SoftwareLicence' };
        const actions = { method: 'POST', path: '/api/Actions' };
        await emulatorControl('POST', '/faults', {
          faults: [
            {
              kind: 'status',
              status: 429,
              body: { Message: 'Rate Limit Reached' },
              times: faults(80),
            },
            { match: tickets, kind: 'status', status: 500, times: faults(15) },
            { match: licences, kind: 'status', status: 500, times: faults(10) },
            { match: tickets, kind: 'latency', delayMs: 2500, times: faults(10) },
            { match: licences, kind: 'latency', delayMs: 2500, times: faults(5) },
            { kind: 'latency', delayMs: 300, times: faults(60) },
            { kind: 'reset', times: faults(20) },
            { match: tickets, kind: 'drop-response', times: faults(15) },
            { match: licences, kind: 'drop-response', times: faults(10) },
            { match: actions, kind: 'drop-response', times: faults(5) },
            { match: { path: '/auth/token' }, kind: 'status', status: 500, times: faults(3) },
          ],
        });
      };
      const events: { at: number; run: () => Promise<void>; name: string }[] = [
        { at: 0.05, name: 'fault wave 1', run: faultWave },
        { at: 0.15, name: 'second process', run: startWorker },
        {
          at: 0.3,
          name: 'kill 1',
          run: async () => {
            await killWorker(live[0]!);
            await startWorker();
            figures.restarts += 1;
          },
        },
        { at: 0.35, name: 'fault wave 2', run: faultWave },
        {
          // Moves the emulator's clock past every token's lifetime, so live tokens get 401.
          at: 0.45,
          name: 'token expiry',
          run: async () => {
            await emulatorControl('POST', '/clock', { advanceSeconds: TOKEN_LIFETIME_SECONDS + 1 });
          },
        },
        {
          at: 0.55,
          name: 'kill 2',
          run: async () => {
            await killWorker(live[0]!);
            await startWorker();
            figures.restarts += 1;
          },
        },
        { at: 0.65, name: 'fault wave 3', run: faultWave },
        {
          at: 0.75,
          name: 'kill 3, one process from here',
          run: async () => {
            await killWorker(live[0]!);
            await killWorker(live[0]!);
            await startWorker();
            figures.restarts += 1;
          },
        },
      ];
      const runEvents = async () => {
        for (const event of events) {
          while (produced < event.at * SIZE.alerts) await sleep(50);
          t.diagnostic(`${event.name} at ${produced} alerts, ${Date.now() - started} ms`);
          await event.run();
        }
      };

      await Promise.all([
        runEvents(),
        ...Array.from({ length: UPLOAD_LOOPS }, (_, loop) => produceAlerts(loop)),
        ...Array.from({ length: DOMAIN_CHANGE_LOOPS }, (_, loop) => changeDomains(loop)),
      ]);
      const producedAt = Date.now();

      // The same reports again: each must be recognised as stored, with no second alert.
      for (const report of uploadedReports) {
        const again = await call('POST', '/reports', report.body, report.contentType);
        assert.equal(again.status, 200, 'a report uploaded twice is stored once');
        figures.duplicateUploads += 1;
      }

      // Drain: wait for no unfinished job, then stop the processes and look again, because the
      // periodic note flush may have queued a job in between.
      const drainDeadline = Date.now() + SIZE.drainTimeoutMs;
      let lastReport = Date.now();
      for (;;) {
        while ((await unfinishedJobs()) > 0 && Date.now() < drainDeadline) {
          await sleep(1000);
          if (Date.now() - lastReport >= 30_000) {
            lastReport = Date.now();
            t.diagnostic(`draining at ${Date.now() - started} ms: ${await jobStates()}`);
          }
        }
        for (const worker of [...live]) {
          live.splice(live.indexOf(worker), 1);
          await worker.stop();
        }
        const left = await unfinishedJobs();
        if (left === 0) break;
        assert.ok(
          Date.now() < drainDeadline,
          `${left} jobs unfinished after ${SIZE.drainTimeoutMs} ms: ${await jobStates()}`,
        );
        await startWorker();
      }
      const drainedAt = Date.now();

      // What HaloPSA holds.
      const counts = (await emulatorControl('GET', '/requests/counts')) as RequestCounts;
      const tickets = (await records<Ticket>('Tickets')).filter(
        (ticket) => ticket.third_party_id_string && !ticket.deleted,
      );
      const actions = await records<Action>('Actions');
      const licences = (await records<Licence>('SoftwareLicence')).filter(
        (licence) => licence.item_id === itemId,
      );

      // What dmarcdesk holds.
      const alerts = await control.app.db.query<{
        id: string;
        kind: AlertKind;
        customer_id: string;
        incident_id: string;
        ticket_status: string;
      }>('SELECT id, kind, customer_id, incident_id, ticket_status FROM alerts');
      const incidents = await control.app.db.query<{
        id: string;
        ticket_status: string;
        halopsa_ticket_id: number | null;
        firing_count: number;
      }>('SELECT id, ticket_status, halopsa_ticket_id, firing_count FROM alert_incidents');
      const notes = await control.app.db.query<{
        incident_id: string;
        status: string;
        alert_ids: string[];
        halopsa_ticket_id: number;
        halopsa_action_id: number | null;
      }>(
        'SELECT incident_id, status, alert_ids, halopsa_ticket_id, halopsa_action_id FROM alert_incident_notes',
      );

      const ticketsByAlert = new Map<string, Ticket[]>();
      for (const ticket of tickets) {
        const list = ticketsByAlert.get(ticket.third_party_id_string!) ?? [];
        list.push(ticket);
        ticketsByAlert.set(ticket.third_party_id_string!, list);
      }
      const duplicates = [...ticketsByAlert.values()].filter((list) => list.length > 1).length;
      const ticketIds = new Set(tickets.map((ticket) => ticket.id));
      const actionKeys = new Set(actions.map((action) => `${action.ticket_id}/${action.id}`));
      const notedAlerts = new Set<string>();
      for (const note of notes) {
        if (note.status !== 'sent') continue;
        if (actionKeys.has(`${note.halopsa_ticket_id}/${note.halopsa_action_id}`)) {
          for (const id of note.alert_ids) notedAlerts.add(id);
        }
      }
      const incidentById = new Map(incidents.map((incident) => [incident.id, incident]));
      const lost: string[] = [];
      let held = 0;
      for (const alert of alerts) {
        const incident = incidentById.get(alert.incident_id);
        const incidentTicketExists =
          incident?.halopsa_ticket_id != null && ticketIds.has(incident.halopsa_ticket_id);
        const accounted =
          (ticketsByAlert.get(alert.id)?.length ?? 0) === 1 ||
          notedAlerts.has(alert.id) ||
          (alert.ticket_status === 'held' && incidentTicketExists);
        if (alert.ticket_status === 'held') held += 1;
        if (!accounted) lost.push(`${alert.id} (${alert.kind}, ${alert.ticket_status})`);
      }
      // Firings each ticket's notes report, as HaloPSA shows them; more than dmarcdesk noted means
      // a note was sent twice after its response was lost.
      let firingsInNotes = 0;
      let notesInHalo = 0;
      for (const action of actions) {
        const match = /(\d+) firings? since the last update/.exec(action.note ?? '');
        if (match && ticketIds.has(action.ticket_id)) {
          firingsInNotes += Number(match[1]);
          notesInHalo += 1;
        }
      }
      const notesSent = notes.filter((note) => note.status === 'sent').length;

      let licencesCorrect = 0;
      const wrongLicences: string[] = [];
      for (const customer of customers) {
        const listed = await setupCall('GET', `/customers/${customer.id}/domains`);
        const domains = listed.body.domains as { name: string; status: string }[];
        const billable = domains.filter((domain) => domain.status === 'active').length;
        const modelled =
          1 +
          [...customer.extraDomains.values()].filter((domain) => domain.status === 'active').length;
        assert.equal(billable, modelled, `billable domains of ${customer.id}`);
        const ofClient = licences.filter((licence) => licence.client_id === customer.haloClientId);
        if (ofClient.length === 1 && ofClient[0]!.count === billable) {
          licencesCorrect += 1;
        } else {
          wrongLicences.push(
            `customer ${customer.index}: ${billable} billable, licences ${JSON.stringify(ofClient.map((licence) => licence.count))}`,
          );
        }
      }

      const ticketsExpected = firedKinds.size;
      const result = {
        size: SIZE,
        alertsProduced: figures.alertsProduced,
        alertsStored: alerts.length,
        incidents: incidents.length,
        ticketsExpected,
        ticketsCreated: tickets.length,
        duplicateTickets: duplicates,
        alertsLost: lost.length,
        alertsHeld: held,
        alertsNoted: notedAlerts.size,
        firingsInNotes,
        notesSent,
        notesInHalo,
        duplicateNotes: notesInHalo - notesSent,
        licencesCorrect: `${licencesCorrect}/${customers.length}`,
        domainChanges: figures.domainChanges,
        haloRequests: counts.total,
        received429: counts.byStatus['429'] ?? 0,
        requestsByFault: counts.byFault,
        kills: figures.kills,
        restarts: figures.restarts,
        connectionRetries: figures.connectionRetries,
        duplicateUploads: figures.duplicateUploads,
        serviceErrors5xx: figures.serverErrors,
        produceSeconds: Math.round((producedAt - started) / 1000),
        drainSeconds: Math.round((drainedAt - producedAt) / 1000),
        totalSeconds: Math.round((Date.now() - started) / 1000),
      };
      t.diagnostic(`soak figures: ${JSON.stringify(result)}`);

      assert.equal(alerts.length, SIZE.alerts, 'alerts stored');
      assert.equal(incidents.length, ticketsExpected, 'incidents');
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} alerts not accounted for`);
      assert.equal(duplicates, 0, 'alert ids with more than one ticket');
      assert.equal(tickets.length, ticketsExpected, 'tickets created');
      for (const incident of incidents) {
        assert.equal(incident.ticket_status, 'created', `ticket status of incident ${incident.id}`);
        assert.ok(
          incident.halopsa_ticket_id !== null && ticketIds.has(incident.halopsa_ticket_id),
          `ticket of incident ${incident.id} in HaloPSA`,
        );
      }
      // A retried note looks for its reference on the ticket first, so none is added twice.
      // NOTE: the reference is built from the firings not yet noted, so a note retried after
      // new firings arrived gets a new one and repeats the earlier firings. The full size met
      // this once (601 notes on the tickets for 600 sent).
      assert.equal(notesInHalo, notesSent, 'notes in HaloPSA');
      assert.ok(firingsInNotes >= notedAlerts.size, 'firings in HaloPSA notes');
      assert.deepEqual(wrongLicences, [], 'licence counts');
      assert.equal(figures.serverErrors, 0, 'responses of 500 or above from dmarcdesk');
    },
  );
});
