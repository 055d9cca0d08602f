import { SaxesParser, type SaxesTagPlain } from 'saxes';

import { finishReport, type RawReport } from './parse-aggregate-metadata.ts';
import {
  finishRecord,
  newRawRecord,
  type RawAuthResult,
  type RawRecord,
} from './parse-aggregate-record.ts';
import { WarningLog } from './parse-aggregate-warnings.ts';
import { decodeXml } from './parse-xml-text.ts';
import { formatBytes } from './container-budget.ts';
import { ReportInputError } from './report-input-error.ts';

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
    /** Lower-cased. */
    domain: string;
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
  /** Lower-cased, like every domain below. */
  headerFrom: string;
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

export const DEFAULT_AGGREGATE_PARSE_LIMITS: AggregateParseLimits = {
  maxRecords: 1_000_000,
  maxDocumentBytes: 200 * 1024 * 1024,
};

const DMARC_2_NAMESPACE = 'urn:ietf:params:xml:ns:dmarc-2.0';

/** A DMARC report nests six levels; the margin is for extensions. */
const MAX_ELEMENT_DEPTH = 32;
const MAX_ATTRIBUTES = 64;
/** Maximum text length of one field, in UTF-16 code units. */
const MAX_FIELD_CHARS = 64 * 1024;
const MAX_UNKNOWN_NAMES = 10;
/** The path of a stray element that wraps <feedback>; see openRoot. */
const WRAPPER_PATH = '#wrapper';

/** Fields that occur once per report, by path below <feedback>. */
export const SINGLE_FIELDS = new Set([
  'version',
  'report_metadata/version',
  'report_metadata/org_name',
  'report_metadata/email',
  'report_metadata/extra_contact_info',
  'report_metadata/report_id',
  'report_metadata/date_range/begin',
  'report_metadata/date_range/end',
  'report_metadata/generator',
  'policy_published/domain',
  'policy_published/adkim',
  'policy_published/aspf',
  'policy_published/p',
  'policy_published/sp',
  'policy_published/np',
  'policy_published/pct',
  'policy_published/fo',
  'policy_published/testing',
  'policy_published/t',
  'policy_published/discovery_method',
]);

/** Elements that only DMARCbis (RFC 9990 and its drafts) defines. */
const DMARCBIS_FIELDS = new Set([
  'report_metadata/generator',
  'policy_published/np',
  'policy_published/testing',
  'policy_published/t',
  'policy_published/discovery_method',
  'policy_published/psd',
]);

type RecordField =
  | 'sourceIp'
  | 'count'
  | 'disposition'
  | 'dkim'
  | 'spf'
  | 'headerFrom'
  | 'envelopeFrom'
  | 'envelopeTo';
const RECORD_FIELDS: Record<string, RecordField> = {
  'record/row/source_ip': 'sourceIp',
  'record/row/count': 'count',
  'record/row/policy_evaluated/disposition': 'disposition',
  'record/row/policy_evaluated/dkim': 'dkim',
  'record/row/policy_evaluated/spf': 'spf',
  'record/identifiers/header_from': 'headerFrom',
  'record/identifiers/envelope_from': 'envelopeFrom',
  'record/identifiers/envelope_to': 'envelopeTo',
};

const AUTH_FIELDS: Record<string, keyof RawAuthResult> = {
  domain: 'domain',
  selector: 'selector',
  scope: 'scope',
  result: 'result',
  human_result: 'humanResult',
};

const CONTAINERS = new Set([
  'report_metadata',
  'report_metadata/date_range',
  'policy_published',
  'record',
  'record/row',
  'record/row/policy_evaluated',
  'record/row/policy_evaluated/reason',
  'record/identifiers',
  'record/auth_results',
  'record/auth_results/dkim',
  'record/auth_results/spf',
]);

/** Elements read without being kept, and extension points whose content is ignored. */
const IGNORED = new Set([
  'policy_published/psd',
  'policy_published/version_published',
  'extension',
  'extensions',
  'record/extensions',
  'record/extension',
]);

function isLeafPath(path: string): boolean {
  if (SINGLE_FIELDS.has(path) || path in RECORD_FIELDS) return true;
  if (path === 'report_metadata/error') return true;
  if (path === 'record/row/policy_evaluated/reason/type') return true;
  if (path === 'record/row/policy_evaluated/reason/comment') return true;
  const authMatch = /^record\/auth_results\/(dkim|spf)\/(\w+)$/.exec(path);
  return authMatch !== null && (authMatch[2] ?? '') in AUTH_FIELDS;
}

function localName(qualifiedName: string): string {
  const colon = qualifiedName.indexOf(':');
  return colon < 0 ? qualifiedName : qualifiedName.slice(colon + 1);
}

interface OpenElement {
  path: string;
  /** Whether the path is part of the report format, so that unknown children are noted. */
  known: boolean;
}

