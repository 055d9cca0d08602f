import type { Job } from 'pg-boss';
import type { Logger } from 'pino';
import { getAlert, setTicketStatus, type Alert } from '../alerts/alert-store.ts';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Transaction } from '../db/database.ts';
import { HaloPsaError, type HaloTicket } from '../halopsa/index.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { ConnectionService } from './connection.ts';
import { recordEvent } from './history.ts';
import { TICKET_CREATE_QUEUE, TICKET_CREATE_RETRY_LIMIT, type TicketCreateJob } from './jobs.ts';
import { getMapping } from './mappings.ts';
import { formatTicket } from './ticket-content.ts';
import { getTicketRule } from './ticket-rules.ts';

/**
 * Turns alerts into HaloPSA tickets. Routing happens in the transaction that creates the alert;
 * creation runs as a job, so an alert survives HaloPSA being down and a restart.
 */
export class TicketDispatch {
  constructor(
    private readonly db: Database,
    private readonly queue: JobQueue,
    private readonly connections: ConnectionService,
    private readonly publicUrl: string,
    private readonly logger: Logger,
  ) {}

  /** Alert-created listener: queue a ticket when the customer's rule covers this alert. */
  async route(tx: Transaction, alert: Alert): Promise<void> {
    const covered = await tx.query(
      `SELECT 1
         FROM halopsa_ticket_rule_targets t
         JOIN halopsa_customer_mappings m ON m.customer_id = t.customer_id
        WHERE t.customer_id = $1 AND t.alert_kind = $2 AND t.domain_id = $3 AND m.account_id = $4`,
      [alert.customerId, alert.kind, alert.domainId, alert.accountId],
    );
    if (covered.length === 0) return;
    await setTicketStatus(tx, alert.id, { status: 'pending' });
    await this.queue.enqueue(
      TICKET_CREATE_QUEUE,
      { accountId: alert.accountId, alertId: alert.id } satisfies TicketCreateJob,
      {
        tx,
        priority: 10,
      },
    );
  }

  /**
   * The job handler. Before creating, it looks the alert id up in HaloPSA, so that a retry after
   * a lost response adopts the ticket the earlier attempt made instead of making a second one.
   */
  async run(data: TicketCreateJob, job: Job<TicketCreateJob>): Promise<void> {
    const alert = await getAlert(this.db, data.accountId, data.alertId);
    if (alert.halopsaTicketId !== null) return;

    const mapping = await getMapping(this.db, alert.accountId, alert.customerId);
    const rule = await getTicketRule(this.db, alert.accountId, alert.customerId);
    if (!mapping || !rule) {
      await setTicketStatus(this.db, alert.id, {
        status: 'failed',
        error: 'The customer is no longer mapped to HaloPSA, or its ticket rule was removed.',
      });
      return;
    }

    try {
      const client = await this.connections.clientFor(alert.accountId);
      const existing = (await client.findTicketsByThirdPartyId(alert.id)).find(
        (ticket) => !ticket.deleted,
      );
      const ticket: HaloTicket =
        existing ??
        ((
          await client.createTickets([
            {
              ...formatTicket(alert, this.publicUrl),
              tickettype_id: rule.ticketTypeId,
              client_id: mapping.haloClientId,
              ...(rule.siteId !== null ? { site_id: rule.siteId } : {}),
              ...(rule.userId !== null ? { user_id: rule.userId } : {}),
              third_party_id_string: alert.id,
            },
          ])
        )[0] as HaloTicket);

      await setTicketStatus(this.db, alert.id, { status: 'created', ticketId: ticket.id });
      if (!existing) {
        await recordAudit(this.db, {
          accountId: alert.accountId,
          actor: SYSTEM_ACTOR,
          action: 'halopsa.ticket.created',
          customerId: alert.customerId,
          targetType: 'halopsa_ticket',
          targetId: ticket.id,
          after: {
            endpoint: 'POST /api/Tickets',
            alertId: alert.id,
            ticketTypeId: rule.ticketTypeId,
            clientId: mapping.haloClientId,
            result: 'succeeded',
          },
        });
      }
      await recordEvent(this.db, {
        accountId: alert.accountId,
        customerId: alert.customerId,
        event: 'ticket.created',
        outcome: 'succeeded',
        message: `HaloPSA ticket ${ticket.id} ${existing ? 'found for' : 'created for'} ${alert.kind} alert on ${alert.domainName}.`,
        detail: { alertId: alert.id, ticketId: ticket.id, adopted: existing !== undefined },
      });
      this.logger.info(
        { alertId: alert.id, ticketId: ticket.id, adopted: existing !== undefined },
        'alert ticket in HaloPSA',
      );
    } catch (error) {
      const permanent = !(error instanceof HaloPsaError) || !error.retryable;
      const lastAttempt = job.retryCount >= TICKET_CREATE_RETRY_LIMIT;
      const message = error instanceof Error ? error.message : String(error);
      if (permanent || lastAttempt) {
        await setTicketStatus(this.db, alert.id, { status: 'failed', error: message });
        await recordAudit(this.db, {
          accountId: alert.accountId,
          actor: SYSTEM_ACTOR,
          action: 'halopsa.ticket.failed',
          customerId: alert.customerId,
          targetType: 'alert',
          targetId: alert.id,
          after: { endpoint: 'POST /api/Tickets', result: 'failed', error: message },
        });
        await recordEvent(this.db, {
          accountId: alert.accountId,
          customerId: alert.customerId,
          event: 'ticket.failed',
          outcome: 'failed',
          message,
          detail: {
            alertId: alert.id,
            halopsaError: error instanceof HaloPsaError ? error.code : 'unknown',
          },
        });
      }
      if (
        error instanceof HaloPsaError &&
        ['invalid_credentials', 'token_rejected', 'permission_missing'].includes(error.code)
      ) {
        await this.connections.setStatus(alert.accountId, 'needs_attention', error.message);
      }
      // A permanent failure is recorded and not retried: the same request would fail the same way.
      if (!permanent) throw error;
    }
  }
}
