/** One API or token request as the emulator saw it. Bodies are not kept, so no secret is. */
export interface RequestLogEntry {
  method: string;
  /** The request path without the query string, in the case the client sent. */
  path: string;
  query: Record<string, string | string[]>;
  /** The status sent, or would have been sent for a dropped response; null after a reset. */
  status: number | null;
  /** ISO-8601 time on the emulator's clock. */
  at: string;
  /** The injected fault that handled the request, if any. */
  fault?: string;
}

// Query names whose values are credentials. HaloPSA takes them in the body, but a client
// that wrongly puts them in the URL must not have them copied into the log.
const SECRET_QUERY_NAMES = new Set(['client_secret', 'access_token', 'password']);

// Bounds memory when a benchmark runs a long load against one instance.
const MAX_ENTRIES = 10_000;

/**
 * Totals of every request since the last clear, served by GET /_emulator/requests/counts. They
 * are kept apart from the entries, so they stay exact after the log drops its oldest entries.
 */
export interface RequestCounts {
  total: number;
  /** Requests received that have no response yet, such as those an injected delay holds. */
  inFlight: number;
  /** Requests per status sent, keyed by the status as text; "none" for a destroyed connection. */
  byStatus: Record<string, number>;
  /** Requests per injected fault kind; requests without a fault are not counted here. */
  byFault: Record<string, number>;
  /** Requests per method and lower-case path with numeric segments as ":id", e.g. "GET /api/tickets/:id". */
  byRoute: Record<string, number>;
}

function emptyCounts(): Omit<RequestCounts, 'inFlight'> {
  return { total: 0, byStatus: {}, byFault: {}, byRoute: {} };
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** The request log served by GET /_emulator/requests, oldest first, and its totals. */
export class RequestLog {
  private entries: RequestLogEntry[] = [];
  private totals: Omit<RequestCounts, 'inFlight'> = emptyCounts();
  /** Kept by the gateway; a clear leaves it alone, because those requests are still open. */
  inFlight = 0;

  add(entry: RequestLogEntry): void {
    this.entries.push({ ...entry, query: redactQuery(entry.query) });
    if (this.entries.length > MAX_ENTRIES)
      this.entries.splice(0, this.entries.length - MAX_ENTRIES);

    this.totals.total += 1;
    increment(this.totals.byStatus, entry.status === null ? 'none' : String(entry.status));
    if (entry.fault !== undefined) increment(this.totals.byFault, entry.fault);
    const route = entry.path.toLowerCase().replace(/\/\d+(?=\/|$)/g, '/:id');
    increment(this.totals.byRoute, `${entry.method.toUpperCase()} ${route}`);
  }

  list(): RequestLogEntry[] {
    return [...this.entries];
  }

  counts(): RequestCounts {
    return { ...structuredClone(this.totals), inFlight: this.inFlight };
  }

  clear(): void {
    this.entries = [];
    this.totals = emptyCounts();
  }
}

function redactQuery(query: Record<string, string | string[]>): Record<string, string | string[]> {
  const copy: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(query)) {
    copy[name] = SECRET_QUERY_NAMES.has(name.toLowerCase()) ? '[redacted]' : value;
  }
  return copy;
}
