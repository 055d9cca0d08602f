// One observation of one record: what DNS returned (raw strings, CNAME chain, status), the
// normalised text and the parsed meaning. Observations are plain JSON-safe data so they can
// be stored and compared later. compareObservations decides whether two differ in meaning.
import type { DkimEvaluation } from './dkim-record.ts';
import { checkDkimKey, dkimKeyName, evaluateDkimTxt } from './dkim-record.ts';
import type { AppliedPolicy, DmarcEnforcement, DmarcUri, DmarcTagValue } from './dmarc-record.ts';
import { evaluateDmarcTxt } from './dmarc-record.ts';
import type { DmarcDialect, Finding } from './findings.ts';
import { joinTxtStrings } from './findings.ts';
import type { AddressFamily } from './ip-space.ts';
import type { DnsLookups, LookupOutcome, LookupStatus } from './resolver.ts';
import { canonicalDnsName, isLookupProblem } from './resolver.ts';
import type { SpfEvaluation, SpfEvaluationOptions, SpfFamilyResult } from './spf-evaluation.ts';
import { evaluateSpf } from './spf-evaluation.ts';
import type { SpfQualifier } from './spf-record.ts';
import { canonicalSpfTerm } from './spf-record.ts';

export { compareObservations } from './observation-compare.ts';
export type {
  ChangeDetail,
  ChangeKind,
  ChangeSeverity,
  ObservationComparison,
} from './observation-compare.ts';

export type RecordKind = 'dmarc' | 'spf' | 'dkim';

export interface ObservedLookup {
  status: LookupStatus;
  cnameChain: string[];
  /** Smallest TTL when the lookup reported one; TXT lookups through Node do not. */
  ttl?: number;
  /** The error code and sentence of a failed lookup. */
  code?: string;
  message?: string;
}

export interface DmarcVerdictFacts {
  applies: boolean;
  enforcement: DmarcEnforcement;
  fallbackToNone: boolean;
  domain: AppliedPolicy | null;
  subdomains: AppliedPolicy | null;
  nonexistentSubdomains: AppliedPolicy | null;
  percentage: number | null;
  testing: boolean;
  aggregateReports: boolean;
}

export interface DmarcMeaning {
  kind: 'dmarc';
  /** `record`: one DMARC record. `none`: no DMARC record. `multiple`: receivers discard all. */
  state: 'record' | 'none' | 'multiple';
  /** Known tags in canonical form (keywords lower-cased, lists normalised), sorted by name. */
  tags: Record<string, string>;
  verdicts: Record<DmarcDialect, DmarcVerdictFacts>;
}

export interface SpfMeaning {
  kind: 'spf';
  state: 'record' | 'none' | 'multiple' | 'invalid';
  /** The root record's terms in canonical form, in order (order matters in SPF). */
  terms: string[];
  /** Qualifier of the first `all`, or null when the record has none. */
  ending: SpfQualifier | null;
  /** `near_limit`: 9 or 10 lookups. `over_limit`: more than 10, a permerror. */
  lookupBand: 'ok' | 'near_limit' | 'over_limit';
  results: Record<AddressFamily, SpfFamilyResult>;
  open: Record<AddressFamily, boolean>;
  largePassSpace: Record<AddressFamily, boolean>;
  /** Include or redirect targets that have no usable SPF record, sorted. */
  brokenTargets: string[];
  senderDependent: boolean;
}

export interface DkimKeyFacts {
  status: string;
  keyType: string;
  keyBits: number | null;
  fingerprint: string | null;
  testing: boolean;
  strict: boolean;
  hashAlgorithms: string[] | null;
  serviceTypes: string[] | null;
}

export interface DkimMeaning {
  kind: 'dkim';
  /** Key records, sorted by fingerprint so that record order does not matter. */
  keys: DkimKeyFacts[];
}

export type RecordMeaning = DmarcMeaning | SpfMeaning | DkimMeaning;

