import { createRequire } from 'node:module';

import type * as Saxes from 'saxes';

import type {
  AggregateParseLimits,
  AggregateRecord,
  AggregateReportHeader,
  AggregateReportSummary,
} from './aggregate-parser.ts';
import { FastElementScanner } from './aggregate-fast-scan.ts';
import { AggregateReportReader, NO_ATTRIBUTES } from './aggregate-reader.ts';
import { formatBytes } from './container-budget.ts';
import { finishReportSummary } from './parse-aggregate-metadata.ts';
import { MAX_MESSAGE_COUNT } from './parse-aggregate-record.ts';
import { escapeStrayMarkup } from './parse-xml-repair.ts';
import { XmlTextDecoder } from './parse-xml-text.ts';
import { ReportInputError } from './report-input-error.ts';

// saxes is a CommonJS package. Imported from an ES module, Node.js 20 first scans its source
// for export names with cjs-module-lexer, which took about 0.04 s of CPU time at every start,
// while require() loads it in a few milliseconds.
const { SaxesParser } = createRequire(import.meta.url)('saxes') as typeof Saxes;
type SaxesParser<Options extends Saxes.SaxesOptions> = Saxes.SaxesParser<Options>;

export const DEFAULT_AGGREGATE_PARSE_LIMITS: AggregateParseLimits = {
  maxRecords: 1_000_000,
  maxDocumentBytes: 200 * 1024 * 1024,
};

/** Bytes written to saxes at once; larger chunks are cut, so one write makes a bounded batch. */
const SLICE_BYTES = 64 * 1024;
const DEFAULT_BATCH_SIZE = 500;

// NOTE: broken XML is rejected, never repaired. A report with an unescaped "<" or "&" in a value
// (seen from Veeam) fails here, where parsedmarc re-parses it in lxml's recovery mode.
function notWellFormed(
  parser: SaxesParser<{ xmlns: false }>,
  error: Error,
  ended: boolean,
): ReportInputError {
  // saxes writes "line:column: reason"; the position is given in words instead.
  const reason = error.message.replace(/^[^:]*:?\d+:\d+: /, '').replace(/\.$/, '');
  const unclosed = /^unclosed tag: (.+)$/.exec(reason);
  if (ended && unclosed) {
    return new ReportInputError(
      'not_well_formed',
      `The XML ends at line ${parser.line} before <${unclosed[1]}> is closed, so the file is ` +
        'truncated or damaged; send the report again.',
      { cause: error },
    );
  }
  return new ReportInputError(
    'not_well_formed',
    `The XML is not well-formed at line ${parser.line}, column ${parser.column}: ${reason}. ` +
      'Send the report again or ask the reporter to fix its generator.',
    { cause: error },
  );
}

/**
 * The streaming core of the aggregate report parser. Bytes are written in as they arrive, each
 * record is handed to onRecord as soon as its </record> is read, and nothing of a record is kept
 * after that, so memory does not grow with the report. The header (reporter, report id, period,
 * policy) is available from `header` once the first record opens, for reports that put
 * report_metadata and policy_published first, as the schema orders them.
 */
export class AggregateReportParser {
  private readonly limits: AggregateParseLimits;
  private readonly saxes = new SaxesParser({ xmlns: false, position: true });
  private readonly reader: AggregateReportReader;
  private readonly decoder: XmlTextDecoder;
  /** Warnings of the decoding, kept apart so that their place does not depend on slicing. */
  private readonly documentWarnings: string[] = [];
  private bytes = 0;
  private messageCount = 0;
  private ended = false;
  /**
   * The reader of the next text. In 'sync', saxes is given the text in pieces that end at a ">",
   * until a piece ends right after a start or end tag inside the root, where the fast scanner
   * ('fast') takes over. The scanner hands back to saxes at the first markup it does not read,
   * and saxes syncs again. After the root has closed, and in the repair, saxes reads the rest
   * whole ('saxes').
   */
  private stage: 'sync' | 'fast' | 'saxes';
  private scanner: FastElementScanner | null = null;
  /** The names of the elements that saxes has open, the outermost first. */
  private saxesOpenNames: string[] = [];
  /** Set while saxes is brought to the scanner's open elements, whose events were handled. */
  private replaying = false;
  /** Characters given to saxes, and the count when saxes last read the ">" of a tag. */
  private saxesChars = 0;
  private lastTagEnd = -1;
  /** The whole text, kept only when stray markup is repaired, which needs all of it. */
  private readonly heldText: string[] | null;

