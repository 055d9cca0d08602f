import type { HaloPermission } from './permissions.ts';
import { describePermissionLocation } from './permissions.ts';

/** Failure categories of the HaloPSA client. Each one has its own sentence below. */
export type HaloPsaErrorCode =
  | 'invalid_url'
  | 'host_not_found'
  | 'connection_failed'
  | 'tls_failed'
  | 'timeout'
  | 'not_halopsa'
  | 'invalid_credentials'
  | 'token_rejected'
  | 'permission_missing'
  | 'rate_limited'
  | 'validation_failed'
  | 'not_found'
  | 'server_error'
  | 'unexpected_response';

/** Every error code, in the order of the type above. */
export const HALO_PSA_ERROR_CODES: readonly HaloPsaErrorCode[] = [
  'invalid_url',
  'host_not_found',
  'connection_failed',
  'tls_failed',
  'timeout',
  'not_halopsa',
  'invalid_credentials',
  'token_rejected',
  'permission_missing',
  'rate_limited',
  'validation_failed',
  'not_found',
  'server_error',
  'unexpected_response',
];

// Failures that can pass on their own, so that the same request may succeed later.
// A retried POST after a timeout may duplicate a record: callers that create records
// must check for the earlier one first (for tickets, findTicketsByThirdPartyId).
const RETRYABLE_CODES: ReadonlySet<HaloPsaErrorCode> = new Set([
  'connection_failed',
  'timeout',
  'rate_limited',
  'server_error',
]);

export interface HaloPsaErrorOptions {
  status?: number;
  permission?: HaloPermission;
  detail?: string;
  /** Default: true for connection_failed, timeout, rate_limited and server_error. */
  retryable?: boolean;
  retryAfterSeconds?: number;
  cause?: unknown;
}

/**
 * A failed HaloPSA operation. `message` is a sentence a technician can act on; `code` is
 * stable for programs. Neither the message nor `detail` ever contains a secret or a token.
 */
export class HaloPsaError extends Error {
  override readonly name = 'HaloPsaError';
  readonly code: HaloPsaErrorCode;
  /** HTTP status of HaloPSA's response, when there was one. */
  readonly status?: number;
  /** The permission HaloPSA denied, for permission_missing. */
  readonly permission?: HaloPermission;
  /** HaloPSA's own message text, with secrets removed. */
  readonly detail?: string;
  readonly retryable: boolean;
  /** Seconds to wait before retrying, from HaloPSA's Retry-After header. */
  readonly retryAfterSeconds?: number;

