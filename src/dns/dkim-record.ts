// DKIM public key records (RFC 6376 section 3.6.1, RFC 8301, RFC 8463) at
// <selector>._domainkey.<domain>: tag syntax, revocation, key type and RSA key length.
import { createHash, createPublicKey } from 'node:crypto';

import type { Finding } from './findings.ts';
import { finding, joinTxtStrings, quote } from './findings.ts';
import type { DnsLookups, LookupOutcome } from './resolver.ts';
import { canonicalDnsName } from './resolver.ts';

/**
 * `valid`: usable for verifying signatures. `revoked`: an empty p= withdraws the key, so
 * signatures with this selector fail. `unusable`: well-formed, but verifiers cannot use it
 * today (unknown key type, sha1 only, a service other than email, RSA under 1024 bits).
 * `invalid`: malformed, verifiers ignore it.
 */
export type DkimKeyStatus = 'valid' | 'revoked' | 'unusable' | 'invalid';

export interface DkimKey {
  text: string;
  status: DkimKeyStatus;
  /** Tags in record order. Names are case-sensitive in DKIM and kept as written. */
  tags: { name: string; value: string }[];
  /** `rsa` (the default when k= is absent), `ed25519`, or another type as written. */
  keyType: string;
  /** RSA modulus length in bits. Null for other key types or an undecodable key. */
  keyBits: number | null;
  /** Lower-case hex SHA-256 of the decoded p= bytes. Null when revoked or undecodable. */
  fingerprint: string | null;
  /** Hash algorithms from h=, or null when h= is absent (all allowed). */
  hashAlgorithms: string[] | null;
  /** Service types from s=, or null when absent (`*`). */
  serviceTypes: string[] | null;
  /** t=y: the domain is testing DKIM, so verifiers treat signatures like unsigned mail. */
  testing: boolean;
  /** t=s: the i= domain of signatures must equal d= exactly. */
  strict: boolean;
  findings: Finding[];
}

export interface DkimEvaluation {
  /** The name queried, `<selector>._domainkey.<domain>`. */
  name: string;
  outcome: LookupOutcome<string[]>;
  /** Every TXT record at the name that is meant as a key record (p= tag, or v=DKIM1 first). */
  keys: DkimKey[];
  /** The key verifiers most likely use (the first), or null when there is none. */
  key: DkimKey | null;
  findings: Finding[];
}

/** Return the DNS name of a DKIM key record. */
export function dkimKeyName(selector: string, domain: string): string {
  return `${canonicalDnsName(selector)}._domainkey.${canonicalDnsName(domain)}`;
}

/**
 * Parse a DKIM tag-list (RFC 6376 section 3.2). Returns null with a reason when the list is
 * malformed or repeats a tag, either of which makes the whole record invalid.
 */
export function parseDkimTagList(
  text: string,
): { tags: { name: string; value: string }[] } | { problem: string } {
  const tags: { name: string; value: string }[] = [];
  const seen = new Set<string>();
  const parts = text.split(';');
  for (const [index, part] of parts.entries()) {
    if (part.trim() === '') {
      if (index === parts.length - 1) continue;
      return { problem: 'it has an empty tag between two ";"' };
    }
    const match = /^\s*([A-Za-z][A-Za-z0-9_]*)\s*=([\s\S]*)$/.exec(part);
    if (!match) return { problem: `the part ${quote(part.trim())} is not a tag=value pair` };
    const name = match[1] ?? '';
    const value = (match[2] ?? '').trim();
    // VALCHAR is %x21-3A / %x3C-7E. Whitespace may separate runs of them.
    if (!/^[\x21-\x3a\x3c-\x7e\s]*$/.test(value)) {
      return { problem: `the tag "${name}" has characters DKIM does not allow` };
    }
    if (seen.has(name)) return { problem: `the tag "${name}" appears more than once` };
    seen.add(name);
    tags.push({ name, value });
  }
  return { tags };
}

function listOf(value: string): string[] {
  return value
    .split(':')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
}

/** Decode the base64 of p=, which may contain whitespace. Null when it is not base64. */
function decodeKey(value: string): Buffer | null {
  const compact = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) return null;
  return Buffer.from(compact, 'base64');
}

/** Read the RSA modulus length from SubjectPublicKeyInfo DER, or from PKCS#1 as a fallback. */
function rsaKeyBits(der: Buffer): { bits: number; format: 'spki' | 'pkcs1' } | null {
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      const key = createPublicKey({ key: der, format: 'der', type });
      if (key.asymmetricKeyType !== 'rsa') return null;
      const bits = key.asymmetricKeyDetails?.modulusLength;
      if (bits) return { bits, format: type };
    } catch {
      // Not this encoding. Try the next one.
    }
  }
  return null;
}

