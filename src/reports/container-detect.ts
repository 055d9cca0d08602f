/** The kind of content in a block of bytes, judged by its first bytes and never by a file name. */
export type ContentKind = 'empty' | 'gzip' | 'zip' | 'zlib' | 'xml' | 'mail' | 'unknown';

export interface DetectedContent {
  kind: ContentKind;
  /** A short noun phrase for messages, such as "a PNG image" or "plain text". */
  description: string;
  /** Set for content that starts like a mail message but lacks what makes one. */
  incompleteMail?: boolean;
}

/** The description of an RFC 8460 SMTP TLS report, which is JSON and never a DMARC report. */
export const SMTP_TLS_REPORT_DESCRIPTION = 'an SMTP TLS report (RFC 8460), not a DMARC report';

// Larger JSON is judged by the field names in its first bytes, so that detection stays cheap.
const MAX_JSON_PARSE_BYTES = 4 * 1024 * 1024;
const JSON_HEAD_BYTES = 64 * 1024;
// The top-level fields of an RFC 8460 report (section 4.3) other than "policies".
const SMTP_TLS_FIELDS = ['organization-name', 'date-range', 'contact-info', 'report-id'];

/**
 * Return true for JSON that has the shape of an RFC 8460 report: an object with a "policies"
 * array and at least one of the other top-level fields. Reporters omit optional fields, so
 * one is enough.
 */
function looksLikeSmtpTlsReport(bytes: Buffer, start: number): boolean {
  if (bytes[start] !== 0x7b) return false;
  if (bytes.length <= MAX_JSON_PARSE_BYTES) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.subarray(start).toString('utf8'));
    } catch {
      parsed = null;
    }
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const fields = parsed as Record<string, unknown>;
      return Array.isArray(fields.policies) && SMTP_TLS_FIELDS.some((name) => name in fields);
    }
  }
  // Truncated or very large JSON: look for the field names near the start.
  const head = bytes.subarray(start, start + JSON_HEAD_BYTES).toString('utf8');
  const named = SMTP_TLS_FIELDS.filter((name) => head.includes(`"${name}"`));
  return named.length >= 2;
}

const SIGNATURES: { bytes: number[]; description: string }[] = [
  { bytes: [0x89, 0x50, 0x4e, 0x47], description: 'a PNG image' },
  { bytes: [0xff, 0xd8, 0xff], description: 'a JPEG image' },
  { bytes: [0x47, 0x49, 0x46, 0x38], description: 'a GIF image' },
  { bytes: [0x25, 0x50, 0x44, 0x46], description: 'a PDF document' },
  { bytes: [0x42, 0x5a, 0x68], description: 'bzip2 data' },
  { bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], description: 'xz data' },
  { bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], description: 'a 7-Zip archive' },
  { bytes: [0x52, 0x61, 0x72, 0x21], description: 'a RAR archive' },
  { bytes: [0x28, 0xb5, 0x2f, 0xfd], description: 'zstd data' },
];

/**
 * Header field names that mark the start of an RFC 5322 message. One of them must appear among
 * the first header lines, so that a text file which merely starts with "word: value" lines is
 * not taken for a mail.
 */
const MAIL_HEADER_NAMES = new Set([
  'from',
  'to',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'received',
  'return-path',
  'content-type',
  'delivered-to',
  'dkim-signature',
  'authentication-results',
  'reply-to',
  'sender',
]);

const MAIL_HEADER_WINDOW = 16 * 1024;

function startsWith(bytes: Buffer, signature: number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((value, index) => bytes[offset + index] === value);
}

/** Returns the offset of the first byte after a UTF-8 BOM and ASCII whitespace. */
function skipBomAndWhitespace(bytes: Buffer): number {
  let offset = startsWith(bytes, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (offset < bytes.length) {
    const byte = bytes[offset];
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) break;
    offset += 1;
  }
  return offset;
}

function looksLikeUtf16Xml(bytes: Buffer): boolean {
  // A UTF-16 BOM, or "<" followed or preceded by a zero byte when the BOM is missing.
  if (startsWith(bytes, [0xff, 0xfe]) || startsWith(bytes, [0xfe, 0xff])) return true;
  return startsWith(bytes, [0x3c, 0x00]) || startsWith(bytes, [0x00, 0x3c]);
}

function looksLikeZlib(bytes: Buffer): boolean {
  // RFC 1950: CM = 8 (deflate) with a window of at most 32 KiB, a header checksum that makes
  // CMF * 256 + FLG a multiple of 31, and no preset dictionary.
  const cmf = bytes[0];
  const flg = bytes[1];
  if (cmf === undefined || flg === undefined) return false;
  if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7) return false;
  if ((cmf * 256 + flg) % 31 !== 0) return false;
  return (flg & 0x20) === 0;
}

