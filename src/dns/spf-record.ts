// SPF records (RFC 7208): choosing the record among a name's TXT records, parsing its terms
// to the RFC's grammar and the checks that need no DNS. Walking include and redirect and
// counting lookups is in spf-evaluation.ts.
import type { Finding } from './findings.ts';
import { finding, joinTxtStrings, quote } from './findings.ts';
import { isStrictIpv4, isStrictIpv6 } from './ip-space.ts';

export type SpfQualifier = '+' | '-' | '~' | '?';
export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral';
export type SpfMechanismName = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';

export interface SpfMechanism {
  kind: 'mechanism';
  name: SpfMechanismName;
  qualifier: SpfQualifier;
  /** The domain-spec as written, macros unexpanded. Absent when the term has none. */
  domainSpec?: string;
  /** The network of ip4 and ip6. */
  network?: string;
  /** Prefix length for IPv4 addresses (ip4, a, mx), when given. */
  ip4Prefix?: number;
  /** Prefix length for IPv6 addresses (ip6, a, mx), when given. */
  ip6Prefix?: number;
  /** True when the domain-spec contains macros, so its target depends on the sender. */
  hasMacros: boolean;
  text: string;
}

export interface SpfModifier {
  kind: 'modifier';
  /** Lower-cased modifier name. */
  name: string;
  value: string;
  hasMacros: boolean;
  text: string;
}

export type SpfTerm = SpfMechanism | SpfModifier;

export interface SpfRecord {
  text: string;
  /** False when the record breaks RFC 7208's grammar, which makes any evaluation permerror. */
  valid: boolean;
  terms: SpfTerm[];
  /** The mechanisms, in order. */
  mechanisms: SpfMechanism[];
  /** The first `all` mechanism, which ends evaluation for every sender that reaches it. */
  all?: SpfMechanism;
  /** The redirect target, only when no `all` makes it unreachable. */
  redirect?: string;
  exp?: string;
  findings: Finding[];
}

export interface SpfSelection {
  status: 'found' | 'none' | 'multiple';
  record?: string;
  candidates: string[];
  others: string[];
  findings: Finding[];
}

/** Terms that make the receiver query DNS, counted against the limit of 10 (section 4.6.4). */
export const lookupMechanisms: ReadonlySet<string> = new Set([
  'include',
  'a',
  'mx',
  'ptr',
  'exists',
]);

const qualifierResults: Record<SpfQualifier, SpfResult> = {
  '+': 'pass',
  '-': 'fail',
  '~': 'softfail',
  '?': 'neutral',
};

/** Return the result a mechanism with this qualifier gives when it matches. */
export function qualifierResult(qualifier: SpfQualifier): SpfResult {
  return qualifierResults[qualifier];
}

// RFC 7208 section 4.5: exactly "v=spf1" (any case) followed by a space or the end.
const versionPattern = /^v=spf1(?: |$)/i;

/** True when the joined TXT text is an SPF record by RFC 7208 section 4.5. */
export function isSpfRecordText(text: string): boolean {
  return versionPattern.test(text);
}

function nearMissReason(text: string): string | undefined {
  if (/^\s+v=spf1/i.test(text)) return 'starts with whitespace';
  if (/^v=spf1\S/i.test(text)) return `does not have a space right after v=spf1`;
  if (/^v\s*=\s*spf1/i.test(text)) return 'has spaces around "="';
  return undefined;
}

/**
 * Pick the SPF record among the TXT records of one name. Records that only look like SPF are
 * discarded, not invalid: a domain with only those has no SPF at all (result "none").
 */
export function selectSpfRecord(records: readonly (readonly string[])[]): SpfSelection {
  const texts = records.map(joinTxtStrings);
  const candidates = texts.filter(isSpfRecordText);
  const others = texts.filter((text) => !isSpfRecordText(text));
  const findings: Finding[] = [];
  for (const text of others) {
    const reason = nearMissReason(text);
    if (reason) {
      findings.push(
        finding(
          'spf_not_a_record',
          'error',
          `The TXT record ${quote(text)} ${reason}, so receivers do not take it as an SPF record.`,
        ),
      );
    } else if (/^spf2\.0\//i.test(text)) {
      findings.push(
        finding(
          'spf_sender_id',
          'info',
          `The Sender ID record ${quote(text)} is obsolete. Receivers ignore it.`,
        ),
      );
    }
  }
  if (candidates.length > 1) {
    findings.push(
      finding(
        'spf_multiple_records',
        'error',
        `There are ${candidates.length} SPF records at this name. Receivers return permerror. Merge them into one.`,
      ),
    );
    return { status: 'multiple', candidates, others, findings };
  }
  if (candidates.length === 0) return { status: 'none', candidates, others, findings };
  return { status: 'found', record: candidates[0], candidates, others, findings };
}

