import { AggregateReportParser, DEFAULT_AGGREGATE_PARSE_LIMITS } from './aggregate-stream.ts';
import { formatBytes } from './container-budget.ts';
import { ReportInputError } from './report-input-error.ts';

export {
  DEFAULT_AGGREGATE_PARSE_LIMITS,
  parseAggregateStream,
  type AggregateRecordSink,
  type AggregateStreamOptions,
} from './aggregate-stream.ts';
export { SINGLE_FIELDS } from './aggregate-reader.ts';

export interface ParsedAggregateReport {
  /** 'dmarcbis' when the urn:ietf:params:xml:ns:dmarc-2.0 namespace or a DMARCbis-only field is present. */
  schema: 'rfc7489' | 'dmarcbis';
  version: string | null;
  reporter: {
    orgName: string;
    email: string | null;
    extraContactInfo: string | null;
    generator: string | null;
  };
  reportId: string;
  period: { begin: Date; end: Date };
  /** The <error> elements of report_metadata. */
  errors: string[];
  policy: {
    /** Lower case, without trailing dots, with Unicode labels as A-labels (xn--). */
    domain: string;
    /** The domain as the report wrote it, trimmed. */
    domainRaw: string;
    adkim: string | null;
    aspf: string | null;
    /** '' when the report leaves it out. */
    p: string;
    sp: string | null;
    np: string | null;
    pct: number | null;
    fo: string | null;
    testing: string | null;
    discoveryMethod: string | null;
  };
  records: AggregateRecord[];
  /** One sentence per leniency applied or record skipped; repeats across records are merged. */
  warnings: string[];
}

/** The report-level fields, known before the records: what storing a report needs first. */
export type AggregateReportHeader = Pick<
  ParsedAggregateReport,
  'reporter' | 'reportId' | 'period' | 'policy'
>;

/** Everything of a parsed report but its records, with their number and message total. */
export type AggregateReportSummary = Omit<ParsedAggregateReport, 'records'> & {
  /** Records that could be counted, which is every record not skipped with a warning. */
  recordCount: number;
  /** The sum of the records' counts. */
  messageCount: number;
};

export interface AggregateRecord {
  sourceIp: string;
  count: number;
  /** The schema word; DMARCbis "pass" and unknown words become 'none' (see dispositionRaw). */
  disposition: 'none' | 'quarantine' | 'reject';
  /** The disposition as the report wrote it, trimmed. */
  dispositionRaw: string;
  /** DMARC alignment results of policy_evaluated; anything but pass counts as fail. */
  dkim: 'pass' | 'fail';
  spf: 'pass' | 'fail';
  reasons: { type: string; comment: string | null }[];
  /**
   * Lower case, without trailing dots, with Unicode labels as A-labels (xn--), as the policy
   * domain; the policy domain when the record names none.
   */
  headerFrom: string;
  /** The header_from as the report wrote it, trimmed; '' when the record names none. */
  headerFromRaw: string;
  /** null when the element is absent; '' when present but empty (a null reverse-path). */
  envelopeFrom: string | null;
  envelopeTo: string | null;
  dkimResults: {
    domain: string;
    selector: string | null;
    result: string;
    humanResult: string | null;
  }[];
  /** result keeps "softfail" and other non-pass words; "hardfail" is read as "fail". */
  spfResults: {
    domain: string;
    scope: string | null;
    result: string;
    humanResult: string | null;
  }[];
}

export interface AggregateParseLimits {
  /** Most records accepted in one report; default 1,000,000. */
  maxRecords: number;
  /** Largest accepted document, in bytes; default 200 MiB. */
  maxDocumentBytes: number;
}

/**
 * Largest document read again with stray "<" and "&" escaped after the strict parse failed. The
 * reports that need it are small, and the repair holds the whole text.
 */
export const MAX_REPAIR_BYTES = 4 * 1024 * 1024;

/** Input is written to the parser in slices of this size, so text is made a piece at a time. */
const SLICE_BYTES = 64 * 1024;

/**
 * Parses one DMARC aggregate report (RFC 7489 appendix C or DMARCbis) held in memory and returns
 * it with all its records. It runs the streaming parser of parseAggregateStream, which is the one
 * to use for a report too large to hold its records in memory. Any DOCTYPE is rejected when it is
 * read, before anything after it is parsed, and no entity other than XML's five and character
 * references is ever expanded. Records that cannot be counted are skipped with a warning; every
 * leniency applied adds a warning. A document of at most MAX_REPAIR_BYTES that is not
 * well-formed is read a second time with stray "<" and "&" escaped, and kept with a warning if
 * that parse succeeds.
 *
 * @throws ReportInputError: empty, too_large, unsupported_format (an encoding that cannot be
 *   decoded), not_well_formed, doctype_forbidden, not_a_dmarc_report or invalid_report.
 */
export function parseAggregateReport(
  xml: Buffer,
  limits: Partial<AggregateParseLimits> = {},
): ParsedAggregateReport {
  const maxDocumentBytes =
    limits.maxDocumentBytes ?? DEFAULT_AGGREGATE_PARSE_LIMITS.maxDocumentBytes;
  if (xml.length > maxDocumentBytes) {
    throw new ReportInputError(
      'too_large',
      `The document is ${formatBytes(xml.length)}, more than the limit of ` +
        `${formatBytes(maxDocumentBytes)} for one report.`,
    );
  }
  try {
    return parseWhole(xml, limits, null);
  } catch (error) {
    if (!(error instanceof ReportInputError) || error.code !== 'not_well_formed') throw error;
    if (xml.length > MAX_REPAIR_BYTES) throw error;
    try {
      return parseWhole(xml, limits, { reason: error.message.replace(/\. Send the .*$/, '') });
    } catch {
      // The repair did not help, so the strict parse's error, which names the first fault, stands.
      throw error;
    }
  }
}

function parseWhole(
  xml: Buffer,
  limits: Partial<AggregateParseLimits>,
  repair: { reason: string } | null,
): ParsedAggregateReport {
  const records: AggregateRecord[] = [];
  const parser = new AggregateReportParser((record) => records.push(record), limits, repair);
  for (let offset = 0; offset < xml.length; offset += SLICE_BYTES) {
    parser.write(xml.subarray(offset, offset + SLICE_BYTES));
  }
  const { recordCount: _recordCount, messageCount: _messageCount, ...summary } = parser.end();
  return { ...summary, records };
}
