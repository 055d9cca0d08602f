import type { QueueDefinition } from '../jobs/queue.ts';

export const LICENCE_SYNC_QUEUE = 'halopsa-licence-sync';
export const TICKET_CREATE_QUEUE = 'halopsa-ticket-create';

export interface LicenceSyncJob {
  accountId: string;
  customerId: string;
}

export interface TicketCreateJob {
  accountId: string;
  alertId: string;
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
];

export const TICKET_CREATE_RETRY_LIMIT = INTEGRATION_QUEUES[1]!.retryLimit;
