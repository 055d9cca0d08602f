import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { fuzzOnce, seededRandom } from './report-fuzzing.ts';
import { syntheticReport } from './synthetic-reports.ts';

const FIXTURES = new URL('../../test/fixtures/reports/', import.meta.url);

/** Seeds of different shapes: a real report, a DMARCbis one, and a synthetic one. */
const SEEDS = [
  readFileSync(new URL('e2e-failing-report.xml', FIXTURES)),
  readFileSync(new URL('dmarc-report-viewer/dmarc-reports/gmxnet.xml', FIXTURES)),
  syntheticReport({ records: 12, reportId: 'fuzz' }),
];

// A fixed seed and a fixed number of cases, so that the run is the same every time;
// scripts/fuzz-reports.ts runs the same checks for as long as it is given.
const CASES_PER_SEED = 150;

describe('parser fuzzing', () => {
  for (const [index, seed] of SEEDS.entries()) {
    it(`survives mutations of seed ${index + 1}`, async () => {
      const random = seededRandom(20_261_204 + index);
      for (let round = 0; round < CASES_PER_SEED; round += 1) {
        const finding = await fuzzOnce(seed, random);
        assert.equal(
          finding?.problem ?? null,
          null,
          `case ${round}: ${finding?.input.toString('latin1').slice(0, 400)}`,
        );
      }
    });
  }
});
