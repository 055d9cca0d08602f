import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';

import {
  parseAggregateReport,
  parseAggregateStream,
  type AggregateRecord,
  type ParsedAggregateReport,
} from './aggregate-parser.ts';
import { extractDocuments, streamDocuments } from './containers.ts';
import { ReportInputError, type ReportInputErrorCode } from './report-input-error.ts';

const FIXTURES = new URL('../../test/fixtures/reports/', import.meta.url);

function fixture(path: string): Buffer {
  return readFileSync(new URL(path, FIXTURES));
}

async function parseFixture(path: string): Promise<ParsedAggregateReport[]> {
  const documents = await extractDocuments(fixture(path));
  return documents.map((document) => parseAggregateReport(document.bytes));
}

function sumCounts(report: ParsedAggregateReport): number {
  return report.records.reduce((total, record) => total + record.count, 0);
}

const DEFAULT_METADATA = `<org_name>Receiver Example</org_name>
    <email>dmarc@receiver.example</email>
    <report_id>r-1</report_id>
    <date_range><begin>1727740800</begin><end>1727827199</end></date_range>`;
const DEFAULT_POLICY = `<domain>Example.COM</domain><adkim>r</adkim><aspf>r</aspf>
    <p>quarantine</p><sp>none</sp><pct>100</pct>`;

function record(row: string, rest = ''): string {
  const identifiers = rest.includes('<identifiers>')
    ? ''
    : '<identifiers><header_from>example.com</header_from></identifiers>';
  return `<record><row>${row}</row>${identifiers}${rest}</record>`;
}

const DEFAULT_ROW = `<source_ip>192.0.2.1</source_ip><count>2</count>
  <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>`;
const DEFAULT_RECORD = record(
  DEFAULT_ROW,
  `<auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>pass</result></dkim>
   <spf><domain>example.com</domain><result>softfail</result></spf></auth_results>`,
);

/** Builds a report document; each part can be replaced to make one case. */
function buildReport(
  parts: {
    prolog?: string;
    open?: string;
    metadata?: string;
    policy?: string;
    records?: string;
  } = {},
): string {
  return `${parts.prolog ?? '<?xml version="1.0" encoding="UTF-8"?>'}
${parts.open ?? '<feedback>'}
  <report_metadata>${parts.metadata ?? DEFAULT_METADATA}</report_metadata>
  <policy_published>${parts.policy ?? DEFAULT_POLICY}</policy_published>
  ${parts.records ?? DEFAULT_RECORD}
</feedback>`;
}

function parse(xml: string | Buffer): ParsedAggregateReport {
  return parseAggregateReport(typeof xml === 'string' ? Buffer.from(xml) : xml);
}

