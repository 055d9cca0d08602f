// Helpers shared by the emulator's contract tests. They speak plain HTTP through fetch, as
// a HaloPSA client would, and import nothing from the emulator's internals.

export const DEMO_CLIENT_ID = 'dmarcdesk-demo';
export const DEMO_CLIENT_SECRET = 'demo-secret-change-me';

/** A response with its body read once, as JSON when it parses and as text otherwise. */
export interface ReadResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** Sends a request and reads its body. */
export async function send(url: string, init: RequestInit = {}): Promise<ReadResponse> {
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Posts a client-credentials token request with the given form fields. */
export async function postTokenForm(
  baseUrl: string,
  fields: Record<string, string>,
  path = '/auth/token',
  headers: Record<string, string> = {},
): Promise<ReadResponse> {
  return send(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** Obtains an access token for an application; throws when the token endpoint refuses. */
export async function getToken(
  baseUrl: string,
  options: { scope?: string; clientId?: string; clientSecret?: string } = {},
): Promise<string> {
  const response = await postTokenForm(baseUrl, {
    grant_type: 'client_credentials',
    client_id: options.clientId ?? DEMO_CLIENT_ID,
    client_secret: options.clientSecret ?? DEMO_CLIENT_SECRET,
    scope: options.scope ?? 'all',
  });
  const body = response.json as { access_token?: string } | undefined;
  if (response.status !== 200 || body?.access_token === undefined) {
    throw new Error(`token request failed with ${response.status}: ${response.text}`);
  }
  return body.access_token;
}

/** Returns a small HaloPSA API client bound to one token. */
export function apiClient(baseUrl: string, token: string) {
  const auth = { authorization: `Bearer ${token}` };
  return {
    get: (path: string) => send(`${baseUrl}/api${path}`, { headers: auth }),
    post: (path: string, body: unknown) =>
      send(`${baseUrl}/api${path}`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    delete: (path: string) => send(`${baseUrl}/api${path}`, { method: 'DELETE', headers: auth }),
  };
}

export type ApiClient = ReturnType<typeof apiClient>;

/** Calls a control route under /_emulator with an optional JSON body. */
export async function control(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ReadResponse> {
  return send(`${baseUrl}/_emulator${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
}

/** Returns every stored record of a resource through the control routes. */
export async function storedRecords(
  baseUrl: string,
  resource: string,
): Promise<Array<Record<string, unknown>>> {
  const response = await control(baseUrl, 'GET', `/records/${resource}`);
  return (response.json as { records: Array<Record<string, unknown>> }).records;
}

/** Narrows a JSON value to an object for property access in assertions. */
export function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`expected a JSON object, got ${JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Narrows a JSON value to an array of objects. */
export function asRows(value: unknown): Array<Record<string, unknown>> {
  if (!Array.isArray(value)) throw new Error(`expected a JSON array, got ${JSON.stringify(value)}`);
  return value as Array<Record<string, unknown>>;
}
