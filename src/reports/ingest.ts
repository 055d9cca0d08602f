import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database, Queryable, Transaction } from '../db/database.ts';
import { findDomainByName } from '../platform/domains.ts';
import {
  MAX_REPAIR_BYTES,
  parseAggregateReport,
  parseAggregateStream,
  type AggregateParseLimits,
  type ParsedAggregateReport,
} from './aggregate-parser.ts';
import { AggregateReportWriter, storeAggregateReport } from './aggregate-report-writer.ts';
import { formatBytes } from './container-budget.ts';
import { detectContent } from './container-detect.ts';
import {
  DEFAULT_CONTAINER_LIMITS,
  streamDocuments,
  type ContainerLimits,
  type StreamedDocument,
} from './containers.ts';
import { storeFailureReport, type StoredFailureReport } from './failure-report-store.ts';
import { parseMimeMessage } from './mime-entity.ts';
import { isFailureReportMail, readFailureReport } from './parse-failure-report.ts';
import { storeRejectedInput, type ReceivedVia } from './rejected-input-store.ts';
import { MembersNotReadError, quoteForMessage, ReportInputError } from './report-input-error.ts';
import type { StoredAggregateReport } from './report-store.ts';

/** Called inside the transaction that stored a new aggregate report. */
export type AggregateReportStoredListener = (
  tx: Transaction,
  report: StoredAggregateReport,
) => Promise<void>;

/** Called inside the transaction that stored a new failure report. */
export type FailureReportStoredListener = (
  tx: Transaction,
  report: StoredFailureReport,
) => Promise<void>;

export type ReportKind = 'aggregate' | 'failure';

export type DocumentOutcome =
  | {
      kind: ReportKind;
      name: string;
      layers: string[];
      status: 'stored';
      reportId: string;
      domain: string;
      monitored: boolean;
    }
  | {
      kind: ReportKind;
      name: string;
      layers: string[];
      status: 'duplicate';
      reportId: string;
      domain: string;
    }
  | {
      kind: ReportKind;
      name: string;
      layers: string[];
      status: 'rejected';
      code: string;
      reason: string;
      rejectedInputId: string;
    };

export interface IngestResult {
  documents: DocumentOutcome[];
  stored: number;
  duplicates: number;
  rejected: number;
  /** Set when the input as a whole was rejected, before any report in it was read. */
  inputRejection?: { code: string; reason: string; rejectedInputId: string };
  /** One sentence per zip member that was skipped because it carries no report. */
  warnings?: string[];
  /**
   * Set when a rejection stopped reading the input after some of its reports were read, so the
   * input was stored only in part: the reason, and the id of the rejected input kept for it.
   */
  storedInPart?: { code: string; reason: string; rejectedInputId: string };
}

/** The origin of an input, stored with it when it is rejected. */
export interface IngestSource {
  via: ReceivedVia;
  /** A file name, an IMAP mailbox and UID, or the SMTP envelope sender. */
  origin: string;
}

export interface IngestOptions {
  limits?: Partial<ContainerLimits>;
  /** Limits of one aggregate report document; the defaults are those of parseAggregateStream. */
  parseLimits?: Partial<AggregateParseLimits>;
  /** Whether the report mail of a failure report is kept as received; default false. */
  keepFailureMessages?: boolean;
  /** How many bytes of a rejected input are kept; default 1 MiB. */
  rejectedKeepBytes?: number;
}

const DEFAULT_REJECTED_KEEP_BYTES = 1024 * 1024;

/** The name messages use for an input, by the way it came. */
const INPUT_LABELS: Record<ReceivedVia, string> = {
  upload: 'the upload',
  smtp: 'the mail received over SMTP',
  imap: 'the mail read from IMAP',
  folder: 'the watched file',
};

/**
 * Recognise, parse and store aggregate and failure reports, whichever way they arrive. The
 * HTTP upload and every receiver (SMTP, IMAP, watched folder) end here, so one report that
 * arrives by two paths is stored once. Input that is rejected is stored for inspection with its
 * reason instead of raising a ReportInputError, so only a failure of the database raises.
 */
