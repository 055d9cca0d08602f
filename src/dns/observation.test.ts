import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';

import type { Observation } from './observation.ts';
import {
  buildDkimObservationFromTxt,
  buildDmarcObservation,
  compareObservations,
  observeDkim,
  observeDmarc,
  observeSpf,
} from './observation.ts';
import type { LookupOutcome } from './resolver.ts';
import { longTxt, txt, useTestDns } from './test-dns.ts';

const startDns = useTestDns();
const observedAt = '2026-12-04T12:00:00.000Z';

function ok(
  records: string[][],
  extra: { ttl?: number; cnameChain?: string[] } = {},
): LookupOutcome<string[]> {
  return {
    status: 'ok',
    name: '_dmarc.example.com',
    records,
    cnameChain: extra.cnameChain ?? [],
    ...(extra.ttl === undefined ? {} : { ttl: extra.ttl }),
  };
}

function failed(status: 'servfail' | 'timeout' | 'nxdomain' | 'nodata'): LookupOutcome<string[]> {
  const code = {
    servfail: 'ESERVFAIL',
    timeout: 'ETIMEOUT',
    nxdomain: 'ENOTFOUND',
    nodata: 'ENODATA',
  }[status];
  return {
    status,
    name: '_dmarc.example.com',
    cnameChain: [],
    code,
    message: `TXT lookup for _dmarc.example.com ${status}.`,
  };
}

function dmarc(outcome: LookupOutcome<string[]>): Observation {
  return buildDmarcObservation('_dmarc.example.com', outcome, observedAt);
}

function dmarcText(...records: string[]): Observation {
  return dmarc(ok(records.map((record) => [record])));
}

/** Split `text` into strings at the given cut positions. */
function splitAt(text: string, cuts: number[]): string[] {
  const strings: string[] = [];
  let start = 0;
  for (const cut of [...cuts, text.length]) {
    strings.push(text.slice(start, cut));
    start = cut;
  }
  return strings.filter((part) => part !== '');
}

describe('observation comparison: form only', () => {
  test('ignores string splits and record order', () => {
    const record =
      'v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.com,mailto:agg@reports.example.net; fo=1';
    const other = 'site-verification=abc123';
    const baseline = dmarcText(record, other);
    let alerts = 0;
    for (let round = 0; round < 50; round += 1) {
      const cuts = [1 + ((round * 7) % 40), 41 + ((round * 13) % 50)];
      const records = [splitAt(record, cuts), [other]];
      if (round % 2 === 1) records.reverse();

      const comparison = compareObservations(baseline, dmarc(ok(records)));

      assert.ok(
        comparison.kind === 'cosmetic' || comparison.kind === 'none',
        `round ${round}: ${comparison.kind}`,
      );
      if (comparison.changed) alerts += 1;
    }
    assert.equal(alerts, 0);
  });

  test('ignores TTL, case and whitespace', () => {
    const before = dmarc(ok([['v=DMARC1; p=reject; rua=mailto:d@example.com']], { ttl: 300 }));
    const ttl = dmarc(ok([['v=DMARC1; p=reject; rua=mailto:d@example.com']], { ttl: 3600 }));
    const cased = dmarcText('V=DMARC1; P=Reject; RUA=mailto:d@EXAMPLE.com');
    const spaced = dmarcText('v=DMARC1;p=reject;rua=mailto:d@example.com;');

    const byTtl = compareObservations(before, ttl);
    assert.equal(byTtl.changed, false);
    assert.equal(byTtl.kind, 'cosmetic');
    assert.deepEqual(
      byTtl.details.map((item) => item.field),
      ['ttl'],
    );
    for (const after of [cased, spaced]) {
      const comparison = compareObservations(before, after);
      assert.equal(comparison.changed, false, after.normalised[0]);
      assert.equal(comparison.kind, 'cosmetic', after.normalised[0]);
    }
  });

  test('ignores unknown tags and unrelated records', () => {
    const before = dmarcText('v=DMARC1; p=reject');

    const comparison = compareObservations(
      before,
      dmarcText('v=DMARC1; p=reject; foo=bar', 'verification=1'),
    );

    assert.equal(comparison.changed, false);
    assert.equal(comparison.kind, 'cosmetic');
  });

  test('reports an identical observation as unchanged', () => {
    const comparison = compareObservations(
      dmarcText('v=DMARC1; p=reject'),
      dmarcText('v=DMARC1; p=reject'),
    );

    assert.equal(comparison.kind, 'none');
    assert.equal(comparison.changed, false);
    assert.deepEqual(comparison.details, []);
  });

  test('ignores a re-split SPF record but not a lost space', async () => {
    const record = 'v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 include:_spf.vendor.example -all';
    const { server, resolver } = await startDns({
      'example.com': txt(record),
      '_spf.vendor.example': txt('v=spf1 ip4:203.0.113.0/24 -all'),
    });
    const baseline = await observeSpf('example.com', resolver);
    let alerts = 0;
    for (let round = 0; round < 50; round += 1) {
      const space = record.indexOf(' ', 8 + round);
      server.set('example.com', [
        { type: 'TXT', data: 'unrelated=1' },
        { type: 'TXT', data: splitAt(record, [space + 1]) },
      ]);
      if (compareObservations(baseline, await observeSpf('example.com', resolver)).changed) {
        alerts += 1;
      }
    }
    const space = record.indexOf(' include');
    server.set('example.com', [
      { type: 'TXT', data: [record.slice(0, space), record.slice(space + 1)] },
    ]);
    const lost = compareObservations(baseline, await observeSpf('example.com', resolver));

    assert.equal(alerts, 0);
    assert.equal(lost.changed, true);
    assert.equal(lost.kind, 'became_invalid');
    assert.equal(lost.severity, 'critical');
  });

  test('ignores changes inside a third-party include', async () => {
    const { server, resolver } = await startDns({
      'example.com': txt('v=spf1 include:_spf.vendor.example -all'),
      '_spf.vendor.example': txt('v=spf1 ip4:203.0.113.0/24 -all'),
    });
    const before = await observeSpf('example.com', resolver);
    server.set('_spf.vendor.example', txt('v=spf1 ip4:203.0.113.0/24 ip4:198.51.100.0/24 -all'));

    const comparison = compareObservations(before, await observeSpf('example.com', resolver));

    assert.equal(comparison.kind, 'none');
    assert.equal(comparison.changed, false);
  });

  test('ignores a TTL change at the server', async () => {
    const { server, resolver } = await startDns({
      '_dmarc.example.com': [{ type: 'TXT', data: 'v=DMARC1; p=reject', ttl: 300 }],
    });
    const before = await observeDmarc('example.com', resolver);
    server.set('_dmarc.example.com', [{ type: 'TXT', data: 'v=DMARC1; p=reject', ttl: 86400 }]);

    const comparison = compareObservations(before, await observeDmarc('example.com', resolver));

    assert.equal(comparison.changed, false);
  });
});