const macroLetters = new Set(['s', 'l', 'o', 'd', 'i', 'p', 'h', 'c', 'r', 't', 'v']);
// RFC 7208 section 7.2: c, r and t are only for exp text, the explanation string.
const expOnlyLetters = new Set(['c', 'r', 't']);

interface MacroCheck {
  problem?: string;
  hasMacros: boolean;
  letters: string[];
  /** True when the string ends with a macro-expand, which may stand in for domain-end. */
  endsWithMacro: boolean;
}

/** Check a macro-string (RFC 7208 section 7.1) for syntax and for letters used out of place. */
function checkMacroString(value: string): MacroCheck {
  const letters: string[] = [];
  let index = 0;
  let endsWithMacro = false;
  while (index < value.length) {
    const char = value[index] ?? '';
    if (char !== '%') {
      const code = char.charCodeAt(0);
      if (code < 0x21 || code > 0x7e) {
        return {
          problem: `contains the character ${JSON.stringify(char)}`,
          hasMacros: letters.length > 0,
          letters,
          endsWithMacro,
        };
      }
      index += 1;
      endsWithMacro = false;
      continue;
    }
    const next = value[index + 1];
    if (next === '%' || next === '_' || next === '-') {
      index += 2;
      endsWithMacro = true;
      continue;
    }
    if (next !== '{') {
      return {
        problem: `has a "%" that starts no macro (write %% for a literal %)`,
        hasMacros: true,
        letters,
        endsWithMacro,
      };
    }
    const close = value.indexOf('}', index);
    const body = close === -1 ? '' : value.slice(index + 2, close);
    const match = /^([A-Za-z])(\d*)(r?)([.\-+,/_=]*)$/i.exec(body);
    if (close === -1 || !match) {
      return {
        problem: `has the malformed macro ${quote(value.slice(index, close === -1 ? undefined : close + 1))}`,
        hasMacros: true,
        letters,
        endsWithMacro,
      };
    }
    const letter = (match[1] ?? '').toLowerCase();
    if (!macroLetters.has(letter)) {
      return {
        problem: `uses the unknown macro letter "${match[1]}"`,
        hasMacros: true,
        letters,
        endsWithMacro,
      };
    }
    if (match[2] === '0') {
      return {
        problem: 'uses a macro that keeps zero labels',
        hasMacros: true,
        letters,
        endsWithMacro,
      };
    }
    letters.push(letter);
    index = close + 1;
    endsWithMacro = true;
  }
  return { hasMacros: letters.length > 0 || value.includes('%'), letters, endsWithMacro };
}

/**
 * Check a domain-spec: a macro-string ending in "." and a top label (not all digits) or in
 * a macro. Returns the problem as a sentence fragment, or undefined.
 */
function checkDomainSpec(spec: string): {
  problem?: string;
  hasMacros: boolean;
  letters: string[];
} {
  if (spec === '') return { problem: 'has an empty domain', hasMacros: false, letters: [] };
  const macros = checkMacroString(spec);
  if (macros.problem) return macros;
  const outOfPlace = macros.letters.find((letter) => expOnlyLetters.has(letter));
  if (outOfPlace) {
    return {
      ...macros,
      problem: `uses the macro letter "${outOfPlace}", which is allowed only in explanation text`,
    };
  }
  if (macros.endsWithMacro) return macros;
  const trimmed = spec.endsWith('.') ? spec.slice(0, -1) : spec;
  const lastDot = trimmed.lastIndexOf('.');
  if (lastDot === -1) return { ...macros, problem: `has the single-label domain ${quote(spec)}` };
  const top = trimmed.slice(lastDot + 1);
  const toplabel = /^(?:[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9-]*[a-z0-9])$/i;
  if (!toplabel.test(top)) {
    return { ...macros, problem: `does not end in a valid top label (${quote(top)})` };
  }
  return macros;
}

