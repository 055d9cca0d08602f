/** A stored HaloPSA record: the JSON object the API returns, keyed by HaloPSA's field names. */
export type JsonRecord = Record<string, unknown>;

/**
 * The response to one emulated request. A handler returns it, and the gateway sends it,
 * drops it (a `drop-response` fault) or logs it.
 */
export interface ApiResult {
  status: number;
  /** A JSON value, a string sent as text/plain, or undefined for an empty body. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** Returns whether a parsed JSON value is a plain object (not an array and not null). */
export function isJsonObject(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
