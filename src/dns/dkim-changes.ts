// Change details between two DKIM key observations, and the test for a weaker key.
import type { ChangeDetail, ChangeSeverity } from './change-detail.ts';
import { detail } from './change-detail.ts';
import type { DkimKeyFacts, DkimMeaning } from './observation.ts';

/** Return true when at least one key record can verify signatures. */
export function dkimValid(meaning: DkimMeaning): boolean {
  return meaning.keys.some((key) => key.status === 'valid');
}

/** Return true when the usable key got shorter, entered test mode or dropped t=s. */
export function dkimWeakened(before: DkimMeaning, after: DkimMeaning): boolean {
  const was = before.keys.find((key) => key.status === 'valid');
  const is = after.keys.find((key) => key.status === 'valid');
  if (!was || !is) return false;
  return (
    (is.keyBits ?? Infinity) < (was.keyBits ?? Infinity) ||
    (!was.testing && is.testing) ||
    (was.strict && !is.strict)
  );
}

export function dkimDetails(before: DkimMeaning, after: DkimMeaning): ChangeDetail[] {
  const [was] = before.keys;
  const [is] = after.keys;
  if (before.keys.length === 1 && after.keys.length === 1 && was && is) return keyDetails(was, is);

  const details: ChangeDetail[] = [];
  const print = (key: DkimKeyFacts) => key.fingerprint ?? key.status;
  const beforePrints = before.keys.map(print);
  const afterPrints = after.keys.map(print);
  for (const key of after.keys.filter((item) => !beforePrints.includes(print(item)))) {
    details.push(
      detail(
        'dkim.keys',
        '(absent)',
        print(key),
        key.status === 'valid' ? 'info' : 'warning',
        `A ${key.status} ${key.keyType} key record was added.`,
      ),
    );
  }
  for (const key of before.keys.filter((item) => !afterPrints.includes(print(item)))) {
    details.push(
      detail(
        'dkim.keys',
        print(key),
        '(absent)',
        'warning',
        `The ${key.status} ${key.keyType} key record ${print(key).slice(0, 16)} was removed.`,
      ),
    );
  }
  return details;
}

function keyDetails(was: DkimKeyFacts, is: DkimKeyFacts): ChangeDetail[] {
  const details: ChangeDetail[] = [];
  if (was.status !== is.status) {
    const severity: ChangeSeverity = is.status === 'valid' ? 'info' : 'critical';
    const meaning: Record<string, string> = {
      valid: 'it can verify signatures again',
      revoked: 'it was revoked, so signatures with this selector fail',
      unusable: 'verifiers cannot use it, so signatures with this selector fail',
      invalid: 'it is malformed, so signatures with this selector fail',
    };
    details.push(
      detail(
        'dkim.status',
        was.status,
        is.status,
        severity,
        `The key changed from ${was.status} to ${is.status}: ${meaning[is.status] ?? is.status}.`,
      ),
    );
  }
  if (was.fingerprint !== is.fingerprint && was.fingerprint && is.fingerprint) {
    details.push(
      detail(
        'dkim.fingerprint',
        was.fingerprint,
        is.fingerprint,
        'info',
        'The key was replaced (rotated). Mail signed with the old key fails once caches expire, so the signer must use the new one.',
      ),
    );
  }
  if (was.keyType !== is.keyType) {
    details.push(
      detail(
        'dkim.type',
        was.keyType,
        is.keyType,
        'info',
        `The key type changed from ${was.keyType} to ${is.keyType}.`,
      ),
    );
  }
  if (was.keyBits !== is.keyBits && was.keyBits !== null && is.keyBits !== null) {
    const weaker = is.keyBits < was.keyBits;
    details.push(
      detail(
        'dkim.bits',
        String(was.keyBits),
        String(is.keyBits),
        weaker ? 'warning' : 'info',
        `The RSA key length changed from ${was.keyBits} to ${is.keyBits} bits.`,
      ),
    );
  }
  if (was.testing !== is.testing) {
    details.push(
      detail(
        'dkim.testing',
        String(was.testing),
        String(is.testing),
        is.testing ? 'warning' : 'info',
        is.testing
          ? 'The key is now in test mode (t=y): its signatures may count as unsigned.'
          : 'The key left test mode (t=y).',
      ),
    );
  }
  if (was.strict !== is.strict) {
    details.push(
      detail(
        'dkim.strict',
        String(was.strict),
        String(is.strict),
        'info',
        is.strict
          ? 'The key now requires i= to equal d= (t=s).'
          : 'The key no longer requires i= to equal d= (t=s).',
      ),
    );
  }
  const lists: [string, string[] | null, string[] | null, string][] = [
    ['dkim.hashes', was.hashAlgorithms, is.hashAlgorithms, 'hash algorithms (h=)'],
    ['dkim.services', was.serviceTypes, is.serviceTypes, 'service types (s=)'],
  ];
  for (const [field, from, to, label] of lists) {
    const a = from?.join(':') ?? 'any';
    const b = to?.join(':') ?? 'any';
    if (a !== b) {
      details.push(detail(field, a, b, 'info', `The allowed ${label} changed from ${a} to ${b}.`));
    }
  }
  return details;
}
