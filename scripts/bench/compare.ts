// Parses and stores the corpus with dmarcdesk and with the peers Debian packages, each as whole
// processes pinned to one core, and returns one table row per tool and corpus set.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { build } from 'esbuild';

import type { CorpusSet } from './corpus.ts';
import { timeLoop, timeProcess, type ProcessFigures } from './timing.ts';

export interface ComparisonRow {
  set: string;
  tool: string;
  work: 'floor' | 'parse' | 'parse and store';
  records: number;
  figures: ProcessFigures | null;
  note: string;
}

export interface CompareOptions {
  workDir: string;
  /** PostgreSQL server URL without a database, such as postgres://postgres@127.0.0.1:5432. */
  postgresUrl: string | null;
  /**
   * Records that dmarc_receive is given per set, in whole mails and at least one mail, since it
   * syncs SQLite to disk about 13 times per record and would take hours on the whole corpus.
   */
  mailDmarcRecords: number;
  timeoutSeconds: number;
}

const CLI_SOURCE = new URL('./dmarcdesk-cli.ts', import.meta.url).pathname;
// Inside node_modules, so that the bundle's imports of packages resolve from the repository.
const BUNDLE_DIR = new URL('../../node_modules/.cache/dmarcdesk-bench/', import.meta.url).pathname;
const CLI_BUNDLE = join(BUNDLE_DIR, 'cli.mjs');
const PEER_MEMORY_LIMIT = 8 * 1024 ** 3;

function available(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

function psql(serverUrl: string, sql: string): void {
  const result = spawnSync('psql', [`${serverUrl}/postgres`, '-qAtc', sql], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`psql failed on ${sql}: ${result.stderr}`);
}

function freshDatabase(serverUrl: string, name: string): string {
  psql(serverUrl, `DROP DATABASE IF EXISTS ${name}`);
  psql(serverUrl, `CREATE DATABASE ${name}`);
  return `${serverUrl}/${name}`;
}

function countRecords(stdout: string): number | null {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return (JSON.parse(line) as { records?: number }).records ?? null;
  } catch {
    return null;
  }
}

/** Marks figures as failed when dmarcdesk read another number of records than the set holds. */
export function checkCount(figures: ProcessFigures, expected: number): ProcessFigures {
  const counted = countRecords(figures.stdout);
  if (figures.failure === null && counted !== expected) {
    figures.failure = `read ${counted} records, expected ${expected}`;
  }
  return figures;
}

function dmartsConfig(dir: string, database: string): void {
  // IMAP settings must be present even when reading files; they are never used.
  const lines = [
    '$debug = 0;',
    '$delete_reports = 0;',
    "$dbtype = 'Pg';",
    `$dbname = '${database}';`,
    "$dbuser = 'postgres';",
    "$dbpass = '';",
    "$dbhost = '127.0.0.1';",
    "$dbport = '5432';",
    '$maxsize_xml = 50000;',
    '$compress_xml = 0;',
    '$delete_failed = 0;',
    "$imapserver = '127.0.0.1';",
    "$imapuser = 'unused';",
    "$imappass = 'unused';",
    "$imapport = '143';",
    "$imapssl = '0';",
    "$imaptls = '0';",
    "$tlsverify = '0';",
    "$imapignoreerror = '0';",
    "$imapreadfolder = 'unused';",
  ];
  writeFileSync(join(dir, 'dmarcts-report-parser.conf'), `${lines.join('\n')}\n`);
}

/**
 * Bundles the timed dmarcdesk process with esbuild and returns the path of the bundle. The timed
 * process runs as plain JavaScript, as a deployment built with a bundler would, because
 * compiling TypeScript through tsx adds about a second to every start.
 */
