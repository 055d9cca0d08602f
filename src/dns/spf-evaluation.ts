// Static evaluation of a domain's SPF policy. It walks include and redirect through DNS and
// counts the terms that cost lookups (RFC 7208 allows 10) and the void lookups (2 allowed).
// It also works out which share of the IPv4 and IPv6 space passes. Nothing here needs a
// sender address, so terms that depend on one (macros, ptr) are counted but not resolved.
import type { Finding } from './findings.ts';
import { finding, quote } from './findings.ts';
import type { AddressFamily } from './ip-space.ts';
import { AddressClaims, familyBits, rangeOf, shareOfFamily } from './ip-space.ts';
import type { DnsLookups, LookupFailure, LookupOutcome, LookupStatus } from './resolver.ts';
import { canonicalDnsName, isLookupProblem, isMissing } from './resolver.ts';
import type { SpfMechanism, SpfRecord, SpfResult, SpfSelection } from './spf-record.ts';
import { parseSpfRecord, qualifierResult, selectSpfRecord } from './spf-record.ts';

export interface SpfEvaluationOptions {
  /** Terms that cost DNS lookups before receivers return permerror (RFC 7208: 10). */
  maxDnsLookups?: number;
  /** Void lookups before receivers that enforce the limit return permerror (RFC 7208: 2). */
  maxVoidLookups?: number;
  /** Include and redirect levels followed before the walk stops (default 10). */
  maxDepth?: number;
  /**
   * Lookup-costing terms walked in all before the walk stops following includes (default
   * 40), so that an oversized tree is still shown far past the limit but the walk ends.
   */
  maxWalkedLookups?: number;
}

/**
 * `permerror_risk`: only the void lookup limit is exceeded, a SHOULD in RFC 7208, so
 * receivers that enforce it return permerror and others do not.
 */
export type SpfFamilyResult = 'ok' | 'permerror_risk' | 'permerror' | 'temperror';

export interface SpfFamilyVerdict {
  family: AddressFamily;
  result: SpfFamilyResult;
  voidLookups: number;
  /** Sentences explaining a result other than ok. */
  reasons: string[];
  /** Addresses of this family that get pass, as a decimal string. */
  passAddresses: string;
  /** `passAddresses` as a share of the family, from 0 to 1. */
  passShare: number;
  /** True when every address of the family gets pass. */
  open: boolean;
  /** True when more than a /8 (IPv4) or a /32 (IPv6) passes without the family being open. */
  largePassSpace: boolean;
  /** True when exists, ptr, macros or unresolved includes make the pass space uncertain. */
  approximate: boolean;
}

export type SpfNodeStatus =
  | 'ok'
  | 'none'
  | 'multiple'
  | 'invalid'
  | 'lookup_problem'
  | 'loop'
  | 'sender_dependent'
  | 'not_followed';

export interface SpfNode {
  domain: string;
  via: 'root' | 'include' | 'redirect';
  /** The include or redirect term that led here, as written. */
  term?: string;
  status: SpfNodeStatus;
  lookupStatus?: LookupStatus;
  record?: string;
  /** Lookup-costing terms in this record itself, before its includes are added. */
  dnsLookups: number;
  children: SpfNode[];
}

export interface SpfEvaluation {
  domain: string;
  /** `none`: no SPF record. Otherwise the worse of the two family results. */
  status: 'ok' | 'none' | SpfFamilyResult;
  /** True when a lookup failed (timeout, SERVFAIL, ...), so part of the policy is unknown. */
  lookupProblem: boolean;
  outcome: LookupOutcome<string[]>;
  selection: SpfSelection | null;
  record: SpfRecord | null;
  tree: SpfNode;
  /** Lookup-costing terms a sender that matches nothing reaches, across every include. */
  dnsLookups: number;
  senderDependent: boolean;
  /** Literal include and redirect targets of the whole tree, in walk order. */
  includes: string[];
  families: Record<AddressFamily, SpfFamilyVerdict>;
  findings: Finding[];
  summary: string;
}

type Claims = Record<AddressFamily, AddressClaims<SpfResult>>;

interface Coverage {
  claims: Claims;
  approximate: Record<AddressFamily, boolean>;
}

const families: readonly AddressFamily[] = ['ipv4', 'ipv6'];
const maxMxRecords = 10;

