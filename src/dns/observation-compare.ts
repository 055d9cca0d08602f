// Deciding whether two observations of one record differ in meaning. The rules that keep
// monitors from crying wolf: a lookup problem never counts as a change (nor as "removed"), and
// a change of form alone (strings split elsewhere, records reordered, case, TTL, whitespace)
// is cosmetic. Everything else is explained in a sentence: before, after, and what it means.
import type { ChangeDetail, ChangeSeverity } from './change-detail.ts';
import { detail } from './change-detail.ts';
import { dkimDetails, dkimValid, dkimWeakened } from './dkim-changes.ts';
import { dmarcBecameInvalid, dmarcDetails, dmarcValid, dmarcWeakened } from './dmarc-changes.ts';
import type { Observation, RecordMeaning } from './observation.ts';
import { spfBecameInvalid, spfDetails, spfValid, spfWeakened } from './spf-changes.ts';

export type { ChangeDetail, ChangeSeverity } from './change-detail.ts';

export type ChangeKind =
  | 'none'
  | 'cosmetic'
  | 'meaning'
  | 'removed'
  | 'appeared'
  | 'became_invalid'
  | 'weakened'
  | 'lookup_problem';

export interface ObservationComparison {
  /** True for real changes: meaning, removed, appeared, became_invalid, weakened. */
  changed: boolean;
  kind: ChangeKind;
  /** The highest detail severity, or null without details. */
  severity: ChangeSeverity | null;
  details: ChangeDetail[];
  summary: string;
}

const severityOrder: ChangeSeverity[] = ['info', 'warning', 'critical'];
const kindNames: Record<Observation['kind'], string> = {
  dmarc: 'DMARC record',
  spf: 'SPF record',
  dkim: 'DKIM key',
};

function highest(details: ChangeDetail[]): ChangeSeverity | null {
  let result: ChangeSeverity | null = null;
  for (const item of details) {
    if (result === null || severityOrder.indexOf(item.severity) > severityOrder.indexOf(result)) {
      result = item.severity;
    }
  }
  return result;
}

function result(kind: ChangeKind, details: ChangeDetail[], summary: string): ObservationComparison {
  const changed =
    kind === 'meaning' ||
    kind === 'removed' ||
    kind === 'appeared' ||
    kind === 'became_invalid' ||
    kind === 'weakened';
  return { changed, kind, severity: highest(details), details, summary };
}

function isPublished(meaning: RecordMeaning | null): boolean {
  if (!meaning) return false;
  if (meaning.kind === 'dkim') return meaning.keys.length > 0;
  return meaning.state !== 'none';
}

/**
 * Compare two observations of the same record, `before` being the last one taken as current.
 * Throws when they are of different records, which is a programming error.
 */
export function compareObservations(
  before: Observation,
  after: Observation,
): ObservationComparison {
  if (before.kind !== after.kind || before.name !== after.name) {
    throw new Error(
      `compareObservations needs two observations of one record, but got the ${before.kind} record at ${before.name} and the ${after.kind} record at ${after.name}.`,
    );
  }
  const what = `${kindNames[after.kind]} at ${after.name}`;

  if (after.lookupProblem) {
    const message = `The ${what} could not be checked (${after.lookup.message ?? after.summary}). That tells nothing about the record, so the last known state stays current.`;
    return result(
      'lookup_problem',
      [detail('lookup', before.lookup.status, after.lookup.status, 'info', message)],
      message,
    );
  }
  if (before.lookupProblem) {
    const message = `The earlier observation of the ${what} was a lookup problem, so there is nothing to compare with. Compare with the last successful observation.`;
    return result(
      'lookup_problem',
      [detail('lookup', before.lookup.status, after.lookup.status, 'info', message)],
      message,
    );
  }

  const was = isPublished(before.meaning);
  const is = isPublished(after.meaning);
  if (was && !is) {
    const how =
      after.lookup.status === 'nxdomain'
        ? 'the name no longer exists (NXDOMAIN)'
        : after.lookup.status === 'nodata'
          ? 'the name has no TXT records any more'
          : 'no TXT record at the name is one any more';
    const message = `The ${what} was removed: ${how}. ${removalEffect(after.kind)}`;
    return result(
      'removed',
      [detail('record', before.normalised.join(' | '), '(none)', 'critical', message)],
      message,
    );
  }
  if (!was && is) {
    const invalid = !isValid(after.meaning);
    const message = `A ${what} appeared: ${after.normalised.join(' | ')}. ${after.summary}`.trim();
    return result(
      'appeared',
      [
        detail(
          'record',
          '(none)',
          after.normalised.join(' | '),
          invalid ? 'warning' : 'info',
          message,
        ),
      ],
      message,
    );
  }

  const details = [
    ...delegationDetails(before, after),
    ...meaningDetails(before.meaning, after.meaning),
  ];
  if (details.length === 0) {
    const cosmetic = cosmeticDetails(before, after);
    if (cosmetic.length === 0) return result('none', [], `The ${what} is unchanged.`);
    return result(
      'cosmetic',
      cosmetic,
      `Only the form of the ${what} changed: ${cosmetic.map((item) => item.message).join(' ')}`,
    );
  }

  let kind: ChangeKind = 'meaning';
  if (becameInvalid(before.meaning, after.meaning)) kind = 'became_invalid';
  else if (weakened(before.meaning, after.meaning)) kind = 'weakened';
  const lead =
    kind === 'became_invalid'
      ? `The ${what} became invalid.`
      : kind === 'weakened'
        ? `The ${what} became weaker.`
        : `The meaning of the ${what} changed.`;
  return result(kind, details, `${lead} ${details.map((item) => item.message).join(' ')}`);
}

