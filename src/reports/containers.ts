import { ExtractionBudget, formatBytes } from './container-budget.ts';
import { detectContent, SMTP_TLS_REPORT_DESCRIPTION } from './container-detect.ts';
import { gunzipAtOnce, inflateZlibAtOnce } from './container-inflate-at-once.ts';
import { gunzipStream, inflateZlibStream } from './container-inflate.ts';
import { readMailParts } from './container-mail.ts';
import { readZipMembers, type ZipMember } from './container-zip.ts';
import { MembersNotReadError, quoteForMessage, ReportInputError } from './report-input-error.ts';

export interface ContainerLimits {
  /** Largest accepted input, in bytes; default 25 MiB. */
  maxInputBytes: number;
  /**
   * Largest total of decompressed bytes, in bytes, counting every layer (a gzip inside a zip
   * counts both outputs); default 200 MiB.
   */
  maxExpandedBytes: number;
  /**
   * Largest expanded/compressed ratio of one layer; default 200, while a real DMARC XML gzips
   * about 10 to 30 times. Output under 1 MiB is never rejected for its ratio.
   */
  maxRatio: number;
  /** Most archive members across all archives (zip entries, extra gzip members, mail attachments); default 100. */
  maxFiles: number;
  /** Most containers nested in one another (mail, zip, gzip, zlib); default 3. */
  maxDepth: number;
}

export const DEFAULT_CONTAINER_LIMITS: ContainerLimits = {
  maxInputBytes: 25 * 1024 * 1024,
  maxExpandedBytes: 200 * 1024 * 1024,
  maxRatio: 200,
  maxFiles: 100,
  maxDepth: 3,
};

/** A report document found in an input, with its bytes as a stream. */
export interface StreamedDocument {
  /** The name of the innermost archive member or attachment, or 'upload' for the input itself. */
  name: string;
  /** The layers found from the outside in, such as ['zip', 'gzip', 'xml']. */
  layers: string[];
  /**
   * The document's bytes, decompressed as they are read. Read them to the end, or stop, before
   * asking for the next document: they come from the same decompressors.
   */
  chunks: AsyncIterable<Buffer>;
}

export interface ExtractedDocument {
  /** The name of the innermost archive member or attachment, or 'upload' for the input itself. */
  name: string;
  /** The layers found from the outside in, such as ['zip', 'gzip', 'xml']. */
  layers: string[];
  bytes: Buffer;
}

/**
 * A ReportInputError for content that contains no report, with what was found, so that an archive
 * or mail can list its skipped members briefly.
 */
class NoReportError extends ReportInputError {
  constructor(
    code: 'empty' | 'unsupported_format',
    message: string,
    readonly layers: string[],
    readonly contentDescription: string,
  ) {
    super(code, message);
  }
}

interface ItemName {
  name: string;
  /** The name messages use for this item, such as 'the upload' or 'zip member "a.xml"'. */
  label: string;
  layers: string[];
}

interface Item extends ItemName {
  bytes: Buffer;
}

/**
 * Bytes read from a decompressed stream before its content is judged: enough for the mail header
 * window of detectContent, and far more than the few bytes that tell XML.
 */
const DETECT_BYTES = 16 * 1024 + 1;

/**
 * Unwraps raw XML, gzip (several members and trailing bytes too), zlib, zip (every member) and
 * mail messages (every attachment), nested up to maxDepth containers, detected by content (magic
 * bytes) and never by name, and yields each report document as a stream of bytes. The XML inside
 * a zip member, and inside gzip or zlib data of more than 64 KiB or 1 MiB of output, is
 * decompressed as it is read, so a large report is never held inflated in memory. Smaller gzip
 * and zlib data is inflated whole (see container-inflate-at-once.ts). A container inside
 * another container is read whole before it is opened.
 * Decompression is counted, so bombs are stopped while they expand. Inside an archive or a mail,
 * members of unknown content are skipped, unless no document is left. When the generator
 * finishes or is stopped, one warning per skipped zip member, and per run of bytes ignored after
 * gzip data, is added to `inputWarnings`.
 *
 * A ReportInputError is thrown by the generator for what is wrong before a document starts, and
 * by a document's chunks for damage found while it is decompressed (a bad CRC-32, a truncated
 * stream, a limit passed), so documents yielded before it may already have been read.
 * inputLabel names the input in messages by the way it came, such as "the mail received over SMTP".
 */