// A judgement, not a standard: a pass space beyond one /8 (IPv4) or one /32 (IPv6, a common
// provider allocation) is unusual for mail senders and often comes from a mistyped prefix.
const largeSpace: Record<AddressFamily, bigint> = { ipv4: 1n << 24n, ipv6: 1n << 96n };

function familyName(family: AddressFamily): string {
  return family === 'ipv4' ? 'IPv4' : 'IPv6';
}

class SpfWalk {
  readonly lookups: DnsLookups;
  readonly maxDnsLookups: number;
  readonly maxVoidLookups: number;
  readonly maxDepth: number;
  readonly maxWalkedLookups: number;
  dnsLookups = 0;
  readonly voids: Record<AddressFamily, number> = { ipv4: 0, ipv6: 0 };
  readonly permerrors: string[] = [];
  readonly temperrors: string[] = [];
  readonly findings: Finding[] = [];
  readonly includes: string[] = [];
  senderDependent = false;
  readonly #cache = new Map<string, Promise<LookupOutcome<unknown>>>();

  constructor(lookups: DnsLookups, options: SpfEvaluationOptions) {
    this.lookups = lookups;
    this.maxDnsLookups = options.maxDnsLookups ?? 10;
    this.maxVoidLookups = options.maxVoidLookups ?? 2;
    this.maxDepth = options.maxDepth ?? 10;
    this.maxWalkedLookups = options.maxWalkedLookups ?? 40;
  }

  /** Query once per name and type, so a repeated include counts again but is not re-queried. */
  cached<T>(
    type: string,
    name: string,
    run: () => Promise<LookupOutcome<T>>,
  ): Promise<LookupOutcome<T>> {
    const key = `${type} ${canonicalDnsName(name)}`;
    let pending = this.#cache.get(key) as Promise<LookupOutcome<T>> | undefined;
    if (!pending) {
      pending = run();
      this.#cache.set(key, pending);
    }
    return pending;
  }

  txt(name: string) {
    return this.cached('TXT', name, () => this.lookups.lookupTxt(name));
  }

  address(family: AddressFamily, name: string) {
    return family === 'ipv4'
      ? this.cached('A', name, () => this.lookups.lookupA(name))
      : this.cached('AAAA', name, () => this.lookups.lookupAaaa(name));
  }

  mx(name: string) {
    return this.cached('MX', name, () => this.lookups.lookupMx(name));
  }

  permerror(code: string, message: string): void {
    this.permerrors.push(message);
    this.findings.push(finding(code, 'error', message));
  }

  temperror(message: string): void {
    this.temperrors.push(message);
    this.findings.push(finding('spf_lookup_problem', 'info', message));
  }
}

function emptyCoverage(): Coverage {
  return {
    claims: { ipv4: new AddressClaims('ipv4'), ipv6: new AddressClaims('ipv6') },
    approximate: { ipv4: false, ipv6: false },
  };
}

function markApproximate(coverage: Coverage): void {
  coverage.approximate.ipv4 = true;
  coverage.approximate.ipv6 = true;
}

interface Visit {
  domain: string;
  via: SpfNode['via'];
  term?: string;
  path: string[];
  depth: number;
}

