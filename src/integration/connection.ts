import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Database, Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { HaloPsaClient, HaloPsaError } from '../halopsa/index.ts';
import { toAppError } from './halopsa-errors.ts';
import { createGuardedDispatcher } from './outbound-guard.ts';
import { recordEvent } from './history.ts';
import { halopsaSecretContext, type SecretBox } from './secret-box.ts';
import { checkInstanceUrl } from './url-policy.ts';

/** The stored connection as the API shows it: never the secret. */
export interface ConnectionView {
  url: string;
  clientId: string;
  tenant: string | null;
  status: 'healthy' | 'needs_attention';
  statusDetail: string | null;
  lastCheckedAt: Date;
  hasClientSecret: true;
}

interface ConnectionRow {
  account_id: string;
  base_url: string;
  client_id: string;
  tenant: string | null;
  client_secret_encrypted: Buffer | Uint8Array;
  status: 'healthy' | 'needs_attention';
  status_detail: string | null;
  last_checked_at: Date;
  updated_at: Date;
}

export interface ConnectInput {
  url: string;
  clientId: string;
  /** Required unless the URL and client ID are unchanged, so that a secret never follows a new host. */
  clientSecret?: string | undefined;
  tenant?: string | undefined;
}

export interface ConnectionServiceOptions {
  db: Database;
  secrets: SecretBox;
  logger: Logger;
  allowedHosts: readonly string[];
  timeoutMs: number;
}

/**
 * The HaloPSA connection of each account: checked before it is saved, stored with the secret
 * encrypted, and turned into API clients whose token cache lives as long as the connection.
 */
export class ConnectionService {
  private readonly clients = new Map<string, { key: string; client: HaloPsaClient }>();
  private readonly dispatcher: Dispatcher;

  constructor(private readonly options: ConnectionServiceOptions) {
    this.dispatcher = createGuardedDispatcher({
      allowedHosts: options.allowedHosts,
      onBlocked: (event) => options.logger.warn(event, 'blocked an outbound HaloPSA connection'),
    });
  }

  async get(accountId: string): Promise<ConnectionView | null> {
    const row = await this.load(this.options.db, accountId);
    return row ? toView(row) : null;
  }

  /** Check the credentials against HaloPSA (token, then one read) and store them on success. */
  async connect(accountId: string, input: ConnectInput): Promise<ConnectionView> {
    const { db, secrets } = this.options;
    let url: URL;
    try {
      url = checkInstanceUrl(input.url, this.options.allowedHosts);
    } catch (error) {
      throw toAppError(error, 'connect');
    }
    const baseUrl = url.toString().replace(/\/+$/, '');
    const existing = await this.load(db, accountId);
    const clientSecret =
      input.clientSecret ?? this.reusableSecret(existing, baseUrl, input.clientId);

    const client = this.createClient(accountId, {
      baseUrl,
      clientId: input.clientId,
      clientSecret,
      tenant: input.tenant ?? null,
    });
    try {
      await client.checkConnection();
      await client.checkReadAccess();
    } catch (error) {
      await recordEvent(db, {
        accountId,
        event: 'connection.checked',
        outcome: 'failed',
        message: error instanceof HaloPsaError ? error.message : 'The connection check failed.',
        detail: {
          url: baseUrl,
          halopsaError: error instanceof HaloPsaError ? error.code : 'unknown',
        },
      });
      throw toAppError(error, 'connect');
    }

    const sealed = secrets.encrypt(clientSecret, halopsaSecretContext(accountId, baseUrl));
    await db.query(
      `INSERT INTO halopsa_connections (account_id, base_url, client_id, tenant, client_secret_encrypted,
                                        status, status_detail, last_checked_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, 'healthy', NULL, now(), now())
       ON CONFLICT (account_id) DO UPDATE
         SET base_url = $2, client_id = $3, tenant = $4, client_secret_encrypted = $5,
             status = 'healthy', status_detail = NULL, last_checked_at = now(), updated_at = now()`,
      [accountId, baseUrl, input.clientId, input.tenant ?? null, sealed],
    );
    this.clients.delete(accountId);
    await recordEvent(db, {
      accountId,
      event: 'connection.checked',
      outcome: 'succeeded',
      message: `Connected to HaloPSA at ${baseUrl}.`,
      detail: { url: baseUrl, clientId: input.clientId },
    });
    this.options.logger.info({ accountId, url: baseUrl }, 'HaloPSA connection saved');
    return (await this.get(accountId))!;
  }

