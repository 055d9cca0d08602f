import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors/app-error.ts';

/**
 * Parse JSON request bodies, the only kind the routes outside the report upload read. An empty
 * body reads as no body, so that a DELETE or POST sent with a JSON Content-Type and nothing else
 * is accepted. Strings with a NUL character are rejected
 * with the field that contains one, because PostgreSQL cannot store NUL in text.
 */
export function installJsonBodyParser(app: FastifyInstance): void {
  // Without Fastify's text/plain parser, a JSON body sent as text/plain gets a 415 that names
  // the Content-Type, where it would reach the route as a string and fail as "not an object".
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    const body = typeof text === 'string' ? text : text.toString('utf8');
    if (body.trim() === '') return done(null, undefined);

    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (error) {
      return done(
        new AppError(
          'validation_failed',
          `The request body is not valid JSON: ${(error as Error).message}.`,
          {
            cause: error,
          },
        ),
      );
    }
    const path = findNul(value, []);
    if (path !== null) {
      const field = path.join('.') || '(root)';
      return done(
        new AppError(
          'validation_failed',
          `Field "${field}": contains a NUL character (\\u0000), which no field accepts.`,
          {
            field,
          },
        ),
      );
    }
    done(null, value);
  });
}

function findNul(value: unknown, path: (string | number)[]): (string | number)[] | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findNul(item, [...path, index]);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\u0000')) return [...path, key];
      const found = findNul(item, [...path, key]);
      if (found) return found;
    }
  }
  return null;
}