  /**
   * With `repair`, the text is held to the end and each "<" or "&" that begins no markup is
   * escaped before it is parsed (see escapeStrayMarkup), so use it only on a document known to
   * be small. `repair.reason` is the strict parse's error, named in the warning. With
   * `fastScan: false`, saxes reads the whole document, as the tests that compare the two paths
   * need; the result is the same either way.
   */
  constructor(
    private readonly onRecord: (record: AggregateRecord) => void,
    limits: Partial<AggregateParseLimits> = {},
    private readonly repair: { reason: string } | null = null,
    options: { fastScan?: boolean } = {},
  ) {
    this.heldText = repair === null ? null : [];
    // The repair parses a small document once, so saxes reads all of it.
    this.stage = repair === null && options.fastScan !== false ? 'sync' : 'saxes';
    this.limits = { ...DEFAULT_AGGREGATE_PARSE_LIMITS, ...limits };
    this.reader = new AggregateReportReader(this, this.limits, {
      record: (record) => {
        this.messageCount += record.count;
        if (this.messageCount > MAX_MESSAGE_COUNT) {
          throw new ReportInputError(
            'invalid_report',
            `The message counts of the report's records add up to more than ` +
              `${MAX_MESSAGE_COUNT}, the largest total dmarcdesk stores exactly; the file was ` +
              "not stored. Check the report's <count> values.",
          );
        }
        this.onRecord(record);
      },
      header: () => {},
    });
    this.decoder = new XmlTextDecoder((message) => this.documentWarnings.push(message));

    const parser = this.saxes;
    const reader = this.reader;
    parser.on('doctype', () => {
      throw new ReportInputError(
        'doctype_forbidden',
        `The document has a DOCTYPE declaration (line ${parser.line}); DMARC reports never need ` +
          'one and it is how entity expansion and external entity attacks start, so the file was rejected.',
      );
    });
    parser.on('opentag', (tag) => {
      if (this.replaying) return;
      this.saxesOpenNames.push(tag.name);
      this.lastTagEnd = parser.position;
      reader.openTag(tag.name, tag.attributes);
    });
    parser.on('text', (text) => reader.addText(text));
    parser.on('cdata', (text) => reader.addText(text));
    parser.on('closetag', () => {
      if (this.replaying) return;
      this.saxesOpenNames.pop();
      this.lastTagEnd = parser.position;
      reader.closeTag();
    });
    parser.on('error', (error) => {
      if (this.ended && reader.isUnclosedWrapper(error)) return;
      throw notWellFormed(parser, error, this.ended);
    });
  }

  /** The line being read, for messages. */
  get line(): number {
    return this.scanner?.line ?? this.saxes.line;
  }

  /** The report-level fields, once the first record has opened after them; null before. */
  get header(): AggregateReportHeader | null {
    return this.reader.header;
  }

  /** The number of records handed to onRecord so far. */
  get recordCount(): number {
    return this.reader.recordCount;
  }

  /**
   * Parses the next bytes of the document. Throws a ReportInputError as soon as the document is
   * known to be unusable; the parser must not be used after that.
   */
  write(bytes: Buffer): void {
    this.bytes += bytes.length;
    if (this.bytes > this.limits.maxDocumentBytes) {
      throw new ReportInputError(
        'too_large',
        `The document is more than ${formatBytes(this.limits.maxDocumentBytes)}, the limit ` +
          'for one report.',
      );
    }
    const text = this.decoder.write(bytes);
    if (this.heldText !== null) this.heldText.push(text);
    else if (text !== '') this.feed(text);
  }

  /** Hands text to saxes or to the fast scanner, whichever reads at this point. */
  private feed(text: string): void {
    let rest: string | null = text;
    while (rest !== null && rest !== '') {
      if (this.stage === 'fast') {
        rest = (this.scanner as FastElementScanner).scan(rest);
        if (rest !== null) this.handToSaxes();
      } else if (this.stage === 'sync') {
        rest = this.syncSaxes(rest);
      } else {
        this.writeSaxes(rest);
        rest = null;
      }
    }
  }

  private writeSaxes(text: string): void {
    this.saxesChars += text.length;
    this.saxes.write(text);
  }

  /**
   * Gives saxes the text up to the first ">" after a "<", then up to the next, and so on, and
   * starts the fast scanner once a piece ends right after a tag inside the root. Returns the
   * text after that piece, for the scanner, or null when saxes was given all of it.
   *
   * A piece never ends inside text outside the root, which saxes checks at the end of each
   * write, so saxes reads the document as it would in whole slices.
   */
  private syncSaxes(text: string): string | null {
    let start = 0;
    while (start < text.length) {
      const open = text.indexOf('<', start);
      const close = open < 0 ? -1 : text.indexOf('>', open + 1);
      if (close < 0) {
        this.writeSaxes(start === 0 ? text : text.slice(start));
        return null;
      }
      this.writeSaxes(text.slice(start, close + 1));
      start = close + 1;
      if (this.saxesOpenNames.length === 0) {
        if (!this.reader.rootSeen) continue;
        // The root has closed: saxes checks what follows it, in one piece.
        this.stage = 'saxes';
        return text.slice(start);
      }
      if (this.lastTagEnd === this.saxesChars && this.startScanner()) return text.slice(start);
    }
    return null;
  }

