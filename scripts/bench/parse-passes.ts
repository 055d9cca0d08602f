// Parses the same report files several times in one process and prints the time of each pass,
// to tell the cost of V8's warm-up (the first pass) from the steady cost (the later passes). The
// files are read into memory first, so the passes time only unwrapping and parsing. Give it a
// folder of XML or gzip files, such as the small set's xml/ or gzip/ folder that parse-rows.ts
// keeps when DMARCDESK_BENCH_CORPUS_DIR is set. To time the code as the benchmark rows run it,
// bundle it and pin it to one core, so that V8's compiling takes turns with the parse:
//   npx esbuild scripts/bench/parse-passes.ts --bundle --platform=node --format=esm \
//     --packages=external --outfile=node_modules/.cache/parse-passes.mjs
//   taskset -c 0 node node_modules/.cache/parse-passes.mjs FOLDER [PASSES]
// `node --import tsx scripts/bench/parse-passes.ts FOLDER` runs it without the bundle.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseAggregateStream } from '../../src/reports/aggregate-parser.ts';
import { streamDocuments } from '../../src/reports/containers.ts';

const [folder, passArgument] = process.argv.slice(2);
if (folder === undefined) {
  throw new Error('The folder argument is missing. Give a folder of XML or gzip report files.');
}
const passes = Number(passArgument ?? 3);
const inputs = readdirSync(folder)
  .sort()
  .map((name) => readFileSync(join(folder, name)));

for (let pass = 1; pass <= passes; pass += 1) {
  const startCpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let records = 0;
  const sink = { header: () => {}, records: (batch: unknown[]) => void (records += batch.length) };
  for (const input of inputs) {
    for await (const document of streamDocuments(input)) {
      await parseAggregateStream(document.chunks, sink);
    }
  }
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const cpu = process.cpuUsage(startCpu);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  process.stdout.write(
    `pass ${pass}: ${inputs.length} files, ${records} records, ` +
      `${wallMs.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU\n`,
  );
}
