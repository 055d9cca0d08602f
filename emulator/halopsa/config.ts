// Settings a test can change at run time through POST /_emulator/config. Most of them cover a
// point where HaloPSA's real behaviour is not public, so the emulator lets the caller choose.

/** A rolling-window request limit: at most `limit` requests in any `windowSeconds` span. */
export interface RateLimitSetting {
  limit: number;
  windowSeconds: number;
}

/** Handling of a POST element whose `id` matches no record; HaloPSA's behaviour is unknown. */
export type UnknownIdPolicy = 'reject' | 'create';

/** The emulator's run-time settings. */
export interface EmulatorConfig {
  /** Lifetime of new access tokens in seconds; 0 issues tokens that are already expired. */
  tokenLifetimeSeconds: number;
  /** null turns the rate limit off. */
  rateLimit: RateLimitSetting | null;
  /** Whether a 429 carries a Retry-After header (in seconds). */
  retryAfter: boolean;
  /** Rows returned by a list call that is not paging and sends no `count`. */
  defaultPageSize: number;
  /** Maximum page_size per resource, keyed by lower-case resource name; absent or null = no cap. */
  pageCaps: Record<string, number | null>;
  /** Outcome ids the API agent may not use on actions. */
  forbiddenOutcomeIds: number[];
  unknownIdPolicy: UnknownIdPolicy;
}

/** HaloPSA's hosted limit: 300 requests per rolling 5-minute window. */
export const DEFAULT_RATE_LIMIT: RateLimitSetting = { limit: 300, windowSeconds: 300 };

/** Returns a fresh copy of the default settings. */
export function defaultConfig(): EmulatorConfig {
  return {
    tokenLifetimeSeconds: 3600,
    rateLimit: { ...DEFAULT_RATE_LIMIT },
    retryAfter: false,
    // 50 is the default page observed for an API agent that does not page.
    defaultPageSize: 50,
    // Tickets silently cap page_size at 100 (documented in HaloPSA's OpenAPI text and seen
    // live). Caps for the other resources are unknown, so they have none by default.
    pageCaps: { tickets: 100 },
    forbiddenOutcomeIds: [],
    unknownIdPolicy: 'reject',
  };
}
