import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { accountOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { parseInput } from '../errors/validation.ts';
import { pageInfo } from '../reports/paging.ts';
import { ALERT_KINDS, countAlerts, getAlert, listAlerts } from './alert-store.ts';
import {
  getIncident,
  INCIDENT_STATUSES,
  listIncidentNotes,
  listIncidents,
} from './incident-store.ts';
import {
  deleteGroupThresholdRule,
  deleteThresholdRule,
  getGroupThresholdRule,
  getThresholdRule,
  listThresholdRules,
  setGroupThresholdRule,
  setThresholdRule,
} from './threshold-rules.ts';

const uuid = z.uuid({ error: 'must be a UUID' });
const idParams = z.object({ id: uuid });
const kind = z.enum(ALERT_KINDS, { error: `must be one of ${ALERT_KINDS.join(', ')}` });
const limit = z.coerce.number().int().min(1).max(1000);
const alertQuery = z.strictObject({
  customerId: uuid.optional(),
  kind: kind.optional(),
  incidentId: uuid.optional(),
  limit: limit.optional(),
  offset: z.coerce.number().int().min(0).max(10_000_000).optional(),
});
const incidentQuery = z.strictObject({
  customerId: uuid.optional(),
  kind: kind.optional(),
  status: z
    .enum(INCIDENT_STATUSES, { error: `must be one of ${INCIDENT_STATUSES.join(', ')}` })
    .optional(),
  limit: limit.optional(),
});

const hours = z
  .number({ error: 'must be a number of hours' })
  .int({ error: 'must be a whole number of hours' })
  .min(1, { error: 'must be at least 1 hour' })
  .max(2160, { error: 'must be at most 2160 hours (90 days)' });
/**
 * Body of PUT /domains/:id/threshold and /groups/:id/threshold. It replaces the whole rule. A
 * body with only maxFailedMessages is a count rule over one report, as before windows existed.
 */
const thresholdBody = z.strictObject({
  maxFailedMessages: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(0, { error: 'must be 0 or more' })
    .max(1_000_000_000, { error: 'must be at most 1,000,000,000' })
    .nullable()
    .optional(),
  maxFailurePercent: z
    .number({ error: 'must be a number' })
    .min(0, { error: 'must be 0 or more' })
    .max(100, { error: 'must be at most 100' })
    .multipleOf(0.01, { error: 'must have at most two decimals' })
    .nullable()
    .optional(),
  minMessages: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(0, { error: 'must be 0 or more' })
    .max(1_000_000_000, { error: 'must be at most 1,000,000,000' })
    .optional(),
  windowHours: hours.nullable().optional(),
  clearAfterHours: hours.nullable().optional(),
});

/** Alerts, their incidents, and the domain and group threshold rules that raise them. */
export function alertRoutes({ db }: { db: Database }): FastifyPluginAsync {
  return async (app) => {
    app.get('/alerts', { config: { access: 'alerts.read' } }, async (request) => {
      const query = parseInput(alertQuery, request.query, 'query string');
      const accountId = accountOf(request);
      const filter = { ...query, limit: query.limit ?? 100, offset: query.offset ?? 0 };
      const alerts = await listAlerts(db, accountId, filter);
      const total = await countAlerts(db, accountId, filter);
      return {
        alerts,
        ...pageInfo(request.url, { total, limit: filter.limit, offset: filter.offset }),
      };
    });

    app.get('/alerts/:id', { config: { access: 'alerts.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getAlert(db, accountOf(request), id);
    });

    app.get('/incidents', { config: { access: 'alerts.read' } }, async (request) => {
      const query = parseInput(incidentQuery, request.query, 'query string');
      return { incidents: await listIncidents(db, accountOf(request), query) };
    });

    app.get('/incidents/:id', { config: { access: 'alerts.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const accountId = accountOf(request);
      const incident = await getIncident(db, accountId, id);
      return {
        incident,
        alerts: await listAlerts(db, accountId, { incidentId: id, limit: 1000 }),
        notes: await listIncidentNotes(db, accountId, id),
      };
    });

    app.get('/threshold-rules', { config: { access: 'alerts.read' } }, async (request) => ({
      rules: await listThresholdRules(db, accountOf(request)),
    }));

    app.get('/domains/:id/threshold', { config: { access: 'alerts.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return { rule: await getThresholdRule(db, accountOf(request), id) };
    });

    app.put('/domains/:id/threshold', { config: { access: 'alerts.manage' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const input = parseInput(thresholdBody, request.body);
      return setThresholdRule(db, accountOf(request), id, input);
    });

    app.delete(
      '/domains/:id/threshold',
      { config: { access: 'alerts.manage' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        await deleteThresholdRule(db, accountOf(request), id);
        return reply.code(204).send();
      },
    );

    app.get('/groups/:id/threshold', { config: { access: 'alerts.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return { rule: await getGroupThresholdRule(db, accountOf(request), id) };
    });

    app.put('/groups/:id/threshold', { config: { access: 'alerts.manage' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const input = parseInput(thresholdBody, request.body);
      return setGroupThresholdRule(db, accountOf(request), id, input);
    });

    app.delete(
      '/groups/:id/threshold',
      { config: { access: 'alerts.manage' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        await deleteGroupThresholdRule(db, accountOf(request), id);
        return reply.code(204).send();
      },
    );
  };
}