  constructor(code: HaloPsaErrorCode, message: string, options: HaloPsaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.permission = options.permission;
    this.detail = options.detail;
    this.retryable = options.retryable ?? RETRYABLE_CODES.has(code);
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Returns whether `value` is a HaloPsaError, optionally with the given code. */
export function isHaloPsaError(value: unknown, code?: HaloPsaErrorCode): value is HaloPsaError {
  return value instanceof HaloPsaError && (code === undefined || value.code === code);
}

/** Facts about a failed request, used to build the error's sentence. */
export interface FailureContext {
  /** Host (and port, when not the default) of the server that was called. */
  host: string;
  method?: string;
  /** URL path of the request, without the query string. */
  path?: string;
  status?: number;
  permission?: HaloPermission;
  /** HaloPSA's own message, already redacted. */
  detail?: string;
  /** A short phrase saying what exactly went wrong, for example "the certificate has expired". */
  reason?: string;
  retryAfterSeconds?: number;
  timeoutMs?: number;
  retryable?: boolean;
}

const EXAMPLE_URL = 'https://yourcompany.halopsa.com';
const API_SETTINGS = 'Configuration > Integrations > Halo API';

function describeRequest(context: FailureContext): string {
  if (context.method && context.path) return `${context.method} ${context.path}`;
  return 'the request';
}

function withReason(context: FailureContext): string {
  return context.reason ? ` (${context.reason})` : '';
}

function endSentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function withBecause(context: FailureContext): string {
  return context.reason ? `, because ${context.reason}` : '';
}

function withStatus(context: FailureContext): string {
  return context.status === undefined ? '' : ` with HTTP ${context.status}`;
}

function describeRetryWait(context: FailureContext): string {
  if (context.retryAfterSeconds !== undefined) {
    return `Retry after ${context.retryAfterSeconds} seconds, as HaloPSA asked.`;
  }
  // Hosted HaloPSA allows 300 requests per rolling 5-minute window. Public reports of its 429
  // responses mention no Retry-After header.
  return (
    'Wait a few minutes before retrying, because hosted HaloPSA counts requests ' +
    'over a rolling 5-minute window.'
  );
}

const SENTENCES: Record<HaloPsaErrorCode, (context: FailureContext) => string> = {
  invalid_url: (context) =>
    `The HaloPSA URL is invalid${withReason(context)}. ` +
    `Enter the instance address, for example ${EXAMPLE_URL}.`,
  host_not_found: (context) =>
    `The host name ${context.host} could not be found in DNS. ` +
    `Check the spelling of the HaloPSA URL, for example ${EXAMPLE_URL}.`,
  connection_failed: (context) =>
    `The connection to ${context.host} failed before HaloPSA responded to ` +
    `${describeRequest(context)}${withReason(context)}. ` +
    'Check the URL and port, and that this server can reach HaloPSA.',
  tls_failed: (context) =>
    `The TLS connection to ${context.host} failed${withReason(context)}. ` +
    'Check that the URL uses https and that the server has a valid certificate for that host name.',
  timeout: (context) =>
    `${describeRequest(context)} on ${context.host} timed out` +
    (context.timeoutMs === undefined ? '' : ` after ${context.timeoutMs} ms`) +
    '. HaloPSA may be overloaded or unreachable. Try again later.',
  not_halopsa: (context) =>
    `The server at ${context.host} does not look like a HaloPSA instance${withBecause(context)}. ` +
    `Check the URL, for example ${EXAMPLE_URL}.`,
  invalid_credentials: (context) =>
    `HaloPSA rejected the client ID or secret${withReason(context)}. ` +
    `Check both values in HaloPSA under ${API_SETTINGS} > Applications, ` +
    'and create a new secret if the old one is lost.',
  token_rejected: (context) =>
    `HaloPSA issued an access token but rejects it on ${describeRequest(context)}. ` +
    "Check the API application's permissions and that its login type is Agent.",
  permission_missing: (context) =>
    context.permission
      ? `HaloPSA denied ${describeRequest(context)} ` +
        `because the permission ${context.permission} is missing. ` +
        describePermissionLocation(context.permission)
      : `HaloPSA denied ${describeRequest(context)} with HTTP 403. ` +
        `Check the API application's permissions under ${API_SETTINGS} > Applications, ` +
        'and the role of the agent it logs in as.',
  rate_limited: (context) =>
    `HaloPSA's rate limit was reached on ${describeRequest(context)}${withReason(context)}. ` +
    describeRetryWait(context),
  validation_failed: (context) =>
    context.detail
      ? `HaloPSA rejected ${describeRequest(context)} as invalid: ${endSentence(context.detail)}`
      : `HaloPSA rejected ${describeRequest(context)} as invalid` +
        `${withStatus(context)}${withReason(context)}.`,
  not_found: (context) =>
    `HaloPSA has no record for ${describeRequest(context)}` +
    (context.status === undefined ? '.' : ` (HTTP ${context.status}).`),
  server_error: (context) =>
    `HaloPSA failed on ${describeRequest(context)}${withStatus(context)}${withReason(context)}. ` +
    'The fault is on the HaloPSA side, so try again later.',
  unexpected_response: (context) =>
    `HaloPSA responded to ${describeRequest(context)}${withStatus(context)} ` +
    `in a form this client cannot read${withBecause(context)}.`,
};

/** Builds the sentence for `code` from what is known about the failure. */
export function describeFailure(code: HaloPsaErrorCode, context: FailureContext): string {
  return SENTENCES[code](context);
}

/** Creates a HaloPsaError whose message is the standard sentence for `code`. */
export function createHaloPsaError(
  code: HaloPsaErrorCode,
  context: FailureContext,
  cause?: unknown,
): HaloPsaError {
  return new HaloPsaError(code, describeFailure(code, context), {
    status: context.status,
    permission: context.permission,
    detail: context.detail,
    retryable: context.retryable,
    retryAfterSeconds: context.retryAfterSeconds,
    cause,
  });
}

const MAX_DETAIL_LENGTH = 500;

/** Replaces each of `secrets` in `text` with "[redacted]" and trims the text to 500 characters. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length > 0) result = result.split(secret).join('[redacted]');
  }
  const trimmed = result.trim();
  return trimmed.length > MAX_DETAIL_LENGTH
    ? `${trimmed.slice(0, MAX_DETAIL_LENGTH - 3)}...`
    : trimmed;
}
