import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from 'pino';

import type { Database } from '../db/database.ts';
import { HaloPsaError, isHaloPsaError } from '../halopsa/index.ts';
import { JobDeferred } from '../jobs/queue.ts';

/**
 * Priority of a HaloPSA call, which decides who may spend the last slots of a window. Urgent
 * calls (tickets and notes) may take any slot. Standard calls (licence counts, the wizard) leave
 * `standardReserve` slots, and background calls (resyncs, reconciliation) `backgroundReserve`.
 */
export type CallPriority = 'urgent' | 'standard' | 'background';

/**
 * A call that dmarcdesk itself held back, without sending it, because the instance's budget had
 * no slot or was paused after a 429. Its code is rate_limited like HaloPSA's own 429, so that
 * job handlers defer it the same way, but an API route returns it as 503 with Retry-After.
 */
export class RateBudgetRefusal extends HaloPsaError {
  /** When a slot may be free again. */
  readonly retryAt: Date;

  constructor(reason: string, retryAfterSeconds: number, now = new Date()) {
    const retryAt = new Date(now.getTime() + retryAfterSeconds * 1000);
    const when = `Try again in ${retryAfterSeconds} seconds, after ${retryAt.toISOString()}.`;
    super('rate_limited', `${reason} ${when}`, { retryAfterSeconds });
    this.retryAt = retryAt;
  }
}

export interface RateBudgetSettings {
  /** Grants per rolling window and instance; below HaloPSA's hosted limit of 300 per 300 s. */
  limit: number;
  windowSeconds: number;
  /** Slots that standard calls leave free for urgent ones. */
  standardReserve: number;
  /** Slots that background calls leave free for standard and urgent ones. */
  backgroundReserve: number;
  /** Shortest pause after a 429 without Retry-After, in seconds. */
  minPauseSeconds: number;
  /** Maximum time one call waits for a slot before it gives up or its job is deferred, in ms. */
  maxWaitMs: number;
}

export const DEFAULT_RATE_BUDGET: RateBudgetSettings = {
  limit: 270,
  windowSeconds: 300,
  standardReserve: 20,
  backgroundReserve: 60,
  minPauseSeconds: 60,
  maxWaitMs: 10_000,
};

/** Context of HaloPSA calls (priority, job, customer), kept for the calls in `runWithCallContext`. */
export interface HaloCallContext {
  priority: CallPriority;
  /** The pg-boss queue of the job, or null outside jobs. */
  jobKind: string | null;
  customerId: string | null;
}

const callContext = new AsyncLocalStorage<HaloCallContext>();

/** Runs `work` so that every HaloPSA call inside it is counted with `context`. */
export function runWithCallContext<T>(
  context: HaloCallContext,
  work: () => Promise<T>,
): Promise<T> {
  return callContext.run(context, work);
}

/**
 * Returns the context of the running call. A call outside any context is standard, not a job.
 * NOTE: so the wizard's Resync (a reload of customers and items) counts as standard, not as
 * background like other resyncs, because a person waits for it.
 */
export function currentCallContext(): HaloCallContext {
  return callContext.getStore() ?? { priority: 'standard', jobKind: null, customerId: null };
}

/** The outcome of one attempt to take a slot. */
export type GrantDecision =
  | { granted: true; remaining: number }
  | { granted: false; waitMs: number; reason: 'paused' | 'exhausted' };

/** The state of one instance's budget, for metrics and the summary. */
export interface BudgetState {
  instanceKey: string;
  /** Slots left in the current window, for urgent calls. */
  remaining: number;
  pausedUntil: Date | null;
}

/**
 * The request budget of each HaloPSA instance, stored in the database so that every process on
 * it shares one count. A slot is taken with the instance row locked (SELECT ... FOR UPDATE), so
 * the count read and the grant written are one step for all processes. Times are the
 * database's clock_timestamp(), so the processes' own clocks do not matter.
 */
