import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { DmarcEvaluation } from './dmarc-record.ts';
import {
  evaluateDmarcTxt,
  parseDmarcRecord,
  parseDmarcUri,
  selectDmarcRecord,
} from './dmarc-record.ts';

function evaluate(...records: (string | string[])[]): DmarcEvaluation {
  return evaluateDmarcTxt(records.map((record) => (Array.isArray(record) ? record : [record])));
}

function codes(evaluation: DmarcEvaluation): string[] {
  return evaluation.findings.map((item) => item.code);
}

describe('DMARC record selection', () => {
  test('joins the strings of one record', () => {
    const selection = selectDmarcRecord([['v=DMARC1; p=reject; ', 'rua=mailto:d@example.com']]);

    assert.equal(selection.status, 'found');
    assert.equal(selection.record, 'v=DMARC1; p=reject; rua=mailto:d@example.com');
  });

  test('accepts spaces around = and ;', () => {
    for (const text of [
      'v = DMARC1 ; p = reject',
      'v=DMARC1; p=quarantine ;',
      'v=DMARC1;p=reject',
    ]) {
      const evaluation = evaluate(text);
      assert.equal(evaluation.selection.status, 'found', text);
      assert.equal(evaluation.verdicts.rfc9989.enforcement, 'enforcing', text);
      assert.deepEqual(
        codes(evaluation).filter((code) => code === 'dmarc_tag_syntax'),
        [],
        text,
      );
    }
  });

  test('rejects look-alikes as not DMARC', () => {
    const cases: [string, string][] = [
      [' v=DMARC1; p=reject', 'starts with whitespace'],
      ['v=dmarc1; p=reject', 'case-sensitive'],
      ['v=DMARC1 p=reject', 'no ";"'],
      ['p=reject; v=DMARC1', 'must be the first tag'],
      ['v=DMARC10; p=reject', 'no ";"'],
    ];
    for (const [text, reason] of cases) {
      const evaluation = evaluate(text);
      assert.equal(evaluation.selection.status, 'none', text);
      assert.equal(evaluation.verdicts.rfc9989.applies, false, text);
      const message =
        evaluation.findings.find((item) => item.code === 'dmarc_not_a_record')?.message ?? '';
      assert.ok(message.includes(reason), `${text}: ${message}`);
    }
  });

  test('takes tag names and keywords in any case', () => {
    const evaluation = evaluate('V=DMARC1; P=Reject; SP=None');

    assert.equal(evaluation.selection.status, 'found');
    assert.deepEqual(evaluation.verdicts.rfc9989.domain, {
      requested: 'reject',
      weakest: 'reject',
      strongest: 'reject',
    });
    assert.equal(evaluation.verdicts.rfc9989.subdomains?.strongest, 'none');
  });

  test('discards every record when there are several', () => {
    const evaluation = evaluate('v=DMARC1; p=reject', 'v=DMARC1; p=none; rua=mailto:d@example.com');

    assert.equal(evaluation.selection.status, 'multiple');
    assert.equal(evaluation.record, null);
    assert.equal(evaluation.verdicts.rfc7489.applies, false);
    assert.equal(evaluation.verdicts.rfc9989.applies, false);
    assert.ok(codes(evaluation).includes('dmarc_multiple_records'));
  });

  test('ignores unrelated TXT records at _dmarc', () => {
    const evaluation = evaluate(
      'site-verification=abc',
      'v=DMARC1; p=reject; rua=mailto:d@example.com',
    );

    assert.equal(evaluation.selection.status, 'found');
    assert.deepEqual(evaluation.selection.others, ['site-verification=abc']);
    assert.equal(evaluation.verdicts.rfc9989.enforcement, 'enforcing');
    assert.equal(
      evaluation.findings.find((item) => item.code === 'dmarc_unrelated_txt')?.severity,
      'info',
    );
  });
});