describe('observation comparison: lookup problems', () => {
  test('never turns SERVFAIL or a timeout into a change', () => {
    const before = dmarcText('v=DMARC1; p=reject');
    for (const status of ['servfail', 'timeout'] as const) {
      const after = dmarc(failed(status));

      const comparison = compareObservations(before, after);

      assert.equal(after.lookupProblem, true, status);
      assert.equal(after.meaning, null, status);
      assert.equal(comparison.changed, false, status);
      assert.equal(comparison.kind, 'lookup_problem', status);
    }
    const recovered = compareObservations(dmarc(failed('timeout')), before);
    assert.equal(recovered.kind, 'lookup_problem');
    assert.equal(recovered.changed, false);
  });

  test('raises no false alert over 1000 flaky rounds', () => {
    const record = [['v=DMARC1; p=reject; ', 'rua=mailto:d@example.com']];
    let current = dmarc(ok(record));
    let falseAlerts = 0;
    let problems = 0;
    for (let round = 0; round < 1000; round += 1) {
      // Every 20 rounds: two timeouts (10 %) and one SERVFAIL (5 %), at rotating positions.
      const slot = (round * 7) % 20;
      let outcome = ok(record);
      if (slot < 2) outcome = failed('timeout');
      if (slot === 2) outcome = failed('servfail');
      const observation = dmarc(outcome);

      const comparison = compareObservations(current, observation);

      if (comparison.kind === 'lookup_problem') problems += 1;
      if (comparison.changed) falseAlerts += 1;
      if (!observation.lookupProblem) current = observation;
    }
    assert.equal(problems, 150);
    assert.equal(falseAlerts, 0);
  });

  test('keeps SERVFAIL and timeouts from the server apart from removal', async () => {
    const { server, resolver } = await startDns({
      '_dmarc.example.com': txt('v=DMARC1; p=reject'),
    });
    const current = await observeDmarc('example.com', resolver);
    const kinds: string[] = [];
    for (const failure of ['servfail', 'timeout', 'refused', undefined] as const) {
      server.intercept(failure ? () => failure : undefined);
      kinds.push(compareObservations(current, await observeDmarc('example.com', resolver)).kind);
    }

    assert.deepEqual(kinds, ['lookup_problem', 'lookup_problem', 'lookup_problem', 'none']);
  });

  test('treats an SPF include that times out as a lookup problem', async () => {
    const { server, resolver } = await startDns({
      'example.com': txt('v=spf1 include:_spf.vendor.example -all'),
      '_spf.vendor.example': txt('v=spf1 ip4:203.0.113.0/24 -all'),
    });
    const before = await observeSpf('example.com', resolver);
    server.set('_spf.vendor.example', { failure: 'timeout' });

    const after = await observeSpf('example.com', resolver);
    const comparison = compareObservations(before, after);

    assert.equal(after.lookupProblem, true);
    assert.equal(comparison.kind, 'lookup_problem');
    assert.equal(comparison.changed, false);
  });

  test('rejects observations of different records', () => {
    const spf = { ...dmarcText('v=DMARC1; p=reject'), kind: 'spf' as const, name: 'example.com' };

    assert.throws(
      () => compareObservations(dmarcText('v=DMARC1; p=reject'), spf),
      /two observations of one record/,
    );
  });
});

