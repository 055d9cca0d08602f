import { isIP } from 'node:net';

import { toAsciiDomainName } from '../platform/domain-names.ts';
import type { AggregateRecord } from './aggregate-parser.ts';
import type { WarningLog } from './parse-aggregate-warnings.ts';
import { quoteForMessage } from './report-input-error.ts';

/** Text of one <record> as read, before any check. Missing elements are undefined. */
export interface RawRecord {
  number: number;
  sourceIp?: string;
  count?: string;
  disposition?: string;
  dkim?: string;
  spf?: string;
  reasons: { type?: string; comment?: string }[];
  headerFrom?: string;
  envelopeFrom?: string;
  envelopeTo?: string;
  dkimResults: RawAuthResult[];
  spfResults: RawAuthResult[];
}

export interface RawAuthResult {
  domain?: string;
  selector?: string;
  scope?: string;
  result?: string;
  humanResult?: string;
}

export function newRawRecord(number: number): RawRecord {
  return { number, reasons: [], dkimResults: [], spfResults: [] };
}

const DISPOSITIONS = ['none', 'quarantine', 'reject'] as const;
const DKIM_RESULTS = new Set([
  'none',
  'pass',
  'fail',
  'policy',
  'neutral',
  'temperror',
  'permerror',
]);
const SPF_RESULTS = new Set([
  'none',
  'neutral',
  'pass',
  'fail',
  'softfail',
  'temperror',
  'permerror',
]);

/**
 * Off-schema result words and the schema word they stand for. The DMARC aggregate report schema
 * (dmarc-xml-0.2.xsd of the IETF draft) notes that TempError is commonly sent as "unknown" and
 * PermError as "error". Some reporters send "hardfail" for an SPF fail.
 */
const RESULT_ALIASES: Record<string, string> = {
  hardfail: 'fail',
  unknown: 'temperror',
  error: 'permerror',
};

/** Trims a value and turns an empty or missing one into null. */
export function optionalText(value: string | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
}

/** Lower-cases a word and warns when the report wrote it in another case. */
export function lowerWord(
  raw: string,
  field: string,
  warn: (key: string, message: string) => void,
): string {
  const trimmed = raw.trim();
  const lowered = trimmed.toLowerCase();
  if (lowered !== trimmed) {
    warn(
      `case:${field}:${trimmed}`,
      `${field} ${quoteForMessage(trimmed)} was read as "${lowered}".`,
    );
  }
  return lowered;
}

type RecordWarn = (key: string, message: string) => void;

function readDisposition(raw: RawRecord, warn: RecordWarn): AggregateRecord['disposition'] {
  // The schema's words as written need no trimming or warning; most records have one.
  const exact = DISPOSITIONS.find((value) => value === raw.disposition);
  if (exact) return exact;
  if (raw.disposition === undefined || raw.disposition.trim() === '') {
    warn('missing:disposition', 'policy_evaluated has no disposition; it was counted as "none".');
    return 'none';
  }
  const word = lowerWord(raw.disposition, 'disposition', warn);
  const known = DISPOSITIONS.find((value) => value === word);
  if (known) return known;
  // DMARCbis adds "pass" for mail that passed DMARC and so had no policy applied.
  if (word === 'pass') return 'none';
  warn(
    `unknown:disposition:${word}`,
    `disposition ${quoteForMessage(word)} is not none, quarantine or reject; it was counted as "none".`,
  );
  return 'none';
}

function readAlignment(
  value: string | undefined,
  field: 'dkim' | 'spf',
  warn: RecordWarn,
): 'pass' | 'fail' {
  if (value === 'pass' || value === 'fail') return value;
  const label = `policy_evaluated ${field}`;
  if (value === undefined || value.trim() === '') {
    warn(`missing:${field}`, `${label} is missing; it was counted as "fail".`);
    return 'fail';
  }
  const word = lowerWord(value, label, warn);
  if (word === 'pass' || word === 'fail') return word;
  warn(
    `unknown:${field}:${word}`,
    `${label} ${quoteForMessage(word)} is not pass or fail; it was counted as "fail".`,
  );
  return 'fail';
}

function readAuthResult(
  value: string | undefined,
  label: string,
  known: Set<string>,
  warn: RecordWarn,
): string {
  // No alias is a schema word, so a schema word as written is read as it is.
  if (value !== undefined && known.has(value)) return value;
  if (value === undefined || value.trim() === '') {
    warn(`missing:${label}`, `${label} has no result; it was read as "none".`);
    return 'none';
  }
  const alias = RESULT_ALIASES[value.trim().toLowerCase()];
  if (alias) {
    const written = value.trim();
    warn(
      `alias:${label}:${written}`,
      `${label} ${quoteForMessage(written)} was read as "${alias}".`,
    );
    return alias;
  }
  const word = lowerWord(value, label, warn);
  if (known.has(word)) return word;
  warn(
    `unknown:${label}:${word}`,
    `${label} ${quoteForMessage(word)} is not a result the schema names; it was kept and ` +
      'counts as not passing.',
  );
  return word;
}

