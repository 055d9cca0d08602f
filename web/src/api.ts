// The one way the web app calls the service's REST API. The session travels in its HttpOnly
// cookie; every request that changes something also sends the session's CSRF token.
import type { ApiErrorBody } from '../../src/contract/platform.ts';

/** A failed API call, with the server's sentence and the request field it concerns. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | null = null;
const sessionEndedListeners = new Set<() => void>();

/** Remember the CSRF token of the signed-in session, or forget it on sign-out. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Call `listener` whenever the server returns 401, so the app can ask to sign in again. */
export function onSessionEnded(listener: () => void): () => void {
  sessionEndedListeners.add(listener);
  return () => sessionEndedListeners.delete(listener);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Send one request to `/api/v1${path}` and return the parsed JSON body.
 *
 * @throws ApiError with the server's code, message and field for every non-2xx response, and
 *   with code `network` when the service cannot be reached. An aborted request rethrows the
 *   browser's AbortError.
 */
export async function apiRequest<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  options: { signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  // Fastify rejects an empty body sent as JSON, so the header goes only with a body.
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;

  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(
      0,
      'network',
      'dmarcdesk could not be reached. Check the network connection and try again.',
    );
  }

  const text = await response.text();
  const parsed = text ? parseJson(text) : null;
  if (response.ok) return parsed as T;

  const error = (parsed as ApiErrorBody | null)?.error;
  if (response.status === 401 && path !== '/auth/sign-in') {
    for (const listener of sessionEndedListeners) listener();
  }
  throw new ApiError(
    response.status,
    error?.code ?? `http_${response.status}`,
    error?.message ?? `The server returned HTTP ${response.status} for ${method} ${path}.`,
    error?.field,
    error?.details,
  );
}

export const api = {
  get: <T>(path: string, options?: { signal?: AbortSignal }) =>
    apiRequest<T>('GET', path, undefined, options),
  put: <T>(path: string, body: unknown, options?: { signal?: AbortSignal }) =>
    apiRequest<T>('PUT', path, body, options),
  post: <T>(path: string, body?: unknown, options?: { signal?: AbortSignal }) =>
    apiRequest<T>('POST', path, body, options),
};

/**
 * Turn a server message about one field into a sentence to show beside that field. The API
 * writes `Field "url": is required`, which reads better as `HaloPSA URL is required.`.
 */
export function fieldMessage(label: string, message: string): string {
  const match = /^Field "[^"]*": (.*)$/s.exec(message);
  if (!match) return message;
  const rest = match[1]!.replace(/\.$/, '');
  if (/^(is|must|cannot|has|does)\b/.test(rest)) return `${label} ${rest}.`;
  return `${rest.charAt(0).toUpperCase()}${rest.slice(1)}.`;
}

/** Return the message of any thrown value, for showing it to the user. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return 'Something went wrong; try again.';
}
