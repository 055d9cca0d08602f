import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { decideObservation, isPublishedInvalid } from './monitor-decision.ts';
import type { Observation } from './observation.ts';
import { buildDkimObservationFromTxt, buildDmarcObservation } from './observation.ts';
import type { LookupOutcome } from './resolver.ts';

const name = '_dmarc.example.com';
const delayMs = 10 * 60_000;
const start = Date.parse('2026-12-04T12:00:00.000Z');

function at(minutes: number): string {
  return new Date(start + minutes * 60_000).toISOString();
}

function dmarc(minutes: number, ...records: string[][]): Observation {
  const outcome: LookupOutcome<string[]> =
    records.length === 0
      ? { status: 'nxdomain', name, cnameChain: [], code: 'ENOTFOUND', message: 'NXDOMAIN.' }
      : { status: 'ok', name, records, cnameChain: [] };
  return buildDmarcObservation(name, outcome, at(minutes));
}

function failed(minutes: number, status: 'servfail' | 'timeout'): Observation {
  return buildDmarcObservation(
    name,
    { status, name, cnameChain: [], code: 'ESERVFAIL', message: `TXT lookup ${status}.` },
    at(minutes),
  );
}

const reject = ['v=DMARC1; p=reject; rua=mailto:d@example.com'];
const none = ['v=DMARC1; p=none; rua=mailto:d@example.com'];

function decide(
  current: Observation | null,
  pending: Observation | null,
  observation: Observation,
) {
  return decideObservation({ current, pending, observation, confirmDelayMs: delayMs });
}

describe('monitor decision: first check', () => {
  test('takes a valid record as baseline', () => {
    const decision = decide(null, null, dmarc(0, reject));

    assert.equal(decision.outcome, 'baseline');
    assert.equal(decision.replaceCurrent, true);
    assert.equal(decision.confirmed, false);
    assert.equal(decision.followUpAt, null);
  });

  test('takes a missing record as baseline', () => {
    const decision = decide(null, null, dmarc(0));

    assert.equal(decision.outcome, 'baseline');
    assert.equal(decision.confirmed, false);
  });

  test('holds an invalid record for a second lookup', () => {
    const first = dmarc(0, ['v=DMARC1; p=reject'], ['v=DMARC1; p=none']);
    const pending = decide(null, null, first);
    const early = decide(null, first, dmarc(5, ['v=DMARC1; p=none'], ['v=DMARC1; p=reject']));
    const confirmed = decide(null, first, dmarc(10, ['v=DMARC1; p=reject'], ['v=DMARC1; p=none']));

    assert.equal(pending.outcome, 'change_pending');
    assert.equal(pending.changeKind, 'invalid_at_first_check');
    assert.equal(pending.pending, 'replace');
    assert.equal(pending.followUpAt?.toISOString(), at(10));
    assert.equal(early.outcome, 'change_pending');
    assert.equal(early.pending, 'keep');
    assert.equal(early.confirmed, false);
    assert.equal(confirmed.outcome, 'change_confirmed');
    assert.equal(confirmed.confirmed, true);
    assert.equal(confirmed.replaceCurrent, true);
  });

  test('forgets an invalid first record that was fixed', () => {
    const first = dmarc(0, ['v=DMARC1; p=reject'], ['v=DMARC1; p=none']);
    const fixed = decide(null, first, dmarc(10, reject));

    assert.equal(fixed.outcome, 'baseline');
    assert.equal(fixed.pending, 'clear');
    assert.equal(fixed.confirmed, false);
  });
});

