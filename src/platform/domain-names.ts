import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

/**
 * Results of toAsciiDomainName by input, because a report names the same few domains in record
 * after record. The map is emptied when full and takes no long input, so it stays small whatever
 * the reports contain.
 */
const asciiDomainNames = new Map<string, string>();
const MAX_CACHED_NAMES = 1024;
/** Maximum input length cached: a domain name (at most 253 characters) with room for spaces. */
const MAX_CACHED_NAME_LENGTH = 512;

/**
 * Converts a domain name as a report or mail names it to the form the domains table stores:
 * lower case, without trailing dots, Unicode labels as A-labels (xn--). A name that
 * domainToASCII rejects is returned lower-cased, so that a report for it is still stored.
 */
export function toAsciiDomainName(input: string): string {
  const cached = asciiDomainNames.get(input);
  if (cached !== undefined) return cached;
  const lower = input.trim().toLowerCase().replace(/\.+$/, '');
  const ascii = domainToASCII(lower) || lower;
  if (input.length <= MAX_CACHED_NAME_LENGTH) {
    if (asciiDomainNames.size >= MAX_CACHED_NAMES) asciiDomainNames.clear();
    asciiDomainNames.set(input, ascii);
  }
  return ascii;
}

/**
 * Normalise a domain name typed by a user to its lower-case ASCII (punycode) form, or return
 * a sentence saying what is wrong with it.
 */
export function normaliseDomainName(input: string): { name: string } | { problem: string } {
  const trimmed = input.trim().replace(/\.$/, '');
  if (trimmed.length === 0) return { problem: 'is empty; give a domain such as example.com' };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) || trimmed.includes('/')) {
    return { problem: `"${input}" is a URL; give only the domain, such as example.com` };
  }
  if (trimmed.includes('@')) {
    return { problem: `"${input}" is an email address; give only the part after the @` };
  }
  if (isIP(trimmed)) return { problem: `"${input}" is an IP address, not a domain` };

  const ascii = domainToASCII(trimmed.toLowerCase());
  if (!ascii) return { problem: `"${input}" is not a valid domain name` };
  if (ascii.length > 253) return { problem: `"${input}" is longer than 253 characters` };

  const labels = ascii.split('.');
  if (labels.length < 2) {
    return { problem: `"${input}" has no top-level domain; give a full name such as example.com` };
  }
  for (const label of labels) {
    if (label.length === 0) return { problem: `"${input}" contains an empty label (two dots)` };
    if (label.length > 63) return { problem: `"${input}" has a label longer than 63 characters` };
    if (!/^[a-z0-9_](?:[a-z0-9-_]*[a-z0-9_])?$/.test(label)) {
      return {
        problem: `"${input}" has an invalid label "${label}"; use letters, digits and inner hyphens`,
      };
    }
  }
  if (/^\d+$/.test(labels[labels.length - 1]!)) {
    return { problem: `"${input}" ends in a numeric label, which no top-level domain is` };
  }
  return { name: ascii };
}