// RFC 7208 ip4-cidr-length and ip6-cidr-length: no leading zeros.
const prefixPattern = /^(?:0|[1-9]\d{0,2})$/;

function parsePrefix(text: string | undefined, max: number): number | null | undefined {
  if (text === undefined) return undefined;
  if (!prefixPattern.test(text)) return null;
  const value = Number(text);
  return value <= max ? value : null;
}

type ParsedTerm = { term?: SpfTerm; problem?: string; hint?: Finding };

function parseMechanism(text: string): ParsedTerm {
  const match = /^([+\-~?]?)([A-Za-z0-9]+)(.*)$/s.exec(text);
  if (!match) return { problem: `${quote(text)} is not a mechanism or modifier` };
  const qualifier = (match[1] || '+') as SpfQualifier;
  const name = (match[2] ?? '').toLowerCase();
  const rest = match[3] ?? '';
  const base = { kind: 'mechanism' as const, qualifier, text, hasMacros: false };

  switch (name) {
    case 'all':
      if (rest !== '') return { problem: `${quote(text)} has text after "all"` };
      return { term: { ...base, name } };
    case 'include':
    case 'exists': {
      if (!rest.startsWith(':')) return { problem: `${quote(text)} needs ":" and a domain` };
      const spec = rest.slice(1);
      const check = checkDomainSpec(spec);
      if (check.problem) return { problem: `${quote(text)} ${check.problem}` };
      return { term: { ...base, name, domainSpec: spec, hasMacros: check.hasMacros } };
    }
    case 'a':
    case 'mx': {
      const cidr = /^(.*?)(?:\/([0-9]*))?(?:\/\/([0-9]*))?$/s.exec(rest);
      const head = cidr?.[1] ?? rest;
      const ip4 = parsePrefix(cidr?.[2], 32);
      const ip6 = parsePrefix(cidr?.[3], 128);
      if (ip4 === null || ip6 === null) {
        return { problem: `${quote(text)} has an invalid prefix length` };
      }
      let spec: string | undefined;
      if (head !== '') {
        if (!head.startsWith(':')) {
          return { problem: `${quote(text)} is not a valid ${name} mechanism` };
        }
        spec = head.slice(1);
      }
      let hasMacros = false;
      if (spec !== undefined) {
        const check = checkDomainSpec(spec);
        if (check.problem) return { problem: `${quote(text)} ${check.problem}` };
        hasMacros = check.hasMacros;
      }
      return {
        term: {
          ...base,
          name,
          hasMacros,
          ...(spec === undefined ? {} : { domainSpec: spec }),
          ...(ip4 === undefined ? {} : { ip4Prefix: ip4 }),
          ...(ip6 === undefined ? {} : { ip6Prefix: ip6 }),
        },
      };
    }
    case 'ptr': {
      if (rest === '') return { term: { ...base, name } };
      if (!rest.startsWith(':')) return { problem: `${quote(text)} is not a valid ptr mechanism` };
      const spec = rest.slice(1);
      const check = checkDomainSpec(spec);
      if (check.problem) return { problem: `${quote(text)} ${check.problem}` };
      return { term: { ...base, name, domainSpec: spec, hasMacros: check.hasMacros } };
    }
    case 'ip4':
    case 'ip6': {
      if (!rest.startsWith(':')) return { problem: `${quote(text)} needs ":" and an address` };
      const value = rest.slice(1);
      const slash = value.indexOf('/');
      const network = slash === -1 ? value : value.slice(0, slash);
      const maxPrefix = name === 'ip4' ? 32 : 128;
      const prefix = slash === -1 ? undefined : parsePrefix(value.slice(slash + 1), maxPrefix);
      const validAddress = name === 'ip4' ? isStrictIpv4(network) : isStrictIpv6(network);
      if (!validAddress) {
        return {
          problem: `${quote(text)} has the invalid ${name === 'ip4' ? 'IPv4' : 'IPv6'} address ${quote(network)}`,
        };
      }
      if (prefix === null) return { problem: `${quote(text)} has an invalid prefix length` };
      const term: SpfMechanism = { ...base, name, network };
      if (prefix !== undefined && name === 'ip4') term.ip4Prefix = prefix;
      if (prefix !== undefined && name === 'ip6') term.ip6Prefix = prefix;
      return { term };
    }
    default:
      return { problem: `${quote(text)} is not a known mechanism` };
  }
}

