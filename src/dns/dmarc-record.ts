// DMARC policy records: finding the record among the TXT strings at _dmarc.<domain>, parsing
// its tags and deciding what receivers make of it. RFC 7489 and RFC 9989 receivers read the
// same record differently (pct, t, np, psd, a missing p), so every verdict is given for both.
import { tagFindings } from './dmarc-tag-findings.ts';
import { dmarcVerdict, notApplied } from './dmarc-verdict.ts';
import type { DmarcDialect, Finding } from './findings.ts';
import { finding, joinTxtStrings, quote } from './findings.ts';
import { isPlausibleHostname } from './names.ts';

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';

/** A tag as the record states it: absent, a usable value, or a value receivers discard. */
export type DmarcTagValue<T> =
  { state: 'absent' } | { state: 'valid'; value: T } | { state: 'invalid'; raw: string };

export interface DmarcUri {
  /** The URI as written, without the size suffix. */
  uri: string;
  /** Lower-cased scheme, e.g. `mailto`. */
  scheme: string;
  valid: boolean;
  /** For `mailto:` URIs: the domain of the mailbox, lower-cased. */
  domain?: string;
  /** The RFC 7489 `!size` suffix, e.g. `10m`; RFC 9989 receivers ignore it. */
  sizeLimit?: string;
  /** The reason the URI is invalid, as a sentence fragment. */
  problem?: string;
}

export interface DmarcRecord {
  /** The record text, strings joined. */
  text: string;
  /** Every syntactically valid tag in record order, names lower-cased, values trimmed. */
  tags: { name: string; value: string }[];
  policy: DmarcTagValue<DmarcPolicy>;
  subdomainPolicy: DmarcTagValue<DmarcPolicy>;
  nonexistentSubdomainPolicy: DmarcTagValue<DmarcPolicy>;
  publicSuffix: DmarcTagValue<'y' | 'n' | 'u'>;
  testing: DmarcTagValue<'y' | 'n'>;
  percentage: DmarcTagValue<number>;
  dkimAlignment: DmarcTagValue<'r' | 's'>;
  spfAlignment: DmarcTagValue<'r' | 's'>;
  failureOptions: DmarcTagValue<string[]>;
  reportFormat: DmarcTagValue<string[]>;
  reportInterval: DmarcTagValue<number>;
  aggregateReportUris: DmarcTagValue<DmarcUri[]>;
  failureReportUris: DmarcTagValue<DmarcUri[]>;
  /** Names of tags neither specification defines. Receivers ignore them. */
  unknownTags: string[];
  /** True when `p` is not the second tag, which RFC 7489's grammar requires. */
  policyNotSecond: boolean;
}

export interface DmarcSelection {
  status: 'found' | 'none' | 'multiple';
  /** The joined text of the single DMARC record, when exactly one was found. */
  record?: string;
  /** Joined texts of every TXT record that starts like a DMARC record. */
  candidates: string[];
  /** Joined texts of the other TXT records at the name, which receivers ignore. */
  others: string[];
  findings: Finding[];
}

/** The policy failing mail gets. `weakest` and `strongest` differ when only a share is enforced. */
export interface AppliedPolicy {
  requested: DmarcPolicy;
  weakest: DmarcPolicy;
  strongest: DmarcPolicy;
}

export type DmarcEnforcement = 'enforcing' | 'partial' | 'monitoring' | 'not_applied';

export interface DmarcVerdict {
  dialect: DmarcDialect;
  /** False when receivers of this dialect apply no DMARC processing at all. */
  applies: boolean;
  /** True when an invalid p, sp or np made receivers fall back to p=none (a valid rua exists). */
  fallbackToNone: boolean;
  enforcement: DmarcEnforcement;
  domain: AppliedPolicy | null;
  subdomains: AppliedPolicy | null;
  nonexistentSubdomains: AppliedPolicy | null;
  /** RFC 7489 pct (0-100). Null for RFC 9989, which removed it. */
  percentage: number | null;
  /** RFC 9989 t=y. Always false for RFC 7489, which has no such tag. */
  testing: boolean;
  /** True when aggregate reports can be sent: DMARC applies and rua has a valid URI. */
  aggregateReports: boolean;
  summary: string;
}

