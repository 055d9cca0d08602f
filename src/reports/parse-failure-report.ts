import { createHash } from 'node:crypto';
import {
  domainOfAddress,
  extractAddress,
  normaliseDomain,
  normaliseMessageId,
  parseMailDate,
  parseSourceIp,
  readOriginalHeaders,
  splitWords,
  summariseAuthenticationResults,
  type AuthenticationSummary,
  type OriginalHeaders,
} from './failure-report-fields.ts';
import { readTextOnlyReport, type TextOnlyReport } from './failure-report-text.ts';
import {
  allEntities,
  decodeBody,
  decodeCharset,
  decodeHeaderText,
  decodeText,
  headerValue,
  headerValues,
  parseHeaderFields,
  parseMimeMessage,
  splitHeaderBlock,
  type HeaderField,
  type MimeEntity,
  type MimeLimits,
} from './mime-entity.ts';
import { quoteForMessage, ReportInputError } from './report-input-error.ts';

/** A DMARC failure report (RFC 5965 ARF with the RFC 6591 fields), or a text-only one. */
export interface ParsedFailureReport {
  /** 'arf' when a message/feedback-report part was read, 'text' for a plain-text report. */
  format: 'arf' | 'text';
  feedbackType: string;
  version: string | null;
  userAgent: string | null;
  /** The sender of the report mail (its From address), or the User-Agent when From is missing. */
  reporter: string;
  report: {
    messageId: string | null;
    subject: string | null;
    date: Date | null;
  };
  /** The domain the report is about, lower case: Reported-Domain, or the best substitute. */
  reportedDomain: string;
  /** Every Reported-Domain value, in order. */
  reportedDomains: string[];
  sourceIp: string | null;
  /** When the reporter received the original message (Arrival-Date). */
  arrivalDate: Date | null;
  /** Auth-Failure values such as dmarc, dkim, spf, bodyhash, signature, revoked. */
  authFailure: string[];
  /** Identity-Alignment values (none, dkim, spf), or null when the field is missing. */
  identityAlignment: string[] | null;
  deliveryResult: string | null;
  /** Authentication-Results values of the report, or of the original headers when it has none. */
  authenticationResults: string[];
  authentication: AuthenticationSummary;
  originalMailFrom: string | null;
  originalRcptTo: string[];
  originalEnvelopeId: string | null;
  reportingMta: string | null;
  incidents: number | null;
  dkim: {
    domain: string | null;
    identity: string | null;
    selector: string | null;
    selectorDns: string | null;
    adspDns: string | null;
  } | null;
  spfDns: string | null;
  reportedUris: string[];
  original: {
    /** 'message' for a copy with a body, 'headers' for headers only, 'none' when absent. */
    content: 'message' | 'headers' | 'none';
    headers: OriginalHeaders;
    /** The original header block, cut to MAX_HEADER_TEXT characters; null when absent. */
    headerText: string | null;
  };
  /** Key: value facts of a text-only report, such as "SPF Alignment: no"; empty for ARF. */
  textFields: Record<string, string>;
  /**
   * SHA-256 of the mail body with line breaks normalised. The body does not change on the
   * way, while relays and mailboxes add header fields, so the same report read by SMTP and
   * by IMAP has the same hash.
   */
  contentSha256: string;
  warnings: string[];
}

/** Maximum length of the original header block that is kept, in characters. */
export const MAX_HEADER_TEXT = 64 * 1024;

const ORIGINAL_MESSAGE_TYPES = new Set(['message/rfc822', 'message/global']);
const ORIGINAL_HEADER_TYPES = new Set([
  'text/rfc822-headers',
  'message/rfc822-headers',
  'message/global-headers',
]);
const FAILURE_SUBJECT =
  /\b(dmarc|authentication)\b.{0,20}\b(failure|forensic|fail)\b.{0,10}\breport\b/i;
const FAILURE_TEXT = /failed the (published )?dmarc policy|dmarc (failure|forensic) report/i;

/**
 * Tells whether a parsed mail is a failure report. It is one when it has a
 * message/feedback-report part or is a multipart/report of report-type feedback-report. It is a
 * text-only one when its subject or text names a DMARC failure report and it carries nothing but
 * text and the original message.
 */
