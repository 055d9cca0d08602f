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