export interface DmarcEvaluation {
  selection: DmarcSelection;
  record: DmarcRecord | null;
  findings: Finding[];
  verdicts: Record<DmarcDialect, DmarcVerdict>;
}

// RFC 7489 and RFC 9989: the record starts with the v tag, and its value DMARC1 is
// case-sensitive while the tag name is not. WSP is space or tab only.
const versionPattern = /^[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)/;
const wsp = /^[ \t]+|[ \t]+$/g;

const knownTags = new Set([
  'v',
  'p',
  'sp',
  'np',
  'psd',
  't',
  'rua',
  'ruf',
  'adkim',
  'aspf',
  'fo',
  'pct',
  'rf',
  'ri',
]);

const policies: readonly DmarcPolicy[] = ['none', 'quarantine', 'reject'];

/** Return true when the joined TXT text is a DMARC record by the version rule. */
export function isDmarcRecordText(text: string): boolean {
  return versionPattern.test(text);
}

/** Explain why a TXT text that looks like DMARC is not taken as a record, if it does. */
function nearMissReason(text: string): string | undefined {
  if (/^\s+v\s*=\s*dmarc1/i.test(text)) {
    return 'starts with whitespace, so receivers do not take it as a DMARC record';
  }
  if (/^v\s*=\s*dmarc1/i.test(text) && !/^[vV][ \t]*=[ \t]*DMARC1/.test(text)) {
    return 'has the version value in the wrong case; "DMARC1" is case-sensitive';
  }
  if (/^[vV][ \t]*=[ \t]*DMARC1/.test(text)) {
    return 'has no ";" right after v=DMARC1, so its version is not DMARC1';
  }
  if (/;\s*v\s*=\s*DMARC1/i.test(text)) {
    return 'does not start with v=DMARC1, which must be the first tag';
  }
  return undefined;
}

/**
 * Pick the DMARC record among the TXT records at one `_dmarc` name. Strings of one record are
 * joined first. More than one DMARC record means receivers discard them all.
 */
export function selectDmarcRecord(records: readonly (readonly string[])[]): DmarcSelection {
  const texts = records.map(joinTxtStrings);
  const candidates = texts.filter(isDmarcRecordText);
  const others = texts.filter((text) => !isDmarcRecordText(text));
  const findings: Finding[] = [];

  for (const text of others) {
    const reason = nearMissReason(text);
    if (reason) {
      findings.push(
        finding('dmarc_not_a_record', 'error', `The TXT record ${quote(text)} ${reason}.`),
      );
    } else {
      findings.push(
        finding(
          'dmarc_unrelated_txt',
          'info',
          `The TXT record ${quote(text)} is not a DMARC record and is ignored.`,
        ),
      );
    }
  }

  if (candidates.length > 1) {
    findings.push(
      finding(
        'dmarc_multiple_records',
        'error',
        `There are ${candidates.length} DMARC records at this name. Receivers discard all of them, so no DMARC policy applies here. Delete all but one.`,
      ),
    );
    return { status: 'multiple', candidates, others, findings };
  }
  if (candidates.length === 0) return { status: 'none', candidates, others, findings };
  return { status: 'found', record: candidates[0], candidates, others, findings };
}

/** RFC 9989 dmarc-value: one or more printable ASCII characters other than ";". */
function isTagValue(value: string): boolean {
  return /^[\x20-\x3a\x3c-\x7e]+$/.test(value);
}

function absent<T>(): DmarcTagValue<T> {
  return { state: 'absent' };
}

function parseKeyword<T extends string>(raw: string, allowed: readonly T[]): DmarcTagValue<T> {
  const value = raw.toLowerCase() as T;
  return allowed.includes(value) ? { state: 'valid', value } : { state: 'invalid', raw };
}

function parseCount(raw: string, max: number): DmarcTagValue<number> {
  if (!/^\d{1,10}$/.test(raw)) return { state: 'invalid', raw };
  const value = Number(raw);
  return value <= max ? { state: 'valid', value } : { state: 'invalid', raw };
}