function removalEffect(kind: Observation['kind']): string {
  if (kind === 'dmarc') {
    return 'Receivers now find no DMARC policy here (a parent domain record may still apply).';
  }
  if (kind === 'spf') return 'Receivers now get SPF result none for this domain.';
  return 'Signatures with this selector now fail.';
}

/**
 * Compare the first CNAME hop, which is the customer's own setting. Deeper hops belong to the
 * provider and count as cosmetic.
 */
function delegationDetails(before: Observation, after: Observation): ChangeDetail[] {
  const was = before.lookup.cnameChain[0] ?? '(no CNAME)';
  const is = after.lookup.cnameChain[0] ?? '(no CNAME)';
  if (was === is) return [];
  return [
    detail(
      'cname',
      was,
      is,
      'warning',
      `The name now points ${is === '(no CNAME)' ? 'to no CNAME' : `by CNAME to ${is}`} instead of ${was === '(no CNAME)' ? 'holding its own records' : was}. Whoever manages that target now controls the record.`,
    ),
  ];
}

function cosmeticDetails(before: Observation, after: Observation): ChangeDetail[] {
  const details: ChangeDetail[] = [];
  const beforeText = before.normalised.join(' | ');
  const afterText = after.normalised.join(' | ');
  if (beforeText !== afterText) {
    details.push(
      detail(
        'text',
        beforeText,
        afterText,
        'info',
        `The text changed from ${JSON.stringify(beforeText)} to ${JSON.stringify(afterText)} without changing what receivers do.`,
      ),
    );
  } else if (JSON.stringify(before.raw) !== JSON.stringify(after.raw)) {
    details.push(
      detail(
        'split',
        JSON.stringify(before.raw),
        JSON.stringify(after.raw),
        'info',
        'The records are split into strings differently or listed in another order. The joined text is the same.',
      ),
    );
  }
  if (
    before.lookup.ttl !== undefined &&
    after.lookup.ttl !== undefined &&
    before.lookup.ttl !== after.lookup.ttl
  ) {
    details.push(
      detail(
        'ttl',
        String(before.lookup.ttl),
        String(after.lookup.ttl),
        'info',
        `The TTL changed from ${before.lookup.ttl} to ${after.lookup.ttl} seconds, which is no change of the record.`,
      ),
    );
  }
  const beforeChain = before.lookup.cnameChain.join(' > ');
  const afterChain = after.lookup.cnameChain.join(' > ');
  if (beforeChain !== afterChain) {
    details.push(
      detail(
        'cname_chain',
        beforeChain,
        afterChain,
        'info',
        `The provider's CNAME chain changed from ${beforeChain} to ${afterChain}.`,
      ),
    );
  }
  return details;
}

function meaningDetails(before: RecordMeaning | null, after: RecordMeaning | null): ChangeDetail[] {
  if (!before || !after) return [];
  if (before.kind === 'dmarc' && after.kind === 'dmarc') return dmarcDetails(before, after);
  if (before.kind === 'spf' && after.kind === 'spf') return spfDetails(before, after);
  if (before.kind === 'dkim' && after.kind === 'dkim') return dkimDetails(before, after);
  return [];
}

function isValid(meaning: RecordMeaning | null): boolean {
  if (!meaning) return false;
  if (meaning.kind === 'dmarc') return dmarcValid(meaning);
  if (meaning.kind === 'spf') return spfValid(meaning);
  return dkimValid(meaning);
}

function becameInvalid(before: RecordMeaning | null, after: RecordMeaning | null): boolean {
  if (!before || !after) return false;
  if (before.kind === 'dmarc' && after.kind === 'dmarc') return dmarcBecameInvalid(before, after);
  if (before.kind === 'spf' && after.kind === 'spf') return spfBecameInvalid(before, after);
  return isValid(before) && !isValid(after);
}

function weakened(before: RecordMeaning | null, after: RecordMeaning | null): boolean {
  if (!before || !after) return false;
  if (before.kind === 'dmarc' && after.kind === 'dmarc') return dmarcWeakened(before, after);
  if (before.kind === 'spf' && after.kind === 'spf') return spfWeakened(before, after);
  if (before.kind === 'dkim' && after.kind === 'dkim') return dkimWeakened(before, after);
  return false;
}
