import { isIP, isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { describeIssues } from '../errors/zod-issues.ts';

/**
 * The service configuration, read once at start from environment variables.
 * Every variable is documented in the README under "Configuration".
 */
export interface Config {
  /** PostgreSQL connection string; null selects the embedded PGlite database. */
  databaseUrl: string | null;
  /** Folder for the PGlite database, the generated secret key and other local state. */
  dataDir: string;
  host: string;
  port: number;
  /** Base URL used in links placed in HaloPSA tickets. */
  publicUrl: string;
  /** 32-byte AES-256-GCM key for secrets at rest, or null to use the key file in dataDir. */
  secretKey: Buffer | null;
  /** Keys that encrypted secrets before the current one; they still decrypt. */
  previousSecretKeys: Buffer[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** host:port pairs of HaloPSA instances that may be called over plain http or on a private address. */
  halopsaAllowedHosts: string[];
  /** Timeout for one HaloPSA request, in milliseconds. */
  halopsaTimeoutMs: number;
  /**
   * Seconds to wait, after a HaloPSA write whose outcome is unknown (a timeout), before reading
   * the record back to repair it.
   */
  halopsaWriteSettleSeconds: number;
  /** The settings of alert tickets and their notes in HaloPSA. */
  halopsaTickets: HalopsaTicketConfig;
  /** The request budget of each HaloPSA instance, shared by every process on the database. */
  halopsaRateBudget: HalopsaRateBudgetConfig;
  /** Seconds a job waits before it looks again at a connection that needs attention. */
  halopsaAttentionRecheckSeconds: number;
  /** Days that the HaloPSA call log and the integration history are kept. */
  integrationHistoryDays: number;
  /** Bearer token of GET /metrics; null turns the route off. */
  metricsToken: string | null;
  /** The settings that group alerts into incidents and pace the notes on their tickets. */
  incidents: IncidentConfig;
  /** host:port pairs of OpenID Connect providers that may be called over plain http or on a private address. */
  oidcAllowedHosts: string[];
  /** Largest accepted report upload, in bytes. */
  maxUploadBytes: number;
  /** Whether this process runs the job workers (licence counts, tickets). */
  runWorkers: boolean;
  /** Whether the mail of each failure report is stored as received (it contains personal data). */
  keepFailureMessages: boolean;
  /** How many bytes of a rejected file or mail are kept for inspection. */
  rejectedKeepBytes: number;
  /** Largest mail accepted by SMTP, read from IMAP or from the watched folder, in bytes. */
  maxMailBytes: number;
  /** DNS servers for monitoring lookups, as `ip` or `ip:port`; null uses the system's resolvers. */
  dnsServers: string[] | null;
  /** Time to wait for one DNS answer, in milliseconds. */
  dnsTimeoutMs: number;
  /** Minimum time from the lookup that first shows a record change to the one that confirms it, in seconds. */
  dnsConfirmDelaySeconds: number;
  /** Seconds between the sweeps that queue the domains due for a DNS check. */
  dnsSweepSeconds: number;
  /**
   * Days an observation of an unchanged record is kept; 0 keeps every observation. Baselines,
   * changes and failed lookups are kept until their domain is deleted.
   */
  dnsUnchangedDays: number;
  /** Minutes between scheduled reconciliations of HaloPSA licences and mapped records. */
  reconcileIntervalMinutes: number;
  /**
   * The form of receiving addresses, `<localPart>+<token>@<domain>`, or null when
   * DMARCDESK_RECEIVING_DOMAIN is unset. The SMTP receiver accepts mail for them, and the IMAP
   * poller ties mails to accounts by them.
   */
  receivingAddress: { domain: string; localPart: string } | null;
  /** The SMTP receiver, or null when DMARCDESK_SMTP_PORT is unset. */
  smtp: SmtpReceiverConfig | null;
  /** The IMAP mailbox that is polled, or null when DMARCDESK_IMAP_URL is unset. */
  imap: ImapPollerConfig | null;
  /** The watched folder, or null when DMARCDESK_WATCH_DIR is unset. */
  watch: FolderWatchConfig | null;
}

export interface HalopsaTicketConfig {
  /** Action outcome of the notes added to tickets; 7 is "Internal Note" on stock HaloPSA. */
  noteOutcomeId: number;
  /** Request source id set as `source` on new tickets; null leaves HaloPSA's default. */
  sourceId: number | null;
  /** Priority id per alert kind; a kind without one gets the ticket type's default. */
  priorityIds: Partial<Record<'dns' | 'threshold' | 'forensic', number>>;
}

export interface HalopsaRateBudgetConfig {
  /** Requests per window and instance. */
  limit: number;
  windowSeconds: number;
  /** Slots that licence counts and the wizard leave to tickets and notes. */
  standardReserve: number;
  /** Slots that resyncs and reconciliation leave to every other call. */
  backgroundReserve: number;
  /** Shortest pause after a 429 without Retry-After, in seconds. */
  minPauseSeconds: number;
  /** Maximum wait of one call for a slot before its job is deferred, in milliseconds. */
  maxWaitMs: number;
}

export interface IncidentConfig {
  /** Minimum wall time between two notes on one incident's ticket, in seconds. */
  noteIntervalSeconds: number;
  /** A firing this soon (seconds) after its incident resolved reopens it. */
  reopenWithinSeconds: number;
  /** Seconds without a failure report after which a domain's forensic incident resolves. */
  forensicClearSeconds: number;
}

export interface SmtpReceiverConfig {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Paths of the PEM certificate and key offered with STARTTLS; null offers no STARTTLS. */
  tls: { certPath: string; keyPath: string } | null;
}

export interface ImapPollerConfig {
  host: string;
  port: number;
  /** true for implicit TLS (imaps://), false for STARTTLS or plain text (imap://). */
  secure: boolean;
  /** With imap://, whether the connection fails when the server offers no STARTTLS. */
  requireTls: boolean;
  /** Path of a PEM CA certificate to trust, for a server with a private certificate. */
  caPath: string | null;
  user: string;
  password: string;
  mailbox: string;
  processedFolder: string;
  failedFolder: string;
  /** The account every mail belongs to; null ties each mail by its receiving address. */
  accountId: string | null;
  pollSeconds: number;
}

export interface FolderWatchConfig {
  path: string;
  accountId: string;
  pollSeconds: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], {
    error: 'must be one of true, false, 1, 0, yes, no',
  })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const integerString = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: 'must be a whole number' })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );

