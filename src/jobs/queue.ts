import {
  fromPglite,
  PgBoss,
  type Job,
  type JobResult,
  type QueuePolicy,
  type WorkOptions,
} from 'pg-boss';
import type { Logger } from 'pino';
import type { Database, Transaction } from '../db/database.ts';

/** A queue and its retry policy, declared by the feature that owns the work. */
export interface QueueDefinition {
  name: string;
  /**
   * 'stately' keeps at most one queued and one running job per singleton key, which coalesces
   * bursts of the same absolute update into one or two runs.
   */
  policy: QueuePolicy;
  retryLimit: number;
  /** First retry delay in seconds; doubled with jitter on each retry. */
  retryDelaySeconds: number;
  retryDelayMaxSeconds: number;
  /** How long one run may take before pg-boss treats the worker as gone and retries. */
  expireInSeconds: number;
}

export type JobHandler<Data> = (data: Data, job: Job<Data>) => Promise<void>;

/** Runs a batch of jobs and returns, per job id, null or what that job's run threw. */
export type BatchJobHandler<Data> = (jobs: Job<Data>[]) => Promise<Map<string, unknown>>;

// A running job's worker refreshes its heartbeat every half of this, and pg-boss's supervisor
// retries a job whose heartbeat is older. So the jobs of a killed process run again after about
// this plus SUPERVISE_SECONDS, not after expireInSeconds. Each job carries it too, because
// pg-boss cannot add a heartbeat to a queue that already exists.
// NOTE: a process that cannot refresh the heartbeat for this long (a stalled event loop or
// database) loses its running job to another worker while it may still finish it.
const HEARTBEAT_SECONDS = 30;
// How often pg-boss looks for jobs whose heartbeat or expiry has passed; its default is 60.
const SUPERVISE_SECONDS = 15;

/**
 * Thrown by a handler whose job cannot run yet (no HaloPSA request slot, a connection that
 * needs attention). The queue sends the job again to start after `seconds` and completes this
 * run, so waiting never uses up the job's retries.
 */
export class JobDeferred extends Error {
  constructor(
    readonly seconds: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'JobDeferred';
  }
}

/** Outcome of one run of a job. Retried and failed runs both threw. */
export type JobOutcome = 'completed' | 'deferred' | 'retried' | 'failed';

/** Jobs of one queue that are not finished, by pg-boss state. */
export interface QueueDepth {
  queue: string;
  /** created (waiting, deferred ones included), retry or active. */
  state: string;
  count: number;
}

export interface EnqueueOptions {
  /** Enqueue inside this transaction: the job exists only if the transaction commits. */
  tx?: Transaction;
  singletonKey?: string;
  /** Higher runs first. */
  priority?: number;
  /** Hold the job back for this many seconds. */
  startAfterSeconds?: number;
}