export interface Observation {
  kind: RecordKind;
  /** The DNS name queried. */
  name: string;
  /** ISO 8601 time of the lookup. */
  observedAt: string;
  lookup: ObservedLookup;
  /** True when a lookup failed, so this observation tells nothing about the record. */
  lookupProblem: boolean;
  /** TXT records exactly as received, each as its list of strings. */
  raw: string[][];
  /** Each record's strings joined, the records sorted: equal for a re-split or reordered set. */
  normalised: string[];
  /** Null when `lookupProblem` is true. */
  meaning: RecordMeaning | null;
  findings: Finding[];
  summary: string;
}

export interface ObserveOptions {
  /** Clock for `observedAt` (default: the system clock). */
  now?: () => Date;
}

function observedLookup(outcome: LookupOutcome<unknown>): ObservedLookup {
  const lookup: ObservedLookup = { status: outcome.status, cnameChain: outcome.cnameChain };
  if (outcome.status === 'ok') {
    if (outcome.ttl !== undefined) lookup.ttl = outcome.ttl;
  } else {
    lookup.code = outcome.code;
    lookup.message = outcome.message;
  }
  return lookup;
}

function rawOf(outcome: LookupOutcome<string[]>): { raw: string[][]; normalised: string[] } {
  const raw = outcome.status === 'ok' ? outcome.records.map((strings) => [...strings]) : [];
  return { raw, normalised: raw.map(joinTxtStrings).sort() };
}

function problemObservation(
  kind: RecordKind,
  name: string,
  observedAt: string,
  outcome: LookupOutcome<string[]>,
  message: string,
): Observation {
  return {
    kind,
    name,
    observedAt,
    lookup: observedLookup(outcome),
    lookupProblem: true,
    ...rawOf(outcome),
    meaning: null,
    findings: [],
    summary: message,
  };
}

function canonicalUri(uri: DmarcUri): string {
  const size = uri.sizeLimit ? `!${uri.sizeLimit}` : '';
  if (!uri.valid) return `invalid:${uri.uri}${size}`;
  if (uri.scheme === 'mailto' && uri.domain) {
    const address = uri.uri.slice('mailto:'.length);
    const at = address.lastIndexOf('@');
    return `mailto:${address.slice(0, at)}@${uri.domain}${size}`;
  }
  return `${uri.scheme}:${uri.uri.slice(uri.scheme.length + 1)}${size}`;
}

function canonicalTag<T>(value: DmarcTagValue<T>, write: (value: T) => string): string | undefined {
  if (value.state === 'absent') return undefined;
  if (value.state === 'invalid') return `invalid:${value.raw}`;
  return write(value.value);
}

