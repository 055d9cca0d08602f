import { ReportInputError } from './report-input-error.ts';

/** One header field, unfolded, with its name as written and in lower case. */
export interface HeaderField {
  name: string;
  key: string;
  /** The unfolded value, RFC 2047 encoded words left as they are. */
  value: string;
}

/** A MIME entity (RFC 2045/2046): a whole message or one part of a multipart body. */
export interface MimeEntity {
  headers: HeaderField[];
  /** The header block as written, one byte per character (latin1). */
  headerText: string;
  /** The media type in lower case, such as "multipart/report"; "text/plain" when none is given. */
  mediaType: string;
  /** Content-Type parameters, names in lower case. */
  parameters: Record<string, string>;
  /** The body as written, still transfer-encoded, one byte per character (latin1). */
  rawBody: string;
  /** The children of a multipart entity; empty for any other type. */
  parts: MimeEntity[];
  /** How many multipart layers enclose this entity; 0 for the message itself. */
  depth: number;
}

export interface MimeLimits {
  /** Maximum number of entities in one message, counting every part at every level. */
  maxParts: number;
  /** Maximum number of multipart layers inside one another. */
  maxDepth: number;
}

/**
 * Limits for failure report mails. A real report has three or four parts in one multipart
 * layer, sometimes one more layer inside the quoted message, so these leave ample room while
 * a mail of thousands of parts or layers is rejected before it costs memory.
 */
export const DEFAULT_MIME_LIMITS: MimeLimits = { maxParts: 200, maxDepth: 8 };

const FIELD_LINE = /^([!-9;-~]+)[ \t]*:(.*)$/;

/**
 * Splits a block of text into a header block and a body. The block ends at the first empty
 * line, at a line that holds only spaces (IBM Domino relays send those in place of empty lines),
 * or at the first line that is neither a field nor a continuation. An mbox "From " line before
 * the first field is skipped.
 */
export function splitHeaderBlock(text: string): { headerText: string; body: string } {
  let offset = 0;
  if (text.startsWith('From ')) offset = nextLineStart(text, 0);
  const start = offset;
  while (offset < text.length) {
    const end = nextLineStart(text, offset);
    const line = stripLineEnd(text.slice(offset, end));
    if (line.trim() === '') {
      return { headerText: text.slice(start, offset), body: text.slice(end) };
    }
    const continuation = line.startsWith(' ') || line.startsWith('\t');
    if (!continuation && !FIELD_LINE.test(line)) {
      return { headerText: text.slice(start, offset), body: text.slice(offset) };
    }
    offset = end;
  }
  return { headerText: text.slice(start), body: '' };
}

/** Parses a header block into unfolded fields, in the order written. */
export function parseHeaderFields(headerText: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const line of headerText.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const last = fields[fields.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      last.value = `${last.value} ${line.trim()}`.trim();
      continue;
    }
    const match = FIELD_LINE.exec(line);
    if (!match) continue;
    const name = match[1]!;
    fields.push({ name, key: name.toLowerCase(), value: (match[2] ?? '').trim() });
  }
  return fields;
}

/** Returns the value of the first field with this name (any case), or null. */
export function headerValue(headers: HeaderField[], name: string): string | null {
  const key = name.toLowerCase();
  return headers.find((field) => field.key === key)?.value ?? null;
}

/** Returns the values of every field with this name (any case), in order. */
export function headerValues(headers: HeaderField[], name: string): string[] {
  const key = name.toLowerCase();
  return headers.filter((field) => field.key === key).map((field) => field.value);
}

/** Parses a Content-Type value into its media type and parameters. */
export function parseContentType(value: string | null): {
  mediaType: string;
  parameters: Record<string, string>;
} {
  if (!value) return { mediaType: 'text/plain', parameters: {} };
  const [typePart = '', ...rest] = splitParameters(value);
  const mediaType = typePart.trim().toLowerCase() || 'text/plain';
  const parameters: Record<string, string> = {};
  for (const parameter of rest) {
    const equals = parameter.indexOf('=');
    if (equals <= 0) continue;
    const name = parameter.slice(0, equals).trim().toLowerCase();
    let parameterValue = parameter.slice(equals + 1).trim();
    if (
      parameterValue.startsWith('"') &&
      parameterValue.endsWith('"') &&
      parameterValue.length >= 2
    ) {
      parameterValue = parameterValue.slice(1, -1).replace(/\\(.)/g, '$1');
    }
    parameters[name] = parameterValue;
  }
  return { mediaType: mediaType.includes('/') ? mediaType : 'text/plain', parameters };
}

/** Splits a header value on semicolons that are outside quoted strings. */
function splitParameters(value: string): string[] {
  const pieces: string[] = [];
  let current = '';
  let quoted = false;
  for (let index = 0; index < value.length; index += 1) {
    const char = value[index]!;
    if (char === '\\' && quoted) {
      current += char + (value[index + 1] ?? '');
      index += 1;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === ';' && !quoted) {
      pieces.push(current);
      current = '';
      continue;
    }
    current += char;
  }
  pieces.push(current);
  return pieces;
}

/**
 * Parses a message into its tree of MIME entities. The input is read one byte per character,
 * so no byte is lost before a part is decoded with its own charset.
 *
 * @throws ReportInputError when the message has more parts or layers than the limits allow.
 */
