import type { Job } from 'pg-boss';
import type { Logger } from 'pino';
import {
  getAlert,
  setTicketStatus,
  type Alert,
  type AlertKind,
  type IncidentChange,
} from '../alerts/alert-store.ts';
import {
  closingNoteOwed,
  getIncident,
  insertIncidentNote,
  listIncidentsOwingNotes,
  listUnnotedFirings,
  markNoteSent,
  noteIntervalPassed,
  setIncidentTicket,
  type Incident,
} from '../alerts/incident-store.ts';
import { recordAudit, SYSTEM_ACTOR } from '../audit/audit-log.ts';
import type { Database, Queryable, Transaction } from '../db/database.ts';
import {
  HaloPsaError,
  type HaloAction,
  type HaloActionInput,
  type HaloPsaClient,
  type HaloTicket,
  type HaloTicketInput,
} from '../halopsa/index.ts';
import type { JobQueue, QueueDefinition } from '../jobs/queue.ts';
import type { ConnectionService } from './connection.ts';
import { recordEvent } from './history.ts';
import { deferralOf } from './rate-budget.ts';
import { integrationEnabled } from './account-gate.ts';
import { TICKET_CREATE_QUEUE, TICKET_CREATE_RETRY_LIMIT, type TicketCreateJob } from './jobs.ts';
import { getMapping } from './mappings.ts';
import { formatIncidentNote, formatTicket } from './ticket-content.ts';
import { getTicketRule, type TicketRule } from './ticket-rules.ts';

export const TICKET_NOTE_QUEUE = 'halopsa-ticket-note';

export interface TicketNoteJob {
  accountId: string;
  incidentId: string;
}

/**
 * The queue of notes on incident tickets. It is stately and keyed by the incident, so one job
 * of an incident runs at a time and at most one more waits. Each job sends whatever the
 * incident owes when it runs, so a burst of firings makes one or two jobs.
 */
export const TICKET_NOTE_QUEUE_DEFINITION: QueueDefinition = {
  name: TICKET_NOTE_QUEUE,
  policy: 'stately',
  retryLimit: 10,
  retryDelaySeconds: 5,
  retryDelayMaxSeconds: 900,
  expireInSeconds: 300,
};

/**
 * Holds back the tickets of customers whose mapping has an open problem, so that they wait
 * for the fix instead of failing.
 */
export interface TicketProblemGate {
  deferIfBlocked(alert: Alert, recheckProblemId?: string): Promise<boolean>;
  deferAfterRejection(alert: Alert, ticketTypeId: number, error: unknown): Promise<boolean>;
  ticketCreated(alert: Alert, recheckProblemId?: string): Promise<void>;
}

/** The settings of alert tickets and their notes. */
export interface TicketSettings {
  /** Action outcome of notes; 7 is "Internal Note" on stock HaloPSA. */
  noteOutcomeId: number;
  /** Request source id set as the ticket's `source`, so these tickets stand apart in reports. */
  sourceId: number | null;
  /** Priority id per alert kind, when the ticket type's SLA accepts it. */
  priorityIds: Partial<Record<AlertKind, number>>;
  /** Minimum wall time between two notes on one ticket, in seconds; creating it counts as one. */
  noteIntervalSeconds: number;
  /** Wait after a ticket write whose outcome is unknown before looking the alert up again. */
  writeSettleSeconds: number;
}

export const DEFAULT_TICKET_SETTINGS: TicketSettings = {
  noteOutcomeId: 7,
  sourceId: null,
  priorityIds: {},
  noteIntervalSeconds: 3600,
  writeSettleSeconds: 120,
};

// Failures after which HaloPSA may or may not have created the ticket.
const AMBIGUOUS_CODES = ['timeout', 'connection_failed', 'server_error'];
// Settle-and-check rounds before an ambiguous failure is treated as a plain retryable one.
const MAX_SETTLE_RETRIES = 3;

// HaloPSA's wording when the API agent may not use an action outcome.
const OUTCOME_FORBIDDEN = /do not have access to this action/i;
const CONNECTION_CODES = ['invalid_credentials', 'token_rejected', 'permission_missing'];
// Incidents the periodic flush queues at once; the rest wait for its next run.
const FLUSH_BATCH = 200;

type TicketInput = HaloTicketInput & { source?: number };

/** The fields of a pg-boss ticket job that run() and runBatch() read. */
export type TicketJob = Pick<Job<TicketCreateJob>, 'id' | 'data' | 'retryCount'>;

/** An alert whose ticket is due, with the mapping and rule it is made from. */
interface ReadyTicket {
  alert: Alert;
  haloClientId: number;
  rule: TicketRule;
}

/** The ticket built for an alert, and the ticket HaloPSA already has for it, if any. */
interface TicketLookup {
  client: HaloPsaClient;
  existing: HaloTicket | undefined;
  input: TicketInput;
}

/** A ticket job of a batch whose ticket is still to be created. */
interface PendingTicket {
  job: TicketJob;
  ready: ReadyTicket;
  lookup: TicketLookup;
}