export async function buildCli(): Promise<string> {
  // Splitting keeps the database modules, which parsing alone never loads, in chunks of their own.
  await build({
    entryPoints: { cli: CLI_SOURCE },
    outdir: BUNDLE_DIR,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  // migrate.ts reads its SQL files beside its own module, which is a chunk once built.
  const migrations = new URL('../../src/db/migrations/', import.meta.url);
  cpSync(migrations, join(BUNDLE_DIR, 'migrations'), { recursive: true });
  return CLI_BUNDLE;
}

/** Runs every tool on every set. A tool that is not installed gets a row naming its package. */
export async function compareTools(
  sets: CorpusSet[],
  options: CompareOptions,
): Promise<ComparisonRow[]> {
  const rows: ComparisonRow[] = [];
  const CLI = await buildCli();
  const NODE = [process.execPath];
  const tsxStart = timeProcess([process.execPath, '--import', 'tsx', CLI_SOURCE, 'noop'], {
    timeoutSeconds: 60,
  });
  rows.push({
    set: '-',
    tool: 'dmarcdesk through tsx (start-up only)',
    work: 'floor',
    records: 0,
    figures: tsxStart,
    note: 'what `node --import tsx` adds; not in the rows below',
  });
  const baseTimeout = { timeoutSeconds: options.timeoutSeconds };

  const noop = timeProcess([...NODE, CLI, 'noop'], baseTimeout);
  rows.push({
    set: '-',
    tool: 'dmarcdesk bundle (start-up only)',
    work: 'floor',
    records: 0,
    figures: noop,
    note: 'included in every dmarcdesk row',
  });

  for (const set of sets) {
    const records = set.reports * set.recordsPerReport;
    // A peer that needs far longer than dmarcdesk on the large set is cut off at half the time.
    const timeout =
      set.recordsPerReport > 100_000 ? { timeoutSeconds: options.timeoutSeconds / 2 } : baseTimeout;
    const peerLimits = { ...timeout, memoryLimitBytes: PEER_MEMORY_LIMIT };
    const add = (
      tool: string,
      work: ComparisonRow['work'],
      figures: ProcessFigures | null,
      note = '',
      count = records,
    ) => rows.push({ set: set.name, tool, work, records: count, figures, note });
    process.stderr.write(`set ${set.name}: ${set.reports} x ${set.recordsPerReport} records\n`);

    add(
      'zcat',
      'floor',
      timeProcess(['sh', '-c', 'zcat "$@" > /dev/null', 'zcat', ...set.gzipFiles], timeout),
      'decompression only',
    );
    if (available('xmllint')) {
      add(
        'xmllint --stream',
        'floor',
        timeProcess(['xmllint', '--stream', '--noout', ...set.xmlFiles], timeout),
        'well-formedness only',
      );
    } else add('xmllint --stream', 'floor', null, 'not installed (apt-get install libxml2-utils)');

    add(
      'dmarcdesk',
      'parse',
      checkCount(timeProcess([...NODE, CLI, 'parse', ...set.xmlFiles], timeout), records),
      'XML files',
    );
    add(
      'dmarcdesk',
      'parse',
      checkCount(timeProcess([...NODE, CLI, 'parse', ...set.gzipFiles], timeout), records),
      'gzip files',
    );

    if (available('dmarc-cat')) {
      add(
        'dmarc-cat -N -j 1',
        'parse',
        timeLoop(['dmarc-cat', '-N', '-j', '1'], set.xmlFiles, peerLimits),
        'XML files, one process each, prints a summary',
      );
    } else add('dmarc-cat', 'parse', null, 'not installed (apt-get install dmarc-cat)');

    const pgliteDir = join(options.workDir, `pglite-${set.name}`);
    add(
      'dmarcdesk on PGlite',
      'parse and store',
      checkCount(
        timeProcess([...NODE, CLI, 'store', 'pglite', pgliteDir, ...set.gzipFiles], timeout),
        records,
      ),
      'gzip files, one transaction per report',
    );
    if (options.postgresUrl) {
      const url = freshDatabase(options.postgresUrl, `dmarcdesk_bench_${set.name}`);
      add(
        'dmarcdesk on PostgreSQL',
        'parse and store',
        checkCount(
          timeProcess([...NODE, CLI, 'store', 'postgres', url, ...set.gzipFiles], timeout),
          records,
        ),
        'gzip files; the server runs on the other core',
      );
      psql(options.postgresUrl, `DROP DATABASE IF EXISTS dmarcdesk_bench_${set.name}`);
    }

    if (available('dmarcts-report-parser') && options.postgresUrl) {
      const dir = join(options.workDir, `dmarcts-${set.name}`);
      mkdirSync(dir, { recursive: true });
      const database = `dmarcts_bench_${set.name}`;
      freshDatabase(options.postgresUrl, database);
      dmartsConfig(dir, database);
      add(
        'dmarcts-report-parser -x',
        'parse and store',
        timeProcess(['dmarcts-report-parser', '-x', ...set.xmlFiles], { ...peerLimits, cwd: dir }),
        'XML files, PostgreSQL through DBD::Pg',
      );
      psql(options.postgresUrl, `DROP DATABASE IF EXISTS ${database}`);
    } else add('dmarcts-report-parser', 'parse and store', null, 'not installed, or no PostgreSQL');

    if (available('dmarc_receive')) {
      const dir = join(options.workDir, `mail-dmarc-${set.name}`);
      mkdirSync(dir, { recursive: true });
      const iniSource = '/usr/share/perl5/auto/share/dist/Mail-DMARC/mail-dmarc.ini';
      spawnSync('cp', [iniSource, join(dir, 'mail-dmarc.ini')]);
      const env = { ...process.env, MAIL_DMARC_CONFIG_FILE: join(dir, 'mail-dmarc.ini') };
      const mails = Math.max(1, Math.floor(options.mailDmarcRecords / set.recordsPerReport));
      const files = set.mailFiles.slice(0, mails);

      const note =
        files.length < set.reports
          ? `first ${files.length} mails, one process each, SQLite`
          : 'mails, one process each, SQLite';
      add(
        'dmarc_receive --file',
        'parse and store',
        timeLoop(['dmarc_receive', '--file'], files, { ...peerLimits, cwd: dir, env }),
        note,
        files.length * set.recordsPerReport,
      );
    } else
      add(
        'dmarc_receive',
        'parse and store',
        null,
        'not installed (apt-get install libmail-dmarc-perl)',
      );
  }
  return rows;
}