function assertRejects(xml: string | Buffer, code: ReportInputErrorCode, pattern: RegExp): void {
  assert.throws(
    () => parse(xml),
    (error: unknown) => {
      assert.ok(
        error instanceof ReportInputError,
        `expected a ReportInputError, got ${String(error)}`,
      );
      assert.equal(error.code, code, error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

function assertWarning(report: ParsedAggregateReport, pattern: RegExp): void {
  assert.ok(
    report.warnings.some((warning) => pattern.test(warning)),
    `no warning matches ${pattern}; warnings: ${JSON.stringify(report.warnings)}`,
  );
}

interface ManifestRow {
  path: string;
  kind: string;
  reporter: string;
  expectedFail: string;
}

function readManifest(): ManifestRow[] {
  const lines = fixture('MANIFEST.tsv').toString('utf8').trimEnd().split('\n').slice(1);
  return lines.map((line) => {
    const columns = line.split('\t');
    return {
      path: columns[0] ?? '',
      kind: columns[4] ?? '',
      reporter: columns[6] ?? '',
      expectedFail: columns[8] ?? '',
    };
  });
}

/**
 * Aggregate fixtures that are rejected, with the reason. The XML of each is broken in a way no
 * leniency here repairs, or it lacks the policy domain.
 */
const REJECTED_AGGREGATES: Record<string, ReportInputErrorCode> = {
  'dmarc/tests/fixtures/malformed.xml': 'not_well_formed',
  'dmarc_report_reader/malformed.xml': 'not_well_formed',
  'DmarcRua/dev/testing/resources/dmarc/aggregate/known-invalid/220605d5f0cf4784a72d4a037d7a4c40.xml':
    'not_well_formed',
  'DmarcRua/dev/testing/resources/dmarc/aggregate/known-invalid/6a7ddc4fd6be4da1b4248a5653efb966.xml':
    'not_well_formed',
  'DmarcRua/dev/testing/resources/dmarc/aggregate/known-invalid/d55dd991472d45faacbf7a39fa58168e.xml':
    'not_well_formed',
  'modoboa-dmarc/reports/Report_Domain_ngyn.org_Submitter_yahoo.com_Report-ID_1436111091.916236-ignored.eml':
    'invalid_report',
};

/**
 * Fixtures whose source repository expects them to fail, yet which hold a valid report that is
 * read without a warning, with the reason.
 */
const VALID_THOUGH_MARKED_BROKEN: Record<string, string> = {
  // Only the attachment's Content-Type was changed, to application/gzip; the zip is found by its
  // magic bytes, as every container is.
  'modoboa-dmarc/fail-reports/Report_Domain_ngyn.org_Submitter_163.com_Report-ID_aggr_report_ngyn.org_20150705_163-failed.com.eml':
    'mislabelled zip attachment',
};

/** Fixtures that are not well-formed as sent and are read with stray "<" and "&" escaped. */
const REPAIRED_AGGREGATES = new Set(['parsedmarc/aggregate/invalid_xml.xml']);

/** Parses every document of a fixture through the streaming path that ingest uses. */
async function streamFixture(path: string): Promise<ParsedAggregateReport[]> {
  const reports: ParsedAggregateReport[] = [];
  for await (const document of streamDocuments(fixture(path))) {
    const records: AggregateRecord[] = [];
    const summary = await parseAggregateStream(
      document.chunks,
      { header: () => {}, records: (batch) => void records.push(...batch) },
      { batchSize: 7 },
    );
    const { recordCount: _count, messageCount: _messages, ...fields } = summary;
    reports.push({ ...fields, records });
  }
  return reports;
}

/** Fixtures whose org_name is empty, so the reporter is named by the domain of its email. */
const ORG_FROM_EMAIL = 'accurateplastics.com';

describe('parseAggregateReport: every fixture', () => {
  const rows = readManifest();

  it('has a varied set of aggregate fixtures', () => {
    const aggregates = rows.filter((row) => row.kind === 'aggregate');
    const reporters = new Set(aggregates.map((row) => row.reporter));
    assert.ok(aggregates.length >= 60, `only ${aggregates.length} aggregate fixtures`);
    assert.ok(reporters.size >= 40, `only ${reporters.size} reporters`);
  });

  for (const row of rows.filter((entry) => entry.kind === 'aggregate')) {
    const rejection = REJECTED_AGGREGATES[row.path];
    if (rejection) {
      it(`rejects ${row.path}`, async () => {
        await assert.rejects(parseFixture(row.path), (error: unknown) => {
          assert.ok(error instanceof ReportInputError);
          assert.equal(error.code, rejection, error.message);
          return true;
        });
      });
      continue;
    }

    it(`parses ${row.path}`, async () => {
      const reports = await parseFixture(row.path);
      assert.ok(reports.length >= 1);
      if (row.expectedFail.startsWith('yes') && !VALID_THOUGH_MARKED_BROKEN[row.path]) {
        // Its source calls it broken, so it may be read only with a warning that says how.
        const warnings = reports.flatMap((report) => report.warnings);
        assert.ok(warnings.length > 0, 'a file marked broken was read without a warning');
      }
      if (!REPAIRED_AGGREGATES.has(row.path)) {
        assert.deepEqual(await streamFixture(row.path), reports, 'the streaming parse differs');
      }
      for (const report of reports) {
        const expectedOrg = row.reporter.trim() === '' ? ORG_FROM_EMAIL : row.reporter.trim();
        assert.equal(report.reporter.orgName, expectedOrg);
        assert.notEqual(report.reportId, '');
        assert.ok(report.period.begin.getTime() <= report.period.end.getTime());
        assert.ok(report.period.begin.getUTCFullYear() >= 1970);
        assert.match(report.policy.domain, /^[a-z0-9.-]+$/);
        for (const record of report.records) {
          assert.ok(isIP(record.sourceIp) !== 0, `source_ip ${record.sourceIp}`);
          assert.ok(Number.isSafeInteger(record.count), `count ${record.count}`);
          assert.ok(record.count >= 0, `count ${record.count}`);
          assert.equal(record.headerFrom, record.headerFrom.toLowerCase());
          assert.ok(['none', 'quarantine', 'reject'].includes(record.disposition));
        }
      }
    });
  }

  it('rejects every broken fixture with a reason', async () => {
    const broken = rows.filter((row) => row.kind === 'aggregate' && REJECTED_AGGREGATES[row.path]);
    assert.equal(broken.length, Object.keys(REJECTED_AGGREGATES).length);
    for (const row of broken) {
      await assert.rejects(parseFixture(row.path), (error: unknown) => {
        assert.ok(error instanceof ReportInputError);
        assert.ok(error.message.length > 40, `a short reason for ${row.path}: ${error.message}`);
        return true;
      });
    }
  });

  it('reads a zip labelled application/gzip', async () => {
    const path = Object.keys(VALID_THOUGH_MARKED_BROKEN)[0] ?? '';
    const [report] = await parseFixture(path);
    assert.ok(report);
    assert.equal(report.reporter.orgName, '163.com');
    assert.equal(report.reportId, 'aggr_report_ngyn.org_20150705_163.com');
    assert.equal(report.records[0]?.sourceIp, '115.202.65.235');
    assert.deepEqual(report.warnings, []);
  });

  for (const row of rows.filter((entry) => entry.kind !== 'aggregate')) {
    it(`classifies ${row.path} with a reason`, async () => {
      await assert.rejects(parseFixture(row.path), (error: unknown) => {
        assert.ok(
          error instanceof ReportInputError,
          `expected a ReportInputError, got ${String(error)}`,
        );
        assert.ok(error.message.length > 20);
        if (row.kind === 'smtp-tls') {
          assert.match(error.message, /an SMTP TLS report \(RFC 8460\), not a DMARC report/);
        }
        return true;
      });
    });
  }
});

/**
 * Field values of one report per reporter of the anonymised DmarcRua collection, read from the
 * files by hand: reporter, report id, period begin, policy p, records, message total, then the
 * first record's source, disposition, DKIM and SPF alignment and first SPF result.
 */
const RUA_FIELDS: [string, string, string, string, string, number, number, string[]][] = [
  [
    '0879962d35fc4a1cb547a22d4ff88d03',
    'google.com',
    '4954548528973476566',
    '2025-01-23',
    'reject',
    1,
    58,
    ['none', 'pass', 'pass', 'pass'],
  ],
  [
    '007ed325dddd44e3a0f17488f4312e49',
    'Yahoo',
    '1737770612.289931',
    '2025-01-24',
    'none',
    1,
    1,
    ['none', 'pass', 'fail', 'pass'],
  ],
  [
    '04b6210f22a944e0bfad82348e8a00ca',
    'Outlook.com',
    '3db8aed89f16486e8364947622ec777e',
    '2025-01-21',
    'reject',
    1,
    1,
    ['reject', 'fail', 'fail', 'pass'],
  ],
  [
    '074ef12a3cec4c8f941a502a70cee2ca',
    'Enterprise Outlook',
    '578ad0e890a24318b2cde97e15641299',
    '2025-01-22',
    'reject',
    27,
    29,
    ['none', 'pass', 'pass', 'pass'],
  ],
  [
    'c49341b6babb420f9aaf4da224e5a3a9',
    'Fastmail Pty Ltd',
    '1448568271',
    '2025-01-28',
    'none',
    1,
    1,
    ['none', 'pass', 'fail', 'pass'],
  ],
  [
    '0be27119166748dc97acbe79bcd2f2e0',
    'Mimecast',
    '9a5fedf5e4f296479710883708ca5fcdc7631fd65e6a73b1621367accacd43d7',
    '2025-01-31',
    'none',
    2,
    3,
    ['none', 'fail', 'fail', 'fail'],
  ],
  [
    '8a1d9f8286c84e9f9b5a8d9127bf5b1d',
    'comcast.net',
    'v2-1739242459-alexanderroberts.com',
    '2025-02-10',
    'none',
    4,
    6,
    ['none', 'fail', 'pass', 'pass'],
  ],
  [
    'c0ace2c407a24333a05654c0c4c621f3',
    'linkedin.com',
    'linkedin.com!specialzworkstoday.com!1737936000!1738022400!coffee',
    '2025-01-27',
    'none',
    3,
    3,
    ['none', 'pass', 'fail', 'pass'],
  ],
  [
    'e0c077f0db9943e6b563e3ba169300f8',
    'oneinsane dot org',
    'specialzworkstoday.com.1738134000.1738220400',
    '2025-01-29',
    'none',
    1,
    1,
    ['none', 'pass', 'fail', 'none'],
  ],
];

/** DmarcRua reports whose quirks give a warning, with the warnings expected. */
const RUA_WARNINGS: [string, string[]][] = [
  [
    '2774ff887fdd428d8aec2392ee8b7381',
    [
      'The report email is wrapped in angle brackets, which were removed.',
      'The date_range begin equals its end; it was kept as sent.',
    ],
  ],
  [
    '533ef7b1a478412681ac0d039e150c5b',
    ['Record 1: a policy_evaluated reason has no type; it was left out.'],
  ],
  [
    'ee160c7255c94ce6a1ae8f42d917697b',
    [
      'The date_range covers 24.0 hours, more than the 24 hours a report should cover; it was kept as sent.',
    ],
  ],
];

const RUA_FOLDER = 'DmarcRua/dev/testing/resources/dmarc/aggregate/';

describe('parseAggregateReport: DmarcRua field values', () => {
  for (const [file, org, reportId, day, p, records, messages, first] of RUA_FIELDS) {
    it(`reads ${org} report ${file}`, async () => {
      const [report] = await parseFixture(`${RUA_FOLDER}${file}.xml`);
      assert.ok(report);
      assert.equal(report.reporter.orgName, org);
      assert.equal(report.reportId, reportId);
      assert.equal(report.period.begin.toISOString().slice(0, 10), day);
      // The collection replaces each domain with the hash that names the file.
      assert.equal(report.policy.domain, `${file}.com`);
      assert.equal(report.policy.p, p);
      assert.equal(report.records.length, records);
      assert.equal(sumCounts(report), messages);
      const record = report.records[0];
      assert.ok(record);
      assert.equal(record.sourceIp, '127.0.0.1');
      assert.deepEqual(
        [record.disposition, record.dkim, record.spf, record.spfResults[0]?.result],
        first,
      );
      assert.deepEqual(report.warnings, []);
    });
  }

  for (const [file, warnings] of RUA_WARNINGS) {
    it(`warns of the quirks of ${file}`, async () => {
      const [report] = await parseFixture(`${RUA_FOLDER}${file}.xml`);
      assert.deepEqual(report?.warnings, warnings);
    });
  }
});

describe('parseAggregateReport: stray markup in values', () => {
  it('reads the Veeam report with unescaped < in values', async () => {
    const [report] = await parseFixture('parsedmarc/aggregate/invalid_xml.xml');
    assert.ok(report);
    assert.equal(report.reporter.orgName, 'veeam.com');
    assert.equal(report.reporter.email, 'bad-xml@bad-xml.net');
    assert.equal(report.records[0]?.headerFrom, 'bad<xml.net');
    assertWarning(report, /^The XML is not well-formed as sent \(.*\); it was read again with 2 /);
  });

  it('escapes a bare ampersand in org_name', () => {
    const report = parse(
      buildReport({ metadata: DEFAULT_METADATA.replace('Receiver Example', 'AT&T Mail') }),
    );
    assert.equal(report.reporter.orgName, 'AT&T Mail');
    assertWarning(report, /1 "<" or "&" that begin no markup/);
  });

  it('escapes a bare < before a number', () => {
    const report = parse(
      buildReport({ metadata: DEFAULT_METADATA.replace('r-1', 'id<3 &amp; more') }),
    );
    assert.equal(report.reportId, 'id<3 & more');
  });

  it('keeps a mismatched tag rejected', () => {
    assertRejects(
      buildReport({ metadata: DEFAULT_METADATA.replace('</org_name>', '</org>') + '<x&y>' }),
      'not_well_formed',
      /not well-formed at line 3, column 51: unexpected close tag/,
    );
  });

  it('keeps a DOCTYPE rejected after a stray ampersand', () => {
    assertRejects(
      buildReport({ prolog: '<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY a "&">]>' }),
      'doctype_forbidden',
      /DOCTYPE/,
    );
  });
});

describe('parseAggregateReport: exact values', () => {
  it('reads the Fastmail report with DMARC failures', async () => {
    const [report] = await parseFixture('e2e-failing-report.xml');
    assert.ok(report);
    assert.equal(report.schema, 'rfc7489');
    assert.equal(report.version, '1.0');

    assert.deepEqual(report.reporter, {
      orgName: 'Fastmail Pty Ltd',
      email: 'reports@fastmaildmarc.com',
      extraContactInfo: 'https://fastmail.com/',
      generator: null,
    });
    assert.equal(report.reportId, '758848224');
    assert.equal(report.period.begin.toISOString(), '2022-11-02T00:00:00.000Z');
    assert.equal(report.period.end.toISOString(), '2022-11-02T23:59:59.000Z');
    assert.equal(report.policy.domain, 'stalw.art');
    assert.equal(report.policy.p, 'none');
    assert.equal(report.policy.pct, 100);
    assert.equal(report.policy.fo, '0');

    assert.equal(report.records.length, 4);
    assert.equal(sumCounts(report), 9);

    const failing = report.records.filter((entry) => entry.dkim === 'fail' && entry.spf === 'fail');
    assert.deepEqual(
      failing.map((entry) => [entry.sourceIp, entry.count, entry.headerFrom]),
      [
        ['64.147.108.117', 3, 'stalw.art'],
        ['173.228.157.66', 4, 'stalw.art'],
        ['64.147.108.173', 1, 'stalw.art'],
      ],
    );
    assert.deepEqual(failing[0]?.reasons, [
      { type: 'trusted_forwarder', comment: 'Policy ignored due to local white list' },
    ]);
    assert.deepEqual(report.warnings, []);
  });

  it('reads the large parsedmarc report', async () => {
    const [report] = await parseFixture(
      'parsedmarc/aggregate/!large-example.com!1711897200!1711983600.xml',
    );
    assert.ok(report);
    assert.equal(report.records.length, 2286);
    assert.equal(sumCounts(report), 2286);
    assert.equal(report.reportId, 'example.com:1711897200');
    assert.equal(report.period.begin.toISOString(), '2024-03-31T15:00:00.000Z');
    assertWarning(report, /^Record 1 and 2285 more: auth_results spf has no domain/);
    assertWarning(report, /org_name is empty; the domain of its email, "accurateplastics.com"/);
  });

  it('reads the three reports of a multi-report zip', async () => {
    const reports = await parseFixture('dmarc_report_reader/multi-report.zip');
    assert.deepEqual(
      reports.map((report) => [report.reportId, report.records.length, sumCounts(report)]),
      [
        ['12345678901234567890', 2, 13],
        ['98765432109876543210', 2, 28],
        ['11111111111111111111', 2, 8],
      ],
    );
  });

  it('reads a GMX report in the DMARCbis namespace', async () => {
    const [report] = await parseFixture('dmarc-report-viewer/dmarc-reports/gmxnet.xml');
    assert.ok(report);
    assert.equal(report.schema, 'dmarcbis');
    assert.equal(report.reporter.orgName, 'GMX');
    assert.equal(report.reportId, '6d2be94cbabf4e838a3cf58fb4a42ab5');
    assert.equal(report.period.begin.toISOString(), '2024-12-03T00:00:00.000Z');
    assert.equal(report.policy.domain, 'myserver.com');
    assert.equal(report.policy.testing, 'n');
    assert.equal(report.policy.discoveryMethod, 'psl');
    assert.equal(report.policy.pct, null);
    assert.deepEqual(report.records[0]?.spfResults, [
      { domain: 'myserver.com', scope: 'mfrom', result: 'pass', humanResult: null },
    ]);
  });

  it('reads the RFC 9990 sample', async () => {
    const [report] = await parseFixture('parsedmarc/aggregate/rfc9990-sample.xml');
    assert.ok(report);
    assert.equal(report.schema, 'dmarcbis');
    assert.equal(report.reporter.generator, 'Example DMARC Aggregate Reporter v1.2');
    assert.equal(report.policy.np, 'none');
    assert.equal(report.policy.discoveryMethod, 'treewalk');
    assert.equal(report.records[0]?.count, 123);
    assert.equal(report.records[0]?.disposition, 'none');
    assert.equal(report.records[0]?.dispositionRaw, 'pass');
    assert.equal(report.records[0]?.envelopeFrom, 'example.com');
  });

  it('reads an AOL report declared as windows-1252', async () => {
    const [report] = await parseFixture('dmarc_aggregate_parser/sample-data/dmarc.xml');
    assert.ok(report);
    assert.equal(report.reporter.orgName, 'AOL');
    assert.equal(report.reportId, 'website.com_1504828800');
    assert.equal(report.period.end.toISOString(), '2017-09-08T00:00:00.000Z');
    assertWarning(report, /declares encoding "windows-1252"; it was decoded as windows-1252/);
  });

  it('reads a Microsoft report with a BOM from a mail', async () => {
    const path =
      'modoboa-dmarc/reports/Report_Domain_ngyn.org_Submitter_hotmail.com_Report-ID_66f317a021ff4cdabad2b350d3303615@hotmail.com.eml';
    const [report] = await parseFixture(path);
    assert.ok(report);
    assert.equal(report.reporter.orgName, 'Microsoft Corp.');
    assert.equal(report.policy.pct, 5);
    assert.equal(report.policy.adkim, 's');
    assertWarning(report, /UTF-8 byte order mark/);
  });

  it('reads a zip labelled as gzip in a mail', async () => {
    const path =
      'modoboa-dmarc/fail-reports/Report_Domain_ngyn.org_Submitter_163.com_Report-ID_aggr_report_ngyn.org_20150705_163-failed.com.eml';
    const [report] = await parseFixture(path);
    assert.ok(report);
    assert.equal(report.reporter.orgName, '163.com');
    assert.equal(report.policy.domain, 'ngyn.org');
  });

  it('reads the IKEA report inside a stray schema tag', async () => {
    const [report] = await parseFixture(
      'parsedmarc/aggregate/ikea.com!example.de!1538690400!1538776800.xml',
    );
    assert.ok(report);
    assert.equal(report.reportId, 'aggr_report_2018_10_05_5bc7e9b4f3e8a');
    assert.equal(report.records.length, 1);
    assertWarning(report, /stray <xs:schema> start tag/);
  });
});

describe('parseAggregateReport: leniency', () => {
  it('reads a plain report without warnings', () => {
    const report = parse(buildReport());
    assert.deepEqual(report.warnings, []);
    assert.equal(report.policy.domain, 'example.com');
    assert.equal(report.period.begin.toISOString(), '2024-10-01T00:00:00.000Z');
    assert.deepEqual(report.records[0], {
      sourceIp: '192.0.2.1',
      count: 2,
      disposition: 'none',
      dispositionRaw: 'none',
      dkim: 'pass',
      spf: 'fail',
      reasons: [],
      headerFrom: 'example.com',
      headerFromRaw: 'example.com',
      envelopeFrom: null,
      envelopeTo: null,
      dkimResults: [{ domain: 'example.com', selector: 's1', result: 'pass', humanResult: null }],
      spfResults: [{ domain: 'example.com', scope: null, result: 'softfail', humanResult: null }],
    });
  });

  it('reads enum words in any case', () => {
    const row = `<source_ip>192.0.2.1</source_ip><count>1</count>
      <policy_evaluated><disposition>Quarantine</disposition><dkim>PASS</dkim><spf>Fail</spf></policy_evaluated>`;
    const report = parse(
      buildReport({
        policy: '<domain>example.com</domain><adkim>R</adkim><p>Reject</p>',
        records: record(row),
      }),
    );
    assert.equal(report.records[0]?.disposition, 'quarantine');
    assert.equal(report.records[0]?.dispositionRaw, 'Quarantine');
    assert.equal(report.records[0]?.dkim, 'pass');
    assert.equal(report.policy.adkim, 'r');
    assert.equal(report.policy.p, 'reject');
    assertWarning(report, /disposition "Quarantine" was read as "quarantine"/);
    assertWarning(report, /adkim "R" was read as "r"/);
  });

  it('maps off-schema auth results', () => {
    const auth = `<auth_results>
      <dkim><domain>example.com</domain><result>unknown</result></dkim>
      <spf><domain>example.com</domain><result>HardFail</result></spf>
      <spf><domain>example.com</domain><result>softfail</result></spf>
      <spf><domain>example.com</domain><result>error</result></spf></auth_results>`;
    const report = parse(buildReport({ records: record(DEFAULT_ROW, auth) }));
    const results = report.records[0]?.spfResults.map((result) => result.result);
    assert.deepEqual(results, ['fail', 'softfail', 'permerror']);
    assert.equal(report.records[0]?.dkimResults[0]?.result, 'temperror');
    assertWarning(report, /auth_results spf "HardFail" was read as "fail"/);
    assertWarning(report, /auth_results dkim "unknown" was read as "temperror"/);
  });

  it('counts an off-schema alignment word as fail', () => {
    const row = `<source_ip>192.0.2.1</source_ip><count>1</count>
      <policy_evaluated><disposition>none</disposition><dkim>softfail</dkim><spf>pass</spf></policy_evaluated>`;
    const report = parse(buildReport({ records: record(row) }));
    assert.equal(report.records[0]?.dkim, 'fail');
    assert.equal(report.records[0]?.spf, 'pass');
    assertWarning(report, /policy_evaluated dkim "softfail" is not pass or fail/);
  });

  it('skips a UTF-8 byte order mark', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(buildReport())]);
    const report = parse(bytes);
    assert.equal(report.reportId, 'r-1');
    assertWarning(report, /UTF-8 byte order mark/);
  });

  it('decodes a declared ISO-8859-1 document', () => {
    const xml = buildReport({
      prolog: '<?xml version="1.0" encoding="ISO-8859-1"?>',
      metadata: DEFAULT_METADATA.replace('Receiver Example', 'Réseau Exemple'),
    });
    const report = parse(Buffer.from(xml, 'latin1'));
    assert.equal(report.reporter.orgName, 'Réseau Exemple');
    assertWarning(report, /declares encoding "ISO-8859-1"; it was decoded as windows-1252/);
  });

  it('decodes windows-1252 quotes', () => {
    const xml = buildReport({
      prolog: '<?xml version="1.0" encoding="windows-1252"?>',
      metadata: DEFAULT_METADATA.replace('Receiver Example', 'Receiver \u0091Example\u0092'),
    });
    const report = parse(Buffer.from(xml, 'latin1'));
    assert.equal(report.reporter.orgName, 'Receiver \u2018Example\u2019');
  });

  it('decodes UTF-16 with a byte order mark', () => {
    const xml = buildReport({ prolog: '<?xml version="1.0" encoding="UTF-16"?>' });
    const report = parse(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(xml, 'utf16le')]));
    assert.equal(report.reportId, 'r-1');
    assertWarning(report, /UTF-16 \(little-endian, with a byte order mark\)/);
  });

  it('replaces invalid UTF-8 bytes', () => {
    const xml = Buffer.from(buildReport().replace('Receiver Example', 'Receiver XExample'));
    xml[xml.indexOf('XExample')] = 0x91;
    const report = parse(xml);
    assert.equal(report.reporter.orgName, 'Receiver \ufffdExample');
    assertWarning(report, /not valid UTF-8/);
  });

  it('rejects an encoding that cannot be decoded', () => {
    const xml = buildReport({ prolog: '<?xml version="1.0" encoding="x-klingon"?>' });
    assertRejects(xml, 'unsupported_format', /encoding "x-klingon"/);
  });

  it('removes whitespace before the XML declaration', () => {
    const report = parse(`\r\n  ${buildReport()}`);
    assert.equal(report.reportId, 'r-1');
    assertWarning(report, /whitespace before its XML declaration/);
  });

  it('reads CRLF line endings and padded values', () => {
    const xml = buildReport({
      metadata: DEFAULT_METADATA.replace(
        '<report_id>r-1</report_id>',
        '<report_id>\r\n  r-1 \r\n</report_id>',
      ),
    }).replace(/\n/g, '\r\n');
    const report = parse(xml);
    assert.equal(report.reportId, 'r-1');
    assert.deepEqual(report.warnings, []);
  });

  it('accepts records missing optional parts', () => {
    const row =
      '<source_ip>2001:DB8::1</source_ip><count>5</count><policy_evaluated></policy_evaluated>';
    const report = parse(buildReport({ records: record(row) }));
    const entry = report.records[0];
    assert.equal(entry?.sourceIp, '2001:db8::1');
    assert.equal(entry?.disposition, 'none');
    assert.equal(entry?.dkim, 'fail');
    assert.deepEqual(entry?.dkimResults, []);
    assertWarning(report, /policy_evaluated has no disposition/);
    assertWarning(report, /policy_evaluated dkim is missing; it was counted as "fail"/);
  });

  it('falls back to the policy domain without header_from', () => {
    const report = parse(
      buildReport({ records: record(DEFAULT_ROW, '<identifiers></identifiers>') }),
    );
    assert.equal(report.records[0]?.headerFrom, 'example.com');
    assertWarning(report, /no header_from; the policy domain "example.com" was used/);
  });

  it('keeps a period longer than a day', () => {
    const metadata = DEFAULT_METADATA.replace('<end>1727827199</end>', '<end>1728000000</end>');
    const report = parse(buildReport({ metadata }));
    assert.equal(report.period.end.toISOString(), '2024-10-04T00:00:00.000Z');
    assertWarning(report, /covers 72\.0 hours, more than the 24 hours/);
  });

  it('swaps a reversed period', () => {
    const metadata = DEFAULT_METADATA.replace(
      '<begin>1727740800</begin><end>1727827199</end>',
      '<begin>1727827199</begin><end>1727740800</end>',
    );
    const report = parse(buildReport({ metadata }));
    assert.equal(report.period.begin.toISOString(), '2024-10-01T00:00:00.000Z');
    assertWarning(report, /begin is after its end; the two were swapped/);
  });

  it('skips unreadable records and keeps the rest', () => {
    const records = [
      record('<count>3</count>'),
      record('<source_ip>192.0.2.7</source_ip><count>many</count>'),
      record('<source_ip>not-an-ip</source_ip><count>1</count>'),
      DEFAULT_RECORD,
    ].join('\n');
    const report = parse(buildReport({ records }));
    assert.equal(report.records.length, 1);
    assert.equal(report.records[0]?.sourceIp, '192.0.2.1');
    assertWarning(report, /^Record 1: the record has no source_ip, so it was skipped/);
    assertWarning(
      report,
      /^Record 2: count "many" is not a whole number, so the record was skipped/,
    );
    assertWarning(report, /^Record 3: source_ip "not-an-ip" is not an IP address/);
  });

  it('merges one warning across records', () => {
    const row = `<source_ip>192.0.2.1</source_ip><count>1</count>
      <policy_evaluated><disposition>None</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>`;
    const report = parse(
      buildReport({ records: [record(row), record(row), record(row)].join('') }),
    );
    assert.deepEqual(report.warnings, [
      'Record 1 and 2 more: disposition "None" was read as "none".',
    ]);
  });

  it('names the reporter by its email when org_name is empty', () => {
    const metadata = DEFAULT_METADATA.replace('Receiver Example', '').replace(
      'dmarc@receiver.example',
      '&lt;dmarc@Receiver.Example&gt;',
    );
    const report = parse(buildReport({ metadata }));
    assert.equal(report.reporter.orgName, 'receiver.example');
    assert.equal(report.reporter.email, 'dmarc@Receiver.Example');
    assertWarning(report, /wrapped in angle brackets/);
  });

  it('reads DMARCbis fields in the 2.0 namespace', () => {
    const report = parse(
      buildReport({
        open: '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">',
        metadata: `${DEFAULT_METADATA}<generator>Receiver 2.1</generator>`,
        policy: `<domain>example.com</domain><discovery_method>treewalk</discovery_method>
          <p>reject</p><np>quarantine</np><testing>y</testing>`,
        records: record(
          DEFAULT_ROW,
          `<auth_results><spf><domain>example.com</domain><result>fail</result>
           <human_result>no matching mechanism</human_result></spf></auth_results>`,
        ),
      }),
    );
    assert.equal(report.schema, 'dmarcbis');
    assert.equal(report.reporter.generator, 'Receiver 2.1');
    assert.equal(report.policy.np, 'quarantine');
    assert.equal(report.policy.testing, 'y');
    assert.equal(report.policy.discoveryMethod, 'treewalk');
    assert.equal(report.records[0]?.spfResults[0]?.humanResult, 'no matching mechanism');
  });

  it('recognises DMARCbis by its fields alone', () => {
    const report = parse(buildReport({ policy: `${DEFAULT_POLICY}<np>reject</np>` }));
    assert.equal(report.schema, 'dmarcbis');
    assert.equal(parse(buildReport()).schema, 'rfc7489');
  });

  it('reads prefixed elements by local name', () => {
    const xml = buildReport()
      .replace(/<(\/?)([a-z_]+)/g, '<$1d:$2')
      .replace('<d:feedback>', '<d:feedback xmlns:d="http://dmarc.org/dmarc-xml/0.1">');
    const report = parse(xml);
    assert.equal(report.schema, 'rfc7489');
    assert.equal(report.reportId, 'r-1');
    assert.equal(report.records[0]?.count, 2);
  });

  it('ignores extensions and notes unknown elements', () => {
    const rest = `<auth_results></auth_results><ext:arc xmlns:ext="urn:example:arc">pass</ext:arc>`;
    const report = parse(
      buildReport({
        policy: `${DEFAULT_POLICY}<policy_override>none</policy_override>`,
        records: `<extension><anything>1</anything></extension>${record(DEFAULT_ROW, rest)}`,
      }),
    );
    assert.equal(report.records.length, 1);
    assert.deepEqual(report.warnings, [
      'Elements that are not part of the DMARC report format were ignored: policy_override.',
    ]);
  });

  it('keeps report_metadata errors', () => {
    const metadata = `${DEFAULT_METADATA}<error>sp tag invalid</error><error> </error>`;
    assert.deepEqual(parse(buildReport({ metadata })).errors, ['sp tag invalid']);
  });

  it('drops an out-of-range pct', () => {
    const report = parse(buildReport({ policy: DEFAULT_POLICY.replace('100', '150') }));
    assert.equal(report.policy.pct, null);
    assertWarning(report, /pct "150" is not a whole number from 0 to 100/);
  });
});

