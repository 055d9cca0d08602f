import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Resolver } from 'node:dns/promises';
import { buildConnector } from 'undici';
import { startDnsServer, type TestDnsServer } from '../../test/support/dns-server.ts';
import { HaloPsaClient, HaloPsaError } from '../halopsa/index.ts';
import { classifyAddress, createGuardedDispatcher, type ResolveAll } from './outbound-guard.ts';
import { checkInstanceUrl } from './url-policy.ts';

// IP spellings that reach loopback, private, link-local, metadata or other non-public ranges.
const BLOCKED_HOSTS = [
  '127.0.0.1',
  '127.1',
  '127.0.1',
  '2130706433',
  '0x7f000001',
  '0x7f.0.0.1',
  '0177.0.0.1',
  '017700000001',
  '0',
  '0.0.0.0',
  '10.0.0.1',
  '10.255.255.254',
  '172.16.0.1',
  '172.31.255.255',
  '192.168.1.1',
  '169.254.169.254',
  '169.254.170.2',
  '100.100.100.200',
  '100.64.0.1',
  '192.0.0.192',
  '168.63.129.16',
  '224.0.0.1',
  '255.255.255.255',
  '[::1]',
  '[::]',
  '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]',
  '[0:0:0:0:0:ffff:127.0.0.1]',
  '[fd00:ec2::254]',
  '[fc00::1]',
  '[fe80::1]',
  '[ff02::1]',
  '[64:ff9b::7f00:1]',
  '[2002:7f00:1::1]',
  '[2001:0:4136:e378:8000:63bf:3fff:fdd2]',
  'localhost',
  'localhost.',
  'LOCALHOST',
  'api.localhost',
  'intranet',
  '１２７.０.０.１',
  '%31%32%37.0.0.1',
];

// Names that a scripted resolver maps to blocked addresses, as a hostile DNS zone would.
const HOSTILE_ZONE: Record<string, string[]> = {
  'loopback.attacker.example': ['127.0.0.1'],
  'loopback6.attacker.example': ['::1'],
  'metadata.attacker.example': ['169.254.169.254'],
  'private.attacker.example': ['10.1.2.3'],
  'mapped.attacker.example': ['::ffff:127.0.0.1'],
  'nat64.attacker.example': ['64:ff9b::a9fe:a9fe'],
  'mixed.attacker.example': ['93.184.216.34', '127.0.0.1'],
  'azure.attacker.example': ['168.63.129.16'],
  'metadata.google.internal': ['169.254.169.254'],
  'cgnat.attacker.example': ['100.64.1.1'],
};

const scriptedResolver: ResolveAll = async (hostname) => {
  const addresses = HOSTILE_ZONE[hostname.toLowerCase()];
  if (!addresses)
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address): LookupAddress => ({
    address,
    family: address.includes(':') ? 6 : 4,
  }));
};

function hostileUrls(port: number): string[] {
  const hosts = [...BLOCKED_HOSTS, ...Object.keys(HOSTILE_ZONE)];
  const urls: string[] = [];
  for (const host of hosts) {
    for (const scheme of ['https', 'http']) {
      for (const suffix of ['', `:${port}`, ':443', ':80', ':8443']) {
        for (const path of ['', '/', '/api', '/auth/'])
          urls.push(`${scheme}://${host}${suffix}${path}`);
      }
    }
    urls.push(
      `https://halo.example.com@${host}/`,
      `https://${host}\\@halo.example.com/`,
      `https://${host}#@halo.example.com`,
    );
  }
  return urls;
}

/** Start a loopback HTTP server that counts every connection and request; any hit is a failure. */
async function startCanary(): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((_request, response) => {
    hits += 1;
    response.end('{}');
  });
  server.on('connection', () => (hits += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, hits: () => hits };
}

async function tryConnect(
  url: string,
  dispatcher: ReturnType<typeof createGuardedDispatcher>,
): Promise<string> {
  let checked: URL;
  try {
    checked = checkInstanceUrl(url, []);
  } catch (error) {
    assert.ok(error instanceof HaloPsaError, `unexpected ${String(error)} for ${url}`);
    return 'rejected by URL policy';
  }
  const client = new HaloPsaClient({
    baseUrl: checked.toString(),
    clientId: 'canary-client',
    clientSecret: 'canary-secret',
    dispatcher,
    timeoutMs: 2000,
  });
  try {
    await client.checkConnection();
    return 'connected';
  } catch (error) {
    assert.ok(error instanceof HaloPsaError);
    return error.code;
  }
}

