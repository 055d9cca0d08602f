/** The reason an uploaded or mailed report file was rejected before any of it was stored. */
export type ReportInputErrorCode =
  | 'empty'
  | 'unsupported_format'
  | 'corrupt_gzip'
  | 'corrupt_zip'
  | 'too_large'
  | 'compression_ratio'
  | 'too_many_files'
  | 'nesting_too_deep'
  | 'not_well_formed'
  | 'doctype_forbidden'
  | 'not_a_dmarc_report'
  | 'invalid_report';

/**
 * A report file that cannot be accepted. The message is a sentence that names what is wrong
 * (and the archive member where there is one) and what the sender can do. It contains no bytes
 * of the file beyond short names and values, so it is safe to show and to log.
 */
export class ReportInputError extends Error {
  readonly code: ReportInputErrorCode;

  constructor(code: ReportInputErrorCode, message: string, options: { cause?: unknown } = {}) {
    // Messages are often built from a subject such as "zip member ..." placed first.
    super(message.charAt(0).toUpperCase() + message.slice(1), { cause: options.cause });
    this.name = 'ReportInputError';
    this.code = code;
  }
}

/** Quotes a name or value taken from the input for a message, cut to a readable length. */
export function quoteForMessage(value: string, maxLength = 80): string {
  const printable = value.replace(/[\u0000-\u001f\u007f]/g, '?');
  const shortened =
    printable.length > maxLength ? `${printable.slice(0, maxLength)}...` : printable;
  return `"${shortened}"`;
}

/**
 * A rejection that stopped reading an archive or mail at one member, so that member and every
 * member after it were not read. The code is that of the limit or damage that stopped it.
 */
export class MembersNotReadError extends ReportInputError {
  constructor(
    /** The error about the member where reading stopped. */
    readonly reason: ReportInputError,
    /** The name of the member where reading stopped. */
    readonly member: string,
    /** The names of the members after it, in archive order, none of which was read. */
    readonly unreadMembers: string[],
  ) {
    super(reason.code, `${reason.message} ${describeUnread(member, unreadMembers)}`, {
      cause: reason,
    });
    this.name = 'MembersNotReadError';
  }
}

const LISTED_MEMBERS = 10;

function describeUnread(member: string, unread: string[]): string {
  if (unread.length === 0) return `Reading stopped at ${quoteForMessage(member)}, the last member.`;
  const listed = unread.slice(0, LISTED_MEMBERS).map((name) => quoteForMessage(name));
  const more = unread.length > LISTED_MEMBERS ? ` and ${unread.length - LISTED_MEMBERS} more` : '';
  return (
    `Reading stopped at ${quoteForMessage(member)}, so the ${unread.length} members after it ` +
    `(${listed.join(', ')}${more}) were not read either.`
  );
}
