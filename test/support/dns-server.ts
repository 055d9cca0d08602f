// A DNS server on 127.0.0.1 for tests. It answers only from its zone map and never forwards
// a query anywhere, so tests never reach real DNS. UDP and TCP listen on the same port
// because c-ares retries a truncated UDP answer over TCP on the port it already uses.
import type { AddressInfo, Socket } from 'node:net';

import type { Resource } from 'dns2';
import { Packet, TCPServer, UDPServer } from 'dns2';

/** One resource record served by the test server. `ttl` defaults to 300 seconds. */
export type ZoneRecord =
  | { type: 'TXT'; data: string | string[]; ttl?: number }
  | { type: 'A'; address: string; ttl?: number }
  | { type: 'AAAA'; address: string; ttl?: number }
  | { type: 'MX'; exchange: string; priority?: number; ttl?: number }
  | { type: 'CNAME'; target: string; ttl?: number };

/**
 * A failure the server produces instead of an answer. `timeout` sends nothing at all, so
 * the client's own timeout decides how long the query takes.
 */
export type DnsFailure = 'servfail' | 'timeout' | 'nxdomain' | 'refused';

/** The records of one owner name, or the failure every query for that name gets. */
export type ZoneEntry = ZoneRecord[] | { failure: DnsFailure };

/** Owner names (case-insensitive, `*.` for a wildcard) and what the server serves there. */
export type Zone = Record<string, ZoneEntry>;