export function parseMimeMessage(
  input: Buffer,
  limits: MimeLimits = DEFAULT_MIME_LIMITS,
): MimeEntity {
  const counter = { parts: 0 };
  return parseEntity(input.toString('latin1'), 0, limits, counter);
}

function parseEntity(
  text: string,
  depth: number,
  limits: MimeLimits,
  counter: { parts: number },
): MimeEntity {
  counter.parts += 1;
  if (counter.parts > limits.maxParts) {
    throw new ReportInputError(
      'too_many_files',
      `The mail has more than ${limits.maxParts} MIME parts; a DMARC report has a handful, so the mail was rejected.`,
    );
  }
  const { headerText, body } = splitHeaderBlock(text);
  const headers = parseHeaderFields(headerText);
  const { mediaType, parameters } = parseContentType(headerValue(headers, 'content-type'));
  const entity: MimeEntity = {
    headers,
    headerText,
    mediaType,
    parameters,
    rawBody: body,
    parts: [],
    depth,
  };
  const boundary = parameters.boundary;
  if (mediaType.startsWith('multipart/') && boundary) {
    if (depth + 1 > limits.maxDepth) {
      throw new ReportInputError(
        'nesting_too_deep',
        `The mail nests multipart bodies more than ${limits.maxDepth} levels deep; ` +
          'a DMARC report uses one or two, so the mail was rejected.',
      );
    }
    for (const partText of splitMultipart(body, boundary)) {
      entity.parts.push(parseEntity(partText, depth + 1, limits, counter));
    }
  }
  return entity;
}

/**
 * Returns the body parts between the boundary delimiter lines of a multipart body (RFC 2046
 * section 5.1.1). The preamble and epilogue are dropped. A body whose closing delimiter is
 * missing, as in a truncated mail, keeps its last part.
 */
export function splitMultipart(body: string, boundary: string): string[] {
  const delimiter = `--${boundary}`;
  const parts: string[] = [];
  let partStart = -1;
  let offset = 0;
  while (offset < body.length) {
    const end = nextLineStart(body, offset);
    const line = stripLineEnd(body.slice(offset, end)).trimEnd();
    if (line.startsWith(delimiter)) {
      const rest = line.slice(delimiter.length);
      if (rest === '' || rest === '--') {
        if (partStart >= 0) parts.push(trimFinalLineBreak(body.slice(partStart, offset)));
        if (rest === '--') return parts;
        partStart = end;
      }
    }
    offset = end;
  }
  if (partStart >= 0 && partStart < body.length) parts.push(body.slice(partStart));
  return parts;
}

/** Decodes the body of an entity from its Content-Transfer-Encoding into bytes. */
export function decodeBody(entity: MimeEntity): Buffer {
  const encoding = (headerValue(entity.headers, 'content-transfer-encoding') ?? '')
    .trim()
    .toLowerCase();
  if (encoding === 'base64') {
    return Buffer.from(entity.rawBody.replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
  }
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(entity.rawBody);
  return Buffer.from(entity.rawBody, 'latin1');
}

/** Decodes the body of a text entity into a string, with the charset it declares. */
export function decodeText(entity: MimeEntity): string {
  return decodeCharset(decodeBody(entity), entity.parameters.charset ?? 'utf-8');
}

/** Decodes bytes in the named charset; an unknown charset falls back to UTF-8. */
export function decodeCharset(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset.trim().toLowerCase()).decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

function decodeQuotedPrintable(text: string): Buffer {
  const softBreaksRemoved = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let index = 0; index < softBreaksRemoved.length; index += 1) {
    const char = softBreaksRemoved[index]!;
    const hex = softBreaksRemoved.slice(index + 1, index + 3);
    if (char === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      index += 2;
    } else {
      bytes.push(char.charCodeAt(0) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/**
 * Decodes RFC 2047 encoded words ("=?utf-8?B?...?=") in a header value read as latin1. Text
 * outside encoded words is taken as UTF-8, which is what most mailers send unencoded.
 */
export function decodeHeaderText(value: string): string {
  const plain = decodeCharset(Buffer.from(value, 'latin1'), 'utf-8');
  return plain
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(
      /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g,
      (_word, charset: string, kind: string, text: string) => {
        const cleanCharset = charset.split('*')[0] ?? 'utf-8';
        if (kind.toUpperCase() === 'B') {
          return decodeCharset(Buffer.from(text, 'base64'), cleanCharset);
        }
        return decodeCharset(decodeQuotedPrintable(text.replace(/_/g, ' ')), cleanCharset);
      },
    );
}

/** Lists every entity of the tree, the root first, depth first. */
export function allEntities(root: MimeEntity): MimeEntity[] {
  const found: MimeEntity[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const entity = stack.pop()!;
    found.push(entity);
    for (let index = entity.parts.length - 1; index >= 0; index -= 1)
      stack.push(entity.parts[index]!);
  }
  return found;
}

function nextLineStart(text: string, offset: number): number {
  const newline = text.indexOf('\n', offset);
  return newline < 0 ? text.length : newline + 1;
}

function stripLineEnd(line: string): string {
  return line.replace(/\r?\n$/, '');
}

function trimFinalLineBreak(text: string): string {
  return text.replace(/\r?\n$/, '');
}
