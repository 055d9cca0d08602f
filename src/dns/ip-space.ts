// Address arithmetic for SPF: which part of the IPv4 and IPv6 space each SPF result covers.
// SPF evaluates mechanisms left to right and the first match wins, so the space is claimed
// in order and a later mechanism only gets what earlier ones left.
import { isIPv6 } from 'node:net';

import ipaddr from 'ipaddr.js';

export type AddressFamily = 'ipv4' | 'ipv6';

export const familyBits: Record<AddressFamily, number> = { ipv4: 32, ipv6: 128 };

/** An inclusive range of addresses of one family, as integers. */
export interface AddressRange {
  family: AddressFamily;
  start: bigint;
  end: bigint;
}

// RFC 7208 ip4-network: dotted quad without leading zeros.
const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** True for a dotted-quad IPv4 address as RFC 7208 writes one (no leading zeros). */
export function isStrictIpv4(address: string): boolean {
  return ipv4Pattern.test(address);
}

/** True for an IPv6 address in any RFC 4291 text form, without a zone index. */
export function isStrictIpv6(address: string): boolean {
  return !address.includes('%') && isIPv6(address);
}

function toInteger(address: string): { family: AddressFamily; value: bigint } | null {
  if (isStrictIpv4(address)) {
    const value = address.split('.').reduce((sum, part) => (sum << 8n) + BigInt(Number(part)), 0n);
    return { family: 'ipv4', value };
  }
  if (isStrictIpv6(address)) {
    const bytes = ipaddr.IPv6.parse(address).toByteArray();
    return { family: 'ipv6', value: bytes.reduce((sum, byte) => (sum << 8n) + BigInt(byte), 0n) };
  }
  return null;
}

/** Return the range of `address/prefix`, or null when the address is not valid. */
export function rangeOf(address: string, prefix: number): AddressRange | null {
  const parsed = toInteger(address);
  if (!parsed) return null;
  const bits = familyBits[parsed.family];
  if (prefix < 0 || prefix > bits) return null;
  const hostBits = BigInt(bits - prefix);
  const start = (parsed.value >> hostBits) << hostBits;
  return { family: parsed.family, start, end: start + (1n << hostBits) - 1n };
}

/** Return the whole address space of a family. */
export function wholeFamily(family: AddressFamily): AddressRange {
  return { family, start: 0n, end: (1n << BigInt(familyBits[family])) - 1n };
}

interface Claim<T> {
  start: bigint;
  end: bigint;
  value: T;
}

function byStart(a: Claim<unknown>, b: Claim<unknown>): number {
  if (a.start === b.start) return 0;
  return a.start < b.start ? -1 : 1;
}

/**
 * Disjoint claims on one address family, each with a value (an SPF result). Claiming a range
 * takes only the parts no earlier claim holds, which is SPF's first-match rule.
 */
export class AddressClaims<T> {
  readonly family: AddressFamily;
  #claims: Claim<T>[] = [];

  constructor(family: AddressFamily) {
    this.family = family;
  }

  /** Claim the unclaimed parts of `range` for `value`. */
  claim(range: AddressRange, value: T): void {
    if (range.family !== this.family) return;
    const pieces: Claim<T>[] = [];
    let cursor = range.start;
    for (const existing of this.#claims) {
      if (existing.end < cursor) continue;
      if (existing.start > range.end) break;
      if (existing.start > cursor) pieces.push({ start: cursor, end: existing.start - 1n, value });
      cursor = existing.end + 1n;
      if (cursor > range.end) break;
    }
    if (cursor <= range.end) pieces.push({ start: cursor, end: range.end, value });
    if (pieces.length === 0) return;
    this.#claims = [...this.#claims, ...pieces].sort(byStart);
  }

  /** Claim everything still unclaimed, as `all` does. */
  claimRest(value: T): void {
    this.claim(wholeFamily(this.family), value);
  }

  /** Return the claimed ranges, in address order, with their values. */
  ranges(): { range: AddressRange; value: T }[] {
    return this.#claims.map((claim) => ({
      range: { family: this.family, start: claim.start, end: claim.end },
      value: claim.value,
    }));
  }

  /** Count the addresses claimed with `value`. */
  count(value: T): bigint {
    return this.#claims
      .filter((claim) => claim.value === value)
      .reduce((sum, claim) => sum + (claim.end - claim.start + 1n), 0n);
  }
}

/** Return the share of a family that `count` addresses make, from 0 to 1. */
export function shareOfFamily(family: AddressFamily, count: bigint): number {
  const bits = familyBits[family];
  // Scale down before converting so that IPv6 counts keep their precision as a double.
  const scaled = Number(count >> BigInt(Math.max(0, bits - 52)));
  return scaled / 2 ** Math.min(bits, 52);
}