const secretKeyString = z.string().transform((value, context) => {
  const key = Buffer.from(value, 'base64');
  if (key.length !== 32) {
    context.addIssue({
      code: 'custom',
      message: `must be 32 bytes encoded in base64 (got ${key.length} bytes); generate one with: openssl rand -base64 32`,
    });
    return z.NEVER;
  }
  return key;
});

const secretKeyList = z.string().transform((value, context) => {
  const keys: Buffer[] = [];
  value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
    .forEach((entry, index) => {
      const key = Buffer.from(entry, 'base64');
      if (key.length === 32) keys.push(key);
      else
        context.addIssue({
          code: 'custom',
          message: `entry ${index + 1} must be 32 bytes encoded in base64 (got ${key.length} bytes)`,
        });
    });
  return keys;
});

const hostPortList = z.string().transform((value, context) => {
  const entries = value
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry.length > 0);
  for (const entry of entries) {
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):\d{1,5}$/.test(entry)) {
      context.addIssue({
        code: 'custom',
        message: `"${entry}" is not a host:port pair such as 127.0.0.1:8090`,
      });
    }
  }
  return entries;
});

const imapUrl = z.string().transform((value, context) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    url = new URL('invalid:');
  }
  if ((url.protocol !== 'imap:' && url.protocol !== 'imaps:') || !url.hostname || !url.username) {
    context.addIssue({
      code: 'custom',
      message:
        'must be an IMAP URL with user and password, such as imaps://user:password@imap.example.com/INBOX',
    });
    return z.NEVER;
  }
  return url;
});

const dnsServerList = z.string().transform((value, context) => {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  for (const entry of entries) {
    const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(entry);
    const withPort = /^([^:]+):(\d{1,5})$/.exec(entry);
    const [address, port] = bracketed
      ? [bracketed[1]!, bracketed[2]]
      : withPort
        ? [withPort[1]!, withPort[2]]
        : [entry, undefined];
    const validPort = port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
    const validAddress = bracketed
      ? isIPv6(address)
      : withPort
        ? isIPv4(address)
        : isIP(address) !== 0;
    if (!validAddress || !validPort) {
      context.addIssue({
        code: 'custom',
        message: `"${entry}" is not a DNS server address such as 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53`,
      });
    }
  }
  return entries;
});

const accountId = z.uuid({ error: 'must be the UUID of an MSSP account' });