/** Reports whether the bytes start with an RFC 5322 header block (an mbox "From " line allowed). */
export function looksLikeMail(bytes: Buffer): boolean {
  const head = bytes.subarray(0, MAIL_HEADER_WINDOW).toString('latin1');
  const lines = head.split(/\r?\n/);
  // The last line may be cut by the window, so it is only read when the block fits.
  if (bytes.length > MAIL_HEADER_WINDOW) lines.pop();
  if (lines[0]?.startsWith('From ')) lines.shift();

  let fields = 0;
  let knownFields = 0;
  for (const line of lines) {
    if (line === '') break;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (fields === 0) return false;
      continue;
    }
    // The header block ends at the first line that is not a field. Usually that is an empty
    // line, but IBM Domino relays have been seen to send a line holding one space instead.
    const match = /^([!-9;-~]+):/.exec(line);
    if (!match) break;
    fields += 1;
    if (MAIL_HEADER_NAMES.has((match[1] ?? '').toLowerCase())) knownFields += 1;
  }
  return fields >= 2 && knownFields >= 1;
}

function looksLikeText(sample: Buffer): boolean {
  if (sample.length === 0) return false;
  for (const byte of sample) {
    const isControl = byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d;
    if (isControl || byte === 0x7f) return false;
  }
  return true;
}

/**
 * Describes a single mail header field with what a mail would have besides, such as "a mail
 * header with only a Subject field and no From field or body", or returns null for other content.
 * looksLikeMail needs two fields, so such input is not read as a mail.
 */
function describeLoneHeaderField(bytes: Buffer): string | null {
  const head = bytes.subarray(0, MAIL_HEADER_WINDOW).toString('latin1');
  const match = /^([!-9;-~]+):/.exec(head);
  const name = match?.[1] ?? '';
  if (!MAIL_HEADER_NAMES.has(name.toLowerCase())) return null;
  const blankLine = /\r?\n\r?\n/.exec(head);
  const hasBody = blankLine !== null && head.slice(blankLine.index).trim() !== '';
  const missing = [
    ...(name.toLowerCase() === 'from' ? ['other header field'] : ['From field']),
    ...(hasBody ? [] : ['body']),
  ];
  return `a mail header with only a ${name} field and no ${missing.join(' or ')}`;
}

function describeUnknown(bytes: Buffer): string {
  for (const signature of SIGNATURES) {
    if (startsWith(bytes, signature.bytes)) return signature.description;
  }
  const start = skipBomAndWhitespace(bytes);
  const first = bytes[start];
  if (looksLikeSmtpTlsReport(bytes, start)) return SMTP_TLS_REPORT_DESCRIPTION;
  if (first === 0x7b || first === 0x5b) return 'JSON or other text starting with a bracket';
  const sample = bytes.subarray(0, 512);
  if (looksLikeText(sample)) {
    const preview = sample
      .subarray(start, start + 24)
      .toString('latin1')
      .replace(/\s+/g, ' ');
    return `plain text starting with "${preview}"`;
  }
  const hex = [...bytes.subarray(0, 8)].map((byte) => byte.toString(16).padStart(2, '0'));
  return `binary data starting with the bytes ${hex.join(' ')}`;
}

/** Detects what the bytes contain from their magic bytes and first characters. */
export function detectContent(bytes: Buffer): DetectedContent {
  if (bytes.length === 0) return { kind: 'empty', description: 'no data' };
  if (startsWith(bytes, [0x1f, 0x8b])) return { kind: 'gzip', description: 'gzip data' };
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06])) {
    return { kind: 'zip', description: 'a zip archive' };
  }
  const start = skipBomAndWhitespace(bytes);
  if (bytes[start] === 0x3c || looksLikeUtf16Xml(bytes)) {
    return { kind: 'xml', description: 'XML' };
  }
  if (start === bytes.length) return { kind: 'empty', description: 'only whitespace' };
  if (looksLikeMail(bytes)) return { kind: 'mail', description: 'a mail message' };
  // Checked after mail headers, because a line such as "x " also passes the zlib header check.
  if (looksLikeZlib(bytes)) return { kind: 'zlib', description: 'zlib data' };
  const loneHeaderField = describeLoneHeaderField(bytes);
  if (loneHeaderField !== null) {
    return { kind: 'unknown', description: loneHeaderField, incompleteMail: true };
  }
  return { kind: 'unknown', description: describeUnknown(bytes) };
}