/** Evaluate the SPF record at one name. Returns its tree node and coverage (null if unusable). */
async function visit(
  walk: SpfWalk,
  at: Visit,
): Promise<{
  node: SpfNode;
  coverage: Coverage | null;
  outcome: LookupOutcome<string[]>;
  selection: SpfSelection | null;
  record: SpfRecord | null;
}> {
  const node: SpfNode = {
    domain: at.domain,
    via: at.via,
    status: 'ok',
    dnsLookups: 0,
    children: [],
    ...(at.term ? { term: at.term } : {}),
  };
  const outcome = await walk.txt(at.domain);
  node.lookupStatus = outcome.status;
  const leadingTerm = at.term ? quote(at.term) : '';

  if (isLookupProblem(outcome)) {
    node.status = 'lookup_problem';
    walk.temperror(
      `Could not fetch the SPF record of ${at.domain}${at.term ? ` for ${leadingTerm}` : ''}: ${(outcome as LookupFailure).message}`,
    );
    return { node, coverage: null, outcome, selection: null, record: null };
  }
  const selection = selectSpfRecord(outcome.status === 'ok' ? outcome.records : []);
  if (at.via !== 'root') {
    for (const item of selection.findings.filter((entry) => entry.severity === 'error')) {
      walk.findings.push({ ...item, message: `In the record of ${at.domain}: ${item.message}` });
    }
  }
  if (selection.status !== 'found' || selection.record === undefined) {
    node.status = selection.status === 'multiple' ? 'multiple' : 'none';
    if (at.via !== 'root') {
      if (isMissing(outcome)) {
        walk.voids.ipv4 += 1;
        walk.voids.ipv6 += 1;
      }
      const problem =
        selection.status === 'multiple' ? 'has more than one SPF record' : 'has no SPF record';
      walk.permerror(
        at.via === 'include' ? 'spf_include_missing' : 'spf_redirect_missing',
        `${leadingTerm} points to ${at.domain}, which ${problem}. Receivers return permerror when they reach it.`,
      );
    } else if (selection.status === 'multiple') {
      walk.permerrors.push(`${at.domain} has more than one SPF record.`);
    }
    return { node, coverage: null, outcome, selection, record: null };
  }

  const record = parseSpfRecord(selection.record);
  node.record = record.text;
  if (at.via !== 'root') {
    for (const item of record.findings.filter((entry) => entry.severity === 'error')) {
      walk.findings.push({ ...item, message: `In the record of ${at.domain}: ${item.message}` });
    }
  }
  if (!record.valid) {
    node.status = 'invalid';
    if (at.via === 'root') {
      walk.permerrors.push(`The SPF record of ${at.domain} has syntax errors.`);
    } else {
      walk.permerror(
        'spf_include_invalid',
        `${leadingTerm} points to ${at.domain}, whose SPF record has syntax errors. Receivers return permerror when they reach it.`,
      );
    }
    return { node, coverage: null, outcome, selection, record };
  }

  const coverage = emptyCoverage();
  const path = [...at.path, canonicalDnsName(at.domain)];
  for (const mechanism of record.mechanisms) {
    await applyMechanism(walk, mechanism, at, path, node, coverage);
    if (mechanism.name === 'all') break;
  }
  if (!record.all) await applyRedirect(walk, record, at, path, node, coverage);
  return { node, coverage, outcome, selection, record };
}

function countLookup(walk: SpfWalk, node: SpfNode): void {
  walk.dnsLookups += 1;
  node.dnsLookups += 1;
}

async function applyMechanism(
  walk: SpfWalk,
  mechanism: SpfMechanism,
  at: Visit,
  path: string[],
  node: SpfNode,
  coverage: Coverage,
): Promise<void> {
  const result = qualifierResult(mechanism.qualifier);
  switch (mechanism.name) {
    case 'all':
      for (const family of families) coverage.claims[family].claimRest(result);
      return;
    case 'ip4':
    case 'ip6': {
      const family: AddressFamily = mechanism.name === 'ip4' ? 'ipv4' : 'ipv6';
      const prefix =
        (family === 'ipv4' ? mechanism.ip4Prefix : mechanism.ip6Prefix) ?? familyBits[family];
      const range = rangeOf(mechanism.network ?? '', prefix);
      if (range) coverage.claims[family].claim(range, result);
      return;
    }
    case 'ptr':
      countLookup(walk, node);
      walk.senderDependent = true;
      markApproximate(coverage);
      return;
    case 'a':
    case 'mx':
    case 'exists':
      countLookup(walk, node);
      if (mechanism.hasMacros) {
        walk.senderDependent = true;
        markApproximate(coverage);
        return;
      }
      if (mechanism.name === 'a') await applyA(walk, mechanism, at.domain, coverage, result);
      else if (mechanism.name === 'mx') await applyMx(walk, mechanism, at.domain, coverage, result);
      else await applyExists(walk, mechanism, coverage, result);
      return;
    case 'include':
      countLookup(walk, node);
      await applyInclude(walk, mechanism, at, path, node, coverage, result);
      return;
  }
}

