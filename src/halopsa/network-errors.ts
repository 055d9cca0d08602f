import type { FailureContext, HaloPsaError } from './errors.ts';
import { createHaloPsaError, isHaloPsaError } from './errors.ts';

// Error codes set by Node's resolver (getaddrinfo), its sockets and TLS layer, and by undici.
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA', 'EAI_FAIL']);
// EAI_AGAIN is a temporary resolver failure, so only that DNS code is worth retrying.
const TEMPORARY_DNS_CODES = new Set(['EAI_AGAIN']);
const CONNECTION_REASONS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ECONNRESET: 'the connection was closed',
  ECONNABORTED: 'the connection was closed',
  EPIPE: 'the connection was closed',
  UND_ERR_SOCKET: 'the connection was closed',
  UND_ERR_CLOSED: 'the connection was closed',
  ERR_STREAM_PREMATURE_CLOSE: 'the connection was closed',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the host is unreachable',
  EHOSTDOWN: 'the host is unreachable',
  ENETDOWN: 'the host is unreachable',
  EADDRNOTAVAIL: 'the host is unreachable',
};
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const TLS_REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain contains a self-signed certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is not signed by a trusted authority',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate is not signed by a trusted authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is not signed by a trusted authority',
  CERT_UNTRUSTED: 'the certificate is not trusted',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  CERT_REVOKED: 'the certificate has been revoked',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not cover this host name',
  HOSTNAME_MISMATCH: 'the certificate does not cover this host name',
  ERR_SSL_WRONG_VERSION_NUMBER:
    'the server did not respond in TLS, so it may expect http:// instead of https://',
  EPROTO: 'the TLS handshake failed',
};
const TLS_CODE_PREFIXES = ['ERR_TLS_', 'ERR_SSL_', 'CERT_'];

interface CodedError {
  code?: unknown;
  hostname?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/**
 * Collects the `code` of an error, its causes and, for an AggregateError (which Node raises
 * when every address of a host fails), its inner errors. Stops after 10 errors.
 */
function collectErrorCodes(error: unknown): { codes: string[]; hostname?: string } {
  const codes: string[] = [];
  let hostname: string | undefined;
  const pending: unknown[] = [error];
  for (let visited = 0; pending.length > 0 && visited < 10; visited += 1) {
    const current = pending.shift();
    if (typeof current !== 'object' || current === null) continue;
    const coded = current as CodedError;
    if (typeof coded.code === 'string') codes.push(coded.code);
    if (hostname === undefined && typeof coded.hostname === 'string') hostname = coded.hostname;
    if (coded.cause !== undefined) pending.push(coded.cause);
    if (Array.isArray(coded.errors)) pending.push(...coded.errors);
  }
  return { codes, hostname };
}

function isTlsCode(code: string): boolean {
  return code in TLS_REASONS || TLS_CODE_PREFIXES.some((prefix) => code.startsWith(prefix));
}

/**
 * Maps an error thrown while sending a request or reading its response (DNS, socket, TLS,
 * timeout) to a HaloPsaError, keeping the original as `cause`. An error that is already a
 * HaloPsaError is returned unchanged. An error without a known code becomes
 * connection_failed.
 */
export function mapNetworkError(error: unknown, context: FailureContext): HaloPsaError {
  if (isHaloPsaError(error)) return error;
  const { codes, hostname } = collectErrorCodes(error);

  const dnsCode = codes.find((code) => DNS_CODES.has(code));
  if (dnsCode !== undefined) {
    return createHaloPsaError(
      'host_not_found',
      { ...context, host: hostname ?? context.host, retryable: TEMPORARY_DNS_CODES.has(dnsCode) },
      error,
    );
  }

  const tlsCode = codes.find(isTlsCode);
  if (tlsCode !== undefined) {
    return createHaloPsaError(
      'tls_failed',
      { ...context, reason: TLS_REASONS[tlsCode] ?? `error code ${tlsCode}` },
      error,
    );
  }

  if (codes.some((code) => TIMEOUT_CODES.has(code))) {
    return createHaloPsaError('timeout', context, error);
  }

  if (codes.includes('ERR_INVALID_URL')) {
    return createHaloPsaError('invalid_url', context, error);
  }

  const connectionCode = codes.find((code) => code in CONNECTION_REASONS);
  const reason = connectionCode === undefined ? undefined : CONNECTION_REASONS[connectionCode];
  return createHaloPsaError('connection_failed', { ...context, reason }, error);
}
