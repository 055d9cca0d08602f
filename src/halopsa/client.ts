import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';

import type { FailureContext } from './errors.ts';
import { createHaloPsaError, HaloPsaError } from './errors.ts';
import type { ExchangeSettings, HaloCallRecord, HaloRequestInfo } from './exchange.ts';
import { collectAllPages, readPage } from './paging.ts';
import type {
  HaloAction,
  HaloActionInput,
  HaloClient,
  HaloItem,
  HaloLicence,
  HaloLicenceInput,
  HaloOutcome,
  HaloSite,
  HaloTicket,
  HaloTicketInput,
  HaloTicketType,
  HaloUser,
} from './records.ts';
import {
  actionSchema,
  assertIntegralIds,
  clientSchema,
  itemSchema,
  licenceSchema,
  outcomeSchema,
  parseRecord,
  siteSchema,
  ticketSchema,
  ticketTypeSchema,
  userSchema,
} from './records.ts';
import { TokenCache } from './token.ts';
import type { ApiRequest } from './transport.ts';
import { HaloTransport } from './transport.ts';
import type { QueryParameters } from './url.ts';
import { buildApiUrl, buildTokenUrl, parseInstanceUrl } from './url.ts';

export interface HaloPsaClientOptions {
  /**
   * Instance root, e.g. https://acme.halopsa.com, normalised with parseInstanceUrl. The
   * resource server is `${baseUrl}/api`, the token endpoint `${baseUrl}/auth/token` unless
   * authUrl is given.
   */
  baseUrl: string;
  /**
   * Authorisation Server address from HaloPSA's API Details, for instances whose token
   * endpoint is on another host. "/token" is appended unless the URL already ends so.
   */
  authUrl?: string;
  clientId: string;
  clientSecret: string;
  /** Sent as ?tenant= on the token URL when set. */
  tenant?: string;
  /**
   * Space-separated OAuth scopes, default "all". An empty value also means "all", because
   * HaloPSA issues a token without scope but then rejects it on every call.
   */
  scope?: string;
  /** Used for every request, for example an Agent that blocks private addresses. */
  dispatcher?: Dispatcher;
  /** Per request, covering connect, response and body. Default 30000. */
  timeoutMs?: number;
  /** Refresh the access token this many seconds before it expires. Default 60. */
  refreshMarginSeconds?: number;
  /** Rows requested per page of a list. Default 100. */
  pageSize?: number;
  /** Receives call records and warnings, never secrets or tokens. */
  logger?: Logger;
  /** Called after every HTTP call, token calls included. */
  onCall?: (call: HaloCallRecord) => void;
  /**
   * Awaited before every HTTP request, token requests included, for example to take a slot of
   * a shared rate budget. What it throws reaches the caller of the client method unchanged.
   */
  beforeRequest?: (request: HaloRequestInfo) => Promise<void>;
  /** Awaited after every HTTP call, token calls included; what it throws is only logged. */
  afterResponse?: (call: HaloCallRecord) => Promise<void>;
  /** Clock in milliseconds, for tests. Default Date.now. */
  now?: () => number;
}

export type { HaloCallRecord, HaloRequestInfo };

const DEFAULT_SCOPE = 'all';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_REFRESH_MARGIN_SECONDS = 60;
const DEFAULT_PAGE_SIZE = 100;

