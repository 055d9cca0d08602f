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

/** The request log served by GET /_emulator/requests, oldest first. */
export class RequestLog {
  private entries: RequestLogEntry[] = [];

  add(entry: RequestLogEntry): void {
    this.entries.push({ ...entry, query: redactQuery(entry.query) });
    if (this.entries.length > MAX_ENTRIES)
      this.entries.splice(0, this.entries.length - MAX_ENTRIES);
  }

  list(): RequestLogEntry[] {
    return [...this.entries];
  }

  clear(): void {
    this.entries = [];
  }
}

function redactQuery(query: Record<string, string | string[]>): Record<string, string | string[]> {
  const copy: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(query)) {
    copy[name] = SECRET_QUERY_NAMES.has(name.toLowerCase()) ? '[redacted]' : value;
  }
  return copy;
}
