import zlib from 'node:zlib';

import type { ExtractionBudget, LayerCounter } from './container-budget.ts';
import { ReportInputError } from './report-input-error.ts';

/**
 * Input is fed to the inflater in slices of this size, so that the output counter checks each
 * chunk and can stop a bomb after a few slices instead of after the whole input.
 */
const SLICE_BYTES = 64 * 1024;

/** Output chunks of 64 KiB instead of zlib's 16 KiB, so that each costs the reader less. */
const INFLATE_OPTIONS: zlib.ZlibOptions = { chunkSize: 64 * 1024 };

const GZIP_FLAG_HCRC = 0x02;
const GZIP_FLAG_EXTRA = 0x04;
const GZIP_FLAG_NAME = 0x08;
const GZIP_FLAG_COMMENT = 0x10;
const GZIP_RESERVED_FLAGS = 0xe0;
export const GZIP_TRAILER_BYTES = 8;

/** What inflating one stream found, filled in once its output has been read to the end. */
interface InflateResult {
  /** Input bytes the inflater used; whatever follows the end of the stream is left unread. */
  consumedBytes: number;
  outputBytes: number;
  crc32: number;
}

function isZlibError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'string';
}

/**
 * Writes the input to the engine in slices, waiting for it to drain after each slice it does
 * not take at once, and ends it. Feeding stops once `stopped` returns true or the engine ends,
 * closes or fails, so that a stream that ends before its input does leaves nothing waiting.
 */
async function feedSlices(
  engine: zlib.InflateRaw | zlib.Inflate,
  input: Buffer,
  stopped: () => boolean,
): Promise<void> {
  for (let offset = 0; offset < input.length && !stopped(); offset += SLICE_BYTES) {
    if (engine.destroyed || engine.writableEnded) return;
    if (engine.write(input.subarray(offset, offset + SLICE_BYTES))) continue;
    await new Promise<void>((resolve) => {
      const done = () => {
        engine.off('drain', done);
        engine.off('end', done);
        engine.off('close', done);
        engine.off('error', done);
        resolve();
      };
      engine.on('drain', done);
      engine.on('end', done);
      engine.on('close', done);
      engine.on('error', done);
    });
  }
  if (!engine.destroyed && !engine.writableEnded) engine.end();
}

/**
 * Inflates one deflate or zlib stream with a byte counter and yields its output as it is made.
 * The inflater only runs as fast as the output is read, so a slow reader holds at most the
 * streams' buffers. Bytes after the end of the stream are ignored, and the source stops feeding
 * them once the inflater has ended.
 */
async function* inflateCounted(
  engine: zlib.InflateRaw | zlib.Inflate,
  input: Buffer,
  counter: LayerCounter,
  result: InflateResult,
): AsyncGenerator<Buffer> {
  let streamEnded = false;
  engine.once('end', () => {
    streamEnded = true;
  });
  // The slices are written by hand rather than through stream.pipeline, whose AbortController
  // and DOMException per stream were about 5 % of a CPU profile of 2,000 small gzip reports.
  const feeding = feedSlices(engine, input, () => streamEnded);
  // The output is read below; a failure of the engine surfaces there as its error.
  feeding.catch(() => {});
  try {
    for await (const chunk of engine as AsyncIterable<Buffer>) {
      counter.add(chunk.length, engine.bytesWritten);
      result.crc32 = zlib.crc32(chunk, result.crc32);
      result.outputBytes += chunk.length;
      yield chunk;
    }
    await feeding;
  } finally {
    engine.destroy();
  }
  result.consumedBytes = engine.bytesWritten;
}

function corruptGzip(label: string, problem: string, cause?: unknown): ReportInputError {
  return new ReportInputError(
    'corrupt_gzip',
    `${label} is not a valid gzip file: ${problem}. Send the report again or upload the XML itself.`,
    { cause },
  );
}

/** Returns the length of the RFC 1952 member header that starts at offset. */
export function readGzipHeaderLength(input: Buffer, offset: number, label: string): number {
  const truncated = () => corruptGzip(label, 'the data ends inside a member header');
  if (input.length < offset + 10) throw truncated();
  const method = input[offset + 2];
  const flags = input[offset + 3] ?? 0;
  if (method !== 8) throw corruptGzip(label, `compression method ${method} is not deflate (8)`);
  if ((flags & GZIP_RESERVED_FLAGS) !== 0)
    throw corruptGzip(label, 'reserved header flags are set');

  let position = offset + 10;
  if (flags & GZIP_FLAG_EXTRA) {
    if (input.length < position + 2) throw truncated();
    position += 2 + input.readUInt16LE(position);
  }
  for (const flag of [GZIP_FLAG_NAME, GZIP_FLAG_COMMENT]) {
    if ((flags & flag) === 0) continue;
    const terminator = input.indexOf(0, position);
    if (terminator < 0) throw truncated();
    position = terminator + 1;
  }
  if (flags & GZIP_FLAG_HCRC) position += 2;
  if (position > input.length) throw truncated();
  return position - offset;
}

