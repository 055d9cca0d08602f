import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { canonicalSpfText, parseSpfRecord, selectSpfRecord } from './spf-record.ts';

function codes(text: string): string[] {
  return parseSpfRecord(text).findings.map((item) => item.code);
}

describe('SPF record selection', () => {
  test('joins strings without a separator', () => {
    const broken = selectSpfRecord([['v=spf1 ip4:192.0.2.10', 'include:_spf.example.net -all']]);
    const fine = selectSpfRecord([['v=spf1 ip4:192.0.2.10 ', 'include:_spf.example.net -all']]);

    assert.equal(broken.record, 'v=spf1 ip4:192.0.2.10include:_spf.example.net -all');
    assert.equal(parseSpfRecord(broken.record ?? '').valid, false);
    assert.equal(parseSpfRecord(fine.record ?? '').valid, true);
  });

  test('keeps a long record split correctly', () => {
    const includes = Array.from({ length: 8 }, (_, index) => `include:_spf${index}.example.net`);
    const ip4s = Array.from({ length: 12 }, (_, index) => `ip4:198.51.100.${index}`);
    const text = ['v=spf1', ...ip4s, ...includes, '-all'].join(' ');
    const strings = [text.slice(0, 250), text.slice(250)];

    const selection = selectSpfRecord([strings]);
    const record = parseSpfRecord(selection.record ?? '');

    assert.ok(text.length > 255);
    assert.equal(record.valid, true);
    assert.ok(
      !record.findings.some((item) => item.severity !== 'info'),
      JSON.stringify(record.findings),
    );
  });

  test('discards records that only look like SPF', () => {
    for (const text of [' v=spf1 -all', 'v=spf10 -all', 'v=spf1;-all', 'v = spf1 -all']) {
      const selection = selectSpfRecord([[text]]);
      assert.equal(selection.status, 'none', text);
      assert.deepEqual(
        selection.findings.map((item) => item.code),
        ['spf_not_a_record'],
        text,
      );
    }
    assert.equal(selectSpfRecord([['v=spf1']]).status, 'found');
    assert.equal(selectSpfRecord([['v=spf1 -all  ']]).status, 'found');
  });

  test('rejects several SPF records', () => {
    const selection = selectSpfRecord([['v=spf1 -all'], ['v=spf1 include:_spf.example.net ~all']]);

    assert.equal(selection.status, 'multiple');
    assert.deepEqual(
      selection.findings.map((item) => item.code),
      ['spf_multiple_records'],
    );
  });

  test('notes obsolete Sender ID records', () => {
    const selection = selectSpfRecord([['spf2.0/pra ip4:192.0.2.0/24 -all'], ['v=spf1 -all']]);

    assert.equal(selection.status, 'found');
    assert.deepEqual(
      selection.findings.map((item) => item.code),
      ['spf_sender_id'],
    );
  });
});

