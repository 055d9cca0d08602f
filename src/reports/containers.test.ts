import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';

import { buildZip, deflateZerosBomb, gzipHeaderWith } from './container-test-archives.ts';
import { parseAggregateReport } from './aggregate-parser.ts';
import { extractDocuments, streamDocuments } from './containers.ts';
import { ReportInputError, type ReportInputErrorCode } from './report-input-error.ts';
import { syntheticReport } from './synthetic-reports.ts';

const FIXTURES = new URL('../../test/fixtures/reports/', import.meta.url);

function fixture(path: string): Buffer {
  return readFileSync(new URL(path, FIXTURES));
}

const REPORT = fixture('dmarc-report-viewer/dmarc-reports/google.xml');

async function rejects(
  input: Buffer,
  code: ReportInputErrorCode,
  pattern: RegExp,
  limits: Parameters<typeof extractDocuments>[1] = {},
): Promise<void> {
  await assert.rejects(extractDocuments(input, limits), (error: unknown) => {
    assert.ok(
      error instanceof ReportInputError,
      `expected a ReportInputError, got ${String(error)}`,
    );
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

function mail(parts: { type: string; name?: string; body: Buffer }[]): Buffer {
  const lines = [
    'From: reports@receiver.example',
    'To: dmarc@example.com',
    'Subject: Report Domain: example.com Submitter: receiver.example',
    'Date: Tue, 1 Oct 2024 10:00:00 +0000',
    'Message-ID: <report-1@receiver.example>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    'This is a MIME message.',
  ];
  for (const part of parts) {
    lines.push('--b1', `Content-Type: ${part.type}`, 'Content-Transfer-Encoding: base64');
    if (part.name) lines.push(`Content-Disposition: attachment; filename="${part.name}"`);
    lines.push('', part.body.toString('base64').replace(/.{76}/g, '$&\r\n'));
  }
  lines.push('--b1--', '');
  return Buffer.from(lines.join('\r\n'));
}

describe('extractDocuments: plain and compressed reports', () => {
  it('returns raw XML as one document', async () => {
    const documents = await extractDocuments(REPORT);
    assert.equal(documents.length, 1);
    assert.equal(documents[0]?.name, 'upload');
    assert.deepEqual(documents[0]?.layers, ['xml']);
    assert.deepEqual(documents[0]?.bytes, REPORT);
  });

  it('unwraps a gzip fixture', async () => {
    const documents = await extractDocuments(fixture('dmarc_report_reader/valid-report.xml.gz'));
    assert.deepEqual(documents[0]?.layers, ['gzip', 'xml']);
    assert.deepEqual(documents[0]?.bytes, fixture('dmarc_report_reader/valid-report.xml'));
  });

  it('unwraps a double gzip fixture', async () => {
    const documents = await extractDocuments(fixture('dmarc-report-converter/test.xml.gz.gz'));
    assert.deepEqual(documents[0]?.layers, ['gzip', 'gzip', 'xml']);
    assert.deepEqual(documents[0]?.bytes, fixture('dmarc-report-converter/test.xml'));
  });

  it('unwraps a zlib stream', async () => {
    const path = 'dmarcgo/testdata/fixtures/aol.com!georgestarcher.com!1342497600!1342584000';
    const documents = await extractDocuments(fixture(`${path}.zlib`));
    assert.deepEqual(documents[0]?.layers, ['zlib', 'xml']);
    assert.match(documents[0]?.bytes.toString('latin1') ?? '', /<org_name>AOL<\/org_name>/);
  });

  it('joins the members of a multi-member gzip', async () => {
    const half = Math.floor(REPORT.length / 2);
    const input = Buffer.concat([
      zlib.gzipSync(REPORT.subarray(0, half)),
      zlib.gzipSync(REPORT.subarray(half)),
    ]);
    const documents = await extractDocuments(input);
    assert.equal(documents.length, 1);
    assert.deepEqual(documents[0]?.bytes, REPORT);
  });

  it('tolerates trailing bytes after a gzip member', async () => {
    const input = Buffer.concat([zlib.gzipSync(REPORT), Buffer.from('\r\n\r\ngarbage')]);
    const documents = await extractDocuments(input);
    assert.deepEqual(documents[0]?.bytes, REPORT);
  });

  it('warns of trailing bytes that are not white space', async () => {
    const warningsOf = async (input: Buffer, limits = {}) => {
      const warnings: string[] = [];
      for await (const document of streamDocuments(input, limits, warnings)) {
        for await (const chunk of document.chunks) assert.ok(chunk.length >= 0);
      }
      return warnings;
    };
    const gzip = zlib.gzipSync(REPORT);
    const garbage = Buffer.concat([gzip, Buffer.from('GARBAGEGARBAGE')]);
    const expected = [
      'Ignored 14 bytes after the end of the gzip data of the upload: they start no gzip member, so they are not part of the report.',
    ];
    assert.deepEqual(await warningsOf(garbage), expected);
    // The streaming path, taken by input too large to inflate at once, warns the same way.
    const records = syntheticReport({ records: 3000, reportId: 'trailing' });
    const large = Buffer.concat([zlib.gzipSync(records), Buffer.from('junk')]);
    assert.match((await warningsOf(large))[0] ?? '', /^Ignored 4 bytes after the end/);
    assert.deepEqual(await warningsOf(Buffer.concat([gzip, Buffer.from('\r\n')])), []);
  });

  it('reads a zip fixture by its member name', async () => {
    const documents = await extractDocuments(fixture('godmarcparser/input/testdata/valid.zip'));
    assert.equal(documents[0]?.name, 'valid.xml');
    assert.deepEqual(documents[0]?.layers, ['zip', 'xml']);
    assert.deepEqual(documents[0]?.bytes, fixture('godmarcparser/input/testdata/valid.xml'));
  });

  it('reads every member of a multi-report zip', async () => {
    const documents = await extractDocuments(fixture('dmarc_report_reader/multi-report.zip'));
    assert.deepEqual(
      documents.map((document) => document.name),
      [
        'google.com!example.com!1704067200!1704153599.xml',
        'microsoft.com!example.com!1704067200!1704153599.xml',
        'yahoo.com!example.com!1704067200!1704153599.xml',
      ],
    );
  });

  it('skips directory entries and unknown members in a zip', async () => {
    const input = buildZip([
      { name: 'reports/' },
      { name: 'reports/readme.txt', data: Buffer.from('plain words only') },
      { name: 'reports/a.xml.gz', data: zlib.gzipSync(REPORT), method: 0 },
    ]);
    const documents = await extractDocuments(input);
    assert.equal(documents.length, 1);
    assert.equal(documents[0]?.name, 'reports/a.xml.gz');
    assert.deepEqual(documents[0]?.layers, ['zip', 'gzip', 'xml']);
    assert.deepEqual(documents[0]?.bytes, REPORT);
  });

  it('detects content regardless of the name', async () => {
    const input = buildZip([{ name: 'report.pdf', data: zlib.gzipSync(REPORT) }]);
    const documents = await extractDocuments(input);
    assert.deepEqual(documents[0]?.layers, ['zip', 'gzip', 'xml']);
  });
});

/** Returns the chunks of each document of an input, as streamDocuments yields them. */
async function streamedChunks(input: Buffer): Promise<Buffer[][]> {
  const documents: Buffer[][] = [];
  for await (const document of streamDocuments(input)) {
    const chunks: Buffer[] = [];
    for await (const chunk of document.chunks) chunks.push(chunk);
    documents.push(chunks);
  }
  return documents;
}

// Small gzip and zlib input is inflated in synchronous calls when no limit can be reached.
// Other input goes through the inflate stream, which yields chunks of 64 KiB.
describe('extractDocuments: inflating small input at once', () => {
  // About 230 KiB of XML, which gzips to far less than the 64 KiB of input inflated at once.
  const MID_REPORT = syntheticReport({ records: 500, reportId: 'at-once' });

  it('yields a small gzip in one chunk', async () => {
    const documents = await streamedChunks(zlib.gzipSync(MID_REPORT));
    assert.equal(documents.length, 1);
    assert.equal(documents[0]?.length, 1);
    assert.deepEqual(documents[0]?.[0], MID_REPORT);
  });

  it('yields a small zlib stream in one chunk', async () => {
    const input = Buffer.concat([zlib.deflateSync(MID_REPORT), Buffer.from('\r\n')]);
    const documents = await streamedChunks(input);
    assert.equal(documents[0]?.length, 1);
    assert.deepEqual(documents[0]?.[0], MID_REPORT);
  });

  it('streams output past 1 MiB', async () => {
    const large = syntheticReport({ records: 3000, reportId: 'streamed' });
    assert.ok(large.length > 1024 * 1024);
    const documents = await streamedChunks(zlib.gzipSync(large));
    assert.ok((documents[0]?.length ?? 0) > 1);
    assert.deepEqual(Buffer.concat(documents[0] ?? []), large);
  });

  it('joins members past 1 MiB of output', async () => {
    // The first two members stay below 1 MiB of output together, and the last one passes it.
    const members = [MID_REPORT.subarray(0, 1000), MID_REPORT.subarray(1000)];
    // Random text, so that the layer's ratio stays far below the limit of 200.
    const padding = Buffer.from(`<!-- ${randomBytes(450 * 1024).toString('hex')} -->`);
    const input = Buffer.concat([
      zlib.gzipSync(members[0] as Buffer),
      zlib.gzipSync(members[1] as Buffer),
      zlib.gzipSync(padding),
      Buffer.from('\r\n'),
    ]);
    const documents = await extractDocuments(input);
    assert.equal(documents.length, 1);
    assert.deepEqual(documents[0]?.bytes, Buffer.concat([MID_REPORT, padding]));
  });

  it('accepts output exactly at maxExpandedBytes', async () => {
    const documents = await extractDocuments(zlib.gzipSync(MID_REPORT), {
      maxExpandedBytes: MID_REPORT.length,
    });
    assert.deepEqual(documents[0]?.bytes, MID_REPORT);
  });

  it('rejects output one byte past maxExpandedBytes', async () => {
    await rejects(zlib.gzipSync(MID_REPORT), 'too_large', /expands to more than/, {
      maxExpandedBytes: MID_REPORT.length - 1,
    });
  });

  it('stops a small gzip bomb by ratio', async () => {
    const bomb = gzipHeaderWith(deflateZerosBomb(32));
    assert.ok(bomb.length < 64 * 1024);
    await rejects(bomb, 'compression_ratio', /more than 200 times/);
  });

  it('stops a small zlib bomb by ratio', async () => {
    const bomb = zlib.deflateSync(Buffer.alloc(32 * 1024 * 1024));
    assert.ok(bomb.length < 64 * 1024);
    await rejects(bomb, 'compression_ratio', /more than 200 times/);
  });

  it('stops a small gzip bomb below 1 MiB by the total limit', async () => {
    const bomb = gzipHeaderWith(deflateZerosBomb(4));
    await rejects(bomb, 'too_large', /more than 512\.0 KiB in total/, {
      maxRatio: 1_000_000,
      maxExpandedBytes: 512 * 1024,
    });
  });

  it('stops a multi-member gzip bomb by ratio', async () => {
    // Each member expands to 512 KiB, below the bound, but together they pass the ratio.
    const member = zlib.gzipSync(Buffer.alloc(512 * 1024));
    const bomb = Buffer.concat(Array.from({ length: 40 }, () => member));
    await rejects(bomb, 'compression_ratio', /more than 200 times/);
  });

  it('counts extra gzip members against maxFiles', async () => {
    const thirds = [0, 1, 2].map((third) => {
      const size = Math.ceil(MID_REPORT.length / 3);
      return zlib.gzipSync(MID_REPORT.subarray(third * size, (third + 1) * size));
    });
    const input = Buffer.concat(thirds);
    const documents = await extractDocuments(input, { maxFiles: 2 });
    assert.deepEqual(documents[0]?.bytes, MID_REPORT);
    await rejects(input, 'too_many_files', /reached at gzip member 3/, { maxFiles: 1 });
  });

  it('rejects a bad CRC-32 in a later member', async () => {
    const second = Buffer.from(zlib.gzipSync(MID_REPORT.subarray(1000)));
    second.writeUInt32LE(second.readUInt32LE(second.length - 8) ^ 1, second.length - 8);
    const input = Buffer.concat([zlib.gzipSync(MID_REPORT.subarray(0, 1000)), second]);
    await rejects(input, 'corrupt_gzip', /CRC-32/);
  });

  it('rejects a truncated small gzip', async () => {
    const gzip = zlib.gzipSync(MID_REPORT);
    await rejects(gzip.subarray(0, gzip.length - 20), 'corrupt_gzip', /ends before the compressed/);
  });

  it('rejects damaged small gzip data', async () => {
    const gzip = Buffer.from(zlib.gzipSync(MID_REPORT));
    gzip.fill(0xff, 12, 40);
    await rejects(gzip, 'corrupt_gzip', /the compressed stream is damaged/);
  });
});

describe('extractDocuments: mail messages', () => {
  it('unwraps a zip attachment of a real report mail', async () => {
    const documents = await extractDocuments(fixture('mail-auth/dmarc-feedback/100.eml'));
    assert.equal(documents.length, 1);
    assert.equal(documents[0]?.name, 'google.com!stalw.art!1669507200!1669593599.xml');
    assert.deepEqual(documents[0]?.layers, ['mail', 'zip', 'xml']);
  });

  it('unwraps a gzip attachment sent as octet-stream', async () => {
    const documents = await extractDocuments(fixture('mail-auth/dmarc-feedback/104.eml'));
    assert.deepEqual(documents[0]?.layers, ['mail', 'gzip', 'xml']);
    assert.match(documents[0]?.bytes.toString() ?? '', /<org_name>AMAZON-SES<\/org_name>/);
  });

  it('tolerates the Mimecast gzip with a trailing CRLF', async () => {
    const documents = await extractDocuments(
      fixture('parsedmarc/aggregate/mimecast-weird-gzip.eml'),
    );
    assert.deepEqual(documents[0]?.layers, ['mail', 'gzip', 'xml']);
    assert.match(documents[0]?.bytes.toString() ?? '', /<\/feedback>\s*$/);
  });

  it('skips a logo and keeps the report', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const input = mail([
      { type: 'image/png', name: 'logo.png', body: png },
      { type: 'application/gzip', name: 'r.xml.gz', body: zlib.gzipSync(REPORT) },
    ]);
    const documents = await extractDocuments(input);
    assert.equal(documents.length, 1);
    assert.equal(documents[0]?.name, 'r.xml.gz');
    assert.deepEqual(documents[0]?.bytes, REPORT);
  });

  it('rejects a mail without attachments', async () => {
    await rejects(fixture('dmarc-parser/test.none.eml'), 'unsupported_format', /no attachments/);
  });

  it('rejects a mail whose gzip contains a PNG', async () => {
    const path =
      'modoboa-dmarc/reports/Report_Domain_ngyn.org_Submitter_amazon.com_Report-ID_aggr_report_ngyn.org_20210607-ignored.eml';
    await rejects(fixture(path), 'unsupported_format', /contains a PNG image inside gzip/);
  });

  it('rejects a failure report mail', async () => {
    const path = 'parsedmarc/failure/dmarc_ruf_report_linkedin.eml';
    await rejects(fixture(path), 'unsupported_format', /failure report .*message\/feedback-report/);
  });
});

describe('extractDocuments: unsupported and broken input', () => {
  it('rejects an empty input', async () => {
    await rejects(fixture('parsedmarc/empty.xml'), 'empty', /empty/);
  });

  it('rejects plain text named .xml', async () => {
    const input = fixture('godmarcparser/dmarc/testdata/notxml.xml');
    await rejects(input, 'unsupported_format', /plain text starting with "this is not xml/);
  });

  it('rejects text named .zip', async () => {
    const input = fixture('godmarcparser/input/testdata/corrupt.zip');
    await rejects(input, 'unsupported_format', /plain text/);
  });

  it('names a PNG image', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    await rejects(png, 'unsupported_format', /a PNG image/);
  });

  it('rejects a zip whose only member is text', async () => {
    await rejects(
      fixture('dmarc-parser/test.zip'),
      'unsupported_format',
      /zip member "test.txt" contains plain text/,
    );
  });

  it('rejects a truncated gzip', async () => {
    const gzip = zlib.gzipSync(REPORT);
    const input = gzip.subarray(0, gzip.length - 20);
    await rejects(input, 'corrupt_gzip', /ends before the compressed stream does/);
  });

  it('rejects a gzip without its trailer', async () => {
    const gzip = zlib.gzipSync(REPORT);
    await rejects(gzip.subarray(0, gzip.length - 4), 'corrupt_gzip', /trailer/);
  });

  it('rejects a gzip whose CRC does not match', async () => {
    const gzip = Buffer.from(zlib.gzipSync(REPORT));
    gzip.writeUInt32LE(gzip.readUInt32LE(gzip.length - 8) ^ 1, gzip.length - 8);
    await rejects(gzip, 'corrupt_gzip', /CRC-32/);
  });

  it('rejects a gzip with damaged data', async () => {
    const gzip = Buffer.from(zlib.gzipSync(REPORT));
    gzip.fill(0xff, 12, 40);
    await rejects(gzip, 'corrupt_gzip', /not a valid gzip file/);
  });

  it('rejects a truncated zip', async () => {
    const zip = fixture('dmarc-report-converter/test.xml.zip');
    await rejects(zip.subarray(0, zip.length - 30), 'corrupt_zip', /not a valid zip archive/);
  });

  it('rejects a zip member whose data is damaged', async () => {
    const zip = buildZip([{ name: 'a.xml', data: REPORT, rawCompressed: Buffer.alloc(64, 0xff) }]);
    await rejects(zip, 'corrupt_zip', /Zip member "a.xml"/);
  });

  it('rejects a zip member named with ..', async () => {
    const zip = buildZip([{ name: '../../etc/report.xml', data: REPORT }]);
    await rejects(zip, 'corrupt_zip', /not a valid zip archive/);
  });

  it('rejects an encrypted zip member', async () => {
    const zip = buildZip([{ name: 'a.xml', data: REPORT, encryptedFlag: true }]);
    await rejects(zip, 'unsupported_format', /encrypted/);
  });

  it('rejects input over maxInputBytes', async () => {
    await rejects(REPORT, 'too_large', /more than the limit/, { maxInputBytes: 100 });
  });
});

describe('extractDocuments: bombs and nesting', () => {
  it('stops a 4 GiB gzip bomb by ratio', async () => {
    const bomb = gzipHeaderWith(deflateZerosBomb(4096));
    const before = process.memoryUsage.rss();
    await rejects(bomb, 'compression_ratio', /more than 200 times/);
    // The bomb is stopped after a few MiB; inflating it whole would need 4 GiB.
    assert.ok(process.memoryUsage.rss() - before < 512 * 1024 * 1024);
  });

  it('stops a gzip bomb by the total limit', async () => {
    const bomb = gzipHeaderWith(deflateZerosBomb(64));
    await rejects(bomb, 'too_large', /more than 8 MiB in total/, {
      maxRatio: 1_000_000,
      maxExpandedBytes: 8 * 1024 * 1024,
    });
  });

  it('rejects a zip bomb by its declared ratio', async () => {
    const zip = buildZip([
      { name: 'bomb.xml', rawCompressed: deflateZerosBomb(256), declaredSize: 256 * 1024 * 1024 },
    ]);
    await rejects(zip, 'compression_ratio', /Zip member "bomb.xml"/);
  });

  it('rejects a zip bomb whose declared size lies', async () => {
    const zip = buildZip([
      { name: 'small.xml', rawCompressed: deflateZerosBomb(256), declaredSize: 1000 },
    ]);
    await rejects(zip, 'corrupt_zip', /Zip member "small.xml"/);
  });

  it('rejects overlapping zip members', async () => {
    const zip = buildZip([{ name: 'a.xml', data: REPORT }], [0, 0, 0]);
    await rejects(zip, 'corrupt_zip', /overlap/);
  });

  it('rejects a zip with too many members', async () => {
    const entries = Array.from({ length: 101 }, (_, index) => ({
      name: `r${index}.xml`,
      data: REPORT,
    }));
    await rejects(buildZip(entries), 'too_many_files', /101 members, more than the limit of 100/);
  });

  it('counts members across nested archives', async () => {
    const inner = buildZip(
      Array.from({ length: 3 }, (_, index) => ({ name: `r${index}.xml`, data: REPORT })),
    );
    const outer = buildZip([
      { name: 'one.zip', data: inner },
      { name: 'two.zip', data: inner },
    ]);
    await rejects(outer, 'too_many_files', /more than 5 files/, { maxFiles: 5 });
  });

  it('accepts nesting up to maxDepth', async () => {
    const input = zlib.gzipSync(buildZip([{ name: 'r.xml.gz', data: zlib.gzipSync(REPORT) }]));
    const documents = await extractDocuments(input);
    assert.deepEqual(documents[0]?.layers, ['gzip', 'zip', 'gzip', 'xml']);
  });

  it('rejects nesting deeper than maxDepth', async () => {
    const input = zlib.gzipSync(zlib.gzipSync(zlib.gzipSync(zlib.gzipSync(REPORT))));
    await rejects(input, 'nesting_too_deep', /inside gzip > gzip > gzip, more than 3 containers/);
  });

  it('rejects deeply nested zips', async () => {
    let archive = REPORT;
    for (let level = 0; level < 6; level += 1)
      archive = buildZip([{ name: `level${level}.zip`, data: archive }]);
    await rejects(archive, 'nesting_too_deep', /more than 3 containers deep/);
  });
});

describe('extractDocuments with parseAggregateReport: mutated input', () => {
  it('raises only ReportInputError', async () => {
    const sources = [
      REPORT,
      zlib.gzipSync(REPORT),
      fixture('dmarc_report_reader/multi-report.zip'),
      fixture('mail-auth/dmarc-feedback/101.eml'),
      fixture('dmarc_aggregate_parser/sample-data/dmarc.xml'),
    ];
    // A fixed linear congruential generator keeps the cases the same on every run.
    let state = 20241001;
    const random = () => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state / 0x7fffffff;
    };

    const unexpected: string[] = [];
    for (let round = 0; round < 400; round += 1) {
      const input = Buffer.from(sources[round % sources.length] as Buffer);
      const edits = 1 + Math.floor(random() * 6);
      for (let edit = 0; edit < edits; edit += 1) {
        input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      }
      const cut = round % 10 === 0 ? Math.floor(random() * input.length) : input.length;
      try {
        const documents = await extractDocuments(input.subarray(0, cut));
        for (const document of documents) parseAggregateReport(document.bytes);
      } catch (error) {
        if (!(error instanceof ReportInputError))
          unexpected.push(`round ${round}: ${String(error)}`);
      }
    }
    assert.deepEqual(unexpected, []);
  });
});