describe('parseAggregateReport: dates, domains and counts out of range', () => {
  const withRange = (begin: string, end: string) =>
    buildReport({
      metadata: DEFAULT_METADATA.replace(
        '<begin>1727740800</begin><end>1727827199</end>',
        `<begin>${begin}</begin><end>${end}</end>`,
      ),
    });

  it('reads a date range in milliseconds', () => {
    const report = parse(withRange('1727740800000', '1727827199000'));
    assert.equal(report.period.begin.toISOString(), '2024-10-01T00:00:00.000Z');
    assert.equal(report.period.end.toISOString(), '2024-10-01T23:59:59.000Z');
    assertWarning(report, /^The date_range begin "1727740800000" is in milliseconds, not seconds/);
    assertWarning(report, /^The date_range end "1727827199000" is in milliseconds, not seconds/);
  });

  it('reads one bound in milliseconds', () => {
    const report = parse(withRange('1727740800000', '1727827199'));
    assert.equal(report.period.begin.toISOString(), '2024-10-01T00:00:00.000Z');
    assert.equal(report.period.end.toISOString(), '2024-10-01T23:59:59.000Z');
    assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
  });

  it('rejects a date after 2100', () => {
    assertRejects(
      withRange('1727740800', '253402300799'),
      'invalid_report',
      /outside 1970 to 2100/,
    );
  });

  it('rejects a date far in the future', () => {
    assertRejects(withRange('1727740800', '99999999999999999'), 'invalid_report', /date_range end/);
  });

  it('rejects a date before 1970', () => {
    assertRejects(withRange('-86400', '1727827199'), 'invalid_report', /date_range begin "-86400"/);
  });

  it('rejects a policy domain that is no domain name', () => {
    const withDomain = (domain: string) =>
      buildReport({
        policy: DEFAULT_POLICY.replace(
          '<domain>Example.COM</domain>',
          `<domain>${domain}</domain>`,
        ),
      });
    assertRejects(
      withDomain('&lt;script&gt;alert(1)&lt;/script&gt;'),
      'invalid_report',
      /<domain> in <policy_published> is not a usable domain name: "<script>alert\(1\)<\/script>"/,
    );
    assertRejects(withDomain('postmaster@example.com'), 'invalid_report', /is an email address/);
    assertRejects(withDomain('192.0.2.1'), 'invalid_report', /is an IP address/);
    assertRejects(withDomain('localhost'), 'invalid_report', /has no top-level domain/);
  });

  it('converts Unicode domains to A-labels', () => {
    const report = parse(
      buildReport({
        policy: DEFAULT_POLICY.replace(
          '<domain>Example.COM</domain>',
          '<domain>Bücher.Example.</domain>',
        ),
        records: record(
          DEFAULT_ROW,
          '<identifiers><header_from>MAIL.bücher.example</header_from></identifiers>',
        ),
      }),
    );
    assert.equal(report.policy.domain, 'xn--bcher-kva.example');
    assert.equal(report.policy.domainRaw, 'Bücher.Example.');
    assert.equal(report.records[0]?.headerFrom, 'mail.xn--bcher-kva.example');
    assert.equal(report.records[0]?.headerFromRaw, 'MAIL.bücher.example');
  });

  it('uses the A-label policy domain for header_from', () => {
    const report = parse(
      buildReport({
        policy: DEFAULT_POLICY.replace(
          '<domain>Example.COM</domain>',
          '<domain>bücher.example</domain>',
        ),
        records: record(DEFAULT_ROW, '<identifiers></identifiers>'),
      }),
    );
    assert.equal(report.records[0]?.headerFrom, 'xn--bcher-kva.example');
    assert.equal(report.records[0]?.headerFromRaw, '');
  });

  it('drops the trailing dot of domains', () => {
    const report = parse(
      buildReport({
        policy: DEFAULT_POLICY.replace(
          '<domain>Example.COM</domain>',
          '<domain>STALW.ART.</domain>',
        ),
        records: record(
          DEFAULT_ROW,
          '<identifiers><header_from>Stalw.Art.</header_from></identifiers>',
        ),
      }),
    );
    assert.equal(report.policy.domain, 'stalw.art');
    assert.equal(report.records[0]?.headerFrom, 'stalw.art');
  });

  it('skips a count past 2^53 - 1', () => {
    const row = DEFAULT_ROW.replace('<count>2</count>', '<count>100000000000000000000</count>');
    const report = parse(buildReport({ records: `${record(row)}\n${DEFAULT_RECORD}` }));
    assert.equal(report.records.length, 1);
    assertWarning(
      report,
      /^Record 1: count "100000000000000000000" is larger than 9007199254740991, the largest count that dmarcdesk adds up exactly, so the record was skipped\.$/,
    );
  });

  it('keeps counts above 2^31 - 1', () => {
    const row = DEFAULT_ROW.replace('<count>2</count>', '<count>3000000000</count>');
    const report = parse(buildReport({ records: record(row) }));
    assert.equal(report.records[0]?.count, 3_000_000_000);
  });

  it('rejects counts adding up past 2^53 - 1', () => {
    const row = DEFAULT_ROW.replace('<count>2</count>', '<count>5000000000000000</count>');
    assertRejects(
      buildReport({ records: `${record(row)}\n${record(row)}` }),
      'invalid_report',
      /add up to more than 9007199254740991, the largest total dmarcdesk stores exactly; the file was not stored/,
    );
  });
});