export class ReportIngestService {
  private readonly aggregateListeners: AggregateReportStoredListener[] = [];
  private readonly failureListeners: FailureReportStoredListener[] = [];
  private readonly limits: Partial<ContainerLimits>;
  private readonly parseLimits: Partial<AggregateParseLimits>;
  private readonly keepFailureMessages: boolean;
  private readonly rejectedKeepBytes: number;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    options: IngestOptions = {},
  ) {
    this.limits = options.limits ?? {};
    this.parseLimits = options.parseLimits ?? {};
    this.keepFailureMessages = options.keepFailureMessages ?? false;
    this.rejectedKeepBytes = options.rejectedKeepBytes ?? DEFAULT_REJECTED_KEEP_BYTES;
  }

  onAggregateReportStored(listener: AggregateReportStoredListener): void {
    this.aggregateListeners.push(listener);
  }

  onFailureReportStored(listener: FailureReportStoredListener): void {
    this.failureListeners.push(listener);
  }

  /**
   * Store every report in the input for the account. accountId is null only for a mail that
   * could not be tied to an account, which is rejected and kept for the operator.
   * maxInputBytes overrides the configured input limit (receivers of mail allow larger input).
   */
  async receive(
    accountId: string | null,
    input: Buffer,
    source: IngestSource,
    options: { maxInputBytes?: number } = {},
  ): Promise<IngestResult> {
    const limits: Partial<ContainerLimits> = {
      ...this.limits,
      ...(options.maxInputBytes ? { maxInputBytes: options.maxInputBytes } : {}),
    };
    let result: IngestResult;
    try {
      if (accountId === null) {
        throw new ReportInputError(
          'unsupported_format',
          'The mail is addressed to no receiving address of any account, so it belongs to no one.',
        );
      }
      result = await this.receiveForAccount(accountId, input, source, limits);
    } catch (error) {
      if (!(error instanceof ReportInputError)) throw error;
      const rejected = await this.storeRejection(accountId, input, source, error);
      result = {
        documents: [],
        stored: 0,
        duplicates: 0,
        rejected: 1,
        inputRejection: { code: error.code, reason: error.message, rejectedInputId: rejected },
      };
    }
    this.logger.info(
      {
        accountId,
        receivedVia: source.via,
        origin: source.origin,
        stored: result.stored,
        duplicates: result.duplicates,
        rejected: result.rejected,
      },
      'received report input',
    );
    return result;
  }

  private async receiveForAccount(
    accountId: string,
    input: Buffer,
    source: IngestSource,
    limits: Partial<ContainerLimits>,
  ): Promise<IngestResult> {
    const maxInputBytes = limits.maxInputBytes ?? DEFAULT_CONTAINER_LIMITS.maxInputBytes;
    if (input.length > maxInputBytes) {
      throw new ReportInputError(
        'too_large',
        `The input is ${formatBytes(input.length)}, more than the limit of ` +
          `${formatBytes(maxInputBytes)}; a DMARC report is far smaller, so check the file.`,
      );
    }

    if (input.length > 0 && detectContent(input).kind === 'mail') {
      const root = parseMimeMessage(input);
      if (isFailureReportMail(root)) {
        const outcome = await this.storeFailure(accountId, root, input, source);
        return summarise([outcome]);
      }
    }

    const outcomes: DocumentOutcome[] = [];
    const inputWarnings: string[] = [];
    let current: StreamedDocument | null = null;
    let storedInPart: IngestResult['storedInPart'];
    try {
      let index = 0;
      const label = INPUT_LABELS[source.via];
      for await (const document of streamDocuments(input, limits, inputWarnings, label)) {
        current = document;
        const reread = () => rereadDocument(input, limits, index);
        outcomes.push(await this.storeAggregate(accountId, document, source, reread));
        index += 1;
      }
    } catch (error) {
      // With nothing stored yet the whole input is rejected, as receive does for any error.
      if (!(error instanceof ReportInputError) || outcomes.length === 0) throw error;
      // The documents before this one are stored, so only the rest of the input is rejected.
      const partial = new ReportInputError(
        error.code,
        `The input was stored only in part: reading stopped after its first ${outcomes.length} ` +
          `reports, and nothing after them was stored. ${error.message}`,
      );
      const rejectedInputId = await this.storeRejection(accountId, input, source, partial);
      storedInPart = { code: error.code, reason: partial.message, rejectedInputId };
      outcomes.push(...notStoredOutcomes(error, current, rejectedInputId));
    }
    const summary = storedInPart ? { ...summarise(outcomes), storedInPart } : summarise(outcomes);
    if (inputWarnings.length > 0) {
      await this.addInputWarnings(accountId, outcomes, inputWarnings);
      return { ...summary, warnings: inputWarnings };
    }
    return summary;
  }

  /**
   * Add the warnings about the input (skipped zip members, bytes ignored after gzip data) to
   * every report stored from it, and log them, since a skipped member may be a report in a format
   * dmarcdesk does not read.
   */
  private async addInputWarnings(
    accountId: string,
    outcomes: DocumentOutcome[],
    warnings: string[],
  ): Promise<void> {
    const storedIds = outcomes.flatMap((outcome) =>
      outcome.kind === 'aggregate' && outcome.status === 'stored' ? [outcome.reportId] : [],
    );
    if (storedIds.length > 0) {
      await this.db.query(
        `UPDATE aggregate_reports SET warnings = warnings || $2::jsonb
          WHERE account_id = $1 AND id = ANY($3::uuid[])`,
        [accountId, JSON.stringify(warnings), storedIds],
      );
    }
    this.logger.warn(
      { accountId, reportIds: storedIds, skipped: warnings.length },
      'skipped zip members that carry no report',
    );
  }

  private async storeFailure(
    accountId: string,
    root: ReturnType<typeof parseMimeMessage>,
    input: Buffer,
    source: IngestSource,
  ): Promise<DocumentOutcome> {
    const parsed = readFailureReport(root, input);
    const name = source.origin;
    const layers = ['mail', 'feedback-report'];
    return this.db.transaction(async (tx) => {
      const domainId = await findMonitoredDomain(tx, accountId, parsed.reportedDomain);
      const outcome = await storeFailureReport(tx, {
        accountId,
        domainId,
        parsed,
        receivedVia: source.via,
        rawMessage: this.keepFailureMessages ? input : null,
      });
      if (outcome.status === 'duplicate') {
        return {
          kind: 'failure',
          name,
          layers,
          status: 'duplicate',
          reportId: outcome.existingId,
          domain: parsed.reportedDomain,
        };
      }
      for (const listener of this.failureListeners) await listener(tx, outcome.report);
      return {
        kind: 'failure',
        name,
        layers,
        status: 'stored',
        reportId: outcome.report.id,
        domain: parsed.reportedDomain,
        monitored: domainId !== null,
      };
    });
  }

  /**
   * Parse one aggregate report document as it is decompressed and store it in one transaction,
   * its records in batches as they are read. A document the parser rejects rolls back and is
   * kept as a rejected input with its first bytes. Damage found by the decompressor is thrown on,
   * since it is a fault of the container rather than of this report.
   */
  private async storeAggregate(
    accountId: string,
    document: StreamedDocument,
    source: IngestSource,
    reread: () => Promise<Buffer | null>,
  ): Promise<DocumentOutcome> {
    const { name, layers } = document;
    const reading = new DocumentReading(document.chunks, this.rejectedKeepBytes);
    try {
      // NOTE: on PGlite this transaction takes the only connection, so a large report delays
      // every other query until it commits (about 20 s for 190,000 records).
      return await this.db.transaction(async (tx) => {
        const writer = new AggregateReportWriter(tx, { accountId, receivedVia: source.via });
        let monitored = false;
        const summary = await parseAggregateStream(
          reading.chunks(),
          {
            header: async (header) => {
              const domain = await findDomainByName(tx, accountId, header.policy.domain);
              monitored = domain !== null;
              await writer.begin(header, domain?.id ?? null);
            },
            records: (batch) => writer.add(batch),
          },
          this.parseLimits,
        );
        const outcome = await writer.finish(summary, reading.sha256());
        const domain = summary.policy.domain;
        if (outcome.status === 'duplicate') {
          const reportId = outcome.existingId;
          return { kind: 'aggregate', name, layers, status: 'duplicate', reportId, domain };
        }
        for (const listener of this.aggregateListeners) await listener(tx, outcome.report);
        const reportId = outcome.report.id;
        return { kind: 'aggregate', name, layers, status: 'stored', reportId, domain, monitored };
      });
    } catch (thrown) {
      const error = thrown === reading.sourceError ? thrown : asValueRejection(thrown);
      if (error === reading.sourceError || !(error instanceof ReportInputError)) throw error;
      const repaired =
        error.code === 'not_well_formed' && reading.bytesRead <= MAX_REPAIR_BYTES
          ? await this.storeRepaired(accountId, document, source, await reread())
          : null;
      if (repaired) return repaired;
      const origin = document.name === 'upload' ? source.origin : `${source.origin} > ${name}`;
      // NOTE: a document rejected midway was not read further, so its size is the bytes read.
      const rejectedInputId = await this.storeRejection(
        accountId,
        reading.head(),
        { ...source, origin },
        error,
        reading.bytesRead,
      );
      return {
        kind: 'aggregate',
        name,
        layers,
        status: 'rejected',
        code: error.code,
        reason: error.message,
        rejectedInputId,
      };
    }
  }

  /**
   * Store a small document that failed the strict streaming parse, read whole from the input
   * again, if parseAggregateReport can read it with stray "<" and "&" escaped. Returns null when
   * it cannot, so that the strict parse's rejection is kept.
   */
  private async storeRepaired(
    accountId: string,
    document: StreamedDocument,
    source: IngestSource,
    bytes: Buffer | null,
  ): Promise<DocumentOutcome | null> {
    if (bytes === null) return null;
    let parsed: ParsedAggregateReport;
    try {
      parsed = parseAggregateReport(bytes, this.parseLimits);
    } catch (error) {
      if (error instanceof ReportInputError) return null;
      throw error;
    }
    const { name, layers } = document;
    const domain = parsed.policy.domain;
    return this.db.transaction(async (tx) => {
      const found = await findDomainByName(tx, accountId, domain);
      const outcome = await storeAggregateReport(tx, {
        accountId,
        domainId: found?.id ?? null,
        parsed,
        contentSha256: createHash('sha256').update(bytes).digest('hex'),
        receivedVia: source.via,
      });
      if (outcome.status === 'duplicate') {
        const reportId = outcome.existingId;
        return { kind: 'aggregate', name, layers, status: 'duplicate', reportId, domain };
      }
      for (const listener of this.aggregateListeners) await listener(tx, outcome.report);
      const reportId = outcome.report.id;
      const monitored = found !== null;
      return { kind: 'aggregate', name, layers, status: 'stored', reportId, domain, monitored };
    });
  }

  /**
   * Store a rejected input for inspection and return its id. Receivers call it for input they
   * reject before reading it whole (a mail over the size limit); sizeBytes is then its full size.
   */
  async storeRejection(
    accountId: string | null,
    bytes: Buffer,
    source: IngestSource,
    error: ReportInputError,
    sizeBytes?: number,
  ): Promise<string> {
    const stored = await storeRejectedInput(this.db, {
      accountId,
      receivedVia: source.via,
      origin: source.origin,
      reasonCode: error.code,
      reason: error.message,
      bytes,
      keepBytes: this.rejectedKeepBytes,
      ...(sizeBytes !== undefined ? { sizeBytes } : {}),
    });
    this.logger.warn(
      {
        accountId,
        receivedVia: source.via,
        origin: source.origin,
        code: error.code,
        reason: error.message,
        rejectedInputId: stored.id,
      },
      'rejected report input',
    );
    return stored.id;
  }
}