const PRIORITY_KINDS = ['dns', 'threshold', 'forensic'] as const;

const priorityList = z.string().transform((value, context) => {
  const priorities: HalopsaTicketConfig['priorityIds'] = {};
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  for (const entry of entries) {
    const match = /^(dns|threshold|forensic)=(\d{1,9})$/.exec(entry);
    if (!match) {
      context.addIssue({
        code: 'custom',
        message: `"${entry}" is not <alert kind>=<priority id> with a kind of ${PRIORITY_KINDS.join(', ')}, such as threshold=2`,
      });
      continue;
    }
    priorities[match[1] as (typeof PRIORITY_KINDS)[number]] = Number(match[2]);
  }
  return priorities;
});

const environmentSchema = z.object({
  DMARCDESK_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { error: 'must start with postgres:// or postgresql://' })
    .optional(),
  DMARCDESK_DATA_DIR: z.string().min(1).default('./data'),
  DMARCDESK_HOST: z.string().min(1).default('127.0.0.1'),
  DMARCDESK_PORT: integerString(0, 65535).default(8080),
  DMARCDESK_PUBLIC_URL: z
    .url({ error: 'must be an absolute URL such as https://dmarc.example.com' })
    .optional(),
  DMARCDESK_SECRET_KEY: secretKeyString.optional(),
  DMARCDESK_PREVIOUS_SECRET_KEYS: secretKeyList.default([]),
  DMARCDESK_LOG_LEVEL: z
    .enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  DMARCDESK_HALOPSA_ALLOWED_HOSTS: hostPortList.default([]),
  DMARCDESK_HALOPSA_TIMEOUT_MS: integerString(1000, 600_000).default(30_000),
  DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS: integerString(1, 3600).default(120),
  DMARCDESK_HALOPSA_NOTE_OUTCOME_ID: integerString(1, 2_147_483_647).default(7),
  DMARCDESK_HALOPSA_RATE_LIMIT: integerString(1, 100_000).default(270),
  DMARCDESK_HALOPSA_RATE_WINDOW_SECONDS: integerString(1, 86_400).default(300),
  DMARCDESK_HALOPSA_RATE_RESERVE_STANDARD: integerString(0, 100_000).default(20),
  DMARCDESK_HALOPSA_RATE_RESERVE_BACKGROUND: integerString(0, 100_000).default(60),
  DMARCDESK_HALOPSA_RATE_PAUSE_SECONDS: integerString(0, 86_400).default(60),
  DMARCDESK_HALOPSA_RATE_WAIT_MS: integerString(0, 600_000).default(10_000),
  DMARCDESK_HALOPSA_ATTENTION_RECHECK_SECONDS: integerString(1, 86_400).default(60),
  DMARCDESK_INTEGRATION_HISTORY_DAYS: integerString(1, 3650).default(90),
  // A refine rather than min(16), because loadConfig words size issues itself and would drop
  // the advice on how to generate a token.
  DMARCDESK_METRICS_TOKEN: z
    .string()
    .refine((token) => token.length >= 16, {
      error: 'must be at least 16 characters; generate one with: openssl rand -hex 32',
    })
    .optional(),
  DMARCDESK_HALOPSA_TICKET_SOURCE_ID: integerString(0, 2_147_483_647).optional(),
  DMARCDESK_HALOPSA_TICKET_PRIORITIES: priorityList.default({}),
  DMARCDESK_INCIDENT_NOTE_INTERVAL_MINUTES: integerString(0, 10_080).default(60),
  DMARCDESK_INCIDENT_REOPEN_HOURS: integerString(0, 720).default(24),
  DMARCDESK_FORENSIC_CLEAR_HOURS: integerString(1, 2160).default(24),
  DMARCDESK_OIDC_ALLOWED_HOSTS: hostPortList.default([]),
  DMARCDESK_MAX_UPLOAD_BYTES: integerString(1024, 1024 * 1024 * 1024).default(25 * 1024 * 1024),
  DMARCDESK_RUN_WORKERS: booleanString.default(true),
  DMARCDESK_KEEP_FAILURE_MESSAGES: booleanString.default(false),
  DMARCDESK_REJECTED_KEEP_BYTES: integerString(0, 64 * 1024 * 1024).default(1024 * 1024),
  DMARCDESK_MAX_MAIL_BYTES: integerString(1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  DMARCDESK_SMTP_HOST: z.string().min(1).default('127.0.0.1'),
  DMARCDESK_SMTP_PORT: integerString(0, 65535).optional(),
  DMARCDESK_RECEIVING_DOMAIN: z
    .string()
    .regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, { error: 'must be a domain such as dmarc.example.net' })
    .optional(),
  DMARCDESK_RECEIVING_LOCAL_PART: z
    .string()
    .regex(/^[a-z0-9._-]{1,32}$/i, {
      error: 'must be letters, digits, dots, hyphens or underscores',
    })
    .default('reports'),
  DMARCDESK_SMTP_TLS_CERT: z.string().min(1).optional(),
  DMARCDESK_SMTP_TLS_KEY: z.string().min(1).optional(),
  DMARCDESK_IMAP_URL: imapUrl.optional(),
  DMARCDESK_IMAP_REQUIRE_TLS: booleanString.default(true),
  DMARCDESK_IMAP_TLS_CA: z.string().min(1).optional(),
  DMARCDESK_IMAP_ACCOUNT_ID: accountId.optional(),
  DMARCDESK_IMAP_PROCESSED_FOLDER: z.string().min(1).default('dmarcdesk-processed'),
  DMARCDESK_IMAP_FAILED_FOLDER: z.string().min(1).default('dmarcdesk-failed'),
  DMARCDESK_IMAP_POLL_SECONDS: integerString(10, 86_400).default(300),
  DMARCDESK_WATCH_DIR: z.string().min(1).optional(),
  DMARCDESK_WATCH_ACCOUNT_ID: accountId.optional(),
  DMARCDESK_WATCH_POLL_SECONDS: integerString(1, 86_400).default(30),
  DMARCDESK_DNS_SERVERS: dnsServerList.optional(),
  DMARCDESK_DNS_TIMEOUT_MS: integerString(50, 30_000).default(2000),
  DMARCDESK_DNS_CONFIRM_DELAY_SECONDS: integerString(0, 86_400).default(600),
  DMARCDESK_DNS_SWEEP_SECONDS: integerString(1, 3600).default(60),
  DMARCDESK_DNS_UNCHANGED_DAYS: integerString(0, 3650).default(90),
  DMARCDESK_RECONCILE_INTERVAL_MINUTES: integerString(1, 1440)
    .refine(
      (minutes) => (minutes < 60 ? 60 % minutes === 0 : minutes % 60 === 0 && 1440 % minutes === 0),
      {
        error:
          'must divide an hour (1 to 30 minutes) or be whole hours that divide a day (60, 120, 180, 240, 360, 480, 720 or 1440)',
      },
    )
    .default(60),
});

