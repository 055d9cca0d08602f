// The process the benchmark times for dmarcdesk, run once per corpus set:
//   parse FILE...                     unwrap and parse each report, counting records; a
//                                     file ending in .xml is streamed from disk
//   store pglite DATA_DIR FILE...     parse and store each report through the ingest service
//   store postgres URL FILE...
// It prints one JSON line with what it read, so the caller can check the counts.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

import { parseAggregateStream } from '../../src/reports/aggregate-parser.ts';
import { streamDocuments } from '../../src/reports/containers.ts';
import { BENCH_CONTAINER_LIMITS, BENCH_PARSE_LIMITS } from './limits.ts';

const [mode, ...rest] = process.argv.slice(2);

const CHUNK_BYTES = 1024 * 1024;

/**
 * Reads a file in chunks of up to 1 MiB. The reads are synchronous, because createReadStream
 * cost the small set of 2,000 files about 0.45 s more CPU (0.2 ms per file, GNU time, pinned
 * to one core), which is as much as parsing their 40,000 records takes.
 */
function* readChunks(file: string): Generator<Buffer> {
  const descriptor = openSync(file, 'r');
  try {
    // One byte more than the file, so that a small file is read in one call and its end seen.
    const chunkBytes = Math.min(fstatSync(descriptor).size + 1, CHUNK_BYTES);
    for (;;) {
      const chunk = Buffer.allocUnsafe(chunkBytes);
      const length = readSync(descriptor, chunk, 0, chunkBytes, null);
      if (length === 0) return;
      yield chunk.subarray(0, length);
    }
  } finally {
    closeSync(descriptor);
  }
}

async function parseFiles(files: string[]): Promise<void> {
  let records = 0;
  let reports = 0;
  for (const file of files) {
    if (file.endsWith('.xml')) {
      // Plain XML is streamed from the file, as a watched folder could, instead of read whole.
      await parseAggregateStream(
        readChunks(file),
        { header: () => {}, records: (batch) => void (records += batch.length) },
        BENCH_PARSE_LIMITS,
      );
      reports += 1;
      continue;
    }
    const input = readFileSync(file);
    for await (const document of streamDocuments(input, BENCH_CONTAINER_LIMITS)) {
      await parseAggregateStream(
        document.chunks,
        { header: () => {}, records: (batch) => void (records += batch.length) },
        BENCH_PARSE_LIMITS,
      );
      reports += 1;
    }
  }
  process.stdout.write(`${JSON.stringify({ reports, records })}\n`);
}

async function storeFiles(engine: string, target: string, files: string[]): Promise<void> {
  // Imported here, so that parsing alone does not load PGlite and the database modules.
  const { openDatabase } = await import('../../src/db/database.ts');
  const { migrate } = await import('../../src/db/migrate.ts');
  const { createAccount } = await import('../../src/platform/accounts.ts');
  const { ReportIngestService } = await import('../../src/reports/ingest.ts');
  const { pino } = await import('pino');
  const silent = pino({ level: 'silent' });
  const db = await openDatabase({
    databaseUrl: engine === 'postgres' ? target : null,
    dataDir: engine === 'pglite' ? target : '',
    logger: silent,
  });
  try {
    await migrate(db, silent);
    const account = await createAccount(db, { name: 'Bench MSP' });
    const ingest = new ReportIngestService(db, silent, {
      limits: BENCH_CONTAINER_LIMITS,
      parseLimits: BENCH_PARSE_LIMITS,
    });
    let stored = 0;
    for (const file of files) {
      const result = await ingest.receive(account.id, await readFile(file), {
        via: 'folder',
        origin: file,
      });
      if (result.stored !== 1) {
        throw new Error(`${file} was not stored: ${JSON.stringify(result)}`);
      }
      stored += result.stored;
    }
    const [row] = await db.query<{ records: number }>(
      'SELECT count(*)::int AS records FROM aggregate_records',
    );
    process.stdout.write(`${JSON.stringify({ reports: stored, records: row?.records })}\n`);
  } finally {
    await db.close();
  }
}

if (mode === 'parse') await parseFiles(rest);
else if (mode === 'store') await storeFiles(rest[0] ?? '', rest[1] ?? '', rest.slice(2));
else if (mode === 'noop') process.stdout.write('{}\n');
else throw new Error(`Unknown mode ${mode}; use parse, store or noop.`);