/**
 * Passes a document's bytes on while keeping what ingest needs of them afterwards: their SHA-256,
 * their count, the first keepBytes for a rejection, and the error if the source itself failed.
 */
class DocumentReading {
  bytesRead = 0;
  sourceError: unknown = undefined;
  private readonly hash = createHash('sha256');
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;

  constructor(
    private readonly source: AsyncIterable<Buffer>,
    private readonly keepBytes: number,
  ) {}

  async *chunks(): AsyncGenerator<Buffer> {
    const iterator = this.source[Symbol.asyncIterator]();
    try {
      while (true) {
        let next: IteratorResult<Buffer>;
        try {
          next = await iterator.next();
        } catch (error) {
          this.sourceError = error;
          throw error;
        }
        if (next.done) return;
        this.take(next.value);
        yield next.value;
      }
    } finally {
      await iterator.return?.();
    }
  }

  private take(chunk: Buffer): void {
    this.bytesRead += chunk.length;
    this.hash.update(chunk);
    if (this.keptBytes < this.keepBytes) {
      const part = chunk.subarray(0, this.keepBytes - this.keptBytes);
      this.kept.push(Buffer.from(part));
      this.keptBytes += part.length;
    }
  }

  sha256(): string {
    return this.hash.digest('hex');
  }