describe('DMARC verdicts', () => {
  test('falls back to p=none when sp is invalid and rua is valid', () => {
    const evaluation = evaluate('v=DMARC1; p=reject; sp=rejct; rua=mailto:d@example.com');

    for (const verdict of Object.values(evaluation.verdicts)) {
      assert.equal(verdict.applies, true, verdict.dialect);
      assert.equal(verdict.fallbackToNone, true, verdict.dialect);
      assert.equal(verdict.domain?.strongest, 'none', verdict.dialect);
      assert.equal(verdict.subdomains?.strongest, 'none', verdict.dialect);
      assert.equal(verdict.enforcement, 'monitoring', verdict.dialect);
    }
    assert.ok(codes(evaluation).includes('dmarc_invalid_sp'));
  });

  test('applies no DMARC when p is invalid and rua is missing', () => {
    const evaluation = evaluate('v=DMARC1; p=rejectt');

    assert.equal(evaluation.verdicts.rfc7489.applies, false);
    assert.equal(evaluation.verdicts.rfc9989.applies, false);
    assert.equal(evaluation.verdicts.rfc9989.enforcement, 'not_applied');
    assert.match(
      evaluation.verdicts.rfc7489.summary,
      /p is invalid and there is no valid rua address/,
    );
  });

  test('reads a colon typo as an invalid p', () => {
    const evaluation = evaluate('v=DMARC1; p:reject; rua=mailto:d@example.com');

    assert.ok(codes(evaluation).includes('dmarc_tag_syntax'));
    assert.equal(evaluation.verdicts.rfc9989.domain?.strongest, 'none');
    assert.equal(evaluation.verdicts.rfc7489.domain?.strongest, 'none');
    assert.equal(evaluation.verdicts.rfc7489.fallbackToNone, true);
  });

  test('treats a missing p per dialect', () => {
    const withRua = evaluate('v=DMARC1; rua=mailto:d@example.com');
    const withoutRua = evaluate('v=DMARC1; adkim=s');

    assert.equal(withRua.verdicts.rfc9989.domain?.strongest, 'none');
    assert.equal(withRua.verdicts.rfc9989.fallbackToNone, false);
    assert.equal(withRua.verdicts.rfc7489.domain?.strongest, 'none');
    assert.equal(withRua.verdicts.rfc7489.fallbackToNone, true);
    assert.equal(withoutRua.verdicts.rfc9989.applies, true);
    assert.equal(withoutRua.verdicts.rfc9989.enforcement, 'monitoring');
    assert.equal(withoutRua.verdicts.rfc7489.applies, false);
    const severities = withoutRua.findings
      .filter((item) => item.code === 'dmarc_missing_p')
      .map((item) => [item.dialect, item.severity]);
    assert.deepEqual(severities, [
      ['rfc9989', 'warning'],
      ['rfc7489', 'error'],
    ]);
  });

  test('applies pct only for RFC 7489 receivers', () => {
    const partial = evaluate('v=DMARC1; p=reject; pct=50; rua=mailto:d@example.com');
    const zero = evaluate('v=DMARC1; p=quarantine; pct=0; rua=mailto:d@example.com');

    assert.deepEqual(partial.verdicts.rfc7489.domain, {
      requested: 'reject',
      weakest: 'quarantine',
      strongest: 'reject',
    });
    assert.equal(partial.verdicts.rfc7489.enforcement, 'partial');
    assert.equal(partial.verdicts.rfc7489.percentage, 50);
    assert.deepEqual(partial.verdicts.rfc9989.domain, {
      requested: 'reject',
      weakest: 'reject',
      strongest: 'reject',
    });
    assert.equal(partial.verdicts.rfc9989.percentage, null);
    assert.equal(zero.verdicts.rfc7489.enforcement, 'monitoring');
    assert.equal(zero.verdicts.rfc9989.enforcement, 'enforcing');
    assert.ok(codes(zero).includes('dmarc_pct_removed'));
  });

  test('applies t=y only for RFC 9989 receivers', () => {
    const evaluation = evaluate('v=DMARC1; p=reject; t=y; rua=mailto:d@example.com');

    assert.equal(evaluation.verdicts.rfc9989.testing, true);
    assert.deepEqual(evaluation.verdicts.rfc9989.domain, {
      requested: 'reject',
      weakest: 'quarantine',
      strongest: 'quarantine',
    });
    assert.equal(evaluation.verdicts.rfc7489.testing, false);
    assert.equal(evaluation.verdicts.rfc7489.domain?.strongest, 'reject');
  });

  test('uses np, then sp, then p for non-existent subdomains', () => {
    const withNp = evaluate('v=DMARC1; p=none; sp=quarantine; np=reject; rua=mailto:d@example.com');
    const withoutNp = evaluate('v=DMARC1; p=none; sp=quarantine; rua=mailto:d@example.com');

    assert.equal(withNp.verdicts.rfc9989.nonexistentSubdomains?.strongest, 'reject');
    assert.equal(withNp.verdicts.rfc7489.nonexistentSubdomains?.strongest, 'quarantine');
    assert.equal(withoutNp.verdicts.rfc9989.nonexistentSubdomains?.strongest, 'quarantine');
  });

  test('treats an invalid np as broken only for RFC 9989', () => {
    const evaluation = evaluate('v=DMARC1; p=reject; np=blocked');

    assert.equal(evaluation.verdicts.rfc9989.applies, false);
    assert.equal(evaluation.verdicts.rfc7489.applies, true);
    assert.equal(evaluation.verdicts.rfc7489.domain?.strongest, 'reject');
  });

  test('counts a record as reporting only with a valid rua', () => {
    assert.equal(
      evaluate('v=DMARC1; p=none; rua=mailto:d@example.com').verdicts.rfc9989.aggregateReports,
      true,
    );
    assert.equal(
      evaluate('v=DMARC1; p=none; rua=d@example.com').verdicts.rfc9989.aggregateReports,
      false,
    );
    assert.equal(evaluate('v=DMARC1; p=none').verdicts.rfc9989.aggregateReports, false);
  });
});

