import type { z } from 'zod';
import { AppError } from './app-error.ts';

/**
 * Parse `input` with `schema`, or throw a validation_failed AppError that names the first
 * invalid field and lists every problem in `details.problems`.
 */
export function parseInput<Schema extends z.ZodType>(
  schema: Schema,
  input: unknown,
  what = 'request body',
): z.output<Schema> {
  if (what === 'query string') rejectRepeatedParameters(input);
  const result = schema.safeParse(input);
  if (result.success) return result.data;

  const problems = result.error.issues.map((issue) => ({
    field: issue.path.join('.') || '(root)',
    message: issue.message,
  }));
  const first = problems[0]!;
  const where = first.field === '(root)' ? `The ${what}` : `Field "${first.field}"`;
  return failValidation(`${where}: ${first.message}`, first.field, problems);
}

function failValidation(message: string, field: string, problems: unknown[]): never {
  throw new AppError('validation_failed', message, { field, details: { problems } });
}

/**
 * Reject a query parameter given more than once, such as `limit=1&limit=2`. The query parser
 * turns it into an array, which no query schema accepts and which would otherwise fail with a
 * message about the array's coerced value (such as "received NaN").
 */
function rejectRepeatedParameters(query: unknown): void {
  if (query === null || typeof query !== 'object') return;
  for (const [name, value] of Object.entries(query)) {
    if (!Array.isArray(value)) continue;
    const repeated = value.map((item) => `${name}=${String(item).slice(0, 40)}`).join('&');
    const message =
      `Query parameter "${name}" is given ${value.length} times (${repeated}); ` + 'give it once.';
    failValidation(message, name, [{ field: name, message }]);
  }
}
