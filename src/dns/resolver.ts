// The one place that talks to DNS. Every lookup returns a typed outcome instead of throwing,
// because a timeout or SERVFAIL must stay distinguishable from "no such record": treating
// the first as the second is how monitors report records as removed when DNS only flaked.
import { Resolver } from 'node:dns/promises';

/** Outcomes that tell something about the name: the record set, or its absence. */
export type LookupAnswerStatus = 'ok' | 'nxdomain' | 'nodata';
/** Outcomes that tell nothing about the name, only that this lookup did not work. */
export type LookupProblemStatus = 'servfail' | 'timeout' | 'refused' | 'error';
export type LookupStatus = LookupAnswerStatus | LookupProblemStatus;

export interface LookupSuccess<T> {
  status: 'ok';
  /** The name asked for, lower-cased and without a trailing dot (before any CNAME). */
  name: string;
  records: T[];
  /** Smallest TTL of the answer in seconds, when the lookup reports TTLs (A and AAAA). */
  ttl?: number;
  /** CNAME targets followed from `name`, in order, or empty when `name` is no alias. */
  cnameChain: string[];
}

export interface LookupFailure {
  status: Exclude<LookupStatus, 'ok'>;
  name: string;
  cnameChain: string[];
  /** Node's error code (ENOTFOUND, ETIMEOUT, ...) or CNAME_LOOP, CNAME_DEPTH, BAD_NAME. */
  code: string;
  /** A sentence naming the lookup and what went wrong. */
  message: string;
}

export type LookupOutcome<T> = LookupSuccess<T> | LookupFailure;

export interface MxRecord {
  exchange: string;
  priority: number;
}

/** The lookups the record checks need. `DnsResolver` implements them over real DNS. */
export interface DnsLookups {
  lookupTxt(name: string): Promise<LookupOutcome<string[]>>;
  lookupA(name: string): Promise<LookupOutcome<string>>;
  lookupAaaa(name: string): Promise<LookupOutcome<string>>;
  lookupMx(name: string): Promise<LookupOutcome<MxRecord>>;
}

export interface DnsResolverOptions {
  /** `ip` or `ip:port` entries (default: the system's resolvers). */
  servers?: string[];
  /** Time to wait for one answer, in milliseconds (default 2000). */
  timeoutMs?: number;
  /** Attempts per server before a lookup times out (default 1). */
  tries?: number;
  /** CNAME hops followed before the lookup fails with CNAME_DEPTH (default 8). */
  maxCnameDepth?: number;
}

/** True for outcomes that prove nothing about the record: SERVFAIL, timeout, REFUSED, errors. */
export function isLookupProblem(outcome: { status: LookupStatus }): boolean {
  return (
    outcome.status === 'servfail' ||
    outcome.status === 'timeout' ||
    outcome.status === 'refused' ||
    outcome.status === 'error'
  );
}

/** True when DNS answered that the name has no records of the requested type. */
export function isMissing(outcome: { status: LookupStatus }): boolean {
  return outcome.status === 'nxdomain' || outcome.status === 'nodata';
}

const statusByCode: Record<string, Exclude<LookupStatus, 'ok'>> = {
  ENOTFOUND: 'nxdomain',
  ENODATA: 'nodata',
  ESERVFAIL: 'servfail',
  ETIMEOUT: 'timeout',
  EREFUSED: 'refused',
};

const problemWords: Record<Exclude<LookupStatus, 'ok'>, string> = {
  nxdomain: 'found that the name does not exist (NXDOMAIN)',
  nodata: 'found no records of that type (NODATA)',
  servfail: 'failed with SERVFAIL',
  timeout: 'timed out',
  refused: 'was refused by the server',
  error: 'failed',
};

/** Lower-case a DNS name and drop the trailing dot, so names compare as DNS compares them. */
export function canonicalDnsName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/** Check RFC 1035 length limits, since c-ares rejects such names with an unhelpful code. */
function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.length > 253) return `the name is ${name.length} characters long (at most 253)`;
  const labels = name.split('.');
  if (labels.some((label) => label.length === 0)) return 'the name has an empty label';
  const long = labels.find((label) => label.length > 63);
  if (long) return `the label "${long.slice(0, 20)}..." is longer than 63 characters`;
  return undefined;
}

type RawQuery<T> = (name: string) => Promise<{ records: T[]; ttl?: number }>;

/**
 * A resolver over node:dns/promises `Resolver` whose lookups never throw for DNS failures.
 * It follows CNAME chains itself, so the chain is known even when the responding server
 * does not chase aliases. DMARC and DKIM records are often CNAMEs to a provider.
 */
export class DnsResolver implements DnsLookups {
  readonly #resolver: Resolver;
  readonly #timeoutMs: number;
  readonly #maxCnameDepth: number;
  readonly #deadlineMs: number;

