import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError } from '../errors/app-error.ts';

export interface ErrorBody {
  error: { code: string; message: string; field?: string; details?: Record<string, unknown> };
}

export interface ErrorBoundaryOptions {
  /** The largest request body in bytes, named in the 413 message. */
  bodyLimit: number;
  /** The setting that raises bodyLimit, named in the 413 message. */
  bodyLimitSetting: string;
}

// The methods a 405 response can list in its Allow header.
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * Turn every thrown error into `{ error: { code, message } }`. AppErrors carry a safe message;
 * anything else is logged with its stack and answered with a generic 500, so that no internal
 * detail, token or provider payload reaches the client. A request to a path whose routes are
 * all for other methods gets 405 with an Allow header, and one to an unknown path gets 404.
 */
export function installErrorBoundary(app: FastifyInstance, options: ErrorBoundaryOptions): void {
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = allowedMethods(app, path);
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      void reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send(
          body(
            'method_not_allowed',
            `${path} does not accept ${request.method}; use ${allowed.join(', ')}.`,
          ),
        );
      return;
    }
    void reply
      .code(404)
      .send(body('not_found', `No route matches ${request.method} ${request.url}.`));
  });

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    if (error instanceof AppError) {
      // The rate budget already logs each call it holds back, and such a 503 is no server fault.
      if (error.status >= 500 && error.code !== 'halopsa_rate_limited') {
        request.log.error({ err: error }, 'request failed');
      }
      if (error.retryAfterSeconds !== undefined) {
        void reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
      }
      return reply.code(error.status).send({
        error: {
          code: error.code,
          message: error.message,
          ...(error.field ? { field: error.field } : {}),
          ...(error.details ? { details: error.details } : {}),
        },
      } satisfies ErrorBody);
    }

    const known = fastifyErrorBody(error as FastifyError, options, request.headers['content-type']);
    if (known) return reply.code(known.status).send(known.body);

    request.log.error({ err: error }, 'unhandled error');
    return reply
      .code(500)
      .send(body('internal', 'The server failed to handle this request; the error is in its log.'));
  });
}

/**
 * List the methods with a route for `path`. A match of a wildcard route (the web app's pages)
 * does not count, because that route serves every path.
 */
function allowedMethods(app: FastifyInstance, path: string): string[] {
  return HTTP_METHODS.filter((method) => {
    const route = app.findRoute({ method, url: path });
    if (route === null) return false;
    const params = (route.params ?? {}) as Record<string, unknown>;
    return !('*' in params);
  });
}

function fastifyErrorBody(
  error: FastifyError,
  options: ErrorBoundaryOptions,
  contentType: string | undefined,
): { status: number; body: ErrorBody } | null {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        body: body(
          'payload_too_large',
          `The request body is larger than the limit of ${formatMebibytes(options.bodyLimit)}; ` +
            `send a smaller body, or raise ${options.bodyLimitSetting} (in bytes).`,
        ),
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        // The report upload accepts any Content-Type, so only routes that read JSON get here.
        body: body(
          'unsupported_media_type',
          `The Content-Type ${JSON.stringify(contentType ?? '')} is not accepted here; send ` +
            'the request body as JSON with Content-Type: application/json.',
        ),
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

/** Format a byte count in MiB with at most two decimals, such as "25 MiB" or "0.5 MiB". */
function formatMebibytes(bytes: number): string {
  const mebibytes = Math.round((bytes / (1024 * 1024)) * 100) / 100;
  return `${mebibytes} MiB`;
}

function body(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}