function readDomain(value: string | undefined, label: string, warn: RecordWarn): string {
  const domain = value?.trim().toLowerCase() ?? '';
  if (domain === '') warn(`missing:${label}`, `${label} has no domain; it was kept as "".`);
  return domain;
}

function readDkimResults(raw: RawRecord, warn: RecordWarn): AggregateRecord['dkimResults'] {
  return raw.dkimResults.map((result) => ({
    domain: readDomain(result.domain, 'auth_results dkim', warn),
    selector: optionalText(result.selector),
    result: readAuthResult(result.result, 'auth_results dkim', DKIM_RESULTS, warn),
    humanResult: optionalText(result.humanResult),
  }));
}

function readSpfResults(raw: RawRecord, warn: RecordWarn): AggregateRecord['spfResults'] {
  return raw.spfResults.map((result) => {
    const scope = optionalText(result.scope);
    return {
      domain: readDomain(result.domain, 'auth_results spf', warn),
      scope: scope === null ? null : lowerWord(scope, 'auth_results spf scope', warn),
      result: readAuthResult(result.result, 'auth_results spf', SPF_RESULTS, warn),
      humanResult: optionalText(result.humanResult),
    };
  });
}

function readReasons(raw: RawRecord, warn: RecordWarn): AggregateRecord['reasons'] {
  const reasons: AggregateRecord['reasons'] = [];
  for (const reason of raw.reasons) {
    const type = optionalText(reason.type);
    if (type === null) {
      warn('missing:reason', 'a policy_evaluated reason has no type; it was left out.');
      continue;
    }
    reasons.push({
      type: lowerWord(type, 'reason type', warn),
      comment: optionalText(reason.comment),
    });
  }
  return reasons;
}

/**
 * The largest message count of a record, and of a report's records together. The database
 * columns are bigint, so the limit is the largest integer that a JavaScript number represents exactly.
 */
export const MAX_MESSAGE_COUNT = Number.MAX_SAFE_INTEGER;

/**
 * Checks and normalises one record. Returns null, after a warning, for a record that cannot be
 * counted: no valid source_ip or no whole-number count. Every other gap is filled with a
 * stated default and a warning.
 */
export function finishRecord(
  raw: RawRecord,
  policyDomain: string | undefined,
  warnings: WarningLog,
): AggregateRecord | null {
  const warn: RecordWarn = (key, message) => warnings.record(key, message, raw.number);

  const sourceIp = raw.sourceIp?.trim() ?? '';
  if (sourceIp === '') {
    warn('skip:source_ip', 'the record has no source_ip, so it was skipped.');
    return null;
  }
  if (isIP(sourceIp) === 0) {
    warn(
      'skip:source_ip_invalid',
      `source_ip ${quoteForMessage(sourceIp)} is not an IP address, so the record was skipped.`,
    );
    return null;
  }
  const countText = raw.count?.trim() ?? '';
  const count = /^\d+$/.test(countText) ? Number(countText) : Number.NaN;
  if (!Number.isSafeInteger(count)) {
    warn(
      'skip:count',
      Number.isNaN(count)
        ? `count ${quoteForMessage(countText)} is not a whole number, so the record was skipped.`
        : `count ${quoteForMessage(countText)} is larger than ${MAX_MESSAGE_COUNT}, the ` +
            'largest count that dmarcdesk adds up exactly, so the record was skipped.',
    );
    return null;
  }

  const headerFromRaw = raw.headerFrom?.trim() ?? '';
  let headerFrom = toAsciiDomainName(headerFromRaw);
  if (headerFrom === '') {
    headerFrom = policyDomain ?? '';
    warn(
      'missing:header_from',
      `the record has no header_from; the policy domain ${quoteForMessage(headerFrom)} was used.`,
    );
  }
  const disposition = readDisposition(raw, warn);

  return {
    sourceIp: sourceIp.toLowerCase(),
    count,
    disposition,
    dispositionRaw: raw.disposition?.trim() ?? '',
    dkim: readAlignment(raw.dkim, 'dkim', warn),
    spf: readAlignment(raw.spf, 'spf', warn),
    reasons: readReasons(raw, warn),
    headerFrom,
    headerFromRaw,
    envelopeFrom: raw.envelopeFrom === undefined ? null : raw.envelopeFrom.trim().toLowerCase(),
    envelopeTo: raw.envelopeTo === undefined ? null : raw.envelopeTo.trim().toLowerCase(),
    dkimResults: readDkimResults(raw, warn),
    spfResults: readSpfResults(raw, warn),
  };
}