/** Parse the colon-separated fo options; RFC 9989 forbids 0 with 1 and repeated options. */
function parseFailureOptions(raw: string): DmarcTagValue<string[]> {
  const options = raw.split(':').map((option) => option.replace(wsp, '').toLowerCase());
  if (options.some((option) => !['0', '1', 'd', 's'].includes(option))) {
    return { state: 'invalid', raw };
  }
  if (new Set(options).size !== options.length) return { state: 'invalid', raw };
  if (options.includes('0') && options.includes('1')) return { state: 'invalid', raw };
  return { state: 'valid', value: options };
}

/** Parse one report URI with its optional `!size` suffix (RFC 7489 section 6.4). */
export function parseDmarcUri(raw: string): DmarcUri {
  let uri = raw;
  let sizeLimit: string | undefined;
  const size = /^(.*)!(\d+[kmgt]?)$/i.exec(raw);
  if (size) {
    uri = size[1] ?? '';
    sizeLimit = (size[2] ?? '').toLowerCase();
  }
  const invalid = (scheme: string, problem: string): DmarcUri => ({
    uri,
    scheme,
    valid: false,
    problem,
    ...(sizeLimit ? { sizeLimit } : {}),
  });

  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/.exec(uri);
  if (!schemeMatch) {
    return invalid('', 'has no scheme. A mailbox needs the mailto: prefix');
  }
  const scheme = (schemeMatch[1] ?? '').toLowerCase();
  const rest = schemeMatch[2] ?? '';
  if (!/^[\x21-\x7e]+$/.test(rest)) {
    return invalid(scheme, 'contains spaces or characters that URIs do not allow');
  }
  if (rest.includes('!')) {
    return invalid(scheme, 'contains "!", which must be percent-encoded except before a size');
  }
  if (scheme !== 'mailto') {
    try {
      new URL(uri);
    } catch {
      return invalid(scheme, 'is not a valid URI');
    }
    return { uri, scheme, valid: true, ...(sizeLimit ? { sizeLimit } : {}) };
  }

  const address = rest.split('?')[0] ?? '';
  const at = address.lastIndexOf('@');
  const local = at > 0 ? address.slice(0, at) : '';
  const domain = at > 0 ? address.slice(at + 1).toLowerCase() : '';
  if (!local || !domain) {
    return invalid(scheme, 'is not a mailto: URI with a local part and a domain');
  }
  if (!isPlausibleHostname(domain)) {
    return invalid(scheme, `has an invalid mailbox domain ${quote(domain)}`);
  }
  return { uri, scheme, valid: true, domain, ...(sizeLimit ? { sizeLimit } : {}) };
}

function parseUriList(raw: string): DmarcTagValue<DmarcUri[]> {
  const uris = raw.split(',').map((item) => parseDmarcUri(item.replace(wsp, '')));
  return { state: 'valid', value: uris };
}

/**
 * Parse the tags of a DMARC record (the joined text, starting with v=DMARC1) and report what
 * is wrong with each. Duplicate tags make that tag invalid, following the tag-list rule of
 * RFC 6376 section 3.2 that both DMARC specifications build on.
 */