  constructor(options: DnsResolverOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 2000;
    const tries = options.tries ?? 1;
    this.#maxCnameDepth = options.maxCnameDepth ?? 8;
    this.#resolver = new Resolver({ timeout: this.#timeoutMs, tries });
    if (options.servers) this.#resolver.setServers(options.servers);
    // A backstop in case c-ares does not honour its own timeout, as some Node 20 releases did
    // not. The factor of 4 leaves room for c-ares' retry back-off across servers.
    const serverCount = Math.max(1, this.#resolver.getServers().length);
    this.#deadlineMs = this.#timeoutMs * tries * serverCount * 4 + 1000;
  }

  /** Return the servers queried, as `ip` or `[ip]:port` strings. */
  servers(): string[] {
    return this.#resolver.getServers();
  }

  /**
   * Look up TXT records. Each record is its list of strings, split as published.
   * NOTE: node:dns (Node 20) returns no TTL for TXT, so DMARC, SPF and DKIM observations have
   * none. The checks do not need it, because a TTL-only change is no change. Reporting how
   * long a changed record may stay cached would need a DNS client that reads the raw answer.
   */
  lookupTxt(name: string): Promise<LookupOutcome<string[]>> {
    return this.#follow(name, 'TXT', async (target) => ({
      records: await this.#resolver.resolveTxt(target),
    }));
  }

  /** Look up IPv4 addresses, with the smallest TTL of the answer. */
  lookupA(name: string): Promise<LookupOutcome<string>> {
    return this.#follow(name, 'A', async (target) => {
      const answers = await this.#resolver.resolve4(target, { ttl: true });
      return { records: answers.map((answer) => answer.address), ttl: smallestTtl(answers) };
    });
  }

  /** Look up IPv6 addresses, with the smallest TTL of the answer. */
  lookupAaaa(name: string): Promise<LookupOutcome<string>> {
    return this.#follow(name, 'AAAA', async (target) => {
      const answers = await this.#resolver.resolve6(target, { ttl: true });
      return { records: answers.map((answer) => answer.address), ttl: smallestTtl(answers) };
    });
  }

  /** Look up MX records, exchange names lower-cased. */
  lookupMx(name: string): Promise<LookupOutcome<MxRecord>> {
    return this.#follow(name, 'MX', async (target) => ({
      records: (await this.#resolver.resolveMx(target)).map((record) => ({
        exchange: canonicalDnsName(record.exchange),
        priority: record.priority,
      })),
    }));
  }

  /** Look up the CNAME of one name without following it further. */
  lookupCname(name: string): Promise<LookupOutcome<string>> {
    const canonical = canonicalDnsName(name);
    return this.#query(canonical, 'CNAME', [], async (target) => ({
      records: (await this.#resolver.resolveCname(target)).map(canonicalDnsName),
    }));
  }

  async #follow<T>(name: string, type: string, query: RawQuery<T>): Promise<LookupOutcome<T>> {
    let current = canonicalDnsName(name);
    const chain: string[] = [];
    const seen = new Set([current]);
    for (;;) {
      // Failures of the CNAME step carry the requested record type, since that is the lookup
      // the caller made.
      const alias = await this.#query(current, type, chain, async (target) => ({
        records: (await this.#resolver.resolveCname(target)).map(canonicalDnsName),
      }));
      if (alias.status === 'nodata') {
        return {
          ...(await this.#query(current, type, chain, query)),
          name: canonicalDnsName(name),
        };
      }
      if (alias.status !== 'ok') return { ...alias, name: canonicalDnsName(name) };

      const target = alias.records[0] ?? '';
      if (seen.has(target)) {
        return failure(
          name,
          chain,
          'error',
          'CNAME_LOOP',
          `${type} lookup for ${name} ran into a CNAME loop at ${target}.`,
        );
      }
      if (chain.length >= this.#maxCnameDepth) {
        return failure(
          name,
          chain,
          'error',
          'CNAME_DEPTH',
          `${type} lookup for ${name} followed ${chain.length} CNAMEs without reaching a record. Raise maxCnameDepth if the chain is real.`,
        );
      }
      chain.push(target);
      seen.add(target);
      current = target;
    }
  }

  /** Run one query against `target` and map its result or error to an outcome for `target`. */
  async #query<T>(
    target: string,
    type: string,
    chain: string[],
    query: RawQuery<T>,
  ): Promise<LookupOutcome<T>> {
    const queried = chain.length === 0 ? target : `${target} (reached through a CNAME)`;
    const problem = nameProblem(target);
    if (problem) {
      return failure(
        target,
        [...chain],
        'error',
        'BAD_NAME',
        `${type} lookup for ${queried} was not sent because ${problem}.`,
      );
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error('deadline'), { code: 'ETIMEOUT' })),
          this.#deadlineMs,
        );
      });
      const result = await Promise.race([query(target), deadline]);
      if (result.records.length === 0) {
        // c-ares returns an empty list, not ENODATA, when the answer holds only a CNAME.
        return failure(
          target,
          [...chain],
          'nodata',
          'ENODATA',
          `${type} lookup for ${queried} ${problemWords.nodata}.`,
        );
      }
      return {
        status: 'ok',
        name: target,
        records: result.records,
        ...(result.ttl === undefined ? {} : { ttl: result.ttl }),
        cnameChain: [...chain],
      };
    } catch (error) {
      const code =
        typeof (error as { code?: unknown }).code === 'string'
          ? (error as { code: string }).code
          : 'UNKNOWN';
      const status = statusByCode[code] ?? 'error';
      const detail =
        status === 'timeout'
          ? `${problemWords.timeout} after ${this.#timeoutMs} ms`
          : problemWords[status];
      const suffix = status === 'error' ? ` (${code})` : '';
      return failure(
        target,
        [...chain],
        status,
        code,
        `${type} lookup for ${queried} ${detail}${suffix}.`,
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

function failure(
  name: string,
  cnameChain: string[],
  status: Exclude<LookupStatus, 'ok'>,
  code: string,
  message: string,
): LookupFailure {
  return { status, name: canonicalDnsName(name), cnameChain, code, message };
}

function smallestTtl(answers: { ttl: number }[]): number | undefined {
  if (answers.length === 0) return undefined;
  return Math.min(...answers.map((answer) => answer.ttl));
}