/** The fields of a pg-boss note job that runNote() and runNoteBatch() read. */
export type NoteJob = Pick<Job<TicketNoteJob>, 'id' | 'data' | 'retryCount'>;

/** A note an incident owes, built and ready to send. */
interface DueNote {
  job: NoteJob;
  incident: Incident;
  /** The firings the note covers; shortened when an earlier attempt's note covered fewer. */
  firingIds: string[];
  closing: boolean;
  ticketId: number;
  outcomeId: number;
  /** The note's place among the incident's notes, counted from 1. */
  sequence: number;
  referencePrefix: string;
  /** An earlier attempt sent a note with this place, so it may be on the ticket. */
  mayBeSent: boolean;
  action: HaloActionInput;
}

/**
 * Turns alerts into HaloPSA tickets, one per incident, and later firings and the resolution
 * into private notes on that ticket. Routing happens in the transaction that creates the
 * alert; HaloPSA is called from jobs, so an alert survives HaloPSA being down and a restart.
 */
export class TicketDispatch {
  constructor(
    private readonly db: Database,
    private readonly queue: JobQueue,
    private readonly connections: ConnectionService,
    private readonly publicUrl: string,
    private readonly logger: Logger,
    private readonly settings: TicketSettings = DEFAULT_TICKET_SETTINGS,
    private readonly gate: TicketProblemGate | null = null,
  ) {}

  /**
   * Route a new alert (the alert-created listener). When the customer's rule covers it, the
   * first covered firing of an incident queues its ticket. A later firing queues a note, or
   * waits as held while the minimum interval since the last note has not passed.
   */
  async route(
    tx: Transaction,
    alert: Alert,
    context: { incidentId: string; change: IncidentChange },
  ): Promise<void> {
    // A late firing is about a time its resolved incident already covers.
    if (context.change === 'late') return;
    if (!(await integrationEnabled(tx, alert.accountId))) return;
    const covered = await tx.query(
      `SELECT 1
         FROM halopsa_ticket_rule_targets t
         JOIN halopsa_customer_mappings m ON m.customer_id = t.customer_id
        WHERE t.customer_id = $1 AND t.alert_kind = $2 AND m.account_id = $4
          AND (t.domain_id = $3 OR t.group_id = $5)`,
      [alert.customerId, alert.kind, alert.domainId, alert.accountId, alert.groupId],
    );
    if (covered.length === 0) return;

    const incident = await getIncident(tx, alert.accountId, context.incidentId);
    if (incident.ticketStatus === 'not_routed' || incident.ticketStatus === 'failed') {
      await setTicketStatus(tx, alert.id, { status: 'pending' });
      await setIncidentTicket(tx, incident.id, { status: 'pending', ticketAlertId: alert.id });
      await this.queue.enqueue(
        TICKET_CREATE_QUEUE,
        { accountId: alert.accountId, alertId: alert.id } satisfies TicketCreateJob,
        { tx, priority: 10 },
      );
      return;
    }

    const sendNow =
      incident.ticketStatus === 'created' &&
      (await noteIntervalPassed(tx, incident.id, this.settings.noteIntervalSeconds));
    await setTicketStatus(tx, alert.id, { status: sendNow ? 'pending' : 'held' });
    if (sendNow) await this.enqueueNote(incident, tx);
  }

  /** Queue the closing note of a resolved incident that has a ticket (the resolved listener). */
  async incidentResolved(tx: Transaction, incident: Incident): Promise<void> {
    // A ticket still being made gets its closing note once it exists (see run).
    if (incident.ticketStatus === 'created') await this.enqueueNote(incident, tx);
  }

  /**
   * Queue a note job for every incident whose held firings or closing note wait only for the
   * minimum interval, which has now passed. Runs periodically; returns how many were queued.
   */
  async flushHeldNotes(): Promise<number> {
    const owing = await listIncidentsOwingNotes(
      this.db,
      this.settings.noteIntervalSeconds,
      FLUSH_BATCH,
    );
    for (const entry of owing) {
      await this.queue.enqueue(TICKET_NOTE_QUEUE, entry satisfies TicketNoteJob, {
        singletonKey: entry.incidentId,
      });
    }
    return owing.length;
  }

  private async enqueueNote(
    incident: Pick<Incident, 'accountId' | 'id'>,
    tx?: Transaction,
  ): Promise<void> {
    await this.queue.enqueue(
      TICKET_NOTE_QUEUE,
      { accountId: incident.accountId, incidentId: incident.id } satisfies TicketNoteJob,
      { ...(tx ? { tx } : {}), singletonKey: incident.id },
    );
  }

  /**
   * Create the ticket of an alert (the ticket job). When an earlier attempt sent the ticket, it
   * first looks the alert id up in HaloPSA, so that a retry after a lost response adopts the
   * ticket that attempt made instead of making a second one.
   */
  async run(data: TicketCreateJob, job: TicketJob): Promise<void> {
    const ready = await this.ticketReady(data);
    if (!ready) return;
    let lookup: TicketLookup;
    try {
      lookup = await this.lookUpTicket(ready);
      if (lookup.existing) {
        await this.ticketStored(ready, data, lookup.existing, { adopted: true });
        return;
      }
    } catch (error) {
      await this.ticketFailed(ready, data, job, error);
      return;
    }
    await this.createAlone({ job, ready, lookup });
  }

