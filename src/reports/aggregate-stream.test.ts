import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  parseAggregateReport,
  parseAggregateStream,
  type AggregateRecord,
  type AggregateReportHeader,
} from './aggregate-parser.ts';
import { ReportInputError } from './report-input-error.ts';
import { syntheticReport } from './synthetic-reports.ts';

/** Builds a sink that records what it was given, and in which order. */
function recordingSink() {
  const events: string[] = [];
  const records: AggregateRecord[] = [];
  const batchSizes: number[] = [];
  let header: AggregateReportHeader | null = null;
  return {
    events,
    records,
    batchSizes,
    get header() {
      return header;
    },
    sink: {
      header(value: AggregateReportHeader) {
        events.push('header');
        header = value;
      },
      async records(batch: AggregateRecord[]) {
        events.push(`batch ${batch.length}`);
        batchSizes.push(batch.length);
        records.push(...batch);
      },
    },
  };
}

function* slices(bytes: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += size) {
    yield bytes.subarray(offset, offset + size);
  }
}

describe('parseAggregateStream', () => {
  it('returns what parseAggregateReport returns', async () => {
    const xml = syntheticReport({ records: 1234, reportId: 'same' });
    const whole = parseAggregateReport(xml);
    const recorder = recordingSink();
    const summary = await parseAggregateStream(slices(xml, 1000), recorder.sink);

    assert.deepEqual(recorder.records, whole.records);
    const { records: _records, ...wholeSummary } = whole;
    const { recordCount, messageCount, ...streamSummary } = summary;
    assert.deepEqual(streamSummary, wholeSummary);
    assert.equal(recordCount, 1234);
    assert.equal(
      messageCount,
      whole.records.reduce((sum, record) => sum + record.count, 0),
    );
    assert.equal(recorder.header?.reportId, 'same');
  });

  it('hands over the header before any record', async () => {
    const recorder = recordingSink();
    await parseAggregateStream([syntheticReport({ records: 10 })], recorder.sink);
    assert.deepEqual(recorder.events, ['header', 'batch 10']);
  });

  it('keeps batches near batchSize', async () => {
    const recorder = recordingSink();
    const xml = syntheticReport({ records: 5000 });
    await parseAggregateStream(slices(xml, 4096), recorder.sink, { batchSize: 300 });
    assert.equal(recorder.records.length, 5000);
    // A batch is sent once a write leaves batchSize records waiting; one write of 4 KiB adds
    // fewer than 20 of these records.
    for (const size of recorder.batchSizes) assert.ok(size <= 320, `a batch of ${size}`);
    assert.ok(recorder.batchSizes.length >= 15, `${recorder.batchSizes.length} batches`);
  });

  it('stores records before the source ends', async () => {
    const xml = syntheticReport({ records: 3000 });
    const order: string[] = [];
    async function* source(): AsyncGenerator<Buffer> {
      for (const slice of slices(xml, 16 * 1024)) {
        order.push('read');
        yield slice;
      }
      order.push('source ended');
    }
    await parseAggregateStream(source(), {
      header: () => {},
      records: () => {
        order.push('batch');
      },
    });
    const firstBatch = order.indexOf('batch');
    assert.ok(firstBatch >= 0);
    assert.ok(firstBatch < order.indexOf('source ended'));
    assert.ok(order.slice(firstBatch).includes('read'), 'no read after the first batch');
  });

  it('holds records of a report that puts them first', async () => {
    const xml = Buffer.from(`<feedback>
      <record><row><source_ip>192.0.2.7</source_ip><count>3</count>
        <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>
        </policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers>
      </record>
      <report_metadata><org_name>Late Header</org_name><report_id>late-1</report_id>
        <date_range><begin>1727740800</begin><end>1727827199</end></date_range></report_metadata>
      <policy_published><domain>example.com</domain><p>none</p></policy_published>
    </feedback>`);
    const recorder = recordingSink();
    const summary = await parseAggregateStream([xml], recorder.sink);
    assert.deepEqual(recorder.events, ['header', 'batch 1']);
    assert.equal(summary.reporter.orgName, 'Late Header');
    assert.equal(recorder.records[0]?.sourceIp, '192.0.2.7');
  });

  it('rejects a truncated stream after records', async () => {
    const xml = syntheticReport({ records: 2000 });
    const recorder = recordingSink();
    await assert.rejects(
      parseAggregateStream(slices(xml.subarray(0, xml.length - 500), 8192), recorder.sink, {
        batchSize: 100,
      }),
      (error: unknown) => {
        assert.ok(error instanceof ReportInputError);
        assert.equal(error.code, 'not_well_formed');
        assert.match(error.message, /truncated/);
        return true;
      },
    );
    assert.ok(recorder.records.length > 1000, `${recorder.records.length} records before`);
  });

  it('stops at maxDocumentBytes while streaming', async () => {
    const xml = syntheticReport({ records: 500 });
    await assert.rejects(
      parseAggregateStream(slices(xml, 1024), recordingSink().sink, { maxDocumentBytes: 20_000 }),
      (error: unknown) => {
        assert.ok(error instanceof ReportInputError);
        assert.equal(error.code, 'too_large');
        assert.match(error.message, /more than 19\.5 KiB/);
        return true;
      },
    );
  });

  it('decodes UTF-8 split across chunks', async () => {
    const xml = syntheticReport({ records: 2, orgName: 'Pörtschach Mäil ☃' });
    for (const size of [1, 2, 3, 5, 7]) {
      const summary = await parseAggregateStream(slices(xml, size), recordingSink().sink);
      assert.equal(summary.reporter.orgName, 'Pörtschach Mäil ☃', `slices of ${size}`);
      assert.deepEqual(summary.warnings, [], `slices of ${size}`);
    }
  });

  it('orders document warnings the same for any slicing', async () => {
    // Whitespace before the declaration, an invalid byte in a record and a record warning:
    // the fuzzer found their order following the slice size.
    const text = `\n${syntheticReport({ records: 3 }).toString('latin1')}`
      .replace('<result>pass</result>', '<result>p\u00ffss</result>')
      .replace('<count>', '<count>x');
    const xml = Buffer.from(text, 'latin1');
    const expected = parseAggregateReport(xml).warnings;
    assert.equal(
      expected[0],
      'The document is not valid UTF-8; each invalid byte was replaced with U+FFFD.',
    );
    assert.equal(
      expected[1],
      'The document has whitespace before its XML declaration, which was removed.',
    );
    for (const size of [1, 5, 64, 4096]) {
      const summary = await parseAggregateStream(slices(xml, size), recordingSink().sink);
      assert.deepEqual(summary.warnings, expected, `slices of ${size}`);
    }
  });

  it('warns of invalid UTF-8 once', async () => {
    const xml = syntheticReport({ records: 2, orgName: 'Bad\u00ffByte' });
    const broken = Buffer.from(
      xml.toString('latin1').replace('Bad\u00c3\u00bfByte', 'Bad\u00ffByte'),
      'latin1',
    );
    const summary = await parseAggregateStream(slices(broken, 3), recordingSink().sink);
    assert.deepEqual(summary.warnings, [
      'The document is not valid UTF-8; each invalid byte was replaced with U+FFFD.',
    ]);
    assert.equal(summary.reporter.orgName, 'Bad\ufffdByte');
  });
});
