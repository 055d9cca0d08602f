import type { Transaction } from '../db/database.ts';
import {
  insertAlert,
  type Alert,
  type AlertCreatedListener,
  type NewAlert,
} from './alert-store.ts';

/** Creates alerts once per fingerprint and tells listeners (ticket routing) in the same transaction. */
export class AlertService {
  private readonly listeners: AlertCreatedListener[] = [];

  onAlertCreated(listener: AlertCreatedListener): void {
    this.listeners.push(listener);
  }

  async raise(tx: Transaction, alert: NewAlert): Promise<Alert | null> {
    const created = await insertAlert(tx, alert);
    if (!created) return null;
    for (const listener of this.listeners) await listener(tx, created);
    return created;
  }
}