/** Parse and judge one DKIM key record (the joined text of one TXT record). */
export function parseDkimKey(text: string): DkimKey {
  const findings: Finding[] = [];
  const key: DkimKey = {
    text,
    status: 'valid',
    tags: [],
    keyType: 'rsa',
    keyBits: null,
    fingerprint: null,
    hashAlgorithms: null,
    serviceTypes: null,
    testing: false,
    strict: false,
    findings,
  };
  const invalid = (message: string): DkimKey => {
    key.status = 'invalid';
    findings.push(finding('dkim_invalid', 'error', `${message}. Verifiers ignore the key record.`));
    return key;
  };

  const parsed = parseDkimTagList(text);
  if ('problem' in parsed) return invalid(`The key record is malformed because ${parsed.problem}`);
  key.tags = parsed.tags;
  const tag = (name: string) => parsed.tags.find((entry) => entry.name === name)?.value;

  const version = tag('v');
  if (version !== undefined) {
    if (parsed.tags[0]?.name !== 'v') return invalid('The v= tag is not the first tag');
    if (version !== 'DKIM1') return invalid(`The version ${quote(version)} is not DKIM1`);
  }
  const p = tag('p');
  if (p === undefined) return invalid('The record has no p= tag');

  key.keyType = (tag('k') ?? 'rsa').toLowerCase();
  const hashes = tag('h');
  if (hashes !== undefined) key.hashAlgorithms = listOf(hashes);
  const services = tag('s');
  if (services !== undefined) key.serviceTypes = listOf(services);
  const flags = listOf(tag('t') ?? '');
  key.testing = flags.includes('y');
  key.strict = flags.includes('s');

  if (key.testing) {
    findings.push(
      finding(
        'dkim_testing',
        'warning',
        'The key is in test mode (t=y): verifiers may treat its signatures like unsigned mail, so DKIM does not help DMARC.',
      ),
    );
  }

  if (p.replace(/\s+/g, '') === '') {
    key.status = 'revoked';
    findings.push(
      finding(
        'dkim_revoked',
        'warning',
        'The key is revoked (empty p=): signatures with this selector fail.',
      ),
    );
    return key;
  }
  const der = decodeKey(p);
  if (!der) return invalid('The p= value is not valid base64');
  key.fingerprint = createHash('sha256').update(der).digest('hex');

  const unusable = (code: string, message: string) => {
    key.status = 'unusable';
    findings.push(finding(code, 'error', message));
  };

  if (
    key.serviceTypes &&
    !key.serviceTypes.some((service) => service === '*' || service === 'email')
  ) {
    unusable(
      'dkim_service_type',
      `The key is limited to the service types ${quote(key.serviceTypes.join(':'))}, so it cannot verify mail.`,
    );
  }

  if (key.keyType === 'ed25519') {
    // RFC 8463: p= is the 32-byte raw public key, not DER.
    if (der.length !== 32) {
      return invalid(`The Ed25519 key is ${der.length} bytes long instead of 32`);
    }
  } else if (key.keyType === 'rsa') {
    const rsa = rsaKeyBits(der);
    if (!rsa) return invalid('The p= value is not an RSA public key');
    key.keyBits = rsa.bits;
    if (rsa.format === 'pkcs1') {
      findings.push(
        finding(
          'dkim_pkcs1_key',
          'warning',
          'The key is a bare PKCS#1 RSAPublicKey; RFC 6376 asks for SubjectPublicKeyInfo, and some verifiers reject it.',
        ),
      );
    }
    // RFC 8301 section 3.2: verifiers must not accept RSA keys under 1024 bits.
    if (rsa.bits < 1024) {
      unusable(
        'dkim_weak_key',
        `The RSA key has ${rsa.bits} bits. Verifiers reject keys under 1024 bits (RFC 8301). Publish a 2048-bit key.`,
      );
    } else if (rsa.bits < 2048) {
      findings.push(
        finding(
          'dkim_short_key',
          'warning',
          `The RSA key has ${rsa.bits} bits; 2048 bits is the recommended minimum.`,
        ),
      );
    }
  } else {
    unusable(
      'dkim_unknown_key_type',
      `The key type k=${key.keyType} is not one verifiers know (rsa, ed25519).`,
    );
  }

  // RFC 8301: rsa-sha1 must not be used, so a key allowing only sha1 verifies nothing today.
  if (key.hashAlgorithms && !key.hashAlgorithms.includes('sha256')) {
    unusable(
      'dkim_sha1_only',
      `The key allows only the hash algorithms ${quote(key.hashAlgorithms.join(':'))}. Verifiers no longer accept sha1.`,
    );
  }
  return key;
}

/**
 * Judge the TXT records at a DKIM key name. Records without a p= tag are not key records and
 * are ignored. Several key records are reported, because verifiers may use any of them.
 */
export function evaluateDkimTxt(name: string, outcome: LookupOutcome<string[]>): DkimEvaluation {
  const findings: Finding[] = [];
  const texts = outcome.status === 'ok' ? outcome.records.map(joinTxtStrings) : [];
  // A TXT record is taken as a key record when it has a p= tag or starts with v=DKIM1.
  const keys = texts
    .filter((text) => /(^|;)\s*p\s*=/.test(text) || /^\s*v\s*=\s*DKIM1/.test(text))
    .map(parseDkimKey);
  if (outcome.status === 'ok' && keys.length === 0) {
    findings.push(
      finding('dkim_no_key', 'error', `The TXT records at ${name} hold no DKIM key (no p= tag).`),
    );
  }
  if (keys.length > 1) {
    findings.push(
      finding(
        'dkim_multiple_keys',
        'warning',
        `There are ${keys.length} key records at ${name}. Verifiers may pick any of them.`,
      ),
    );
  }
  if (outcome.status === 'ok' && outcome.cnameChain.length > 0) {
    findings.push(
      finding(
        'dkim_cname',
        'info',
        `${name} is a CNAME to ${outcome.cnameChain[outcome.cnameChain.length - 1]}. The provider there manages the key.`,
      ),
    );
  }
  const key = keys[0] ?? null;
  if (key) findings.push(...key.findings);
  return { name, outcome, keys, key, findings };
}

/** Fetch and judge the DKIM key at `<selector>._domainkey.<domain>`. */
export async function checkDkimKey(
  selector: string,
  domain: string,
  lookups: DnsLookups,
): Promise<DkimEvaluation> {
  const name = dkimKeyName(selector, domain);
  return evaluateDkimTxt(name, await lookups.lookupTxt(name));
}
