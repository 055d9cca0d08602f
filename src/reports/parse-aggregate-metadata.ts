import type {
  AggregateReportHeader,
  AggregateReportSummary,
  ParsedAggregateReport,
} from './aggregate-parser.ts';
import { normaliseDomainName, toAsciiDomainName } from '../platform/domain-names.ts';
import { lowerWord, optionalText } from './parse-aggregate-record.ts';
import type { WarningLog } from './parse-aggregate-warnings.ts';
import { quoteForMessage, ReportInputError } from './report-input-error.ts';

/** The report-level text read from one document, before any check. */
export interface RawReport {
  dmarcbisNamespace: boolean;
  /** Local names of DMARCbis-only elements found. */
  dmarcbisFields: Set<string>;
  /** Paths of every element opened, below the root. */
  seen: Set<string>;
  /** The first text of each single field, by path. */
  values: Map<string, string>;
  errors: string[];
}

const SECONDS_PER_DAY = 86_400;
/** 2000-01-01T00:00:00Z; DMARC dates from 2012, so an earlier begin means a broken clock. */
const EARLIEST_PLAUSIBLE_SECONDS = 946_684_800;
/** 2100-01-01T00:00:00Z; a report covers a day that has passed, so a later date is broken. */
const LATEST_PLAUSIBLE_SECONDS = 4_102_444_800;
const POLICIES = new Set(['none', 'quarantine', 'reject']);
const ALIGNMENTS = new Set(['r', 's']);
const TESTING_VALUES = new Set(['y', 'n']);
const DISCOVERY_METHODS = new Set(['psl', 'treewalk']);

function invalid(message: string): ReportInputError {
  return new ReportInputError('invalid_report', message);
}

type Warn = (key: string, message: string) => void;

/** Where report-level warnings go: a WarningLog, or a list replayed into one later. */
type ReportWarnings = Pick<WarningLog, 'report'>;

class ReportFields {
  readonly warn: Warn;

  constructor(
    private readonly raw: RawReport,
    readonly warnings: ReportWarnings,
  ) {
    this.warn = (_key, message) => warnings.report(message);
  }

  text(path: string): string | null {
    return optionalText(this.raw.values.get(path));
  }

  requireElement(path: string, parent: string): void {
    if (!this.raw.seen.has(path)) {
      throw invalid(
        `The report has no <${path.split('/').at(-1)}> element in <${parent}>, which every ` +
          'DMARC aggregate report must have; the file cannot be stored.',
      );
    }
  }

  /** Reads an optional enumerated field; unknown words are kept with a warning. */
  word(path: string, known: Set<string>): string | null {
    const value = this.text(path);
    if (value === null) return null;
    const label = path.split('/').at(-1) ?? path;
    const word = lowerWord(value, label, this.warn);
    if (!known.has(word)) {
      this.warnings.report(
        `policy_published ${label} ${quoteForMessage(word)} is not one of ` +
          `${[...known].join(', ')}; it was kept as written.`,
      );
    }
    return word;
  }
}

function readOrgName(fields: ReportFields, email: string | null): string {
  fields.requireElement('report_metadata', 'feedback');
  fields.requireElement('report_metadata/org_name', 'report_metadata');
  const orgName = fields.text('report_metadata/org_name');
  if (orgName !== null) return orgName;

  // Some reporters leave org_name empty; the domain of their contact address names them.
  const emailDomain = email?.split('@')[1]?.trim().toLowerCase();
  if (emailDomain) {
    fields.warnings.report(
      `The report's org_name is empty; the domain of its email, ${quoteForMessage(emailDomain)}, was used.`,
    );
    return emailDomain;
  }
  throw invalid(
    'The report has an empty <org_name> and no email to name the reporter by; ' +
      'the file cannot be stored.',
  );
}

function readEmail(fields: ReportFields): string | null {
  let email = fields.text('report_metadata/email');
  if (email === null) return null;
  const bracketed = /^<(.*)>$/.exec(email);
  if (bracketed) {
    email = (bracketed[1] ?? '').trim();
    fields.warnings.report('The report email is wrapped in angle brackets, which were removed.');
  }
  if (/^mailto:/i.test(email)) {
    email = email.slice('mailto:'.length);
    fields.warnings.report('The report email starts with "mailto:", which was removed.');
  }
  return email === '' ? null : email;
}