export class RateBudget {
  constructor(
    private readonly db: Database,
    readonly settings: RateBudgetSettings,
    private readonly logger?: Logger,
  ) {
    const { limit, standardReserve, backgroundReserve } = settings;
    if (!(
      standardReserve >= 0 &&
      backgroundReserve >= standardReserve &&
      backgroundReserve < limit
    )) {
      throw new RangeError(
        `The HaloPSA rate budget reserves must satisfy 0 <= standard (${standardReserve}) <= background (${backgroundReserve}) < limit (${limit}).`,
      );
    }
  }

  /** Takes one slot now, or returns how long to wait before one may be free. */
  async tryTake(instanceKey: string, priority: CallPriority): Promise<GrantDecision> {
    const reserve = this.reserveOf(priority);
    return this.db.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO halopsa_rate_instances (instance_key) VALUES ($1) ON CONFLICT DO NOTHING',
        [instanceKey],
      );
      const [instance] = await tx.query<{ paused_ms: number | null; now_ms: number }>(
        `SELECT extract(epoch FROM paused_until) * 1000 AS paused_ms,
                extract(epoch FROM clock_timestamp()) * 1000 AS now_ms
           FROM halopsa_rate_instances WHERE instance_key = $1 FOR UPDATE`,
        [instanceKey],
      );
      const nowMs = Number(instance!.now_ms);
      const pausedMs = instance!.paused_ms === null ? null : Number(instance!.paused_ms);
      if (pausedMs !== null && pausedMs > nowMs) {
        return { granted: false, waitMs: Math.ceil(pausedMs - nowMs), reason: 'paused' } as const;
      }

