// Turns the errors of commands that open the database into sentences that state what was wrong
// and what to do, in place of the database driver's own message.
import { AppError } from '../errors/app-error.ts';

/** The fields that PostgreSQL and PGlite set on a database error. */
interface DatabaseErrorFields {
  code?: unknown;
  detail?: unknown;
  constraint?: unknown;
  message?: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Throw a validation error unless `value`, given for the option `--<option>`, is a UUID.
 * `listCommand` is the command that lists the ids of that kind.
 */
export function requireUuid(value: string, option: string, listCommand = 'account list'): string {
  if (!UUID.test(value)) {
    throw new AppError(
      'validation_failed',
      `--${option} ${JSON.stringify(value)} is not an id: ids are UUIDs such as ` +
        `0b6f5e4c-1d2a-4c3b-9f8e-7a6b5c4d3e2f. Run "dmarcdesk ${listCommand}" to find the id.`,
    );
  }
  return value;
}

/**
 * Return the sentence to print for an error of a database command, or null when the error is
 * neither an AppError nor a database error. `command` is the CLI command, such as "user create".
 */
export function describeDatabaseFailure(error: unknown, command: string): string | null {
  if (error instanceof AppError) {
    if (error.code === 'conflict' && command === 'user create') {
      return `${error.message} Choose another --email, or sign in as that user.`;
    }
    if (error.code === 'not_found') {
      return `${error.message} Run "dmarcdesk account list" to see the accounts and their ids.`;
    }
    return error.message;
  }
  if (typeof error !== 'object' || error === null) return null;
  const fields = error as DatabaseErrorFields;
  if (typeof fields.code !== 'string' || !/^[0-9A-Z]{5}$/.test(fields.code)) return null;

  const detail = typeof fields.detail === 'string' ? ` (${fields.detail})` : '';
  const constraint = typeof fields.constraint === 'string' ? fields.constraint : 'a constraint';
  // SQLSTATE codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
  switch (fields.code) {
    case '23505':
      return `${command}: a record with the same value already exists${detail}; choose another value.`;
    case '23503':
      return (
        `${command}: a record that the command refers to does not exist${detail}; check the ` +
        'ids you gave, for example with "dmarcdesk account list".'
      );
    case '22P02':
      return `${command}: a value is not in the form the database expects; check the ids and numbers you gave.`;
    case '23514':
    case '23502':
      return `${command}: a value is missing or not allowed (${constraint}); check the options you gave.`;
    default: {
      const message = typeof fields.message === 'string' ? fields.message : 'unknown error';
      return `${command}: the database rejected the command (SQLSTATE ${fields.code}: ${message}); check the options, or run "dmarcdesk --help".`;
    }
  }
}
