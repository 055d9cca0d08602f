import type { QueueDefinition } from '../jobs/queue.ts';

export const LICENCE_SYNC_QUEUE = 'halopsa-licence-sync';
export const TICKET_CREATE_QUEUE = 'halopsa-ticket-create';
export const LICENCE_RELEASE_QUEUE = 'halopsa-licence-release';

/**
 * Licence sync jobs one worker takes at a time. Each account's jobs in a batch cost one paged
 * list of licences, one POST of the changed counts and one of the new licences, so a Submit of
 * many customers takes a few requests instead of two per customer.
 */
export const LICENCE_SYNC_BATCH_SIZE = 50;

/**
 * Ticket jobs one worker takes at a time. The tickets of one account in a batch go to HaloPSA
 * in one POST; an alert is looked up by its id only when an earlier attempt sent its ticket.
 */
export const TICKET_CREATE_BATCH_SIZE = 20;

/** Note jobs one worker takes at a time; the notes of one account go out in one POST. */
export const TICKET_NOTE_BATCH_SIZE = 20;

export interface LicenceSyncJob {
  accountId: string;
  customerId: string;
}

/** Set a licence that no mapping uses any more to 0, so that HaloPSA stops billing it. */
export interface LicenceReleaseJob {
  accountId: string;
  customerId: string;
  licenceId: number;
}

export interface TicketCreateJob {
  accountId: string;
  alertId: string;
  /** How many times an unknown write outcome already sent this job to wait and look again. */
  settleRetries?: number;
  /** The open problem this job was queued to test; it does not hold the ticket back. */
  recheckProblemId?: string;
}

/** The integration's queues. Retries back off from the first delay, doubling with jitter. */
export const INTEGRATION_QUEUES: QueueDefinition[] = [
  {
    name: LICENCE_SYNC_QUEUE,
    // Counts are absolute, so one queued run per customer covers any burst of domain changes.
    policy: 'stately',
    retryLimit: 8,
    retryDelaySeconds: 5,
    retryDelayMaxSeconds: 600,
    expireInSeconds: 300,
  },
  {
    name: TICKET_CREATE_QUEUE,
    policy: 'standard',
    retryLimit: 10,
    retryDelaySeconds: 5,
    retryDelayMaxSeconds: 900,
    expireInSeconds: 300,
  },
  {
    name: LICENCE_RELEASE_QUEUE,
    policy: 'standard',
    retryLimit: 8,
    retryDelaySeconds: 5,
    retryDelayMaxSeconds: 600,
    expireInSeconds: 300,
  },
];

export const TICKET_CREATE_RETRY_LIMIT = INTEGRATION_QUEUES.find(
  (queue) => queue.name === TICKET_CREATE_QUEUE,
)!.retryLimit;
