import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import {
  HaloPsaClient,
  HaloPsaError,
  parseInstanceUrl,
  type HaloCallRecord,
} from '../halopsa/index.ts';
import { JobDeferred } from '../jobs/queue.ts';
import { recordCall } from './call-log.ts';
import { toAppError } from './halopsa-errors.ts';
import type { IntegrationMetrics } from './metrics.ts';
import { currentCallContext, type RateBudget } from './rate-budget.ts';
import { createGuardedDispatcher } from './outbound-guard.ts';
import { recordEvent } from './history.ts';
import { halopsaSecretContext, type SecretBox } from './secret-box.ts';
import { checkInstanceUrl } from './url-policy.ts';
import type { HaloOutcome } from '../halopsa/records.ts';

/** The stored connection as the API shows it: never the secret. */
/**
 * State of the action outcome that notes use: verified (a note was added with it), unverified
 * (nothing proves it yet) or forbidden (HaloPSA rejected a note with it). While it is forbidden
 * notes fail, but tickets still go out.
 */
export type NoteOutcomeStatus = 'verified' | 'unverified' | 'forbidden';

export interface ConnectionView {
  url: string;
  clientId: string;
  tenant: string | null;
  status: 'healthy' | 'needs_attention';
  statusDetail: string | null;
  lastCheckedAt: Date;
  hasClientSecret: true;
  /** The action outcome of ticket notes, and whether the last check could add a note with it. */
  noteOutcome: { id: number; status: NoteOutcomeStatus; detail: string | null };
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
  note_outcome_id: number | null;
  note_outcome_status: NoteOutcomeStatus;
  note_outcome_detail: string | null;
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
  /** The action outcome of the notes added to tickets, which the connection check verifies. */
  noteOutcomeId: number;
  /** The shared request budget every call takes a slot of; none means calls are not limited. */
  budget?: RateBudget;
  metrics?: IntegrationMetrics;
  /** How long a job waits before it looks again at a connection that needs attention. */
  attentionRecheckSeconds?: number;
}

// Appended to every needs_attention detail, so that the summary states how the jobs resume.
const RESUME_HINT =
  'Jobs for this connection wait until a connection check succeeds: open Integrations, then HaloPSA, step 1, and select "Connect & Continue".';
const DEFAULT_ATTENTION_RECHECK_SECONDS = 60;