describe('observation comparison: DMARC changes', () => {
  test('reports a weaker policy', () => {
    const comparison = compareObservations(
      dmarcText('v=DMARC1; p=reject; rua=mailto:d@example.com'),
      dmarcText('v=DMARC1; p=none; rua=mailto:d@example.com'),
    );

    assert.equal(comparison.changed, true);
    assert.equal(comparison.kind, 'weakened');
    assert.equal(comparison.severity, 'critical');
    const fields = comparison.details.map((item) => item.field);
    assert.deepEqual(fields, ['p', 'domain', 'subdomains', 'nonexistent']);
    assert.equal(
      comparison.details[1]?.message,
      'Receivers now apply none instead of reject to failing mail from the domain.',
    );
  });

  test('reports a stricter policy as a change of meaning', () => {
    const comparison = compareObservations(
      dmarcText('v=DMARC1; p=none'),
      dmarcText('v=DMARC1; p=quarantine'),
    );

    assert.equal(comparison.kind, 'meaning');
    assert.equal(comparison.changed, true);
    assert.equal(comparison.severity, 'info');
  });

  test('reports pct and t per dialect', () => {
    const before = dmarcText('v=DMARC1; p=reject; rua=mailto:d@example.com');

    const pct = compareObservations(
      before,
      dmarcText('v=DMARC1; p=reject; pct=50; rua=mailto:d@example.com'),
    );
    const testing = compareObservations(
      before,
      dmarcText('v=DMARC1; p=reject; t=y; rua=mailto:d@example.com'),
    );

    assert.equal(pct.kind, 'weakened');
    assert.ok(pct.details.some((item) => item.field === 'rfc7489.domain'));
    assert.ok(!pct.details.some((item) => item.field.startsWith('rfc9989.')));
    assert.equal(testing.kind, 'weakened');
    assert.ok(
      testing.details.some(
        (item) => item.field === 'rfc9989.domain' && item.after === 'quarantine',
      ),
    );
  });

  test('reports a typo that breaks the policy', () => {
    const before = dmarcText('v=DMARC1; p=reject; sp=reject; rua=mailto:d@example.com');

    const withRua = compareObservations(
      before,
      dmarcText('v=DMARC1; p=reject; sp=rejct; rua=mailto:d@example.com'),
    );
    const withoutRua = compareObservations(
      dmarcText('v=DMARC1; p=reject'),
      dmarcText('v=DMARC1; p=rejct'),
    );

    assert.equal(withRua.kind, 'became_invalid');
    assert.ok(
      withRua.details.some((item) => item.field === 'fallback' && item.severity === 'critical'),
    );
    assert.equal(withoutRua.kind, 'became_invalid');
    assert.ok(withoutRua.details.some((item) => item.field === 'applies'));
  });

  test('reports a second DMARC record', () => {
    const comparison = compareObservations(
      dmarcText('v=DMARC1; p=reject'),
      dmarcText('v=DMARC1; p=reject', 'v=DMARC1; p=none'),
    );

    assert.equal(comparison.kind, 'became_invalid');
    assert.equal(comparison.details[0]?.field, 'records');
  });

  test('reports removal and appearance', async () => {
    const { server, resolver } = await startDns({
      '_dmarc.example.com': txt('v=DMARC1; p=reject'),
    });
    const present = await observeDmarc('example.com', resolver);
    server.remove('_dmarc.example.com');
    const gone = await observeDmarc('example.com', resolver);
    server.set('_dmarc.example.com', txt('not dmarc'));
    const unrelated = await observeDmarc('example.com', resolver);

    const removed = compareObservations(present, gone);
    const appeared = compareObservations(gone, present);

    assert.equal(removed.kind, 'removed');
    assert.equal(removed.changed, true);
    assert.equal(removed.severity, 'critical');
    assert.match(removed.summary, /NXDOMAIN/);
    assert.equal(compareObservations(present, unrelated).kind, 'removed');
    assert.equal(appeared.kind, 'appeared');
    assert.equal(appeared.changed, true);
    assert.equal(compareObservations(gone, unrelated).kind, 'cosmetic');
  });

  test('reports a lost report address', () => {
    const comparison = compareObservations(
      dmarcText('v=DMARC1; p=reject; rua=mailto:d@example.com'),
      dmarcText('v=DMARC1; p=reject'),
    );

    assert.equal(comparison.kind, 'weakened');
    assert.ok(
      comparison.details.some((item) => item.field === 'reports' && item.severity === 'warning'),
    );
  });

  test('reports a new CNAME target', () => {
    const before = dmarc(
      ok([['v=DMARC1; p=reject']], { cnameChain: ['example-com.dmarc.first.example'] }),
    );
    const deeper = dmarc(
      ok([['v=DMARC1; p=reject']], {
        cnameChain: ['example-com.dmarc.first.example', 'pool.first.example'],
      }),
    );
    const moved = dmarc(
      ok([['v=DMARC1; p=reject']], { cnameChain: ['example-com.dmarc.second.example'] }),
    );

    assert.equal(compareObservations(before, deeper).kind, 'cosmetic');
    const comparison = compareObservations(before, moved);
    assert.equal(comparison.kind, 'meaning');
    assert.equal(comparison.details[0]?.field, 'cname');
    assert.equal(comparison.details[0]?.severity, 'warning');
  });
});

