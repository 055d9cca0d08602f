import { lookup as systemLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/**
 * Addresses that ipaddr.js classifies as public unicast but that cloud platforms use for
 * instance metadata or host services. The link-local and unique-local metadata addresses
 * (169.254.169.254, 169.254.170.2, fd00:ec2::254) are blocked by their ranges already.
 */
const METADATA_ADDRESSES = new Set(['168.63.129.16', '100.100.100.200', '192.0.0.192']);

// IPv6 prefixes that carry an IPv4 address inside (NAT64, 6to4, Teredo), so that a public-looking
// IPv6 address can reach a private IPv4 one.
const IPV4_EMBEDDING_PREFIXES: [ipaddr.IPv6, number][] = [
  [ipaddr.IPv6.parse('64:ff9b::'), 96],
  [ipaddr.IPv6.parse('64:ff9b:1::'), 48],
  [ipaddr.IPv6.parse('2002::'), 16],
  [ipaddr.IPv6.parse('2001::'), 32],
];

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

/** Decide whether an outbound connection to `address` (an IP literal) is allowed. */
export function classifyAddress(address: string): AddressVerdict {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (!ipaddr.isValid(bare)) return { allowed: false, reason: `"${address}" is not an IP address` };

  // process() turns IPv4-mapped IPv6 (::ffff:127.0.0.1) into the IPv4 address it carries.
  const parsed = ipaddr.process(bare);
  if (parsed.kind() === 'ipv6') {
    const embedding = IPV4_EMBEDDING_PREFIXES.find(([prefix, bits]) =>
      (parsed as ipaddr.IPv6).match(prefix, bits),
    );
    if (embedding) return { allowed: false, reason: `${bare} embeds an IPv4 address` };
  }
  const range = parsed.range();
  if (range !== 'unicast') return { allowed: false, reason: `${bare} is a ${range} address` };
  if (METADATA_ADDRESSES.has(parsed.toString())) {
    return { allowed: false, reason: `${bare} is a cloud metadata address` };
  }
  return { allowed: true };
}

type ConnectCallback = Parameters<buildConnector.connector>[1];

/** The shape of dns.lookup with `all: true`, which tests replace with a scripted resolver. */
export type ResolveAll = (hostname: string) => Promise<LookupAddress[]>;

export interface OutboundGuardOptions {
  /** host:port pairs that may be reached whatever their address (on-premises HaloPSA). */
  allowedHosts: readonly string[];
  /** Resolver for host names; defaults to the system resolver (dns.lookup). */
  resolveAll?: ResolveAll;
  /** The connector that opens the socket once the address is checked; defaults to undici's. */
  connector?: buildConnector.connector;
  /** Called for every connection that the guard blocks, for logging and tests. */
  onBlocked?: (event: { hostname: string; port: string; reason: string }) => void;
}

const systemResolveAll: ResolveAll = (hostname) =>
  new Promise((resolve, reject) => {
    systemLookup(hostname, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    );
  });

/**
 * Build the undici dispatcher that every call to a HaloPSA instance goes through. It resolves
 * the host once, rejects the connection when any address is loopback, private, link-local,
 * unique-local, multicast, reserved, IPv4-embedding or metadata, and connects to the address it
 * checked, so that DNS answers that change between lookups cannot redirect the call.
 */
export function createGuardedDispatcher(options: OutboundGuardOptions): Dispatcher {
  const resolveAll = options.resolveAll ?? systemResolveAll;
  const allowed = new Set(options.allowedHosts.map((entry) => entry.toLowerCase()));

  const underlying = options.connector ?? buildConnector({});

  const block = (hostname: string, port: string, reason: string, callback: ConnectCallback) => {
    options.onBlocked?.({ hostname, port, reason });
    callback(refusal(hostname), null);
  };

  const connect: buildConnector.connector = (connectOptions, callback) => {
    const hostname = connectOptions.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const port = connectOptions.port || (connectOptions.protocol === 'https:' ? '443' : '80');
    const hostPort = `${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
    if (allowed.has(hostPort)) return underlying(connectOptions, callback);

    if (isIP(hostname)) {
      const verdict = classifyAddress(hostname);
      if (!verdict.allowed) return block(hostname, port, verdict.reason, callback);
      return underlying(connectOptions, callback);
    }

    // One lookup per connection: every address it returns must be allowed, and the socket goes
    // to the first of them, with the name kept for TLS (SNI and certificate checks).
    resolveAll(hostname).then(
      (addresses) => {
        const blocked = addresses
          .map((entry) => classifyAddress(entry.address))
          .find((verdict) => !verdict.allowed);
        if (blocked && !blocked.allowed) return block(hostname, port, blocked.reason, callback);
        if (addresses.length === 0)
          return block(hostname, port, 'the name has no address', callback);
        underlying(
          { ...connectOptions, hostname: addresses[0]!.address, servername: hostname },
          callback,
        );
      },
      (error: Error) => callback(error, null),
    );
  };

  return new Agent({ connect });
}

/**
 * A blocked connection fails like a refused one, so that the answer of a connection check
 * cannot be used to tell blocked addresses from closed ports.
 */
function refusal(hostname: string): Error {
  const error = new Error(`connect ECONNREFUSED ${hostname}`) as NodeJS.ErrnoException;
  error.code = 'ECONNREFUSED';
  return error;
}
