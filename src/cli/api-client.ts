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

const DEFAULT_URL = 'http://127.0.0.1:8080';

/** A small client of the service's REST API for the command line. */
export class ApiClient {
  private readonly serviceUrl: string;
  private readonly baseUrl: string;
  private readonly token: string;

  /** `urlSource` is the option or variable that `url` came from, named in errors. */
  constructor(
    url: string | undefined,
    token: string | undefined,
    private readonly urlSource = 'DMARCDESK_URL',
  ) {
    if (!token)
      throw new CliError(
        'No API token: pass --token or set DMARCDESK_TOKEN (dmarcdesk account create prints one).',
      );
    this.serviceUrl = (url ?? DEFAULT_URL).replace(/\/+$/, '');
    if (!isHttpUrl(this.serviceUrl))
      throw new CliError(
        `${urlSource} ${JSON.stringify(url)} is not an http:// or https:// URL. ` +
          `Give the address of the dmarcdesk service, such as ${DEFAULT_URL}.`,
      );
    this.baseUrl = `${this.serviceUrl}/api/v1`;
    this.token = token;
  }

  get(path: string): Promise<unknown> {
    return this.request('GET', path);
  }

  /**
   * Send a request with a JSON body. `fieldOptions` maps body fields to the CLI options that set
   * them, so that a validation error names the option in place of the field.
   */
  send(
    method: string,
    path: string,
    body?: unknown,
    fieldOptions: Record<string, string> = {},
  ): Promise<unknown> {
    if (body === undefined) return this.request(method, path);
    return this.request(method, path, JSON.stringify(body), 'application/json', fieldOptions);
  }

  upload(path: string, bytes: Buffer): Promise<unknown> {
    return this.request('POST', path, bytes, 'application/octet-stream');
  }

  private async request(
    method: string,
    path: string,
    body?: string | Buffer,
    contentType?: string,
    fieldOptions: Record<string, string> = {},
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
        `Could not connect to dmarcdesk at ${this.serviceUrl}: ${this.describeFetchFailure(error)}`,
        null,
      );
    }
    if (response.status === 204) return null;
    const text = await response.text();
    const parsed = text ? this.parseJson(method, path, response, text) : null;
    if (!response.ok) {
      const error = (parsed as { error?: { message?: string; field?: string } } | null)?.error;
      const message = nameOption(error?.message ?? text, error?.field, fieldOptions);
      throw new ApiRequestError(
        `${method} ${path} failed with ${response.status}: ${message}`,
        response.status,
      );
    }
    return parsed;
  }

  /**
   * Parse a response body, or throw when it is not JSON. The routes that the CLI calls return
   * JSON or no body, so another body means that the URL leads to some other server, such as a
   * web server or proxy.
   */
  private parseJson(method: string, path: string, response: Response, text: string): unknown {
    const contentType = response.headers.get('content-type');
    if (contentType && /\bjson\b/i.test(contentType)) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        // Reported below, as for any other body that is not JSON.
      }
    }
    const type = contentType ? `content type ${contentType}` : 'no content type';
    throw new ApiRequestError(
      `The server at ${this.serviceUrl} responded to ${method} /api/v1${path} with status ` +
        `${response.status} and ${type}, which is not a response of the dmarcdesk API. ` +
        `Check that ${this.urlSource} is the address of the dmarcdesk service.`,
      response.status,
    );
  }

  /** Describe why fetch failed, from the cause that undici attaches to its TypeError. */
  private describeFetchFailure(error: unknown): string {
    const cause = (error as { cause?: unknown }).cause;
    const code = (cause as { code?: unknown } | undefined)?.code;
    const causeMessage = cause instanceof Error ? cause.message : undefined;
    const url = new URL(this.serviceUrl);
    const check = `Check ${this.urlSource}.`;
    if (causeMessage === 'bad port') {
      // undici blocks the ports of the Fetch standard's bad port list, such as 9 (discard).
      return (
        `fetch blocks port ${url.port} because it belongs to another protocol. Run the ` +
        `service on another port, such as 8080, and set ${this.urlSource} to match.`
      );
    }
    switch (code) {
      case 'ECONNREFUSED':
        return `the connection was refused, so nothing is listening on ${url.host}. Start the service (npm start), or check ${this.urlSource}.`;
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return `the host name ${url.hostname} was not found (${code}). ${check}`;
      case 'ETIMEDOUT':
      case 'UND_ERR_CONNECT_TIMEOUT':
        return `the connection to ${url.host} timed out. Check that the service runs there, and check ${this.urlSource}.`;
      case 'ECONNRESET':
      case 'UND_ERR_SOCKET':
        return `the connection was closed before a response came. ${check}`;
      default: {
        const detail = causeMessage ?? (error instanceof Error ? error.message : String(error));
        return `${detail}${typeof code === 'string' ? ` (${code})` : ''}. ${check}`;
      }
    }
  }
}

function isHttpUrl(value: string): boolean {
  try {
    return /^https?:$/.test(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** Replace the `Field "name":` that starts a validation message with the option that sets it. */
function nameOption(
  message: string,
  field: string | undefined,
  fieldOptions: Record<string, string>,
): string {
  const option = field === undefined ? undefined : fieldOptions[field];
  const prefix = `Field "${field}": `;
  if (option === undefined || !message.startsWith(prefix)) return message;
  return `--${option} ${message.slice(prefix.length)}`;
}
