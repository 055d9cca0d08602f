import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import type { AlertService } from './alert-service.ts';

export interface IncidentMaintenanceOptions {
  db: Database;
  alerts: AlertService;
  /** Queues the notes that waited for the minimum interval; returns how many were queued. */
  flushNotes: () => Promise<number>;
  logger: Logger;
  intervalSeconds: number;
}

/**
 * The periodic work of incidents: resolve the idle-mode incidents that have been quiet for
 * their clear time, then queue the held notes whose interval has passed. Every step is a
 * conditional update or a job keyed by the incident, so several processes may run it.
 */
export class IncidentMaintenance {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly options: IncidentMaintenanceOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // A run that takes longer than the interval is not started twice.
      if (this.running) return;
      this.running = this.runOnce()
        .catch((error: unknown) =>
          this.options.logger.error({ err: error }, 'incident maintenance failed'),
        )
        .finally(() => {
          this.running = null;
        });
    }, this.options.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Run one pass. `now` decides which idle incidents are due; tests pass a later time. */
  async runOnce(now: Date = new Date()): Promise<{ resolved: number; notesQueued: number }> {
    const resolved = await this.options.alerts.resolveIdle(this.options.db, now);
    for (const incident of resolved) {
      this.options.logger.info(
        { incidentId: incident.id, kind: incident.kind, subject: incident.subjectName },
        'resolved idle incident',
      );
    }
    const notesQueued = await this.options.flushNotes();
    return { resolved: resolved.length, notesQueued };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