function readReportId(fields: ReportFields): string {
  fields.requireElement('report_metadata/report_id', 'report_metadata');
  const reportId = fields.text('report_metadata/report_id');
  if (reportId === null) {
    throw invalid('The report has an empty <report_id>, which is needed to tell reports apart.');
  }
  return reportId;
}

function readEpochSeconds(fields: ReportFields, name: 'begin' | 'end'): number {
  fields.requireElement(`report_metadata/date_range/${name}`, 'date_range');
  const value = fields.text(`report_metadata/date_range/${name}`) ?? '';
  if (!/^-?\d+(\.\d+)?$/.test(value)) {
    throw invalid(
      `The report's date_range ${name} ${quoteForMessage(value)} is not a number of seconds ` +
        'since 1970-01-01 UTC; the file cannot be stored.',
    );
  }
  let seconds = Number(value);
  if (!Number.isInteger(seconds)) {
    seconds = Math.floor(seconds);
    fields.warnings.report(
      `The date_range ${name} ${quoteForMessage(value)} has a fraction, which was dropped.`,
    );
  }
  // Some generators write milliseconds. A value that is far in the future as seconds and
  // plausible as milliseconds is read as milliseconds.
  if (seconds > LATEST_PLAUSIBLE_SECONDS) {
    const fromMilliseconds = Math.floor(seconds / 1000);
    if (
      fromMilliseconds >= EARLIEST_PLAUSIBLE_SECONDS &&
      fromMilliseconds <= LATEST_PLAUSIBLE_SECONDS
    ) {
      fields.warnings.report(
        `The date_range ${name} ${quoteForMessage(value)} is in milliseconds, not seconds; it ` +
          `was read as ${new Date(fromMilliseconds * 1000).toISOString()}.`,
      );
      seconds = fromMilliseconds;
    }
  }
  if (seconds < 0 || seconds > LATEST_PLAUSIBLE_SECONDS) {
    throw invalid(
      `The report's date_range ${name} ${quoteForMessage(value)} is outside 1970 to 2100 as ` +
        'seconds and as milliseconds since 1970-01-01 UTC, so the report covers no real day; ' +
        'the file cannot be stored. Ask the reporter to fix its clock or generator.',
    );
  }
  return seconds;
}

function readPeriod(fields: ReportFields): ParsedAggregateReport['period'] {
  fields.requireElement('report_metadata/date_range', 'report_metadata');
  let begin = readEpochSeconds(fields, 'begin');
  let end = readEpochSeconds(fields, 'end');
  if (begin > end) {
    [begin, end] = [end, begin];
    fields.warnings.report('The date_range begin is after its end; the two were swapped.');
  }
  const hours = (end - begin) / 3600;
  if (end - begin > SECONDS_PER_DAY) {
    fields.warnings.report(
      `The date_range covers ${hours.toFixed(1)} hours, more than the 24 hours a report ` +
        'should cover; it was kept as sent.',
    );
  } else if (begin === end) {
    fields.warnings.report('The date_range begin equals its end; it was kept as sent.');
  }
  if (begin < EARLIEST_PLAUSIBLE_SECONDS) {
    fields.warnings.report(
      `The date_range begins on ${new Date(begin * 1000).toISOString().slice(0, 10)}, before ` +
        "DMARC existed; the reporter's clock or generator is likely wrong.",
    );
  }
  return { begin: new Date(begin * 1000), end: new Date(end * 1000) };
}

function readPct(fields: ReportFields): number | null {
  const value = fields.text('policy_published/pct');
  if (value === null) return null;
  const pct = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (pct >= 0 && pct <= 100) return pct;
  fields.warnings.report(
    `policy_published pct ${quoteForMessage(value)} is not a whole number from 0 to 100; it was left out.`,
  );
  return null;
}

