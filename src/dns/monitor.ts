// One check of one domain: DMARC at _dmarc.<domain>, SPF at the apex and DKIM at each configured
// selector. The lookups run outside any transaction, because they can take seconds and a
// PGlite transaction holds up every other query. Then one short transaction stores each
// observation, applies the confirmation rule to the record's state, calls the listeners of
// confirmed changes and schedules the next check.
import { randomUUID } from 'node:crypto';

import type { Logger } from 'pino';

import type { Database, Transaction } from '../db/database.ts';
import { dkimKeyName } from './dkim-record.ts';
import type { Decision } from './monitor-decision.ts';
import { decideObservation } from './monitor-decision.ts';
import { getMonitorSettings } from './monitor-settings.ts';
import type { Observation, ObservationComparison, RecordKind } from './observation.ts';
import { observeDkim, observeDmarc, observeSpf } from './observation.ts';
import type { CheckTrigger, MonitorChangeKind, StoredObservation } from './observation-store.ts';
import {
  deleteUnlistedDkimStates,
  getObservations,
  insertObservation,
  lockRecordState,
  updateRecordState,
} from './observation-store.ts';
import type { DnsLookups } from './resolver.ts';

/** A change of a record's meaning that a second lookup confirmed. */
export interface ConfirmedDnsChange {
  accountId: string;
  customerId: string;
  domainId: string;
  domainName: string;
  kind: RecordKind;
  name: string;
  selector: string | null;
  changeKind: MonitorChangeKind;
  /** The comparison of the state before with the confirming observation; null at a first check. */
  comparison: ObservationComparison | null;
  /** The record's state before the change; null when the domain had not been checked before. */
  before: StoredObservation | null;
  /** The observation that first showed the change. */
  firstSeen: StoredObservation;
  /** The observation that confirmed it, now the record's state. */
  after: StoredObservation;
}

/** Called inside the transaction that confirmed the change, so its effects commit with it. */
export type DnsChangeConfirmedListener = (
  tx: Transaction,
  change: ConfirmedDnsChange,
) => Promise<void>;

export interface DomainCheckResult {
  checkId: string;
  domainId: string;
  domainName: string;
  observations: StoredObservation[];
  nextCheckAt: Date;
  nextCheckReason: 'scheduled' | 'confirmation';
}

export interface DnsMonitorOptions {
  db: Database;
  lookups: DnsLookups;
  logger: Logger;
  /** Minimum time between the first lookup of a change and the one that confirms it, in seconds. */
  confirmDelaySeconds: number;
  /** Clock for observation times and scheduling (default: the system clock). */
  now?: () => Date;
  /** Source of the interval jitter, from 0 to 1 (default: Math.random). */
  random?: () => number;
}

/**
 * Share of the interval by which each next check moves at random either way, so that domains
 * added together drift apart instead of being checked in one burst forever.
 */
const INTERVAL_JITTER = 0.1;

interface CheckTarget {
  kind: RecordKind;
  name: string;
  selector: string | null;
  observe: () => Promise<Observation>;
}

/** Checks domains and keeps each record's state; see monitor-decision.ts for the rule. */
export class DnsMonitor {
  private readonly listeners: DnsChangeConfirmedListener[] = [];
  private readonly now: () => Date;
  private readonly random: () => number;

  constructor(private readonly options: DnsMonitorOptions) {
    this.now = options.now ?? (() => new Date());
    this.random = options.random ?? Math.random;
  }

  onChangeConfirmed(listener: DnsChangeConfirmedListener): void {
    this.listeners.push(listener);
  }

