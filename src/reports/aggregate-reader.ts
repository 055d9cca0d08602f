import type {
  AggregateParseLimits,
  AggregateRecord,
  AggregateReportHeader,
} from './aggregate-parser.ts';
import { toAsciiDomainName } from '../platform/domain-names.ts';
import { readReportHeader, type RawReport } from './parse-aggregate-metadata.ts';
import {
  finishRecord,
  newRawRecord,
  type RawAuthResult,
  type RawRecord,
} from './parse-aggregate-record.ts';
import { WarningLog } from './parse-aggregate-warnings.ts';
import { ReportInputError } from './report-input-error.ts';

const DMARC_2_NAMESPACE = 'urn:ietf:params:xml:ns:dmarc-2.0';

/** A DMARC report nests six levels; the margin is for extensions. */
const MAX_ELEMENT_DEPTH = 32;
const MAX_ATTRIBUTES = 64;
/** Maximum text length of one field, in UTF-16 code units. */
const MAX_FIELD_CHARS = 64 * 1024;
const MAX_UNKNOWN_NAMES = 10;

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

const CONTAINERS = [
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
];

/** Elements read without being kept, and extension points whose content is ignored. */
const IGNORED = [
  'policy_published/psd',
  'policy_published/version_published',
  'extension',
  'extensions',
  'record/extensions',
  'record/extension',
];

/** The effect of opening or closing an element, one per known path, chosen once at load. */
type NodeAction =
  | { kind: 'container' }
  | { kind: 'record' }
  | { kind: 'reason' }
  | { kind: 'authResult'; list: 'dkim' | 'spf' }
  | { kind: 'single' }
  | { kind: 'error' }
  | { kind: 'recordField'; field: RecordField }
  | { kind: 'reasonField'; field: 'type' | 'comment' }
  | { kind: 'authField'; list: 'dkim' | 'spf'; field: keyof RawAuthResult }
  | { kind: 'ignored' };

/**
 * One element path of the report format, such as 'record/row/source_ip', with its children by
 * local name. Matching an element is one map lookup on its parent, so no path string is built
 * per element.
 */
interface PathNode {
  path: string;
  /** Whether the path is part of the report format, so that unknown children are noted. */
  known: boolean;
  /** Whether the element's text is kept. */
  leaf: boolean;
  /** Whether the path lies inside <record>, whose paths are not collected in RawReport.seen. */
  inRecord: boolean;
  dmarcbis: boolean;
  action: NodeAction;
  children: Map<string, PathNode>;
}

function newNode(path: string, action: NodeAction): PathNode {
  const known = action.kind !== 'ignored';
  const leaf = ['single', 'error', 'recordField', 'reasonField', 'authField'].includes(action.kind);
  return {
    path,
    known,
    leaf,
    inRecord: path === 'record' || path.startsWith('record/'),
    dmarcbis: DMARCBIS_FIELDS.has(path),
    action,
    children: new Map(),
  };
}

function actionOf(path: string): NodeAction {
  if (path === 'record') return { kind: 'record' };
  if (path === 'record/row/policy_evaluated/reason') return { kind: 'reason' };
  if (path === 'record/auth_results/dkim') return { kind: 'authResult', list: 'dkim' };
  if (path === 'record/auth_results/spf') return { kind: 'authResult', list: 'spf' };
  if (CONTAINERS.includes(path)) return { kind: 'container' };
  if (SINGLE_FIELDS.has(path)) return { kind: 'single' };
  if (path === 'report_metadata/error') return { kind: 'error' };
  const recordField = RECORD_FIELDS[path];
  if (recordField !== undefined) return { kind: 'recordField', field: recordField };
  if (path === 'record/row/policy_evaluated/reason/type')
    return { kind: 'reasonField', field: 'type' };
  if (path === 'record/row/policy_evaluated/reason/comment')
    return { kind: 'reasonField', field: 'comment' };
  const authMatch = /^record\/auth_results\/(dkim|spf)\/(\w+)$/.exec(path);
  const authField = AUTH_FIELDS[authMatch?.[2] ?? ''];
  if (authMatch && authField) {
    return { kind: 'authField', list: authMatch[1] === 'dkim' ? 'dkim' : 'spf', field: authField };
  }
  return { kind: 'ignored' };
}