  /** Create one looked-up ticket in a POST of its own, and record the outcome. */
  private async createAlone(entry: PendingTicket): Promise<void> {
    const { job, ready, lookup } = entry;
    try {
      const created = await this.createTicket(lookup.client, ready.alert, lookup.input);
      await this.ticketStored(ready, job.data, created.ticket, {
        adopted: false,
        priorityDropped: created.priorityDropped,
      });
    } catch (error) {
      await this.ticketFailed(ready, job.data, job, error);
    }
  }

  /**
   * Create the tickets of a batch of ticket jobs. An alert whose ticket was sent before is
   * looked up by its id first, as in run(), and the tickets still missing for one account go to
   * HaloPSA in one POST. A batch that HaloPSA rejects as invalid is sent again one ticket at a
   * time, each looked up first, so that only the invalid ticket fails. Returns each job's outcome: null, or the error that
   * job's run raised.
   */
  async runBatch(jobs: TicketJob[]): Promise<Map<string, unknown>> {
    const outcomes = new Map<string, unknown>();
    const settle = settleInto(outcomes);

    const toCreate = new Map<string, PendingTicket[]>();
    for (const job of jobs) {
      await settle(job, async () => {
        const ready = await this.ticketReady(job.data);
        if (!ready) return;
        try {
          const lookup = await this.lookUpTicket(ready);
          if (lookup.existing) {
            await this.ticketStored(ready, job.data, lookup.existing, { adopted: true });
            return;
          }
          const pending = toCreate.get(ready.alert.accountId) ?? [];
          pending.push({ job, ready, lookup });
          toCreate.set(ready.alert.accountId, pending);
        } catch (error) {
          await this.ticketFailed(ready, job.data, job, error);
        }
      });
    }

    for (const pending of toCreate.values()) {
      // A lone ticket was looked up already, so it is created without a second lookup.
      if (pending.length === 1) {
        const [only] = pending as [PendingTicket];
        await settle(only.job, () => this.createAlone(only));
        continue;
      }
      let tickets: HaloTicket[];
      try {
        await markTicketWritesStarted(
          this.db,
          pending.map((entry) => entry.ready.alert.id),
        );
        tickets = await pending[0]!.lookup.client.createTickets(
          pending.map((entry) => entry.lookup.input),
        );
      } catch (error) {
        if (error instanceof HaloPsaError && error.code === 'validation_failed') {
          this.logger.warn(
            { alerts: pending.map((entry) => entry.ready.alert.id), err: error },
            'HaloPSA rejected a batch of tickets; sending each ticket alone',
          );
          for (const entry of pending) {
            await settle(entry.job, () => this.run(entry.job.data, entry.job));
          }
          continue;
        }
        for (const entry of pending) {
          await settle(entry.job, () =>
            this.ticketFailed(entry.ready, entry.job.data, entry.job, error),
          );
        }
        continue;
      }
      for (const entry of pending) {
        await settle(entry.job, async () => {
          const ticket = tickets.find(
            (candidate) => candidate.third_party_id_string === entry.ready.alert.id,
          );
          // The next attempt looks the alert up again and adopts the ticket if it exists.
          if (!ticket) {
            throw new Error(
              `HaloPSA's response to a batch of ${pending.length} tickets has no ticket with third_party_id_string ${entry.ready.alert.id}.`,
            );
          }
          await this.ticketStored(entry.ready, entry.job.data, ticket, { adopted: false });
        });
      }
    }
    return outcomes;
  }

  /**
   * Load the alert, its mapping and its ticket rule. Returns null when no ticket is to be made:
   * the alert has one, or a failure or a wait for a mapping problem was recorded instead.
   */
  private async ticketReady(data: TicketCreateJob): Promise<ReadyTicket | null> {
    const alert = await getAlert(this.db, data.accountId, data.alertId);
    if (alert.halopsaTicketId !== null) return null;
    if (!(await integrationEnabled(this.db, alert.accountId))) {
      await this.recordTicketFailure(
        alert,
        'The HaloPSA Integration setting was turned off before the ticket was created; retry the alert once it is on again.',
      );
      return null;
    }

    const mapping = await getMapping(this.db, alert.accountId, alert.customerId);
    const rule = await getTicketRule(this.db, alert.accountId, alert.customerId);
    if (!mapping || !rule) {
      await this.recordTicketFailure(
        alert,
        'The customer is no longer mapped to HaloPSA, or its ticket rule was removed.',
      );
      return null;
    }
    if (await this.gate?.deferIfBlocked(alert, data.recheckProblemId)) return null;
    return { alert, haloClientId: mapping.haloClientId, rule };
  }

