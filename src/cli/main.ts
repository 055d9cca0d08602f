import { randomBytes } from 'node:crypto';
import { createApiToken } from '../auth/api-tokens.ts';
import { createUser } from '../auth/users.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { openDatabase } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createLogger } from '../logging.ts';
import { createAccount, getAccount, listAccounts } from '../platform/accounts.ts';
import { SecretBox } from '../integration/secret-box.ts';
import { resolveSecretKey } from '../integration/secret-key.ts';
import { reencryptSecrets } from '../integration/secret-rotation.ts';
import { ApiClient, CliError } from './api-client.ts';
import { parseCommandLine, type Values } from './arguments.ts';
import { describeDatabaseFailure, requireUuid } from './database-errors.ts';
import { resolveReportFiles, uploadReport, uploadReports } from './report-upload.ts';

const USAGE = `Usage: dmarcdesk <command> [options]

Commands that open the database directly (stop the service first when it runs on PGlite):
  account create --name NAME [--halopsa]   create an MSSP account and print its first API token
  account list                             list MSSP accounts
  token create --account ID [--name NAME]  create another API token for an account
  user create --account ID --email EMAIL [--role ROLE] [--name NAME]
                                           create a user who signs in with a generated password;
                                           ROLE is mssp_owner (default), mssp_admin, mssp_analyst or viewer
  secrets reencrypt                        re-encrypt stored secrets with DMARCDESK_SECRET_KEY,
                                           after moving the old key to DMARCDESK_PREVIOUS_SECRET_KEYS

Commands that call a running service (--url and --token, or DMARCDESK_URL and DMARCDESK_TOKEN):
  customer list                            list customer accounts
  customer create --name NAME              create a customer account
  domain list [--customer ID]              list domains
  domain add --customer ID --name DOMAIN [--status active|pending|paused]
  domain status --id ID --status STATUS    change a domain's status
  domain remove --id ID                    stop monitoring a domain
  threshold set --domain ID --max-failed N alert when more than N messages fail DMARC in a report
  report upload FILE...                    upload report files, each recognised by its content:
                                           aggregate reports (XML, gzip or zip), mails that carry
                                           them (.eml) and failure reports (ARF mails). With
                                           several files, print a result per file and exit 1
                                           when any upload failed. Relative paths are read from
                                           the directory npm run started in (INIT_CWD), or else
                                           from the current directory
  alert list                               list recent alerts
  halopsa status                           show the HaloPSA integration summary
`;

function required(values: Values, name: keyof Values): string {
  const value = values[name];
  if (typeof value !== 'string' || value.length === 0)
    throw new CliError(`The option --${String(name)} is required for this command.`);
  return value;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function withDatabase<T>(
  work: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>,
): Promise<T> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    logger,
  });
  try {
    await migrate(db, logger);
    return await work(db);
  } finally {
    await db.close();
  }
}

