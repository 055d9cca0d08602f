import type { Database, Transaction } from '../db/database.ts';
import {
  insertAlert,
  type Alert,
  type AlertCreatedListener,
  type NewAlert,
} from './alert-store.ts';
import {
  attachFiring,
  recordClearObservation,
  resolveIdleIncidents,
  type ClearMode,
  type Incident,
} from './incident-store.ts';

/** Called in the transaction that resolved an incident. */
export type IncidentResolvedListener = (tx: Transaction, incident: Incident) => Promise<void>;

/** Options of the incident a firing joins; every field has a default. */
export interface RaiseOptions {
  /** The time the firing is about, such as the end of the window that exceeded; now by default. */
  observedAt?: Date;
  /** observed (the default) waits for observeClear; idle resolves after a quiet time. */
  clearMode?: ClearMode;
  clearAfterSeconds?: number;
  ruleId?: string;
}

export interface AlertServiceOptions {
  /** A firing this soon after its incident resolved reopens it, so flapping keeps one ticket. */
  reopenWithinSeconds: number;
}

const DEFAULT_CLEAR_AFTER_SECONDS = 24 * 3600;

/**
 * Creates alerts once per dedupe key, groups them into incidents by fingerprint, and notifies
 * listeners (ticket routing) in the same transaction.
 */
export class AlertService {
  private readonly createdListeners: AlertCreatedListener[] = [];
  private readonly resolvedListeners: IncidentResolvedListener[] = [];

  constructor(private readonly options: AlertServiceOptions = { reopenWithinSeconds: 24 * 3600 }) {}

  onAlertCreated(listener: AlertCreatedListener): void {
    this.createdListeners.push(listener);
  }

  onIncidentResolved(listener: IncidentResolvedListener): void {
    this.resolvedListeners.push(listener);
  }

  /** Store a firing and attach it to its incident; null when the same firing was stored before. */
  async raise(tx: Transaction, alert: NewAlert, options: RaiseOptions = {}): Promise<Alert | null> {
    const created = await insertAlert(tx, alert);
    if (!created) return null;
    const { incident, change } = await attachFiring(tx, created, {
      observedAt: options.observedAt ?? new Date(),
      clearMode: options.clearMode ?? 'observed',
      clearAfterSeconds: options.clearAfterSeconds ?? DEFAULT_CLEAR_AFTER_SECONDS,
      ruleId: options.ruleId ?? null,
      reopenWithinSeconds: this.options.reopenWithinSeconds,
    });
    for (const listener of this.createdListeners) {
      await listener(tx, created, { incidentId: incident.id, change });
    }
    return created;
  }

  /**
   * Record that the condition of `fingerprint` was clear at `observedAt` (the time the
   * observation is about), resolving its open incident once it has stayed clear long enough.
   */
  async observeClear(
    tx: Transaction,
    input: { accountId: string; fingerprint: string; observedAt: Date },
  ): Promise<Incident | null> {
    const resolved = await recordClearObservation(tx, input);
    if (resolved) await this.notifyResolved(tx, resolved);
    return resolved;
  }

  /** Resolve the idle-mode incidents that have been quiet for their clear time at `now`. */
  async resolveIdle(db: Database, now: Date): Promise<Incident[]> {
    return db.transaction(async (tx) => {
      const resolved = await resolveIdleIncidents(tx, now);
      for (const incident of resolved) await this.notifyResolved(tx, incident);
      return resolved;
    });
  }

  private async notifyResolved(tx: Transaction, incident: Incident): Promise<void> {
    for (const listener of this.resolvedListeners) await listener(tx, incident);
  }
}
