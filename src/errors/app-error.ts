/**
 * The catalogue of errors the API returns, each code with its HTTP status. The message of an
 * AppError is a sentence safe to show to the user: it never holds a secret, a token or a
 * provider's raw payload.
 */
export const ERROR_STATUS = {
  validation_failed: 400,
  unauthenticated: 401,
  forbidden: 403,
  integration_disabled: 403,
  not_found: 404,
  conflict: 409,
  halopsa_not_connected: 409,
  payload_too_large: 413,
  too_many_requests: 429,
  unsupported_media_type: 415,
  report_rejected: 422,
  halopsa_connection_failed: 422,
  halopsa_request_failed: 502,
  halopsa_rate_limited: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface AppErrorOptions {
  /** The request field the error is about, as a dotted path such as `domains.0.name`. */
  field?: string;
  /** Extra machine-readable facts, safe to send to the client. */
  details?: Record<string, unknown>;
  /** Seconds the client should wait before it tries again, sent as the Retry-After header. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** An expected failure: thrown by services, turned into a response by the HTTP error boundary. */
export class AppError extends Error {
  readonly status: number;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
    this.field = options.field;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function notFound(what: string, id: string): AppError {
  return new AppError('not_found', `No ${what} with id ${id} exists in this account.`, {
    details: { id },
  });
}