  /**
   * Check every record of one domain and store what was seen. Returns null when the domain no
   * longer exists in the account (it was removed after the check was queued), and for a
   * scheduled or confirmation check of a domain paused after the check was queued. A manual
   * check of a paused domain runs, and its confirmed changes reach the listeners, which
   * decide whether a paused domain alerts.
   */
  async checkDomain(
    accountId: string,
    domainId: string,
    trigger: CheckTrigger,
  ): Promise<DomainCheckResult | null> {
    const { db, lookups } = this.options;
    const [domain] = await db.query<{ name: string; customer_id: string; status: string }>(
      'SELECT name, customer_id, status FROM domains WHERE account_id = $1 AND id = $2',
      [accountId, domainId],
    );
    if (!domain) return null;
    if (domain.status === 'paused' && trigger !== 'manual') {
      this.options.logger.debug(
        { accountId, domainId, trigger },
        'skipped the queued DNS check of a paused domain',
      );
      return null;
    }
    const selectors = (
      await db.query<{ selector: string }>(
        'SELECT selector FROM dns_dkim_selectors WHERE account_id = $1 AND domain_id = $2 ORDER BY selector',
        [accountId, domainId],
      )
    ).map((row) => row.selector);
    const settings = await getMonitorSettings(db, accountId);

    // NOTE: the lookups go to the configured recursive resolvers, not to the zone's
    // authoritative servers, so an answer can be up to one TTL old and servers that disagree
    // during a change are not seen.
    const clock = { now: this.now };
    const targets: CheckTarget[] = [
      {
        kind: 'dmarc',
        name: `_dmarc.${domain.name}`,
        selector: null,
        observe: () => observeDmarc(domain.name, lookups, clock),
      },
      {
        kind: 'spf',
        name: domain.name,
        selector: null,
        observe: () => observeSpf(domain.name, lookups, clock),
      },
      ...selectors.map((selector): CheckTarget => ({
        kind: 'dkim',
        name: dkimKeyName(selector, domain.name),
        selector,
        observe: () => observeDkim(selector, domain.name, lookups, clock),
      })),
    ];
    const observations = await Promise.all(targets.map((target) => target.observe()));
    const checkId = randomUUID();
    const finishedAt = this.now();

    const result = await db.transaction(async (tx) => {
      const stored: StoredObservation[] = [];
      let followUpAt: Date | null = null;
      for (const [index, target] of targets.entries()) {
        const outcome = await this.recordObservation(tx, {
          accountId,
          domainId,
          customerId: domain.customer_id,
          domainName: domain.name,
          checkId,
          trigger,
          target,
          observation: observations[index]!,
        });
        stored.push(outcome.stored);
        const due = outcome.decision.followUpAt;
        if (due && (!followUpAt || due < followUpAt)) followUpAt = due;
      }
      await deleteUnlistedDkimStates(tx, accountId, domainId, selectors);

      const intervalMs = settings.checkIntervalMinutes * 60_000;
      const jitter = 1 - INTERVAL_JITTER + 2 * INTERVAL_JITTER * this.random();
      const regular = new Date(finishedAt.getTime() + Math.round(intervalMs * jitter));
      const confirmation = followUpAt !== null && followUpAt < regular;
      const nextCheckAt = confirmation ? followUpAt! : regular;
      const nextCheckReason = confirmation ? 'confirmation' : 'scheduled';
      await tx.query(
        `INSERT INTO dns_check_schedule (domain_id, account_id, next_check_at, next_check_reason,
                                         last_checked_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (domain_id) DO UPDATE
           SET next_check_at = $3, next_check_reason = $4, last_checked_at = $5`,
        [domainId, accountId, nextCheckAt.toISOString(), nextCheckReason, finishedAt.toISOString()],
      );
      return {
        checkId,
        domainId,
        domainName: domain.name,
        observations: stored,
        nextCheckAt,
        nextCheckReason,
      } satisfies DomainCheckResult;
    });

    this.options.logger.debug(
      {
        accountId,
        domainId,
        checkId,
        trigger,
        outcomes: result.observations.map((item) => `${item.name}:${item.outcome}`),
        nextCheckAt: result.nextCheckAt,
      },
      'checked DNS records of domain',
    );
    return result;
  }

  /** Store one observation, update its record's state, and report a confirmed change. */
  private async recordObservation(
    tx: Transaction,
    input: {
      accountId: string;
      domainId: string;
      customerId: string;
      domainName: string;
      checkId: string;
      trigger: CheckTrigger;
      target: CheckTarget;
      observation: Observation;
    },
  ): Promise<{ stored: StoredObservation; decision: Decision }> {
    const { accountId, domainId, target, observation } = input;
    const state = await lockRecordState(tx, {
      accountId,
      domainId,
      kind: target.kind,
      name: target.name,
      selector: target.selector,
    });
    const known = await getObservations(
      tx,
      accountId,
      [state.currentObservationId, state.pendingObservationId].filter(
        (id): id is string => id !== null,
      ),
    );
    const current = state.currentObservationId
      ? (known.get(state.currentObservationId) ?? null)
      : null;
    const pending = state.pendingObservationId
      ? (known.get(state.pendingObservationId) ?? null)
      : null;

    const decision = decideObservation({
      current,
      pending,
      observation,
      confirmDelayMs: this.options.confirmDelaySeconds * 1000,
    });
    const stored = await insertObservation(tx, {
      accountId,
      domainId,
      checkId: input.checkId,
      selector: target.selector,
      trigger: input.trigger,
      observation,
      outcome: decision.outcome,
      changeKind: decision.changeKind,
      comparison: decision.comparison,
    });
    const pendingId =
      decision.pending === 'keep'
        ? (pending?.id ?? null)
        : decision.pending === 'replace'
          ? stored.id
          : null;
    await updateRecordState(tx, state, {
      currentObservationId: decision.replaceCurrent ? stored.id : (current?.id ?? null),
      pendingObservationId: pendingId,
      lastObservationId: stored.id,
      consecutiveProblems: observation.lookupProblem ? state.consecutiveProblems + 1 : 0,
    });

    if (decision.confirmed && decision.changeKind && pending) {
      const change: ConfirmedDnsChange = {
        accountId,
        customerId: input.customerId,
        domainId,
        domainName: input.domainName,
        kind: target.kind,
        name: target.name,
        selector: target.selector,
        changeKind: decision.changeKind,
        comparison: decision.comparison,
        before: current,
        firstSeen: pending,
        after: stored,
      };
      this.options.logger.info(
        {
          accountId,
          domainId,
          record: target.name,
          changeKind: decision.changeKind,
          observationId: stored.id,
        },
        'confirmed DNS record change',
      );
      for (const listener of this.listeners) await listener(tx, change);
    }
    return { stored, decision };
  }
}