/** Claim `address/prefix` ranges for each address the lookup found. Count a void answer. */
async function claimAddresses(
  walk: SpfWalk,
  family: AddressFamily,
  host: string,
  prefix: number,
  coverage: Coverage,
  result: SpfResult,
  context: string,
): Promise<'ok' | 'missing' | 'problem'> {
  const outcome = await walk.address(family, host);
  if (isLookupProblem(outcome)) {
    walk.temperror(`${context}: ${(outcome as LookupFailure).message}`);
    coverage.approximate[family] = true;
    return 'problem';
  }
  if (outcome.status !== 'ok') {
    walk.voids[family] += 1;
    return 'missing';
  }
  for (const address of outcome.records) {
    const range = rangeOf(address, prefix);
    if (range) coverage.claims[family].claim(range, result);
  }
  return 'ok';
}

async function applyA(
  walk: SpfWalk,
  mechanism: SpfMechanism,
  domain: string,
  coverage: Coverage,
  result: SpfResult,
): Promise<void> {
  const host = mechanism.domainSpec ?? domain;
  const states = await Promise.all(
    families.map((family) =>
      claimAddresses(
        walk,
        family,
        host,
        (family === 'ipv4' ? mechanism.ip4Prefix : mechanism.ip6Prefix) ?? familyBits[family],
        coverage,
        result,
        `Could not resolve ${quote(mechanism.text)} in the record of ${domain}`,
      ),
    ),
  );
  if (states.every((state) => state === 'missing')) {
    walk.findings.push(
      finding(
        'spf_a_no_address',
        'warning',
        `${quote(mechanism.text)} in the record of ${domain} matches nothing: ${host} has no A or AAAA record.`,
      ),
    );
  }
}

async function applyMx(
  walk: SpfWalk,
  mechanism: SpfMechanism,
  domain: string,
  coverage: Coverage,
  result: SpfResult,
): Promise<void> {
  const host = mechanism.domainSpec ?? domain;
  const outcome = await walk.mx(host);
  if (isLookupProblem(outcome)) {
    walk.temperror(
      `Could not resolve ${quote(mechanism.text)} in the record of ${domain}: ${(outcome as LookupFailure).message}`,
    );
    markApproximate(coverage);
    return;
  }
  if (outcome.status !== 'ok') {
    walk.voids.ipv4 += 1;
    walk.voids.ipv6 += 1;
    walk.findings.push(
      finding(
        'spf_mx_none',
        'warning',
        `${quote(mechanism.text)} in the record of ${domain} matches nothing: ${host} has no MX record.`,
      ),
    );
    return;
  }
  // RFC 7208 section 4.6.4: more than 10 MX records is a permerror.
  if (outcome.records.length > maxMxRecords) {
    walk.permerror(
      'spf_mx_too_many',
      `${quote(mechanism.text)} in the record of ${domain} finds ${outcome.records.length} MX records. Receivers return permerror above ${maxMxRecords}.`,
    );
    return;
  }
  const exchanges = [...outcome.records]
    .sort((a, b) => a.priority - b.priority)
    .map((record) => record.exchange);
  for (const exchange of exchanges) {
    for (const family of families) {
      await claimAddresses(
        walk,
        family,
        exchange,
        (family === 'ipv4' ? mechanism.ip4Prefix : mechanism.ip6Prefix) ?? familyBits[family],
        coverage,
        result,
        `Could not resolve the mail server ${exchange} of ${quote(mechanism.text)} in the record of ${domain}`,
      );
    }
  }
}

/** exists matches every sender when its name has an A record, whatever the sender's address. */
async function applyExists(
  walk: SpfWalk,
  mechanism: SpfMechanism,
  coverage: Coverage,
  result: SpfResult,
): Promise<void> {
  const host = mechanism.domainSpec ?? '';
  const outcome = await walk.address('ipv4', host);
  if (isLookupProblem(outcome)) {
    walk.temperror(
      `Could not resolve ${quote(mechanism.text)}: ${(outcome as LookupFailure).message}`,
    );
    markApproximate(coverage);
    return;
  }
  if (outcome.status !== 'ok') {
    walk.voids.ipv4 += 1;
    walk.voids.ipv6 += 1;
    return;
  }
  for (const family of families) coverage.claims[family].claimRest(result);
}