describe('parseAggregateReport: hostile and broken input', () => {
  it('rejects billion laughs before expanding', () => {
    const entities = Array.from(
      { length: 9 },
      (_, level) => `<!ENTITY lol${level + 1} "${`&lol${level};`.repeat(10)}">`,
    ).join('\n');
    const xml = `<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY lol0 "lol">
${entities}]>
<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>`;
    assertRejects(xml, 'doctype_forbidden', /DOCTYPE declaration \(line \d+\)/);
  });

  it('rejects an external entity', () => {
    const xml = `<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>`;
    assertRejects(xml, 'doctype_forbidden', /DOCTYPE/);
  });

  it('rejects a parameter entity', () => {
    const xml = `<!DOCTYPE feedback [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<feedback/>`;
    assertRejects(xml, 'doctype_forbidden', /DOCTYPE/);
  });

  it('rejects an external DTD reference', () => {
    const xml = buildReport().replace(
      '<feedback>',
      '<!DOCTYPE feedback SYSTEM "feedback.dtd">\n<feedback>',
    );
    assertRejects(xml, 'doctype_forbidden', /DOCTYPE/);
  });

  it('rejects an entity reference without a DOCTYPE', () => {
    const xml = buildReport({ metadata: DEFAULT_METADATA.replace('Receiver Example', '&xxe;') });
    assertRejects(xml, 'not_well_formed', /line 3, column \d+: undefined entity/);
  });

  it('reads many character references', () => {
    const name = '&#65;'.repeat(10_000);
    const report = parse(
      buildReport({ metadata: DEFAULT_METADATA.replace('Receiver Example', name) }),
    );
    assert.equal(report.reporter.orgName, 'A'.repeat(10_000));
  });

  it('rejects a field longer than 64 KiB', () => {
    const name = 'x'.repeat(70_000);
    const xml = buildReport({ metadata: DEFAULT_METADATA.replace('Receiver Example', name) });
    assertRejects(
      xml,
      'invalid_report',
      /<report_metadata\/org_name> .* more than 65536 characters/,
    );
  });

  it('rejects 10,000-deep nesting', () => {
    const xml = `<feedback>${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}</feedback>`;
    assertRejects(xml, 'invalid_report', /nest more than 32 levels/);
  });

  it('rejects 100,000 attributes', () => {
    const attributes = Array.from({ length: 100_000 }, (_, index) => `a${index}="1"`).join(' ');
    assertRejects(`<feedback ${attributes}/>`, 'invalid_report', /100000 attributes/);
  });

  it('never fetches XInclude', () => {
    const xinclude =
      '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>';
    const report = parse(buildReport({ metadata: `${DEFAULT_METADATA}${xinclude}` }));
    assert.equal(report.reporter.orgName, 'Receiver Example');
    assert.ok(!JSON.stringify(report).includes('root:'));
  });

  it('rejects truncated XML with its line', () => {
    const xml = buildReport();
    assertRejects(
      xml.slice(0, xml.indexOf('</policy_published>')),
      'not_well_formed',
      /ends at line \d+ before <\w+> is closed/,
    );
  });

  it('rejects mismatched tags with the line', () => {
    assertRejects(
      fixture('dmarc_report_reader/malformed.xml'),
      'not_well_formed',
      /at line 9, column \d+: unexpected close tag/,
    );
  });

  it('rejects an empty document', () => {
    assertRejects(Buffer.alloc(0), 'empty', /empty/);
  });

  it('rejects another XML document', () => {
    assertRejects(
      fixture('dmarc_report_reader/non-dmarc.xml'),
      'not_a_dmarc_report',
      /root element is <root>/,
    );
  });

  it('rejects text that is not XML', () => {
    assertRejects('this is not xml', 'not_well_formed', /not well-formed at line 1/);
  });

  for (const [element, metadata, policy] of [
    ['report_id', DEFAULT_METADATA.replace('<report_id>r-1</report_id>', ''), DEFAULT_POLICY],
    [
      'org_name',
      DEFAULT_METADATA.replace('<org_name>Receiver Example</org_name>', ''),
      DEFAULT_POLICY,
    ],
    ['date_range', DEFAULT_METADATA.replace(/<date_range>.*<\/date_range>/, ''), DEFAULT_POLICY],
    ['begin', DEFAULT_METADATA.replace('<begin>1727740800</begin>', ''), DEFAULT_POLICY],
    ['domain', DEFAULT_METADATA, DEFAULT_POLICY.replace('<domain>Example.COM</domain>', '')],
  ] as const) {
    it(`rejects a report without ${element}`, () => {
      assertRejects(
        buildReport({ metadata, policy }),
        'invalid_report',
        new RegExp(`no <${element}> element`),
      );
    });
  }

  it('rejects an empty report_id', () => {
    const metadata = DEFAULT_METADATA.replace(
      '<report_id>r-1</report_id>',
      '<report_id> </report_id>',
    );
    assertRejects(buildReport({ metadata }), 'invalid_report', /empty <report_id>/);
  });

  it('rejects a date that is not epoch seconds', () => {
    const metadata = DEFAULT_METADATA.replace('1727740800', '2024-10-01');
    assertRejects(
      buildReport({ metadata }),
      'invalid_report',
      /date_range begin "2024-10-01" is not a number/,
    );
  });

  it('rejects more records than maxRecords', () => {
    const xml = buildReport({ records: DEFAULT_RECORD.repeat(3) });
    assert.throws(
      () => parseAggregateReport(Buffer.from(xml), { maxRecords: 2 }),
      (error: unknown) => error instanceof ReportInputError && error.code === 'too_large',
    );
    assert.equal(parseAggregateReport(Buffer.from(xml), { maxRecords: 3 }).records.length, 3);
  });

  it('rejects a document over maxDocumentBytes', () => {
    assert.throws(
      () => parseAggregateReport(Buffer.from(buildReport()), { maxDocumentBytes: 100 }),
      (error: unknown) => error instanceof ReportInputError && error.code === 'too_large',
    );
  });
});
