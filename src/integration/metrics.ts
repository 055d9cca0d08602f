import { createHash, timingSafeEqual } from 'node:crypto';

import type { FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';

import type { HaloCallRecord } from '../halopsa/index.ts';
import type { JobOutcome, JobQueue } from '../jobs/queue.ts';
import type { RateBudget } from './rate-budget.ts';

/**
 * The service's Prometheus metrics. Counters are per process, and Prometheus adds them up across
 * processes. Queue depths and rate budgets are read from the database at each scrape, so every
 * process reports the same values for them.
 */
export class IntegrationMetrics {
  readonly registry = new Registry();
  private readonly jobRuns: Counter<'queue' | 'outcome'>;
  private readonly haloCalls: Counter<'purpose' | 'status'>;

  constructor(sources: { queue: JobQueue; budget: RateBudget }) {
    this.jobRuns = new Counter({
      name: 'dmarcdesk_job_runs_total',
      help: 'Job runs by queue and outcome: completed, deferred (sent again to start later), retried (failed, pg-boss retries it) or failed (no retry left).',
      labelNames: ['queue', 'outcome'],
      registers: [this.registry],
    });
    this.haloCalls = new Counter({
      name: 'dmarcdesk_halopsa_calls_total',
      help: 'HTTP calls to HaloPSA by purpose (token or api) and HTTP status, or the error code when no response arrived.',
      labelNames: ['purpose', 'status'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'dmarcdesk_queue_jobs',
      help: 'Unfinished jobs per queue and pg-boss state (created includes deferred jobs).',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const depth of await sources.queue.depths()) {
          this.set({ queue: depth.queue, state: depth.state }, depth.count);
        }
      },
    });
    const paused = new Gauge({
      name: 'dmarcdesk_halopsa_rate_budget_paused',
      help: '1 while calls to the HaloPSA instance are paused after a 429, else 0.',
      labelNames: ['instance'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'dmarcdesk_halopsa_rate_budget_remaining',
      help: `Request slots left in the current rolling window of each HaloPSA instance, out of ${sources.budget.settings.limit} per ${sources.budget.settings.windowSeconds} s.`,
      labelNames: ['instance'],
      registers: [this.registry],
      async collect() {
        this.reset();
        paused.reset();
        // Only instances of stored connections: a URL tried in a failed check is not one.
        for (const state of await sources.budget.states({ connectedOnly: true })) {
          this.set({ instance: state.instanceKey }, state.remaining);
          paused.set({ instance: state.instanceKey }, state.pausedUntil === null ? 0 : 1);
        }
      },
    });
  }

  countJob(queue: string, outcome: JobOutcome): void {
    this.jobRuns.inc({ queue, outcome });
  }

  countCall(call: HaloCallRecord): void {
    this.haloCalls.inc({
      purpose: call.purpose,
      status: call.status === null ? (call.errorCode ?? 'no_response') : String(call.status),
    });
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * GET /metrics in the Prometheus text format, for a caller that sends `Authorization: Bearer
 * <token>`. Register it only when a token is configured, so that the route is absent (404)
 * otherwise.
 */
export function metricsRoute(metrics: IntegrationMetrics, token: string): FastifyPluginAsync {
  const expected = digest(token);
  return async (app) => {
    app.get('/metrics', { config: { access: 'public' } }, async (request, reply) => {
      const header = request.headers.authorization ?? '';
      const match = /^Bearer (.+)$/i.exec(header);
      // Comparing digests keeps the comparison constant-time whatever the lengths.
      if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({
            error: {
              code: 'unauthenticated',
              message:
                'GET /metrics needs "Authorization: Bearer <token>" with the token set in DMARCDESK_METRICS_TOKEN.',
            },
          });
      }
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    });
  };
}