export function isFailureReportMail(root: MimeEntity): boolean {
  const entities = allEntities(root);
  if (entities.some((entity) => entity.mediaType === 'message/feedback-report')) return true;
  if (
    root.mediaType === 'multipart/report' &&
    root.parameters['report-type']?.toLowerCase() === 'feedback-report'
  ) {
    return true;
  }
  const leaves = entities.filter((entity) => entity.parts.length === 0);
  const onlyText = leaves.every(
    (entity) =>
      entity.mediaType === 'text/plain' ||
      entity.mediaType === 'text/html' ||
      ORIGINAL_MESSAGE_TYPES.has(entity.mediaType) ||
      ORIGINAL_HEADER_TYPES.has(entity.mediaType),
  );
  if (!onlyText) return false;
  const subject = decodeHeaderText(headerValue(root.headers, 'subject') ?? '');
  if (FAILURE_SUBJECT.test(subject)) return true;
  return leaves
    .filter((entity) => entity.mediaType === 'text/plain')
    .some((entity) => FAILURE_TEXT.test(decodeText(entity).slice(0, 4096)));
}

/**
 * Parses a DMARC failure report mail: ARF (RFC 5965) with the authentication failure fields of
 * RFC 6591 and the Identity-Alignment field of DMARC failure reports. The feedback-report part
 * may sit anywhere, since some reporters put it base64-encoded in multipart/mixed. Plain-text
 * reports, which some gateways send without a machine-readable part, are read too. The original
 * message may be a full copy, its headers only, redacted or missing.
 *
 * @throws ReportInputError when the mail is not a failure report, is an ARF report of another
 * feedback type, or names no domain the report is about.
 */
export function parseFailureReport(input: Buffer, limits?: MimeLimits): ParsedFailureReport {
  const root = parseMimeMessage(input, limits);
  if (!isFailureReportMail(root)) {
    throw new ReportInputError(
      'unsupported_format',
      'The mail is not a DMARC failure report: it has no message/feedback-report part and does ' +
        'not read as a text failure report.',
    );
  }
  return readFailureReport(root, input);
}

/** Reads a mail that isFailureReportMail accepted; parseFailureReport is the usual entry point. */
export function readFailureReport(root: MimeEntity, input: Buffer): ParsedFailureReport {
  const entities = allEntities(root);
  const feedbackPart = entities.find((entity) => entity.mediaType === 'message/feedback-report');
  const original = readOriginalPart(entities);
  const warnings: string[] = [];
  const reportHeaders = root.headers;
  const reportFrom = extractAddress(decodeHeaderText(headerValue(reportHeaders, 'from') ?? ''));
  const report = {
    messageId: normaliseMessageId(headerValue(reportHeaders, 'message-id')),
    subject: optionalText(headerValue(reportHeaders, 'subject')),
    date: parseMailDate(headerValue(reportHeaders, 'date')),
  };

  const base = feedbackPart
    ? readArfFields(feedbackPart, warnings)
    : readTextFields(readTextOnlyReport(entities), warnings);

  const headerSource = original ?? base.embeddedHeaders;
  const originalHeaders = headerSource
    ? readOriginalHeaders(headerSource.headers)
    : { from: null, to: null, subject: null, date: null, messageId: null };
  const originalAuthResults = headerSource
    ? headerValues(headerSource.headers, 'authentication-results')
    : [];
  const authenticationResults =
    base.authenticationResults.length > 0 ? base.authenticationResults : originalAuthResults;
  const authentication = summariseAuthenticationResults([
    ...base.authenticationResults,
    ...originalAuthResults,
  ]);

  const reportedDomain =
    base.reportedDomains[0] ??
    authentication.headerFrom ??
    domainOfAddress(extractAddress(originalHeaders.from)) ??
    base.dkim?.domain ??
    domainFromSubject(report.subject);
  if (!reportedDomain) {
    throw new ReportInputError(
      'invalid_report',
      'The failure report names no domain: it has no Reported-Domain field, no header.from in ' +
        'its authentication results and no From header of the original message.',
    );
  }
  if (base.reportedDomains.length === 0) {
    warnings.push(
      `no Reported-Domain field; the domain ${reportedDomain} was taken from the report`,
    );
  }

  const content: ParsedFailureReport['original']['content'] = original
    ? original.content
    : base.embeddedHeaders
      ? 'headers'
      : 'none';
  if (content === 'none') warnings.push('the report carries no copy of the original message');

  return {
    format: feedbackPart ? 'arf' : 'text',
    feedbackType: base.feedbackType,
    version: base.version,
    userAgent: base.userAgent,
    reporter: reportFrom ?? base.userAgent ?? 'unknown reporter',
    report,
    reportedDomain,
    reportedDomains: base.reportedDomains,
    sourceIp: base.sourceIp,
    arrivalDate: base.arrivalDate,
    authFailure: base.authFailure,
    identityAlignment: base.identityAlignment,
    deliveryResult: base.deliveryResult,
    authenticationResults,
    authentication,
    originalMailFrom: base.originalMailFrom,
    originalRcptTo: base.originalRcptTo,
    originalEnvelopeId: base.originalEnvelopeId,
    reportingMta: base.reportingMta,
    incidents: base.incidents,
    dkim: base.dkim,
    spfDns: base.spfDns,
    reportedUris: base.reportedUris,
    original: {
      content,
      headers: originalHeaders,
      headerText: headerSource ? cutHeaderText(headerSource.headerText) : null,
    },
    textFields: base.textFields,
    contentSha256: hashBody(input),
    warnings,
  };
}

