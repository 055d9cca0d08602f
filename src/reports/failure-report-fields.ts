import { isIP } from 'node:net';
import { normaliseDomainName } from '../platform/domain-names.ts';
import { decodeHeaderText, headerValue, type HeaderField } from './mime-entity.ts';

/** The headers of the message a failure report is about, decoded for display. */
export interface OriginalHeaders {
  from: string | null;
  to: string | null;
  subject: string | null;
  date: string | null;
  messageId: string | null;
}

/** Authentication results by method, read from Authentication-Results values (RFC 8601). */
export interface AuthenticationSummary {
  dmarc: string | null;
  dkim: string | null;
  spf: string | null;
  /** The header.from property of the dmarc result, lower case. */
  headerFrom: string | null;
}

/** Returns the address inside "Name <address>", or the value itself when it is a bare address. */
export function extractAddress(value: string | null): string | null {
  if (!value) return null;
  const angle = /<([^<>\s]*)>/.exec(value);
  const candidate = (angle ? angle[1] : value.trim().split(/\s+/)[0]) ?? '';
  return candidate.length > 0 ? candidate : null;
}

/** Returns the domain of an address such as "user@example.com", lower case, or null. */
export function domainOfAddress(address: string | null): string | null {
  if (!address) return null;
  const at = address.lastIndexOf('@');
  return at >= 0 ? normaliseDomain(address.slice(at + 1)) : null;
}

/** Returns the domain in a standard lower-case form, or null when it is no valid domain name. */
export function normaliseDomain(value: string | null): string | null {
  if (!value) return null;
  const cleaned = value.trim().replace(/^[<"']+|[>"';,.]+$/g, '');
  if (cleaned.length === 0) return null;
  const result = normaliseDomainName(cleaned);
  return 'name' in result ? result.name : null;
}

/**
 * Reads the Source-IP field. Reporters add the host name after the address, such as
 * "148.163.85.135 (sainay.example.org)", and some wrap the address in brackets.
 */
export function parseSourceIp(value: string | null): string | null {
  if (!value) return null;
  const withoutComment = value.replace(/\([^)]*\)/g, ' ').trim();
  const candidate = (withoutComment.split(/\s+/)[0] ?? '').replace(/^\[|\]$/g, '');
  const address = candidate.replace(/^ipv6:/i, '');
  return isIP(address) !== 0 ? address.toLowerCase() : null;
}

/** Parses an RFC 5322 date, with comments such as "(PDT)" removed; null when it is no date. */
export function parseMailDate(value: string | null): Date | null {
  if (!value) return null;
  const withoutComments = value
    .replace(/\([^)]*\)/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const time = Date.parse(withoutComments);
  return Number.isNaN(time) ? null : new Date(time);
}

/** Splits a field such as "dkim, spf" or "spf,dkim" into lower-case words. */
export function splitWords(value: string | null): string[] {
  if (!value) return [];
  return value
    .toLowerCase()
    .split(/[\s,;]+/)
    .filter((word) => word.length > 0);
}

const METHOD_RESULT = /(?:^|[\s;])(dmarc|dkim|spf)\s*=\s*([a-z]+)/gi;
const HEADER_FROM = /header\.from\s*=\s*"?([^\s;"()]+)/i;

/**
 * Reads the result of each method from Authentication-Results values. The first result of a
 * method wins, since the report's own field comes before any copied from the original headers.
 */
export function summariseAuthenticationResults(values: string[]): AuthenticationSummary {
  const summary: AuthenticationSummary = { dmarc: null, dkim: null, spf: null, headerFrom: null };
  for (const value of values) {
    for (const match of value.matchAll(METHOD_RESULT)) {
      const method = match[1]!.toLowerCase() as 'dmarc' | 'dkim' | 'spf';
      summary[method] ??= match[2]!.toLowerCase();
    }
    summary.headerFrom ??= normaliseDomain(HEADER_FROM.exec(value)?.[1] ?? null);
  }
  return summary;
}

/** Reads the five headers a ticket shows from a header block, with encoded words decoded. */
export function readOriginalHeaders(headers: HeaderField[]): OriginalHeaders {
  const read = (name: string): string | null => {
    const value = headerValue(headers, name);
    if (value === null) return null;
    const decoded = decodeHeaderText(value).trim();
    return decoded.length > 0 ? decoded.slice(0, 998) : null;
  };
  return {
    from: read('from'),
    to: read('to'),
    subject: read('subject'),
    date: read('date'),
    messageId: read('message-id'),
  };
}

/** Normalises a Message-ID for comparison: the part inside angle brackets, spaces removed. */
export function normaliseMessageId(value: string | null): string | null {
  if (!value) return null;
  const inside = /<([^<>]+)>/.exec(value)?.[1] ?? value;
  const compact = inside.replace(/\s+/g, '');
  return compact.length > 0 && compact.length <= 998 ? compact : null;
}
