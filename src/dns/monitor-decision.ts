// The confirmation rule that keeps DNS monitoring from crying wolf. A lookup problem never
// changes a record's state. A change of form alone (string splits, record order, case, TTL)
// is no change. A change of meaning becomes the new state only when a second lookup, at least
// the confirmation delay later, sees the same meaning; a record that goes back before that is
// forgotten. Pure: it takes observations and returns what to store.
import { dkimValid } from './dkim-changes.ts';
import { dmarcValid } from './dmarc-changes.ts';
import type { Observation, ObservationComparison, RecordMeaning } from './observation.ts';
import { compareObservations } from './observation.ts';
import type { MonitorChangeKind, ObservationOutcome } from './observation-store.ts';
import { spfValid } from './spf-changes.ts';

export interface DecisionInput {
  /** The record's current state: the last observation taken as what is published. */
  current: Observation | null;
  /** A change seen once that waits for a second lookup. */
  pending: Observation | null;
  observation: Observation;
  /** Minimum time between the first and the confirming lookup of a change, in milliseconds. */
  confirmDelayMs: number;
}

export interface Decision {
  outcome: ObservationOutcome;
  changeKind: MonitorChangeKind | null;
  /** The comparison with the current state, or null when there is none yet. */
  comparison: ObservationComparison | null;
  /** Whether the new observation becomes the record's current state. */
  replaceCurrent: boolean;
  /** The action on the pending change: keep it, clear it, or replace it with the new observation. */
  pending: 'keep' | 'clear' | 'replace';
  /** True when a change was confirmed and must be reported (raise an alert). */
  confirmed: boolean;
  /** When the second lookup of a pending change is due; null when nothing is pending. */
  followUpAt: Date | null;
}

/**
 * Return true for a record that is published but that receivers cannot use: DMARC records
 * that receivers discard or apply only as p=none, SPF records that give permerror, DKIM key
 * records that are malformed or unusable. A missing record is not invalid, and neither is a
 * revoked DKIM key (an empty p=), which is a deliberate setting.
 */
export function isPublishedInvalid(meaning: RecordMeaning | null): boolean {
  if (!meaning) return false;
  if (meaning.kind === 'dmarc') return meaning.state !== 'none' && !dmarcValid(meaning);
  if (meaning.kind === 'spf') return meaning.state !== 'none' && !spfValid(meaning);
  return (
    meaning.keys.length > 0 &&
    !dkimValid(meaning) &&
    meaning.keys.some((key) => key.status === 'invalid' || key.status === 'unusable')
  );
}

function elapsedMs(from: Observation, to: Observation): number {
  return Date.parse(to.observedAt) - Date.parse(from.observedAt);
}

function followUp(since: Observation, confirmDelayMs: number): Date {
  return new Date(Date.parse(since.observedAt) + confirmDelayMs);
}

/** Decide what one new observation of a record means for that record's state. */
export function decideObservation(input: DecisionInput): Decision {
  const { current, pending, observation, confirmDelayMs } = input;

  if (observation.lookupProblem) {
    // NOTE: problems that persist raise no "unable to check" alert yet; the record state only
    // counts them (consecutive_problems).
    const comparison = current ? compareObservations(current, observation) : null;
    return {
      outcome: 'lookup_problem',
      changeKind: comparison ? comparison.kind : null,
      comparison,
      replaceCurrent: false,
      pending: 'keep',
      confirmed: false,
      // The second lookup failed, so try again after another delay.
      followUpAt: pending ? followUp(observation, confirmDelayMs) : null,
    };
  }

  if (!current) return decideFirst(pending, observation, confirmDelayMs);

  const comparison = compareObservations(current, observation);
  if (!comparison.changed) {
    return {
      outcome: pending ? 'change_reverted' : 'unchanged',
      changeKind: comparison.kind,
      comparison,
      // Same meaning: keep the newest form, so that "before" shows the record as published.
      replaceCurrent: true,
      pending: 'clear',
      confirmed: false,
      followUpAt: null,
    };
  }
  if (pending && !compareObservations(pending, observation).changed) {
    if (elapsedMs(pending, observation) >= confirmDelayMs) {
      return {
        outcome: 'change_confirmed',
        changeKind: comparison.kind,
        comparison,
        replaceCurrent: true,
        pending: 'clear',
        confirmed: true,
        followUpAt: null,
      };
    }
    // Seen again, but too soon to rule out a change still spreading between servers.
    return {
      outcome: 'change_pending',
      changeKind: comparison.kind,
      comparison,
      replaceCurrent: false,
      pending: 'keep',
      confirmed: false,
      followUpAt: followUp(pending, confirmDelayMs),
    };
  }
  // A first sighting, or a pending change that changed again: the confirmation starts over.
  return {
    outcome: 'change_pending',
    changeKind: comparison.kind,
    comparison,
    replaceCurrent: false,
    pending: 'replace',
    confirmed: false,
    followUpAt: followUp(observation, confirmDelayMs),
  };
}

/**
 * The first successful observation of a record becomes its state without an alert, unless the record is
 * invalid. An invalid record is reported once, after a second lookup agrees, because a broken
 * record on a newly monitored domain is exactly what the operator needs to hear about.
 */
function decideFirst(
  pending: Observation | null,
  observation: Observation,
  confirmDelayMs: number,
): Decision {
  const invalid = isPublishedInvalid(observation.meaning);
  if (pending && invalid && !compareObservations(pending, observation).changed) {
    const due = elapsedMs(pending, observation) >= confirmDelayMs;
    return {
      outcome: due ? 'change_confirmed' : 'change_pending',
      changeKind: 'invalid_at_first_check',
      comparison: null,
      replaceCurrent: due,
      pending: due ? 'clear' : 'keep',
      confirmed: due,
      followUpAt: due ? null : followUp(pending, confirmDelayMs),
    };
  }
  if (invalid) {
    return {
      outcome: 'change_pending',
      changeKind: 'invalid_at_first_check',
      comparison: null,
      replaceCurrent: false,
      pending: 'replace',
      confirmed: false,
      followUpAt: followUp(observation, confirmDelayMs),
    };
  }
  return {
    outcome: 'baseline',
    changeKind: null,
    comparison: null,
    replaceCurrent: true,
    pending: 'clear',
    confirmed: false,
    followUpAt: null,
  };
}
