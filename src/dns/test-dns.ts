// Shared setup for the DNS tests: a loopback DNS server per test and a resolver pointed at it
// with a short timeout, so that timeout cases stay fast. Both are stopped after each test.
import { afterEach } from 'node:test';

import type {
  DnsServerOptions,
  TestDnsServer,
  Zone,
  ZoneRecord,
} from '../../test/support/dns-server.ts';
import { startDnsServer } from '../../test/support/dns-server.ts';
import { DnsResolver } from './resolver.ts';

/** Resolver timeout in the tests, in milliseconds: long for loopback, short for timeout cases. */
export const testTimeoutMs = 250;

export interface TestDns {
  server: TestDnsServer;
  resolver: DnsResolver;
}

/**
 * Register cleanup for the calling test file and return a function that starts a server
 * with `zone` and a resolver that queries only that server.
 */
export function useTestDns(): (zone: Zone, options?: DnsServerOptions) => Promise<TestDns> {
  const servers: TestDnsServer[] = [];
  afterEach(async () => {
    while (servers.length > 0) await servers.pop()?.stop();
  });
  return async (zone, options) => {
    const server = await startDnsServer(zone, options);
    servers.push(server);
    const resolver = new DnsResolver({
      servers: [server.address],
      timeoutMs: testTimeoutMs,
      tries: 1,
    });
    return { server, resolver };
  };
}

/** Build a zone entry of one TXT record made of the given strings. */
export function txt(...strings: string[]): ZoneRecord[] {
  return [{ type: 'TXT', data: strings }];
}

/** Build a zone entry of one TXT record of `text`, split into strings of 250 characters. */
export function longTxt(text: string): ZoneRecord[] {
  const strings: string[] = [];
  for (let start = 0; start < text.length; start += 250) {
    strings.push(text.slice(start, start + 250));
  }
  return [{ type: 'TXT', data: strings }];
}