/**
 * DMARCDESK_* variables that the service does not read but other tools of this project do:
 * the CLI's service address and token, and the test and benchmark settings.
 */
function isSettingOfAnotherTool(name: string): boolean {
  return (
    name === 'DMARCDESK_URL' ||
    name === 'DMARCDESK_TOKEN' ||
    name.startsWith('DMARCDESK_TEST_') ||
    name.startsWith('DMARCDESK_BENCH_')
  );
}

/** The configuration is invalid; the message lists every problem, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parse the configuration from environment variables. Only DMARCDESK_* variables are read.
 * Throws ConfigError listing every invalid variable at once.
 */
export function loadConfig(
  environment: NodeJS.ProcessEnv | Record<string, string | undefined>,
): Config {
  const present = Object.fromEntries(
    Object.entries(environment).filter(
      ([name, value]) => name.startsWith('DMARCDESK_') && value !== undefined && value !== '',
    ),
  );
  const known = new Set(Object.keys(environmentSchema.shape));
  const problems = Object.keys(present)
    .filter((name) => !known.has(name) && !isSettingOfAnotherTool(name))
    .map((name) => `${name} is not a known setting; check its spelling against the README`);
  const parsed = environmentSchema.safeParse(present, { reportInput: true });
  if (!parsed.success) {
    problems.push(
      ...describeIssues(environmentSchema, present, parsed.error.issues).map(
        (problem) => `${problem.path} ${problem.message}`,
      ),
    );
  }
  if (parsed.success)
    problems.push(...receiverProblems(parsed.data), ...rateBudgetProblems(parsed.data));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const values = parsed.data;
  const publicUrl =
    values.DMARCDESK_PUBLIC_URL ?? `http://${values.DMARCDESK_HOST}:${values.DMARCDESK_PORT}`;
  return {
    databaseUrl: values.DMARCDESK_DATABASE_URL ?? null,
    dataDir: values.DMARCDESK_DATA_DIR,
    host: values.DMARCDESK_HOST,
    port: values.DMARCDESK_PORT,
    publicUrl: publicUrl.replace(/\/+$/, ''),
    secretKey: values.DMARCDESK_SECRET_KEY ?? null,
    previousSecretKeys: values.DMARCDESK_PREVIOUS_SECRET_KEYS,
    logLevel: values.DMARCDESK_LOG_LEVEL,
    halopsaAllowedHosts: values.DMARCDESK_HALOPSA_ALLOWED_HOSTS,
    halopsaTimeoutMs: values.DMARCDESK_HALOPSA_TIMEOUT_MS,
    halopsaWriteSettleSeconds: values.DMARCDESK_HALOPSA_WRITE_SETTLE_SECONDS,
    halopsaTickets: {
      noteOutcomeId: values.DMARCDESK_HALOPSA_NOTE_OUTCOME_ID,
      sourceId: values.DMARCDESK_HALOPSA_TICKET_SOURCE_ID ?? null,
      priorityIds: values.DMARCDESK_HALOPSA_TICKET_PRIORITIES,
    },
    halopsaRateBudget: {
      limit: values.DMARCDESK_HALOPSA_RATE_LIMIT,
      windowSeconds: values.DMARCDESK_HALOPSA_RATE_WINDOW_SECONDS,
      standardReserve: values.DMARCDESK_HALOPSA_RATE_RESERVE_STANDARD,
      backgroundReserve: values.DMARCDESK_HALOPSA_RATE_RESERVE_BACKGROUND,
      minPauseSeconds: values.DMARCDESK_HALOPSA_RATE_PAUSE_SECONDS,
      maxWaitMs: values.DMARCDESK_HALOPSA_RATE_WAIT_MS,
    },
    halopsaAttentionRecheckSeconds: values.DMARCDESK_HALOPSA_ATTENTION_RECHECK_SECONDS,
    integrationHistoryDays: values.DMARCDESK_INTEGRATION_HISTORY_DAYS,
    metricsToken: values.DMARCDESK_METRICS_TOKEN ?? null,
    incidents: {
      noteIntervalSeconds: values.DMARCDESK_INCIDENT_NOTE_INTERVAL_MINUTES * 60,
      reopenWithinSeconds: values.DMARCDESK_INCIDENT_REOPEN_HOURS * 3600,
      forensicClearSeconds: values.DMARCDESK_FORENSIC_CLEAR_HOURS * 3600,
    },
    oidcAllowedHosts: values.DMARCDESK_OIDC_ALLOWED_HOSTS,
    maxUploadBytes: values.DMARCDESK_MAX_UPLOAD_BYTES,
    runWorkers: values.DMARCDESK_RUN_WORKERS,
    keepFailureMessages: values.DMARCDESK_KEEP_FAILURE_MESSAGES,
    rejectedKeepBytes: values.DMARCDESK_REJECTED_KEEP_BYTES,
    maxMailBytes: values.DMARCDESK_MAX_MAIL_BYTES,
    dnsServers:
      values.DMARCDESK_DNS_SERVERS && values.DMARCDESK_DNS_SERVERS.length > 0
        ? values.DMARCDESK_DNS_SERVERS
        : null,
    dnsTimeoutMs: values.DMARCDESK_DNS_TIMEOUT_MS,
    dnsConfirmDelaySeconds: values.DMARCDESK_DNS_CONFIRM_DELAY_SECONDS,
    dnsSweepSeconds: values.DMARCDESK_DNS_SWEEP_SECONDS,
    dnsUnchangedDays: values.DMARCDESK_DNS_UNCHANGED_DAYS,
    reconcileIntervalMinutes: values.DMARCDESK_RECONCILE_INTERVAL_MINUTES,
    ...receiverConfigs(values),
  };
}

