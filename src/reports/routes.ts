import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { accountOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { parseInput } from '../errors/validation.ts';
import type { ReportIngestService } from './ingest.ts';
import { ReportInputError } from './report-input-error.ts';
import {
  countUnknownDomainReports,
  getAggregateReport,
  listAggregateReports,
} from './report-store.ts';

const listQuery = z.strictObject({
  domainId: z.uuid({ error: 'must be a UUID' }).optional(),
  unknownDomains: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });

export interface ReportRoutesOptions {
  db: Database;
  ingest: ReportIngestService;
}

/** Aggregate report upload and reading. */
export function reportRoutes({ db, ingest }: ReportRoutesOptions): FastifyPluginAsync {
  return async (app) => {
    // Reports are recognised by their content, so every Content-Type is read as raw bytes here.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) =>
      done(null, body),
    );

    app.post('/reports', async (request, reply) => {
      const body = request.body;
      if (!Buffer.isBuffer(body) || body.length === 0) {
        throw new AppError(
          'validation_failed',
          'The upload is empty; send the report file as the request body, for example with curl --data-binary @report.xml.gz.',
        );
      }

      let result;
      try {
        result = await ingest.ingest(accountOf(request), body, 'upload');
      } catch (error) {
        if (error instanceof ReportInputError) {
          throw new AppError('report_rejected', error.message, {
            details: { reason: error.code },
            cause: error,
          });
        }
        throw error;
      }

      const onlyDocument = result.documents.length === 1 ? result.documents[0] : undefined;
      if (onlyDocument?.status === 'rejected') {
        throw new AppError('report_rejected', onlyDocument.reason, {
          details: { reason: onlyDocument.code, documents: result.documents },
        });
      }
      return reply.code(result.stored > 0 ? 201 : 200).send(result);
    });

    app.get('/reports', async (request) => {
      const query = parseInput(listQuery, request.query, 'query string');
      const reports = await listAggregateReports(db, accountOf(request), {
        domainId: query.domainId,
        unknownDomainsOnly: query.unknownDomains === 'true',
        ...(query.limit ? { limit: query.limit } : {}),
      });
      return { reports };
    });

    app.get('/reports/unknown-domains', async (request) => ({
      domains: await countUnknownDomainReports(db, accountOf(request)),
    }));

    app.get('/reports/:id', async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getAggregateReport(db, accountOf(request), id);
    });
  };
}