export interface ReceivedQuery {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface TestDnsServer {
  /** `127.0.0.1:PORT`, the form `Resolver.setServers` takes. */
  address: string;
  port: number;
  /** Every query received so far, in arrival order. */
  queries: ReceivedQuery[];
  /** Replace the entry of one owner name. Later queries see the new entry. */
  set(name: string, entry: ZoneEntry): void;
  /** Remove one owner name, so that queries for it get NXDOMAIN. */
  remove(name: string): void;
  /**
   * Install a hook that may fail any query before the zone is consulted (return a failure)
   * or let it through (return undefined). Pass undefined to remove the hook.
   */
  intercept(hook: ((query: ReceivedQuery) => DnsFailure | undefined) | undefined): void;
  stop(): Promise<void>;
}

export interface DnsServerOptions {
  /**
   * Answer a query for an alias with the CNAME and the target's records, as a recursive
   * resolver does (default true). With false the answer holds only the CNAME, as an
   * authoritative server answers for a target outside its zones.
   */
  chaseCnames?: boolean;
}

const maxChasedCnames = 8;
const defaultTtl = 300;

const typeNames = new Map<number, string>(
  Object.entries(Packet.TYPE).map(([name, code]) => [code as number, name]),
);

function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Reject TXT strings longer than 255 bytes, which cannot be encoded (RFC 1035 section 3.3),
 * so the mistake shows in the test that made it.
 */
function checkEntry(name: string, entry: ZoneEntry): ZoneEntry {
  if (!Array.isArray(entry)) return entry;
  for (const record of entry) {
    if (record.type !== 'TXT') continue;
    const strings = Array.isArray(record.data) ? record.data : [record.data];
    for (const text of strings) {
      const bytes = Buffer.byteLength(text);
      if (bytes > 255) {
        throw new Error(
          `TXT string of ${bytes} bytes at ${name} is too long: split it into strings of at most 255 bytes.`,
        );
      }
    }
  }
  return entry;
}

/** Start the server on an ephemeral port of 127.0.0.1 with a copy of `zone`. */
export async function startDnsServer(
  zone: Zone = {},
  options: DnsServerOptions = {},
): Promise<TestDnsServer> {
  const chaseCnames = options.chaseCnames ?? true;
  const entries = new Map<string, ZoneEntry>();
  for (const [name, entry] of Object.entries(zone)) {
    entries.set(canonicalName(name), checkEntry(name, entry));
  }
  const queries: ReceivedQuery[] = [];
  let hook: ((query: ReceivedQuery) => DnsFailure | undefined) | undefined;

  function findEntry(name: string): ZoneEntry | undefined {
    const exact = entries.get(name);
    if (exact) return exact;
    const labels = name.split('.');
    for (let index = 1; index < labels.length; index += 1) {
      const wildcard = entries.get(`*.${labels.slice(index).join('.')}`);
      if (wildcard) return wildcard;
    }
    return undefined;
  }

  /** Return true for a name without records but with names below it, which exists (RFC 8020). */
  function isEmptyNonTerminal(name: string): boolean {
    for (const owner of entries.keys()) if (owner.endsWith(`.${name}`)) return true;
    return false;
  }

  function toResource(owner: string, record: ZoneRecord): Resource {
    const base = { name: owner, class: Packet.CLASS.IN, ttl: record.ttl ?? defaultTtl };
    switch (record.type) {
      case 'TXT':
        return { ...base, type: Packet.TYPE.TXT, data: record.data } as Resource;
      case 'A':
        return { ...base, type: Packet.TYPE.A, address: record.address } as Resource;
      case 'AAAA':
        return { ...base, type: Packet.TYPE.AAAA, address: record.address } as Resource;
      case 'MX':
        return {
          ...base,
          type: Packet.TYPE.MX,
          exchange: record.exchange,
          priority: record.priority ?? 10,
        } as Resource;
      case 'CNAME':
        return { ...base, type: Packet.TYPE.CNAME, domain: record.target } as Resource;
    }
  }

  /** Fill `response` for one question. Returns false when the query must go unanswered. */
  function answer(request: Packet, response: Packet, transport: 'udp' | 'tcp'): boolean {
    const question = request.questions[0];
    if (!question) {
      response.header.rcode = Packet.RCODE.FORMERR;
      return true;
    }
    const name = canonicalName(question.name);
    const type = typeNames.get(question.type) ?? String(question.type);
    const query: ReceivedQuery = { name, type, transport };
    queries.push(query);

    const failure = hook?.(query);
    const entry = findEntry(name);
    const effectiveFailure =
      failure ?? (entry && !Array.isArray(entry) ? entry.failure : undefined);
    if (effectiveFailure) return applyFailure(response, effectiveFailure);
    if (!entry) {
      if (!isEmptyNonTerminal(name)) response.header.rcode = Packet.RCODE.NXDOMAIN;
      return true;
    }

    let owner = name;
    let records = entry as ZoneRecord[];
    const visited = new Set<string>([owner]);
    for (let hop = 0; hop <= maxChasedCnames; hop += 1) {
      const cname = records.find((record) => record.type === 'CNAME');
      if (!cname || type === 'CNAME') {
        for (const record of records) {
          if (record.type === type) response.answers.push(toResource(owner, record));
        }
        return true;
      }
      response.answers.push(toResource(owner, cname));
      const target = canonicalName(cname.target);
      if (!chaseCnames || visited.has(target)) return true;
      const targetEntry = findEntry(target);
      if (!targetEntry || !Array.isArray(targetEntry)) return true;
      visited.add(target);
      owner = target;
      records = targetEntry;
    }
    return true;
  }

  function applyFailure(response: Packet, failure: DnsFailure): boolean {
    switch (failure) {
      case 'timeout':
        return false;
      case 'servfail':
        response.header.rcode = Packet.RCODE.SERVFAIL;
        return true;
      case 'refused':
        response.header.rcode = Packet.RCODE.REFUSED;
        return true;
      case 'nxdomain':
        response.header.rcode = Packet.RCODE.NXDOMAIN;
        return true;
    }
  }

  function handler(transport: 'udp' | 'tcp') {
    return (request: Packet, send: (response: Packet) => Promise<Buffer>) => {
      const response = Packet.createResponseFromRequest(request);
      response.header.aa = 1;
      if (answer(request, response, transport)) {
        // A client that gave up closes its socket first. That send error is of no interest.
        send(response).catch(() => undefined);
      }
    };
  }

  const newUdpServer = () => {
    const server = new UDPServer();
    server.on('request', handler('udp'));
    server.on('requestError', () => undefined);
    return server;
  };
  const tcp = new TCPServer();
  tcp.on('request', handler('tcp'));
  tcp.on('requestError', () => undefined);
  // dns2 keeps idle TCP connections open for ten seconds. stop() ends them at once.
  const connections = new Set<Socket>();
  tcp.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
  });

  // dns2 treats port 0 as "no port given" and then binds TCP to every interface, so UDP
  // picks the port and TCP binds to that port on 127.0.0.1 explicitly. The client end of any
  // TCP connection on the machine may hold that port number, so a clash picks a new port.
  let udp = newUdpServer();
  let port = 0;
  for (let attempt = 1; ; attempt += 1) {
    await udp.listen(0, '127.0.0.1');
    port = (udp.address() as AddressInfo).port;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      break;
    } catch (error) {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 10) throw error;
      udp = newUdpServer();
    }
  }

  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    set(name, entry) {
      entries.set(canonicalName(name), checkEntry(name, entry));
    },
    remove(name) {
      entries.delete(canonicalName(name));
    },
    intercept(nextHook) {
      hook = nextHook;
    },
    async stop() {
      for (const socket of connections) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}