function readPolicy(fields: ReportFields): ParsedAggregateReport['policy'] {
  fields.requireElement('policy_published', 'feedback');
  fields.requireElement('policy_published/domain', 'policy_published');
  // A fully qualified name's trailing dot names the same domain, and the domains dmarcdesk
  // monitors are stored without it and with Unicode labels as A-labels.
  const domainRaw = fields.text('policy_published/domain')?.trim() ?? '';
  const domain = toAsciiDomainName(domainRaw);
  if (!domain) {
    throw invalid('The report has an empty <domain> in <policy_published>, so it names no domain.');
  }
  // A value that is no domain name, such as markup or an address, names no domain a customer
  // could own, and would only clutter the list of unknown domains.
  const checked = normaliseDomainName(domain);
  if ('problem' in checked) {
    throw invalid(
      `The <domain> in <policy_published> is not a usable domain name: ${checked.problem.replace(/"[^"]*"/, quoteForMessage(domainRaw))}. The report cannot belong to any monitored domain, so it was not stored.`,
    );
  }
  let p = fields.word('policy_published/p', POLICIES);
  if (p === null) {
    fields.warnings.report('The report has no policy_published p; it was kept as "".');
    p = '';
  }
  const testingPath = fields.text('policy_published/testing') !== null ? 'testing' : 't';
  return {
    domain,
    domainRaw,
    adkim: fields.word('policy_published/adkim', ALIGNMENTS),
    aspf: fields.word('policy_published/aspf', ALIGNMENTS),
    p,
    sp: fields.word('policy_published/sp', POLICIES),
    np: fields.word('policy_published/np', POLICIES),
    pct: readPct(fields),
    fo: fields.text('policy_published/fo'),
    testing: fields.word(`policy_published/${testingPath}`, TESTING_VALUES),
    discoveryMethod: fields.word('policy_published/discovery_method', DISCOVERY_METHODS),
  };
}

function readVersion(fields: ReportFields): string | null {
  const version = fields.text('version');
  if (version !== null) return version;
  // Early DMARCbis drafts put <version> inside <report_metadata>.
  const nested = fields.text('report_metadata/version');
  if (nested !== null) {
    fields.warnings.report(
      'The report has its <version> inside <report_metadata>; it was read there.',
    );
  }
  return nested;
}

/**
 * Checks the fields of report_metadata and policy_published and returns them. A missing
 * report_id, org_name, date_range or policy_published domain rejects the report with
 * invalid_report naming the element.
 */
export function readReportHeader(raw: RawReport, warnings: ReportWarnings): AggregateReportHeader {
  const fields = new ReportFields(raw, warnings);
  const email = readEmail(fields);
  const reporter = {
    orgName: readOrgName(fields, email),
    email,
    extraContactInfo: fields.text('report_metadata/extra_contact_info'),
    generator: fields.text('report_metadata/generator'),
  };
  const reportId = readReportId(fields);
  const period = readPeriod(fields);
  const policy = readPolicy(fields);
  return { reporter, reportId, period, policy };
}

/**
 * Assembles what is known of a report once its document has been read to the end: the header,
 * the schema and version, the counts and the warnings. documentWarnings, those of the byte
 * decoding, come first. headerWarnings, those readReportHeader gave, come after those of the
 * records, where they were when the header was read at the end.
 */
export function finishReportSummary(
  raw: RawReport,
  header: AggregateReportHeader,
  counts: { recordCount: number; messageCount: number },
  warnings: WarningLog,
  headerWarnings: string[],
  unknownNames: string[],
  documentWarnings: string[],
): AggregateReportSummary {
  for (const message of headerWarnings) warnings.report(message);
  if (unknownNames.length > 0) {
    warnings.report(
      `Elements that are not part of the DMARC report format were ignored: ${unknownNames.join(', ')}.`,
    );
  }
  if (counts.recordCount === 0) warnings.report('The report has no record that could be read.');
  const version = readVersion(new ReportFields(raw, warnings));

  return {
    schema: raw.dmarcbisNamespace || raw.dmarcbisFields.size > 0 ? 'dmarcbis' : 'rfc7489',
    version,
    ...header,
    errors: raw.errors,
    recordCount: counts.recordCount,
    messageCount: counts.messageCount,
    warnings: warnings.toSentences(documentWarnings),
  };
}
