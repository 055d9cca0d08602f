import { isIP } from 'node:net';
import { HaloPsaError, parseInstanceUrl } from '../halopsa/index.ts';

/**
 * Parse a HaloPSA URL typed by an operator and apply the outbound policy: https only, and no
 * loopback, private or link-local address, unless its host:port is listed in
 * DMARCDESK_HALOPSA_ALLOWED_HOSTS (an on-premises HaloPSA, or the emulator in tests).
 *
 * NOTE: only IP literals are checked here. A host name that resolves to a private address is
 * not yet caught; that needs a connect-time check of the resolved address in the dispatcher.
 */
export function checkInstanceUrl(input: string, allowedHosts: readonly string[]): URL {
  const url = parseInstanceUrl(input);
  const hostPort =
    `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`.toLowerCase();
  if (allowedHosts.includes(hostPort)) return url;

  if (url.protocol !== 'https:') {
    throw new HaloPsaError(
      'invalid_url',
      `The HaloPSA URL must start with https:// (got ${url.protocol}//). An administrator can allow ` +
        `plain http for an on-premises instance by adding ${hostPort} to DMARCDESK_HALOPSA_ALLOWED_HOSTS.`,
    );
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    (isIP(host) && isPrivateAddress(host))
  ) {
    throw new HaloPsaError(
      'invalid_url',
      `The HaloPSA URL points at a local or private address (${url.hostname}). An administrator can ` +
        `allow it for an on-premises instance by adding ${hostPort} to DMARCDESK_HALOPSA_ALLOWED_HOSTS.`,
    );
  }
  return url;
}

function isPrivateAddress(address: string): boolean {
  if (isIP(address) === 4) {
    const [a = 0, b = 0] = address.split('.').map(Number);
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      a >= 224
    );
  }
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:')) {
    const mapped = lower.slice(7);
    return isIP(mapped) === 4 ? isPrivateAddress(mapped) : true;
  }
  return (
    lower === '::' ||
    lower === '::1' ||
    /^f[cd]/.test(lower) ||
    /^fe[89ab]/.test(lower) ||
    lower.startsWith('ff')
  );
}