  head(): Buffer {
    return Buffer.concat(this.kept);
  }
}

/**
 * Reads the document at `index` of the input whole, decompressing it again, or returns null when
 * it is larger than MAX_REPAIR_BYTES.
 */
async function rereadDocument(
  input: Buffer,
  limits: Partial<ContainerLimits>,
  index: number,
): Promise<Buffer | null> {
  let position = 0;
  for await (const document of streamDocuments(input, limits)) {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of document.chunks) {
      if (position !== index) continue;
      size += chunk.length;
      if (size > MAX_REPAIR_BYTES) return null;
      parts.push(chunk);
    }
    if (position === index) return Buffer.concat(parts);
    position += 1;
  }
  return null;
}

/**
 * Lists what a rejection midway through an input left unstored: the member where reading
 * stopped, with the reason, and each member after it, which was not read.
 */
function notStoredOutcomes(
  error: ReportInputError,
  current: StreamedDocument | null,
  rejectedInputId: string,
): DocumentOutcome[] {
  const base = {
    kind: 'aggregate',
    status: 'rejected',
    code: error.code,
    rejectedInputId,
  } as const;
  if (!(error instanceof MembersNotReadError)) {
    const name = current?.name ?? 'upload';
    return [{ ...base, name, layers: current?.layers ?? [], reason: error.message }];
  }
  // The unread members were never opened, so their layers are unknown.
  const layers = current?.name === error.member ? current.layers : [];
  const unreadReason = `Not read, because reading stopped at ${quoteForMessage(error.member)}: ${error.reason.message}`;
  return [
    { ...base, name: error.member, layers, reason: error.reason.message },
    ...error.unreadMembers.map((name) => ({ ...base, name, layers: [], reason: unreadReason })),
  ];
}

