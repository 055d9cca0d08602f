import { isUtf8 } from 'node:buffer';

import { quoteForMessage, ReportInputError } from './report-input-error.ts';

/** The input is decoded in slices of this many bytes, so text is made a piece at a time. */
const DECODE_SLICE_BYTES = 64 * 1024;

/** The XML declaration, if any, sits in the first bytes; 512 leaves room for odd spacing. */
const DECLARATION_WINDOW = 512;

export interface DecodedXml {
  /** The WHATWG name of the encoding used, such as 'utf-8' or 'windows-1252'. */
  encoding: string;
  /** Text of the document in order, made as the generator is read. */
  chunks: Generator<string>;
}

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

function chooseByDeclaration(bytes: Buffer, warn: (message: string) => void): EncodingChoice {
  const declared = readDeclaredEncoding(bytes);
  if (declared === null) return { label: 'utf-8', skip: 0 };

  let decoderEncoding: string;
  try {
    decoderEncoding = new TextDecoder(declared).encoding;
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
 * Picks the encoding of an XML document (byte order mark first, then the declaration, then
 * UTF-8, as XML 1.0 appendix F describes) and returns a generator that decodes it in slices.
 * Each leniency adds a warning: a byte order mark, an encoding other than UTF-8, invalid UTF-8
 * bytes (replaced with U+FFFD), whitespace before the XML declaration (removed).
 */
export function decodeXml(bytes: Buffer, warn: (message: string) => void): DecodedXml {
  const choice = chooseByBom(bytes, warn) ?? chooseByDeclaration(bytes, warn);
  const body = bytes.subarray(choice.skip);
  if (choice.label === 'utf-8' && !isUtf8(body)) {
    warn('The document is not valid UTF-8; each invalid byte was replaced with U+FFFD.');
  }
  return { encoding: choice.label, chunks: decodeSlices(body, choice.label, warn) };
}

function* decodeSlices(
  body: Buffer,
  label: string,
  warn: (message: string) => void,
): Generator<string> {
  const decoder = new TextDecoder(label, { fatal: false, ignoreBOM: true });
  let atStart = true;
  for (let offset = 0; offset < body.length; offset += DECODE_SLICE_BYTES) {
    let text = decoder.decode(body.subarray(offset, offset + DECODE_SLICE_BYTES), { stream: true });
    if (atStart && text.length > 0) {
      atStart = false;
      text = stripSpaceBeforeDeclaration(text, warn);
    }
    yield text;
  }
  yield decoder.decode();
}

function stripSpaceBeforeDeclaration(text: string, warn: (message: string) => void): string {
  // XML 1.0 allows nothing before the declaration, yet some generators emit a newline first.
  const match = /^\s+(?=<\?xml[\s?])/.exec(text);
  if (!match) return text;
  warn('The document has whitespace before its XML declaration, which was removed.');
  return text.slice(match[0].length);
}
