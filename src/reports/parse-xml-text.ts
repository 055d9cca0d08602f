import { isAscii, isUtf8 } from 'node:buffer';

import { quoteForMessage, ReportInputError } from './report-input-error.ts';

/** The XML declaration, if any, sits in the first bytes; 512 leaves room for odd spacing. */
const DECLARATION_WINDOW = 512;

interface EncodingChoice {
  label: string;
  /** Bytes to skip at the start (a byte order mark). */
  skip: number;
}

function chooseByBom(bytes: Buffer, warn: (message: string) => void): EncodingChoice | null {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    warn('The document starts with a UTF-8 byte order mark, which was skipped.');
    return { label: 'utf-8', skip: 3 };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xfe) {
    warn('The document is UTF-16 (little-endian, with a byte order mark); it was decoded as such.');
    return { label: 'utf-16le', skip: 2 };
  }
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    warn('The document is UTF-16 (big-endian, with a byte order mark); it was decoded as such.');
    return { label: 'utf-16be', skip: 2 };
  }
  // "<?" in UTF-16 without a byte order mark.
  if (bytes[0] === 0x3c && bytes[1] === 0x00 && bytes[2] === 0x3f && bytes[3] === 0x00) {
    warn(
      'The document is UTF-16 (little-endian) without a byte order mark; it was decoded as such.',
    );
    return { label: 'utf-16le', skip: 0 };
  }
  if (bytes[0] === 0x00 && bytes[1] === 0x3c && bytes[2] === 0x00 && bytes[3] === 0x3f) {
    warn('The document is UTF-16 (big-endian) without a byte order mark; it was decoded as such.');
    return { label: 'utf-16be', skip: 0 };
  }
  return null;
}