export function parseDmarcRecord(text: string): { record: DmarcRecord; findings: Finding[] } {
  const findings: Finding[] = [];
  const parts = text.split(';');
  const tags: { name: string; value: string }[] = [];
  const counts = new Map<string, number>();

  parts.forEach((part, index) => {
    const trimmed = part.replace(wsp, '');
    if (trimmed === '') {
      if (index !== parts.length - 1) {
        findings.push(
          finding(
            'dmarc_empty_tag',
            'info',
            'The record has an empty tag between two ";". Receivers skip it.',
          ),
        );
      }
      return;
    }
    const match = /^([A-Za-z]+)[ \t]*=[ \t]*([\s\S]*)$/.exec(trimmed);
    if (!match) {
      const hint = /^[a-z]+\s*:/i.test(trimmed) ? ' (":" where "=" belongs)' : '';
      findings.push(
        finding(
          'dmarc_tag_syntax',
          'error',
          `The part ${quote(trimmed)} is not a tag=value pair${hint}. Receivers ignore it.`,
        ),
      );
      return;
    }
    const name = (match[1] ?? '').toLowerCase();
    const value = match[2] ?? '';
    if (!isTagValue(value)) {
      findings.push(
        finding(
          'dmarc_tag_syntax',
          'error',
          `The tag ${quote(trimmed)} has an empty or non-printable value. Receivers ignore it.`,
        ),
      );
    }
    tags.push({ name, value });
    counts.set(name, (counts.get(name) ?? 0) + 1);
  });

  const valueOf = (name: string): string | undefined => {
    if ((counts.get(name) ?? 0) > 1) return undefined;
    return tags.find((tag) => tag.name === name)?.value;
  };
  for (const [name, count] of counts) {
    if (count > 1) {
      findings.push(
        finding(
          'dmarc_duplicate_tag',
          'error',
          `The tag "${name}" appears ${count} times. Receivers treat it as invalid. Keep one.`,
        ),
      );
    }
  }

  const field = <T>(name: string, parse: (raw: string) => DmarcTagValue<T>): DmarcTagValue<T> => {
    if ((counts.get(name) ?? 0) > 1) return { state: 'invalid', raw: `(${name} repeated)` };
    const raw = valueOf(name);
    if (raw === undefined) return absent();
    if (!isTagValue(raw)) return { state: 'invalid', raw };
    return parse(raw);
  };

  const tagNames = tags.map((tag) => tag.name);
  const record: DmarcRecord = {
    text,
    tags: tags.filter((tag) => isTagValue(tag.value)),
    policy: field('p', (raw) => parseKeyword(raw, policies)),
    subdomainPolicy: field('sp', (raw) => parseKeyword(raw, policies)),
    nonexistentSubdomainPolicy: field('np', (raw) => parseKeyword(raw, policies)),
    publicSuffix: field('psd', (raw) => parseKeyword(raw, ['y', 'n', 'u'] as const)),
    testing: field('t', (raw) => parseKeyword(raw, ['y', 'n'] as const)),
    percentage: field('pct', (raw) => parseCount(raw, 100)),
    dkimAlignment: field('adkim', (raw) => parseKeyword(raw, ['r', 's'] as const)),
    spfAlignment: field('aspf', (raw) => parseKeyword(raw, ['r', 's'] as const)),
    failureOptions: field('fo', parseFailureOptions),
    reportFormat: field('rf', (raw) => ({
      state: 'valid',
      value: raw.split(':').map((item) => item.replace(wsp, '').toLowerCase()),
    })),
    reportInterval: field('ri', (raw) => parseCount(raw, 4294967295)),
    aggregateReportUris: field('rua', parseUriList),
    failureReportUris: field('ruf', parseUriList),
    unknownTags: [...new Set(tagNames.filter((name) => !knownTags.has(name)))],
    policyNotSecond: tagNames.includes('p') && tagNames[1] !== 'p',
  };

  findings.push(...tagFindings(record));
  return { record, findings };
}

/**
 * Select, parse and judge the DMARC record in the TXT records of one `_dmarc` name. When no
 * single record is found, both verdicts state that no DMARC applies at this name.
 */
export function evaluateDmarcTxt(records: readonly (readonly string[])[]): DmarcEvaluation {
  const selection = selectDmarcRecord(records);
  if (selection.status !== 'found' || selection.record === undefined) {
    const reason =
      selection.status === 'multiple'
        ? 'there is more than one DMARC record at this name'
        : 'there is no DMARC record at this name';
    return {
      selection,
      record: null,
      findings: selection.findings,
      verdicts: { rfc7489: notApplied('rfc7489', reason), rfc9989: notApplied('rfc9989', reason) },
    };
  }
  const { record, findings } = parseDmarcRecord(selection.record);
  return {
    selection,
    record,
    findings: [...selection.findings, ...findings],
    verdicts: {
      rfc7489: dmarcVerdict(record, 'rfc7489'),
      rfc9989: dmarcVerdict(record, 'rfc9989'),
    },
  };
}
