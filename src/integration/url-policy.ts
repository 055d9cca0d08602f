import { isIP } from 'node:net';
import { HaloPsaError, parseInstanceUrl } from '../halopsa/index.ts';
import { classifyAddress } from './outbound-guard.ts';

/**
 * Parse a HaloPSA URL typed by an operator and apply the outbound policy: https, a host name
 * rather than an IP address, no local names, and port 443 or 1024 and above. A host:port listed
 * in DMARCDESK_HALOPSA_ALLOWED_HOSTS (an on-premises HaloPSA, or the emulator in tests) is exempt.
 * The addresses a name resolves to are checked again at every connection by the guarded
 * dispatcher, because DNS can change after the URL was saved.
 */
export function checkInstanceUrl(input: string, allowedHosts: readonly string[]): URL {
  const url = parseInstanceUrl(input);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const hostPort = `${url.hostname}:${port}`.toLowerCase();
  if (allowedHosts.includes(hostPort)) return url;

  const allowHint = `An administrator can allow an on-premises instance by adding ${hostPort} to DMARCDESK_HALOPSA_ALLOWED_HOSTS.`;
  if (url.protocol !== 'https:') {
    throw invalidUrl(
      `The HaloPSA URL must start with https:// (got ${url.protocol}//). ${allowHint}`,
    );
  }

  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (isIP(host)) {
    const verdict = classifyAddress(host);
    const kind = verdict.allowed ? 'an IP address' : 'a local or private address';
    throw invalidUrl(
      `The HaloPSA URL points at ${kind} (${url.hostname}); use the instance's host name, such as https://yourcompany.halopsa.com. ${allowHint}`,
    );
  }
  if (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) {
    throw invalidUrl(
      `The HaloPSA URL points at a local name (${url.hostname}); use the instance's full host name. ${allowHint}`,
    );
  }
  if (port !== '443' && Number(port) < 1024) {
    throw invalidUrl(
      `The HaloPSA URL uses port ${port}; HaloPSA is served on 443, and only ports from 1024 up are accepted otherwise. ${allowHint}`,
    );
  }
  return url;
}

function invalidUrl(message: string): HaloPsaError {
  return new HaloPsaError('invalid_url', message);
}