export async function* streamDocuments(
  input: Buffer,
  limits: Partial<ContainerLimits> = {},
  inputWarnings?: string[],
  inputLabel = 'the upload',
): AsyncGenerator<StreamedDocument> {
  const resolved: ContainerLimits = { ...DEFAULT_CONTAINER_LIMITS, ...limits };
  if (input.length === 0) {
    throw new ReportInputError('empty', `${inputLabel} is empty; send the report file itself.`);
  }
  if (input.length > resolved.maxInputBytes) {
    throw new ReportInputError(
      'too_large',
      `${inputLabel} is ${formatBytes(input.length)}, more than the limit of ` +
        `${formatBytes(resolved.maxInputBytes)}; a DMARC report is far smaller, so check the file.`,
    );
  }
  const budget = new ExtractionBudget(resolved, inputLabel);
  const root: Item = { name: 'upload', label: inputLabel, layers: [], bytes: input };
  try {
    yield* unwrap(root, budget, 0);
  } finally {
    inputWarnings?.push(...budget.inputWarnings);
  }
}

/**
 * Unwraps every document of an input, as streamDocuments does, and returns each one whole.
 * Any error rejects the whole input.
 *
 * @throws ReportInputError with the code that names the reason.
 */
export async function extractDocuments(
  input: Buffer,
  limits: Partial<ContainerLimits> = {},
): Promise<ExtractedDocument[]> {
  const documents: ExtractedDocument[] = [];
  for await (const document of streamDocuments(input, limits)) {
    const bytes = await readWhole(document.chunks);
    documents.push({ name: document.name, layers: document.layers, bytes });
  }
  return documents;
}

async function* fromBuffer(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

async function readWhole(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/**
 * Reads the first `bytes` bytes of a stream and returns them with the whole stream, those bytes
 * included, to read on from the start.
 */
async function peek(
  chunks: AsyncIterable<Buffer>,
  bytes: number,
): Promise<{ head: Buffer; stream: AsyncIterable<Buffer> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  const taken: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < bytes) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    taken.push(next.value);
    size += next.value.length;
  }
  async function* stream(): AsyncGenerator<Buffer> {
    try {
      while (taken.length > 0) yield taken.shift() as Buffer;
      while (!done) {
        const next = await iterator.next();
        if (next.done) done = true;
        else yield next.value;
      }
    } finally {
      // A reader that stops early closes the decompressor under it.
      if (!done) await iterator.return?.();
    }
  }
  return { head: Buffer.concat(taken), stream: stream() };
}