/** The fields read from the ARF part, or from the text of a text-only report. */
interface ReportFields {
  feedbackType: string;
  version: string | null;
  userAgent: string | null;
  reportedDomains: string[];
  sourceIp: string | null;
  arrivalDate: Date | null;
  authFailure: string[];
  identityAlignment: string[] | null;
  deliveryResult: string | null;
  authenticationResults: string[];
  originalMailFrom: string | null;
  originalRcptTo: string[];
  originalEnvelopeId: string | null;
  reportingMta: string | null;
  incidents: number | null;
  dkim: ParsedFailureReport['dkim'];
  spfDns: string | null;
  reportedUris: string[];
  textFields: Record<string, string>;
  embeddedHeaders: { headers: HeaderField[]; headerText: string } | null;
}

function readArfFields(part: MimeEntity, warnings: string[]): ReportFields {
  const text = decodeText(part);
  const fields = parseHeaderFields(text);
  const one = (name: string) => optionalText(headerValue(fields, name));
  const many = (name: string) =>
    headerValues(fields, name)
      .map((value) => value.trim())
      .filter((value) => value.length > 0);

  const feedbackType = (one('feedback-type') ?? '').toLowerCase();
  if (feedbackType.length > 0 && feedbackType !== 'auth-failure') {
    throw new ReportInputError(
      'unsupported_format',
      `The mail is an ARF report of Feedback-Type ${quoteForMessage(feedbackType)}, not a DMARC ` +
        'failure report (Feedback-Type auth-failure), so it is not stored as one.',
    );
  }
  if (feedbackType.length === 0) warnings.push('no Feedback-Type field; read as auth-failure');

  const sourceIpField = one('source-ip');
  const sourceIp = parseSourceIp(sourceIpField);
  if (sourceIpField && !sourceIp) {
    warnings.push(`Source-IP ${quoteForMessage(sourceIpField)} is not an IP address`);
  }
  // Arrival-Date is the RFC 5965 name; drafts of ARF and some reporters wrote Received-Date.
  const arrivalField = one('arrival-date') ?? one('received-date');
  const arrivalDate = parseMailDate(arrivalField);
  if (arrivalField && !arrivalDate) {
    warnings.push(`Arrival-Date ${quoteForMessage(arrivalField)} is not a date`);
  }
  const incidentsField = one('incidents');
  const incidents =
    incidentsField && /^\d{1,9}$/.test(incidentsField) ? Number(incidentsField) : null;

  const alignment = one('identity-alignment');
  const dkimFields = {
    domain: normaliseDomain(one('dkim-domain')),
    identity: one('dkim-identity'),
    selector: one('dkim-selector'),
    selectorDns: one('dkim-selector-dns'),
    adspDns: one('dkim-adsp-dns'),
  };
  const reportedDomains = many('reported-domain')
    .map((value) => normaliseDomain(value))
    .filter((value): value is string => value !== null);

  return {
    feedbackType: 'auth-failure',
    version: one('version'),
    userAgent: one('user-agent'),
    reportedDomains: [...new Set(reportedDomains)],
    sourceIp,
    arrivalDate,
    authFailure: splitWords(many('auth-failure').join(',')),
    identityAlignment: alignment === null ? null : splitWords(alignment),
    deliveryResult: one('delivery-result')?.toLowerCase() ?? null,
    authenticationResults: many('authentication-results'),
    originalMailFrom: extractAddress(one('original-mail-from')),
    originalRcptTo: many('original-rcpt-to')
      .map((value) => extractAddress(value))
      .filter((value): value is string => value !== null),
    originalEnvelopeId: one('original-envelope-id'),
    reportingMta: one('reporting-mta'),
    incidents,
    dkim: Object.values(dkimFields).some((value) => value !== null) ? dkimFields : null,
    spfDns: one('spf-dns'),
    reportedUris: many('reported-uri'),
    textFields: {},
    embeddedHeaders: null,
  };
}