function buildPathTree(): PathNode {
  const root = newNode('', { kind: 'container' });
  const authPaths = ['dkim', 'spf'].flatMap((list) =>
    Object.keys(AUTH_FIELDS).map((field) => `record/auth_results/${list}/${field}`),
  );
  const paths = [
    ...CONTAINERS,
    ...SINGLE_FIELDS,
    'report_metadata/error',
    ...Object.keys(RECORD_FIELDS),
    'record/row/policy_evaluated/reason/type',
    'record/row/policy_evaluated/reason/comment',
    ...authPaths,
    ...IGNORED,
  ];
  // Parents come before children when sorted by depth, so each parent exists when needed.
  paths.sort((a, b) => a.split('/').length - b.split('/').length);
  for (const path of paths) {
    const names = path.split('/');
    let parent = root;
    for (const name of names.slice(0, -1)) {
      const next = parent.children.get(name);
      if (next === undefined) throw new Error(`The path ${path} has no parent in the path tree.`);
      parent = next;
    }
    parent.children.set(names.at(-1) as string, newNode(path, actionOf(path)));
  }
  return root;
}

const ROOT = buildPathTree();
/** Every element outside the report format, and everything below one. */
const UNKNOWN: PathNode = { ...newNode('#unknown', { kind: 'ignored' }), children: new Map() };
/** A stray element that wraps <feedback>; see openRoot. */
const WRAPPER: PathNode = { ...newNode('#wrapper', { kind: 'ignored' }), children: new Map() };

/**
 * Stores the first value of a record field. A switch with one store per field is used, because
 * a store by computed key is several times slower once it has seen every field.
 */
function storeRecordField(record: RawRecord, field: RecordField, value: string): void {
  switch (field) {
    case 'sourceIp':
      record.sourceIp ??= value;
      break;
    case 'count':
      record.count ??= value;
      break;
    case 'disposition':
      record.disposition ??= value;
      break;
    case 'dkim':
      record.dkim ??= value;
      break;
    case 'spf':
      record.spf ??= value;
      break;
    case 'headerFrom':
      record.headerFrom ??= value;
      break;
    case 'envelopeFrom':
      record.envelopeFrom ??= value;
      break;
    case 'envelopeTo':
      record.envelopeTo ??= value;
      break;
  }
}

function storeAuthField(result: RawAuthResult, field: keyof RawAuthResult, value: string): void {
  switch (field) {
    case 'domain':
      result.domain ??= value;
      break;
    case 'selector':
      result.selector ??= value;
      break;
    case 'scope':
      result.scope ??= value;
      break;
    case 'result':
      result.result ??= value;
      break;
    case 'humanResult':
      result.humanResult ??= value;
      break;
  }
}

interface TagView {
  name: string;
  attributes: Record<string, string>;
}

function localName(qualifiedName: string): string {
  const colon = qualifiedName.indexOf(':');
  return colon < 0 ? qualifiedName : qualifiedName.slice(colon + 1);
}

/** The source of the line number in messages: saxes, or the fast scanner while it reads. */
export interface ParsePosition {
  readonly line: number;
}

/** The attributes of a tag that has none, shared so that the fast scanner allocates nothing. */
export const NO_ATTRIBUTES: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Receives what the reader finds, in document order. */
export interface AggregateReaderEvents {
  /** Called once per record that can be counted. */
  record(record: AggregateRecord): void;
  /**
   * Called once, when <report_metadata> and <policy_published> have both closed and the first
   * <record> opens. A report that puts them after its records gets no call; its header is read
   * at the end instead.
   */
  header(header: AggregateReportHeader): void;
}

/**
 * Holds the state of one parse while saxes reports events. Elements are matched by local name
 * whatever their namespace, against the tree of paths below the root that the format defines.
 */
export class AggregateReportReader {
  readonly warnings = new WarningLog();
  /** Warnings of the header, added to `warnings` at the end so that they keep their place. */
  readonly headerWarnings: string[] = [];
  readonly report: RawReport = {
    dmarcbisNamespace: false,
    dmarcbisFields: new Set(),
    seen: new Set(),
    values: new Map(),
    errors: [],
  };
  header: AggregateReportHeader | null = null;
  recordCount = 0;
  private readonly stack: PathNode[] = [];
  private readonly unknownNames = new Set<string>();
  private text = '';
  private capturing = false;
  private record: RawRecord | null = null;
  private recordsOpened = 0;
  private wrapped = false;
  private rootClosed = false;
  private metadataClosed = false;
  private policyClosed = false;

  constructor(
    private readonly parser: ParsePosition,
    private readonly limits: AggregateParseLimits,
    private readonly events: AggregateReaderEvents,
  ) {}

  get unknownElementNames(): string[] {
    return [...this.unknownNames];
  }

  /** Reads the header now, if it has not been read; throws when a required field is missing. */
  readHeader(): AggregateReportHeader {
    this.header ??= readReportHeader(this.report, {
      report: (message) => this.headerWarnings.push(message),
    });
    return this.header;
  }

  /** Whether the root element has been opened, and perhaps closed again. */
  get rootSeen(): boolean {
    return this.stack.length > 0 || this.rootClosed;
  }

  /** Whether the element that is open keeps its text. */
  get wantsText(): boolean {
    return this.capturing;
  }

