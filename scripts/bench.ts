// Benchmarks of dmarcdesk's report pipeline against the floors and peers that Debian packages,
// then the HTTP upload and HaloPSA sync, printed as Markdown tables. Run with `npm run bench`;
// docs/benchmarks.md lists what to install first. Settings, all optional:
//   DMARCDESK_BENCH_SMALL_REPORTS    reports of 20 records in the small set (default 2000)
//   DMARCDESK_BENCH_MEDIUM_RECORDS   records of each of the 5 medium reports (default 5000)
//   DMARCDESK_BENCH_LARGE_RECORDS    records of the one large report (default 500000)
//   DMARCDESK_BENCH_SKIP_POSTGRES=1  leaves out every PostgreSQL row
//   DMARCDESK_BENCH_SKIP_SERVICE=1   leaves out the HTTP and HaloPSA rows
//   DMARCDESK_BENCH_KEEP=1           keeps the corpus folder and prints its path
// PostgreSQL is the server of DMARCDESK_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432).
// Every server started listens on 127.0.0.1 and is stopped at the end.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { parseAggregateReport } from '../src/reports/aggregate-parser.ts';
import { compareTools, type ComparisonRow } from './bench/compare.ts';
import { writeCorpus } from './bench/corpus.ts';
import { benchService } from './bench/service.ts';

const env = process.env;
const smallReports = Number(env.DMARCDESK_BENCH_SMALL_REPORTS ?? 2000);
const mediumRecords = Number(env.DMARCDESK_BENCH_MEDIUM_RECORDS ?? 5000);
const largeRecords = Number(env.DMARCDESK_BENCH_LARGE_RECORDS ?? 500_000);
const skipPostgres = env.DMARCDESK_BENCH_SKIP_POSTGRES === '1';
/** Returns the server of the test database URL, without the database. */
function postgresServerUrl(): string {
  const url = new URL(env.DMARCDESK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  url.pathname = '';
  return url.toString().replace(/\/$/, '');
}
const postgresServer = postgresServerUrl();

function fixtureReports(): Buffer[] {
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
  return files.filter((bytes) => {
    try {
      parseAggregateReport(bytes);
      return true;
    } catch {
      return false;
    }
  });
}

function benchFixtures(): string {
  const reports = fixtureReports();
  const rounds = 20;
  const started = performance.now();
  for (let round = 0; round < rounds; round += 1) {
    for (const bytes of reports) parseAggregateReport(bytes);
  }
  const seconds = (performance.now() - started) / 1000;
  return `parse ${reports.length} real fixture reports x ${rounds} in one process: ${Math.round((reports.length * rounds) / seconds)} reports/s`;
}

function formatRow(row: ComparisonRow): string {
  const figures = row.figures;
  if (figures === null)
    return `| ${row.set} | ${row.tool} | ${row.work} | - | - | - | - | ${row.note} |`;
  if (figures.failure !== null) {
    const note = `did not finish: ${figures.failure}. ${row.note}`;
    const wall = Number.isNaN(figures.wallSeconds) ? '-' : figures.wallSeconds.toFixed(2);
    const rss = figures.maxRssMiB > 0 ? figures.maxRssMiB.toFixed(0) : '-';
    return `| ${row.set} | ${row.tool} | ${row.work} | ${wall} | - | - | ${rss} | ${note} |`;
  }
  const perSecond =
    row.records > 0 ? Math.round(row.records / figures.wallSeconds).toLocaleString('en') : '-';
  return (
    `| ${row.set} | ${row.tool} | ${row.work} | ${figures.wallSeconds.toFixed(2)} | ` +
    `${figures.cpuSeconds.toFixed(2)} | ${perSecond} | ${figures.maxRssMiB.toFixed(0)} | ${row.note} |`
  );
}

const workDir = mkdtempSync(join(tmpdir(), 'dmarcdesk-bench-'));
try {
  process.stderr.write(`writing the corpus in ${workDir}\n`);
  const sets = await writeCorpus(workDir, [
    { name: 'small', reports: smallReports, recordsPerReport: 20 },
    { name: 'medium', reports: 5, recordsPerReport: mediumRecords },
    { name: 'large', reports: 1, recordsPerReport: largeRecords },
  ]);
  for (const set of sets) {
    process.stderr.write(`${set.name}: ${(set.xmlBytes / 1024 / 1024).toFixed(1)} MiB of XML\n`);
  }
  const rows = await compareTools(sets, {
    workDir,
    postgresUrl: skipPostgres ? null : postgresServer,
    mailDmarcRecords: 1000,
    timeoutSeconds: 600,
  });

  const fixtures = benchFixtures();
  const service: string[] = [];
  if (env.DMARCDESK_BENCH_SKIP_SERVICE !== '1') {
    const record = (name: string, value: string) => {
      service.push(`| ${name} | ${value} |`);
      process.stderr.write(`${name}: ${value}\n`);
    };
    await benchService('pglite', record);
    if (!skipPostgres) await benchService('postgres', record);
  }

  const out = process.stdout;
  out.write('\n| set | tool | work | wall s | CPU s | records/s | peak RSS MiB | note |\n');
  out.write('| --- | --- | --- | --- | --- | --- | --- | --- |\n');
  for (const row of rows) out.write(`${formatRow(row)}\n`);
  out.write(`\n${fixtures}\n`);
  for (const set of sets) {
    out.write(
      `\n${set.name}: ${set.reports} reports of ${set.recordsPerReport} records, ${(set.xmlBytes / 1024 / 1024).toFixed(1)} MiB of XML`,
    );
  }
  out.write('\n');
  if (service.length > 0)
    out.write(`\n| benchmark | result |\n| --- | --- |\n${service.join('\n')}\n`);
} finally {
  if (env.DMARCDESK_BENCH_KEEP === '1') process.stderr.write(`corpus kept in ${workDir}\n`);
  else rmSync(workDir, { recursive: true, force: true });
}
