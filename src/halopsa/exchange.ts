import { performance } from 'node:perf_hooks';

import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { request } from 'undici';

import type { FailureContext, HaloPsaErrorCode } from './errors.ts';
import { createHaloPsaError, isHaloPsaError } from './errors.ts';
import { mapNetworkError } from './network-errors.ts';

/** One HTTP call to HaloPSA, reported to `onCall` after it ends. */
export interface HaloCallRecord {
  method: string;
  /** Path and query string, without scheme and host. A token request's body is never included. */
  path: string;
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  durationMs: number;
  /** Set when the call failed. */
  errorCode?: HaloPsaErrorCode;
  /** A token request or an API call. */
  purpose: CallPurpose;
  /** HaloPSA's Retry-After, in seconds, when a 429 response carried one. */
  retryAfterSeconds?: number;
}

export type CallPurpose = 'token' | 'api';

/** Request details passed to `beforeRequest`: never headers or a body. */
export interface HaloRequestInfo {
  method: string;
  /** Path without the query string. */
  path: string;
  purpose: CallPurpose;
}

export interface ExchangeSettings {
  dispatcher?: Dispatcher;
  timeoutMs: number;
  logger?: Logger;
  onCall?: (call: HaloCallRecord) => void;
  /** Defaults to 'api'. */
  purpose?: CallPurpose;
  /**
   * Awaited before each request is sent, for example to take a slot of a rate budget. What it
   * throws reaches the caller unchanged, and the request is not sent or reported.
   */
  beforeRequest?: (request: HaloRequestInfo) => Promise<void>;
  /** Awaited after each call with its record. What it throws is logged, not raised. */
  afterResponse?: (call: HaloCallRecord) => Promise<void>;
}

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

// HaloPSA pages hold at most a few hundred records, so a larger body is not a HaloPSA response
// and is not worth holding in memory.
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Returns the failure context of a request: host, method, path without query, timeout. */
export function contextOf(httpRequest: HttpRequest, timeoutMs?: number): FailureContext {
  return {
    host: httpRequest.url.host,
    method: httpRequest.method,
    path: httpRequest.url.pathname,
    timeoutMs,
  };
}

async function readBody(body: Dispatcher.ResponseData['body'], context: FailureContext) {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy();
      throw createHaloPsaError('unexpected_response', {
        ...context,
        reason: `the response is larger than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB`,
      });
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Sends one HTTP request and passes the complete response to `interpret`, whose result is
 * returned. The timeout covers connecting, waiting and reading the body. Redirects are not
 * followed. Network failures and failures thrown by `interpret` become HaloPsaErrors, and
 * `onCall` gets a record of the call either way.
 */
export async function exchange<T>(
  settings: ExchangeSettings,
  httpRequest: HttpRequest,
  interpret: (response: HttpResponse) => T | Promise<T>,
): Promise<T> {
  const context = contextOf(httpRequest, settings.timeoutMs);
  const purpose = settings.purpose ?? 'api';
  await settings.beforeRequest?.({
    method: httpRequest.method,
    path: httpRequest.url.pathname,
    purpose,
  });
  const started = performance.now();
  const controller = new AbortController();
  const timeoutReason = new Error(`Timed out after ${settings.timeoutMs} ms`);
  const timer = setTimeout(() => controller.abort(timeoutReason), settings.timeoutMs);
  let status: number | null = null;
  let errorCode: HaloPsaErrorCode | undefined;
  let retryAfterSeconds: number | undefined;

  try {
    let response: HttpResponse;
    try {
      const raw = await request(httpRequest.url, {
        method: httpRequest.method,
        headers: httpRequest.headers,
        body: httpRequest.body,
        dispatcher: settings.dispatcher,
        signal: controller.signal,
      });
      status = raw.statusCode;
      const text = await readBody(raw.body, { ...context, status });
      response = { status: raw.statusCode, headers: raw.headers, text };
    } catch (error) {
      if (controller.signal.aborted && controller.signal.reason === timeoutReason) {
        throw createHaloPsaError('timeout', context, error);
      }
      throw mapNetworkError(error, context);
    }
    return await interpret(response);
  } catch (error) {
    const mapped = isHaloPsaError(error)
      ? error
      : createHaloPsaError(
          'unexpected_response',
          { ...context, status: status ?? undefined },
          error,
        );
    errorCode = mapped.code;
    retryAfterSeconds = mapped.retryAfterSeconds;
    throw mapped;
  } finally {
    clearTimeout(timer);
    await reportCall(settings, {
      method: httpRequest.method,
      path: `${httpRequest.url.pathname}${httpRequest.url.search}`,
      status,
      durationMs: Math.round(performance.now() - started),
      purpose,
      ...(errorCode === undefined ? {} : { errorCode }),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
  }
}

async function reportCall(settings: ExchangeSettings, call: HaloCallRecord): Promise<void> {
  settings.logger?.debug(call, 'HaloPSA call');
  if (settings.afterResponse) {
    try {
      await settings.afterResponse(call);
    } catch (error) {
      settings.logger?.warn({ err: error, path: call.path }, 'HaloPSA afterResponse hook threw');
    }
  }
  if (!settings.onCall) return;
  try {
    settings.onCall(call);
  } catch (error) {
    // A failing observer must not turn a successful call into a failure.
    settings.logger?.warn({ err: error, path: call.path }, 'HaloPSA onCall callback threw');
  }
}

/** Returns the first value of a response header, lower-case name. */
export function headerValue(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
