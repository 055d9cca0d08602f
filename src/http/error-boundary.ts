import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError } from '../errors/app-error.ts';

export interface ErrorBody {
  error: { code: string; message: string; field?: string; details?: Record<string, unknown> };
}

/**
 * Turn every thrown error into `{ error: { code, message } }`. AppErrors carry a safe message;
 * anything else is logged with its stack and answered with a generic 500, so that no internal
 * detail, token or provider payload reaches the client.
 */
export function installErrorBoundary(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(body('not_found', `No route matches ${request.method} ${request.url}.`));
  });

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    if (error instanceof AppError) {
      if (error.status >= 500) request.log.error({ err: error }, 'request failed');
      return reply.code(error.status).send({
        error: {
          code: error.code,
          message: error.message,
          ...(error.field ? { field: error.field } : {}),
          ...(error.details ? { details: error.details } : {}),
        },
      } satisfies ErrorBody);
    }

    const known = fastifyErrorBody(error as FastifyError);
    if (known) return reply.code(known.status).send(known.body);

    request.log.error({ err: error }, 'unhandled error');
    return reply
      .code(500)
      .send(body('internal', 'The server failed to handle this request; the error is in its log.'));
  });
}

function fastifyErrorBody(error: FastifyError): { status: number; body: ErrorBody } | null {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        body: body('payload_too_large', 'The request body is larger than this server accepts.'),
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        body: body('unsupported_media_type', 'This route does not accept that Content-Type.'),
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: body('validation_failed', 'The JSON request body is empty.') };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return {
        status: 400,
        body: body('validation_failed', 'The request body is not valid JSON.'),
      };
    default:
      if (error instanceof SyntaxError || error.statusCode === 400) {
        return {
          status: 400,
          body: body('validation_failed', `The request is invalid: ${error.message}`),
        };
      }
      return null;
  }
}

function body(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}