/**
 * Holds the state of one parse while saxes reports events. Paths are written below the root,
 * such as 'record/row/source_ip', and elements are matched by local name whatever their
 * namespace.
 */
class AggregateReportReader {
  readonly warnings = new WarningLog();
  readonly records: AggregateRecord[] = [];
  readonly report: RawReport = {
    dmarcbisNamespace: false,
    dmarcbisFields: new Set(),
    seen: new Set(),
    values: new Map(),
    errors: [],
  };
  private readonly stack: OpenElement[] = [];
  private readonly unknownNames = new Set<string>();
  private text = '';
  private capturing = false;
  private record: RawRecord | null = null;
  private recordCount = 0;
  private wrapped = false;
  private rootClosed = false;

  constructor(
    private readonly parser: SaxesParser<{ xmlns: false }>,
    private readonly limits: AggregateParseLimits,
  ) {}

  get unknownElementNames(): string[] {
    return [...this.unknownNames];
  }

  openTag(tag: SaxesTagPlain): void {
    const name = localName(tag.name);
    const parent = this.stack.at(-1);
    if (parent === undefined || parent.path === WRAPPER_PATH) {
      this.openRoot(tag, name);
      return;
    }
    if (this.stack.length >= MAX_ELEMENT_DEPTH) {
      throw new ReportInputError(
        'invalid_report',
        `Elements nest more than ${MAX_ELEMENT_DEPTH} levels deep at line ${this.parser.line}, ` +
          'while a DMARC aggregate report nests about six; the file is not a usable report.',
      );
    }
    this.checkAttributes(tag);

    const path = parent.path === '' ? name : `${parent.path}/${name}`;
    const known = parent.known && (CONTAINERS.has(path) || isLeafPath(path));
    // Prefixed elements are namespaced extensions, which DMARCbis allows anywhere in a record.
    const isExtension = IGNORED.has(path) || tag.name.includes(':');
    if (parent.known && !known && !isExtension) this.noteUnknown(name);
    this.stack.push({ path, known });
    // Only known paths are kept, so that a flood of invented element names costs no memory.
    if (known) this.report.seen.add(path);
    if (DMARCBIS_FIELDS.has(path)) this.report.dmarcbisFields.add(name);

    this.startContainer(path);
    this.capturing = known && isLeafPath(path);
    this.text = '';
  }

  private openRoot(tag: SaxesTagPlain, name: string): void {
    if (name === 'schema' && this.stack.length === 0) {
      // IKEA's generator has been seen to put an unclosed <xs:schema ...> start tag before
      // <feedback>; the report inside is complete, so the stray tag is read past.
      this.wrapped = true;
      this.stack.push({ path: WRAPPER_PATH, known: false });
      this.warnings.report(
        `The report is wrapped in a stray <${tag.name}> start tag, which was ignored.`,
      );
      return;
    }
    if (name !== 'feedback') {
      throw new ReportInputError(
        'not_a_dmarc_report',
        `The XML root element is <${tag.name}>, not <feedback>, so this is not a DMARC ` +
          'aggregate report; check that the right file was sent.',
      );
    }
    this.checkAttributes(tag);
    for (const [attribute, value] of Object.entries(tag.attributes)) {
      const declaresNamespace = attribute === 'xmlns' || attribute.startsWith('xmlns:');
      if (declaresNamespace && value.trim() === DMARC_2_NAMESPACE)
        this.report.dmarcbisNamespace = true;
    }
    this.stack.push({ path: '', known: true });
  }

  private checkAttributes(tag: SaxesTagPlain): void {
    const count = Object.keys(tag.attributes).length;
    if (count > MAX_ATTRIBUTES) {
      throw new ReportInputError(
        'invalid_report',
        `Element <${tag.name}> at line ${this.parser.line} has ${count} attributes, more than ` +
          `${MAX_ATTRIBUTES}; a DMARC aggregate report uses almost none.`,
      );
    }
  }

  private noteUnknown(name: string): void {
    if (this.unknownNames.size < MAX_UNKNOWN_NAMES) this.unknownNames.add(name);
  }

  private startContainer(path: string): void {
    if (path === 'record') {
      this.recordCount += 1;
      this.record = newRawRecord(this.recordCount);
      return;
    }
    const record = this.record;
    if (record === null) return;
    if (path === 'record/row/policy_evaluated/reason') record.reasons.push({});
    if (path === 'record/auth_results/dkim') record.dkimResults.push({});
    if (path === 'record/auth_results/spf') record.spfResults.push({});
  }

  addText(text: string): void {
    if (!this.capturing) return;
    this.text += text;
    if (this.text.length > MAX_FIELD_CHARS) {
      const element = this.stack.at(-1)?.path ?? '';
      throw new ReportInputError(
        'invalid_report',
        `Element <${element}> at line ${this.parser.line} contains more than ${MAX_FIELD_CHARS} ` +
          'characters, far more than any DMARC report field; the file is not a usable report.',
      );
    }
  }

