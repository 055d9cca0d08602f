import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { accountOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { parseInput } from '../errors/validation.ts';
import {
  countUnknownDomainFailureReports,
  getFailureReport,
  getFailureReportMessage,
  listFailureReports,
} from './failure-report-store.ts';
import type { ReportIngestService } from './ingest.ts';
import {
  formatReceivingAddress,
  getReceivingToken,
  rotateReceivingToken,
  type ReceivingAddressFormat,
} from './receiving-addresses.ts';
import {
  getRejectedInput,
  getRejectedInputContent,
  listRejectedInputs,
  RECEIVED_VIA,
} from './rejected-input-store.ts';
import { pageInfo } from './paging.ts';
import {
  countAggregateReports,
  countUnknownDomainReports,
  getAggregateReport,
  listAggregateReports,
} from './report-store.ts';

/** Rows per page of a list route when the request gives no limit. */
const DEFAULT_PAGE_SIZE = 100;

const listQuery = z.strictObject({
  domainId: z.uuid({ error: 'must be a UUID' }).optional(),
  unknownDomains: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const reportListQuery = listQuery.extend({
  offset: z.coerce.number().int().min(0).max(10_000_000).optional(),
});
const rejectedQuery = z.strictObject({
  receivedVia: z
    .enum(RECEIVED_VIA, { error: `must be one of ${RECEIVED_VIA.join(', ')}` })
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });

export interface ReportRoutesOptions {
  db: Database;
  ingest: ReportIngestService;
  /** The form of receiving addresses, or null when no SMTP receiving domain is configured. */
  receivingAddress: ReceivingAddressFormat | null;
}

/** Report upload, aggregate and failure reports, rejected input and the receiving address. */
export function reportRoutes({
  db,
  ingest,
  receivingAddress,
}: ReportRoutesOptions): FastifyPluginAsync {
  return async (app) => {
    // Reports are recognised by their content, so every Content-Type is read as raw bytes here.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) =>
      done(null, body),
    );

    app.post('/reports', { config: { access: 'reports.upload' } }, async (request, reply) => {
      const body = request.body;
      if (isMultipartForm(request.headers['content-type'], body)) {
        throw new AppError(
          'unsupported_media_type',
          'Multipart form uploads (such as curl -F) are not accepted; send the report file ' +
            'itself as the raw request body, for example with curl --data-binary ' +
            '@report.xml.gz. Any Content-Type other than multipart/form-data is accepted, such ' +
            'as application/octet-stream, because the content is recognised by its bytes.',
        );
      }
      if (!Buffer.isBuffer(body) || body.length === 0) {
        throw new AppError(
          'validation_failed',
          'The upload is empty; send the report file as the request body, for example with curl --data-binary @report.xml.gz.',
        );
      }

      const result = await ingest.receive(accountOf(request), body, {
        via: 'upload',
        origin: 'HTTP upload',
      });
      if (result.inputRejection) {
        throw new AppError('report_rejected', result.inputRejection.reason, {
          details: {
            reason: result.inputRejection.code,
            rejectedInputId: result.inputRejection.rejectedInputId,
          },
        });
      }
      const onlyDocument = result.documents.length === 1 ? result.documents[0] : undefined;
      if (onlyDocument?.status === 'rejected') {
        throw new AppError('report_rejected', onlyDocument.reason, {
          details: {
            reason: onlyDocument.code,
            rejectedInputId: onlyDocument.rejectedInputId,
            documents: result.documents,
          },
        });
      }
      return reply.code(result.stored > 0 ? 201 : 200).send(result);
    });

    app.get('/reports', { config: { access: 'reports.read' } }, async (request) => {
      const query = parseInput(reportListQuery, request.query, 'query string');
      const accountId = accountOf(request);
      const filter = {
        domainId: query.domainId,
        unknownDomainsOnly: query.unknownDomains === 'true',
        limit: query.limit ?? DEFAULT_PAGE_SIZE,
        offset: query.offset ?? 0,
      };
      const reports = await listAggregateReports(db, accountId, filter);
      const total = await countAggregateReports(db, accountId, filter);
      return {
        reports,
        ...pageInfo(request.url, { total, limit: filter.limit, offset: filter.offset }),
      };
    });

    app.get(
      '/reports/unknown-domains',
      { config: { access: 'reports.read' } },
      async (request) => ({
        domains: await countUnknownDomainReports(db, accountOf(request)),
      }),
    );

    app.get('/reports/:id', { config: { access: 'reports.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getAggregateReport(db, accountOf(request), id);
    });

    app.get('/failure-reports', { config: { access: 'reports.read' } }, async (request) => {
      const query = parseInput(listQuery, request.query, 'query string');
      const reports = await listFailureReports(db, accountOf(request), {
        domainId: query.domainId,
        unknownDomainsOnly: query.unknownDomains === 'true',
        ...(query.limit ? { limit: query.limit } : {}),
      });
      return { reports };
    });

    app.get(
      '/failure-reports/unknown-domains',
      { config: { access: 'reports.read' } },
      async (request) => ({
        domains: await countUnknownDomainFailureReports(db, accountOf(request)),
      }),
    );

    app.get('/failure-reports/:id', { config: { access: 'reports.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getFailureReport(db, accountOf(request), id);
    });

    app.get(
      '/failure-reports/:id/message',
      { config: { access: 'reports.read' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const message = await getFailureReportMessage(db, accountOf(request), id);
        if (!message) {
          throw new AppError(
            'not_found',
            `Failure report ${id} was stored without its mail; set DMARCDESK_KEEP_FAILURE_MESSAGES=true to keep the mails of reports received from now on.`,
            { details: { id } },
          );
        }
        return reply.type('message/rfc822').send(message);
      },
    );

    app.get('/rejected-inputs', { config: { access: 'reports.read' } }, async (request) => {
      const query = parseInput(rejectedQuery, request.query, 'query string');
      return {
        rejectedInputs: await listRejectedInputs(db, accountOf(request), {
          receivedVia: query.receivedVia,
          ...(query.limit ? { limit: query.limit } : {}),
        }),
      };
    });

    app.get('/rejected-inputs/:id', { config: { access: 'reports.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getRejectedInput(db, accountOf(request), id);
    });

    app.get(
      '/rejected-inputs/:id/content',
      { config: { access: 'reports.read' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const content = await getRejectedInputContent(db, accountOf(request), id);
        return reply.type('application/octet-stream').send(content);
      },
    );

    app.get('/receiving-address', { config: { access: 'reports.upload' } }, async (request) => {
      const token = await getReceivingToken(db, accountOf(request));
      return receivingAddressView(token, receivingAddress);
    });

    app.post(
      '/receiving-address/rotate',
      { config: { access: 'account.manage' } },
      async (request) => {
        const token = await rotateReceivingToken(db, accountOf(request));
        return receivingAddressView(token, receivingAddress);
      },
    );
  };
}

function receivingAddressView(token: string, format: ReceivingAddressFormat | null) {
  return {
    token,
    // Null until DMARCDESK_SMTP_DOMAIN is set: without it there is no address to publish.
    address: format ? formatReceivingAddress(token, format) : null,
  };
}

/**
 * Tell whether an upload is a multipart form, by its Content-Type or, when a client labels it
 * otherwise, by a first part that starts with a boundary line and a form-data disposition.
 */
function isMultipartForm(contentType: string | undefined, body: unknown): boolean {
  if (contentType?.toLowerCase().startsWith('multipart/form-data')) return true;
  if (!Buffer.isBuffer(body)) return false;
  const head = body.subarray(0, 1024).toString('latin1');
  return /^--\S+\r?\n(?:[^\r\n]+\r?\n)*?content-disposition:\s*form-data/i.test(head);
}
