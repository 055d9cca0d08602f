import type { FailureContext, HaloPsaError, HaloPsaErrorCode } from './errors.ts';
import { createHaloPsaError } from './errors.ts';
import type { HttpResponse } from './exchange.ts';
import { headerValue } from './exchange.ts';
import type { HaloPermission } from './permissions.ts';

/** Returns whether the response is an HTML page, which HaloPSA's API never sends. */
export function isHtmlResponse(response: HttpResponse): boolean {
  const contentType = headerValue(response, 'content-type') ?? '';
  return /\bhtml\b/i.test(contentType) || /^\s*</.test(response.text);
}

/**
 * Parses a successful response body as JSON. Returns undefined for an empty body.
 *
 * @throws HaloPsaError not_halopsa for an HTML page or a body that is not JSON.
 */
export function parseJsonBody(response: HttpResponse, context: FailureContext): unknown {
  if (isHtmlResponse(response)) {
    throw createHaloPsaError('not_halopsa', {
      ...context,
      status: response.status,
      reason:
        context.method && context.path
          ? `it returned an HTML page for ${context.method} ${context.path}`
          : 'it returned an HTML page',
    });
  }
  if (response.text.trim() === '') return undefined;
  try {
    return JSON.parse(response.text) as unknown;
  } catch (error) {
    throw createHaloPsaError(
      'not_halopsa',
      { ...context, status: response.status, reason: 'it returned text that is not JSON' },
      error,
    );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * Flattens an ASP.NET model-state dictionary such as {"[0].id": ["The id is invalid."]} into
 * "[0].id: The id is invalid.". Returns undefined when `value` is not such a dictionary.
 */
function flattenModelState(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length === 0) return undefined;
  const parts: string[] = [];
  for (const [key, messages] of entries) {
    const list = typeof messages === 'string' ? [messages] : messages;
    if (!Array.isArray(list) || !list.every((message) => typeof message === 'string')) {
      return undefined;
    }
    const text = list.map((message) => message.trim()).filter((message) => message !== '');
    if (text.length === 0) continue;
    // ASP.NET files errors about the body as a whole under the empty key.
    parts.push(key === '' ? text.join(' ') : `${key}: ${text.join(' ')}`);
  }
  return parts.length === 0 ? undefined : parts.join('; ');
}

/**
 * Extracts HaloPSA's message from an error body in any of the shapes HaloPSA sends: a
 * plain string, {resultCode, errorMessage}, a .NET exception {ClassName, Message}, a
 * model-state dictionary keyed by JSON path (also inside ProblemDetails' "errors"), or an
 * OAuth {error, error_description}. Returns undefined when there is none.
 */
export function extractHaloMessage(body: unknown): string | undefined {
  if (typeof body === 'string') return nonEmptyString(body);
  if (Array.isArray(body)) {
    const messages = body.map(extractHaloMessage).filter((message) => message !== undefined);
    return messages.length === 0 ? undefined : messages.join('; ');
  }
  if (!isRecord(body)) return undefined;

  const direct =
    nonEmptyString(body.errorMessage) ??
    nonEmptyString(body.Message) ??
    nonEmptyString(body.message);
  if (direct !== undefined) return direct;

  const problemErrors = flattenModelState(body.errors);
  if (problemErrors !== undefined) return problemErrors;
  const title = nonEmptyString(body.title);
  if (title !== undefined) return title;

  const oauth = nonEmptyString(body.error_description) ?? nonEmptyString(body.error);
  if (oauth !== undefined) return oauth;

  return flattenModelState(body);
}

/** Parses an error body: JSON when it is JSON, otherwise the text itself. HTML gives undefined. */
export function parseErrorBody(response: HttpResponse): unknown {
  if (isHtmlResponse(response)) return undefined;
  const text = response.text.trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Reads a Retry-After header given in seconds or as an HTTP date. Returns whole seconds
 * from `nowMs`, or undefined when the header is absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}

export interface StatusErrorOptions {
  /** Code for a 404: not_found for a record, not_halopsa where the route itself must exist. */
  notFoundCode: Extract<HaloPsaErrorCode, 'not_found' | 'not_halopsa'>;
  permission?: HaloPermission;
  redact: (text: string) => string;
  nowMs: number;
}

/**
 * Maps an unsuccessful response of the resource server to a HaloPsaError. 401 is not
 * handled here, because the transport first retries it with a new token.
 */
export function mapStatusError(
  response: HttpResponse,
  context: FailureContext,
  options: StatusErrorOptions,
): HaloPsaError {
  const status = response.status;
  const body = parseErrorBody(response);
  const message = extractHaloMessage(body);
  const detail = message === undefined ? undefined : options.redact(message);
  const base: FailureContext = { ...context, status, detail };

  if (status === 429) {
    const retryAfterSeconds = parseRetryAfter(headerValue(response, 'retry-after'), options.nowMs);
    return createHaloPsaError('rate_limited', { ...base, reason: detail, retryAfterSeconds });
  }
  // 501 and 505 mean that the server does not support the method or the HTTP version at all,
  // which load or an outage does not cause. A static file server returns 501 for every POST.
  if (status === 501 || status === 505) {
    return createHaloPsaError('not_halopsa', {
      ...base,
      detail: undefined,
      reason:
        status === 501
          ? `it does not implement ${describeMethod(context)} (HTTP 501 Not Implemented)`
          : 'it does not support the HTTP version of the request (HTTP 505)',
    });
  }
  if (status >= 500) {
    return createHaloPsaError('server_error', { ...base, reason: detail });
  }
  if (status >= 300 && status < 400) {
    const location = headerValue(response, 'location');
    return createHaloPsaError('not_halopsa', {
      ...base,
      detail: undefined,
      reason: `it returned a redirect (HTTP ${status})${describeRedirectTarget(location)}`,
    });
  }
  if (isHtmlResponse(response)) {
    return createHaloPsaError('not_halopsa', {
      ...base,
      detail: undefined,
      reason: `it returned an HTML page (HTTP ${status})`,
    });
  }
  if (status === 400) return createHaloPsaError('validation_failed', base);
  if (status === 403) {
    return createHaloPsaError('permission_missing', { ...base, permission: options.permission });
  }
  if (status === 404) {
    return createHaloPsaError(
      options.notFoundCode,
      options.notFoundCode === 'not_halopsa'
        ? { ...base, reason: `it returned HTTP 404 for ${context.path ?? 'an API route'}` }
        : base,
    );
  }
  return createHaloPsaError('unexpected_response', {
    ...base,
    reason: detail === undefined ? undefined : `HaloPSA's message was "${detail}"`,
  });
}

function describeMethod(context: FailureContext): string {
  if (context.method && context.path) return `${context.method} ${context.path}`;
  return context.method ?? 'the request';
}

/** Names only the host of a redirect target, since its path or query may carry a token. */
function describeRedirectTarget(location: string | undefined): string {
  if (location === undefined) return '';
  try {
    return ` to ${new URL(location).host}`;
  } catch {
    return '';
  }
}