// HaloPSA's wording when the API agent may not use an action outcome, and when the outcome
// does not exist, as captured from live instances.
const OUTCOME_FORBIDDEN = /do not have access to this action/i;
const OUTCOME_MISSING = /an outcome must be entered/i;
// A ticket that is gone (deleted in HaloPSA) cannot take the check's note, so a few are tried.
const NOTE_CHECK_TICKETS = 3;

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
    return row ? toView(row, this.options.noteOutcomeId) : null;
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

    const client = this.createClient(
      accountId,
      {
        baseUrl,
        clientId: input.clientId,
        clientSecret,
        tenant: input.tenant ?? null,
      },
      { stored: false },
    );
    let noteOutcome: NoteOutcomeCheck;
    try {
      await client.checkConnection();
      await client.checkReadAccess();
      noteOutcome = await this.checkNoteOutcome(
        accountId,
        client,
        existing?.base_url === baseUrl ? existing : null,
      );
    } catch (error) {
      await recordEvent(db, {
        accountId,
        event: 'connection.checked',
        outcome: 'failed',
        message:
          error instanceof HaloPsaError || error instanceof AppError
            ? error.message
            : 'The connection check failed.',
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
                                        status, status_detail, last_checked_at, updated_at,
                                        note_outcome_id, note_outcome_status, note_outcome_detail)
       VALUES ($1, $2, $3, $4, $5, 'healthy', NULL, now(), now(), $6, $7, $8)
       ON CONFLICT (account_id) DO UPDATE
         SET base_url = $2, client_id = $3, tenant = $4, client_secret_encrypted = $5,
             status = 'healthy', status_detail = NULL, last_checked_at = now(), updated_at = now(),
             note_outcome_id = $6, note_outcome_status = $7, note_outcome_detail = $8`,
      [
        accountId,
        baseUrl,
        input.clientId,
        input.tenant ?? null,
        sealed,
        this.options.noteOutcomeId,
        noteOutcome.status,
        noteOutcome.detail,
      ],
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
    if (row.status === 'needs_attention' && currentCallContext().jobKind !== null) {
      throw new JobDeferred(
        this.options.attentionRecheckSeconds ?? DEFAULT_ATTENTION_RECHECK_SECONDS,
        `The HaloPSA connection needs attention: ${row.status_detail ?? RESUME_HINT}`,
      );
    }
    const key = `${row.base_url}|${row.client_id}|${row.updated_at.toISOString()}`;
    const cached = this.clients.get(accountId);
    if (cached?.key === key) return cached.client;

    const clientSecret = this.options.secrets.decrypt(
      Buffer.from(row.client_secret_encrypted),
      halopsaSecretContext(accountId, row.base_url),
    );
    const client = this.createClient(
      accountId,
      {
        baseUrl: row.base_url,
        clientId: row.client_id,
        clientSecret,
        tenant: row.tenant,
      },
      { stored: true },
    );
    this.clients.set(accountId, { key, client });
    return client;
  }

  /** Record what the latest note showed about the note outcome. */
  async recordNoteOutcome(
    accountId: string,
    outcomeId: number,
    status: NoteOutcomeStatus,
    detail: string,
  ): Promise<void> {
    await this.options.db.query(
      `UPDATE halopsa_connections
          SET note_outcome_id = $2, note_outcome_status = $3, note_outcome_detail = $4
        WHERE account_id = $1`,
      [accountId, outcomeId, status, detail],
    );
  }

  /**
   * Mark the connection healthy or needing attention after a background call. A needs_attention
   * detail gets a sentence on how the waiting jobs resume.
   */
  async setStatus(
    accountId: string,
    status: 'healthy' | 'needs_attention',
    detail: string | null,
  ): Promise<void> {
    if (status === 'needs_attention') {
      detail = detail === null ? RESUME_HINT : `${detail.trimEnd()} ${RESUME_HINT}`;
    }
    await this.options.db.query(
      `UPDATE halopsa_connections SET status = $2, status_detail = $3, last_checked_at = now()
        WHERE account_id = $1 AND (status <> $2 OR status_detail IS DISTINCT FROM $3)`,
      [accountId, status, detail],
    );
  }

  /**
   * Mark the connection as needing attention after a job's call failed for a reason only a
   * person can fix, such as a rejected secret or token or a missing permission. Returns the
   * deferral that makes the job wait for the next passing connection check instead of failing.
   */
  async waitForAttention(accountId: string, detail: string): Promise<JobDeferred> {
    await this.setStatus(accountId, 'needs_attention', detail);
    return new JobDeferred(
      this.options.attentionRecheckSeconds ?? DEFAULT_ATTENTION_RECHECK_SECONDS,
      `The HaloPSA connection needs attention: ${detail}`,
    );
  }

  /**
   * Check that the configured action outcome exists and that the API agent may add notes with
   * it, so that a missing or forbidden outcome is reported at connect time and not at the first
   * repeated alert. The outcome is read first (GET /api/Outcome/<id>), and a missing one rejects
   * the connection. HaloPSA checks whether the agent may use an outcome only when an action is
   * saved, so the check then adds a private note (hidden from the end user, no email). It goes
   * on a ticket this account's alerts created earlier on the same instance. Without such a
   * ticket nothing is written, and the permission stays unverified until the first note.
   * NOTE: whether GET /api/Outcome lists only the outcomes the agent may use is not public, and
   * neither is whether HaloPSA checks the outcome before the ticket id. Either would allow a
   * permission check without writing. Whether a note on a closed ticket reopens it is not known
   * either, so tickets of open incidents are tried first.
   */
  private async checkNoteOutcome(
    accountId: string,
    client: HaloPsaClient,
    sameInstance: ConnectionRow | null,
  ): Promise<NoteOutcomeCheck> {
    const outcomeId = this.options.noteOutcomeId;
    const outcome = await this.readNoteOutcome(accountId, client, outcomeId);
    const name = outcome?.outcome ?? outcome?.buttonname;
    const found =
      outcome === null
        ? `Outcome ${outcomeId} could not be read from HaloPSA.`
        : `Outcome ${outcomeId}${name ? ` ("${name}")` : ''} exists in HaloPSA.`;
    if (!sameInstance) {
      return {
        status: 'unverified',
        detail: `${found} Whether the API agent may use it is checked when the first alert note is added, or at a later connection check once dmarcdesk has made a ticket.`,
      };
    }
    const tickets = await this.options.db.query<{ ticket_id: number }>(
      `SELECT halopsa_ticket_id AS ticket_id FROM alert_incidents
        WHERE account_id = $1 AND halopsa_ticket_id IS NOT NULL
        ORDER BY status = 'open' DESC, updated_at DESC
        LIMIT $2`,
      [accountId, NOTE_CHECK_TICKETS],
    );
    for (const { ticket_id: ticketId } of tickets) {
      try {
        const [action] = await client.addActions([
          {
            ticket_id: ticketId,
            outcome_id: outcomeId,
            hiddenfromuser: true,
            sendemail: false,
            note:
              'dmarcdesk connection check: this private note confirms that dmarcdesk may add ' +
              'notes to its alert tickets. No action is needed.',
          },
        ]);
        await recordAudit(this.options.db, {
          accountId,
          actor: SYSTEM_ACTOR,
          action: 'halopsa.action.created',
          targetType: 'halopsa_ticket',
          targetId: ticketId,
          after: {
            endpoint: 'POST /api/Actions',
            purpose: 'connection check of the note outcome',
            outcomeId,
            actionId: action?.id ?? null,
            result: 'succeeded',
          },
        });
        return { status: 'verified', detail: `A private note was added to ticket ${ticketId}.` };
      } catch (error) {
        const detail = error instanceof HaloPsaError ? (error.detail ?? '') : '';
        if (error instanceof HaloPsaError && error.code === 'validation_failed') {
          if (OUTCOME_FORBIDDEN.test(detail)) throw noteOutcomeError(outcomeId, 'forbidden');
          if (OUTCOME_MISSING.test(detail)) throw noteOutcomeError(outcomeId, 'missing');
          // Any other rejection is about the ticket (deleted, for example): try the next one.
          continue;
        }
        throw error;
      }
    }
    return {
      status: 'unverified',
      detail: `${found} Whether the API agent may use it is checked when the first alert note is added: no ticket dmarcdesk made on this instance could take a note.`,
    };
  }

  /**
   * Read the note outcome, and throw when HaloPSA has no outcome with that id. Returns null
   * when the outcome cannot be read (HaloPSA does not document the permission it needs), so
   * that the note check decides.
   */
  private async readNoteOutcome(
    accountId: string,
    client: HaloPsaClient,
    outcomeId: number,
  ): Promise<HaloOutcome | null> {
    let outcome: HaloOutcome | null;
    try {
      outcome = await client.getOutcome(outcomeId);
    } catch (error) {
      if (error instanceof HaloPsaError && error.code === 'permission_missing') {
        this.options.logger.warn(
          { accountId, outcomeId, halopsaError: error.code },
          'could not read the note outcome; its existence is checked at the first note',
        );
        return null;
      }
      throw error;
    }
    if (outcome === null) throw noteOutcomeError(outcomeId, 'missing');
    return outcome;
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

  /**
   * Build a client whose every call takes a slot of the instance's budget first and is logged
   * after. Only a stored connection's client marks the connection as needing attention.
   */
  private createClient(
    accountId: string,
    settings: { baseUrl: string; clientId: string; clientSecret: string; tenant: string | null },
    use: { stored: boolean },
  ): HaloPsaClient {
    const log = this.options.logger.child({ accountId, halopsa: settings.baseUrl });
    const instanceKey = instanceKeyOf(settings.baseUrl);
    const budget = this.options.budget;
    return new HaloPsaClient({
      baseUrl: settings.baseUrl,
      clientId: settings.clientId,
      clientSecret: settings.clientSecret,
      ...(settings.tenant ? { tenant: settings.tenant } : {}),
      timeoutMs: this.options.timeoutMs,
      dispatcher: this.dispatcher,
      logger: log,
      beforeRequest: async () => {
        if (budget) await budget.acquire(instanceKey, currentCallContext());
      },
      afterResponse: (call) => this.afterCall(accountId, instanceKey, call, use.stored),
    });
  }

  private async afterCall(
    accountId: string,
    instanceKey: string,
    call: HaloCallRecord,
    stored: boolean,
  ): Promise<void> {
    const { db, budget, metrics } = this.options;
    const context = currentCallContext();
    metrics?.countCall(call);
    await recordCall(db, accountId, call, context);
    if (call.status === 429 && budget) await budget.pause(instanceKey, call.retryAfterSeconds);
    if (call.purpose === 'token') {
      const succeeded = call.status !== null && call.status >= 200 && call.status < 300;
      await recordEvent(db, {
        accountId,
        customerId: context.customerId,
        event: 'token.refreshed',
        outcome: succeeded ? 'succeeded' : 'failed',
        message: succeeded
          ? `Obtained a HaloPSA access token from ${instanceKey}.`
          : `Requesting a HaloPSA access token from ${instanceKey} failed (${call.status === null ? 'no response' : `HTTP ${call.status}`}${call.errorCode ? `, ${call.errorCode}` : ''}).`,
        detail: {
          status: call.status,
          durationMs: call.durationMs,
          ...(call.errorCode ? { halopsaError: call.errorCode } : {}),
        },
      });
    }
    if (!stored) return;
    if (call.errorCode === 'token_rejected') {
      await this.setStatus(
        accountId,
        'needs_attention',
        `HaloPSA rejected dmarcdesk's access token on ${call.method} ${call.path.split('?')[0]} with HTTP 401, also after a token refresh. Check the API application's permissions in HaloPSA and that its login type is Agent.`,
      );
    } else if (call.purpose === 'token' && call.errorCode === 'invalid_credentials') {
      await this.setStatus(
        accountId,
        'needs_attention',
        'HaloPSA rejected the stored client ID or secret when dmarcdesk requested a new access token. Check both in HaloPSA under Configuration > Integrations > HaloPSA API > Applications, and enter a new secret in step 1 if the old one was changed.',
      );
    }
  }

  private async load(db: Queryable, accountId: string): Promise<ConnectionRow | null> {
    const [row] = await db.query<ConnectionRow>(
      'SELECT * FROM halopsa_connections WHERE account_id = $1',
      [accountId],
    );
    return row ?? null;
  }
}

/** Returns the key of an instance's rate budget: its normalised URL without a trailing slash. */
export function instanceKeyOf(baseUrl: string): string {
  return parseInstanceUrl(baseUrl).href.replace(/\/+$/, '');
}

interface NoteOutcomeCheck {
  status: NoteOutcomeStatus;
  detail: string | null;
}

function noteOutcomeError(outcomeId: number, problem: 'forbidden' | 'missing'): AppError {
  const message =
    problem === 'forbidden'
      ? `HaloPSA does not let the API agent add actions with outcome ${outcomeId} ("You do not have access to this Action at the moment"), and alert notes use it. In HaloPSA, allow the agent to use that outcome, or set DMARCDESK_HALOPSA_NOTE_OUTCOME_ID to an outcome it may use.`
      : `HaloPSA has no action outcome with id ${outcomeId}, which alert notes use. Set DMARCDESK_HALOPSA_NOTE_OUTCOME_ID to the id of an outcome such as "Internal Note" (GET /api/Outcome lists them) and connect again.`;
  return new AppError('halopsa_connection_failed', message, {
    field: 'noteOutcomeId',
    details: { halopsaError: 'validation_failed', noteOutcomeId: outcomeId, problem },
  });
}

/** Build the API view of the stored connection, with the outcome that notes use now. */
function toView(row: ConnectionRow, noteOutcomeId: number): ConnectionView {
  // A check of another outcome (the setting changed since) proves nothing about this one.
  const checked = row.note_outcome_id === noteOutcomeId;
  return {
    url: row.base_url,
    clientId: row.client_id,
    tenant: row.tenant,
    status: row.status,
    statusDetail: row.status_detail,
    lastCheckedAt: row.last_checked_at,
    hasClientSecret: true,
    noteOutcome: {
      id: noteOutcomeId,
      status: checked ? row.note_outcome_status : 'unverified',
      detail: checked
        ? row.note_outcome_detail
        : `Outcome ${noteOutcomeId} has not been checked yet; connect again to check it.`,
    },
  };
}
