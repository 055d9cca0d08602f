// Change details between two SPF observations, and the tests for a weaker or broken policy.
import type { ChangeDetail } from './change-detail.ts';
import { detail, severityOf } from './change-detail.ts';
import type { AddressFamily } from './ip-space.ts';
import type { SpfMeaning } from './observation.ts';
import type { SpfFamilyResult } from './spf-evaluation.ts';

const families: readonly AddressFamily[] = ['ipv4', 'ipv6'];
const endingOrder = ['-', '~', '?', '+'];
const bandOrder = ['ok', 'near_limit', 'over_limit'];
const familyResultOrder: SpfFamilyResult[] = ['ok', 'permerror_risk', 'temperror', 'permerror'];

/** Return true for one well-formed record that no address family gets permerror from. */
export function spfValid(meaning: SpfMeaning): boolean {
  return (
    meaning.state === 'record' &&
    Object.values(meaning.results).every((value) => value !== 'permerror')
  );
}

/** Return true when the record broke, or either address family now gets permerror. */
export function spfBecameInvalid(before: SpfMeaning, after: SpfMeaning): boolean {
  if (before.state === 'record' && after.state !== 'record') return true;
  return families.some(
    (family) => before.results[family] !== 'permerror' && after.results[family] === 'permerror',
  );
}

/** Return true when the ending, the lookup count or the passing space got looser or riskier. */
export function spfWeakened(before: SpfMeaning, after: SpfMeaning): boolean {
  return (
    endingOrder.indexOf(after.ending ?? '?') > endingOrder.indexOf(before.ending ?? '?') ||
    bandOrder.indexOf(after.lookupBand) > bandOrder.indexOf(before.lookupBand) ||
    families.some(
      (family) =>
        (!before.open[family] && after.open[family]) ||
        (!before.largePassSpace[family] && after.largePassSpace[family]) ||
        familyResultOrder.indexOf(after.results[family]) >
          familyResultOrder.indexOf(before.results[family]),
    )
  );
}

const endingWords: Record<string, string> = {
  '-': '-all (unlisted senders fail)',
  '~': '~all (unlisted senders soft-fail)',
  '?': '?all (unlisted senders get neutral)',
  '+': '+all (anyone passes)',
  none: 'no all (unlisted senders get neutral)',
};

const familyWords: Record<AddressFamily, string> = { ipv4: 'IPv4', ipv6: 'IPv6' };

