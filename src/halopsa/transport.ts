import type { Logger } from 'pino';

import type { FailureContext } from './errors.ts';
import { createHaloPsaError, redactSecrets } from './errors.ts';
import type { ExchangeSettings, HttpRequest, HttpResponse } from './exchange.ts';
import { contextOf, exchange } from './exchange.ts';
import { permissionFor } from './permissions.ts';
import {
  extractHaloMessage,
  isHtmlResponse,
  mapStatusError,
  parseErrorBody,
  parseJsonBody,
} from './responses.ts';
import type { TokenCache } from './token.ts';
import type { QueryParameters } from './url.ts';
import { buildApiUrl } from './url.ts';

export interface TransportSettings {
  instance: URL;
  tokens: TokenCache;
  exchange: ExchangeSettings;
  now: () => number;
  logger?: Logger;
}

/** One call to the resource server, relative to `<instance>/api`. */
export interface ApiRequest {
  method: 'GET' | 'POST';
  /** For example "Tickets" or "Tickets/12". */
  resourcePath: string;
  query?: QueryParameters;
  /** Sent as JSON. */
  body?: unknown;
  /**
   * Code for a 404: not_found for one record, not_halopsa for a list route, which exists on
   * every HaloPSA instance.
   */
  notFoundCode: 'not_found' | 'not_halopsa';
}

/** Turns a successful response body into the caller's value; throws HaloPsaError when it cannot. */
export type BodyParser<T> = (body: unknown, context: FailureContext) => T;

const TOKEN_REJECTED = Symbol('token rejected');

/**
 * Sends authenticated API calls. A 401 drops the token and retries the call once with a new
 * one, because HaloPSA returns 401 for an expired token. A second 401 becomes token_rejected.
 */
export class HaloTransport {
  readonly #settings: TransportSettings;

  constructor(settings: TransportSettings) {
    this.#settings = settings;
  }

  /** Sends `apiRequest` and returns the parsed body. */
  async call<T>(apiRequest: ApiRequest, parse: BodyParser<T>): Promise<T> {
    const result = await this.#send(apiRequest, parse, false);
    return result as T;
  }

  /** Sends `apiRequest` and returns the parsed body, or null when HaloPSA returns 404. */
  async callOrNull<T>(apiRequest: ApiRequest, parse: BodyParser<T>): Promise<T | null> {
    return this.#send(apiRequest, parse, true);
  }

  /** Replaces the client secret and recent tokens in `text`. */
  redact(text: string): string {
    return redactSecrets(text, this.#settings.tokens.secrets());
  }

  async #send<T>(
    apiRequest: ApiRequest,
    parse: BodyParser<T>,
    nullOnNotFound: boolean,
  ): Promise<T | null> {
    const settings = this.#settings;
    const url = buildApiUrl(settings.instance, apiRequest.resourcePath, apiRequest.query);
    const body = apiRequest.body === undefined ? undefined : JSON.stringify(apiRequest.body);

    for (let attempt = 1; ; attempt += 1) {
      const token = await settings.tokens.get();
      const httpRequest: HttpRequest = {
        method: apiRequest.method,
        url,
        headers: {
          authorization: `${token.type} ${token.value}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body,
      };
      const outcome = await exchange(settings.exchange, httpRequest, (response) =>
        this.#interpret(response, httpRequest, apiRequest, parse, { attempt, nullOnNotFound }),
      );
      if (outcome !== TOKEN_REJECTED) return outcome.value;

      settings.tokens.invalidate(token);
      settings.logger?.warn(
        { method: apiRequest.method, path: url.pathname },
        'HaloPSA rejected the access token with 401; retrying once with a new token',
      );
    }
  }

  #interpret<T>(
    response: HttpResponse,
    httpRequest: HttpRequest,
    apiRequest: ApiRequest,
    parse: BodyParser<T>,
    state: { attempt: number; nullOnNotFound: boolean },
  ): { value: T | null } | typeof TOKEN_REJECTED {
    const context = contextOf(httpRequest);
    const status = response.status;

    if (status === 401 && !isHtmlResponse(response)) {
      if (state.attempt === 1) return TOKEN_REJECTED;
      const message = extractHaloMessage(parseErrorBody(response));
      throw createHaloPsaError('token_rejected', {
        ...context,
        status,
        detail: message === undefined ? undefined : this.redact(message),
      });
    }
    if (status === 404 && state.nullOnNotFound && !isHtmlResponse(response)) return { value: null };
    if (status < 200 || status >= 300) {
      throw mapStatusError(response, context, {
        notFoundCode: apiRequest.notFoundCode,
        permission: permissionFor(apiRequest.method, apiRequest.resourcePath),
        redact: (text) => this.redact(text),
        nowMs: this.#settings.now(),
      });
    }
    return { value: parse(parseJsonBody(response, context), { ...context, status }) };
  }
}