describe('DMARC tags', () => {
  test('parses report URIs with size suffixes', () => {
    const uri = parseDmarcUri('mailto:Reports@Example.COM!10m');
    const bad = parseDmarcUri('reports@example.com');
    const https = parseDmarcUri('https://reports.example.net/dmarc');

    assert.deepEqual(uri, {
      uri: 'mailto:Reports@Example.COM',
      scheme: 'mailto',
      valid: true,
      domain: 'example.com',
      sizeLimit: '10m',
    });
    assert.equal(bad.valid, false);
    assert.match(bad.problem ?? '', /mailto:/);
    assert.equal(https.valid, true);
    assert.equal(https.scheme, 'https');
  });

  test('reports obsolete and unsupported URI forms', () => {
    const evaluation = evaluate(
      'v=DMARC1; p=none; rua=mailto:a@example.com!10m, https://r.example.net/x; ruf=mailto:bad@',
    );

    assert.ok(codes(evaluation).includes('dmarc_size_suffix'));
    assert.ok(codes(evaluation).includes('dmarc_uri_scheme'));
    assert.ok(codes(evaluation).includes('dmarc_invalid_ruf_uri'));
    assert.ok(codes(evaluation).includes('dmarc_no_valid_ruf'));
  });

  test('validates fo, adkim, aspf, psd and t values', () => {
    const good = parseDmarcRecord(
      'v=DMARC1; p=none; fo=d:s:1; adkim=s; aspf=r; psd=n; t=n; ruf=mailto:f@example.com',
    );
    const bad = parseDmarcRecord(
      'v=DMARC1; p=none; fo=0:1; adkim=x; aspf=strict; psd=maybe; t=yes',
    );

    assert.deepEqual(good.record.failureOptions, { state: 'valid', value: ['d', 's', '1'] });
    assert.deepEqual(good.record.dkimAlignment, { state: 'valid', value: 's' });
    assert.deepEqual(good.record.publicSuffix, { state: 'valid', value: 'n' });
    assert.deepEqual(
      bad.findings
        .map((item) => item.code)
        .filter((code) => code.startsWith('dmarc_invalid_'))
        .sort(),
      [
        'dmarc_invalid_adkim',
        'dmarc_invalid_aspf',
        'dmarc_invalid_fo',
        'dmarc_invalid_psd',
        'dmarc_invalid_t',
      ],
    );
  });

  test('makes a repeated tag invalid', () => {
    const evaluation = evaluate('v=DMARC1; p=reject; p=none; rua=mailto:d@example.com');

    assert.ok(codes(evaluation).includes('dmarc_duplicate_tag'));
    assert.equal(evaluation.record?.policy.state, 'invalid');
    assert.equal(evaluation.verdicts.rfc9989.fallbackToNone, true);
  });

  test('warns about unknown and removed tags', () => {
    const evaluation = evaluate(
      'v=DMARC1; p=reject; rf=afrf; ri=3600; foo=bar; rua=mailto:d@example.com',
    );

    assert.deepEqual(evaluation.record?.unknownTags, ['foo']);
    for (const code of ['dmarc_unknown_tag', 'dmarc_rf_removed', 'dmarc_ri_removed']) {
      assert.ok(codes(evaluation).includes(code), code);
    }
    assert.equal(evaluation.verdicts.rfc9989.enforcement, 'enforcing');
  });

  test('warns when p is not the second tag for RFC 7489', () => {
    const evaluation = evaluate('v=DMARC1; rua=mailto:d@example.com; p=reject');

    const item = evaluation.findings.find((entry) => entry.code === 'dmarc_p_not_second');
    assert.equal(item?.dialect, 'rfc7489');
    assert.equal(evaluation.verdicts.rfc7489.domain?.strongest, 'reject');
  });

  test('warns about monitoring-only policies', () => {
    const evaluation = evaluate('v=DMARC1; p=none; rua=mailto:d@example.com');
    const subdomains = evaluate('v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com');

    assert.ok(codes(evaluation).includes('dmarc_policy_none'));
    assert.ok(codes(subdomains).includes('dmarc_subdomain_policy_none'));
    assert.ok(
      !codes(evaluate('v=DMARC1; p=reject; rua=mailto:d@example.com')).includes(
        'dmarc_policy_none',
      ),
    );
  });
});