function summarise(outcomes: DocumentOutcome[]): IngestResult {
  return {
    documents: outcomes,
    stored: outcomes.filter((outcome) => outcome.status === 'stored').length,
    duplicates: outcomes.filter((outcome) => outcome.status === 'duplicate').length,
    rejected: outcomes.filter((outcome) => outcome.status === 'rejected').length,
  };
}

/**
 * Find the monitored domain a failure report is about: the reported domain itself, or the
 * nearest parent that a customer monitors, since failure reports name the From domain, which
 * is often a subdomain (mail.example.com) of the monitored one.
 */
async function findMonitoredDomain(
  db: Queryable,
  accountId: string,
  reportedDomain: string,
): Promise<string | null> {
  const exact = await findDomainByName(db, accountId, reportedDomain);
  if (exact) return exact.id;
  const labels = reportedDomain.split('.');
  const parents = labels.slice(1, -1).map((_, index) => labels.slice(index + 1).join('.'));
  if (parents.length === 0) return null;
  const [row] = await db.query<{ id: string }>(
    `SELECT id FROM domains WHERE account_id = $1 AND name = ANY($2::text[])
      ORDER BY length(name) DESC LIMIT 1`,
    [accountId, parents],
  );
  return row?.id ?? null;
}

/**
 * Turn a database "data exception" (SQLSTATE class 22, such as a date or number out of range)
 * raised while storing a report into a rejection of that report. Such a value fails the same way
 * on every try, so a sender told to retry by SMTP's 451 would retry it for ever.
 */
function asValueRejection(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('22')) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new ReportInputError(
    'invalid_report',
    `A value of the report cannot be stored (database error ${code}: ${detail}); the file ` +
      'was not stored. Check the report for a date, count or text that is out of range.',
    { cause: error },
  );
}