describe('observation comparison: SPF changes', () => {
  const vendor = {
    '_spf.vendor.example': txt('v=spf1 ip4:203.0.113.0/24 -all'),
    '_spf.open.example': txt('v=spf1 +all'),
  };

  async function spfChange(before: string, after: string) {
    const { server, resolver } = await startDns({ 'example.com': longTxt(before), ...vendor });
    const first = await observeSpf('example.com', resolver);
    server.set('example.com', longTxt(after));
    return compareObservations(first, await observeSpf('example.com', resolver));
  }

  test('reports a looser ending', async () => {
    const soft = await spfChange(
      'v=spf1 include:_spf.vendor.example -all',
      'v=spf1 include:_spf.vendor.example ~all',
    );
    const open = await spfChange(
      'v=spf1 include:_spf.vendor.example -all',
      'v=spf1 include:_spf.vendor.example +all',
    );

    assert.equal(soft.kind, 'weakened');
    assert.ok(
      soft.details.some((item) => item.field === 'spf.ending' && item.severity === 'warning'),
    );
    assert.equal(open.kind, 'weakened');
    assert.equal(open.severity, 'critical');
    assert.ok(open.details.some((item) => item.field === 'spf.ipv6.open'));
  });

  test('reports an include that opens the record', async () => {
    const comparison = await spfChange(
      'v=spf1 include:_spf.vendor.example -all',
      'v=spf1 include:_spf.open.example -all',
    );

    assert.equal(comparison.kind, 'weakened');
    assert.ok(
      comparison.details.some(
        (item) => item.field === 'spf.ipv4.open' && item.severity === 'critical',
      ),
    );
  });

  test('reports an added include as a change of meaning', async () => {
    const comparison = await spfChange(
      'v=spf1 ip4:192.0.2.1 -all',
      'v=spf1 ip4:192.0.2.1 include:_spf.vendor.example -all',
    );

    assert.equal(comparison.kind, 'meaning');
    assert.equal(comparison.severity, 'info');
    assert.equal(
      comparison.details[0]?.message,
      'The term +include:_spf.vendor.example was added.',
    );
  });

  test('reports reordered terms', async () => {
    const comparison = await spfChange(
      'v=spf1 -ip4:192.0.2.1 ip4:192.0.2.0/24 -all',
      'v=spf1 ip4:192.0.2.0/24 -ip4:192.0.2.1 -all',
    );

    assert.equal(comparison.kind, 'meaning');
    assert.equal(comparison.details[0]?.field, 'spf.order');
  });

  test('reports crossing the lookup limit', async () => {
    const zone = Object.fromEntries(
      Array.from({ length: 11 }, (_, index) => [
        `_s${index}.example.net`,
        txt(`v=spf1 ip4:198.51.100.${index} -all`),
      ]),
    );
    const terms = (count: number) =>
      Array.from({ length: count }, (_, index) => `include:_s${index}.example.net`).join(' ');
    const { server, resolver } = await startDns({
      ...zone,
      'example.com': longTxt(`v=spf1 ${terms(8)} -all`),
    });
    const eight = await observeSpf('example.com', resolver);
    server.set('example.com', longTxt(`v=spf1 ${terms(9)} -all`));
    const nine = await observeSpf('example.com', resolver);
    server.set('example.com', longTxt(`v=spf1 ${terms(11)} -all`));
    const eleven = await observeSpf('example.com', resolver);

    const near = compareObservations(eight, nine);
    const over = compareObservations(nine, eleven);

    assert.equal(near.kind, 'weakened');
    assert.ok(
      near.details.some((item) => item.field === 'spf.lookups' && item.severity === 'warning'),
    );
    assert.equal(over.kind, 'became_invalid');
    assert.equal(over.severity, 'critical');
  });

  test('reports an include target that disappears', async () => {
    const { server, resolver } = await startDns({
      'example.com': txt('v=spf1 include:_spf.vendor.example -all'),
      ...vendor,
    });
    const before = await observeSpf('example.com', resolver);
    server.remove('_spf.vendor.example');

    const comparison = compareObservations(before, await observeSpf('example.com', resolver));

    assert.equal(comparison.kind, 'became_invalid');
    assert.ok(
      comparison.details.some((item) => item.field === 'spf.include' && item.after === 'broken'),
    );
  });

  test('reports a removed SPF record', async () => {
    const comparison = await spfChange('v=spf1 -all', 'v=spf10 -all');

    assert.equal(comparison.kind, 'removed');
    assert.match(comparison.summary, /SPF result none/);
  });
});