async function run(argv: string[]): Promise<void> {
  const { command, values, operands } = parseCommandLine(argv);
  if (!command) {
    process.stdout.write(USAGE);
    return;
  }
  const api = () =>
    new ApiClient(
      values.url ?? process.env.DMARCDESK_URL,
      values.token ?? process.env.DMARCDESK_TOKEN,
      values.url !== undefined ? '--url' : 'DMARCDESK_URL',
    );

  switch (command) {
    case 'account create':
      return withDatabase(async (db) => {
        const account = await createAccount(db, {
          name: required(values, 'name'),
          halopsaIntegrationEnabled: values.halopsa ?? false,
        });
        const token = await createApiToken(db, account.id, 'first token');
        print({
          account,
          apiToken: token.token,
          note: 'The API token is shown once; store it now.',
        });
      });
    case 'account list':
      return withDatabase(async (db) => print({ accounts: await listAccounts(db) }));
    case 'token create':
      return withDatabase(async (db) => {
        const accountId = requireUuid(required(values, 'account'), 'account');
        await getAccount(db, accountId);
        const token = await createApiToken(db, accountId, values.name ?? 'cli token');
        print({
          tokenId: token.id,
          apiToken: token.token,
          note: 'The API token is shown once; store it now.',
        });
      });
    case 'secrets reencrypt':
      return withDatabase(async (db) => {
        const config = loadConfig(process.env);
        const logger = createLogger('warn');
        const secrets = new SecretBox(
          resolveSecretKey(config.secretKey, config.dataDir, logger),
          config.previousSecretKeys,
        );
        print(await reencryptSecrets(db, secrets));
      });
    case 'user create':
      return withDatabase(async (db) => {
        const password = randomBytes(18).toString('base64url');
        const email = required(values, 'email');
        const accountId = requireUuid(required(values, 'account'), 'account');
        await getAccount(db, accountId);
        const user = await createUser(db, accountId, {
          email,
          displayName: values.name ?? email.split('@')[0]!,
          password,
          roleId: values.role ?? 'mssp_owner',
        });
        print({ user, password, note: 'The password is shown once; sign in and change it.' });
      });
    case 'customer list':
      return print(await api().get('/customers'));
    case 'customer create':
      return print(
        await api().send(
          'POST',
          '/customers',
          { name: required(values, 'name') },
          { name: 'name' },
        ),
      );
    case 'domain list':
      return print(
        await api().get(
          values.customer !== undefined
            ? `/domains?customerId=${requireUuid(values.customer, 'customer', 'customer list')}`
            : '/domains',
        ),
      );
    case 'domain add': {
      const customerId = requireUuid(required(values, 'customer'), 'customer', 'customer list');
      const body = {
        name: required(values, 'name'),
        ...(values.status !== undefined ? { status: values.status } : {}),
      };
      return print(
        await api().send('POST', `/customers/${customerId}/domains`, body, {
          name: 'name',
          status: 'status',
        }),
      );
    }
    case 'domain status': {
      const domainId = requireUuid(required(values, 'id'), 'id', 'domain list');
      const body = { status: required(values, 'status') };
      return print(await api().send('PATCH', `/domains/${domainId}`, body, { status: 'status' }));
    }
    case 'domain remove': {
      const domainId = requireUuid(required(values, 'id'), 'id', 'domain list');
      await api().send('DELETE', `/domains/${domainId}`);
      return print({ removed: domainId });
    }
    case 'threshold set': {
      const domainId = requireUuid(required(values, 'domain'), 'domain', 'domain list');
      const maxFailed = Number(required(values, 'max-failed'));
      if (!Number.isInteger(maxFailed) || maxFailed < 0)
        throw new CliError('--max-failed must be a whole number, 0 or more.');
      return print(
        await api().send(
          'PUT',
          `/domains/${domainId}/threshold`,
          { maxFailedMessages: maxFailed },
          { maxFailedMessages: 'max-failed' },
        ),
      );
    }
    case 'report upload': {
      if (operands.length === 0)
        throw new CliError('Missing report file. Usage: dmarcdesk report upload FILE...');
      const files = resolveReportFiles(operands);
      if (files.length === 1) return print(await uploadReport(api(), files[0]!));
      const summary = await uploadReports(api(), files);
      for (const outcome of summary.files) {
        if ('error' in outcome)
          process.stderr.write(`dmarcdesk: ${outcome.file}: ${outcome.error}\n`);
      }
      print(summary);
      if (summary.failed > 0) process.exitCode = 1;
      return;
    }
    case 'alert list':
      return print(await api().get('/alerts'));
    case 'halopsa status':
      return print(await api().get('/integrations/halopsa'));
    default:
      throw new Error(`The command "${command}" is listed in arguments.ts but has no handler.`);
  }
}

const argv = process.argv.slice(2);
run(argv).catch((error: unknown) => {
  if (error instanceof CliError || error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  const command = argv
    .filter((word) => !word.startsWith('-'))
    .slice(0, 2)
    .join(' ');
  const described = describeDatabaseFailure(error, command);
  if (described !== null) {
    process.stderr.write(`dmarcdesk: ${described}\n`);
    process.exit(1);
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`dmarcdesk: ${message}\n`);
  process.exit(1);
});