  /**
   * Build the ticket of an alert and, when an earlier attempt sent its POST, look the alert id
   * up among HaloPSA's tickets. An alert whose ticket was never sent cannot have one, so its
   * first attempt spends no request on the lookup.
   */
  private async lookUpTicket(ready: ReadyTicket): Promise<TicketLookup> {
    const { alert, rule } = ready;
    const client = await this.connections.clientFor(alert.accountId);
    const existing = (await ticketWriteStarted(this.db, alert.id))
      ? (await client.findTicketsByThirdPartyId(alert.id)).find((ticket) => !ticket.deleted)
      : undefined;
    const priorityId = this.settings.priorityIds[alert.kind];
    // `source` (the request source) is a field of HaloPSA's ticket the client does not type.
    const input: TicketInput = {
      ...formatTicket(alert, this.publicUrl),
      tickettype_id: rule.ticketTypeId,
      client_id: ready.haloClientId,
      ...(rule.siteId !== null ? { site_id: rule.siteId } : {}),
      ...(rule.userId !== null ? { user_id: rule.userId } : {}),
      ...(priorityId !== undefined ? { priority_id: priorityId } : {}),
      ...(this.settings.sourceId !== null ? { source: this.settings.sourceId } : {}),
      third_party_id_string: alert.id,
    };
    return { client, existing, input };
  }