async function* unwrap(
  item: Item,
  budget: ExtractionBudget,
  depth: number,
): AsyncGenerator<StreamedDocument> {
  const detected = detectContent(item.bytes);
  switch (detected.kind) {
    case 'xml':
      yield { name: item.name, layers: [...item.layers, 'xml'], chunks: fromBuffer(item.bytes) };
      return;
    case 'empty':
      throw new NoReportError(
        'empty',
        `${item.label} contains ${detected.description}; send the DMARC aggregate report itself.`,
        item.layers,
        detected.description,
      );
    case 'unknown':
      if (detected.description === SMTP_TLS_REPORT_DESCRIPTION) {
        throw new NoReportError(
          'unsupported_format',
          `${item.label} is ${SMTP_TLS_REPORT_DESCRIPTION}; dmarcdesk reads only DMARC ` +
            'aggregate and failure reports, so it stores nothing from it.',
          item.layers,
          detected.description,
        );
      }
      if (detected.incompleteMail) {
        throw new NoReportError(
          'unsupported_format',
          `${item.label} is not a complete mail message: it contains ${detected.description}. ` +
            'Send the report mail whole, with its From field and the report attached.',
          item.layers,
          detected.description,
        );
      }
      throw new NoReportError(
        'unsupported_format',
        `${item.label} contains ${detected.description}, not XML, gzip, zip or a mail message; ` +
          'send the DMARC aggregate report as .xml, .xml.gz or .zip.',
        item.layers,
        detected.description,
      );
    default:
      break;
  }

  if (depth >= budget.limits.maxDepth) {
    throw new ReportInputError(
      'nesting_too_deep',
      `${item.label} contains ${detected.description} inside ${item.layers.join(' > ')}, more than ` +
        `${budget.limits.maxDepth} containers deep; send the report with at most one layer of compression.`,
    );
  }

  switch (detected.kind) {
    case 'gzip': {
      const inner = { ...item, layers: [...item.layers, 'gzip'] };
      // Small input is inflated at once when no check can reject it, and streamed otherwise.
      const whole = gunzipAtOnce(item.bytes, item.label, budget);
      if (whole !== null) {
        yield* unwrap({ ...inner, bytes: whole }, budget, depth + 1);
        return;
      }
      yield* unwrapStream(inner, gunzipStream(item.bytes, item.label, budget), budget, depth + 1);
      return;
    }
    case 'zlib': {
      const inner = { ...item, layers: [...item.layers, 'zlib'] };
      const whole = inflateZlibAtOnce(item.bytes, item.label, budget);
      if (whole !== null) {
        yield* unwrap({ ...inner, bytes: whole }, budget, depth + 1);
        return;
      }
      const chunks = inflateZlibStream(item.bytes, item.label, budget);
      yield* unwrapStream(inner, chunks, budget, depth + 1);
      return;
    }
    case 'zip': {
      const members = readZipMembers(item.bytes, item.label, budget);
      yield* unwrapZipMembers(item, members, budget, depth + 1);
      return;
    }
    case 'mail': {
      const parts = await readMailParts(item.bytes, item.label);
      if (parts.some((part) => part.contentType === 'message/feedback-report')) {
        throw new ReportInputError(
          'unsupported_format',
          `${item.label} is a DMARC failure report (it has a message/feedback-report part), ` +
            'not an aggregate report, so it is not read as one.',
        );
      }
      const children = parts.map((part) => {
        const label = `mail attachment ${quoteForMessage(part.name)} (${part.contentType})`;
        budget.addFile(label);
        return { name: part.name, label, layers: [...item.layers, 'mail'], bytes: part.bytes };
      });
      yield* unwrapMembers(item, 'mail message', toStreams(children), budget, depth + 1);
    }
  }
}

/**
 * Judges decompressed content by its first bytes. XML is yielded as the stream itself; any other
 * content (a container inside the container, or no report) is read whole and unwrapped.
 */
async function* unwrapStream(
  item: ItemName,
  chunks: AsyncIterable<Buffer>,
  budget: ExtractionBudget,
  depth: number,
): AsyncGenerator<StreamedDocument> {
  const { head, stream } = await peek(chunks, DETECT_BYTES);
  if (detectContent(head).kind === 'xml') {
    yield { name: item.name, layers: [...item.layers, 'xml'], chunks: stream };
    return;
  }
  yield* unwrap({ ...item, bytes: await readWhole(stream) }, budget, depth);
}

interface StreamedMember extends ItemName {
  chunks: AsyncIterable<Buffer>;
  /** The names of the members after this one, listed when reading stops at this one. */
  laterNames: string[];
}

async function* toStreams(items: Item[]): AsyncGenerator<StreamedMember> {
  for (const [index, item] of items.entries()) {
    const laterNames = items.slice(index + 1).map((later) => later.name);
    yield { ...item, chunks: fromBuffer(item.bytes), laterNames };
  }
}

/**
 * Turns an error about a member into one that also names the members not read after it. An
 * error from a container inside the member already names its own unread members, so the
 * members after this one are added to them.
 */
function stoppedAt(error: ReportInputError, member: StreamedMember): MembersNotReadError {
  if (error instanceof MembersNotReadError) {
    const unread = [...error.unreadMembers, ...member.laterNames];
    return new MembersNotReadError(error.reason, error.member, unread);
  }
  return new MembersNotReadError(error, member.name, member.laterNames);
}