  async disconnect(accountId: string): Promise<void> {
    await this.options.db.query('DELETE FROM halopsa_connections WHERE account_id = $1', [
      accountId,
    ]);
    this.clients.delete(accountId);
  }

  /** Return the API client of the account's stored connection, or throw halopsa_not_connected. */
  async clientFor(accountId: string): Promise<HaloPsaClient> {
    const row = await this.load(this.options.db, accountId);
    if (!row) {
      throw new AppError(
        'halopsa_not_connected',
        'This account has no HaloPSA connection yet; connect it first (Integrations, then HaloPSA, step 1).',
      );
    }
    const key = `${row.base_url}|${row.client_id}|${row.updated_at.toISOString()}`;
    const cached = this.clients.get(accountId);
    if (cached?.key === key) return cached.client;

    const clientSecret = this.options.secrets.decrypt(
      Buffer.from(row.client_secret_encrypted),
      halopsaSecretContext(accountId, row.base_url),
    );
    const client = this.createClient(accountId, {
      baseUrl: row.base_url,
      clientId: row.client_id,
      clientSecret,
      tenant: row.tenant,
    });
    this.clients.set(accountId, { key, client });
    return client;
  }

  /** Mark the connection healthy or needing attention after a background call. */
  async setStatus(
    accountId: string,
    status: 'healthy' | 'needs_attention',
    detail: string | null,
  ): Promise<void> {
    await this.options.db.query(
      `UPDATE halopsa_connections SET status = $2, status_detail = $3, last_checked_at = now()
        WHERE account_id = $1 AND (status <> $2 OR status_detail IS DISTINCT FROM $3)`,
      [accountId, status, detail],
    );
  }

  private reusableSecret(
    existing: ConnectionRow | null,
    baseUrl: string,
    clientId: string,
  ): string {
    if (!existing || existing.base_url !== baseUrl || existing.client_id !== clientId) {
      throw new AppError(
        'validation_failed',
        'Field "clientSecret": enter the client secret; it is required whenever the URL or client ID changes.',
        { field: 'clientSecret' },
      );
    }
    return this.options.secrets.decrypt(
      Buffer.from(existing.client_secret_encrypted),
      halopsaSecretContext(existing.account_id, existing.base_url),
    );
  }

  private createClient(
    accountId: string,
    settings: { baseUrl: string; clientId: string; clientSecret: string; tenant: string | null },
  ): HaloPsaClient {
    const log = this.options.logger.child({ accountId, halopsa: settings.baseUrl });
    return new HaloPsaClient({
      baseUrl: settings.baseUrl,
      clientId: settings.clientId,
      clientSecret: settings.clientSecret,
      ...(settings.tenant ? { tenant: settings.tenant } : {}),
      timeoutMs: this.options.timeoutMs,
      dispatcher: this.dispatcher,
      logger: log,
    });
  }

  private async load(db: Queryable, accountId: string): Promise<ConnectionRow | null> {
    const [row] = await db.query<ConnectionRow>(
      'SELECT * FROM halopsa_connections WHERE account_id = $1',
      [accountId],
    );
    return row ?? null;
  }
}

function toView(row: ConnectionRow): ConnectionView {
  return {
    url: row.base_url,
    clientId: row.client_id,
    tenant: row.tenant,
    status: row.status,
    statusDetail: row.status_detail,
    lastCheckedAt: row.last_checked_at,
    hasClientSecret: true,
  };
}