function requirePositive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number, but it is ${value}.`);
  }
  return value;
}

function requireCredential(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new HaloPsaError(
      'invalid_credentials',
      `The ${name} is empty. ` +
        `Enter the ${name} HaloPSA showed when the API application was created.`,
    );
  }
  return value.trim();
}

type RecordSchema = z.ZodType<Record<string, unknown>>;

/**
 * Client for the HaloPSA REST API of one instance, authenticated as an API application with
 * the client-credentials grant. Methods throw HaloPsaError on every failure.
 */
export class HaloPsaClient {
  /** The normalised instance URL. */
  readonly instanceUrl: URL;
  readonly #tokens: TokenCache;
  readonly #transport: HaloTransport;
  readonly #pageSize: number;
  readonly #logger: Logger | undefined;

  /**
   * @throws HaloPsaError invalid_url for a malformed baseUrl or authUrl, and
   *   invalid_credentials for an empty client ID or secret.
   * @throws RangeError for a timeout, margin or page size that is not a positive number.
   */
  constructor(options: HaloPsaClientOptions) {
    this.instanceUrl = parseInstanceUrl(options.baseUrl);
    const clientId = requireCredential('client ID', options.clientId);
    const clientSecret = requireCredential('client secret', options.clientSecret);
    const timeoutMs = requirePositive('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS);
    const refreshMarginSeconds =
      options.refreshMarginSeconds === 0
        ? 0
        : requirePositive(
            'refreshMarginSeconds',
            options.refreshMarginSeconds,
            DEFAULT_REFRESH_MARGIN_SECONDS,
          );
    const pageSize = requirePositive('pageSize', options.pageSize, DEFAULT_PAGE_SIZE);
    if (!Number.isSafeInteger(pageSize)) {
      throw new RangeError(`pageSize must be a whole number, but it is ${pageSize}.`);
    }
    const now = options.now ?? Date.now;

    this.#pageSize = pageSize;
    this.#logger = options.logger?.child({ halopsaHost: this.instanceUrl.host });
    const exchangeSettings: ExchangeSettings = {
      dispatcher: options.dispatcher,
      timeoutMs,
      logger: this.#logger,
      onCall: options.onCall,
      beforeRequest: options.beforeRequest,
      afterResponse: options.afterResponse,
    };
    this.#tokens = new TokenCache({
      tokenUrl: buildTokenUrl(this.instanceUrl, options.authUrl, options.tenant),
      clientId,
      clientSecret,
      scope: options.scope?.trim() || DEFAULT_SCOPE,
      refreshMarginSeconds,
      now,
      exchange: { ...exchangeSettings, purpose: 'token' },
      logger: this.#logger,
    });
    this.#transport = new HaloTransport({
      instance: this.instanceUrl,
      tokens: this.#tokens,
      exchange: exchangeSettings,
      now,
      logger: this.#logger,
    });
  }

  /** Returns a valid access token, fetching one when none is cached or it is about to expire. */
  async getAccessToken(): Promise<string> {
    return (await this.#tokens.get()).value;
  }

  /**
   * Obtains a token and makes one cheap read call (GET /api/Client with paging, page_size 1).
   *
   * @throws HaloPsaError on any failure.
   */
  async checkConnection(): Promise<{ clientCount: number }> {
    const page = await this.#transport.call(
      {
        method: 'GET',
        resourcePath: 'Client',
        query: { pageinate: true, page_size: 1, page_no: 1 },
        notFoundCode: 'not_halopsa',
      },
      (body, context) =>
        readPage(body, 'clients', this.#rowParser(clientSchema, 'client', context), context),
    );
    return { clientCount: page.recordCount };
  }

  /**
   * Reads one row of each resource an integration reads (customers, items, licences, tickets),
   * so that a missing read permission is found when connecting rather than on the first sync.
   * HaloPSA's write permissions cannot be probed without writing.
   *
   * @throws HaloPsaError permission_missing naming the first permission that is denied.
   */
  async checkReadAccess(): Promise<void> {
    const probes: [string, string, RecordSchema, string][] = [
      ['Client', 'clients', clientSchema, 'client'],
      ['Item', 'items', itemSchema, 'item'],
      ['SoftwareLicence', 'licences', licenceSchema, 'licence'],
      ['Tickets', 'tickets', ticketSchema, 'ticket'],
    ];
    for (const [resourcePath, listKey, schema, label] of probes) {
      await this.#transport.call(
        {
          method: 'GET',
          resourcePath,
          query: { pageinate: true, page_size: 1, page_no: 1 },
          notFoundCode: 'not_halopsa',
        },
        (body, context) =>
          readPage(body, listKey, this.#rowParser(schema, label, context), context),
      );
    }
  }

  /** Lists customers, active only unless includeInactive is set. */
  async listClients(
    options: { search?: string; includeInactive?: boolean } = {},
  ): Promise<HaloClient[]> {
    return this.#listAll('Client', 'clients', clientSchema, 'client', {
      search: options.search === '' ? undefined : options.search,
      includeinactive: options.includeInactive ? true : undefined,
    });
  }

  /** Lists sites, of one customer when clientId is given. */
  async listSites(options: { clientId?: number } = {}): Promise<HaloSite[]> {
    assertIntegralIds({ client_id: options.clientId }, '');
    return this.#listAll('Site', 'sites', siteSchema, 'site', { client_id: options.clientId });
  }

  /** Lists end users, filtered by customer and site when given. */
  async listUsers(options: { clientId?: number; siteId?: number } = {}): Promise<HaloUser[]> {
    assertIntegralIds({ client_id: options.clientId, site_id: options.siteId }, '');
    return this.#listAll('Users', 'users', userSchema, 'user', {
      client_id: options.clientId,
      site_id: options.siteId,
    });
  }

  /** Lists products (items). */
  async listItems(): Promise<HaloItem[]> {
    return this.#listAll('Item', 'items', itemSchema, 'item', {});
  }

  /** Lists ticket types. HaloPSA returns them as a bare array without paging. */
  async listTicketTypes(): Promise<HaloTicketType[]> {
    return this.#transport.call(
      { method: 'GET', resourcePath: 'TicketType', notFoundCode: 'not_halopsa' },
      (body, context) => {
        if (!Array.isArray(body)) {
          throw createHaloPsaError('unexpected_response', {
            ...context,
            reason: 'a list of ticket types was expected',
          });
        }
        return body.map(this.#rowParser(ticketTypeSchema, 'ticket type', context));
      },
    );
  }

  /** Lists software licences and subscriptions, of one customer when clientId is given. */
  async listLicences(options: { clientId?: number } = {}): Promise<HaloLicence[]> {
    assertIntegralIds({ client_id: options.clientId }, '');
    return this.#listAll('SoftwareLicence', 'licences', licenceSchema, 'licence', {
      client_id: options.clientId,
    });
  }

  /** Returns one licence, or null when HaloPSA has none with that id. */
  async getLicence(id: number): Promise<HaloLicence | null> {
    return this.#getOne('SoftwareLicence', id, licenceSchema, 'licence');
  }

  /**
   * Creates or updates licences in one POST: an input with `id` updates that licence. Returns
   * the saved records as HaloPSA returns them.
   */
  async saveLicences(input: HaloLicenceInput[]): Promise<HaloLicence[]> {
    return this.#post('SoftwareLicence', input, licenceSchema, 'licence');
  }

  /** Returns one action outcome, or null when HaloPSA has none with that id. */
  async getOutcome(id: number): Promise<HaloOutcome | null> {
    return this.#getOne('Outcome', id, outcomeSchema, 'outcome');
  }

  /** Returns one ticket, or null when HaloPSA has none with that id. */
  async getTicket(id: number): Promise<HaloTicket | null> {
    return this.#getOne('Tickets', id, ticketSchema, 'ticket');
  }

  /**
   * Finds tickets whose third_party_id_string equals `value`, to detect a ticket created
   * earlier by a call whose response was lost.
   *
   * @throws HaloPsaError validation_failed for an empty value, which HaloPSA would ignore and
   *   so list every ticket.
   */
  async findTicketsByThirdPartyId(value: string): Promise<HaloTicket[]> {
    if (typeof value !== 'string' || value.trim() === '') {
      throw new HaloPsaError(
        'validation_failed',
        'The third-party id to search tickets by is empty. ' +
          'Pass the id the ticket was created with.',
      );
    }
    const tickets = await this.#listAll('Tickets', 'tickets', ticketSchema, 'ticket', {
      third_party_id_string: value,
    });
    // A server that ignores the filter would return unrelated tickets, so rows that carry a
    // different id are dropped.
    // NOTE: rows without the field are kept, because it is not known whether HaloPSA's list
    // rows always include third_party_id_string.
    return tickets.filter(
      (ticket) =>
        ticket.third_party_id_string === undefined || ticket.third_party_id_string === value,
    );
  }

  /** Creates tickets in one POST and returns them as HaloPSA saved them. */
  async createTickets(input: HaloTicketInput[]): Promise<HaloTicket[]> {
    return this.#post('Tickets', input, ticketSchema, 'ticket');
  }

  /**
   * Returns the actions of one ticket, to detect a note added earlier by a call whose response
   * was lost.
   * NOTE: the emulator's list rows carry the whole action, `note` included. Whether HaloPSA's
   * list rows always include `note` is not public.
   */
  async listTicketActions(ticketId: number): Promise<HaloAction[]> {
    return this.#listAll('Actions', 'actions', actionSchema, 'action', { ticket_id: ticketId });
  }

  /** Adds actions (notes, updates) to tickets in one POST and returns them as saved. */
  async addActions(input: HaloActionInput[]): Promise<HaloAction[]> {
    return this.#post('Actions', input, actionSchema, 'action');
  }

  #rowParser<Schema extends RecordSchema>(schema: Schema, label: string, context: FailureContext) {
    return (row: unknown): z.output<Schema> => parseRecord(schema, row, context, label);
  }

  async #listAll<Schema extends z.ZodType<{ id: number } & Record<string, unknown>>>(
    resourcePath: string,
    listKey: string,
    schema: Schema,
    label: string,
    query: QueryParameters,
  ): Promise<z.output<Schema>[]> {
    const url = buildApiUrl(this.instanceUrl, resourcePath);
    return collectAllPages(
      (pageNo, pageSize) =>
        this.#transport.call(
          {
            method: 'GET',
            resourcePath,
            query: { ...query, pageinate: true, page_size: pageSize, page_no: pageNo },
            notFoundCode: 'not_halopsa',
          },
          (body, context) =>
            readPage(body, listKey, this.#rowParser(schema, label, context), context),
        ),
      {
        pageSize: this.#pageSize,
        resource: resourcePath,
        logger: this.#logger,
        context: { host: url.host, method: 'GET', path: url.pathname },
      },
    );
  }

  async #getOne<Schema extends RecordSchema>(
    resource: string,
    id: number,
    schema: Schema,
    label: string,
  ): Promise<z.output<Schema> | null> {
    assertIntegralIds({ id }, '');
    return this.#transport.callOrNull(
      { method: 'GET', resourcePath: `${resource}/${id}`, notFoundCode: 'not_found' },
      (body, context) => parseRecord(schema, body, context, label),
    );
  }

  /**
   * POSTs `input` as a JSON array. HaloPSA returns the saved object for one posted element
   * and several with a list; both are returned as an array.
   */
  async #post<Schema extends RecordSchema>(
    resourcePath: string,
    input: readonly object[],
    schema: Schema,
    label: string,
  ): Promise<z.output<Schema>[]> {
    if (!Array.isArray(input)) {
      throw new TypeError(`The ${label} input must be an array.`);
    }
    if (input.length === 0) return [];
    assertIntegralIds(input, `${label}s`);

    // The route exists on every instance, so a 404 to an update means its record is gone.
    const updates = input.some((element) => 'id' in element && element.id !== undefined);
    const apiRequest: ApiRequest = {
      method: 'POST',
      resourcePath,
      body: input,
      notFoundCode: updates ? 'not_found' : 'not_halopsa',
    };
    return this.#transport.call(apiRequest, (body, context) => {
      if (body === undefined) {
        throw createHaloPsaError('unexpected_response', {
          ...context,
          reason: `no saved ${label} was returned`,
        });
      }
      const rows: unknown[] = Array.isArray(body) ? body : [body];
      return rows.map(this.#rowParser(schema, label, context));
    });
  }
}
