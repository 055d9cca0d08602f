/** A usage or request error the CLI prints as it is, without a stack. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** A request to the service that failed, with the HTTP status, or null when no response came. */
export class ApiRequestError extends CliError {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

/** A small client of the service's REST API for the command line. */
export class ApiClient {
  private readonly baseUrl: string;
  private readonly token: string;

  constructor(url: string | undefined, token: string | undefined) {
    if (!token)
      throw new CliError(
        'No API token: pass --token or set DMARCDESK_TOKEN (dmarcdesk account create prints one).',
      );
    this.baseUrl = `${(url ?? 'http://127.0.0.1:8080').replace(/\/+$/, '')}/api/v1`;
    this.token = token;
  }

  get(path: string): Promise<unknown> {
    return this.request('GET', path);
  }

  send(method: string, path: string, body?: unknown): Promise<unknown> {
    if (body === undefined) return this.request(method, path);
    return this.request(method, path, JSON.stringify(body), 'application/json');
  }

  upload(path: string, bytes: Buffer): Promise<unknown> {
    return this.request('POST', path, bytes, 'application/octet-stream');
  }

  private async request(
    method: string,
    path: string,
    body?: string | Buffer,
    contentType?: string,
  ): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(contentType ? { 'content-type': contentType } : {}),
        },
        ...(body !== undefined
          ? { body: typeof body === 'string' ? body : new Uint8Array(body) }
          : {}),
      });
    } catch (error) {
      throw new ApiRequestError(
        `Could not reach dmarcdesk at ${this.baseUrl}: ${(error as Error).cause ?? (error as Error).message}. Is the service running?`,
        null,
      );
    }
    if (response.status === 204) return null;
    const text = await response.text();
    const parsed = text ? (JSON.parse(text) as unknown) : null;
    if (!response.ok) {
      const message = (parsed as { error?: { message?: string } } | null)?.error?.message ?? text;
      throw new ApiRequestError(
        `${method} ${path} failed with ${response.status}: ${message}`,
        response.status,
      );
    }
    return parsed;
  }
}
