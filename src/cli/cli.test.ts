import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { pino } from 'pino';

import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import { createTestAccount, startService, type TestService } from '../../test/support/service.ts';
import { openDatabase } from '../db/database.ts';
import { describeDatabaseFailure } from './database-errors.ts';

const CLI = fileURLToPath(new URL('./main.ts', import.meta.url));
const FAILURE_REPORT = fileURLToPath(
  new URL('../../test/fixtures/reports/mail-auth/arf/003.eml', import.meta.url),
);
const FAILING_REPORT = fileURLToPath(
  new URL('../../test/fixtures/reports/e2e-failing-report.xml', import.meta.url),
);

/**
 * Run the CLI without blocking this process, so that a service started in it can respond, and
 * return its exit code and output.
 */
function runCli(options: { env: Record<string, string>; cwd?: string }, ...args: string[]) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    // tsx is given by URL, because --import resolves a package name from the working directory.
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? '', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr: stderr.trim() }));
  });
}

for (const engine of DATABASE_ENGINES) {
  describe(`CLI database errors on ${engine}`, () => {
    let database: TestDatabase;
    let dataDir = '';
    let accountId = '';

    /** Run the CLI on the test database and return its exit code and output. */
    function cli(...args: string[]) {
      const result = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '',
          DMARCDESK_DATA_DIR: dataDir,
          ...(database.databaseUrl ? { DMARCDESK_DATABASE_URL: database.databaseUrl } : {}),
        },
      });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
    }

    before(async () => {
      database = await openTestDatabase(engine);
      dataDir = mkdtempSync(join(tmpdir(), 'dmarcdesk-cli-'));
      const created = cli('account', 'create', '--name', 'CLI MSP');
      assert.equal(created.status, 0, created.stderr);
      accountId = JSON.parse(created.stdout).account.id;
    });

    after(async () => {
      rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    });

    test('duplicate email names the fix', () => {
      const first = cli('user', 'create', '--account', accountId, '--email', 'ops@cli.example');
      const second = cli('user', 'create', '--account', accountId, '--email', 'ops@cli.example');

      assert.equal(first.status, 0, first.stderr);
      assert.equal(second.status, 1);
      assert.equal(
        second.stderr,
        'dmarcdesk: A user with the email address ops@cli.example already exists. ' +
          'Choose another --email, or sign in as that user.',
      );
    });

    test('malformed account id is explained', () => {
      const result = cli('token', 'create', '--account', 'not-a-uuid');

      assert.equal(result.status, 1);
      assert.match(result.stderr, /--account "not-a-uuid" is not an id: ids are UUIDs/);
      assert.doesNotMatch(result.stderr, /invalid input syntax/);
    });

    test('driver errors become sentences', async () => {
      const db = await openDatabase({
        databaseUrl: database.databaseUrl,
        dataDir: '',
        logger: pino({ level: 'silent' }),
        inMemory: true,
      });
      const failureOf = async (sql: string) => {
        try {
          await db.query(sql);
        } catch (error) {
          return describeDatabaseFailure(error, 'test run');
        }
        return 'no error';
      };
      try {
        await db.query('CREATE TABLE cli_items (name text PRIMARY KEY, n integer)');
        await db.query("INSERT INTO cli_items VALUES ('a', 1)");

        const duplicate = await failureOf("INSERT INTO cli_items VALUES ('a', 2)");
        const malformed = await failureOf("INSERT INTO cli_items VALUES ('b', 'many')");

        assert.match(duplicate ?? '', /^test run: a record with the same value already exists/);
        assert.match(duplicate ?? '', /choose another value\.$/);
        assert.match(malformed ?? '', /^test run: a value is not in the form the database expects/);
        assert.equal(describeDatabaseFailure(new Error('plain'), 'test run'), null);
      } finally {
        await db.query('DROP TABLE IF EXISTS cli_items');
        await db.close();
      }
    });

    test('unknown account is explained', () => {
      const missing = '00000000-0000-4000-8000-000000000000';
      const result = cli('user', 'create', '--account', missing, '--email', 'x@cli.example');

      assert.equal(result.status, 1);
      assert.equal(
        result.stderr,
        `dmarcdesk: No MSSP account with id ${missing} exists. ` +
          'Run "dmarcdesk account list" to see the accounts and their ids.',
      );
      assert.doesNotMatch(result.stderr, /foreign key/);
    });
  });
}