function readTextFields(text: TextOnlyReport, warnings: string[]): ReportFields {
  warnings.push('text-only failure report without a message/feedback-report part');
  return {
    feedbackType: 'auth-failure',
    version: null,
    userAgent: null,
    reportedDomains: text.reportedDomain ? [text.reportedDomain] : [],
    sourceIp: text.sourceIp,
    arrivalDate: text.arrivalDate,
    authFailure: ['dmarc'],
    identityAlignment: text.identityAlignment,
    deliveryResult: null,
    authenticationResults: [],
    originalMailFrom: null,
    originalRcptTo: [],
    originalEnvelopeId: null,
    reportingMta: null,
    incidents: null,
    dkim: null,
    spfDns: null,
    reportedUris: [],
    textFields: text.fields,
    embeddedHeaders: text.embeddedHeaders,
  };
}

/** Finds the copy of the original message, or its headers, and reads its header block. */
function readOriginalPart(
  entities: MimeEntity[],
): { content: 'message' | 'headers'; headers: HeaderField[]; headerText: string } | null {
  const part = entities.find(
    (entity) =>
      entity.depth > 0 &&
      (ORIGINAL_MESSAGE_TYPES.has(entity.mediaType) || ORIGINAL_HEADER_TYPES.has(entity.mediaType)),
  );
  if (!part) return null;
  const decoded = decodeBody(part).toString('latin1');
  const { headerText, body } = splitHeaderBlock(decoded.replace(/^(\r?\n)+/, ''));
  const headers = parseHeaderFields(headerText);
  const hasBody = ORIGINAL_MESSAGE_TYPES.has(part.mediaType) && body.trim().length > 0;
  return { content: hasBody ? 'message' : 'headers', headers, headerText };
}

function domainFromSubject(subject: string | null): string | null {
  const match = /\bfor\s+(?:domain\s+)?([a-z0-9._-]+\.[a-z]{2,})\b/i.exec(subject ?? '');
  return normaliseDomain(match?.[1] ?? null);
}

function optionalText(value: string | null): string | null {
  if (value === null) return null;
  const decoded = decodeHeaderText(value).trim();
  return decoded.length > 0 ? decoded : null;
}

function cutHeaderText(latin1Text: string): string {
  const text = decodeCharset(Buffer.from(latin1Text, 'latin1'), 'utf-8').replace(/\r\n/g, '\n');
  return text.length > MAX_HEADER_TEXT ? text.slice(0, MAX_HEADER_TEXT) : text.trimEnd();
}

function hashBody(input: Buffer): string {
  const { body } = splitHeaderBlock(input.toString('latin1'));
  const normalised = body
    .replace(/\r\n/g, '\n')
    .replace(/[ \t]+\n/g, '\n')
    .trimEnd();
  return createHash('sha256').update(Buffer.from(normalised, 'latin1')).digest('hex');
}
