import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Zone } from '../../test/support/dns-server.ts';
import { evaluateSpf } from './spf-evaluation.ts';
import { longTxt, txt, useTestDns } from './test-dns.ts';

const startDns = useTestDns();

function findingCodes(evaluation: { findings: { code: string }[] }): string[] {
  return evaluation.findings.map((item) => item.code);
}

function includes(count: number, prefix: string): Zone {
  const zone: Zone = {};
  for (let index = 0; index < count; index += 1) {
    zone[`${prefix}${index}.example.net`] = txt(`v=spf1 ip4:198.51.100.${index} -all`);
  }
  return zone;
}

function includeTerms(count: number, prefix: string): string {
  return Array.from({ length: count }, (_, index) => `include:${prefix}${index}.example.net`).join(
    ' ',
  );
}

describe('SPF lookup counting', () => {
  test('counts lookups across includes and redirect', async () => {
    const { resolver } = await startDns({
      'example.com': [
        ...txt('v=spf1 include:_spf.example.com a mx -all'),
        { type: 'A', address: '192.0.2.1' },
        { type: 'AAAA', address: '2001:db8::1' },
        { type: 'MX', exchange: 'mail.example.com' },
      ],
      'mail.example.com': [
        { type: 'A', address: '192.0.2.25' },
        { type: 'AAAA', address: '2001:db8::25' },
      ],
      '_spf.example.com': txt('v=spf1 ip4:198.51.100.0/24 redirect=_spf2.example.com'),
      '_spf2.example.com': txt('v=spf1 include:_spf3.example.com ~all'),
      '_spf3.example.com': txt('v=spf1 ip6:2001:db8:1::/48 -all'),
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.status, 'ok');
    assert.equal(evaluation.dnsLookups, 5);
    assert.deepEqual(evaluation.includes, [
      '_spf.example.com',
      '_spf2.example.com',
      '_spf3.example.com',
    ]);
    assert.deepEqual(
      evaluation.tree.children.map((child) => [child.domain, child.via, child.dnsLookups]),
      [['_spf.example.com', 'include', 1]],
    );
    assert.equal(evaluation.tree.children[0]?.children[0]?.via, 'redirect');
    assert.equal(evaluation.families.ipv4.voidLookups, 0);
    assert.equal(evaluation.families.ipv6.voidLookups, 0);
    assert.equal(
      evaluation.summary,
      'SPF for example.com: 5 DNS lookups; valid for IPv4 and IPv6 senders.',
    );
  });

  test('returns permerror above ten lookups', async () => {
    const { resolver } = await startDns({
      ...includes(11, '_spf'),
      'example.com': longTxt(`v=spf1 ${includeTerms(11, '_spf')} -all`),
      'nine.example.com': longTxt(`v=spf1 ${includeTerms(9, '_spf')} -all`),
      'ten.example.com': longTxt(`v=spf1 ${includeTerms(10, '_spf')} -all`),
    });

    const over = await evaluateSpf('example.com', resolver);
    const nine = await evaluateSpf('nine.example.com', resolver);
    const ten = await evaluateSpf('ten.example.com', resolver);

    assert.equal(over.dnsLookups, 11);
    assert.equal(over.status, 'permerror');
    assert.ok(findingCodes(over).includes('spf_lookup_limit'));
    assert.equal(over.tree.children.length, 11);
    assert.equal(nine.status, 'ok');
    assert.ok(findingCodes(nine).includes('spf_lookup_near_limit'));
    assert.equal(ten.status, 'ok');
    assert.ok(findingCodes(ten).includes('spf_lookup_near_limit'));
  });

  test('counts a repeated include every time but asks once', async () => {
    const { server, resolver } = await startDns({
      'example.com': txt('v=spf1 include:_spf.vendor.example include:_spf.other.example -all'),
      '_spf.vendor.example': txt('v=spf1 include:_netblocks.vendor.example -all'),
      '_spf.other.example': txt('v=spf1 include:_netblocks.vendor.example -all'),
      '_netblocks.vendor.example': txt('v=spf1 ip4:203.0.113.0/24 -all'),
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.dnsLookups, 4);
    const asked = server.queries.filter(
      (query) => query.name === '_netblocks.vendor.example' && query.type === 'TXT',
    );
    assert.equal(asked.length, 1);
  });

  test('does not count ip4, ip6, all or exp', async () => {
    const { resolver } = await startDns({
      'example.com': txt('v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all exp=explain.example.com'),
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.dnsLookups, 0);
    assert.equal(evaluation.status, 'ok');
  });

  test('counts macros and ptr without resolving them', async () => {
    const { server, resolver } = await startDns({
      'example.com': txt(
        'v=spf1 include:%{ir}.%{v}._spf.example.net exists:%{i}._ip.%{d}._spf.example.net ptr -all',
      ),
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.dnsLookups, 3);
    assert.equal(evaluation.senderDependent, true);
    assert.equal(evaluation.status, 'ok');
    assert.equal(evaluation.tree.children[0]?.status, 'sender_dependent');
    assert.deepEqual(new Set(server.queries.map((query) => query.name)), new Set(['example.com']));
    assert.ok(findingCodes(evaluation).includes('spf_ptr'));
    assert.ok(evaluation.families.ipv4.approximate);
  });
});

describe('SPF include and redirect', () => {
  test('returns permerror for an include without SPF', async () => {
    const { resolver } = await startDns({
      'example.com': txt('v=spf1 include:_spf.vendor.example -all'),
      'other.example.com': txt('v=spf1 include:_spf.text.example -all'),
      '_spf.text.example': txt('google-site-verification=abc'),
    });

    const missing = await evaluateSpf('example.com', resolver);
    const noSpf = await evaluateSpf('other.example.com', resolver);

    assert.equal(missing.status, 'permerror');
    assert.ok(findingCodes(missing).includes('spf_include_missing'));
    assert.equal(missing.families.ipv4.voidLookups, 1);
    assert.equal(missing.tree.children[0]?.status, 'none');
    assert.equal(noSpf.status, 'permerror');
    assert.equal(noSpf.families.ipv4.voidLookups, 0);
  });

  test('returns permerror for a broken included record', async () => {
    const { resolver } = await startDns({
      'example.com': txt('v=spf1 include:_spf.vendor.example -all'),
      '_spf.vendor.example': txt('v=spf1 ip4:192.0.2.300 -all'),
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.status, 'permerror');
    assert.ok(findingCodes(evaluation).includes('spf_include_invalid'));
    assert.ok(
      evaluation.findings.some((item) =>
        item.message.startsWith('In the record of _spf.vendor.example:'),
      ),
    );
  });

  test('ignores redirect when all is present', async () => {
    const { server, resolver } = await startDns({
      'example.com': txt('v=spf1 redirect=_spf.example.net -all'),
      'plain.example.com': txt('v=spf1 redirect=_spf.example.net'),
      '_spf.example.net': txt('v=spf1 ip4:203.0.113.0/24 ~all'),
    });

    const withAll = await evaluateSpf('example.com', resolver);
    const queriedEarly = server.queries.some((query) => query.name === '_spf.example.net');
    const plain = await evaluateSpf('plain.example.com', resolver);

    assert.equal(withAll.dnsLookups, 0);
    assert.equal(queriedEarly, false);
    assert.equal(withAll.families.ipv4.passAddresses, '0');
    assert.equal(plain.dnsLookups, 1);
    assert.equal(plain.families.ipv4.passAddresses, '256');
  });

  test('returns permerror for a redirect without SPF', async () => {
    const { resolver } = await startDns({
      'example.com': txt('v=spf1 redirect=_spf.gone.example'),
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.status, 'permerror');
    assert.ok(findingCodes(evaluation).includes('spf_redirect_missing'));
  });

  test('detects include loops', async () => {
    const { resolver } = await startDns({
      'example.com': txt('v=spf1 include:_a.example.com -all'),
      '_a.example.com': txt('v=spf1 include:_b.example.com -all'),
      '_b.example.com': txt('v=spf1 include:example.com -all'),
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.status, 'permerror');
    assert.ok(findingCodes(evaluation).includes('spf_include_loop'));
    assert.equal(evaluation.tree.children[0]?.children[0]?.children[0]?.status, 'loop');
  });
});

describe('SPF void lookups and mx', () => {
  test('judges IPv4 and IPv6 senders apart', async () => {
    const { resolver } = await startDns({
      'example.com': txt(
        'v=spf1 a:out1.example.com a:out2.example.com a:out3.example.com ip4:192.0.2.0/24 -all',
      ),
      'out1.example.com': [{ type: 'A', address: '198.51.100.1' }],
      'out2.example.com': [{ type: 'A', address: '198.51.100.2' }],
      'out3.example.com': [{ type: 'A', address: '198.51.100.3' }],
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.families.ipv4.result, 'ok');
    assert.equal(evaluation.families.ipv4.voidLookups, 0);
    assert.equal(evaluation.families.ipv6.result, 'permerror_risk');
    assert.equal(evaluation.families.ipv6.voidLookups, 3);
    assert.equal(evaluation.status, 'permerror_risk');
    assert.ok(findingCodes(evaluation).includes('spf_void_limit'));
    assert.match(
      evaluation.summary,
      /valid for IPv4 senders, permerror at receivers that enforce the void lookup limit for IPv6 senders/,
    );
  });

  test('counts void lookups of mx hosts', async () => {
    const { resolver } = await startDns({
      'example.com': [
        ...txt('v=spf1 mx -all'),
        { type: 'MX', exchange: 'mx1.example.com', priority: 10 },
        { type: 'MX', exchange: 'mx2.example.com', priority: 20 },
        { type: 'MX', exchange: 'mx3.example.com', priority: 30 },
      ],
      'mx1.example.com': [
        { type: 'A', address: '192.0.2.1' },
        { type: 'AAAA', address: '2001:db8::1' },
      ],
      'mx2.example.com': [{ type: 'A', address: '192.0.2.2' }],
      'mx3.example.com': [{ type: 'A', address: '192.0.2.3' }],
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.dnsLookups, 1);
    assert.equal(evaluation.families.ipv4.voidLookups, 0);
    assert.equal(evaluation.families.ipv6.voidLookups, 2);
    assert.equal(evaluation.families.ipv4.passAddresses, '3');
    assert.equal(evaluation.families.ipv6.passAddresses, '1');
    assert.equal(evaluation.status, 'ok');
  });

  test('returns permerror above ten MX records', async () => {
    const mx = Array.from({ length: 11 }, (_, index) => ({
      type: 'MX' as const,
      exchange: `mx${index}.example.com`,
      priority: index,
    }));
    const { resolver } = await startDns({ 'example.com': [...txt('v=spf1 mx -all'), ...mx] });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.status, 'permerror');
    assert.ok(findingCodes(evaluation).includes('spf_mx_too_many'));
  });

  test('warns when a or mx find nothing', async () => {
    const { resolver } = await startDns({
      'example.com': txt('v=spf1 a mx:nomx.example.com ip4:192.0.2.1 -all'),
      'nomx.example.com': [{ type: 'A', address: '192.0.2.9' }],
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.ok(findingCodes(evaluation).includes('spf_a_no_address'));
    assert.ok(findingCodes(evaluation).includes('spf_mx_none'));
    assert.equal(evaluation.families.ipv4.voidLookups, 2);
    assert.equal(evaluation.families.ipv4.result, 'ok');
  });
});

describe('SPF lookup problems', () => {
  test('reports temperror when an include times out', async () => {
    const { resolver } = await startDns({
      'example.com': txt('v=spf1 include:_spf.slow.example -all'),
      '_spf.slow.example': { failure: 'timeout' },
    });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.status, 'temperror');
    assert.equal(evaluation.lookupProblem, true);
    assert.equal(evaluation.tree.children[0]?.status, 'lookup_problem');
    assert.ok(!findingCodes(evaluation).includes('spf_include_missing'));
    assert.equal(evaluation.families.ipv4.voidLookups, 0);
  });

  test('reports temperror when the record lookup fails', async () => {
    const { resolver } = await startDns({ 'example.com': { failure: 'servfail' } });

    const evaluation = await evaluateSpf('example.com', resolver);

    assert.equal(evaluation.status, 'temperror');
    assert.equal(evaluation.lookupProblem, true);
    assert.equal(evaluation.record, null);
  });

  test('reports none without a record', async () => {
    const { resolver } = await startDns({ 'example.com': txt('v=spf10 -all') });

    const noRecord = await evaluateSpf('example.com', resolver);
    const noName = await evaluateSpf('gone.example.com', resolver);

    assert.equal(noRecord.status, 'none');
    assert.equal(noName.status, 'none');
    assert.equal(noName.lookupProblem, false);
    assert.equal(
      noName.summary,
      'SPF for gone.example.com: no SPF record, so receivers return none.',
    );
  });
});

describe('SPF authorised address space', () => {
  test('finds records that let anyone send', async () => {
    const cases: [string, boolean, boolean][] = [
      ['v=spf1 +all', true, true],
      ['v=spf1 all', true, true],
      ['v=spf1 ip4:0.0.0.0/0 -all', true, false],
      ['v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all', true, false],
      ['v=spf1 ip6:::/0 -all', false, true],
      ['v=spf1 a/0 -all', true, false],
      ['v=spf1 mx/0 -all', true, false],
      ['v=spf1 a -ip4:0.0.0.0/0 +all', false, true],
      ['v=spf1 include:_open.example.net -all', true, true],
      ['v=spf1 -include:_open.example.net -all', false, false],
      ['v=spf1 exists:always.example.net -all', true, true],
      ['v=spf1 ip4:192.0.2.1 redirect=_open.example.net', true, true],
      ['v=spf1 ip4:192.0.2.0/24 ~all', false, false],
    ];
    for (const [record, ipv4, ipv6] of cases) {
      const { resolver } = await startDns({
        'example.com': [
          ...txt(record),
          { type: 'A', address: '192.0.2.1' },
          { type: 'MX', exchange: 'mail.example.com' },
        ],
        'mail.example.com': [{ type: 'A', address: '192.0.2.25' }],
        '_open.example.net': txt('v=spf1 +all'),
        'always.example.net': [{ type: 'A', address: '127.0.0.2' }],
      });

      const evaluation = await evaluateSpf('example.com', resolver);

      assert.equal(evaluation.families.ipv4.open, ipv4, `${record} IPv4`);
      assert.equal(evaluation.families.ipv6.open, ipv6, `${record} IPv6`);
      assert.equal(
        findingCodes(evaluation).includes('spf_open_ipv4'),
        ipv4,
        `${record} IPv4 finding`,
      );
      assert.equal(
        findingCodes(evaluation).includes('spf_open_ipv6'),
        ipv6,
        `${record} IPv6 finding`,
      );
    }
  });

  test('measures the space that passes', async () => {
    const { resolver } = await startDns({
      'example.com': txt(
        'v=spf1 ip4:192.0.2.0/24 ip4:192.0.2.128/25 -ip4:198.51.100.0/24 ip4:198.51.100.0/24 -all',
      ),
      'wide.example.com': txt('v=spf1 ip4:10.0.0.0/7 ip6:2001:db8::/31 -all'),
    });

    const narrow = await evaluateSpf('example.com', resolver);
    const wide = await evaluateSpf('wide.example.com', resolver);

    assert.equal(narrow.families.ipv4.passAddresses, '256');
    assert.equal(narrow.families.ipv4.passShare, 256 / 2 ** 32);
    assert.equal(narrow.families.ipv4.largePassSpace, false);
    assert.equal(wide.families.ipv4.largePassSpace, true);
    assert.equal(wide.families.ipv6.largePassSpace, true);
    assert.equal(findingCodes(wide).filter((code) => code === 'spf_large_pass_space').length, 2);
  });
});
