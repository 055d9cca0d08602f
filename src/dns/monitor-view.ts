// The DNS monitoring state of a domain as the API shows it: when it was and will be checked,
// and for each record its current observation, a change waiting for confirmation and the
// latest lookup.
import type { Queryable } from '../db/database.ts';
import { getDomain } from '../platform/domains.ts';
import { dkimKeyName } from './dkim-record.ts';
import { getMonitorSettings } from './monitor-settings.ts';
import type { RecordKind } from './observation.ts';
import type { StoredObservation } from './observation-store.ts';
import { getObservations, listRecordStates } from './observation-store.ts';

/**
 * `not_checked`: no lookup yet. `checked`: the latest lookup succeeded and no change is
 * waiting. `change_pending`: a change waits for its second lookup. `lookup_problem`: the
 * latest lookup failed, so the current observation may be out of date.
 */
export type RecordMonitorStatus = 'not_checked' | 'checked' | 'change_pending' | 'lookup_problem';

export interface RecordView {
  kind: RecordKind;
  name: string;
  selector: string | null;
  status: RecordMonitorStatus;
  current: StoredObservation | null;
  pending: StoredObservation | null;
  latest: StoredObservation | null;
  consecutiveProblems: number;
}

export interface DomainDnsView {
  domainId: string;
  domainName: string;
  /** False for a paused domain, which scheduled checks skip. */
  monitored: boolean;
  checkIntervalMinutes: number;
  lastCheckedAt: string | null;
  nextCheckAt: string | null;
  nextCheckReason: 'scheduled' | 'confirmation' | null;
  dkimSelectors: string[];
  records: RecordView[];
}

/** Build the DNS monitoring view of one domain. Throws not_found for another account's domain. */
export async function getDomainDnsView(
  db: Queryable,
  accountId: string,
  domainId: string,
): Promise<DomainDnsView> {
  const domain = await getDomain(db, accountId, domainId);
  const settings = await getMonitorSettings(db, accountId);
  const selectors = (
    await db.query<{ selector: string }>(
      'SELECT selector FROM dns_dkim_selectors WHERE account_id = $1 AND domain_id = $2 ORDER BY selector',
      [accountId, domainId],
    )
  ).map((row) => row.selector);
  const states = await listRecordStates(db, accountId, domainId);
  // Read after the record states: a check that commits in between then shows in both, where
  // the other order could show checked records with no time of the last check.
  const [schedule] = await db.query<{
    next_check_at: Date;
    next_check_reason: 'scheduled' | 'confirmation';
    last_checked_at: Date | null;
  }>(
    `SELECT next_check_at, next_check_reason, last_checked_at FROM dns_check_schedule
      WHERE account_id = $1 AND domain_id = $2`,
    [accountId, domainId],
  );

  const ids = states.flatMap((state) =>
    [state.currentObservationId, state.pendingObservationId, state.lastObservationId].filter(
      (id): id is string => id !== null,
    ),
  );
  const observations = await getObservations(db, accountId, ids);
  const byId = (id: string | null) => (id ? (observations.get(id) ?? null) : null);

  const expected: { kind: RecordKind; name: string; selector: string | null }[] = [
    { kind: 'dmarc', name: `_dmarc.${domain.name}`, selector: null },
    { kind: 'spf', name: domain.name, selector: null },
    ...selectors.map((selector) => ({
      kind: 'dkim' as const,
      name: dkimKeyName(selector, domain.name),
      selector,
    })),
  ];
  const records = expected.map((record): RecordView => {
    const state = states.find((item) => item.kind === record.kind && item.name === record.name);
    const current = byId(state?.currentObservationId ?? null);
    const pending = byId(state?.pendingObservationId ?? null);
    const latest = byId(state?.lastObservationId ?? null);
    let status: RecordMonitorStatus = 'not_checked';
    if (pending) status = 'change_pending';
    else if (latest?.lookupProblem) status = 'lookup_problem';
    else if (latest) status = 'checked';
    return {
      ...record,
      status,
      current,
      pending,
      latest,
      consecutiveProblems: state?.consecutiveProblems ?? 0,
    };
  });

  return {
    domainId: domain.id,
    domainName: domain.name,
    monitored: domain.status !== 'paused',
    checkIntervalMinutes: settings.checkIntervalMinutes,
    lastCheckedAt: schedule?.last_checked_at
      ? new Date(schedule.last_checked_at).toISOString()
      : null,
    nextCheckAt: schedule ? new Date(schedule.next_check_at).toISOString() : null,
    nextCheckReason: schedule?.next_check_reason ?? null,
    dkimSelectors: selectors,
    records,
  };
}
