import type { Logger } from 'pino';

import type { FailureContext } from './errors.ts';
import { createHaloPsaError, HaloPsaError, redactSecrets } from './errors.ts';
import type { ExchangeSettings, HttpRequest, HttpResponse } from './exchange.ts';
import { contextOf, exchange } from './exchange.ts';
import {
  extractHaloMessage,
  isHtmlResponse,
  mapStatusError,
  parseErrorBody,
  parseJsonBody,
} from './responses.ts';

export interface TokenSettings {
  tokenUrl: URL;
  clientId: string;
  clientSecret: string;
  /** Space-separated OAuth scopes. */
  scope: string;
  refreshMarginSeconds: number;
  now: () => number;
  exchange: ExchangeSettings;
  logger?: Logger;
}

/** An access token and when to stop using it. */
export interface AccessToken {
  value: string;
  /** The token_type HaloPSA returned, used as the Authorization scheme. */
  type: string;
  /** Clock time (ms) from which the token is refreshed, or Infinity when HaloPSA gave no lifetime. */
  refreshAtMs: number;
}

// OAuth error codes (RFC 6749, section 5.2) that mean the client ID or secret is wrong.
// HaloPSA is known to send invalid_client with HTTP 401; the other two are listed for
// authorisation servers that follow the RFC more loosely.
const CREDENTIAL_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'invalid_grant']);
// Recent token values are kept only to redact them from HaloPSA's messages.
const REMEMBERED_TOKENS = 3;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Fetches access tokens with the client-credentials grant and caches them until
 * `refreshMarginSeconds` before they expire. Concurrent callers share one token request.
 */
export class TokenCache {
  readonly #settings: TokenSettings;
  #cached: AccessToken | undefined;
  #inFlight: Promise<AccessToken> | undefined;
  readonly #issuedValues: string[] = [];

  constructor(settings: TokenSettings) {
    this.#settings = settings;
  }

  /** Returns a valid cached token, or fetches a new one (joining a request already running). */
  async get(): Promise<AccessToken> {
    const cached = this.#cached;
    if (cached && this.#settings.now() < cached.refreshAtMs) return cached;
    if (this.#inFlight) return this.#inFlight;

    this.#inFlight = this.#fetch().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /**
   * Drops `token` from the cache after HaloPSA rejected it. A newer token fetched meanwhile by
   * another caller is kept.
   */
  invalidate(token: AccessToken): void {
    if (this.#cached === token) this.#cached = undefined;
  }

  /** The client secret and recent tokens, which must never appear in messages or logs. */
  secrets(): string[] {
    return [this.#settings.clientSecret, ...this.#issuedValues];
  }

  async #fetch(): Promise<AccessToken> {
    const settings = this.#settings;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: settings.clientId,
      client_secret: settings.clientSecret,
      scope: settings.scope,
    });
    const httpRequest: HttpRequest = {
      method: 'POST',
      url: settings.tokenUrl,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form.toString(),
    };
    const requestedAtMs = settings.now();
    const token = await exchange(settings.exchange, httpRequest, (response) =>
      this.#interpret(response, httpRequest, requestedAtMs),
    );
    this.#cached = token;
    this.#issuedValues.unshift(token.value);
    this.#issuedValues.length = Math.min(this.#issuedValues.length, REMEMBERED_TOKENS);
    settings.logger?.debug(
      {
        refreshInSeconds: Number.isFinite(token.refreshAtMs)
          ? Math.round((token.refreshAtMs - requestedAtMs) / 1000)
          : null,
      },
      'HaloPSA access token obtained',
    );
    return token;
  }

  #interpret(response: HttpResponse, httpRequest: HttpRequest, requestedAtMs: number): AccessToken {
    const context = contextOf(httpRequest);
    if (response.status < 200 || response.status >= 300) {
      throw this.#mapError(response, context);
    }

    const body = parseJsonBody(response, context);
    const accessToken = isRecord(body) ? body.access_token : undefined;
    if (typeof accessToken !== 'string' || accessToken === '') {
      throw createHaloPsaError('not_halopsa', {
        ...context,
        status: response.status,
        reason: `its token endpoint ${context.path ?? ''} returned no access_token`,
      });
    }
    // The token goes into a header, so a character that could end the header is rejected.
    if (/[\s\x00-\x1f\x7f]/.test(accessToken)) {
      throw createHaloPsaError('unexpected_response', {
        ...context,
        status: response.status,
        reason: 'the access token contains whitespace or control characters',
      });
    }

    const record = body as Record<string, unknown>;
    const type =
      typeof record.token_type === 'string' && /^[A-Za-z][A-Za-z0-9._-]*$/.test(record.token_type)
        ? record.token_type
        : 'Bearer';
    return {
      value: accessToken,
      type,
      refreshAtMs: this.#refreshTime(record.expires_in, requestedAtMs),
    };
  }

  #refreshTime(expiresIn: unknown, requestedAtMs: number): number {
    const seconds = typeof expiresIn === 'string' ? Number(expiresIn) : expiresIn;
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
      // NOTE: HaloPSA's token lifetime is not published. Without expires_in the token is used
      // until an API call gets 401, which then fetches a new one.
      return Number.POSITIVE_INFINITY;
    }
    // A margin larger than half the lifetime would refresh on every call, so it is capped.
    const margin = Math.min(this.#settings.refreshMarginSeconds, seconds / 2);
    return requestedAtMs + (seconds - margin) * 1000;
  }

  #mapError(response: HttpResponse, context: FailureContext): HaloPsaError {
    const status = response.status;
    const redact = (text: string) => redactSecrets(text, this.secrets());
    if (
      status === 429 ||
      status >= 500 ||
      (status >= 300 && status < 400) ||
      isHtmlResponse(response)
    ) {
      return mapStatusError(response, context, {
        notFoundCode: 'not_halopsa',
        redact,
        nowMs: this.#settings.now(),
      });
    }

    const body = parseErrorBody(response);
    const oauthError = isRecord(body) && typeof body.error === 'string' ? body.error : undefined;
    const message = extractHaloMessage(body);
    const detail = message === undefined ? undefined : redact(message);
    const base = { ...context, status, detail };

    if (oauthError !== undefined && CREDENTIAL_ERRORS.has(oauthError)) {
      return createHaloPsaError('invalid_credentials', { ...base, reason: oauthError });
    }
    if (oauthError === 'invalid_scope') {
      return new HaloPsaError(
        'validation_failed',
        `HaloPSA rejected the requested scope "${this.#settings.scope}". ` +
          'Request the scope "all", or only scopes that the API application allows.',
        { status, detail },
      );
    }
    if (status === 401 || status === 403) {
      return createHaloPsaError('invalid_credentials', { ...base, reason: `HTTP ${status}` });
    }
    if (status === 404 || status === 405) {
      return createHaloPsaError('not_halopsa', {
        ...base,
        reason: `it has no token endpoint at ${context.path ?? 'the token URL'} (HTTP ${status})`,
      });
    }
    if (status === 400) return createHaloPsaError('validation_failed', base);
    return createHaloPsaError('unexpected_response', {
      ...base,
      reason: detail === undefined ? undefined : `HaloPSA's message was "${detail}"`,
    });
  }
}