  /** Handles a start tag; `attributes` are as written, by qualified name. */
  openTag(tagName: string, attributes: Record<string, string>): void {
    const stack = this.stack;
    const parent = stack[stack.length - 1];
    if (parent === undefined || parent === WRAPPER) {
      this.openRoot({ name: tagName, attributes }, localName(tagName));
      return;
    }
    if (this.stack.length >= MAX_ELEMENT_DEPTH) {
      throw new ReportInputError(
        'invalid_report',
        `Elements nest more than ${MAX_ELEMENT_DEPTH} levels deep at line ${this.parser.line}, ` +
          'while a DMARC aggregate report nests about six; the file is not a usable report.',
      );
    }
    if (attributes !== NO_ATTRIBUTES) this.checkAttributes({ name: tagName, attributes });

    const name = localName(tagName);
    let node = parent.known ? parent.children.get(name) : undefined;
    if (node === undefined) {
      // Prefixed elements are namespaced extensions, which DMARCbis allows anywhere in a record.
      if (parent.known && !tagName.includes(':')) this.noteUnknown(name);
      node = UNKNOWN;
    }
    stack.push(node);
    // Only known paths are kept, so that a flood of invented element names costs no memory.
    if (node.known && !node.inRecord) this.report.seen.add(node.path);
    if (node.dmarcbis) this.report.dmarcbisFields.add(name);

    const action = node.action;
    if (action.kind === 'record') this.startRecord();
    else if (this.record !== null) {
      if (action.kind === 'reason') this.record.reasons.push({});
      else if (action.kind === 'authResult') {
        const results = action.list === 'dkim' ? this.record.dkimResults : this.record.spfResults;
        results.push({});
      }
    }
    this.capturing = node.leaf;
    this.text = '';
  }

  private openRoot(tag: TagView, name: string): void {
    if (name === 'schema' && this.stack.length === 0) {
      // IKEA's generator has been seen to put an unclosed <xs:schema ...> start tag before
      // <feedback>; the report inside is complete, so the stray tag is read past.
      this.wrapped = true;
      this.stack.push(WRAPPER);
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
    this.stack.push(ROOT);
  }

  private checkAttributes(tag: TagView): void {
    let count = 0;
    for (const _ in tag.attributes) count += 1;
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

  private startRecord(): void {
    if (this.header === null && this.metadataClosed && this.policyClosed) {
      this.events.header(this.readHeader());
    }
    this.recordsOpened += 1;
    this.record = newRawRecord(this.recordsOpened);
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
    const node = this.stack.pop();
    if (node === ROOT) this.rootClosed = true;
    if (node === undefined || !node.known) return;
    const value = this.capturing ? this.text : undefined;
    this.capturing = false;
    this.text = '';
    const action = node.action;
    if (action.kind === 'record') {
      this.finishCurrentRecord();
    } else if (action.kind === 'container') {
      if (node.path === 'report_metadata') this.metadataClosed = true;
      else if (node.path === 'policy_published') this.policyClosed = true;
    } else if (value !== undefined) {
      this.storeValue(node, action, value);
    }
  }

  private storeValue(node: PathNode, action: NodeAction, value: string): void {
    if (action.kind === 'single') {
      if (this.report.values.has(node.path)) {
        this.warnings.report(`The report has more than one <${node.path}>; the first was used.`);
      } else {
        this.report.values.set(node.path, value);
      }
      return;
    }
    if (action.kind === 'error') {
      if (value.trim() !== '') this.report.errors.push(value.trim());
      return;
    }
    const record = this.record;
    if (record === null) return;
    if (action.kind === 'recordField') {
      storeRecordField(record, action.field, value);
    } else if (action.kind === 'reasonField') {
      const reason = record.reasons.at(-1);
      if (reason) reason[action.field] ??= value;
    } else if (action.kind === 'authField') {
      const results = action.list === 'dkim' ? record.dkimResults : record.spfResults;
      const result = results.at(-1);
      if (result) storeAuthField(result, action.field, value);
    }
  }

  private finishCurrentRecord(): void {
    const raw = this.record;
    this.record = null;
    if (raw === null) return;
    const reportedPolicyDomain = this.report.values.get('policy_published/domain');
    const policyDomain =
      reportedPolicyDomain === undefined ? undefined : toAsciiDomainName(reportedPolicyDomain);
    const record = finishRecord(raw, policyDomain, this.warnings);
    if (record === null) return;
    if (this.recordCount >= this.limits.maxRecords) {
      throw new ReportInputError(
        'too_large',
        `The report contains more than ${this.limits.maxRecords} records, the limit for one ` +
          'report; split it or raise maxRecords.',
      );
    }
    this.recordCount += 1;
    this.events.record(record);
  }
}
