// When domains are checked. Each worker process sweeps every few seconds: it adds a schedule
// row for each domain it has not seen, claims the rows that are due and queues one check job
// per claimed domain, all in one transaction. Claiming takes row locks with SKIP LOCKED and
// the jobs carry a singleton key per domain, so processes that sweep at the same moment never
// check one domain twice at once.
import type { Logger } from 'pino';

import type { Database } from '../db/database.ts';
import type { JobQueue, QueueDefinition } from '../jobs/queue.ts';
import { getDomain } from '../platform/domains.ts';
import type { CheckTrigger } from './observation-store.ts';

export const DNS_CHECK_QUEUE = 'dns-check';

export interface DnsCheckJob {
  accountId: string;
  domainId: string;
  trigger: CheckTrigger;
}

/** The daily job that deletes old observations of unchanged records. */
export const DNS_RETENTION_QUEUE = 'dns-history-retention';

/** The DNS monitor's queues. */
export const DNS_QUEUES: QueueDefinition[] = [
  {
    name: DNS_RETENTION_QUEUE,
    policy: 'singleton',
    retryLimit: 3,
    retryDelaySeconds: 60,
    retryDelayMaxSeconds: 600,
    expireInSeconds: 600,
  },
  {
    name: DNS_CHECK_QUEUE,
    // One queued and one running check per domain (the singleton key): a "check now" during a
    // running check runs after it, and a burst of requests collapses into one queued check.
    policy: 'stately',
    retryLimit: 2,
    retryDelaySeconds: 30,
    retryDelayMaxSeconds: 300,
    // An SPF walk over many includes with slow servers can take a minute or two.
    expireInSeconds: 600,
  },
];

/** How many check workers each process runs; a check spends most of its time waiting on DNS. */
export const DNS_CHECK_WORKERS = 4;

/**
 * Spread of the first checks of newly seen domains, in seconds, so that importing hundreds of
 * domains does not send all their lookups in the same minute.
 */
export const FIRST_CHECK_SPREAD_SECONDS = 600;

/**
 * How far a claimed domain's next check moves while its job is queued. The job sets the real
 * next time when it finishes. If it never does because its retries ran out, the domain is due
 * again after this lease instead of being lost.
 */
const CLAIM_LEASE_SECONDS = 30 * 60;

/** Most domains queued by one sweep, so that one sweep stays a short transaction. */
const MAX_CLAIMED_PER_SWEEP = 500;

export function dnsCheckSingletonKey(domainId: string): string {
  return `dns-check/${domainId}`;
}

export interface DnsCheckSchedulerOptions {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** Seconds between sweeps. */
  sweepSeconds: number;
  /** Clock for due times (default: the system clock). */
  now?: () => Date;
}

/** Queues DNS checks: the due domains on each sweep, and single domains on request. */
export class DnsCheckScheduler {
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly options: DnsCheckSchedulerOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Queue a check of one domain now. Returns false when a check of it is already queued,
   * whose result will show the same. Throws not_found for a domain of another account.
   */
  async requestCheck(accountId: string, domainId: string): Promise<boolean> {
    await getDomain(this.options.db, accountId, domainId);
    const id = await this.options.queue.enqueue(
      DNS_CHECK_QUEUE,
      { accountId, domainId, trigger: 'manual' } satisfies DnsCheckJob,
      { singletonKey: dnsCheckSingletonKey(domainId) },
    );
    return id !== null;
  }

  /**
   * Add schedule rows for domains seen for the first time, then claim the due domains that are
   * not paused and queue a check of each. Returns the ids of the domains queued.
   */
  async sweep(): Promise<string[]> {
    const now = this.now().toISOString();
    return this.options.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO dns_check_schedule (domain_id, account_id, next_check_at)
         SELECT d.id, d.account_id, $1::timestamptz + make_interval(secs => $2::int * random())
           FROM domains d
          WHERE d.status <> 'paused'
            AND NOT EXISTS (SELECT 1 FROM dns_check_schedule s WHERE s.domain_id = d.id)
         ON CONFLICT (domain_id) DO NOTHING`,
        [now, FIRST_CHECK_SPREAD_SECONDS],
      );
      const due = await tx.query<{
        domain_id: string;
        account_id: string;
        next_check_reason: 'scheduled' | 'confirmation';
      }>(
        `SELECT s.domain_id, s.account_id, s.next_check_reason
           FROM dns_check_schedule s JOIN domains d ON d.id = s.domain_id
          WHERE s.next_check_at <= $1::timestamptz AND d.status <> 'paused'
          ORDER BY s.next_check_at
          LIMIT $2
            FOR UPDATE OF s SKIP LOCKED`,
        [now, MAX_CLAIMED_PER_SWEEP],
      );
      if (due.length === 0) return [];
      await tx.query(
        `UPDATE dns_check_schedule
            SET next_check_at = $1::timestamptz + make_interval(secs => $2::int)
          WHERE domain_id = ANY($3::uuid[])`,
        [now, CLAIM_LEASE_SECONDS, due.map((row) => row.domain_id)],
      );
      for (const row of due) {
        await this.options.queue.enqueue(
          DNS_CHECK_QUEUE,
          {
            accountId: row.account_id,
            domainId: row.domain_id,
            trigger: row.next_check_reason,
          } satisfies DnsCheckJob,
          { tx, singletonKey: dnsCheckSingletonKey(row.domain_id) },
        );
      }
      return due.map((row) => row.domain_id);
    });
  }

  /** Sweep every `sweepSeconds` until stop(); the first sweep runs one period after start. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.sweep()
        .then((queued) => {
          if (queued.length > 0) {
            this.options.logger.debug({ queued: queued.length }, 'queued DNS checks');
          }
        })
        .catch((error: unknown) => {
          this.options.logger.error({ err: error }, 'DNS check sweep failed; retrying next sweep');
        })
        .finally(() => {
          this.running = null;
        });
    }, this.options.sweepSeconds * 1000);
    this.timer.unref();
  }

  /** Stop sweeping and wait for a sweep in progress to finish. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
