// Verdicts on a parsed DMARC record per dialect: whether receivers apply DMARC, and which
// policy failing mail from the domain and its subdomains gets.
import type {
  AppliedPolicy,
  DmarcEnforcement,
  DmarcPolicy,
  DmarcRecord,
  DmarcTagValue,
  DmarcUri,
  DmarcVerdict,
} from './dmarc-record.ts';
import type { DmarcDialect } from './findings.ts';

const strength: Record<DmarcPolicy, number> = { none: 0, quarantine: 1, reject: 2 };

/** Order policies by how much failing mail they stop. Used to detect weakening. */
export function policyStrength(policy: DmarcPolicy): number {
  return strength[policy];
}

function oneLevelLess(policy: DmarcPolicy): DmarcPolicy {
  return policy === 'reject' ? 'quarantine' : 'none';
}

function hasValidUri(value: DmarcTagValue<DmarcUri[]>): boolean {
  return value.state === 'valid' && value.value.some((uri) => uri.valid);
}

function policyValue(value: DmarcTagValue<DmarcPolicy>): DmarcPolicy | undefined {
  return value.state === 'valid' ? value.value : undefined;
}

/**
 * Decide what receivers of one dialect do with a parsed record: whether DMARC applies, the
 * policy for the domain, its subdomains and non-existent subdomains, and how much of it.
 */
export function dmarcVerdict(record: DmarcRecord, dialect: DmarcDialect): DmarcVerdict {
  const rua = hasValidUri(record.aggregateReportUris);
  const p = record.policy;
  const sp = record.subdomainPolicy;
  const absentNp: DmarcTagValue<DmarcPolicy> = { state: 'absent' };
  const np = dialect === 'rfc9989' ? record.nonexistentSubdomainPolicy : absentNp;

  // RFC 7489 section 6.6.3 and RFC 9989 section 4.10.1: an invalid p, sp (or, in RFC 9989,
  // np) means "act as p=none" when rua has a valid URI, and no DMARC processing otherwise.
  // RFC 9989 reads a missing p as p=none; RFC 7489 requires p, so it falls under the rule.
  const pUsable = p.state === 'valid' || (dialect === 'rfc9989' && p.state === 'absent');
  const broken = !pUsable || sp.state === 'invalid' || np.state === 'invalid';
  if (broken && !rua) {
    return notApplied(dialect, notAppliedReason(dialect, record));
  }

  const requested: DmarcPolicy = broken ? 'none' : (policyValue(p) ?? 'none');
  const subRequested: DmarcPolicy = broken ? 'none' : (policyValue(sp) ?? requested);
  const npRequested: DmarcPolicy = broken ? 'none' : (policyValue(np) ?? subRequested);

  let percentage: number | null = null;
  let testing = false;
  let apply: (policy: DmarcPolicy) => AppliedPolicy;
  if (dialect === 'rfc7489') {
    const stated = record.percentage.state === 'valid' ? record.percentage.value : 100;
    percentage = broken ? 100 : stated;
    const share = percentage;
    // RFC 7489 section 6.6.4: mail outside the pct sample gets the next lower policy.
    apply = (policy) => ({
      requested: policy,
      weakest: share < 100 ? oneLevelLess(policy) : policy,
      strongest: share > 0 ? policy : oneLevelLess(policy),
    });
  } else {
    testing = !broken && record.testing.state === 'valid' && record.testing.value === 'y';
    // RFC 9989 section 4.7: with t=y failing mail gets one level below the stated policy.
    apply = (policy) => {
      const applied = testing ? oneLevelLess(policy) : policy;
      return { requested: policy, weakest: applied, strongest: applied };
    };
  }

  const domain = apply(requested);
  const verdict: DmarcVerdict = {
    dialect,
    applies: true,
    fallbackToNone: broken,
    enforcement: enforcementOf(domain),
    domain,
    subdomains: apply(subRequested),
    nonexistentSubdomains: apply(npRequested),
    percentage,
    testing,
    aggregateReports: rua,
    summary: '',
  };
  verdict.summary = summarise(verdict);
  return verdict;
}

function notAppliedReason(dialect: DmarcDialect, record: DmarcRecord): string {
  if (record.policy.state === 'absent' && dialect === 'rfc7489') {
    return 'the record has no p tag and no valid rua address';
  }
  const bad = [
    record.policy.state !== 'valid' && (dialect === 'rfc7489' || record.policy.state === 'invalid')
      ? 'p'
      : '',
    record.subdomainPolicy.state === 'invalid' ? 'sp' : '',
    dialect === 'rfc9989' && record.nonexistentSubdomainPolicy.state === 'invalid' ? 'np' : '',
  ].filter(Boolean);
  return `${bad.join(' and ')} ${bad.length > 1 ? 'are' : 'is'} invalid and there is no valid rua address`;
}

export function notApplied(dialect: DmarcDialect, reason: string): DmarcVerdict {
  return {
    dialect,
    applies: false,
    fallbackToNone: false,
    enforcement: 'not_applied',
    domain: null,
    subdomains: null,
    nonexistentSubdomains: null,
    percentage: null,
    testing: false,
    aggregateReports: false,
    summary: `${dialectName(dialect)} receivers apply no DMARC processing because ${reason}.`,
  };
}

function enforcementOf(applied: AppliedPolicy): DmarcEnforcement {
  if (applied.strongest === 'none') return 'monitoring';
  if (applied.weakest !== applied.strongest) return 'partial';
  return 'enforcing';
}

export function dialectName(dialect: DmarcDialect): string {
  return dialect === 'rfc7489' ? 'RFC 7489' : 'RFC 9989';
}

function describeApplied(applied: AppliedPolicy): string {
  if (applied.weakest === applied.strongest) {
    return applied.weakest === applied.requested
      ? applied.requested
      : `${applied.weakest} (one level below the requested ${applied.requested})`;
  }
  return `${applied.strongest} for part of the mail and ${applied.weakest} for the rest`;
}

function summarise(verdict: DmarcVerdict): string {
  const name = dialectName(verdict.dialect);
  const { domain, subdomains } = verdict;
  if (!domain || !subdomains) return `${name} receivers apply no DMARC processing.`;
  const fallback = verdict.fallbackToNone
    ? ' because an invalid policy tag makes them fall back to p=none'
    : '';
  const sub =
    describeApplied(subdomains) === describeApplied(domain)
      ? ''
      : `, and ${describeApplied(subdomains)} to subdomains`;
  return `${name} receivers apply ${describeApplied(domain)} to failing mail${sub}${fallback}.`;
}