describe('monitor decision: later checks', () => {
  const current = dmarc(0, reject);

  test('keeps a cosmetic change as the current form', () => {
    const resplit = dmarc(60, ['v=DMARC1; p=reject; ', 'rua=mailto:d@example.com']);
    const decision = decide(current, null, resplit);

    assert.equal(decision.outcome, 'unchanged');
    assert.equal(decision.changeKind, 'cosmetic');
    assert.equal(decision.replaceCurrent, true);
    assert.equal(decision.confirmed, false);
  });

  test('confirms a change at the second lookup', () => {
    const first = dmarc(60, none);
    const seen = decide(current, null, first);
    const confirmed = decide(current, first, dmarc(70, none));

    assert.equal(seen.outcome, 'change_pending');
    assert.equal(seen.changeKind, 'weakened');
    assert.equal(seen.replaceCurrent, false);
    assert.equal(seen.followUpAt?.toISOString(), at(70));
    assert.equal(confirmed.outcome, 'change_confirmed');
    assert.equal(confirmed.changeKind, 'weakened');
    assert.equal(confirmed.confirmed, true);
    assert.equal(confirmed.comparison?.kind, 'weakened');
  });

  test('waits for the delay before confirming', () => {
    const first = dmarc(60, none);
    const early = decide(current, first, dmarc(69, none));

    assert.equal(early.outcome, 'change_pending');
    assert.equal(early.pending, 'keep');
    assert.equal(early.confirmed, false);
    assert.equal(early.followUpAt?.toISOString(), at(70));
  });

  test('drops a change that reverted', () => {
    const decision = decide(current, dmarc(60, none), dmarc(70, reject));

    assert.equal(decision.outcome, 'change_reverted');
    assert.equal(decision.pending, 'clear');
    assert.equal(decision.confirmed, false);
  });

  test('restarts confirmation when the change changes', () => {
    const quarantine = dmarc(70, ['v=DMARC1; p=quarantine; rua=mailto:d@example.com']);
    const decision = decide(current, dmarc(60, none), quarantine);

    assert.equal(decision.outcome, 'change_pending');
    assert.equal(decision.pending, 'replace');
    assert.equal(decision.followUpAt?.toISOString(), at(80));
  });

  test('confirms a removal like any change', () => {
    const seen = decide(current, null, dmarc(60));
    const confirmed = decide(current, dmarc(60), dmarc(70));

    assert.equal(seen.changeKind, 'removed');
    assert.equal(seen.confirmed, false);
    assert.equal(confirmed.changeKind, 'removed');
    assert.equal(confirmed.confirmed, true);
  });

  test('lets lookup problems change nothing', () => {
    for (const status of ['servfail', 'timeout'] as const) {
      const quiet = decide(current, null, failed(60, status));
      const waiting = decide(current, dmarc(60, none), failed(70, status));

      assert.equal(quiet.outcome, 'lookup_problem');
      assert.equal(quiet.replaceCurrent, false);
      assert.equal(quiet.pending, 'keep');
      assert.equal(quiet.followUpAt, null);
      assert.equal(waiting.outcome, 'lookup_problem');
      assert.equal(waiting.pending, 'keep');
      assert.equal(waiting.confirmed, false);
      assert.equal(waiting.followUpAt?.toISOString(), at(80));
    }
  });
});

describe('monitor decision: invalid records', () => {
  function dkim(text: string): Observation {
    return buildDkimObservationFromTxt(
      's1',
      'example.com',
      { status: 'ok', name: 's1._domainkey.example.com', records: [[text]], cnameChain: [] },
      at(0),
    );
  }

  test('counts a revoked key as deliberate', () => {
    assert.equal(isPublishedInvalid(dkim('v=DKIM1; p=').meaning), false);
  });

  test('counts a malformed key as invalid', () => {
    assert.equal(isPublishedInvalid(dkim('v=DKIM1; p=not base64 at all!').meaning), true);
  });

  test('counts a discarded DMARC pair as invalid', () => {
    assert.equal(isPublishedInvalid(dmarc(0, reject, none).meaning), true);
    assert.equal(isPublishedInvalid(dmarc(0, reject).meaning), false);
    assert.equal(isPublishedInvalid(dmarc(0).meaning), false);
  });
});