async function applyInclude(
  walk: SpfWalk,
  mechanism: SpfMechanism,
  at: Visit,
  path: string[],
  node: SpfNode,
  coverage: Coverage,
  result: SpfResult,
): Promise<void> {
  const target = mechanism.domainSpec ?? '';
  walk.includes.push(target);
  const child = await follow(walk, target, 'include', mechanism.text, path, at.depth, node);
  if (!child) {
    markApproximate(coverage);
    return;
  }
  // An include matches when the included record gives pass. Any other result falls through.
  for (const family of families) {
    for (const { range, value } of child.claims[family].ranges()) {
      if (value === 'pass') coverage.claims[family].claim(range, result);
    }
    if (child.approximate[family]) coverage.approximate[family] = true;
  }
}

async function applyRedirect(
  walk: SpfWalk,
  record: SpfRecord,
  at: Visit,
  path: string[],
  node: SpfNode,
  coverage: Coverage,
): Promise<void> {
  if (record.redirect === undefined) {
    for (const family of families) coverage.claims[family].claimRest('neutral');
    return;
  }
  countLookup(walk, node);
  walk.includes.push(record.redirect);
  const term =
    record.terms.find((term) => term.kind === 'modifier' && term.name === 'redirect')?.text ??
    `redirect=${record.redirect}`;
  const child = await follow(walk, record.redirect, 'redirect', term, path, at.depth, node);
  if (!child) {
    markApproximate(coverage);
    return;
  }
  // The redirect target's result replaces this record's for every sender not matched so far.
  for (const family of families) {
    for (const { range, value } of child.claims[family].ranges()) {
      coverage.claims[family].claim(range, value);
    }
    if (child.approximate[family]) coverage.approximate[family] = true;
  }
}

/** Follow an include or redirect to `target`, guarding against macros, loops and runaway trees. */
async function follow(
  walk: SpfWalk,
  target: string,
  via: 'include' | 'redirect',
  term: string,
  path: string[],
  depth: number,
  parent: SpfNode,
): Promise<Coverage | null> {
  const base = { domain: target, via, term, dnsLookups: 0, children: [] };
  if (/%/.test(target)) {
    walk.senderDependent = true;
    parent.children.push({ ...base, status: 'sender_dependent' });
    return null;
  }
  const canonical = canonicalDnsName(target);
  if (path.includes(canonical)) {
    parent.children.push({ ...base, status: 'loop' });
    walk.permerror(
      'spf_include_loop',
      `${quote(term)} leads back to ${canonical}, which is already being evaluated. Receivers return permerror.`,
    );
    return null;
  }
  if (depth + 1 > walk.maxDepth || walk.dnsLookups > walk.maxWalkedLookups) {
    parent.children.push({ ...base, status: 'not_followed' });
    return null;
  }
  const visited = await visit(walk, { domain: canonical, via, term, path, depth: depth + 1 });
  parent.children.push(visited.node);
  return visited.coverage;
}

function familyVerdict(
  walk: SpfWalk,
  family: AddressFamily,
  coverage: Coverage | null,
): SpfFamilyVerdict {
  const reasons = [...walk.permerrors, ...walk.temperrors];
  let result: SpfFamilyResult = 'ok';
  if (walk.voids[family] > walk.maxVoidLookups) {
    result = 'permerror_risk';
    reasons.push(
      `${familyName(family)} senders cause ${walk.voids[family]} void lookups, over the limit of ${walk.maxVoidLookups}. Receivers that enforce it return permerror.`,
    );
  }
  if (walk.temperrors.length > 0) result = 'temperror';
  if (walk.permerrors.length > 0) result = 'permerror';
  const pass = coverage ? coverage.claims[family].count('pass') : 0n;
  const whole = 1n << BigInt(familyBits[family]);
  return {
    family,
    result,
    voidLookups: walk.voids[family],
    reasons,
    passAddresses: pass.toString(),
    passShare: shareOfFamily(family, pass),
    open: pass === whole,
    largePassSpace: pass !== whole && pass > largeSpace[family],
    approximate: coverage ? coverage.approximate[family] : true,
  };
}

const resultOrder: SpfFamilyResult[] = ['ok', 'permerror_risk', 'temperror', 'permerror'];

function worse(a: SpfFamilyResult, b: SpfFamilyResult): SpfFamilyResult {
  return resultOrder.indexOf(a) >= resultOrder.indexOf(b) ? a : b;
}

