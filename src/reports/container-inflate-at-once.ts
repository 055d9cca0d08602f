import zlib from 'node:zlib';

import type { ExtractionBudget } from './container-budget.ts';
import {
  GZIP_TRAILER_BYTES,
  isGzipMemberStart,
  warnOfTrailingBytes,
  readGzipHeaderLength,
} from './container-inflate.ts';
import { ReportInputError } from './report-input-error.ts';

// A report of a few KiB inflates in far less time than an inflate stream takes to set up and
// step through, so small gzip and zlib input is decompressed here in synchronous calls first.
// These functions only ever succeed where the streaming functions of container-inflate.ts
// would succeed with the same output. Anything that one of their checks could reject (a limit,
// damaged data, a bad trailer, too many members) returns null instead, and the caller then
// streams the input, so every error and limit is still decided by the streaming code.

/**
 * Compressed input up to this size is tried at once. A DMARC report compresses about 10 to 30
 * times, so larger input would mostly pass the output bound of 1 MiB and be inflated twice.
 */
const MAX_AT_ONCE_INPUT_BYTES = 64 * 1024;

interface Inflated {
  output: Buffer;
  /** Input bytes the stream used. Whatever follows its end is left unread. */
  consumedBytes: number;
}

/**
 * Inflates one raw deflate or zlib stream in one synchronous call, with at most
 * `maxOutputBytes` of output. Returns null when the output would be larger or the data is
 * damaged or truncated.
 */
function inflateBounded(
  format: 'raw' | 'zlib',
  input: Buffer,
  maxOutputBytes: number,
): Inflated | null {
  if (maxOutputBytes < 1) return null;
  const options = { maxOutputLength: maxOutputBytes, info: true };
  try {
    // With `info: true`, zlib returns the engine too, whose bytesWritten is the input it used.
    // The type definitions of @types/node leave that form out.
    const { buffer, engine } = (format === 'raw'
      ? zlib.inflateRawSync(input, options)
      : zlib.inflateSync(input, options)) as unknown as {
      buffer: Buffer;
      engine: { bytesWritten: number };
    };
    return { output: buffer, consumedBytes: engine.bytesWritten };
  } catch (error) {
    // zlib's Z_* codes and ERR_BUFFER_TOO_LARGE (past maxOutputLength) are about the data.
    if (error instanceof Error && typeof (error as { code?: unknown }).code === 'string') {
      return null;
    }
    throw error;
  }
}

/** Returns the size of the RFC 1952 member header at offset, or null when it is invalid. */
function gzipHeaderLengthOrNull(input: Buffer, offset: number, label: string): number | null {
  try {
    return readGzipHeaderLength(input, offset, label);
  } catch (error) {
    if (error instanceof ReportInputError) return null;
    throw error;
  }
}

/**
 * Inflates every member of a small gzip input, as gunzipStream does, and returns their joined
 * output. It returns null, and changes nothing in the budget, where gunzipStream could reject
 * the input or the input is larger than MAX_AT_ONCE_INPUT_BYTES. gunzipStream could reject
 * output past budget.layerBytesBelowLimits(), a damaged member, a CRC-32 or length that does
 * not match, and more members than maxFiles allows.
 */
export function gunzipAtOnce(
  input: Buffer,
  label: string,
  budget: ExtractionBudget,
): Buffer | null {
  if (input.length > MAX_AT_ONCE_INPUT_BYTES) return null;
  const maxOutputBytes = budget.layerBytesBelowLimits();
  const members: Inflated[] = [];
  let outputBytes = 0;
  let offset = 0;
  let trailingStart: number | null = null;

  while (offset < input.length) {
    // As in gunzipStream, bytes after a member that start no other member are ignored.
    if (members.length > 0 && !isGzipMemberStart(input, offset)) {
      trailingStart = offset;
      break;
    }
    const headerLength = gzipHeaderLengthOrNull(input, offset, label);
    if (headerLength === null) return null;
    const bodyStart = offset + headerLength;
    const member = inflateBounded('raw', input.subarray(bodyStart), maxOutputBytes - outputBytes);
    if (member === null) return null;

    const trailerStart = bodyStart + member.consumedBytes;
    if (input.length < trailerStart + GZIP_TRAILER_BYTES) return null;
    if (input.readUInt32LE(trailerStart) !== zlib.crc32(member.output)) return null;
    if (input.readUInt32LE(trailerStart + 4) !== member.output.length) return null;
    members.push(member);
    outputBytes += member.output.length;
    offset = trailerStart + GZIP_TRAILER_BYTES;
  }
  // gunzipStream counts each member after the first as one more archive member.
  if (budget.files + members.length - 1 > budget.limits.maxFiles) return null;

  // The checks above make sure that none of these calls throws.
  const counter = budget.startLayer(label, input.length);
  for (const [index, member] of members.entries()) {
    if (index > 0) budget.addFile(`gzip member ${index + 1} of ${label}`);
    counter.add(member.output.length, member.consumedBytes);
  }
  if (trailingStart !== null) warnOfTrailingBytes(input, trailingStart, label, budget);
  const outputs = members.map((member) => member.output);
  return outputs.length === 1 ? (outputs[0] as Buffer) : Buffer.concat(outputs);
}

/**
 * Inflates a small RFC 1950 zlib stream, as inflateZlibStream does, and returns its output.
 * Returns null, and changes nothing in the budget, when the input is larger than
 * MAX_AT_ONCE_INPUT_BYTES, when the output would pass budget.layerBytesBelowLimits() or when
 * the data is damaged.
 */
export function inflateZlibAtOnce(
  input: Buffer,
  label: string,
  budget: ExtractionBudget,
): Buffer | null {
  if (input.length > MAX_AT_ONCE_INPUT_BYTES) return null;
  const inflated = inflateBounded('zlib', input, budget.layerBytesBelowLimits());
  if (inflated === null) return null;
  budget.startLayer(label, input.length).add(inflated.output.length, inflated.consumedBytes);
  return inflated.output;
}