/** Passes a member's document bytes on, naming the unread members if reading them fails. */
async function* stopAtMember(
  chunks: AsyncIterable<Buffer>,
  member: StreamedMember,
): AsyncGenerator<Buffer> {
  try {
    yield* chunks;
  } catch (error) {
    if (error instanceof ReportInputError) throw stoppedAt(error, member);
    throw error;
  }
}

async function* unwrapZipMembers(
  item: Item,
  members: AsyncIterable<ZipMember>,
  budget: ExtractionBudget,
  depth: number,
): AsyncGenerator<StreamedDocument> {
  async function* named(): AsyncGenerator<StreamedMember> {
    for await (const member of members) {
      yield {
        name: member.name,
        label: `zip member ${quoteForMessage(member.name)}`,
        layers: [...item.layers, 'zip'],
        chunks: member.chunks,
        laterNames: member.laterNames,
      };
    }
  }
  yield* unwrapMembers(item, 'zip archive', named(), budget, depth);
}

/**
 * Unwraps every member of an archive or mail. A member that contains no report (unknown content
 * or nothing) is skipped, because mails carry logos and text parts and archives carry read-me
 * files. Limits, corrupt data and nesting stop reading at the member where they are found, with
 * a MembersNotReadError that names it and the members after it.
 */
async function* unwrapMembers(
  container: Item,
  kindName: 'zip archive' | 'mail message',
  children: AsyncIterable<StreamedMember>,
  budget: ExtractionBudget,
  depth: number,
): AsyncGenerator<StreamedDocument> {
  let documents = 0;
  let members = 0;
  const skipped: string[] = [];
  let skippedTlsReports = 0;
  // Entries added here are dropped again when this container turns out to carry no report,
  // because the container that contains it then lists it as one skipped member.
  const warningsBefore = budget.inputWarnings.length;
  for await (const child of children) {
    members += 1;
    try {
      for await (const document of unwrapStream(child, child.chunks, budget, depth)) {
        documents += 1;
        yield { ...document, chunks: stopAtMember(document.chunks, child) };
      }
    } catch (error) {
      if (!(error instanceof ReportInputError)) throw error;
      if (!(error instanceof NoReportError)) throw stoppedAt(error, child);
      const inner = error.layers.slice(child.layers.length);
      const wrapping = inner.length > 0 ? ` inside ${inner.join(' > ')}` : '';
      const description = `${child.label} contains ${error.contentDescription}${wrapping}`;
      skipped.push(description);
      if (kindName === 'zip archive') {
        budget.inputWarnings.push(`Skipped ${description}: it is not a report.`);
      }
      if (error.contentDescription === SMTP_TLS_REPORT_DESCRIPTION) skippedTlsReports += 1;
    }
  }
  if (documents > 0) return;
  budget.inputWarnings.length = warningsBefore;

  if (members === 0) {
    const code = kindName === 'zip archive' ? 'empty' : 'unsupported_format';
    const missing = kindName === 'zip archive' ? 'files' : 'attachments';
    throw new NoReportError(
      code,
      `${container.label} is a ${kindName} with no ${missing}; ` +
        'send the message or archive that carries the DMARC aggregate report.',
      container.layers,
      `a ${kindName} with no ${missing}`,
    );
  }
  if (skipped.length > 0 && skippedTlsReports === skipped.length) {
    throw new NoReportError(
      'unsupported_format',
      `${container.label} carries ${SMTP_TLS_REPORT_DESCRIPTION}; dmarcdesk reads only DMARC ` +
        'aggregate and failure reports, so it stores nothing from it.',
      container.layers,
      SMTP_TLS_REPORT_DESCRIPTION,
    );
  }
  const listed = skipped.slice(0, 3).join('; ');
  const more = skipped.length > 3 ? ` and ${skipped.length - 3} more` : '';
  throw new NoReportError(
    'unsupported_format',
    `${container.label} is a ${kindName} that carries no DMARC aggregate report ` +
      `(${listed}${more}); send the file or message that carries the XML report.`,
    container.layers,
    `a ${kindName} without a report`,
  );
}