/** Reads the encoding name from an XML declaration in an ASCII-compatible document. */
function readDeclaredEncoding(bytes: Buffer): string | null {
  const head = bytes.subarray(0, DECLARATION_WINDOW).toString('latin1');
  const match = /^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([^"']*)["']/.exec(head);
  return match ? (match[1] ?? '').trim() : null;
}

/**
 * WHATWG encoding names by declared label, as TextDecoder resolves them, because making a
 * TextDecoder only to resolve a label took about 5 microseconds on Node.js 20. Labels that
 * TextDecoder rejects are not kept, and the map is emptied when full.
 */
const resolvedLabels = new Map<string, string>();
const MAX_RESOLVED_LABELS = 64;

/** Returns the WHATWG name of the encoding a label names, or throws TextDecoder's RangeError. */
function resolveLabel(label: string): string {
  const cached = resolvedLabels.get(label);
  if (cached !== undefined) return cached;
  const encoding = new TextDecoder(label).encoding;
  if (resolvedLabels.size >= MAX_RESOLVED_LABELS) resolvedLabels.clear();
  resolvedLabels.set(label, encoding);
  return encoding;
}

function chooseByDeclaration(bytes: Buffer, warn: (message: string) => void): EncodingChoice {
  const declared = readDeclaredEncoding(bytes);
  if (declared === null) return { label: 'utf-8', skip: 0 };

  let decoderEncoding: string;
  try {
    decoderEncoding = resolveLabel(declared);
  } catch (error) {
    throw new ReportInputError(
      'unsupported_format',
      `The XML declaration names the encoding ${quoteForMessage(declared)}, which cannot be ` +
        'decoded; send the report in UTF-8.',
      { cause: error },
    );
  }
  if (decoderEncoding === 'utf-8') return { label: 'utf-8', skip: 0 };
  if (decoderEncoding.startsWith('utf-16')) {
    // Without a byte order mark and with an ASCII "<?xml" the bytes cannot be UTF-16.
    warn(
      `The document declares encoding ${quoteForMessage(declared)} but its bytes are 8-bit; ` +
        'it was decoded as UTF-8.',
    );
    return { label: 'utf-8', skip: 0 };
  }
  warn(
    `The document declares encoding ${quoteForMessage(declared)}; it was decoded as ${decoderEncoding}.`,
  );
  return { label: decoderEncoding, skip: 0 };
}

/**
 * Decodes the bytes of one XML document into text as they arrive. The encoding is picked from the
 * first bytes (byte order mark first, then the declaration, then UTF-8, as XML 1.0 appendix F
 * describes), so up to DECLARATION_WINDOW bytes are held back until it is known. Each leniency
 * adds a warning: a byte order mark, an encoding other than UTF-8, invalid UTF-8 bytes (replaced
 * with U+FFFD), whitespace before the XML declaration (removed).
 */
export class XmlTextDecoder {
  private head: Buffer[] = [];
  private headBytes = 0;
  /** The encoding chosen from the first bytes, or null until it is known. */
  private chosen: EncodingChoice | null = null;
  /**
   * Made at the first bytes that are not ASCII UTF-8, because ASCII is decoded without it and
   * most reports are ASCII.
   */
  private textDecoder: TextDecoder | null = null;
  private label = 'utf-8';
  private atStart = true;
  /** Trailing bytes of the last slice that may begin a UTF-8 sequence continued in the next. */
  private utf8Carry: Buffer | null = null;
  private utf8Invalid = false;
  private spaceRemoved = false;

  constructor(private readonly warn: (message: string) => void) {}

  /** The WHATWG name of the encoding used, such as 'utf-8'; known once text has been returned. */
  get encoding(): string {
    return this.label;
  }

  /** Decodes the next bytes and returns the text they complete, which may be ''. */
  write(bytes: Buffer): string {
    if (this.chosen === null) {
      this.head.push(bytes);
      this.headBytes += bytes.length;
      if (this.headBytes < DECLARATION_WINDOW) return '';
      return this.start();
    }
    return this.decode(bytes);
  }

  /** Returns the text of any bytes still held, at the end of the document. */
  end(): string {
    let text = this.chosen === null ? this.start() : '';
    if (this.chosen === null) return text;
    if (this.textDecoder !== null) text += this.strip(this.textDecoder.decode());
    if (this.label === 'utf-8' && this.utf8Carry !== null) this.noteInvalidUtf8();
    // These two are given at the end, in this order, because when they are found depends on
    // how the bytes were sliced.
    if (this.utf8Invalid) {
      this.warn('The document is not valid UTF-8; each invalid byte was replaced with U+FFFD.');
    }
    if (this.spaceRemoved) {
      this.warn('The document has whitespace before its XML declaration, which was removed.');
    }
    return text;
  }

  private start(): string {
    const first = this.head.length === 1 ? (this.head[0] as Buffer) : Buffer.concat(this.head);
    this.head = [];
    const choice = chooseByBom(first, this.warn) ?? chooseByDeclaration(first, this.warn);
    this.label = choice.label;
    this.chosen = choice;
    return this.decode(first.subarray(choice.skip));
  }

  private decode(bytes: Buffer): string {
    if (this.label === 'utf-8' && !this.utf8Invalid) {
      // ASCII decodes to the same text as Latin-1, which Node.js 20 decodes about twice as
      // fast. It is taken only when no sequence is open, so the TextDecoder keeps no bytes.
      if (this.utf8Carry === null && isAscii(bytes)) return this.strip(bytes.toString('latin1'));
      this.checkUtf8(bytes);
    }
    this.textDecoder ??= new TextDecoder(this.label, { fatal: false, ignoreBOM: true });
    const text = this.textDecoder.decode(bytes, { stream: true });
    return this.strip(text);
  }

  private strip(text: string): string {
    if (!this.atStart || text.length === 0) return text;
    this.atStart = false;
    // XML 1.0 allows nothing before the declaration, yet some generators emit a newline first.
    const match = /^\s+(?=<\?xml[\s?])/.exec(text);
    if (!match) return text;
    this.spaceRemoved = true;
    return text.slice(match[0].length);
  }

  /**
   * Checks that the bytes seen so far are valid UTF-8. A slice may end inside a multi-byte
   * sequence, so the bytes from its last lead byte on are checked with the next slice.
   */
  private checkUtf8(bytes: Buffer): void {
    const joined = this.utf8Carry === null ? bytes : Buffer.concat([this.utf8Carry, bytes]);
    const cut = completeUtf8Length(joined);
    this.utf8Carry = cut < joined.length ? Buffer.from(joined.subarray(cut)) : null;
    if (!isUtf8(joined.subarray(0, cut))) this.noteInvalidUtf8();
  }

  private noteInvalidUtf8(): void {
    if (this.utf8Invalid) return;
    this.utf8Invalid = true;
    this.utf8Carry = null;
  }
}

/**
 * Returns the length of the longest prefix that does not end inside a UTF-8 sequence: the
 * bytes after it are a lead byte and fewer continuation bytes than it announces.
 */
function completeUtf8Length(bytes: Buffer): number {
  const length = bytes.length;
  for (let back = 1; back <= 3 && back <= length; back += 1) {
    const byte = bytes[length - back] as number;
    if ((byte & 0xc0) === 0x80) continue;
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? length - back : length;
  }
  return length;
}