type EnvironmentValues = z.infer<typeof environmentSchema>;

/** Returns the IANA port of IMAP: 993 with implicit TLS, 143 otherwise. */
function defaultImapPort(secure: boolean): number {
  return secure ? 993 : 143;
}

/** Settings that are valid alone but not together, such as an SMTP port without a domain. */
function rateBudgetProblems(values: EnvironmentValues): string[] {
  const limit = values.DMARCDESK_HALOPSA_RATE_LIMIT;
  const standard = values.DMARCDESK_HALOPSA_RATE_RESERVE_STANDARD;
  const background = values.DMARCDESK_HALOPSA_RATE_RESERVE_BACKGROUND;
  if (standard <= background && background < limit) return [];
  return [
    `DMARCDESK_HALOPSA_RATE_RESERVE_STANDARD (${standard}) must be at most DMARCDESK_HALOPSA_RATE_RESERVE_BACKGROUND (${background}), which must be less than DMARCDESK_HALOPSA_RATE_LIMIT (${limit}); lower the reserves or raise the limit.`,
  ];
}

function receiverProblems(values: EnvironmentValues): string[] {
  const problems: string[] = [];
  if (values.DMARCDESK_SMTP_PORT !== undefined && !values.DMARCDESK_RECEIVING_DOMAIN) {
    problems.push(
      'DMARCDESK_RECEIVING_DOMAIN must be set when DMARCDESK_SMTP_PORT is: the receiver accepts mail only for reports+<token>@<that domain>',
    );
  }
  if (
    values.DMARCDESK_IMAP_URL &&
    !values.DMARCDESK_IMAP_ACCOUNT_ID &&
    !values.DMARCDESK_RECEIVING_DOMAIN
  ) {
    problems.push(
      'DMARCDESK_IMAP_ACCOUNT_ID or DMARCDESK_RECEIVING_DOMAIN must be set when DMARCDESK_IMAP_URL is, to tell which account each mail belongs to',
    );
  }
  if (!values.DMARCDESK_SMTP_TLS_CERT !== !values.DMARCDESK_SMTP_TLS_KEY) {
    problems.push('DMARCDESK_SMTP_TLS_CERT and DMARCDESK_SMTP_TLS_KEY must be set together');
  }
  if (values.DMARCDESK_WATCH_DIR && !values.DMARCDESK_WATCH_ACCOUNT_ID) {
    problems.push(
      'DMARCDESK_WATCH_ACCOUNT_ID must be set when DMARCDESK_WATCH_DIR is: files carry no address that names their account',
    );
  }
  return problems;
}

