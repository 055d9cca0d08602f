import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createApp, type App } from '../../src/app.ts';
import { createApiToken } from '../../src/auth/api-tokens.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/logging.ts';
import { createAccount } from '../../src/platform/accounts.ts';
import type { TestDatabase } from './databases.ts';

export interface TestService {
  app: App;
  /** http://127.0.0.1:PORT */
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Start the whole service on 127.0.0.1 with a fresh data folder, on the given database,
 * allowing the listed host:port pairs as HaloPSA instances (the emulator).
 */
export async function startService(
  database: TestDatabase,
  options: {
    allowedHosts?: string[];
    environment?: Record<string, string>;
    /** Receives every log line at trace level, through the product's own redacting logger. */
    logLines?: string[];
  } = {},
): Promise<TestService> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dmarcdesk-test-'));
  const config = loadConfig({
    DMARCDESK_DATA_DIR: dataDir,
    DMARCDESK_PORT: '0',
    DMARCDESK_HALOPSA_ALLOWED_HOSTS: (options.allowedHosts ?? []).join(','),
    DMARCDESK_HALOPSA_TIMEOUT_MS: '5000',
    DMARCDESK_PUBLIC_URL: 'http://dmarcdesk.test',
    // Record checks must never reach a real resolver; tests that check DNS override this with
    // their own loopback DNS server. Nothing listens on port 9 (discard), so lookups fail at once.
    DMARCDESK_DNS_SERVERS: '127.0.0.1:9',
    ...(database.databaseUrl ? { DMARCDESK_DATABASE_URL: database.databaseUrl } : {}),
    ...options.environment,
  });
  const lines = options.logLines;
  const logger = lines
    ? createLogger('trace', { write: (line: string) => void lines.push(line) })
    : pino({ level: process.env.DMARCDESK_TEST_LOG_LEVEL ?? 'silent' });
  const app = await createApp(config, logger);
  const address = await app.server.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    url: address,
    dataDir,
    async stop() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Create an MSSP account with the HaloPSA Integration setting on, and an API token for it. */
export async function createTestAccount(
  app: App,
  name = 'Northwind MSP',
): Promise<{ accountId: string; token: string }> {
  const account = await createAccount(app.db, { name, halopsaIntegrationEnabled: true });
  const { token } = await createApiToken(app.db, account.id, 'test');
  return { accountId: account.id, token };
}

/** A fetch wrapper for the service's API that returns status and parsed JSON. */
export function apiClient(baseUrl: string, token: string) {
  return async function call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: T }> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${token}` } };
    if (body !== undefined) {
      init.body = Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = contentType;
    }
    const response = await fetch(`${baseUrl}/api/v1${path}`, init);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  };
}

/** Poll `check` until it returns a value other than undefined, or fail after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
  );
}
