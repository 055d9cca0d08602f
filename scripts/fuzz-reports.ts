// Fuzzes the aggregate report parsers and the container layer for a while, with the checks of
// src/reports/report-fuzzing.test.ts, seeded by every aggregate XML fixture.
//   FUZZ_SECONDS  how long to run (default 60)
//   FUZZ_SEED     the first seed (default from the current time), printed so a run can be repeated
// Each finding is written to a folder under the system temporary folder, named on the output.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { fuzzOnce, seededRandom } from '../src/reports/report-fuzzing.ts';
import { syntheticReport } from '../src/reports/synthetic-reports.ts';

const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const firstSeed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000_000);

function fixtureXml(): Buffer[] {
  const root = new URL('../test/fixtures/reports/', import.meta.url).pathname;
  const files: Buffer[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.xml')) files.push(readFileSync(path));
    }
  };
  walk(root);
  return files;
}

const seeds = [...fixtureXml(), syntheticReport({ records: 40, reportId: 'fuzz' })];
const random = seededRandom(firstSeed);
const deadline = Date.now() + seconds * 1000;
let cases = 0;
let findings = 0;
let findingsDir: string | null = null;
while (Date.now() < deadline) {
  const seed = seeds[Math.floor(random() * seeds.length)] as Buffer;
  const finding = await fuzzOnce(seed, random);
  cases += 1;
  if (finding === null) continue;
  findings += 1;
  findingsDir ??= mkdtempSync(join(tmpdir(), 'dmarcdesk-fuzz-'));
  writeFileSync(join(findingsDir, `finding-${findings}.bin`), finding.input);
  process.stdout.write(`finding ${findings} at case ${cases}: ${finding.problem}\n`);
}
process.stdout.write(
  `${cases} cases from seed ${firstSeed} over ${seeds.length} inputs in ${seconds} s: ` +
    `${findings} findings${findingsDir ? ` in ${findingsDir}` : ''}\n`,
);
process.exitCode = findings > 0 ? 1 : 0;
