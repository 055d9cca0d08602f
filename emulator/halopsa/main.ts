// Starts the HaloPSA emulator from the command line:
//   npm run emulator -- --port 8090 [--host 127.0.0.1] [--token-lifetime 3600]
//                       [--rate-limit 300/300|off] [--clients 40]
import { parseArgs } from 'node:util';

import { DEMO_APPLICATION } from './auth.ts';
import type { RateLimitSetting } from './config.ts';
import { startEmulator } from './server.ts';

const USAGE = `Usage: npm run emulator -- [options]

  --port <n>             TCP port to listen on (default 8090; 0 picks a free port)
  --host <address>       interface to listen on (default 127.0.0.1)
  --token-lifetime <s>   access-token lifetime in seconds (default 3600)
  --rate-limit <n>/<s>   at most n requests per rolling s seconds (default 300/300), or "off"
  --clients <n>          number of seeded client companies (default 40; 0 for none)
  --help                 print this text
`;

class UsageError extends Error {}

function parseInteger(name: string, value: string, minimum: number): number {
  if (!/^\d+$/.test(value) || Number(value) < minimum) {
    throw new UsageError(`--${name} must be a whole number of at least ${minimum}, got "${value}"`);
  }
  return Number(value);
}

function parseRateLimit(value: string): RateLimitSetting | null {
  if (value.toLowerCase() === 'off') return null;
  const match = /^(\d+)\/(\d+)$/.exec(value);
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new UsageError(
      `--rate-limit must be <requests>/<seconds> such as 300/300, or off, got "${value}"`,
    );
  }
  return {
    limit: parseInteger('rate-limit requests', match[1], 1),
    windowSeconds: parseInteger('rate-limit seconds', match[2], 1),
  };
}

function readOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string', default: '8090' },
        host: { type: 'string', default: '127.0.0.1' },
        'token-lifetime': { type: 'string', default: '3600' },
        'rate-limit': { type: 'string', default: '300/300' },
        clients: { type: 'string', default: '40' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    help: values.help,
    port: parseInteger('port', values.port, 0),
    host: values.host,
    tokenLifetimeSeconds: parseInteger('token-lifetime', values['token-lifetime'], 0),
    rateLimit: parseRateLimit(values['rate-limit']),
    clients: parseInteger('clients', values.clients, 0),
  };
}

async function main(): Promise<void> {
  let options;
  try {
    options = readOptions();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return;
  }

  const emulator = await startEmulator({
    host: options.host,
    port: options.port,
    tokenLifetimeSeconds: options.tokenLifetimeSeconds,
    rateLimit: options.rateLimit,
    seed: { clients: options.clients },
  });
  process.stdout.write(
    [
      `HaloPSA emulator listening on ${emulator.url}`,
      `  API:           ${emulator.url}/api`,
      `  Token:         ${emulator.url}/auth/token`,
      `  Client ID:     ${DEMO_APPLICATION.clientId}`,
      `  Client secret: ${DEMO_APPLICATION.clientSecret}`,
      `  Control:       ${emulator.url}/_emulator (see emulator/halopsa/README.md)`,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`Received ${signal}, stopping the emulator\n`);
    emulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`Failed to stop the emulator cleanly: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

await main();