  /** Starts the fast scanner where saxes stopped, right after a tag inside the root. */
  private startScanner(): boolean {
    const saxes = this.saxes;
    // XML 1.1 allows other characters and line ends than the scanner checks for.
    const version = saxes.xmlDecl.version;
    if (version !== undefined && version !== '1.0') {
      this.stage = 'saxes';
      return false;
    }
    const reader = this.reader;
    this.scanner = new FastElementScanner(this.saxesOpenNames, saxes.line, saxes.column, {
      openTag: (tagName) => reader.openTag(tagName, NO_ATTRIBUTES),
      closeTag: () => reader.closeTag(),
      text: (text) => reader.addText(text),
      wantsText: () => reader.wantsText,
    });
    this.stage = 'fast';
    return true;
  }

  /**
   * Brings saxes to where the scanner stopped: it is given end tags for the elements the
   * scanner closed and start tags for those it opened, with their events ignored, and then
   * the scanner's line and column. It then reads on, and words its errors, as if it had read
   * everything itself.
   */
  private handToSaxes(): void {
    const scanner = this.scanner as FastElementScanner;
    const saxes = this.saxes;
    const before = this.saxesOpenNames;
    const after = scanner.openNames;
    let shared = 0;
    while (shared < before.length && shared < after.length && before[shared] === after[shared]) {
      shared += 1;
    }
    const closing = before
      .slice(shared)
      .reverse()
      .map((name) => `</${name}>`);
    const opening = after.slice(shared).map((name) => `<${name}>`);
    const replay = closing.join('') + opening.join('');
    if (replay !== '') {
      this.replaying = true;
      try {
        this.writeSaxes(replay);
      } finally {
        this.replaying = false;
      }
    }
    saxes.line = scanner.line;
    saxes.column = scanner.column;
    this.saxesOpenNames = [...after];
    this.scanner = null;
    this.stage = 'sync';
  }

  /**
   * Ends the document, checks the report-level fields and returns everything but the records.
   *
   * @throws ReportInputError: empty, not_well_formed (a truncated document), invalid_report.
   */
  end(): AggregateReportSummary {
    if (this.bytes === 0) {
      throw new ReportInputError('empty', 'The document is empty; send the report XML itself.');
    }
    let text = this.decoder.end();
    if (this.heldText !== null) {
      const repaired = escapeStrayMarkup(this.heldText.join('') + text);
      text = repaired.text;
      this.reader.warnings.report(
        `The XML is not well-formed as sent (${this.repair?.reason}); it was read again with ` +
          `${repaired.escaped} "<" or "&" that begin no markup taken as text.`,
      );
    }
    if (text !== '') this.feed(text);
    if (this.scanner !== null) {
      const carried = this.scanner.finish();
      this.handToSaxes();
      if (carried !== '') this.writeSaxes(carried);
    }
    this.stage = 'saxes';
    this.ended = true;
    this.saxes.close();

    const reader = this.reader;
    const header = reader.readHeader();
    return finishReportSummary(
      reader.report,
      header,
      { recordCount: reader.recordCount, messageCount: this.messageCount },
      reader.warnings,
      reader.headerWarnings,
      reader.unknownElementNames,
      this.documentWarnings,
    );
  }
}

/** Receives a report from parseAggregateStream while it is read. */
export interface AggregateRecordSink {
  /** Called once, before the first batch of records. */
  header(header: AggregateReportHeader): Promise<void> | void;
  /** Called with the records in document order, in batches of at most about batchSize. */
  records(batch: AggregateRecord[]): Promise<void> | void;
}

export interface AggregateStreamOptions extends Partial<AggregateParseLimits> {
  /** Records handed to the sink at once; default 500. */
  batchSize?: number;
}

/**
 * Parses one DMARC aggregate report from a stream of bytes, handing the header and then the
 * records in batches to the sink, and waiting for the sink before reading on, so memory stays
 * bounded by the batch size whatever the report's size. Returns the summary, with the warnings,
 * once the document has ended. A report that puts its records before report_metadata or
 * policy_published, against the schema's order, has its records held until the end, when its
 * header is known.
 *
 * @throws ReportInputError as parseAggregateReport does, and whatever the source or sink throws.
 */
export async function parseAggregateStream(
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  sink: AggregateRecordSink,
  options: AggregateStreamOptions = {},
): Promise<AggregateReportSummary> {
  const { batchSize = DEFAULT_BATCH_SIZE, ...limits } = options;
  let pending: AggregateRecord[] = [];
  const parser = new AggregateReportParser((record) => pending.push(record), limits);
  let headerSent = false;

  const deliver = async (header: AggregateReportHeader | null, force: boolean) => {
    if (!headerSent) {
      if (header === null) return;
      headerSent = true;
      await sink.header(header);
    }
    if (pending.length === 0 || (!force && pending.length < batchSize)) return;
    const batch = pending;
    pending = [];
    await sink.records(batch);
  };

  for await (const chunk of source) {
    for (let offset = 0; offset < chunk.length; offset += SLICE_BYTES) {
      parser.write(chunk.subarray(offset, offset + SLICE_BYTES));
      await deliver(parser.header, false);
    }
  }
  const summary = parser.end();
  await deliver(headerOf(summary), true);
  return summary;
}

function headerOf(summary: AggregateReportHeader): AggregateReportHeader {
  return {
    reporter: summary.reporter,
    reportId: summary.reportId,
    period: summary.period,
    policy: summary.policy,
  };
}
