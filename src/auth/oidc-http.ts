import * as client from 'openid-client';
import { fetch as undiciFetch, type Dispatcher } from 'undici';

/** Maximum size of a response from an identity provider, in bytes. Discovery documents and JWKS are usually a few KiB. */
export const MAX_PROVIDER_RESPONSE_BYTES = 1024 * 1024;

/** Timeout of one request to an identity provider, in seconds (openid-client's unit). */
export const PROVIDER_TIMEOUT_SECONDS = 10;

/** Statuses whose response must have no body, so the copied Response gets none. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Build the fetch function that openid-client uses for every call to an identity provider:
 * through `dispatcher`, which decides which addresses may be reached, with no redirects
 * followed and the response body limited to MAX_PROVIDER_RESPONSE_BYTES.
 */
export function providerFetch(dispatcher: Dispatcher): client.CustomFetch {
  return async (url, options) => {
    const response = await undiciFetch(url, {
      method: options.method,
      headers: options.headers,
      body: options.body as NonNullable<Parameters<typeof undiciFetch>[1]>['body'],
      redirect: 'manual',
      dispatcher,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const body = await readLimited(response, url);
    // openid-client checks that it gets the global Response class, which is not undici's.
    return new Response(NULL_BODY_STATUSES.has(response.status) ? null : body, {
      status: response.status,
      statusText: response.statusText,
      headers: [...response.headers],
    });
  };
}

async function readLimited(
  response: Awaited<ReturnType<typeof undiciFetch>>,
  url: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_PROVIDER_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw tooLarge(url);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body) {
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > MAX_PROVIDER_RESPONSE_BYTES) {
        await response.body.cancel();
        throw tooLarge(url);
      }
      chunks.push(chunk);
    }
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function tooLarge(url: string): Error {
  return new Error(
    `the response of ${new URL(url).origin} is larger than ${MAX_PROVIDER_RESPONSE_BYTES} bytes`,
  );
}

/**
 * Fetch the provider's discovery document and return the openid-client configuration for it.
 * Without `clientSecret` the configuration can build authorization URLs but not redeem codes.
 */
export async function discoverProvider(options: {
  issuer: URL;
  clientId: string;
  clientSecret?: string;
  dispatcher: Dispatcher;
  /** Whether http is allowed, for a host:port listed in DMARCDESK_OIDC_ALLOWED_HOSTS only. */
  allowInsecure: boolean;
}): Promise<client.Configuration> {
  return client.discovery(
    options.issuer,
    options.clientId,
    undefined,
    options.clientSecret === undefined
      ? client.None()
      : client.ClientSecretPost(options.clientSecret),
    {
      [client.customFetch]: providerFetch(options.dispatcher),
      timeout: PROVIDER_TIMEOUT_SECONDS,
      execute: options.allowInsecure ? [client.allowInsecureRequests] : [],
    },
  );
}

/**
 * Describe a failed call to an identity provider in one clause that is safe to show to the
 * user. openid-client 6.9 messages name the failed check and contain no token values.
 */
export function describeProviderError(error: unknown): string {
  if (
    error instanceof client.ResponseBodyError ||
    error instanceof client.AuthorizationResponseError
  ) {
    const description = error.error_description ? ` (${truncate(error.error_description)})` : '';
    return `the provider answered ${error.error}${description}`;
  }
  const timedOut = findInChain(
    error,
    (link) => link instanceof Error && (link.name === 'TimeoutError' || link.name === 'AbortError'),
  );
  if (timedOut) {
    return `the provider did not answer within ${PROVIDER_TIMEOUT_SECONDS} seconds`;
  }
  const unreachable = findInChain(
    error,
    (link) => link instanceof TypeError && link.message === 'fetch failed',
  );
  if (unreachable) {
    const code = ((unreachable as Error).cause as { code?: string } | undefined)?.code;
    return `the provider could not be reached${code ? ` (${code})` : ''}`;
  }
  if (error instanceof client.ClientError && error.cause instanceof Error) {
    // openid-client's own message is generic ("unexpected JWT claim value encountered"), but
    // its cause names the claim or attribute.
    return truncate(`${error.message}: ${error.cause.message}`);
  }
  if (error instanceof Error) return truncate(error.message);
  return 'an unknown error occurred';
}

function findInChain(error: unknown, matches: (link: unknown) => boolean): unknown {
  let link: unknown = error;
  for (let depth = 0; depth < 5 && link !== undefined && link !== null; depth += 1) {
    if (matches(link)) return link;
    link = (link as { cause?: unknown }).cause;
  }
  return undefined;
}

function truncate(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