function receiverConfigs(
  values: EnvironmentValues,
): Pick<Config, 'receivingAddress' | 'smtp' | 'imap' | 'watch'> {
  const receivingAddress = values.DMARCDESK_RECEIVING_DOMAIN
    ? {
        domain: values.DMARCDESK_RECEIVING_DOMAIN.toLowerCase(),
        localPart: values.DMARCDESK_RECEIVING_LOCAL_PART.toLowerCase(),
      }
    : null;
  const certPath = values.DMARCDESK_SMTP_TLS_CERT;
  const keyPath = values.DMARCDESK_SMTP_TLS_KEY;
  const smtp: SmtpReceiverConfig | null =
    values.DMARCDESK_SMTP_PORT !== undefined && receivingAddress
      ? {
          host: values.DMARCDESK_SMTP_HOST,
          port: values.DMARCDESK_SMTP_PORT,
          tls: certPath && keyPath ? { certPath, keyPath } : null,
        }
      : null;

  const url = values.DMARCDESK_IMAP_URL;
  const secure = url?.protocol === 'imaps:';
  const imap: ImapPollerConfig | null = url
    ? {
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port ? Number(url.port) : defaultImapPort(secure),
        secure,
        requireTls: values.DMARCDESK_IMAP_REQUIRE_TLS,
        caPath: values.DMARCDESK_IMAP_TLS_CA ?? null,
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        mailbox: decodeURIComponent(url.pathname.replace(/^\/+/, '')) || 'INBOX',
        processedFolder: values.DMARCDESK_IMAP_PROCESSED_FOLDER,
        failedFolder: values.DMARCDESK_IMAP_FAILED_FOLDER,
        accountId: values.DMARCDESK_IMAP_ACCOUNT_ID ?? null,
        pollSeconds: values.DMARCDESK_IMAP_POLL_SECONDS,
      }
    : null;

  const watch: FolderWatchConfig | null =
    values.DMARCDESK_WATCH_DIR && values.DMARCDESK_WATCH_ACCOUNT_ID
      ? {
          path: values.DMARCDESK_WATCH_DIR,
          accountId: values.DMARCDESK_WATCH_ACCOUNT_ID,
          pollSeconds: values.DMARCDESK_WATCH_POLL_SECONDS,
        }
      : null;
  return { receivingAddress, smtp, imap, watch };
}
