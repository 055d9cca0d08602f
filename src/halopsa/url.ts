import { HaloPsaError } from './errors.ts';

const EXAMPLE_URL = 'https://yourcompany.halopsa.com';
const MAX_SHOWN_INPUT = 200;

function invalidUrl(message: string): HaloPsaError {
  return new HaloPsaError(
    'invalid_url',
    `${message} Enter the instance address, for example ${EXAMPLE_URL}.`,
  );
}

/** Returns the input quoted with a leading space, or nothing when it may contain a password. */
function quote(input: string): string {
  if (input.includes('@')) return '';
  const shown = input.length > MAX_SHOWN_INPUT ? `${input.slice(0, MAX_SHOWN_INPUT)}...` : input;
  return ` ${JSON.stringify(shown)}`;
}

/**
 * Parses and normalises an instance URL typed by a user, for example
 * " https://acme.halopsa.com/api/ " becomes https://acme.halopsa.com/.
 *
 * Trims whitespace, requires http or https, and rejects a user name or password, a query
 * string and a fragment. Strips trailing slashes and one trailing "/api" or "/auth" segment
 * (either case), because users often paste the Resource Server or Authorisation Server
 * address that HaloPSA shows. A path before that is kept, for instances served below one.
 *
 * @throws HaloPsaError with code invalid_url, whose message names what is wrong.
 */
export function parseInstanceUrl(input: string): URL {
  if (typeof input !== 'string') throw invalidUrl('The HaloPSA URL is missing.');
  const trimmed = input.trim();
  if (trimmed === '') throw invalidUrl('The HaloPSA URL is empty.');

  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw invalidUrl(`The HaloPSA URL${quote(trimmed)} must start with https:// (or http://).`);
  }

  let url: URL;
  try {
    url = new URL(trimmed);
  } catch (error) {
    // The input may contain credentials, so it is not shown here.
    throw new HaloPsaError(
      'invalid_url',
      `The HaloPSA URL is not a valid URL. Enter the instance address, for example ${EXAMPLE_URL}.`,
      { cause: error },
    );
  }

  if (url.username !== '' || url.password !== '') {
    throw invalidUrl(
      'The HaloPSA URL contains a user name or password. ' +
        'Remove it, because the client ID and secret are entered separately.',
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidUrl(
      `The HaloPSA URL${quote(trimmed)} uses ${scheme}://, but only https and http are supported.`,
    );
  }
  // The raw text is checked because the URL parser drops an empty "?" or "#". The input is
  // not quoted, since a query string can carry a key.
  if (trimmed.includes('?')) {
    throw invalidUrl('The HaloPSA URL contains a query string (the part from "?"). Remove it.');
  }
  if (trimmed.includes('#')) {
    throw invalidUrl('The HaloPSA URL contains a fragment (the part from "#"). Remove it.');
  }
  if (url.hostname === '') {
    throw invalidUrl(`The HaloPSA URL${quote(trimmed)} has no host name.`);
  }

  const path = url.pathname
    .replace(/\/+$/, '')
    .replace(/\/(api|auth)$/i, '')
    .replace(/\/+$/, '');
  url.pathname = path === '' ? '/' : path;
  return url;
}

/** Returns `base` as text without a trailing slash, ready for a path to be appended. */
function withoutTrailingSlash(base: URL): string {
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
}

/**
 * Returns the token endpoint. Without `authUrl` it is `<instance>/auth/token`. An `authUrl`
 * is the Authorisation Server address HaloPSA shows under API Details, to which "/token" is
 * appended unless it already ends so. `tenant`, when given, is sent as the `tenant` query
 * parameter, which hosted instances on a shared authorisation server need.
 *
 * @throws HaloPsaError with code invalid_url when `authUrl` is not an http or https URL
 *   without credentials.
 */
export function buildTokenUrl(instance: URL, authUrl?: string, tenant?: string): URL {
  let url: URL;
  if (authUrl === undefined || authUrl.trim() === '') {
    url = new URL(`${withoutTrailingSlash(instance)}/auth/token`);
  } else {
    url = parseAuthorisationUrl(authUrl);
  }
  if (tenant !== undefined && tenant !== '') url.searchParams.set('tenant', tenant);
  return url;
}

function parseAuthorisationUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch (error) {
    throw new HaloPsaError(
      'invalid_url',
      'The HaloPSA authorisation server URL is not a valid URL. ' +
        'Copy it from API Details in HaloPSA, for example https://yourcompany.halopsa.com/auth.',
      { cause: error },
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new HaloPsaError(
      'invalid_url',
      `The HaloPSA authorisation server URL uses ${url.protocol}//, but only https and http are supported.`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new HaloPsaError(
      'invalid_url',
      'The HaloPSA authorisation server URL contains a user name or password. Remove it.',
    );
  }
  url.hash = '';
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = /\/token$/i.test(path) ? path : `${path}/token`;
  return url;
}

/** Query parameters of an API call; undefined values are left out. */
export type QueryParameters = Record<string, string | number | boolean | undefined>;

/**
 * Returns the URL of `resourcePath` (for example "Tickets/12") on the instance's resource
 * server `<instance>/api`, with the given query parameters.
 */
export function buildApiUrl(instance: URL, resourcePath: string, query: QueryParameters = {}): URL {
  const url = new URL(`${withoutTrailingSlash(instance)}/api/${resourcePath.replace(/^\/+/, '')}`);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  return url;
}