export function isGzipMemberStart(input: Buffer, offset: number): boolean {
  return input[offset] === 0x1f && input[offset + 1] === 0x8b && input[offset + 2] === 8;
}

/**
 * Add a warning about the bytes after the last gzip member, unless they are only white space
 * (Mimecast, for one, appends a CRLF). They are not read, because they start no member.
 */
export function warnOfTrailingBytes(
  input: Buffer,
  offset: number,
  label: string,
  budget: ExtractionBudget,
): void {
  const rest = input.subarray(offset);
  if (rest.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0d || byte === 0x0a)) {
    return;
  }
  budget.inputWarnings.push(
    `Ignored ${rest.length} bytes after the end of the gzip data of ${label}: they start no gzip member, so they are not part of the report.`,
  );
}

/**
 * Decompresses gzip data of one or more members (RFC 1952 allows concatenated members, and
 * their outputs are joined) and yields the output as it is made, member by member. Bytes after
 * the last complete member that do not start another member are ignored: Mimecast, for one,
 * appends a CRLF to its gzip attachments. Each member's CRC-32 and length are checked when its
 * output ends, so a damaged member fails after its output has been yielded.
 */
export async function* gunzipStream(
  input: Buffer,
  label: string,
  budget: ExtractionBudget,
): AsyncGenerator<Buffer> {
  const counter = budget.startLayer(label, input.length);
  let offset = 0;
  let members = 0;

  while (offset < input.length) {
    if (members > 0) {
      if (!isGzipMemberStart(input, offset)) {
        warnOfTrailingBytes(input, offset, label, budget);
        break;
      }
      budget.addFile(`gzip member ${members + 1} of ${label}`);
    }
    const headerLength = readGzipHeaderLength(input, offset, label);
    const bodyStart = offset + headerLength;

    const result: InflateResult = { consumedBytes: 0, outputBytes: 0, crc32: 0 };
    try {
      yield* inflateCounted(
        zlib.createInflateRaw(INFLATE_OPTIONS),
        input.subarray(bodyStart),
        counter,
        result,
      );
    } catch (error) {
      if (error instanceof ReportInputError) throw error;
      const problem =
        isZlibError(error) && error.code === 'Z_BUF_ERROR'
          ? 'the data ends before the compressed stream does'
          : 'the compressed stream is damaged';
      throw corruptGzip(label, problem, error);
    }

    const trailerStart = bodyStart + result.consumedBytes;
    if (input.length < trailerStart + GZIP_TRAILER_BYTES) {
      throw corruptGzip(label, 'the data ends before the CRC-32 and length trailer');
    }
    if (input.readUInt32LE(trailerStart) !== result.crc32) {
      throw corruptGzip(label, 'the CRC-32 of the decompressed data does not match');
    }
    if (input.readUInt32LE(trailerStart + 4) !== result.outputBytes % 2 ** 32) {
      throw corruptGzip(label, 'the decompressed length does not match the trailer');
    }
    members += 1;
    offset = trailerStart + GZIP_TRAILER_BYTES;
  }
}

/** Decompresses an RFC 1950 zlib stream, which some reporters send instead of gzip. */
export async function* inflateZlibStream(
  input: Buffer,
  label: string,
  budget: ExtractionBudget,
): AsyncGenerator<Buffer> {
  const counter = budget.startLayer(label, input.length);
  const result: InflateResult = { consumedBytes: 0, outputBytes: 0, crc32: 0 };
  try {
    yield* inflateCounted(zlib.createInflate(INFLATE_OPTIONS), input, counter, result);
  } catch (error) {
    if (error instanceof ReportInputError) throw error;
    throw new ReportInputError(
      'corrupt_gzip',
      `${label} is not a valid zlib stream (${error instanceof Error ? error.message : 'unknown error'}); ` +
        'send the report again as gzip or as plain XML.',
      { cause: error },
    );
  }
}
