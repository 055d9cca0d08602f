import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { startDnsServer } from '../../test/support/dns-server.ts';
import { DnsResolver, isLookupProblem, isMissing } from './resolver.ts';
import { testTimeoutMs, txt, useTestDns } from './test-dns.ts';

const startDns = useTestDns();

describe('DnsResolver', () => {
  test('returns TXT strings as split on the wire', async () => {
    const { resolver } = await startDns({
      'example.com': [
        { type: 'TXT', data: ['v=spf1 ip4:192.0.2.10 ', 'include:_spf.example.net -all'] },
        { type: 'TXT', data: 'google-site-verification=abc' },
      ],
    });

    const outcome = await resolver.lookupTxt('Example.COM.');

    assert.equal(outcome.status, 'ok');
    assert.equal(outcome.name, 'example.com');
    assert.deepEqual(outcome.status === 'ok' && outcome.records, [
      ['v=spf1 ip4:192.0.2.10 ', 'include:_spf.example.net -all'],
      ['google-site-verification=abc'],
    ]);
    assert.deepEqual(outcome.cnameChain, []);
  });

  test('tells NXDOMAIN from NODATA', async () => {
    const { resolver } = await startDns({
      'example.com': [{ type: 'A', address: '192.0.2.1' }],
      's1._domainkey.example.com': txt('p='),
    });

    const nxdomain = await resolver.lookupTxt('missing.example.com');
    const nodata = await resolver.lookupTxt('example.com');
    const emptyNonTerminal = await resolver.lookupTxt('_domainkey.example.com');

    assert.equal(nxdomain.status, 'nxdomain');
    assert.equal(nodata.status, 'nodata');
    assert.equal(emptyNonTerminal.status, 'nodata');
    assert.ok(isMissing(nxdomain));
    assert.ok(isMissing(nodata));
    assert.ok(!isLookupProblem(nxdomain));
  });

  test('reports SERVFAIL, REFUSED and timeouts as lookup problems', async () => {
    const { resolver } = await startDns({
      'broken.example.com': { failure: 'servfail' },
      'refused.example.com': { failure: 'refused' },
      'silent.example.com': { failure: 'timeout' },
    });

    const servfail = await resolver.lookupTxt('broken.example.com');
    const refused = await resolver.lookupTxt('refused.example.com');
    const timeout = await resolver.lookupTxt('silent.example.com');

    assert.equal(servfail.status, 'servfail');
    assert.equal(refused.status, 'refused');
    assert.equal(timeout.status, 'timeout');
    for (const outcome of [servfail, refused, timeout]) {
      assert.ok(isLookupProblem(outcome));
      assert.ok(!isMissing(outcome));
    }
    assert.equal(
      timeout.message,
      `TXT lookup for silent.example.com timed out after ${testTimeoutMs} ms.`,
    );
  });

  test('reports a server that is not listening as an error', async () => {
    const server = await startDnsServer({});
    await server.stop();
    const resolver = new DnsResolver({ servers: [server.address], timeoutMs: testTimeoutMs });

    const outcome = await resolver.lookupTxt('example.com');

    assert.ok(isLookupProblem(outcome));
    assert.ok(outcome.status === 'error' || outcome.status === 'timeout');
  });

  test('follows CNAMEs and records the chain', async () => {
    for (const chaseCnames of [true, false]) {
      const { resolver } = await startDns(
        {
          '_dmarc.example.com': [{ type: 'CNAME', target: 'example-com.dmarc.provider.net' }],
          'example-com.dmarc.provider.net': [{ type: 'CNAME', target: 'policy.provider.net' }],
          'policy.provider.net': txt('v=DMARC1; p=reject'),
        },
        { chaseCnames },
      );

      const outcome = await resolver.lookupTxt('_dmarc.example.com');

      assert.equal(outcome.status, 'ok', `chaseCnames ${chaseCnames}`);
      assert.equal(outcome.name, '_dmarc.example.com');
      assert.deepEqual(outcome.cnameChain, [
        'example-com.dmarc.provider.net',
        'policy.provider.net',
      ]);
      assert.deepEqual(outcome.status === 'ok' && outcome.records, [['v=DMARC1; p=reject']]);
    }
  });

  test('reports a dangling CNAME with its chain', async () => {
    const { resolver } = await startDns({
      's1._domainkey.example.com': [{ type: 'CNAME', target: 's1.dkim.gone.example.net' }],
    });

    const outcome = await resolver.lookupTxt('s1._domainkey.example.com');

    assert.equal(outcome.status, 'nxdomain');
    assert.deepEqual(outcome.cnameChain, ['s1.dkim.gone.example.net']);
  });

  test('stops at CNAME loops and long chains', async () => {
    const { server } = await startDns(
      {
        'a.example.com': [{ type: 'CNAME', target: 'b.example.com' }],
        'b.example.com': [{ type: 'CNAME', target: 'a.example.com' }],
        'c1.example.com': [{ type: 'CNAME', target: 'c2.example.com' }],
        'c2.example.com': [{ type: 'CNAME', target: 'c3.example.com' }],
        'c3.example.com': [{ type: 'CNAME', target: 'c4.example.com' }],
        'c4.example.com': txt('end'),
      },
      { chaseCnames: false },
    );
    const resolver = new DnsResolver({
      servers: [server.address],
      timeoutMs: testTimeoutMs,
      maxCnameDepth: 2,
    });

    const loop = await resolver.lookupTxt('a.example.com');
    const long = await resolver.lookupTxt('c1.example.com');

    assert.equal(loop.status, 'error');
    assert.equal(loop.code, 'CNAME_LOOP');
    assert.equal(long.status, 'error');
    assert.equal(long.code, 'CNAME_DEPTH');
    assert.deepEqual(long.cnameChain, ['c2.example.com', 'c3.example.com']);
  });

  test('reads a truncated answer again over TCP', async () => {
    const strings = Array.from({ length: 12 }, (_, index) => String(index % 10).repeat(250));
    const { server, resolver } = await startDns({ 'big.example.com': txt(...strings) });

    const outcome = await resolver.lookupTxt('big.example.com');

    assert.equal(outcome.status, 'ok');
    assert.deepEqual(outcome.status === 'ok' && outcome.records, [strings]);
    const transports = server.queries
      .filter((query) => query.type === 'TXT')
      .map((query) => query.transport);
    assert.deepEqual(transports, ['udp', 'tcp']);
  });

  test('sees a changed answer on the next query', async () => {
    const { server, resolver } = await startDns({
      '_dmarc.example.com': [{ type: 'TXT', data: 'v=DMARC1; p=none', ttl: 3600 }],
    });

    const first = await resolver.lookupTxt('_dmarc.example.com');
    server.set('_dmarc.example.com', [{ type: 'TXT', data: 'v=DMARC1; p=reject', ttl: 3600 }]);
    const second = await resolver.lookupTxt('_dmarc.example.com');

    assert.deepEqual(first.status === 'ok' && first.records, [['v=DMARC1; p=none']]);
    assert.deepEqual(second.status === 'ok' && second.records, [['v=DMARC1; p=reject']]);
  });

  test('returns addresses with their TTL and MX records', async () => {
    const { resolver } = await startDns({
      'example.com': [
        { type: 'A', address: '192.0.2.1', ttl: 600 },
        { type: 'A', address: '192.0.2.2', ttl: 120 },
        { type: 'AAAA', address: '2001:db8::1' },
        { type: 'MX', exchange: 'MX1.Example.com', priority: 20 },
      ],
    });

    const a = await resolver.lookupA('example.com');
    const aaaa = await resolver.lookupAaaa('example.com');
    const mx = await resolver.lookupMx('example.com');

    assert.deepEqual(a.status === 'ok' && [...a.records].sort(), ['192.0.2.1', '192.0.2.2']);
    assert.equal(a.status === 'ok' && a.ttl, 120);
    assert.deepEqual(aaaa.status === 'ok' && aaaa.records, ['2001:db8::1']);
    assert.deepEqual(mx.status === 'ok' && mx.records, [
      { exchange: 'mx1.example.com', priority: 20 },
    ]);
  });

  test('rejects malformed names without querying', async () => {
    const { server, resolver } = await startDns({});

    const outcome = await resolver.lookupTxt(`${'a'.repeat(64)}.example.com`);

    assert.equal(outcome.status, 'error');
    assert.equal(outcome.code, 'BAD_NAME');
    assert.equal(server.queries.length, 0);
  });
});