/** The durable job queue on the service's own database, PostgreSQL or PGlite, via pg-boss. */
export class JobQueue {
  private readonly boss: PgBoss;
  private readonly definitions = new Map<string, QueueDefinition>();
  private started = false;
  private readonly outcomeListeners: ((queue: string, outcome: JobOutcome) => void)[] = [];

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
  ) {
    this.boss = db.pglite
      ? new PgBoss({
          db: fromPglite(db.pglite),
          backend: 'pglite',
          schema: 'pgboss',
          useListenNotify: true,
          superviseIntervalSeconds: SUPERVISE_SECONDS,
          monitorIntervalSeconds: SUPERVISE_SECONDS,
        })
      : new PgBoss({
          connectionString: db.connectionString!,
          schema: 'pgboss',
          max: 4,
          useListenNotify: true,
          application_name: 'dmarcdesk-jobs',
          superviseIntervalSeconds: SUPERVISE_SECONDS,
          monitorIntervalSeconds: SUPERVISE_SECONDS,
        });
    this.boss.on('error', (error) => this.logger.error({ err: error }, 'job queue error'));
    this.boss.on('warning', (warning) => this.logger.warn({ warning }, 'job queue warning'));
  }

  /** Install pg-boss's schema if needed and create every declared queue. */
  async start(definitions: QueueDefinition[]): Promise<void> {
    await this.boss.start();
    this.started = true;
    for (const definition of definitions) {
      this.definitions.set(definition.name, definition);
      await this.boss.createQueue(definition.name, {
        policy: definition.policy,
        retryLimit: definition.retryLimit,
        retryDelay: definition.retryDelaySeconds,
        retryBackoff: true,
        retryDelayMax: definition.retryDelayMaxSeconds,
        expireInSeconds: definition.expireInSeconds,
        heartbeatSeconds: HEARTBEAT_SECONDS,
        notify: true,
      });
    }
  }

  /** Calls `listener` after each run of any job, with how it ended. */
  onOutcome(listener: (queue: string, outcome: JobOutcome) => void): void {
    this.outcomeListeners.push(listener);
  }

  /** Sends a job with `data` to `name` on the cron expression `cron`, evaluated in UTC. */
  async schedule(name: string, cron: string, data: object = {}): Promise<void> {
    if (!this.definitions.has(name)) throw new Error(`Queue "${name}" was not declared at start.`);
    await this.boss.schedule(name, cron, data, { tz: 'UTC' });
  }

  async enqueue(name: string, data: object, options: EnqueueOptions = {}): Promise<string | null> {
    if (!this.definitions.has(name)) throw new Error(`Queue "${name}" was not declared at start.`);
    return this.boss.send(name, data, {
      heartbeatSeconds: HEARTBEAT_SECONDS,
      ...(options.tx ? { db: options.tx.jobSql } : {}),
      ...(options.singletonKey ? { singletonKey: options.singletonKey } : {}),
      ...(options.priority !== undefined ? { priority: options.priority } : {}),
      ...(options.startAfterSeconds !== undefined ? { startAfter: options.startAfterSeconds } : {}),
    });
  }

  /**
   * Run `handler` for each job of `name`. A handler that throws fails that attempt; pg-boss
   * retries it with backoff until the queue's retry limit. `concurrency` workers of this
   * process take jobs of the queue at once (1 unless given).
   */
  async work<Data extends object>(
    name: string,
    handler: JobHandler<Data>,
    options: { pollingIntervalSeconds?: number; concurrency?: number } = {},
  ): Promise<void> {
    await this.boss.work<Data>(
      name,
      {
        batchSize: 1,
        localConcurrency: options.concurrency ?? 1,
        pollingIntervalSeconds: options.pollingIntervalSeconds ?? 1,
        // NOTIFY wakes a worker once per send, but it takes one job per fetch, so a burst of
        // jobs would otherwise wait for pg-boss's 30-second backstop poll between jobs.
        notifyPollingIntervalSeconds: options.pollingIntervalSeconds ?? 1,
      },
      async (jobs) => {
        for (const job of jobs) {
          const log = this.logger.child({
            queue: name,
            jobId: job.id,
            attempt: job.retryCount + 1,
          });
          try {
            await handler(job.data, job);
            log.debug('job completed');
            this.reportOutcome(name, 'completed');
          } catch (error) {
            if (error instanceof JobDeferred) {
              await this.deferAgain(name, job, error);
              log.info({ seconds: error.seconds, reason: error.message }, 'job deferred');
              this.reportOutcome(name, 'deferred');
              continue;
            }
            log.warn({ err: error }, 'job attempt failed');
            const retryLimit = this.definitions.get(name)?.retryLimit ?? 0;
            this.reportOutcome(name, job.retryCount < retryLimit ? 'retried' : 'failed');
            throw error;
          }
        }
      },
    );
  }

  /**
   * Runs `handler` on batches of up to `batchSize` jobs of `name`. The handler returns, per job
   * id, null for a completed job or what that job's run threw: a JobDeferred defers the job as
   * in work(), and any other error fails that job's attempt alone, which pg-boss retries with
   * backoff. A job the handler leaves out fails too. A throw from the handler fails every job.
   */
  async workBatch<Data extends object>(
    name: string,
    handler: BatchJobHandler<Data>,
    options: { batchSize: number; pollingIntervalSeconds?: number },
  ): Promise<void> {
    const retryLimit = this.definitions.get(name)?.retryLimit ?? 0;
    await this.boss.work<Data, unknown, WorkOptions & { perJobResults: true }>(
      name,
      {
        batchSize: options.batchSize,
        perJobResults: true,
        pollingIntervalSeconds: options.pollingIntervalSeconds ?? 1,
        notifyPollingIntervalSeconds: options.pollingIntervalSeconds ?? 1,
      },
      async (jobs) => {
        let outcomes: Map<string, unknown>;
        try {
          outcomes = await handler(jobs);
        } catch (error) {
          this.logger.warn({ queue: name, jobs: jobs.length, err: error }, 'job batch failed');
          for (const job of jobs) {
            this.reportOutcome(name, job.retryCount < retryLimit ? 'retried' : 'failed');
          }
          throw error;
        }

        const results: JobResult[] = [];
        for (const job of jobs) {
          const log = this.logger.child({
            queue: name,
            jobId: job.id,
            attempt: job.retryCount + 1,
          });
          const error = outcomes.has(job.id)
            ? outcomes.get(job.id)
            : new Error(
                `The batch handler of queue "${name}" returned no outcome for job ${job.id}.`,
              );
          if (error === null || error === undefined) {
            log.debug('job completed');
            this.reportOutcome(name, 'completed');
            results.push({ id: job.id, status: 'completed' });
            continue;
          }
          if (error instanceof JobDeferred) {
            await this.deferAgain(name, job, error);
            log.info({ seconds: error.seconds, reason: error.message }, 'job deferred');
            this.reportOutcome(name, 'deferred');
            results.push({ id: job.id, status: 'completed' });
            continue;
          }
          log.warn({ err: error }, 'job attempt failed');
          this.reportOutcome(name, job.retryCount < retryLimit ? 'retried' : 'failed');
          const message = error instanceof Error ? error.message : String(error);
          results.push({ id: job.id, status: 'failed', output: { message } });
        }
        return results;
      },
    );
  }

  /**
   * Sends the job again to start after the deferral. In a stately queue that already contains a
   * queued job of the same singleton key, pg-boss keeps that one, which runs the same work.
   */
  private async deferAgain(name: string, job: Job<object>, deferral: JobDeferred): Promise<void> {
    const [stored] = await this.db.query<{ priority: number; singleton_key: string | null }>(
      'SELECT priority, singleton_key FROM pgboss.job WHERE name = $1 AND id = $2',
      [name, job.id],
    );
    await this.boss.send(name, job.data, {
      heartbeatSeconds: HEARTBEAT_SECONDS,
      startAfter: Math.max(1, Math.ceil(deferral.seconds)),
      ...(stored ? { priority: stored.priority } : {}),
      ...(stored?.singleton_key ? { singletonKey: stored.singleton_key } : {}),
    });
  }

  private reportOutcome(name: string, outcome: JobOutcome): void {
    for (const listener of this.outcomeListeners) listener(name, outcome);
  }

  /** Counts the unfinished jobs of every queue, read live from pg-boss's job table. */
  async depths(): Promise<QueueDepth[]> {
    const rows = await this.db.query<{ name: string; state: string; count: string }>(
      `SELECT name, state::text AS state, count(*) AS count FROM pgboss.job
        WHERE state IN ('created', 'retry', 'active') GROUP BY name, state ORDER BY name, state`,
    );
    return rows.map((row) => ({ queue: row.name, state: row.state, count: Number(row.count) }));
  }

  /** Jobs of `name` not yet completed, failed or cancelled. */
  async pendingCount(name: string): Promise<number> {
    const stats = await this.boss.getQueue(name);
    return stats ? stats.queuedCount + stats.activeCount : 0;
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.boss.stop({ graceful: true, timeout: 10_000 });
  }
}