  /** Record a ticket made or found for the alert, and queue the incident's waiting notes. */
  private async ticketStored(
    ready: ReadyTicket,
    data: TicketCreateJob,
    ticket: HaloTicket,
    how: { adopted: boolean; priorityDropped?: boolean },
  ): Promise<void> {
    const { alert, rule } = ready;
    const priorityId = this.settings.priorityIds[alert.kind];
    await setTicketStatus(this.db, alert.id, { status: 'created', ticketId: ticket.id });
    // An adopted ticket was written by an earlier attempt whose response was lost, so this is
    // the first record of that write.
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
        incidentId: alert.incidentId,
        ticketTypeId: rule.ticketTypeId,
        clientId: ready.haloClientId,
        priorityId: how.priorityDropped ? null : (priorityId ?? null),
        sourceId: this.settings.sourceId,
        result: 'succeeded',
        adopted: how.adopted,
      },
    });
    await recordEvent(this.db, {
      accountId: alert.accountId,
      customerId: alert.customerId,
      event: 'ticket.created',
      outcome: 'succeeded',
      message:
        `HaloPSA ticket ${ticket.id} ${how.adopted ? 'found for' : 'created for'} ${alert.kind} alert on ${alert.domainName}.` +
        (how.priorityDropped
          ? ` HaloPSA rejected priority ${priorityId} for this ticket type, so the ticket has the type's default priority.`
          : ''),
      detail: {
        alertId: alert.id,
        incidentId: alert.incidentId,
        ticketId: ticket.id,
        adopted: how.adopted,
      },
    });
    this.logger.info(
      { alertId: alert.id, ticketId: ticket.id, adopted: how.adopted },
      'alert ticket in HaloPSA',
    );
    if (alert.incidentId) await this.ticketCreatedForIncident(alert.incidentId, ticket.id);
    await this.gate?.ticketCreated(alert, data.recheckProblemId);
  }

  /**
   * Handle a failed lookup or create. It raises what the queue must retry or defer, queues a
   * settle-and-check after a write whose outcome is unknown, and records a permanent failure.
   */
  private async ticketFailed(
    ready: ReadyTicket,
    data: TicketCreateJob,
    job: TicketJob,
    error: unknown,
  ): Promise<void> {
    const { alert, rule } = ready;
    // Waiting for a request slot or for the connection to be fixed is not a failed attempt.
    const deferral = deferralOf(error);
    if (deferral) throw deferral;
    if (
      error instanceof HaloPsaError &&
      AMBIGUOUS_CODES.includes(error.code) &&
      (data.settleRetries ?? 0) < MAX_SETTLE_RETRIES
    ) {
      // HaloPSA may still be creating the ticket (its gateway works on a request for up to
      // about 60 s). Looking the alert id up again at once could miss that ticket and make a
      // second one, so the next attempt waits until the write has settled.
      await this.queue.enqueue(
        TICKET_CREATE_QUEUE,
        { ...data, settleRetries: (data.settleRetries ?? 0) + 1 } satisfies TicketCreateJob,
        { priority: 10, startAfterSeconds: this.settings.writeSettleSeconds },
      );
      await this.recordRetry(
        alert,
        error,
        `HaloPSA did not confirm the ticket (${error.message}). dmarcdesk looks for it again in ${this.settings.writeSettleSeconds} seconds and creates it only if it is not there.`,
      );
      this.logger.warn(
        { alertId: alert.id, err: error },
        'ticket write outcome unknown; checking again after the settle time',
      );
      return;
    }
    if (error instanceof HaloPsaError && CONNECTION_CODES.includes(error.code)) {
      // Only a person can fix this, and the ticket goes out after the next passing check.
      await setTicketStatus(this.db, alert.id, {
        status: 'pending',
        error: `Waiting for the HaloPSA connection to be fixed: ${error.message}`,
      });
      this.logger.warn(
        { alertId: alert.id, err: error },
        'ticket waits until the HaloPSA connection is fixed',
      );
      throw await this.connections.waitForAttention(alert.accountId, error.message);
    }
    const permanent = !(error instanceof HaloPsaError) || !error.retryable;
    const lastAttempt = job.retryCount >= TICKET_CREATE_RETRY_LIMIT;
    const message = error instanceof Error ? error.message : String(error);
    // A ticket HaloPSA rejects because a mapped record is gone waits for the fix.
    if (permanent && (await this.gate?.deferAfterRejection(alert, rule.ticketTypeId, error))) {
      return;
    }
    if (permanent || lastAttempt) {
      await this.recordTicketFailure(alert, message);
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
    if (!permanent && !lastAttempt) {
      await this.recordRetry(
        alert,
        error,
        `Attempt ${job.retryCount + 1} to create the HaloPSA ticket failed (${message}). It is retried with backoff.`,
      );
    }
    // A permanent failure is recorded and not retried: the same request would fail the same way.
    if (!permanent) throw error;
  }

  /** Show a failed attempt that will be retried on the alert and in the integration history. */
  private async recordRetry(alert: Alert, error: unknown, message: string): Promise<void> {
    await setTicketStatus(this.db, alert.id, { status: 'pending', error: message });
    await recordEvent(this.db, {
      accountId: alert.accountId,
      customerId: alert.customerId,
      event: 'ticket.retrying',
      outcome: 'failed',
      message,
      detail: {
        alertId: alert.id,
        halopsaError: error instanceof HaloPsaError ? error.code : 'unknown',
      },
    });
  }

  /**
   * Queue a new attempt for an alert whose ticket failed, once its cause (a ticket type, a
   * permission, the integration setting) is fixed. Returns false when the alert's ticket did
   * not fail, so there is nothing to retry.
   */
  async retry(accountId: string, alertId: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const alert = await getAlert(tx, accountId, alertId);
      if (alert.ticketStatus !== 'failed') return false;
      await setTicketStatus(tx, alert.id, { status: 'pending' });
      if (alert.incidentId) {
        await setIncidentTicket(tx, alert.incidentId, {
          status: 'pending',
          ticketAlertId: alert.id,
        });
      }
      await this.queue.enqueue(
        TICKET_CREATE_QUEUE,
        { accountId, alertId } satisfies TicketCreateJob,
        { tx, priority: 10 },
      );
      return true;
    });
  }

  /**
   * Create the ticket. HaloPSA accepts a priority only when the ticket type's SLA has it, so a
   * ticket rejected as invalid with a priority is sent once more without one.
   * NOTE: HaloPSA's message for a priority outside the SLA is not public, so any 400 with a
   * priority set leads to the second attempt. A ticket that is invalid for another reason
   * fails there with HaloPSA's own message.
   */
  private async createTicket(
    client: HaloPsaClient,
    alert: Alert,
    input: TicketInput,
  ): Promise<{ ticket: HaloTicket; priorityDropped: boolean }> {
    await markTicketWritesStarted(this.db, [alert.id]);
    try {
      return {
        ticket: (await client.createTickets([input]))[0] as HaloTicket,
        priorityDropped: false,
      };
    } catch (error) {
      const priorityId = input.priority_id;
      if (
        priorityId === undefined ||
        !(error instanceof HaloPsaError) ||
        error.code !== 'validation_failed'
      ) {
        throw error;
      }
      this.logger.warn(
        { alertId: alert.id, priorityId, err: error },
        'HaloPSA rejected the ticket with its priority; creating it without one',
      );
      const withoutPriority = { ...input };
      delete withoutPriority.priority_id;
      const [ticket] = await client.createTickets([withoutPriority]);
      return { ticket: ticket as HaloTicket, priorityDropped: true };
    }
  }

  private async recordTicketFailure(alert: Alert, message: string): Promise<void> {
    await setTicketStatus(this.db, alert.id, { status: 'failed', error: message });
    // The incident's next covered firing tries to make the ticket again.
    if (alert.incidentId) await setIncidentTicket(this.db, alert.incidentId, { status: 'failed' });
  }

  /** Store the incident's ticket, and queue the notes that waited for it. */
  private async ticketCreatedForIncident(incidentId: string, ticketId: number): Promise<void> {
    await setIncidentTicket(this.db, incidentId, {
      status: 'created',
      ticketId,
      noteAt: 'now',
    });
    const owes =
      (await listUnnotedFirings(this.db, incidentId)).length > 0 ||
      (await closingNoteOwed(this.db, incidentId));
    if (owes) {
      const [row] = await this.db.query<{ account_id: string }>(
        'SELECT account_id FROM alert_incidents WHERE id = $1',
        [incidentId],
      );
      if (row) await this.enqueueNote({ accountId: row.account_id, id: incidentId });
    }
  }

  /**
   * Add one private note to the incident's ticket (the note job), covering every firing not yet
   * noted, or the closing note once the incident resolved. While the minimum interval since the
   * last note has not passed, it sends nothing and the firings stay held, until the periodic
   * flush queues it again.
   */
  async runNote(data: TicketNoteJob, job: NoteJob): Promise<void> {
    const due = await this.dueNote({ ...job, data });
    if (due) await this.sendNoteAlone(due);
  }

  /**
   * Add the notes of a batch of note jobs. Notes that no earlier attempt sent go to HaloPSA in
   * one POST per account. A note that may be on its ticket already is looked up and sent alone.
   * A batch that HaloPSA rejects as invalid is sent again one note at a time, so that only the
   * invalid note fails. Returns each job's outcome: null, or the error that job's run raised.
   */
  async runNoteBatch(jobs: NoteJob[]): Promise<Map<string, unknown>> {
    const outcomes = new Map<string, unknown>();
    const settle = settleInto(outcomes);
    // One job per incident takes part; another of the same incident runs after it.
    const incidents = new Set<string>();
    const afterBatch: NoteJob[] = [];
    const toSend = new Map<string, DueNote[]>();
    for (const job of jobs) {
      if (incidents.has(job.data.incidentId)) {
        afterBatch.push(job);
        continue;
      }
      incidents.add(job.data.incidentId);
      await settle(job, async () => {
        const due = await this.dueNote(job);
        if (!due) return;
        if (due.mayBeSent) {
          await this.sendNoteAlone(due);
          return;
        }
        const pending = toSend.get(due.incident.accountId) ?? [];
        pending.push(due);
        toSend.set(due.incident.accountId, pending);
      });
    }

    for (const pending of toSend.values()) {
      if (pending.length === 1) {
        const [only] = pending as [DueNote];
        await settle(only.job, () => this.sendNoteAlone(only));
        continue;
      }
      let actions: HaloAction[];
      try {
        const client = await this.connections.clientFor(pending[0]!.incident.accountId);
        await markNoteWritesStarted(this.db, pending);
        actions = await client.addActions(pending.map((due) => due.action));
      } catch (error) {
        if (error instanceof HaloPsaError && error.code === 'validation_failed') {
          this.logger.warn(
            { incidents: pending.map((due) => due.incident.id), err: error },
            'HaloPSA rejected a batch of notes; sending each note alone',
          );
          for (const due of pending)
            await settle(due.job, () => this.runNote(due.job.data, due.job));
          continue;
        }
        for (const due of pending) await settle(due.job, () => this.noteAttemptFailed(due, error));
        continue;
      }
      for (const due of pending) {
        await settle(due.job, async () => {
          // Each incident has a ticket of its own, so the ticket id identifies the note.
          const action = actions.find((candidate) => candidate.ticket_id === due.ticketId);
          // The next attempt looks the note up on the ticket and records it if it is there.
          if (!action) {
            throw new Error(
              `HaloPSA's response to a batch of ${pending.length} notes has no action on ticket ${due.ticketId}.`,
            );
          }
          await this.noteStored(due, action);
        });
      }
    }

    for (const job of afterBatch) await settle(job, () => this.runNote(job.data, job));
    return outcomes;
  }

  /**
   * Build the note an incident owes, or return null when it owes none or must wait for the
   * minimum interval (its firings are then held).
   * HaloPSA actions carry no third-party id, so each note ends with a reference to its
   * incident, its place among the incident's notes and its number of firings. When an earlier
   * attempt sent the note with this place, it may be on the ticket, and it is looked up there
   * before it is sent again.
   */
  private async dueNote(job: NoteJob): Promise<DueNote | null> {
    const { data } = job;
    // A firing is recorded in a transaction that updates its incident's row and queues a note
    // job. When a job of the incident is already queued, that queueing does nothing, and the
    // queued job must see the firing. Locking the row waits for such a transaction to commit,
    // so the firings listed below include it.
    await this.db.query('SELECT 1 FROM alert_incidents WHERE id = $1 FOR UPDATE', [
      data.incidentId,
    ]);
    const incident = await getIncident(this.db, data.accountId, data.incidentId);
    if (incident.halopsaTicketId === null || incident.ticketStatus !== 'created') return null;
    const firingIds = await listUnnotedFirings(this.db, incident.id);
    const closing = await closingNoteOwed(this.db, incident.id);
    if (firingIds.length === 0 && !closing) return null;

    if (!(await noteIntervalPassed(this.db, incident.id, this.settings.noteIntervalSeconds))) {
      await holdFirings(this.db, firingIds);
      return null;
    }

    const firings = await Promise.all(
      firingIds.map((id) => getAlert(this.db, incident.accountId, id)),
    );
    // The reference names the incident, the note's place among its notes and the firings it
    // covers. Firings are only added after the unnoted ones, so a retry that finds its note on
    // the ticket can tell which firings that note covered, even if more arrived since.
    const [place] = await this.db.query<{ sequence: number; sent: number | null }>(
      `SELECT (SELECT count(*)::int + 1 FROM alert_incident_notes WHERE incident_id = $1) AS sequence,
              note_write_sequence AS sent
         FROM alert_incidents WHERE id = $1`,
      [incident.id],
    );
    const sequence = place?.sequence ?? 1;
    const referencePrefix = `dmarcdesk note reference: ${incident.id}/${sequence}/`;
    const note = `${formatIncidentNote({ incident, firings, closing, publicUrl: this.publicUrl })}\n${referencePrefix}${firingIds.length}`;
    const ticketId = incident.halopsaTicketId;
    const outcomeId = this.settings.noteOutcomeId;
    return {
      job,
      incident,
      firingIds,
      closing,
      ticketId,
      outcomeId,
      sequence,
      referencePrefix,
      mayBeSent: place?.sent === sequence,
      // hiddenfromuser keeps the note private to agents, and sendemail false mails no one.
      action: {
        ticket_id: ticketId,
        outcome_id: outcomeId,
        note,
        hiddenfromuser: true,
        sendemail: false,
      },
    };
  }

  /** Send one note in a POST of its own, after looking for it when it may be sent already. */
  private async sendNoteAlone(due: DueNote): Promise<void> {
    try {
      const client = await this.connections.clientFor(due.incident.accountId);
      const earlier = due.mayBeSent ? await this.findEarlierNote(client, due) : undefined;
      if (earlier) {
        await this.noteStored(due, earlier);
        return;
      }
      await markNoteWritesStarted(this.db, [due]);
      const [action] = await client.addActions([due.action]);
      await this.noteStored(due, action);
    } catch (error) {
      await this.noteAttemptFailed(due, error);
    }
  }

  /**
   * Look for the note among the ticket's actions by its reference. A note found there covers
   * the firings it counted then, so later firings are held for the next note.
   */
  private async findEarlierNote(
    client: HaloPsaClient,
    due: DueNote,
  ): Promise<HaloAction | undefined> {
    const { referencePrefix } = due;
    const earlier = (await client.listTicketActions(due.ticketId)).find((action) =>
      action.note?.includes(referencePrefix),
    );
    if (!earlier) return undefined;
    const covered = Number(
      /^\d+/.exec(
        earlier.note!.slice(earlier.note!.indexOf(referencePrefix) + referencePrefix.length),
      )?.[0] ?? due.firingIds.length,
    );
    // The firings after those wait for the next note, which the minimum interval since this
    // one holds back; the periodic flush queues it.
    await holdFirings(this.db, due.firingIds.splice(covered));
    this.logger.info(
      {
        incidentId: due.incident.id,
        ticketId: due.ticketId,
        actionId: earlier.id,
        firings: covered,
      },
      'note found on the ticket from an earlier attempt; not sent again',
    );
    return earlier;
  }

  /** Record a note that is on the ticket, and mark its firings noted. */
  private async noteStored(due: DueNote, action: HaloAction | undefined): Promise<void> {
    const { incident, firingIds, closing, ticketId, outcomeId } = due;
    await insertIncidentNote(this.db, {
      accountId: incident.accountId,
      incidentId: incident.id,
      kind: closing ? 'closing' : 'firing',
      status: 'sent',
      alertIds: firingIds,
      halopsaTicketId: ticketId,
      halopsaActionId: action?.id ?? null,
      outcomeId,
      error: null,
    });
    await this.db.query(
      `UPDATE alerts SET ticket_status = 'noted', halopsa_ticket_id = $2, ticket_error = NULL
        WHERE id = ANY($1::uuid[])`,
      [firingIds, ticketId],
    );
    await markNoteSent(this.db, incident.id);
    await recordAudit(this.db, {
      accountId: incident.accountId,
      actor: SYSTEM_ACTOR,
      action: 'halopsa.action.created',
      customerId: incident.customerId,
      targetType: 'halopsa_ticket',
      targetId: ticketId,
      after: {
        endpoint: 'POST /api/Actions',
        incidentId: incident.id,
        kind: closing ? 'closing' : 'firing',
        alertIds: firingIds,
        outcomeId,
        actionId: action?.id ?? null,
        result: 'succeeded',
      },
    });
    await this.connections.recordNoteOutcome(
      incident.accountId,
      outcomeId,
      'verified',
      `A note was added to ticket ${ticketId}.`,
    );
    this.logger.info(
      { incidentId: incident.id, ticketId, closing, firings: firingIds.length },
      'note added to incident ticket in HaloPSA',
    );
  }

  /** Raise a wait for a request slot as it is; record anything else as a failed attempt. */
  private async noteAttemptFailed(due: DueNote, error: unknown): Promise<void> {
    const deferral = deferralOf(error);
    if (deferral) throw deferral;
    await this.noteFailed(due.incident, due, error, due.job);
  }

  private async noteFailed(
    incident: Incident,
    note: { firingIds: string[]; closing: boolean; ticketId: number; outcomeId: number },
    error: unknown,
    job: NoteJob,
  ): Promise<void> {
    const permanent = !(error instanceof HaloPsaError) || !error.retryable;
    const lastAttempt = job.retryCount >= TICKET_NOTE_QUEUE_DEFINITION.retryLimit;
    const forbidden =
      error instanceof HaloPsaError &&
      error.code === 'validation_failed' &&
      OUTCOME_FORBIDDEN.test(error.detail ?? '');
    if (!forbidden && error instanceof HaloPsaError && CONNECTION_CODES.includes(error.code)) {
      // The firings stay unnoted, so the note goes out after the next passing check. Each
      // shows why it waits, as a ticket that waits for the connection does.
      await this.db.query('UPDATE alerts SET ticket_error = $2 WHERE id = ANY($1::uuid[])', [
        note.firingIds,
        `Waiting for the HaloPSA connection to be fixed: ${error.message}`,
      ]);
      this.logger.warn(
        { incidentId: incident.id, ticketId: note.ticketId, err: error },
        'note waits until the HaloPSA connection is fixed',
      );
      throw await this.connections.waitForAttention(incident.accountId, error.message);
    }
    const message = forbidden
      ? `HaloPSA does not let the API agent add actions with outcome ${note.outcomeId} ("You do not have access to this Action at the moment"). In HaloPSA, allow the agent to use that outcome, or set DMARCDESK_HALOPSA_NOTE_OUTCOME_ID to an outcome it may use.`
      : error instanceof Error
        ? error.message
        : String(error);
    this.logger.warn(
      { incidentId: incident.id, ticketId: note.ticketId, err: error, permanent },
      'adding a note to the incident ticket failed',
    );
    if (permanent || lastAttempt) {
      await insertIncidentNote(this.db, {
        accountId: incident.accountId,
        incidentId: incident.id,
        kind: note.closing ? 'closing' : 'firing',
        status: 'failed',
        alertIds: note.firingIds,
        halopsaTicketId: note.ticketId,
        halopsaActionId: null,
        outcomeId: note.outcomeId,
        error: message,
      });
      await this.db.query(
        `UPDATE alerts SET ticket_status = 'failed', ticket_error = $2 WHERE id = ANY($1::uuid[])`,
        [note.firingIds, message],
      );
      await recordAudit(this.db, {
        accountId: incident.accountId,
        actor: SYSTEM_ACTOR,
        action: 'halopsa.action.failed',
        customerId: incident.customerId,
        targetType: 'halopsa_ticket',
        targetId: note.ticketId,
        after: {
          endpoint: 'POST /api/Actions',
          incidentId: incident.id,
          result: 'failed',
          error: message,
        },
      });
    }
    if (forbidden) {
      // Only notes need this outcome, so tickets and licences still go out. The summary shows
      // the message until a connection check or a later note succeeds.
      await this.connections.recordNoteOutcome(
        incident.accountId,
        note.outcomeId,
        'forbidden',
        message,
      );
    }
    if (!permanent) throw error;
  }
}