function parseTerm(text: string): ParsedTerm {
  const modifier = /^([A-Za-z][A-Za-z0-9\-_.]*)=(.*)$/s.exec(text);
  if (!modifier) return parseMechanism(text);
  const name = (modifier[1] ?? '').toLowerCase();
  const value = modifier[2] ?? '';
  if (name === 'redirect' || name === 'exp') {
    const check = checkDomainSpec(value);
    if (check.problem) return { problem: `${quote(text)} ${check.problem}` };
    return { term: { kind: 'modifier', name, value, hasMacros: check.hasMacros, text } };
  }
  const macros = checkMacroString(value);
  if (macros.problem) return { problem: `${quote(text)} ${macros.problem}` };
  const term: SpfModifier = { kind: 'modifier', name, value, hasMacros: macros.hasMacros, text };
  if (lookupMechanisms.has(name) || ['all', 'ip4', 'ip6'].includes(name)) {
    return {
      term,
      hint: finding(
        'spf_mechanism_as_modifier',
        'error',
        `${quote(text)} uses "=" where the ${name} mechanism needs ":", so receivers ignore it as an unknown modifier.`,
      ),
    };
  }
  return { term };
}

/**
 * Parse the text of one SPF record (strings already joined) and run the checks that need no
 * DNS: grammar, duplicate modifiers, unreachable terms, ptr, macros and size.
 */