/** Build a DMARC observation from the TXT lookup at `_dmarc.<domain>`. Needs no DNS. */
export function buildDmarcObservation(
  name: string,
  outcome: LookupOutcome<string[]>,
  observedAt: string,
): Observation {
  const canonicalName = canonicalDnsName(name);
  if (isLookupProblem(outcome)) {
    return problemObservation(
      'dmarc',
      canonicalName,
      observedAt,
      outcome,
      `DMARC record at ${canonicalName} not checked: ${outcome.status === 'ok' ? '' : outcome.message}`,
    );
  }
  const { raw, normalised } = rawOf(outcome);
  const evaluation = evaluateDmarcTxt(raw);
  const tags: Record<string, string> = {};
  const record = evaluation.record;
  if (record) {
    const text = (value: string) => value;
    const list = (values: string[]) => values.join(':');
    const uris = (values: DmarcUri[]) => values.map(canonicalUri).join(',');
    const entries: [string, string | undefined][] = [
      ['adkim', canonicalTag(record.dkimAlignment, text)],
      ['aspf', canonicalTag(record.spfAlignment, text)],
      ['fo', canonicalTag(record.failureOptions, list)],
      ['np', canonicalTag(record.nonexistentSubdomainPolicy, text)],
      ['p', canonicalTag(record.policy, text)],
      ['pct', canonicalTag(record.percentage, String)],
      ['psd', canonicalTag(record.publicSuffix, text)],
      ['rf', canonicalTag(record.reportFormat, list)],
      ['ri', canonicalTag(record.reportInterval, String)],
      ['rua', canonicalTag(record.aggregateReportUris, uris)],
      ['ruf', canonicalTag(record.failureReportUris, uris)],
      ['sp', canonicalTag(record.subdomainPolicy, text)],
      ['t', canonicalTag(record.testing, text)],
    ];
    for (const [tag, value] of entries) if (value !== undefined) tags[tag] = value;
  }
  const facts = (dialect: DmarcDialect): DmarcVerdictFacts => {
    const verdict = evaluation.verdicts[dialect];
    return {
      applies: verdict.applies,
      enforcement: verdict.enforcement,
      fallbackToNone: verdict.fallbackToNone,
      domain: verdict.domain,
      subdomains: verdict.subdomains,
      nonexistentSubdomains: verdict.nonexistentSubdomains,
      percentage: verdict.percentage,
      testing: verdict.testing,
      aggregateReports: verdict.aggregateReports,
    };
  };
  const state = evaluation.selection.status === 'found' ? 'record' : evaluation.selection.status;
  return {
    kind: 'dmarc',
    name: canonicalName,
    observedAt,
    lookup: observedLookup(outcome),
    lookupProblem: false,
    raw,
    normalised,
    meaning: {
      kind: 'dmarc',
      state,
      tags,
      verdicts: { rfc7489: facts('rfc7489'), rfc9989: facts('rfc9989') },
    },
    findings: evaluation.findings,
    summary:
      state === 'record'
        ? `${evaluation.verdicts.rfc9989.summary} ${evaluation.verdicts.rfc7489.summary}`
        : `No single DMARC record at ${canonicalName}: ${evaluation.verdicts.rfc9989.summary}`,
  };
}

/** Place a lookup count against RFC 7208's limit of 10, with 9 and 10 as an early warning. */
function lookupBand(lookups: number): SpfMeaning['lookupBand'] {
  if (lookups > 10) return 'over_limit';
  return lookups >= 9 ? 'near_limit' : 'ok';
}

/** Build an SPF observation from a finished evaluation. Needs no DNS. */
export function buildSpfObservation(evaluation: SpfEvaluation, observedAt: string): Observation {
  const name = evaluation.domain;
  if (evaluation.lookupProblem || isLookupProblem(evaluation.outcome)) {
    return problemObservation(
      'spf',
      name,
      observedAt,
      evaluation.outcome,
      `SPF for ${name} not fully checked: ${evaluation.findings.find((item) => item.code === 'spf_lookup_problem')?.message ?? 'a lookup failed.'}`,
    );
  }
  const { raw, normalised } = rawOf(evaluation.outcome);
  const record = evaluation.record;
  let state: SpfMeaning['state'] = 'record';
  if (evaluation.selection?.status === 'none' || !evaluation.selection) state = 'none';
  else if (evaluation.selection.status === 'multiple') state = 'multiple';
  else if (record && !record.valid) state = 'invalid';

  const brokenTargets = new Set<string>();
  const collect = (node: SpfEvaluation['tree']) => {
    for (const child of node.children) {
      if (['none', 'multiple', 'invalid', 'loop'].includes(child.status)) {
        brokenTargets.add(child.domain);
      }
      collect(child);
    }
  };
  collect(evaluation.tree);

  const lookups = evaluation.dnsLookups;
  const meaning: SpfMeaning = {
    kind: 'spf',
    state,
    terms: record ? record.terms.map(canonicalSpfTerm) : [],
    ending: record?.all?.qualifier ?? null,
    lookupBand: lookupBand(lookups),
    results: { ipv4: evaluation.families.ipv4.result, ipv6: evaluation.families.ipv6.result },
    open: { ipv4: evaluation.families.ipv4.open, ipv6: evaluation.families.ipv6.open },
    largePassSpace: {
      ipv4: evaluation.families.ipv4.largePassSpace,
      ipv6: evaluation.families.ipv6.largePassSpace,
    },
    brokenTargets: [...brokenTargets].sort(),
    senderDependent: evaluation.senderDependent,
  };
  return {
    kind: 'spf',
    name,
    observedAt,
    lookup: observedLookup(evaluation.outcome),
    lookupProblem: false,
    raw,
    normalised,
    meaning,
    findings: evaluation.findings,
    summary: evaluation.summary,
  };
}

