// HaloPSA has no single error format, and clients handle at least three 400 body styles. The
// emulator uses each style for a different class of mistake, so that a client must cope with
// all three. Which style HaloPSA uses for which mistake is not public, so the assignment below
// is the emulator's own choice (listed in the README).
import type { ApiResult } from './types.ts';

/**
 * Builds a 400 in the ASP.NET model-state style: a dictionary keyed by JSON path
 * (`[0].client_id`, `$`, `id`) whose values are lists of messages. Used for input that
 * cannot be bound to the request model: a body that is not an array, a wrong JSON type,
 * a malformed id or query value.
 */
export function modelStateError(errors: Record<string, string[]>): ApiResult {
  return { status: 400, body: errors };
}

/**
 * Builds a 400 in the style of a serialised .NET exception (`ClassName`, `Message`). Used for
 * business-rule failures: a missing required field, a reference to a record that does not
 * exist, an action without an outcome.
 */
export function exceptionError(message: string): ApiResult {
  return {
    status: 400,
    body: {
      ClassName: 'System.Exception',
      Message: message,
      Data: null,
      InnerException: null,
      HelpURL: null,
      StackTraceString: null,
      HResult: -2146233088,
      Source: null,
    },
  };
}

/**
 * Builds a 400 in the `{resultCode, errorMessage}` style. Used for rules that a ticket type's
 * configuration imposes, such as a type that rejects creation through the API.
 */
export function resultCodeError(errorMessage: string): ApiResult {
  // NOTE: the meaning of HaloPSA's resultCode values is not public; 1 is a placeholder.
  return { status: 400, body: { resultCode: 1, errorMessage } };
}

/** Builds a 404 for a record or route that does not exist. The real body is not public. */
export function notFound(message: string): ApiResult {
  return { status: 404, body: { Message: message } };
}