describe('observation comparison: DKIM changes', () => {
  const key = (bits: number) =>
    generateKeyPairSync('rsa', { modulusLength: bits })
      .publicKey.export({ type: 'spki', format: 'der' })
      .toString('base64');
  const first = key(2048);
  const second = key(2048);
  const short = key(1024);

  function dkim(text: string, cnameChain: string[] = []): Observation {
    const strings = text.match(/.{1,250}/g) ?? [];
    return buildDkimObservationFromTxt(
      's1',
      'example.com',
      { status: 'ok', name: 's1._domainkey.example.com', records: [strings], cnameChain },
      observedAt,
    );
  }

  test('reports revocation as invalid', () => {
    const comparison = compareObservations(dkim(`v=DKIM1; p=${first}`), dkim('v=DKIM1; p='));

    assert.equal(comparison.kind, 'became_invalid');
    assert.equal(comparison.severity, 'critical');
    assert.equal(
      comparison.details[0]?.message,
      'The key changed from valid to revoked: it was revoked, so signatures with this selector fail.',
    );
  });

  test('reports rotation as information', () => {
    const comparison = compareObservations(
      dkim(`v=DKIM1; p=${first}`),
      dkim(`v=DKIM1; p=${second}`),
    );

    assert.equal(comparison.kind, 'meaning');
    assert.equal(comparison.changed, true);
    assert.equal(comparison.severity, 'info');
    assert.deepEqual(
      comparison.details.map((item) => item.field),
      ['dkim.fingerprint'],
    );
  });

  test('reports a shorter key and test mode as weaker', () => {
    assert.equal(
      compareObservations(dkim(`v=DKIM1; p=${first}`), dkim(`v=DKIM1; p=${short}`)).kind,
      'weakened',
    );
    assert.equal(
      compareObservations(dkim(`v=DKIM1; p=${first}`), dkim(`v=DKIM1; t=y; p=${first}`)).kind,
      'weakened',
    );
  });

  test('ignores whitespace inside the key', () => {
    const spaced = first.replace(/(.{64})/g, '$1 ');

    assert.equal(
      compareObservations(dkim(`v=DKIM1; k=rsa; p=${first}`), dkim(`v=DKIM1; k=rsa; p=${spaced}`))
        .kind,
      'cosmetic',
    );
  });

  test('reports a dangling CNAME as removed', async () => {
    const { server, resolver } = await startDns({
      's1._domainkey.example.com': [{ type: 'CNAME', target: 's1.dkim.provider.example' }],
      's1.dkim.provider.example': longTxt(`v=DKIM1; p=${first}`),
    });
    const before = await observeDkim('s1', 'example.com', resolver);
    server.remove('s1.dkim.provider.example');

    const after = await observeDkim('s1', 'example.com', resolver);
    const comparison = compareObservations(before, after);

    assert.deepEqual(after.lookup.cnameChain, ['s1.dkim.provider.example']);
    assert.equal(comparison.kind, 'removed');
    assert.match(comparison.summary, /Signatures with this selector now fail/);
  });
});
