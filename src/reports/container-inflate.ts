import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

import type { ExtractionBudget, LayerCounter } from './container-budget.ts';
import { ReportInputError } from './report-input-error.ts';

/**
 * Input is fed to the inflater in slices of this size, so that the output counter checks each
 * chunk and can stop a bomb after a few slices instead of after the whole input.
 */
const SLICE_BYTES = 64 * 1024;

const GZIP_FLAG_HCRC = 0x02;
const GZIP_FLAG_EXTRA = 0x04;
const GZIP_FLAG_NAME = 0x08;
const GZIP_FLAG_COMMENT = 0x10;
const GZIP_RESERVED_FLAGS = 0xe0;
const GZIP_TRAILER_BYTES = 8;

interface InflateResult {
  output: Buffer;
  /** Input bytes the inflater used; whatever follows the end of the stream is left unread. */
  consumedBytes: number;
  crc32: number;
}

function isZlibError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'string';
}

/**
 * Inflates one deflate or zlib stream with a byte counter. Bytes after the end of the stream are
 * ignored, and the source stops feeding them once the inflater has ended.
 */
async function inflateCounted(
  engine: zlib.InflateRaw | zlib.Inflate,
  input: Buffer,
  counter: LayerCounter,
): Promise<InflateResult> {
  let streamEnded = false;
  engine.once('end', () => {
    streamEnded = true;
  });
  function* slices(): Generator<Buffer> {
    for (let offset = 0; offset < input.length && !streamEnded; offset += SLICE_BYTES) {
      yield input.subarray(offset, offset + SLICE_BYTES);
    }
  }

  const chunks: Buffer[] = [];
  let crc32 = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        counter.add(chunk.length, engine.bytesWritten);
      } catch (error) {
        callback(error as Error);
        return;
      }
      chunks.push(chunk);
      crc32 = zlib.crc32(chunk, crc32);
      callback();
    },
  });

  await pipeline(Readable.from(slices()), engine, sink);
  return { output: Buffer.concat(chunks), consumedBytes: engine.bytesWritten, crc32 };
}

function corruptGzip(label: string, problem: string, cause?: unknown): ReportInputError {
  return new ReportInputError(
    'corrupt_gzip',
    `${label} is not a valid gzip file: ${problem}. Send the report again or upload the XML itself.`,
    { cause },
  );
}

/** Returns the length of the RFC 1952 member header that starts at offset. */
function readGzipHeaderLength(input: Buffer, offset: number, label: string): number {
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

function isGzipMemberStart(input: Buffer, offset: number): boolean {
  return input[offset] === 0x1f && input[offset + 1] === 0x8b && input[offset + 2] === 8;
}

/**
 * Decompresses gzip data of one or more members (RFC 1952 allows concatenated members, and
 * their outputs are joined). Bytes after the last complete member that do not start another
 * member are ignored: Mimecast, for one, appends a CRLF to its gzip attachments. Each member's
 * CRC-32 and length are checked.
 */
export async function gunzipCounted(
  input: Buffer,
  label: string,
  budget: ExtractionBudget,
): Promise<Buffer> {
  const counter = budget.startLayer(label, input.length);
  const outputs: Buffer[] = [];
  let offset = 0;

  while (offset < input.length) {
    if (outputs.length > 0) {
      if (!isGzipMemberStart(input, offset)) break;
      budget.addFile(`gzip member ${outputs.length + 1} of ${label}`);
    }
    const headerLength = readGzipHeaderLength(input, offset, label);
    const bodyStart = offset + headerLength;

    let result: InflateResult;
    try {
      result = await inflateCounted(zlib.createInflateRaw(), input.subarray(bodyStart), counter);
    } catch (error) {
      if (error instanceof ReportInputError) throw error;
      const truncated = isZlibError(error) && error.code === 'Z_BUF_ERROR';
      const problem = truncated
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
    if (input.readUInt32LE(trailerStart + 4) !== result.output.length % 2 ** 32) {
      throw corruptGzip(label, 'the decompressed length does not match the trailer');
    }
    outputs.push(result.output);
    offset = trailerStart + GZIP_TRAILER_BYTES;
  }
  return outputs.length === 1 ? (outputs[0] as Buffer) : Buffer.concat(outputs);
}

/** Decompresses an RFC 1950 zlib stream, which some reporters send instead of gzip. */
export async function inflateZlibCounted(
  input: Buffer,
  label: string,
  budget: ExtractionBudget,
): Promise<Buffer> {
  const counter = budget.startLayer(label, input.length);
  try {
    const result = await inflateCounted(zlib.createInflate(), input, counter);
    return result.output;
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
