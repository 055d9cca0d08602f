import { z } from 'zod';

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
  /** Largest accepted report upload, in bytes. */
  maxUploadBytes: number;
  /** Whether this process runs the job workers (licence counts, tickets). */
  runWorkers: boolean;
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
  DMARCDESK_MAX_UPLOAD_BYTES: integerString(1024, 1024 * 1024 * 1024).default(25 * 1024 * 1024),
  DMARCDESK_RUN_WORKERS: booleanString.default(true),
});

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
    .filter((name) => !known.has(name))
    .map((name) => `${name} is not a known setting; check its spelling against the README`);
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    problems.push(
      ...parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`),
    );
  }
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
    maxUploadBytes: values.DMARCDESK_MAX_UPLOAD_BYTES,
    runWorkers: values.DMARCDESK_RUN_WORKERS,
  };
}