/** Check whether a POST of the alert's ticket was sent before, so HaloPSA may have the ticket. */
async function ticketWriteStarted(db: Queryable, alertId: string): Promise<boolean> {
  const [row] = await db.query<{ started: boolean }>(
    'SELECT ticket_write_started_at IS NOT NULL AS started FROM alerts WHERE id = $1',
    [alertId],
  );
  return row?.started ?? true;
}

/**
 * Record that the tickets of these alerts are about to be sent. It is committed before the
 * POST, so that an attempt after a lost response or a killed process looks the ticket up.
 */
async function markTicketWritesStarted(db: Queryable, alertIds: string[]): Promise<void> {
  await db.query(
    `UPDATE alerts SET ticket_write_started_at = COALESCE(ticket_write_started_at, clock_timestamp())
      WHERE id = ANY($1::uuid[])`,
    [alertIds],
  );
}

/**
 * Record that these notes are about to be sent. It is committed before the POST, so that an
 * attempt after a lost response or a killed process looks for the note on its ticket.
 */
async function markNoteWritesStarted(
  db: Queryable,
  notes: Pick<DueNote, 'incident' | 'sequence'>[],
): Promise<void> {
  await db.query(
    `UPDATE alert_incidents i SET note_write_sequence = n.sequence
       FROM unnest($1::uuid[], $2::int[]) AS n (id, sequence)
      WHERE i.id = n.id`,
    [notes.map((note) => note.incident.id), notes.map((note) => note.sequence)],
  );
}

/** Return a function that records each job's outcome of a batch: null, or the error raised. */
function settleInto(
  outcomes: Map<string, unknown>,
): (job: { id: string }, work: () => Promise<void>) => Promise<void> {
  return async (job, work) => {
    try {
      await work();
      outcomes.set(job.id, null);
    } catch (error) {
      outcomes.set(job.id, error);
    }
  };
}

async function holdFirings(db: Queryable, alertIds: string[]): Promise<void> {
  await db.query(
    `UPDATE alerts SET ticket_status = 'held' WHERE id = ANY($1::uuid[]) AND ticket_status = 'pending'`,
    [alertIds],
  );
}
