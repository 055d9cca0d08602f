import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';

import { ExtractionBudget } from './container-budget.ts';
import { gunzipAtOnce, inflateZlibAtOnce } from './container-inflate-at-once.ts';
import { gunzipStream, inflateZlibStream } from './container-inflate.ts';
import { DEFAULT_CONTAINER_LIMITS, type ContainerLimits } from './containers.ts';
import { mutate, seededRandom } from './report-fuzzing.ts';
import { syntheticReport } from './synthetic-reports.ts';

type Outcome = { bytes: Buffer } | { error: string };

async function collect(chunks: AsyncIterable<Buffer>): Promise<Outcome> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of chunks) parts.push(chunk);
  } catch (error) {
    return { error: String(error) };
  }
  return { bytes: Buffer.concat(parts) };
}

/**
 * Checks the contract of the at-once functions against their streaming twins on one input:
 * output only where the stream yields the same bytes without an error and counts the same, and
 * otherwise null with the budget untouched.
 */
async function assertSameAsStream(
  format: 'gzip' | 'zlib',
  input: Buffer,
  limits: Partial<ContainerLimits> = {},
): Promise<void> {
  const resolved = { ...DEFAULT_CONTAINER_LIMITS, ...limits };
  const atOnceBudget = new ExtractionBudget(resolved);
  const streamBudget = new ExtractionBudget(resolved);
  const atOnce =
    format === 'gzip'
      ? gunzipAtOnce(input, 'the upload', atOnceBudget)
      : inflateZlibAtOnce(input, 'the upload', atOnceBudget);
  const streamed = await collect(
    format === 'gzip'
      ? gunzipStream(input, 'the upload', streamBudget)
      : inflateZlibStream(input, 'the upload', streamBudget),
  );
  if (atOnce === null) {
    assert.equal(atOnceBudget.expandedBytes, 0);
    assert.equal(atOnceBudget.files, 0);
    return;
  }
  assert.ok(
    'bytes' in streamed,
    `the stream failed where the at-once path did not: ${'error' in streamed ? streamed.error : ''}`,
  );
  assert.deepEqual(atOnce, streamed.bytes);
  assert.equal(atOnceBudget.expandedBytes, streamBudget.expandedBytes);
  assert.equal(atOnceBudget.files, streamBudget.files);
}

describe('gunzipAtOnce and inflateZlibAtOnce', () => {
  const report = syntheticReport({ records: 40, reportId: 'at-once' });
  const half = Math.floor(report.length / 2);
  const gzipInputs = [
    zlib.gzipSync(report),
    Buffer.concat([zlib.gzipSync(report.subarray(0, half)), zlib.gzipSync(report.subarray(half))]),
    Buffer.concat([zlib.gzipSync(report), Buffer.from('\r\n')]),
  ];

  it('match the stream on valid input', async () => {
    for (const input of gzipInputs) {
      assert.notEqual(
        gunzipAtOnce(input, 'the upload', new ExtractionBudget(DEFAULT_CONTAINER_LIMITS)),
        null,
      );
      await assertSameAsStream('gzip', input);
    }
    await assertSameAsStream('zlib', zlib.deflateSync(report));
  });

  it('match the stream near the limits', async () => {
    const input = gzipInputs[1] as Buffer;
    for (const maxExpandedBytes of [report.length - 1, report.length, report.length + 1]) {
      await assertSameAsStream('gzip', input, { maxExpandedBytes });
    }
    for (const maxFiles of [0, 1, 2]) await assertSameAsStream('gzip', input, { maxFiles });
  });

  it('match the stream on mutated input', async () => {
    const random = seededRandom(20261205);
    for (let round = 0; round < 600; round += 1) {
      const source = gzipInputs[round % gzipInputs.length] as Buffer;
      await assertSameAsStream('gzip', mutate(source, random));
    }
    const deflated = zlib.deflateSync(report);
    for (let round = 0; round < 200; round += 1) {
      await assertSameAsStream('zlib', mutate(deflated, random));
    }
  });
});