describe('SPF record syntax', () => {
  test('accepts names in any case', () => {
    const record = parseSpfRecord('V=SPF1 Include:_spf.example.net IP4:192.0.2.0/24 -ALL');

    assert.equal(record.valid, true);
    assert.deepEqual(
      record.mechanisms.map((mechanism) => mechanism.name),
      ['include', 'ip4', 'all'],
    );
    assert.equal(
      canonicalSpfText(record),
      'v=spf1 +include:_spf.example.net +ip4:192.0.2.0/24 -all',
    );
  });

  test('rejects terms glued together', () => {
    const record = parseSpfRecord('v=spf1 ip4:192.0.2.7~all');

    assert.equal(record.valid, false);
    assert.match(record.findings[0]?.message ?? '', /invalid IPv4 address "192.0.2.7~all"/);
  });

  test('accepts valid edge forms', () => {
    const cases = [
      'v=spf1 a:mail.example.com/24 -all',
      'v=spf1 a/24//64 mx//56 -all',
      'v=spf1 -all exp=explain.example.com',
      'v=spf1 ip6:2001:db8::/32 ip6:::ffff:192.0.2.1 -all',
      'v=spf1 foo=bar -all',
      'v=spf1 -all v=spf1',
      'v=spf1 include:_spf.example.net. -all',
      'v=spf1 exists:%{i}._ip.%{d}._spf.example.net -all',
      'v=spf1 include:%{ir}.%{v}._spf.example.net -all',
      'v=spf1 a:%{S}.example.com -all',
      'v=spf1 a:%{d2r+-}.%%.example.com -all',
    ];
    for (const text of cases) {
      const record = parseSpfRecord(text);
      assert.equal(record.valid, true, `${text}: ${JSON.stringify(record.findings)}`);
    }
    const cidr = parseSpfRecord('v=spf1 a:mail.example.com/24 -all').mechanisms[0];
    assert.equal(cidr?.domainSpec, 'mail.example.com');
    assert.equal(cidr?.ip4Prefix, 24);
  });

  test('rejects invalid terms', () => {
    const cases: [string, RegExp][] = [
      ['v=spf1 ip4:192.0.2.0/33 -all', /invalid prefix length/],
      ['v=spf1 ip4:192.0.02.1 -all', /invalid IPv4 address/],
      ['v=spf1 ip6:2001:db8::zz -all', /invalid IPv6 address/],
      ['v=spf1 include -all', /needs ":" and a domain/],
      ['v=spf1 include:localhost -all', /single-label domain/],
      ['v=spf1 include:192.0.2.1 -all', /valid top label/],
      ['v=spf1 a:%{c}.example.com -all', /only in explanation text/],
      ['v=spf1 a:%{x}.example.com -all', /unknown macro letter/],
      ['v=spf1 a:50%.example.com -all', /starts no macro/],
      ['v=spf1 spf.example.com -all', /not a known mechanism/],
      ['v=spf1 all:foo', /text after "all"/],
      ['v=spf1 redirect=a.example.com redirect=b.example.com', /at most once/],
      ['v=spf1 -all exp=a.example.com exp=b.example.com', /at most once/],
      ['v=spf1 a -all\tmx', /character "\\t"/],
      ['v=spf1 a\n-all', /character "\\n"/],
    ];
    for (const [text, pattern] of cases) {
      const record = parseSpfRecord(text);
      assert.equal(record.valid, false, text);
      assert.match(record.findings.map((item) => item.message).join(' '), pattern, text);
    }
  });

  test('warns about a mechanism written as a modifier', () => {
    const record = parseSpfRecord('v=spf1 include=_spf.example.net -all');

    assert.equal(record.valid, true);
    assert.deepEqual(
      record.mechanisms.map((mechanism) => mechanism.name),
      ['all'],
    );
    assert.ok(codes('v=spf1 include=_spf.example.net -all').includes('spf_mechanism_as_modifier'));
  });

  test('warns about terms after all and redirect next to all', () => {
    const after = parseSpfRecord('v=spf1 -all include:_spf.example.net');
    const redirect = parseSpfRecord('v=spf1 redirect=_spf.example.net -all');
    const plain = parseSpfRecord('v=spf1 redirect=_spf.example.net');

    assert.ok(after.findings.some((item) => item.code === 'spf_terms_after_all'));
    assert.ok(redirect.findings.some((item) => item.code === 'spf_redirect_ignored'));
    assert.equal(redirect.redirect, undefined);
    assert.equal(plain.redirect, '_spf.example.net');
    assert.deepEqual(plain.findings, []);
  });

  test('judges the ending', () => {
    assert.ok(codes('v=spf1 +all').includes('spf_pass_all'));
    assert.ok(codes('v=spf1 all').includes('spf_pass_all'));
    assert.ok(codes('v=spf1 ?all').includes('spf_neutral_all'));
    assert.ok(codes('v=spf1 ip4:192.0.2.1').includes('spf_no_all'));
    assert.deepEqual(codes('v=spf1 ip4:192.0.2.1 ~all'), []);
    assert.deepEqual(codes('v=spf1 ip4:192.0.2.1 -all'), []);
  });

  test('warns about ptr, the p macro and macros', () => {
    assert.ok(codes('v=spf1 ptr -all').includes('spf_ptr'));
    assert.ok(codes('v=spf1 exists:%{p}.example.com -all').includes('spf_p_macro'));
    assert.ok(codes('v=spf1 exists:%{i}.example.com -all').includes('spf_macros'));
  });

  test('warns about long records', () => {
    const ip4s = (count: number) =>
      Array.from({ length: count }, (_, index) => `ip4:198.51.100.${index}`).join(' ');

    assert.ok(codes(`v=spf1 ${ip4s(26)} -all`).includes('spf_record_long'));
    assert.ok(codes(`v=spf1 ${ip4s(30)} -all`).includes('spf_record_too_long'));
  });

  test('writes a canonical form that ignores case and default prefixes', () => {
    const a = parseSpfRecord(
      'v=spf1   IP4:192.0.2.1/32 A:Mail.Example.COM/32  mx exists:%{I}.X.example.com  -ALL ',
    );
    const b = parseSpfRecord(
      'v=spf1 +ip4:192.0.2.1 +a:mail.example.com +mx +exists:%{I}.x.example.com -all',
    );

    assert.equal(canonicalSpfText(a), canonicalSpfText(b));
    assert.notEqual(
      canonicalSpfText(parseSpfRecord('v=spf1 exists:%{i}.x.example.com -all')),
      canonicalSpfText(b),
    );
  });
});
