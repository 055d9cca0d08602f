import { AppError } from '../errors/app-error.ts';
import { HaloPsaError, type HaloPsaErrorCode } from '../halopsa/index.ts';
import { DEFAULT_RATE_BUDGET, RateBudgetRefusal } from './rate-budget.ts';

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
  // HaloPSA's own 429 reads like a refusal of the rate budget: the caller may try again later.
  // Without HaloPSA's Retry-After, the budget's shortest pause is the least wait; a request sent
  // while the pause lasts is refused with its exact end.
  if (context === 'call' && error.code === 'rate_limited') {
    const retryAfterSeconds = Math.max(
      1,
      Math.ceil(error.retryAfterSeconds ?? DEFAULT_RATE_BUDGET.minPauseSeconds),
    );
    return new AppError('halopsa_rate_limited', error.message, {
      details: {
        halopsaError: error.code,
        ...(error.status ? { halopsaStatus: error.status } : {}),
        retryable: true,
        retryAfterSeconds,
        retryAt: new Date(Date.now() + retryAfterSeconds * 1000).toISOString(),
      },
      retryAfterSeconds,
      cause: error,
    });
  }
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
