// Change details between two DMARC observations, and the tests for a weaker or broken policy.
import type { ChangeDetail, ChangeSeverity } from './change-detail.ts';
import { detail } from './change-detail.ts';
import type { AppliedPolicy } from './dmarc-record.ts';
import { dialectName, policyStrength } from './dmarc-verdict.ts';
import type { DmarcDialect } from './findings.ts';
import type { DmarcMeaning, DmarcVerdictFacts } from './observation.ts';

const dialects: readonly DmarcDialect[] = ['rfc7489', 'rfc9989'];

/** Return true when receivers of either dialect apply the record fully, without fallback. */
export function dmarcValid(meaning: DmarcMeaning): boolean {
  return (
    meaning.state === 'record' &&
    Object.values(meaning.verdicts).every((verdict) => verdict.applies && !verdict.fallbackToNone)
  );
}

/** Return true when the record stopped being one usable record for either dialect. */
export function dmarcBecameInvalid(before: DmarcMeaning, after: DmarcMeaning): boolean {
  if (before.state === 'record' && after.state !== 'record') return true;
  return dialects.some((dialect) => {
    const was = before.verdicts[dialect];
    const is = after.verdicts[dialect];
    return (was.applies && !is.applies) || (!was.fallbackToNone && is.fallbackToNone);
  });
}

/** Return true when failing mail gets a weaker policy, or reports stop, for either dialect. */
export function dmarcWeakened(before: DmarcMeaning, after: DmarcMeaning): boolean {
  return dialects.some((dialect) => {
    const was = before.verdicts[dialect];
    const is = after.verdicts[dialect];
    return (
      appliedWeaker(was.domain, is.domain) ||
      appliedWeaker(was.subdomains, is.subdomains) ||
      appliedWeaker(was.nonexistentSubdomains, is.nonexistentSubdomains) ||
      (was.aggregateReports && !is.aggregateReports)
    );
  });
}

function appliedWeaker(was: AppliedPolicy | null, is: AppliedPolicy | null): boolean {
  if (!was || !is) return false;
  return (
    policyStrength(is.strongest) < policyStrength(was.strongest) ||
    policyStrength(is.weakest) < policyStrength(was.weakest)
  );
}

function describeApplied(applied: AppliedPolicy | null): string {
  if (!applied) return 'no DMARC processing';
  if (applied.weakest === applied.strongest) return applied.strongest;
  return `${applied.strongest} for part of the mail and ${applied.weakest} for the rest`;
}

export function dmarcDetails(before: DmarcMeaning, after: DmarcMeaning): ChangeDetail[] {
  const details: ChangeDetail[] = [];
  if (before.state !== after.state) {
    const severity: ChangeSeverity = after.state === 'multiple' ? 'critical' : 'info';
    const message =
      after.state === 'multiple'
        ? 'There are now several DMARC records at the name, so receivers discard all of them and no policy applies.'
        : 'There is again a single DMARC record at the name.';
    details.push(detail('records', before.state, after.state, severity, message));
  }

  const tags = [...new Set([...Object.keys(before.tags), ...Object.keys(after.tags)])].sort();
  for (const tag of tags) {
    const was = before.tags[tag];
    const is = after.tags[tag];
    if (was === is) continue;
    const message =
      was === undefined
        ? `The ${tag} tag was added with the value ${is}.`
        : is === undefined
          ? `The ${tag} tag was removed (it was ${was}).`
          : `The ${tag} tag changed from ${was} to ${is}.`;
    details.push(detail(tag, was ?? '(absent)', is ?? '(absent)', 'info', message));
  }

  // One sentence per effect, and only one when both dialects change the same way.
  const effects = (dialect: DmarcDialect) =>
    verdictEffects(before.verdicts[dialect], after.verdicts[dialect]);
  const late = effects('rfc7489');
  const bis = effects('rfc9989');
  for (const effect of bis) {
    const twin = late.find(
      (item) =>
        item.field === effect.field && item.before === effect.before && item.after === effect.after,
    );
    if (twin) {
      details.push({ ...effect, field: effect.field, message: `Receivers ${effect.message}` });
    } else {
      details.push({
        ...effect,
        field: `rfc9989.${effect.field}`,
        message: `${dialectName('rfc9989')} receivers ${effect.message}`,
      });
    }
  }
  for (const effect of late) {
    const twin = bis.find(
      (item) =>
        item.field === effect.field && item.before === effect.before && item.after === effect.after,
    );
    if (!twin) {
      details.push({
        ...effect,
        field: `rfc7489.${effect.field}`,
        message: `${dialectName('rfc7489')} receivers ${effect.message}`,
      });
    }
  }
  return details;
}

/** Effects of a verdict change, each message to be prefixed with who the receivers are. */
function verdictEffects(was: DmarcVerdictFacts, is: DmarcVerdictFacts): ChangeDetail[] {
  const effects: ChangeDetail[] = [];
  if (was.applies !== is.applies) {
    effects.push(
      detail(
        'applies',
        String(was.applies),
        String(is.applies),
        is.applies ? 'info' : 'critical',
        is.applies
          ? 'now apply DMARC to this domain again.'
          : 'no longer apply any DMARC processing to this domain.',
      ),
    );
    return effects;
  }
  if (!was.fallbackToNone && is.fallbackToNone) {
    effects.push(
      detail(
        'fallback',
        'false',
        'true',
        'critical',
        'now ignore the policy and act as p=none, because a policy tag became invalid.',
      ),
    );
  }
  const targets: [string, AppliedPolicy | null, AppliedPolicy | null, string][] = [
    ['domain', was.domain, is.domain, 'the domain'],
    ['subdomains', was.subdomains, is.subdomains, 'its subdomains'],
    [
      'nonexistent',
      was.nonexistentSubdomains,
      is.nonexistentSubdomains,
      'its non-existent subdomains',
    ],
  ];
  for (const [field, before, after, label] of targets) {
    const from = describeApplied(before);
    const to = describeApplied(after);
    if (from === to) continue;
    const weaker = appliedWeaker(before, after);
    const severity: ChangeSeverity = weaker
      ? after?.strongest === 'none'
        ? 'critical'
        : 'warning'
      : 'info';
    effects.push(
      detail(
        field,
        from,
        to,
        severity,
        `now apply ${to} instead of ${from} to failing mail from ${label}.`,
      ),
    );
  }
  if (was.aggregateReports !== is.aggregateReports) {
    effects.push(
      detail(
        'reports',
        String(was.aggregateReports),
        String(is.aggregateReports),
        is.aggregateReports ? 'info' : 'warning',
        is.aggregateReports
          ? 'now send aggregate reports.'
          : 'no longer send aggregate reports, so the domain loses its view of who sends as it.',
      ),
    );
  }
  return effects;
}
