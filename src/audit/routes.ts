import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { accountOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { parseInput } from '../errors/validation.ts';
import { listAudit } from './audit-log.ts';

const auditQuery = z.strictObject({
  customerId: z.uuid({ error: 'must be a UUID' }).optional(),
  action: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  beforeId: z.coerce.number().int().positive().optional(),
});

/** Serve the append-only audit log, newest first, filtered by customer and action. */
export function auditRoutes({ db }: { db: Database }): FastifyPluginAsync {
  return async (app) => {
    app.get('/audit-log', { config: { access: 'audit.read' } }, async (request) => {
      const query = parseInput(auditQuery, request.query, 'query string');
      return { entries: await listAudit(db, accountOf(request), query) };
    });
  };
}
