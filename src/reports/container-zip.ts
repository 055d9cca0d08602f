import type { Readable } from 'node:stream';

import type yauzl from 'yauzl';

import type { ExtractionBudget } from './container-budget.ts';
import { MembersNotReadError, quoteForMessage, ReportInputError } from './report-input-error.ts';

export interface ZipMember {
  name: string;
  /** The member's bytes as they are inflated; read each member to its end before the next. */
  chunks: AsyncIterable<Buffer>;
  /** The names of the file members after this one, listed when reading stops at this one. */
  laterNames: string[];
}

const STORED = 0;
const DEFLATED = 8;

function corruptZip(label: string, problem: string, cause?: unknown): ReportInputError {
  return new ReportInputError(
    'corrupt_zip',
    `${label} is not a valid zip archive: ${problem.replace(/[.\s]+$/, '')}. Send the report again or upload the XML itself.`,
    { cause },
  );
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function openZip(input: Buffer, label: string): Promise<yauzl.ZipFile> {
  // yauzl is loaded at the first zip archive. Loading it took about 0.03 s of CPU time, a quarter
  // of the start of a process that parses reports, and most reports come as gzip or plain XML.
  const { default: zipReader } = await import('yauzl');
  try {
    // decodeStrings makes yauzl reject absolute member names and names that climb out with "..".
    // Members are never written to disk, but only a crafted archive has such a name.
    return await zipReader.fromBufferPromise(input, {
      lazyEntries: true,
      decodeStrings: true,
      validateEntrySizes: true,
      strictFileNames: false,
    });
  } catch (error) {
    throw corruptZip(label, describeError(error), error);
  }
}

async function listEntries(zipfile: yauzl.ZipFile, label: string): Promise<yauzl.Entry[]> {
  const entries: yauzl.Entry[] = [];
  try {
    for await (const entry of zipfile.eachEntry()) entries.push(entry);
  } catch (error) {
    throw corruptZip(label, describeError(error), error);
  }
  return entries;
}

/**
 * Rejects archives whose members share compressed bytes, the trick behind overlapping-entry zip
 * bombs. The check is conservative: it compares each member's data range without its local
 * header, so it never flags a well-formed archive.
 */
function checkNoOverlap(entries: yauzl.Entry[], label: string): void {
  const sorted = [...entries].sort(
    (a, b) => a.relativeOffsetOfLocalHeader - b.relativeOffsetOfLocalHeader,
  );
  for (let index = 1; index < sorted.length; index += 1) {
    const previous = sorted[index - 1] as yauzl.Entry;
    const current = sorted[index] as yauzl.Entry;
    const previousEnd = previous.relativeOffsetOfLocalHeader + previous.compressedSize;
    if (previousEnd > current.relativeOffsetOfLocalHeader) {
      throw corruptZip(
        label,
        `members ${quoteForMessage(previous.fileName)} and ${quoteForMessage(current.fileName)} ` +
          'overlap, which only a crafted archive does',
      );
    }
  }
}

/**
 * Yields the bytes of one member as yauzl inflates them, counted against the budget. yauzl
 * checks while streaming that the member yields exactly its declared size, and the counter stops
 * it at the budget even if the declared size lies.
 */
async function* readEntry(
  zipfile: yauzl.ZipFile,
  entry: yauzl.Entry,
  memberLabel: string,
  budget: ExtractionBudget,
): AsyncGenerator<Buffer> {
  const counter = budget.startLayer(memberLabel, entry.compressedSize);
  let stream: Readable;
  try {
    stream = await zipfile.openReadStreamPromise(entry);
  } catch (error) {
    throw corruptZip(memberLabel, describeError(error), error);
  }
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      counter.add(chunk.length);
      yield chunk;
    }
  } catch (error) {
    if (error instanceof ReportInputError) throw error;
    throw corruptZip(memberLabel, describeError(error), error);
  } finally {
    stream.destroy();
  }
}

/** Checks one member's entry against the limits before it is read. */
function checkEntry(entry: yauzl.Entry, memberLabel: string, budget: ExtractionBudget): void {
  if (entry.isEncrypted()) {
    throw new ReportInputError(
      'unsupported_format',
      `${memberLabel} is encrypted; send the report without a password.`,
    );
  }
  if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED) {
    throw new ReportInputError(
      'unsupported_format',
      `${memberLabel} uses compression method ${entry.compressionMethod}; only stored and ` +
        'deflate members are read, so send the report as gzip or plain XML.',
    );
  }
  budget.addFile(memberLabel);
  budget.checkDeclaredSize(memberLabel, entry.uncompressedSize, entry.compressedSize);
}

/**
 * Yields every file member of a zip archive held in memory, skipping directory entries, each
 * with its bytes as a stream. Limits are checked on the central directory first (member count,
 * declared sizes and ratios, overlap), on each member's entry before it is read (encryption,
 * compression method), and then again on the bytes as they are inflated.
 */
export async function* readZipMembers(
  input: Buffer,
  label: string,
  budget: ExtractionBudget,
): AsyncGenerator<ZipMember> {
  const zipfile = await openZip(input, label);
  try {
    // Directory entries count here too, so that an archive of 100,000 empty folders is
    // rejected without walking it.
    if (zipfile.entryCount > budget.limits.maxFiles) {
      throw new ReportInputError(
        'too_many_files',
        `${label} lists ${zipfile.entryCount} members, more than the limit of ` +
          `${budget.limits.maxFiles}; send each report in its own file or archive.`,
      );
    }
    const entries = await listEntries(zipfile, label);
    checkNoOverlap(entries, label);

    const files = entries.filter((entry) => !entry.fileName.endsWith('/'));
    for (const [index, entry] of files.entries()) {
      const laterNames = files.slice(index + 1).map((later) => later.fileName);
      const memberLabel = `zip member ${quoteForMessage(entry.fileName)}`;
      try {
        checkEntry(entry, memberLabel, budget);
      } catch (error) {
        if (!(error instanceof ReportInputError)) throw error;
        throw new MembersNotReadError(error, entry.fileName, laterNames);
      }
      const chunks = readEntry(zipfile, entry, memberLabel, budget);
      yield { name: entry.fileName, chunks, laterNames };
    }
  } finally {
    zipfile.close();
  }
}