/** Build a DKIM observation from a key check. Needs no DNS. */
export function buildDkimObservation(evaluation: DkimEvaluation, observedAt: string): Observation {
  if (isLookupProblem(evaluation.outcome)) {
    return problemObservation(
      'dkim',
      evaluation.name,
      observedAt,
      evaluation.outcome,
      `DKIM key at ${evaluation.name} not checked: ${evaluation.outcome.status === 'ok' ? '' : evaluation.outcome.message}`,
    );
  }
  const { raw, normalised } = rawOf(evaluation.outcome);
  const keys = evaluation.keys
    .map((key): DkimKeyFacts => ({
      status: key.status,
      keyType: key.keyType,
      keyBits: key.keyBits,
      fingerprint: key.fingerprint,
      testing: key.testing,
      strict: key.strict,
      hashAlgorithms: key.hashAlgorithms,
      serviceTypes: key.serviceTypes,
    }))
    .sort((a, b) => (a.fingerprint ?? a.status).localeCompare(b.fingerprint ?? b.status));
  const key = evaluation.key;
  const summary = key
    ? `DKIM key at ${evaluation.name}: ${key.status}, ${key.keyType}${key.keyBits ? ` ${key.keyBits} bits` : ''}.`
    : `No DKIM key at ${evaluation.name}.`;
  return {
    kind: 'dkim',
    name: evaluation.name,
    observedAt,
    lookup: observedLookup(evaluation.outcome),
    lookupProblem: false,
    raw,
    normalised,
    meaning: { kind: 'dkim', keys },
    findings: evaluation.findings,
    summary,
  };
}

function timestamp(options: ObserveOptions): string {
  return (options.now?.() ?? new Date()).toISOString();
}

/** Look up and observe the DMARC record published at `_dmarc.<domain>`. */
export async function observeDmarc(
  domain: string,
  lookups: DnsLookups,
  options: ObserveOptions = {},
): Promise<Observation> {
  const name = `_dmarc.${canonicalDnsName(domain)}`;
  const outcome = await lookups.lookupTxt(name);
  return buildDmarcObservation(name, outcome, timestamp(options));
}

/** Evaluate and observe the SPF policy of `domain`, includes and redirects walked. */
export async function observeSpf(
  domain: string,
  lookups: DnsLookups,
  options: ObserveOptions & SpfEvaluationOptions = {},
): Promise<Observation> {
  const evaluation = await evaluateSpf(domain, lookups, options);
  return buildSpfObservation(evaluation, timestamp(options));
}

/** Look up and observe the DKIM key at `<selector>._domainkey.<domain>`. */
export async function observeDkim(
  selector: string,
  domain: string,
  lookups: DnsLookups,
  options: ObserveOptions = {},
): Promise<Observation> {
  const evaluation = await checkDkimKey(selector, domain, lookups);
  return buildDkimObservation(evaluation, timestamp(options));
}

/** Build a DKIM observation straight from a TXT lookup outcome (no DNS). */
export function buildDkimObservationFromTxt(
  selector: string,
  domain: string,
  outcome: LookupOutcome<string[]>,
  observedAt: string,
): Observation {
  return buildDkimObservation(evaluateDkimTxt(dkimKeyName(selector, domain), outcome), observedAt);
}
