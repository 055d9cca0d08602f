import { AppError } from '../errors/app-error.ts';
import { HaloPsaError, type HaloPsaErrorCode } from '../halopsa/index.ts';
import { RateBudgetRefusal } from './rate-budget.ts';

// The connection form field each failure is about, so the wizard can show it beside that field.
const FIELD_BY_CODE: Partial<Record<HaloPsaErrorCode, string>> = {
  invalid_url: 'url',
  host_not_found: 'url',
  connection_failed: 'url',
  tls_failed: 'url',
  not_halopsa: 'url',
  timeout: 'url',
  invalid_credentials: 'clientSecret',
  token_rejected: 'clientId',
};

/** Wrap a HaloPSA client failure as an API error that keeps the client's sentence. */
export function toAppError(error: unknown, context: 'connect' | 'call' = 'call'): unknown {
  if (error instanceof RateBudgetRefusal) {
    return new AppError('halopsa_rate_limited', error.message, {
      details: {
        halopsaError: error.code,
        retryable: true,
        retryAfterSeconds: error.retryAfterSeconds,
        retryAt: error.retryAt.toISOString(),
      },
      retryAfterSeconds: error.retryAfterSeconds,
      cause: error,
    });
  }
  if (!(error instanceof HaloPsaError)) return error;
  const code =
    context === 'call'
      ? 'halopsa_request_failed'
      : error.code === 'invalid_url'
        ? 'validation_failed'
        : 'halopsa_connection_failed';
  const field = context === 'connect' ? FIELD_BY_CODE[error.code] : undefined;
  return new AppError(code, error.message, {
    ...(field ? { field } : {}),
    details: {
      halopsaError: error.code,
      ...(error.permission ? { permission: error.permission } : {}),
      ...(error.status ? { halopsaStatus: error.status } : {}),
      retryable: error.retryable,
    },
    cause: error,
  });
}