export function spfDetails(before: SpfMeaning, after: SpfMeaning): ChangeDetail[] {
  const details: ChangeDetail[] = [];
  if (before.state !== after.state) {
    const broken = after.state === 'invalid' || after.state === 'multiple';
    const message = broken
      ? after.state === 'invalid'
        ? 'The SPF record now has syntax errors, so receivers return permerror.'
        : 'There are now several SPF records, so receivers return permerror.'
      : 'The SPF record is well-formed again.';
    details.push(
      detail('spf.state', before.state, after.state, broken ? 'critical' : 'info', message),
    );
  }

  const removed = multisetMinus(before.terms, after.terms);
  const added = multisetMinus(after.terms, before.terms);
  for (const term of added) {
    details.push(detail('spf.terms', '(absent)', term, 'info', `The term ${term} was added.`));
  }
  for (const term of removed) {
    details.push(detail('spf.terms', term, '(absent)', 'info', `The term ${term} was removed.`));
  }
  if (
    added.length === 0 &&
    removed.length === 0 &&
    before.terms.join(' ') !== after.terms.join(' ')
  ) {
    details.push(
      detail(
        'spf.order',
        before.terms.join(' '),
        after.terms.join(' '),
        'info',
        'The terms are in a different order; SPF uses the first term that matches, so results can differ.',
      ),
    );
  }

  if (before.ending !== after.ending) {
    const from = endingWords[before.ending ?? 'none'] ?? '';
    const to = endingWords[after.ending ?? 'none'] ?? '';
    const looser =
      endingOrder.indexOf(after.ending ?? '?') > endingOrder.indexOf(before.ending ?? '?');
    const severity = severityOf(after.ending === '+', looser);
    details.push(
      detail(
        'spf.ending',
        before.ending ?? 'none',
        after.ending ?? 'none',
        severity,
        `The record now ends with ${to} instead of ${from}.`,
      ),
    );
  }

  if (before.lookupBand !== after.lookupBand) {
    const words = { ok: 'well within', near_limit: 'close to', over_limit: 'over' };
    const worse = bandOrder.indexOf(after.lookupBand) > bandOrder.indexOf(before.lookupBand);
    const severity = severityOf(after.lookupBand === 'over_limit', worse);
    details.push(
      detail(
        'spf.lookups',
        before.lookupBand,
        after.lookupBand,
        severity,
        `The policy's DNS lookups are now ${words[after.lookupBand]} the limit of 10 (they were ${words[before.lookupBand]} it).`,
      ),
    );
  }

  for (const family of ['ipv4', 'ipv6'] as const) {
    const name = familyWords[family];
    const was = before.results[family];
    const is = after.results[family];
    if (was !== is) {
      const worse = familyResultOrder.indexOf(is) > familyResultOrder.indexOf(was);
      const severity = severityOf(is === 'permerror', worse);
      details.push(
        detail(
          `spf.${family}`,
          was,
          is,
          severity,
          `For ${name} senders the policy now gives ${resultPhrase(is)} instead of ${resultPhrase(was)}.`,
        ),
      );
    }
    if (before.open[family] !== after.open[family]) {
      details.push(
        detail(
          `spf.${family}.open`,
          String(before.open[family]),
          String(after.open[family]),
          after.open[family] ? 'critical' : 'info',
          after.open[family]
            ? `Every ${name} address now passes SPF: anyone can send as this domain.`
            : `Not every ${name} address passes SPF any more.`,
        ),
      );
    }
    if (before.largePassSpace[family] !== after.largePassSpace[family]) {
      details.push(
        detail(
          `spf.${family}.space`,
          String(before.largePassSpace[family]),
          String(after.largePassSpace[family]),
          after.largePassSpace[family] ? 'warning' : 'info',
          after.largePassSpace[family]
            ? `An unusually large part of the ${name} space now passes SPF.`
            : `The ${name} space that passes SPF is back to a usual size.`,
        ),
      );
    }
  }

  const broke = before.brokenTargets.length === 0 ? [] : before.brokenTargets;
  for (const target of after.brokenTargets.filter((item) => !broke.includes(item))) {
    details.push(
      detail(
        'spf.include',
        'usable',
        'broken',
        'critical',
        `The include or redirect target ${target} now has no usable SPF record.`,
      ),
    );
  }
  for (const target of broke.filter((item) => !after.brokenTargets.includes(item))) {
    details.push(
      detail(
        'spf.include',
        'broken',
        'usable',
        'info',
        `The include or redirect target ${target} works again or is no longer used.`,
      ),
    );
  }
  if (before.senderDependent !== after.senderDependent) {
    details.push(
      detail(
        'spf.macros',
        String(before.senderDependent),
        String(after.senderDependent),
        'info',
        after.senderDependent
          ? 'The policy now depends on the sender (macros or ptr).'
          : 'The policy no longer depends on the sender.',
      ),
    );
  }
  return details;
}

function resultPhrase(value: SpfFamilyResult): string {
  return value === 'ok'
    ? 'a valid result'
    : value === 'permerror_risk'
      ? 'permerror at strict receivers'
      : value;
}

function multisetMinus(left: string[], right: string[]): string[] {
  const remaining = [...right];
  const result: string[] = [];
  for (const item of left) {
    const index = remaining.indexOf(item);
    if (index === -1) result.push(item);
    else remaining.splice(index, 1);
  }
  return result;
}