describe('CLI commands that call the service', () => {
  let service: TestService;
  let workDir = '';
  let env: Record<string, string> = {};

  /** Write a copy of the failing fixture report with its own report id, and return its path. */
  function writeReport(name: string, reportId: string): string {
    const xml = readFileSync(FAILING_REPORT, 'utf8').replace(
      /<report_id>[^<]*<\/report_id>/,
      `<report_id>${reportId}</report_id>`,
    );
    const path = join(workDir, name);
    writeFileSync(path, xml);
    return path;
  }

  before(async () => {
    service = await startService(await openTestDatabase('pglite'));
    const { token } = await createTestAccount(service.app);
    workDir = mkdtempSync(join(tmpdir(), 'dmarcdesk-cli-files-'));
    env = { DMARCDESK_URL: service.url, DMARCDESK_TOKEN: token };
  });

  after(async () => {
    rmSync(workDir, { recursive: true, force: true });
    await service?.stop();
  });

  test('report upload sends every file', async () => {
    const first = writeReport('first.xml', 'cli-upload-1');
    const second = writeReport('second.xml', 'cli-upload-2');

    const result = await runCli({ env }, 'report', 'upload', first, second);

    assert.equal(result.status, 0, result.stderr);
    const summary = JSON.parse(result.stdout);
    assert.equal(summary.stored, 2);
    assert.equal(summary.failed, 0);
    assert.deepEqual(
      summary.files.map((outcome: { file: string }) => outcome.file),
      [first, second],
    );
    assert.equal(summary.files[1].result.stored, 1);
  });

  test('report upload reports each failure', async () => {
    const good = writeReport('good.xml', 'cli-upload-3');
    const bad = join(workDir, 'bad.xml');
    writeFileSync(bad, '<feedback>not a report');

    const result = await runCli({ env }, 'report', 'upload', bad, good);

    assert.equal(result.status, 1);
    const summary = JSON.parse(result.stdout);
    assert.equal(summary.failed, 1);
    assert.equal(summary.stored, 1);
    assert.match(summary.files[0].error, /failed with 422/);
    assert.equal(summary.files[1].result.stored, 1);
    assert.match(result.stderr, new RegExp(`^dmarcdesk: ${bad}: POST /reports failed with 422`));
  });

  test('report upload stops on rejected token', async () => {
    const first = writeReport('unsent-1.xml', 'cli-upload-4');
    const second = writeReport('unsent-2.xml', 'cli-upload-5');
    const unauthorized = { ...env, DMARCDESK_TOKEN: 'ddk_not-a-token' };

    const result = await runCli({ env: unauthorized }, 'report', 'upload', first, second);

    assert.equal(result.status, 1);
    const summary = JSON.parse(result.stdout);
    assert.equal(summary.files.length, 1);
    assert.match(summary.files[0].error, /failed with 401/);
    assert.deepEqual(summary.notUploaded, [second]);
  });

  test('relative paths follow INIT_CWD', async () => {
    writeReport('relative.xml', 'cli-upload-6');
    const packageRoot = join(workDir, 'package-root');
    mkdirSync(packageRoot, { recursive: true });

    const fromNpm = await runCli(
      { env: { ...env, INIT_CWD: workDir }, cwd: packageRoot },
      'report',
      'upload',
      'relative.xml',
    );
    const direct = await runCli({ env, cwd: workDir }, 'report', 'upload', './relative.xml');

    assert.equal(fromNpm.status, 0, fromNpm.stderr);
    assert.equal(JSON.parse(fromNpm.stdout).stored, 1);
    assert.equal(direct.status, 0, direct.stderr);
    assert.equal(JSON.parse(direct.stdout).duplicates, 1);
  });

  test('unreadable report files are explained', async () => {
    const missing = await runCli(
      { env: { ...env, INIT_CWD: workDir } },
      'report',
      'upload',
      'no-such.xml',
    );
    const folder = await runCli({ env: { ...env, INIT_CWD: workDir } }, 'report', 'upload', '.');
    const both = await runCli(
      { env: { ...env, INIT_CWD: workDir } },
      'report',
      'upload',
      'no-such.xml',
      writeReport('readable.xml', 'cli-upload-7'),
    );

    assert.equal(missing.status, 2);
    assert.equal(
      missing.stderr,
      `No file at ${join(workDir, 'no-such.xml')}. Check the path. ` +
        `Relative paths are read from ${workDir}.`,
    );
    assert.equal(folder.status, 2);
    assert.equal(folder.stderr, `${workDir} is a folder. Name a report file.`);
    assert.equal(both.status, 1);
    const summary = JSON.parse(both.stdout);
    assert.match(summary.files[0].error, /^No file at /);
    assert.equal(summary.files[1].result.stored, 1);
  });

  test('repeated options are rejected', async () => {
    const cases: [string[], string][] = [
      [
        ['domain', 'add', '--customer', 'c', '--name', 'a1.example', '--name', 'a2.example'],
        '--name is given 2 times; give it once.',
      ],
      [
        ['customer', 'create', '--name=a', '--name', 'b', '--name', 'c'],
        '--name is given 3 times; give it once.',
      ],
      [
        ['account', 'create', '--name', 'MSP', '--halopsa', '--halopsa'],
        '--halopsa is given 2 times; give it once.',
      ],
      [['customer', 'list', '-h', '--help'], '--help is given 2 times; give it once.'],
    ];
    for (const [args, message] of cases) {
      const result = await runCli({ env }, ...args);

      assert.equal(result.status, 2, args.join(' '));
      assert.equal(result.stderr, message);
      assert.equal(result.stdout, '', args.join(' '));
    }
  });

  test('option errors name the option', async () => {
    const help = 'Run dmarcdesk --help for the commands and their options.';
    const cases: [string[], string][] = [
      [['customer', 'list', '--colour'], `Unknown option --colour. ${help}`],
      [['customer', 'list', '--colour=red'], `Unknown option --colour. ${help}`],
      [['account', 'list', '-x'], `Unknown option -x. ${help}`],
      [
        ['domain', 'add', '--customer', 'c', '--name'],
        '--name is missing its value. Give --name NAME.',
      ],
      [
        ['domain', 'add', '--name', '--customer', 'c'],
        '--name is missing its value, because the next word "--customer" starts with "-". ' +
          'Give --name NAME, or --name=VALUE for a value that starts with "-".',
      ],
      [
        ['account', 'create', '--name', 'MSP', '--halopsa=yes'],
        '--halopsa takes no value, but got "yes". Give --halopsa alone.',
      ],
      [
        ['customer', 'list', '--customer', 'c'],
        `customer list does not take --customer. Its options are --url and --token. ${help}`,
      ],
      [
        ['domain', 'add', '--customer', 'c', '--name', 'a.example', '--id', 'd'],
        'domain add does not take --id. ' +
          `Its options are --customer, --name, --status, --url and --token. ${help}`,
      ],
      [
        ['account', 'list', '--url', 'http://127.0.0.1:1'],
        `account list does not take --url. It takes no options. ${help}`,
      ],
      [['customer'], `Unknown command "customer". ${help}`],
    ];
    for (const [args, message] of cases) {
      const result = await runCli({ env }, ...args);

      assert.equal(result.status, 2, args.join(' '));
      assert.equal(result.stderr, message);
      assert.equal(result.stdout, '', args.join(' '));
    }
  });

  test('non-dmarcdesk server is named', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!DOCTYPE html><html><body>Welcome</body></html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const fromEnvironment = await runCli(
        { env: { ...env, DMARCDESK_URL: url } },
        'alert',
        'list',
      );
      const fromOption = await runCli({ env }, 'customer', 'list', '--url', url);

      assert.equal(fromEnvironment.status, 2);
      assert.equal(
        fromEnvironment.stderr,
        `The server at ${url} responded to GET /api/v1/alerts with status 200 and content type ` +
          'text/html, which is not a response of the dmarcdesk API. Check that DMARCDESK_URL is ' +
          'the address of the dmarcdesk service.',
      );
      assert.doesNotMatch(fromEnvironment.stderr, /Unexpected token/);
      assert.equal(fromOption.status, 2);
      assert.match(fromOption.stderr, /Check that --url is the address/);
    } finally {
      server.close();
    }
  });

  test('connection failures name the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const run = (url: string) =>
      runCli({ env: { ...env, DMARCDESK_URL: url } }, 'customer', 'list');

    const blocked = await run('http://127.0.0.1:9');
    const refused = await run(`http://127.0.0.1:${closedPort}`);
    const invalid = await run('127.0.0.1:8080');

    assert.equal(blocked.status, 2);
    assert.equal(
      blocked.stderr,
      'Could not connect to dmarcdesk at http://127.0.0.1:9: fetch blocks port 9 because it ' +
        'belongs to another protocol. Run the service on another port, such as 8080, and set ' +
        'DMARCDESK_URL to match.',
    );
    assert.equal(refused.status, 2);
    assert.equal(
      refused.stderr,
      `Could not connect to dmarcdesk at http://127.0.0.1:${closedPort}: the connection was ` +
        `refused, so nothing is listening on 127.0.0.1:${closedPort}. Start the service ` +
        '(npm start), or check DMARCDESK_URL.',
    );
    assert.equal(invalid.status, 2);
    assert.equal(
      invalid.stderr,
      'DMARCDESK_URL "127.0.0.1:8080" is not an http:// or https:// URL. Give the address of ' +
        'the dmarcdesk service, such as http://127.0.0.1:8080.',
    );
  });

  test('id and field errors name options', async () => {
    const example = 'ids are UUIDs such as 0b6f5e4c-1d2a-4c3b-9f8e-7a6b5c4d3e2f.';
    const idCases: [string[], string][] = [
      [
        ['domain', 'add', '--customer', 'x', '--name', 'a.example'],
        `--customer "x" is not an id: ${example} Run "dmarcdesk customer list" to find the id.`,
      ],
      [
        ['domain', 'list', '--customer', 'x'],
        `--customer "x" is not an id: ${example} Run "dmarcdesk customer list" to find the id.`,
      ],
      [
        ['domain', 'status', '--id', 'x', '--status', 'active'],
        `--id "x" is not an id: ${example} Run "dmarcdesk domain list" to find the id.`,
      ],
      [
        ['domain', 'remove', '--id', 'x'],
        `--id "x" is not an id: ${example} Run "dmarcdesk domain list" to find the id.`,
      ],
      [
        ['threshold', 'set', '--domain', 'x', '--max-failed', '3'],
        `--domain "x" is not an id: ${example} Run "dmarcdesk domain list" to find the id.`,
      ],
    ];
    for (const [args, message] of idCases) {
      const result = await runCli({ env }, ...args);

      assert.equal(result.status, 1, args.join(' '));
      assert.equal(result.stderr, `dmarcdesk: ${message}`);
      assert.doesNotMatch(result.stderr, /Field "id"/);
    }

    const created = await runCli({ env }, 'customer', 'create', '--name', 'Field Errors Ltd');
    assert.equal(created.status, 0, created.stderr);
    const customerId = JSON.parse(created.stdout).id;
    const missingDomain = '00000000-0000-4000-8000-000000000000';
    const fieldCases: [string[], RegExp][] = [
      [
        ['domain', 'add', '--customer', customerId, '--name', 'a..example'],
        /: --name "a\.\.example" /,
      ],
      [
        ['domain', 'add', '--customer', customerId, '--name', 'b.example', '--status', 'weird'],
        /: --status must be one of active, pending, paused \(got "weird"\)\.$/,
      ],
      [
        ['threshold', 'set', '--domain', missingDomain, '--max-failed', '99999999999'],
        /: --max-failed must be at most 1000000000 \(got 99999999999\)\.$/,
      ],
    ];
    for (const [args, pattern] of fieldCases) {
      const result = await runCli({ env }, ...args);

      assert.equal(result.status, 2, args.join(' '));
      assert.match(result.stderr, pattern);
      assert.doesNotMatch(result.stderr, /Field "/);
    }
  });

  test('help lists every upload type', async () => {
    const help = await runCli({ env }, '--help');
    const upload = help.stdout.slice(help.stdout.indexOf('report upload'));

    assert.equal(help.status, 0, help.stderr);
    assert.match(upload, /aggregate reports \(XML, gzip or zip\)/);
    assert.match(upload, /mails that carry\s+them \(\.eml\)/);
    assert.match(upload, /failure reports \(ARF mails\)/);
  });

  test('report upload takes failure reports', async () => {
    const result = await runCli({ env }, 'report', 'upload', FAILURE_REPORT);

    assert.equal(result.status, 0, result.stderr);
    const outcome = JSON.parse(result.stdout);
    assert.equal(outcome.stored, 1);
    assert.equal(outcome.documents[0].kind, 'failure');
  });

  test('extra arguments are rejected', async () => {
    const cases = [
      ['domain', 'add', '--customer', 'c', '--name', 'a1.example', 'a2.example'],
      ['customer', 'list', 'all'],
      ['alert', 'list', 'recent'],
      ['account', 'list', 'extra'],
    ];
    for (const args of cases) {
      const result = await runCli({ env }, ...args);
      const command = args
        .filter((word) => !word.startsWith('-'))
        .slice(0, 2)
        .join(' ');
      const extra = args.at(-1)!;

      assert.equal(result.status, 2, args.join(' '));
      assert.match(result.stderr, new RegExp(`^${command} takes no arguments`), args.join(' '));
      assert.match(result.stderr, new RegExp(`"${extra}"`), args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
    }
  });
});
