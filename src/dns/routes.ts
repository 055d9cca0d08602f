import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';

import { recordAudit } from '../audit/audit-log.ts';
import { accountOf, actorOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { parseInput } from '../errors/validation.ts';
import { getDomain } from '../platform/domains.ts';
import type { DnsCheckScheduler } from './monitor-schedule.ts';
import {
  getMonitorSettings,
  listDkimSelectors,
  MAX_CHECK_INTERVAL_MINUTES,
  MAX_DKIM_SELECTORS,
  MIN_CHECK_INTERVAL_MINUTES,
  setCheckInterval,
  setDkimSelectors,
} from './monitor-settings.ts';
import { getDomainDnsView } from './monitor-view.ts';
import { listObservations } from './observation-store.ts';

const RECORD_KINDS = ['dmarc', 'spf', 'dkim'] as const;

const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });
const historyQuery = z.strictObject({
  kind: z.enum(RECORD_KINDS, { error: `must be one of ${RECORD_KINDS.join(', ')}` }).optional(),
  selector: z.string().max(200).optional(),
  before: z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 time such as 2026-01-31T12:00:00Z' })
    .transform((value) => new Date(value))
    .optional(),
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(500, { error: 'must be at most 500' })
    .optional(),
});
const selectorsBody = z.strictObject({
  selectors: z
    .array(z.string({ error: 'must be a string' }).max(200), {
      error: 'must be a list of selectors',
    })
    .max(MAX_DKIM_SELECTORS, { error: `must list at most ${MAX_DKIM_SELECTORS} selectors` }),
});
const settingsBody = z.strictObject({
  checkIntervalMinutes: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(MIN_CHECK_INTERVAL_MINUTES, { error: `must be at least ${MIN_CHECK_INTERVAL_MINUTES}` })
    .max(MAX_CHECK_INTERVAL_MINUTES, { error: `must be at most ${MAX_CHECK_INTERVAL_MINUTES}` }),
});

export interface DnsRoutesOptions {
  db: Database;
  scheduler: DnsCheckScheduler;
  /** Clock for rescheduling after an interval change (default: the system clock). */
  now?: () => Date;
}

/** DNS monitoring: each domain's record state and history, its DKIM selectors, checks on request, the account's interval. */
export function dnsRoutes({
  db,
  scheduler,
  now = () => new Date(),
}: DnsRoutesOptions): FastifyPluginAsync {
  return async (app) => {
    app.get('/domains/:id/dns', { config: { access: 'customers.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getDomainDnsView(db, accountOf(request), id);
    });

    app.get(
      '/domains/:id/dns/history',
      { config: { access: 'customers.read' } },
      async (request) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const query = parseInput(historyQuery, request.query, 'query string');
        const accountId = accountOf(request);
        await getDomain(db, accountId, id);
        return { observations: await listObservations(db, accountId, id, query) };
      },
    );

    app.put(
      '/domains/:id/dns/selectors',
      { config: { access: 'customers.write' } },
      async (request) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const input = parseInput(selectorsBody, request.body);
        const accountId = accountOf(request);
        return db.transaction(async (tx) => {
          const domain = await getDomain(tx, accountId, id);
          const before = await listDkimSelectors(tx, accountId, id);
          const selectors = await setDkimSelectors(tx, accountId, id, input.selectors);
          await recordAudit(tx, {
            accountId,
            actor: actorOf(request),
            action: 'dns.selectors.updated',
            customerId: domain.customerId,
            targetType: 'domain',
            targetId: id,
            before: { selectors: before },
            after: { selectors },
          });
          return { selectors };
        });
      },
    );

    app.post(
      '/domains/:id/dns/check',
      { config: { access: 'customers.write' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const queued = await scheduler.requestCheck(accountOf(request), id);
        return reply.code(202).send({
          queued,
          message: queued
            ? 'A check of the domain is queued; its result appears in the DNS state and history.'
            : 'A check of the domain is already queued; its result appears in the DNS state and history.',
        });
      },
    );

    app.get('/dns/settings', { config: { access: 'account.read' } }, async (request) =>
      getMonitorSettings(db, accountOf(request)),
    );

    app.put('/dns/settings', { config: { access: 'account.manage' } }, async (request) => {
      const input = parseInput(settingsBody, request.body);
      const accountId = accountOf(request);
      return db.transaction(async (tx) => {
        const before = await getMonitorSettings(tx, accountId);
        const after = await setCheckInterval(tx, accountId, input.checkIntervalMinutes, now());
        await recordAudit(tx, {
          accountId,
          actor: actorOf(request),
          action: 'dns.settings.updated',
          targetType: 'account',
          targetId: accountId,
          before,
          after,
        });
        return after;
      });
    });
  };
}