      await tx.query(
        `DELETE FROM halopsa_rate_grants
          WHERE instance_key = $1 AND granted_at <= clock_timestamp() - make_interval(secs => $2)`,
        [instanceKey, this.settings.windowSeconds],
      );
      const grants = await tx.query<{ at_ms: number }>(
        `SELECT extract(epoch FROM granted_at) * 1000 AS at_ms FROM halopsa_rate_grants
          WHERE instance_key = $1 ORDER BY granted_at`,
        [instanceKey],
      );
      const usable = this.settings.limit - reserve;
      if (grants.length >= usable) {
        // The slot frees up when enough of the oldest grants have left the window.
        const freeing = grants[grants.length - usable];
        const waitMs = Number(freeing!.at_ms) + this.settings.windowSeconds * 1000 - nowMs;
        return {
          granted: false,
          waitMs: Math.max(1, Math.ceil(waitMs)),
          reason: 'exhausted',
        } as const;
      }
      await tx.query(
        `INSERT INTO halopsa_rate_grants (instance_key, granted_at, priority)
         VALUES ($1, clock_timestamp(), $2)`,
        [instanceKey, priority],
      );
      return { granted: true, remaining: this.settings.limit - grants.length - 1 } as const;
    });
  }

  /**
   * Takes one slot, waiting up to `maxWaitMs` in total.
   *
   * @throws JobDeferred inside a job, so that the job runs again once a slot may be free.
   * @throws RateBudgetRefusal outside a job, with the seconds to wait.
   */
  async acquire(instanceKey: string, context: HaloCallContext): Promise<void> {
    let waitedMs = 0;
    for (;;) {
      const decision = await this.tryTake(instanceKey, context.priority);
      if (decision.granted) return;
      if (waitedMs + decision.waitMs <= this.settings.maxWaitMs) {
        await sleep(decision.waitMs);
        waitedMs += decision.waitMs;
        continue;
      }
      const seconds = Math.max(1, Math.ceil(decision.waitMs / 1000));
      this.logger?.info(
        { instance: instanceKey, priority: context.priority, reason: decision.reason, seconds },
        'HaloPSA rate budget has no slot; deferring the call',
      );
      const why =
        decision.reason === 'paused'
          ? 'HaloPSA answered 429 (too many requests) and dmarcdesk paused its calls there'
          : `its budget of ${this.settings.limit} requests per ${this.settings.windowSeconds} s has no slot left for ${context.priority} calls`;
      const heldBack = `dmarcdesk is holding back its requests to HaloPSA at ${instanceKey} to stay under HaloPSA's rate limit, because ${why}.`;
      if (context.jobKind !== null) throw new JobDeferred(seconds, heldBack);
      throw new RateBudgetRefusal(heldBack, seconds);
    }
  }

  /**
   * Pauses the instance's budget after HaloPSA responded with 429: for Retry-After when HaloPSA sent
   * one, else until the oldest counted grant leaves the window, and at least `minPauseSeconds`.
   * A longer pause already set is kept.
   */
  async pause(instanceKey: string, retryAfterSeconds: number | undefined): Promise<Date> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO halopsa_rate_instances (instance_key) VALUES ($1) ON CONFLICT DO NOTHING',
        [instanceKey],
      );
      await tx.query('SELECT 1 FROM halopsa_rate_instances WHERE instance_key = $1 FOR UPDATE', [
        instanceKey,
      ]);
      const [oldest] = await tx.query<{ left_ms: number | null }>(
        `SELECT extract(epoch FROM (min(granted_at) + make_interval(secs => $2) - clock_timestamp())) * 1000 AS left_ms
           FROM halopsa_rate_grants WHERE instance_key = $1`,
        [instanceKey, this.settings.windowSeconds],
      );
      const windowLeftSeconds = oldest?.left_ms == null ? 0 : Number(oldest.left_ms) / 1000;
      const seconds = Math.max(
        this.settings.minPauseSeconds,
        retryAfterSeconds ?? windowLeftSeconds,
      );
      const [row] = await tx.query<{ paused_until: Date }>(
        `UPDATE halopsa_rate_instances
            SET paused_until = GREATEST(COALESCE(paused_until, '-infinity'),
                                        clock_timestamp() + make_interval(secs => $2))
          WHERE instance_key = $1 RETURNING paused_until`,
        [instanceKey, seconds],
      );
      this.logger?.warn(
        { instance: instanceKey, pausedUntil: row!.paused_until, retryAfterSeconds },
        'HaloPSA answered 429; pausing every call to this instance',
      );
      return row!.paused_until;
    });
  }

  /**
   * Returns the budget of every instance that has one: slots left and any pause. With
   * `connectedOnly`, only instances that a stored connection uses are returned. An instance
   * that was only tried in failed connection checks has budget rows too, because those checks
   * sent requests, and `connectedOnly` leaves it out.
   */
  async states(options: { connectedOnly?: boolean } = {}): Promise<BudgetState[]> {
    const rows = await this.db.query<{
      instance_key: string;
      used: string;
      paused_until: Date | null;
    }>(
      `SELECT i.instance_key,
              (SELECT count(*) FROM halopsa_rate_grants g
                WHERE g.instance_key = i.instance_key
                  AND g.granted_at > clock_timestamp() - make_interval(secs => $1)) AS used,
              CASE WHEN i.paused_until > clock_timestamp() THEN i.paused_until END AS paused_until
         FROM halopsa_rate_instances i
        WHERE NOT $2::boolean OR EXISTS (SELECT 1 FROM halopsa_connections c
                                          WHERE rtrim(c.base_url, '/') = i.instance_key)
        ORDER BY i.instance_key`,
      [this.settings.windowSeconds, options.connectedOnly ?? false],
    );
    return rows.map((row) => ({
      instanceKey: row.instance_key,
      remaining: Math.max(0, this.settings.limit - Number(row.used)),
      pausedUntil: row.paused_until,
    }));
  }

  private reserveOf(priority: CallPriority): number {
    if (priority === 'urgent') return 0;
    return priority === 'standard'
      ? this.settings.standardReserve
      : this.settings.backgroundReserve;
  }
}

/**
 * Turns a failure that only means "not now" into a job deferral: JobDeferred itself, and
 * HaloPSA's 429, whose pause the budget has recorded. Job handlers call it first in their catch
 * blocks, so that such a failure neither counts as an attempt nor is recorded as a failure.
 */
export function deferralOf(error: unknown): JobDeferred | null {
  if (error instanceof JobDeferred) return error;
  if (isHaloPsaError(error) && error.code === 'rate_limited') {
    // Without Retry-After, the next run reads the end of the pause from the budget.
    return new JobDeferred(Math.max(1, error.retryAfterSeconds ?? 1), error.message);
  }
  return null;
}
