import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { accountOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { parseInput } from '../errors/validation.ts';
import { ALERT_KINDS, getAlert, listAlerts } from './alert-store.ts';
import {
  deleteThresholdRule,
  getThresholdRule,
  listThresholdRules,
  setThresholdRule,
} from './threshold-rules.ts';

const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });
const alertQuery = z.strictObject({
  customerId: z.uuid({ error: 'must be a UUID' }).optional(),
  kind: z.enum(ALERT_KINDS, { error: `must be one of ${ALERT_KINDS.join(', ')}` }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const thresholdBody = z.strictObject({
  maxFailedMessages: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(0, { error: 'must be 0 or more' })
    .max(1_000_000_000, { error: 'must be at most 1,000,000,000' }),
});

/** Alerts, and the per-domain threshold rules that raise them. */
export function alertRoutes({ db }: { db: Database }): FastifyPluginAsync {
  return async (app) => {
    app.get('/alerts', { config: { access: 'alerts.read' } }, async (request) => {
      const query = parseInput(alertQuery, request.query, 'query string');
      return { alerts: await listAlerts(db, accountOf(request), query) };
    });

    app.get('/alerts/:id', { config: { access: 'alerts.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getAlert(db, accountOf(request), id);
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
      return setThresholdRule(db, accountOf(request), id, input.maxFailedMessages);
    });

    app.delete('/domains/:id/threshold', { config: { access: 'alerts.manage' } }, async (request, reply) => {
      const { id } = parseInput(idParams, request.params, 'path');
      await deleteThresholdRule(db, accountOf(request), id);
      return reply.code(204).send();
    });
  };
}