  /** Reports whether a parse error is only the stray wrapper tag left open at the end. */
  isUnclosedWrapper(error: Error): boolean {
    return this.wrapped && this.rootClosed && /unclosed tag: \S*schema\b/.test(error.message);
  }

  closeTag(): void {
    const element = this.stack.pop();
    if (element?.path === '') this.rootClosed = true;
    if (element === undefined || !element.known) return;
    const value = this.capturing ? this.text : undefined;
    this.capturing = false;
    this.text = '';
    if (element.path === 'record') {
      this.finishCurrentRecord();
    } else if (value !== undefined) {
      this.storeValue(element.path, value);
    }
  }

  private storeValue(path: string, value: string): void {
    if (SINGLE_FIELDS.has(path)) {
      if (this.report.values.has(path)) {
        this.warnings.report(`The report has more than one <${path}>; the first was used.`);
      } else {
        this.report.values.set(path, value);
      }
      return;
    }
    if (path === 'report_metadata/error') {
      if (value.trim() !== '') this.report.errors.push(value.trim());
      return;
    }
    const record = this.record;
    if (record === null) return;

    const recordField = RECORD_FIELDS[path];
    if (recordField !== undefined) {
      record[recordField] ??= value;
      return;
    }
    if (path.startsWith('record/row/policy_evaluated/reason/')) {
      const reason = record.reasons.at(-1);
      if (reason && path.endsWith('/type')) reason.type ??= value;
      if (reason && path.endsWith('/comment')) reason.comment ??= value;
      return;
    }
    const authMatch = /^record\/auth_results\/(dkim|spf)\/(\w+)$/.exec(path);
    if (authMatch) {
      const results = authMatch[1] === 'dkim' ? record.dkimResults : record.spfResults;
      const field = AUTH_FIELDS[authMatch[2] ?? ''];
      const result = results.at(-1);
      if (result && field) result[field] ??= value;
    }
  }

  private finishCurrentRecord(): void {
    const raw = this.record;
    this.record = null;
    if (raw === null) return;
    const policyDomain = this.report.values.get('policy_published/domain')?.trim().toLowerCase();
    const record = finishRecord(raw, policyDomain, this.warnings);
    if (record === null) return;
    if (this.records.length >= this.limits.maxRecords) {
      throw new ReportInputError(
        'too_large',
        `The report contains more than ${this.limits.maxRecords} records, the limit for one ` +
          'report; split it or raise maxRecords.',
      );
    }
    this.records.push(record);
  }
}

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
 * Parses one DMARC aggregate report (RFC 7489 appendix C or DMARCbis) with the streaming saxes
 * parser, feeding it the decoded text in slices. Any DOCTYPE is rejected when it is read, before
 * anything after it is parsed, and no entity other than XML's five and character references is
 * ever expanded. Records that cannot be counted are skipped with a warning; every leniency
 * applied adds a warning.
 *
 * @throws ReportInputError: empty, too_large, unsupported_format (an encoding that cannot be
 *   decoded), not_well_formed, doctype_forbidden, not_a_dmarc_report or invalid_report.
 */
export function parseAggregateReport(
  xml: Buffer,
  limits: Partial<AggregateParseLimits> = {},
): ParsedAggregateReport {
  const resolved: AggregateParseLimits = { ...DEFAULT_AGGREGATE_PARSE_LIMITS, ...limits };
  if (xml.length === 0) {
    throw new ReportInputError('empty', 'The document is empty; send the report XML itself.');
  }
  if (xml.length > resolved.maxDocumentBytes) {
    throw new ReportInputError(
      'too_large',
      `The document is ${formatBytes(xml.length)}, more than the limit of ` +
        `${formatBytes(resolved.maxDocumentBytes)} for one report.`,
    );
  }

  const parser = new SaxesParser({ xmlns: false, position: true });
  const reader = new AggregateReportReader(parser, resolved);
  const decoded = decodeXml(xml, (message) => reader.warnings.report(message));
  let ended = false;

  parser.on('doctype', () => {
    throw new ReportInputError(
      'doctype_forbidden',
      `The document has a DOCTYPE declaration (line ${parser.line}); DMARC reports never need ` +
        'one and it is how entity expansion and external entity attacks start, so the file was rejected.',
    );
  });
  parser.on('opentag', (tag) => reader.openTag(tag));
  parser.on('text', (text) => reader.addText(text));
  parser.on('cdata', (text) => reader.addText(text));
  parser.on('closetag', () => reader.closeTag());
  parser.on('error', (error) => {
    if (ended && reader.isUnclosedWrapper(error)) return;
    throw notWellFormed(parser, error, ended);
  });

  for (const chunk of decoded.chunks) parser.write(chunk);
  ended = true;
  parser.close();

  return finishReport(reader.report, reader.records, reader.warnings, reader.unknownElementNames);
}