/**
 * Evaluate the SPF policy of `domain` without a sender: fetch and parse its record, walk
 * every include and redirect, and judge the result separately for IPv4 and IPv6 senders,
 * whose void lookups differ. DNS failures give temperror and set `lookupProblem`. They are
 * never taken for missing records.
 */
export async function evaluateSpf(
  domain: string,
  lookups: DnsLookups,
  options: SpfEvaluationOptions = {},
): Promise<SpfEvaluation> {
  const canonical = canonicalDnsName(domain);
  const walk = new SpfWalk(lookups, options);
  const root = await visit(walk, { domain: canonical, via: 'root', path: [], depth: 0 });
  const findings: Finding[] = [
    ...(root.selection?.findings ?? []),
    ...(root.record?.findings ?? []),
  ];

  if (walk.dnsLookups > walk.maxDnsLookups) {
    walk.permerror(
      'spf_lookup_limit',
      `The policy needs ${walk.dnsLookups} DNS lookups (include, a, mx, ptr, exists and redirect, across all includes). Receivers stop at ${walk.maxDnsLookups} and return permerror.`,
    );
  } else if (walk.dnsLookups >= walk.maxDnsLookups - 1 && root.record?.valid) {
    findings.push(
      finding(
        'spf_lookup_near_limit',
        'warning',
        `The policy needs ${walk.dnsLookups} of the ${walk.maxDnsLookups} DNS lookups receivers allow. One more include breaks it.`,
      ),
    );
  }

  const verdicts = {
    ipv4: familyVerdict(walk, 'ipv4', root.coverage),
    ipv6: familyVerdict(walk, 'ipv6', root.coverage),
  };
  for (const family of families) {
    const verdict = verdicts[family];
    const voidReason = verdict.reasons.find((reason) => reason.includes('void lookups'));
    if (voidReason) findings.push(finding('spf_void_limit', 'warning', voidReason));
    if (verdict.open) {
      findings.push(
        finding(
          `spf_open_${family}`,
          'error',
          `Every ${familyName(family)} address passes SPF for ${canonical}: anyone can send mail as this domain over ${familyName(family)}.`,
        ),
      );
    } else if (verdict.largePassSpace) {
      findings.push(
        finding(
          'spf_large_pass_space',
          'warning',
          `${(verdict.passShare * 100).toPrecision(3)} % of the ${familyName(family)} space passes SPF for ${canonical}. Check the prefix lengths.`,
        ),
      );
    }
  }
  findings.push(...walk.findings);

  let status: SpfEvaluation['status'];
  if (isLookupProblem(root.outcome)) status = 'temperror';
  else if (root.selection?.status === 'none') status = 'none';
  else status = worse(verdicts.ipv4.result, verdicts.ipv6.result);

  const evaluation: SpfEvaluation = {
    domain: canonical,
    status,
    lookupProblem: walk.temperrors.length > 0,
    outcome: root.outcome,
    selection: root.selection,
    record: root.record,
    tree: root.node,
    dnsLookups: walk.dnsLookups,
    senderDependent: walk.senderDependent,
    includes: walk.includes,
    families: verdicts,
    findings,
    summary: '',
  };
  evaluation.summary = summariseSpf(evaluation);
  return evaluation;
}

const resultWords: Record<SpfFamilyResult, string> = {
  ok: 'valid',
  permerror_risk: 'permerror at receivers that enforce the void lookup limit',
  permerror: 'permerror',
  temperror: 'not fully checked because a lookup failed',
};

function summariseSpf(evaluation: SpfEvaluation): string {
  const name = `SPF for ${evaluation.domain}`;
  if (evaluation.status === 'none') return `${name}: no SPF record, so receivers return none.`;
  if (!evaluation.record) {
    return `${name}: ${resultWords[evaluation.status === 'ok' ? 'ok' : evaluation.status]}.`;
  }
  const { ipv4, ipv6 } = evaluation.families;
  const verdict =
    ipv4.result === ipv6.result
      ? `${resultWords[ipv4.result]} for IPv4 and IPv6 senders`
      : `${resultWords[ipv4.result]} for IPv4 senders, ${resultWords[ipv6.result]} for IPv6 senders`;
  return `${name}: ${evaluation.dnsLookups} DNS lookups; ${verdict}.`;
}
