import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import type { AggregateRecord } from './aggregate-parser.ts';
import { AggregateReportParser } from './aggregate-stream.ts';
import { mutate, seededRandom } from './report-fuzzing.ts';
import { ReportInputError } from './report-input-error.ts';
import { syntheticReport } from './synthetic-reports.ts';

const FIXTURES = new URL('../../test/fixtures/reports/', import.meta.url).pathname;

/**
 * Parses `bytes` in slices of `sliceBytes` and returns the records, the summary and the error,
 * as one JSON text, so that two runs can be compared whole.
 */
function outcome(bytes: Buffer, fastScan: boolean, sliceBytes: number): string {
  const records: AggregateRecord[] = [];
  const parser = new AggregateReportParser((record) => records.push(record), {}, null, {
    fastScan,
  });
  try {
    for (let offset = 0; offset < bytes.length; offset += sliceBytes) {
      parser.write(bytes.subarray(offset, offset + sliceBytes));
    }
    const summary = parser.end();
    return JSON.stringify({ summary, records });
  } catch (error) {
    if (!(error instanceof ReportInputError)) throw error;
    return JSON.stringify({ code: error.code, message: error.message });
  }
}

/** Checks that the fast scanner changes nothing: same records, warnings and error messages. */
function assertSameOutcome(bytes: Buffer, label: string, sliceBytes = 64 * 1024): void {
  const withSaxes = outcome(bytes, false, sliceBytes);
  const withScanner = outcome(bytes, true, sliceBytes);
  assert.equal(withScanner, withSaxes, `${label}, slices of ${sliceBytes} bytes`);
}

function fixtureFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return fixtureFiles(path);
    return entry.endsWith('.xml') ? [path] : [];
  });
}

/** Markup the scanner hands to saxes, and markup it reads itself, at tag boundaries. */
const INSERTS = [
  '&amp;',
  '&#65;',
  '&bogus;',
  '\r\n',
  '\r',
  '\u00e9',
  '\u{1f600}',
  '\u0001',
  '\ufffe',
  ']]>',
  ']]',
  '<!-- note -->',
  '<![CDATA[x<y]]>',
  '<?pi data?>',
  '<!DOCTYPE feedback>',
  '<a b="1">',
  '<a b="1"/>',
  '< a>',
  '<a >',
  '</ a>',
  '</record >',
  '<1a>',
  '<a:b>x</a:b>',
  '<-a>',
  '<a/>',
  '<record/>',
  '</record>',
  '</feedback>',
  '<feedback>',
  '</>',
  '<>',
  '<',
  '>',
  'x',
  '\n',
];

/** Offsets just before and after each "<" and ">" of `text`. */
function boundaries(text: string): number[] {
  const offsets = new Set<number>();
  for (let index = 0; index < text.length; index += 1) {
    if (text[index] === '<') offsets.add(index);
    if (text[index] === '>') offsets.add(index + 1);
  }
  return [...offsets];
}