describe('outbound guard', () => {
  let canary: Awaited<ReturnType<typeof startCanary>>;

  before(async () => {
    canary = await startCanary();
  });

  after(async () => {
    await new Promise((resolve) => canary.server.close(resolve));
  });

  test('classifies addresses by range', () => {
    for (const address of [
      '127.0.0.1',
      '10.0.0.1',
      '::1',
      '::ffff:10.0.0.1',
      'fe80::1',
      '169.254.169.254',
      '168.63.129.16',
      '2002:a00:1::',
      '64:ff9b::1',
    ]) {
      assert.equal(classifyAddress(address).allowed, false, address);
    }
    for (const address of ['93.184.216.34', '2606:4700::1111', '1.1.1.1']) {
      assert.equal(classifyAddress(address).allowed, true, address);
    }
  });

  test('hostile URLs never reach a blocked address', async (context) => {
    const attempts: string[] = [];
    const spy: buildConnector.connector = (options, callback) => {
      attempts.push(options.hostname);
      callback(
        Object.assign(new Error('connection suppressed by the test'), { code: 'ECONNREFUSED' }),
        null,
      );
    };
    const dispatcher = createGuardedDispatcher({
      allowedHosts: [],
      resolveAll: scriptedResolver,
      connector: spy,
    });

    const urls = hostileUrls(canary.port);
    const outcomes = new Map<string, number>();
    for (const url of urls) {
      const outcome = await tryConnect(url, dispatcher);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      assert.notEqual(outcome, 'connected', url);
    }
    context.diagnostic(
      `${urls.length} hostile URLs: ${JSON.stringify(Object.fromEntries(outcomes))}`,
    );
    assert.ok(urls.length >= 500);
    const blockedAttempts = attempts.filter((address) => !classifyAddress(address).allowed);
    assert.deepEqual(blockedAttempts, []);
    assert.equal(canary.hits(), 0);
  });

  test('public instances pass the guard', async () => {
    const attempts: string[] = [];
    const spy: buildConnector.connector = (options, callback) => {
      attempts.push(options.hostname);
      callback(
        Object.assign(new Error('connection suppressed by the test'), { code: 'ECONNREFUSED' }),
        null,
      );
    };
    const publicResolver: ResolveAll = async () => [{ address: '93.184.216.34', family: 4 }];
    const dispatcher = createGuardedDispatcher({
      allowedHosts: [],
      resolveAll: publicResolver,
      connector: spy,
    });
    for (let index = 0; index < 200; index += 1) {
      const outcome = await tryConnect(`https://msp${index}.halopsa.com`, dispatcher);
      assert.equal(outcome, 'connection_failed');
    }
    assert.equal(attempts.length, 200);
  });

  test('a real connector makes no loopback connection', async () => {
    const dispatcher = createGuardedDispatcher({ allowedHosts: [], resolveAll: scriptedResolver });
    for (const host of [
      'loopback.attacker.example',
      'mapped.attacker.example',
      'mixed.attacker.example',
    ]) {
      const outcome = await tryConnect(`https://${host}:${canary.port}`, dispatcher);
      assert.equal(outcome, 'connection_failed', host);
    }
    assert.equal(canary.hits(), 0);
  });

  test('names served by a loopback DNS server never reach blocked addresses', async () => {
    const dns: TestDnsServer = await startDnsServer({
      'loopback.zone.example': [{ type: 'A', address: '127.0.0.1' }],
      'loopback-alt.zone.example': [{ type: 'A', address: '127.8.9.10' }],
      'loopback6.zone.example': [{ type: 'AAAA', address: '::1' }],
      'dual.zone.example': [
        { type: 'A', address: '127.0.0.1' },
        { type: 'AAAA', address: '::1' },
      ],
      'alias.zone.example': [{ type: 'CNAME', target: 'loopback.zone.example' }],
      'metadata.zone.example': [{ type: 'A', address: '169.254.169.254' }],
      'private.zone.example': [{ type: 'A', address: '10.0.0.7' }],
      'ula.zone.example': [{ type: 'AAAA', address: 'fd00:ec2::254' }],
    });
    try {
      const resolver = new Resolver({ timeout: 500, tries: 1 });
      resolver.setServers([dns.address]);
      const viaDns: ResolveAll = async (hostname) => {
        const found: LookupAddress[] = [];
        for (const [family, lookup] of [
          [4, () => resolver.resolve4(hostname)],
          [6, () => resolver.resolve6(hostname)],
        ] as const) {
          const addresses = await lookup().catch(() => [] as string[]);
          for (const address of addresses) found.push({ address, family });
        }
        if (found.length === 0)
          throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
        return found;
      };

      // Loopback answers go through the real connector: a bug would show as a canary hit.
      const real = createGuardedDispatcher({ allowedHosts: [], resolveAll: viaDns });
      for (const host of [
        'loopback.zone.example',
        'loopback-alt.zone.example',
        'loopback6.zone.example',
        'dual.zone.example',
        'alias.zone.example',
      ]) {
        assert.equal(
          await tryConnect(`https://${host}:${canary.port}`, real),
          'connection_failed',
          host,
        );
      }
      // Other blocked ranges go through a spy, so that a bug never sends traffic off the machine.
      const attempts: string[] = [];
      const spy: buildConnector.connector = (options, callback) => {
        attempts.push(options.hostname);
        callback(
          Object.assign(new Error('connection suppressed by the test'), { code: 'ECONNREFUSED' }),
          null,
        );
      };
      const spied = createGuardedDispatcher({
        allowedHosts: [],
        resolveAll: viaDns,
        connector: spy,
      });
      for (const host of ['metadata.zone.example', 'private.zone.example', 'ula.zone.example']) {
        assert.equal(await tryConnect(`https://${host}`, spied), 'connection_failed', host);
      }
      assert.deepEqual(attempts, []);
      assert.equal(canary.hits(), 0);
      assert.ok(dns.queries.length >= 8, 'the names were resolved through the test DNS server');
    } finally {
      await dns.stop();
    }
  });

  test('DNS answers that change between lookups are checked each time', async () => {
    let lookups = 0;
    const rebinding: ResolveAll = async () => {
      lookups += 1;
      return [
        lookups % 2 === 1
          ? { address: '93.184.216.34', family: 4 }
          : { address: '127.0.0.1', family: 4 },
      ];
    };
    const attempts: string[] = [];
    const spy: buildConnector.connector = (options, callback) => {
      attempts.push(options.hostname);
      callback(
        Object.assign(new Error('connection suppressed by the test'), { code: 'ECONNREFUSED' }),
        null,
      );
    };
    const dispatcher = createGuardedDispatcher({
      allowedHosts: [],
      resolveAll: rebinding,
      connector: spy,
    });
    for (let attempt = 0; attempt < 1000; attempt += 1) {
      await tryConnect(
        `https://rebind-${attempt % 10}.attacker.example:${canary.port}`,
        dispatcher,
      );
    }
    assert.ok(lookups >= 1000);
    assert.equal(
      attempts.every((address) => address === '93.184.216.34'),
      true,
    );
    assert.equal(canary.hits(), 0);
  });

  test('a redirect to loopback is not followed', async () => {
    const redirector = createServer((_request, response) => {
      response.writeHead(302, { location: `http://127.0.0.1:${canary.port}/api/Client` });
      response.end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const hostPort = `127.0.0.1:${(redirector.address() as AddressInfo).port}`;
      const dispatcher = createGuardedDispatcher({ allowedHosts: [hostPort] });
      for (const path of ['', '/api']) {
        const url = checkInstanceUrl(`http://${hostPort}${path}`, [hostPort]);
        const client = new HaloPsaClient({
          baseUrl: url.toString(),
          clientId: 'a',
          clientSecret: 'b',
          dispatcher,
        });
        await assert.rejects(
          client.checkConnection(),
          (error: unknown) => error instanceof HaloPsaError,
        );
      }
      assert.equal(canary.hits(), 0);
    } finally {
      await new Promise((resolve) => redirector.close(resolve));
    }
  });

  test('blocked and refused connections read the same', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const dispatcher = createGuardedDispatcher({
      allowedHosts: [`127.0.0.1:${closedPort}`],
      resolveAll: scriptedResolver,
    });
    const messageOf = async (baseUrl: string) => {
      const client = new HaloPsaClient({ baseUrl, clientId: 'a', clientSecret: 'b', dispatcher });
      const error = await client.checkConnection().catch((caught: unknown) => caught);
      assert.ok(error instanceof HaloPsaError);
      return {
        code: error.code,
        message: error.message.replace(/\S+:\d+|\d+\.\d+\.\d+\.\d+|[\w.-]+\.example/g, 'HOST'),
      };
    };
    const refused = await messageOf(`http://127.0.0.1:${closedPort}`);
    const blocked = await messageOf(`https://loopback.attacker.example:${closedPort}`);
    assert.equal(blocked.code, refused.code);
    assert.equal(blocked.message, refused.message);
  });
});
