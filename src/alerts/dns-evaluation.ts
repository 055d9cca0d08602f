import type { Logger } from 'pino';

import type { Transaction } from '../db/database.ts';
import type { ConfirmedDnsChange } from '../dns/monitor.ts';
import type { StoredObservation } from '../dns/observation-store.ts';
import type { AlertService } from './alert-service.ts';
import type { DnsEvidence, DnsRecordSnapshot } from './alert-store.ts';
import { isDomainPaused } from './paused-domains.ts';

const recordWords: Record<ConfirmedDnsChange['kind'], string> = {
  dmarc: 'DMARC record',
  spf: 'SPF record',
  dkim: 'DKIM key',
};

const changeWords: Record<string, string> = {
  meaning: 'changed in meaning',
  removed: 'was removed',
  appeared: 'appeared',
  became_invalid: 'became invalid',
  weakened: 'became weaker',
  invalid_at_first_check: 'is invalid',
};

function snapshot(observation: StoredObservation): DnsRecordSnapshot {
  return {
    observationId: observation.id,
    observedAt: observation.observedAt,
    lookupStatus: observation.lookup.status,
    records: observation.normalised,
    cnameChain: observation.lookup.cnameChain,
    verdict: observation.summary,
    findings: observation.findings.map((item) => ({
      code: item.code,
      severity: item.severity,
      message: item.message,
    })),
  };
}

/** Describe the record, such as "DKIM key (selector s1) at s1._domainkey.example.com". */
export function describeDnsRecord(
  change: Pick<ConfirmedDnsChange, 'kind' | 'name' | 'selector'>,
): string {
  const selector = change.selector ? ` (selector ${change.selector})` : '';
  return `${recordWords[change.kind]}${selector} at ${change.name}`;
}

/** Build the evidence of a DNS alert: the record before and after, and what the change means. */
export function dnsEvidence(change: ConfirmedDnsChange): DnsEvidence {
  const meaningHash = change.after.meaningHash ?? '';
  const record = describeDnsRecord(change);
  const errors = change.after.findings.filter((item) => item.severity === 'error');
  const meaning =
    change.comparison?.summary ??
    `The ${record} was invalid when the domain was first checked, and a second lookup saw the same. ${change.after.summary} ${errors.map((item) => item.message).join(' ')}`.trim();
  return {
    kind: 'dns',
    recordKind: change.kind,
    name: change.name,
    selector: change.selector,
    change: change.changeKind,
    severity: change.comparison?.severity ?? (errors.length > 0 ? 'critical' : 'warning'),
    meaning,
    details: (change.comparison?.details ?? []).map((item) => ({ ...item })),
    before: change.before ? snapshot(change.before) : null,
    after: snapshot(change.after),
    firstSeenAt: change.firstSeen.observedAt,
    confirmedAt: change.after.observedAt,
    meaningHash,
  };
}

/**
 * Return the fingerprint of the DNS alerts for one meaning of one record: the account, the
 * domain, the record kind, the record's name and the hash of the meaning, never any text, so
 * record edits that mean the same share it.
 */
export function dnsAlertFingerprint(
  change: Pick<ConfirmedDnsChange, 'accountId' | 'domainId' | 'kind' | 'name'>,
  meaningHash: string,
): string {
  return `dns/account/${change.accountId}/domain/${change.domainId}/${change.kind}/${change.name}/meaning/${meaningHash}`;
}

/**
 * Raise one DNS alert for each confirmed change of a record. The dedupe key adds the id of the
 * observation that first showed the change to the fingerprint, so that the same change
 * confirmed twice is stored once, while a record that changes back and later changes again
 * alerts again. The incident of the meaning the record had before is observed clear, because
 * the record no longer has it. A change confirmed while the domain is paused (by a manual
 * check, since scheduled checks skip paused domains) becomes the record's state without an
 * alert, and the open incident of the meaning before stays as it is.
 */
export function raiseDnsAlertForChange(alerts: AlertService, logger: Logger) {
  return async (tx: Transaction, change: ConfirmedDnsChange): Promise<void> => {
    if (await isDomainPaused(tx, change.accountId, change.domainId)) {
      logger.info(
        { domainId: change.domainId, record: change.name, change: change.changeKind },
        'confirmed a DNS change of a paused domain without an alert',
      );
      return;
    }
    const evidence = dnsEvidence(change);
    const confirmedAt = new Date(change.after.observedAt);
    if (change.before?.meaningHash) {
      await alerts.observeClear(tx, {
        accountId: change.accountId,
        fingerprint: dnsAlertFingerprint(change, change.before.meaningHash),
        observedAt: confirmedAt,
      });
    }
    const fingerprint = dnsAlertFingerprint(change, evidence.meaningHash);
    const alert = await alerts.raise(
      tx,
      {
        accountId: change.accountId,
        customerId: change.customerId,
        domainId: change.domainId,
        domainName: change.domainName,
        kind: 'dns',
        fingerprint,
        dedupeKey: `${fingerprint}/first-seen/${change.firstSeen.id}`,
        summary: `DNS alert: ${change.domainName}: the ${describeDnsRecord(change)} ${changeWords[change.changeKind] ?? 'changed'}`,
        evidence,
      },
      // The incident lasts while the record keeps this meaning: the next confirmed change
      // observes it clear, and one second of clear time is enough to resolve it.
      { observedAt: confirmedAt, clearMode: 'observed', clearAfterSeconds: 1 },
    );
    if (alert) {
      logger.info(
        {
          alertId: alert.id,
          incidentId: alert.incidentId,
          domain: change.domainName,
          record: change.name,
          change: change.changeKind,
          observationId: change.after.id,
        },
        'raised DNS alert',
      );
    }
  };
}
