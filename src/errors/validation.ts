import type { z } from 'zod';
import { AppError } from './app-error.ts';
import { describeIssues } from './zod-issues.ts';

/** Labels for a field of each kind of input, keyed by the `what` of parseInput. */
const FIELD_NOUNS: Record<string, { label: string; keyNoun: string }> = {
  'query string': { label: 'Query parameter', keyNoun: 'query parameter' },
  path: { label: 'Path parameter', keyNoun: 'path parameter' },
};

/**
 * Parse `input` with `schema`, or throw a validation_failed AppError. Its message names the
 * first invalid field, what is wrong with it and the value given, such as
 * `Field "url": must be a string (got the number 5).`, and `details.problems` lists one
 * problem per invalid field. describeIssues in zod-issues.ts words each problem.
 */
export function parseInput<Schema extends z.ZodType>(
  schema: Schema,
  input: unknown,
  what = 'request body',
): z.output<Schema> {
  if (what === 'query string') rejectRepeatedParameters(input);
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;

  const nouns = FIELD_NOUNS[what] ?? { label: 'Field', keyNoun: 'field' };
  const problems = describeIssues(schema, input, result.error.issues, {
    keyNoun: nouns.keyNoun,
  }).map((problem) => ({ field: problem.path || '(root)', message: problem.message }));
  const first = problems[0]!;
  const sentence =
    first.field === '(root)'
      ? `The ${what} ${first.message}.`
      : `${nouns.label} "${first.field}": ${first.message}.`;
  return failValidation(sentence, first.field, problems);
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