export function parseSpfRecord(text: string): SpfRecord {
  const findings: Finding[] = [];
  const terms: SpfTerm[] = [];
  let valid = true;
  const fail = (message: string) => {
    valid = false;
    findings.push(
      finding('spf_syntax', 'error', `${message}. Receivers return permerror for this record.`),
    );
  };

  const body = text.replace(/^v=spf1/i, '');
  // RFC 7208 section 4.6.1: terms are separated by spaces only. Tabs and line breaks break it.
  const control = /[^\x20-\x7e]/.exec(body);
  if (control) {
    fail(
      `The record contains the character ${JSON.stringify(control[0])}, which SPF does not allow between or inside terms`,
    );
  }
  for (const part of body.split(' ')) {
    if (part === '' || (control && /[^\x20-\x7e]/.test(part))) continue;
    const parsed = parseTerm(part);
    if (parsed.problem) fail(`The term ${parsed.problem}`);
    if (parsed.hint) findings.push(parsed.hint);
    if (parsed.term) terms.push(parsed.term);
  }

  const mechanisms = terms.filter((term): term is SpfMechanism => term.kind === 'mechanism');
  const modifiers = terms.filter((term): term is SpfModifier => term.kind === 'modifier');
  for (const name of ['redirect', 'exp']) {
    const count = modifiers.filter((modifier) => modifier.name === name).length;
    if (count > 1) fail(`The ${name} modifier appears ${count} times, but at most once is allowed`);
  }

  const allIndex = mechanisms.findIndex((mechanism) => mechanism.name === 'all');
  const all = allIndex === -1 ? undefined : mechanisms[allIndex];
  const redirectModifier = modifiers.find((modifier) => modifier.name === 'redirect');
  const exp = modifiers.find((modifier) => modifier.name === 'exp')?.value;
  const unreachable = allIndex === -1 ? [] : mechanisms.slice(allIndex + 1);
  if (unreachable.length > 0) {
    findings.push(
      finding(
        'spf_terms_after_all',
        'warning',
        `${unreachable.map((mechanism) => quote(mechanism.text)).join(', ')} ${unreachable.length > 1 ? 'come' : 'comes'} after "${all?.text}" and ${unreachable.length > 1 ? 'are' : 'is'} never evaluated.`,
      ),
    );
  }
  if (redirectModifier && all) {
    findings.push(
      finding(
        'spf_redirect_ignored',
        'warning',
        `${quote(redirectModifier.text)} is ignored because "${all.text}" is present. Every sender that no earlier term matches gets the ${qualifierResult(all.qualifier)} result of "${all.text}".`,
      ),
    );
  }
  if (mechanisms.some((mechanism) => mechanism.name === 'ptr')) {
    findings.push(
      finding(
        'spf_ptr',
        'warning',
        'The record uses ptr, which RFC 7208 says not to use: it is slow, unreliable and many receivers skip it.',
      ),
    );
  }
  if (terms.some((term) => term.hasMacros && /%\{p/i.test(term.text))) {
    findings.push(
      finding(
        'spf_p_macro',
        'warning',
        'The record uses the %{p} macro, which RFC 7208 says not to use because it needs slow PTR lookups.',
      ),
    );
  }
  if (mechanisms.some((mechanism) => mechanism.hasMacros)) {
    findings.push(
      finding(
        'spf_macros',
        'info',
        'The record uses macros, so some lookups depend on the sender. Each such term is counted once and not resolved here.',
      ),
    );
  }

  const bytes = Buffer.byteLength(text);
  if (bytes > 512) {
    findings.push(
      finding(
        'spf_record_too_long',
        'warning',
        `The record is ${bytes} bytes long. Answers over 512 bytes may need TCP, and some receivers fail to fetch them.`,
      ),
    );
  } else if (bytes > 450) {
    findings.push(
      finding(
        'spf_record_long',
        'info',
        `The record is ${bytes} bytes long, close to the 512 bytes that fit a plain UDP answer.`,
      ),
    );
  }

  if (valid) findings.push(...endingFindings(all, redirectModifier));

  return {
    text,
    valid,
    terms,
    mechanisms,
    ...(all ? { all } : {}),
    ...(redirectModifier && !all ? { redirect: redirectModifier.value } : {}),
    ...(exp === undefined ? {} : { exp }),
    findings,
  };
}

function endingFindings(
  all: SpfMechanism | undefined,
  redirect: SpfModifier | undefined,
): Finding[] {
  if (all?.qualifier === '+') {
    return [
      finding(
        'spf_pass_all',
        'error',
        `The record ends with "${all.text}", which lets any server in the world send mail as this domain.`,
      ),
    ];
  }
  if (all?.qualifier === '?') {
    return [
      finding(
        'spf_neutral_all',
        'warning',
        `The record ends with "${all.text}": unlisted senders get neutral, so SPF does not mark forged mail.`,
      ),
    ];
  }
  if (!all && !redirect) {
    return [
      finding(
        'spf_no_all',
        'warning',
        'The record has neither an all mechanism nor a redirect, so unlisted senders get neutral. End it with -all or ~all.',
      ),
    ];
  }
  return [];
}

/** Lower-case the literal parts of a domain-spec, keeping macros (their case has meaning). */
function canonicalDomainSpec(spec: string): string {
  return spec
    .split(/(%\{[^}]*\}|%[%_-])/)
    .map((part, index) => (index % 2 === 1 ? part : part.toLowerCase()))
    .join('')
    .replace(/\.$/, '');
}

/** Write one term in canonical form: explicit qualifier, lower-case names, default prefixes omitted. */
export function canonicalSpfTerm(term: SpfTerm): string {
  if (term.kind === 'modifier') {
    const value =
      term.name === 'redirect' || term.name === 'exp'
        ? canonicalDomainSpec(term.value)
        : term.value;
    return `${term.name}=${value}`;
  }
  let text = `${term.qualifier}${term.name}`;
  if (term.name === 'ip4' || term.name === 'ip6') {
    const prefix = term.name === 'ip4' ? term.ip4Prefix : term.ip6Prefix;
    const max = term.name === 'ip4' ? 32 : 128;
    const network = (term.network ?? '').toLowerCase();
    return `${text}:${network}${prefix === undefined || prefix === max ? '' : `/${prefix}`}`;
  }
  if (term.domainSpec !== undefined) text += `:${canonicalDomainSpec(term.domainSpec)}`;
  if (term.ip4Prefix !== undefined && term.ip4Prefix !== 32) text += `/${term.ip4Prefix}`;
  if (term.ip6Prefix !== undefined && term.ip6Prefix !== 128) text += `//${term.ip6Prefix}`;
  return text;
}

/** Write the record in canonical form, one space between terms, so equal texts mean the same. */
export function canonicalSpfText(record: SpfRecord): string {
  return ['v=spf1', ...record.terms.map(canonicalSpfTerm)].join(' ');
}