describe('fast scanner', () => {
  it('parses every fixture as saxes does', () => {
    const files = fixtureFiles(FIXTURES);
    assert.ok(files.length > 300, `found only ${files.length} fixtures`);
    for (const file of files) {
      const bytes = readFileSync(file);
      assertSameOutcome(bytes, file);
      assertSameOutcome(bytes, file, 97);
    }
  });

  it('matches saxes on markup inserted at every tag boundary', () => {
    const text = syntheticReport({ records: 3, reportId: 'scan' }).toString('utf8');
    for (const insert of INSERTS) {
      for (const at of boundaries(text)) {
        const bytes = Buffer.from(text.slice(0, at) + insert + text.slice(at));
        assertSameOutcome(bytes, `${JSON.stringify(insert)} at offset ${at}`);
      }
    }
  });

  it('matches saxes on a report cut at every offset', () => {
    const bytes = syntheticReport({ records: 2, reportId: 'cut' });
    for (let length = 0; length <= bytes.length; length += 1) {
      assertSameOutcome(bytes.subarray(0, length), `first ${length} bytes`);
    }
  });

  it('matches saxes on random mutations and slices', () => {
    const seed = syntheticReport({ records: 8, reportId: 'mutations' });
    const random = seededRandom(20_261_205);
    for (let round = 0; round < 1500; round += 1) {
      const bytes = mutate(seed, random);
      const sliceBytes = 1 + Math.floor(random() * 700);
      assertSameOutcome(
        bytes,
        `round ${round}: ${bytes.toString('latin1').slice(0, 200)}`,
        sliceBytes,
      );
    }
  });

  it('matches saxes on a carried text longer than the scanner keeps', () => {
    const text = syntheticReport({ records: 2, reportId: 'long' }).toString('utf8');
    const at = text.indexOf('</org_name>');
    const long = Buffer.from(`${text.slice(0, at)}${'y'.repeat(70_000)}${text.slice(at)}`);
    assertSameOutcome(long, 'org_name of 70,000 characters', 4096);
    const spaces = Buffer.from(text.replace('<record>', `${' '.repeat(200_000)}<record>`));
    assertSameOutcome(spaces, '200,000 spaces between records', 4096);
  });

  it('reports the line of an error after a hand-over', () => {
    const text = syntheticReport({ records: 3, reportId: 'lines' }).toString('utf8');
    const broken = Buffer.from(text.replace('</count>', '</cnt>'));
    const result = JSON.parse(outcome(broken, true, 64 * 1024)) as { message: string };
    assert.match(
      result.message,
      /^The XML is not well-formed at line 6, column \d+: unexpected close tag/,
    );
  });

  it('decodes UTF-8 split across ASCII slices', () => {
    const name = 'Z\u00fcrich \u2713 \u{1f600}';
    const text = syntheticReport({ records: 1, reportId: 'utf8' }).toString('utf8');
    // The comment puts the name past the first 512 bytes, which are decoded in one piece.
    const padded = text.replace('<feedback>', `<!-- ${'x'.repeat(600)} -->\n<feedback>`);
    const bytes = Buffer.from(padded.replace('Synthetic Reporter', name));
    for (let sliceBytes = 1; sliceBytes <= 40; sliceBytes += 1) {
      const result = JSON.parse(outcome(bytes, true, sliceBytes)) as {
        summary: { reporter: { orgName: string }; warnings: string[] };
      };
      assert.equal(result.summary.reporter.orgName, name, `slices of ${sliceBytes} bytes`);
      assert.deepEqual(result.summary.warnings, [], `slices of ${sliceBytes} bytes`);
    }
  });

  it('replaces a cut UTF-8 sequence before ASCII', () => {
    const text = syntheticReport({ records: 1, reportId: 'cut-utf8' }).toString('utf8');
    const padded = text.replace('<feedback>', `<!-- ${'x'.repeat(600)} -->\n<feedback>`);
    const [before, after] = padded.split('Synthetic Reporter') as [string, string];
    // A lead byte of a two-byte sequence followed by ASCII, which UTF-8 does not allow.
    const bytes = Buffer.concat([
      Buffer.from(`${before}a`),
      Buffer.from([0xc3]),
      Buffer.from(`bc${after}`),
    ]);
    for (let sliceBytes = 1; sliceBytes <= 40; sliceBytes += 1) {
      const result = JSON.parse(outcome(bytes, true, sliceBytes)) as {
        summary: { reporter: { orgName: string }; warnings: string[] };
      };
      assert.equal(result.summary.reporter.orgName, 'a\ufffdbc', `slices of ${sliceBytes} bytes`);
      assert.deepEqual(
        result.summary.warnings,
        ['The document is not valid UTF-8; each invalid byte was replaced with U+FFFD.'],
        `slices of ${sliceBytes} bytes`,
      );
    }
  });

  it('matches saxes at the edges of its search windows', () => {
    const text = syntheticReport({ records: 40, reportId: 'windows' }).toString('utf8');
    // The scanner starts after the root's start tag and searches 4,096 characters at a time.
    const scanStart = text.indexOf('<feedback>') + '<feedback>'.length;
    for (const edge of [4096, 8192]) {
      for (let at = scanStart + edge - 6; at <= scanStart + edge + 6; at += 1) {
        for (const insert of [']]>', '&amp;', '\u0001', ' a="1"']) {
          const bytes = Buffer.from(text.slice(0, at) + insert + text.slice(at));
          assertSameOutcome(bytes, `${JSON.stringify(insert)} at offset ${at}`);
        }
      }
    }
  });

  it('matches saxes when every record hands over', () => {
    const text = syntheticReport({ records: 300, reportId: 'every' }).toString('utf8');
    const bytes = Buffer.from(text.replaceAll('<record>', '<record a="1">'));
    assertSameOutcome(bytes, 'an attribute on every record');
    assertSameOutcome(bytes, 'an attribute on every record', 1000);
  });

  it('matches saxes on XML 1.1 and a stray wrapper', () => {
    const text = syntheticReport({ records: 2, reportId: 'version' }).toString('utf8');
    assertSameOutcome(Buffer.from(text.replace('version="1.0"', 'version="1.1"')), 'XML 1.1');
    assertSameOutcome(
      Buffer.from(text.replace('<feedback>', '<xs:schema a="1"><feedback>')),
      'stray wrapper',
    );
  });
});
