// Policy discovery for a domain without a DMARC record of its own, and the check that report
// addresses in another organization have agreed to receive reports.
// RFC 9989 replaced RFC 7489's public suffix list with a walk up the DNS tree, so the two
// dialects can pick different records. Both are computed.
import type { DmarcEvaluation, DmarcRecord, AppliedPolicy, DmarcVerdict } from './dmarc-record.ts';
import { evaluateDmarcTxt, isDmarcRecordText } from './dmarc-record.ts';
import { dialectName } from './dmarc-verdict.ts';
import type { DmarcDialect, Finding } from './findings.ts';
import { finding, joinTxtStrings } from './findings.ts';
import { labelsOf, lastLabels } from './names.ts';
import type { DnsLookups, LookupFailure, LookupOutcome, LookupStatus } from './resolver.ts';
import { canonicalDnsName, isLookupProblem } from './resolver.ts';

/** RFC 9989 section 4.10: names of more than eight labels are shortened to seven first. */
const maxWalkLabels = 8;

export interface DmarcWalkStep {
  /** The domain whose `_dmarc` name was queried. */
  domain: string;
  status: LookupStatus;
  /** The selection result of the TXT records, or null when the lookup failed. */
  selection: 'found' | 'none' | 'multiple' | null;
  publicSuffix?: 'y' | 'n' | 'u';
}

export type DmarcPolicySource = 'author_domain' | 'organizational_domain' | 'public_suffix_domain';

export interface DmarcDiscovery {
  dialect: DmarcDialect;
  domain: string;
  status: 'found' | 'not_found' | 'lookup_problem';
  /** The domain whose `_dmarc` record applies, how it relates to `domain`, and its evaluation. */
  source: { domain: string; relation: DmarcPolicySource; evaluation: DmarcEvaluation } | null;
  /** The verdict of the applied record for this dialect. */
  verdict: DmarcVerdict | null;
  /**
   * The policy failing mail from `domain` gets: the record's p for its own record, its sp
   * (for an existing domain) when the record belongs to a parent.
   */
  applied: AppliedPolicy | null;
  organizationalDomain: string | null;
  steps: DmarcWalkStep[];
  /** The lookup that failed, when status is lookup_problem. */
  problem: LookupFailure | null;
  summary: string;
}

export interface DmarcDiscoveryOptions {
  /**
   * The Organizational Domain as RFC 7489 receivers determine it, usually from a public
   * suffix list. Without it, RFC 7489 discovery uses the Organizational Domain that the
   * RFC 9989 tree walk finds, which agrees for ordinary registered domains.
   */
  organizationalDomain?: (domain: string) => string | undefined;
}

type TxtLookup = (name: string) => Promise<LookupOutcome<string[]>>;

/** Share TXT lookups between the walks of one check, so each name is queried once. */
function memoisedTxt(lookups: DnsLookups): TxtLookup {
  const cache = new Map<string, Promise<LookupOutcome<string[]>>>();
  return (name) => {
    const key = canonicalDnsName(name);
    let pending = cache.get(key);
    if (!pending) {
      pending = lookups.lookupTxt(key);
      cache.set(key, pending);
    }
    return pending;
  };
}

/**
 * List the domains an RFC 9989 tree walk queries after `domain`, longest first. Each has one
 * label less, except that names of eight labels or more jump to seven labels.
 */
export function treeWalkTargets(domain: string): string[] {
  const count = labelsOf(domain).length;
  const targets: string[] = [];
  let next = count >= maxWalkLabels ? maxWalkLabels - 1 : count - 1;
  for (; next >= 1; next -= 1) targets.push(lastLabels(domain, next));
  return targets;
}

interface WalkResult {
  steps: DmarcWalkStep[];
  found: { domain: string; evaluation: DmarcEvaluation }[];
  problem: LookupFailure | null;
}

/** Query `_dmarc.<domain>` for each domain in order, stopping at psd=y, psd=n or a failure. */
async function walk(domains: string[], txt: TxtLookup): Promise<WalkResult> {
  const result: WalkResult = { steps: [], found: [], problem: null };
  for (const domain of domains) {
    const outcome = await txt(`_dmarc.${domain}`);
    if (isLookupProblem(outcome)) {
      result.steps.push({ domain, status: outcome.status, selection: null });
      result.problem = outcome as LookupFailure;
      return result;
    }
    const evaluation = evaluateDmarcTxt(outcome.status === 'ok' ? outcome.records : []);
    const step: DmarcWalkStep = {
      domain,
      status: outcome.status,
      selection: evaluation.selection.status,
    };
    const psd = evaluation.record?.publicSuffix;
    if (psd?.state === 'valid') step.publicSuffix = psd.value;
    result.steps.push(step);
    if (evaluation.selection.status !== 'found') continue;
    result.found.push({ domain, evaluation });
    if (psd?.state === 'valid' && psd.value !== 'u') break;
  }
  return result;
}

/**
 * Pick the Organizational Domain from the records a walk found, longest name first (RFC 9989
 * section 4.10.2): a psd=n record is it. A psd=y record other than the start's makes it the
 * domain one label below. Otherwise the record with the fewest labels. Else the start.
 */
function organizationalDomainOf(start: string, found: WalkResult['found']): string {
  for (const { domain, evaluation } of found) {
    const psd = evaluation.record?.publicSuffix;
    if (psd?.state === 'valid' && psd.value === 'n') return domain;
    if (psd?.state === 'valid' && psd.value === 'y' && domain !== start) {
      return lastLabels(start, labelsOf(domain).length + 1);
    }
  }
  const shortest = found[found.length - 1];
  return shortest ? shortest.domain : start;
}

/**
 * Determine the Organizational Domain of `domain` by the RFC 9989 tree walk, starting at the
 * domain itself. A failed lookup makes the result unknown, never "no record".
 */
export async function discoverOrganizationalDomain(
  domain: string,
  lookups: DnsLookups,
): Promise<{
  organizationalDomain: string | null;
  steps: DmarcWalkStep[];
  problem: LookupFailure | null;
}> {
  return organizationalDomainWithTxt(canonicalDnsName(domain), memoisedTxt(lookups));
}

async function organizationalDomainWithTxt(domain: string, txt: TxtLookup) {
  const result = await walk([domain, ...treeWalkTargets(domain)], txt);
  if (result.problem) {
    return { organizationalDomain: null, steps: result.steps, problem: result.problem };
  }
  return {
    organizationalDomain: organizationalDomainOf(domain, result.found),
    steps: result.steps,
    problem: null,
  };
}

function discovery(
  dialect: DmarcDialect,
  domain: string,
  fields: Partial<DmarcDiscovery> & Pick<DmarcDiscovery, 'status' | 'steps'>,
): DmarcDiscovery {
  const source = fields.source ?? null;
  const verdict = source ? source.evaluation.verdicts[dialect] : null;
  let applied: AppliedPolicy | null = null;
  if (verdict?.applies) {
    applied = source?.relation === 'author_domain' ? verdict.domain : verdict.subdomains;
  }
  const result: DmarcDiscovery = {
    dialect,
    domain,
    status: fields.status,
    source,
    verdict,
    applied,
    organizationalDomain: fields.organizationalDomain ?? null,
    steps: fields.steps,
    problem: fields.problem ?? null,
    summary: '',
  };
  result.summary = summariseDiscovery(result);
  return result;
}

function summariseDiscovery(result: DmarcDiscovery): string {
  const name = dialectName(result.dialect);
  if (result.status === 'lookup_problem') {
    return `${name} policy discovery for ${result.domain} could not finish: ${result.problem?.message ?? 'a lookup failed.'}`;
  }
  if (!result.source) return `${name} receivers find no DMARC record for ${result.domain}.`;
  const where =
    result.source.relation === 'author_domain'
      ? `its own record at _dmarc.${result.source.domain}`
      : `the ${result.source.relation === 'public_suffix_domain' ? 'public suffix' : 'organizational'} domain record at _dmarc.${result.source.domain}`;
  return `${name} receivers use ${where}. ${result.verdict?.summary ?? ''}`.trim();
}

async function discoverRfc9989(domain: string, txt: TxtLookup): Promise<DmarcDiscovery> {
  const own = await walk([domain], txt);
  if (own.problem) {
    return discovery('rfc9989', domain, {
      status: 'lookup_problem',
      steps: own.steps,
      problem: own.problem,
    });
  }
  const mine = own.found[0];
  if (mine) {
    return discovery('rfc9989', domain, {
      status: 'found',
      steps: own.steps,
      source: { domain, relation: 'author_domain', evaluation: mine.evaluation },
    });
  }

  const parents = await walk(treeWalkTargets(domain), txt);
  const steps = [...own.steps, ...parents.steps];
  if (parents.problem) {
    return discovery('rfc9989', domain, {
      status: 'lookup_problem',
      steps,
      problem: parents.problem,
    });
  }
  if (parents.found.length === 0) {
    return discovery('rfc9989', domain, {
      status: 'not_found',
      steps,
      organizationalDomain: domain,
    });
  }

  const organizationalDomain = organizationalDomainOf(domain, parents.found);
  const atOrganization = parents.found.find((entry) => entry.domain === organizationalDomain);
  if (atOrganization) {
    return discovery('rfc9989', domain, {
      status: 'found',
      steps,
      organizationalDomain,
      source: {
        domain: atOrganization.domain,
        relation: 'organizational_domain',
        evaluation: atOrganization.evaluation,
      },
    });
  }
  const publicSuffix = parents.found.find((entry) => {
    const psd = entry.evaluation.record?.publicSuffix;
    return psd?.state === 'valid' && psd.value === 'y';
  });
  if (publicSuffix) {
    return discovery('rfc9989', domain, {
      status: 'found',
      steps,
      organizationalDomain,
      source: {
        domain: publicSuffix.domain,
        relation: 'public_suffix_domain',
        evaluation: publicSuffix.evaluation,
      },
    });
  }
  return discovery('rfc9989', domain, { status: 'not_found', steps, organizationalDomain });
}

async function discoverRfc7489(
  domain: string,
  txt: TxtLookup,
  options: DmarcDiscoveryOptions,
): Promise<DmarcDiscovery> {
  const own = await walk([domain], txt);
  if (own.problem) {
    return discovery('rfc7489', domain, {
      status: 'lookup_problem',
      steps: own.steps,
      problem: own.problem,
    });
  }
  const first = own.steps[0];
  const mine = own.found[0];
  if (mine) {
    return discovery('rfc7489', domain, {
      status: 'found',
      steps: own.steps,
      source: { domain, relation: 'author_domain', evaluation: mine.evaluation },
    });
  }
  // RFC 7489 section 6.6.3: several records at the author domain end discovery there, unlike
  // RFC 9989, which discards them and walks on.
  if (first?.selection === 'multiple') {
    return discovery('rfc7489', domain, { status: 'not_found', steps: own.steps });
  }

  let organizationalDomain = options.organizationalDomain?.(domain);
  let steps = own.steps;
  if (organizationalDomain === undefined) {
    // NOTE: without a public suffix list, RFC 7489's Organizational Domain is approximated by
    // the RFC 9989 walk. The two can differ when DMARC records sit at several levels.
    const walked = await organizationalDomainWithTxt(domain, txt);
    if (walked.problem) {
      return discovery('rfc7489', domain, {
        status: 'lookup_problem',
        steps: [...steps, ...walked.steps.slice(1)],
        problem: walked.problem,
      });
    }
    organizationalDomain = walked.organizationalDomain ?? domain;
  }
  organizationalDomain = canonicalDnsName(organizationalDomain);
  if (organizationalDomain === domain) {
    return discovery('rfc7489', domain, { status: 'not_found', steps, organizationalDomain });
  }
  const atOrganization = await walk([organizationalDomain], txt);
  steps = [...steps, ...atOrganization.steps];
  if (atOrganization.problem) {
    return discovery('rfc7489', domain, {
      status: 'lookup_problem',
      steps,
      problem: atOrganization.problem,
      organizationalDomain,
    });
  }
  const found = atOrganization.found[0];
  if (!found) {
    return discovery('rfc7489', domain, { status: 'not_found', steps, organizationalDomain });
  }
  return discovery('rfc7489', domain, {
    status: 'found',
    steps,
    organizationalDomain,
    source: {
      domain: organizationalDomain,
      relation: 'organizational_domain',
      evaluation: found.evaluation,
    },
  });
}

/**
 * Find the DMARC record that receivers apply to mail from `domain`, once as RFC 7489 and once
 * as RFC 9989 receivers look for it. That is the domain's own `_dmarc` record, else the record
 * of its Organizational Domain, else (RFC 9989 only) that of its public suffix domain.
 */
export async function discoverDmarcPolicy(
  domain: string,
  lookups: DnsLookups,
  options: DmarcDiscoveryOptions = {},
): Promise<Record<DmarcDialect, DmarcDiscovery>> {
  const canonical = canonicalDnsName(domain);
  const txt = memoisedTxt(lookups);
  const rfc9989 = await discoverRfc9989(canonical, txt);
  const rfc7489 = await discoverRfc7489(canonical, txt, options);
  return { rfc7489, rfc9989 };
}

export interface ReportDestinationCheck {
  tag: 'rua' | 'ruf';
  uri: string;
  destinationDomain: string;
  /**
   * `same_organization`: no authorization needed. `authorized`: the destination publishes
   * `<policy domain>._report._dmarc.<destination>`. `not_authorized`: it does not, so
   * receivers send no reports there. `lookup_problem`: a lookup failed. Nothing is known.
   */
  status: 'same_organization' | 'authorized' | 'not_authorized' | 'lookup_problem';
  /** The authorization name queried, when the domains belong to different organizations. */
  checkedName?: string;
  /** Whether the mailbox domain can receive mail: it has MX records, none, or does not exist. */
  mailbox: 'mx' | 'no_mx' | 'nxdomain' | 'lookup_problem';
}

/**
 * Check every valid mailto: report address of a record published for `policyDomain`: that
 * its domain can receive mail, and that a destination in another organization authorizes
 * the reports (RFC 7489 section 7.1, RFC 9990), wildcards included as DNS serves them.
 */
export async function checkReportDestinations(
  policyDomain: string,
  record: DmarcRecord,
  lookups: DnsLookups,
  options: DmarcDiscoveryOptions = {},
): Promise<{ checks: ReportDestinationCheck[]; findings: Finding[] }> {
  const txt = memoisedTxt(lookups);
  const organizations = new Map<string, Promise<string | null>>();
  const organizationOf = (name: string): Promise<string | null> => {
    let pending = organizations.get(name);
    if (!pending) {
      const given = options.organizationalDomain?.(name);
      pending =
        given !== undefined
          ? Promise.resolve(canonicalDnsName(given))
          : organizationalDomainWithTxt(name, txt).then((result) => result.organizationalDomain);
      organizations.set(name, pending);
    }
    return pending;
  };

  const policy = canonicalDnsName(policyDomain);
  const checks: ReportDestinationCheck[] = [];
  const findings: Finding[] = [];
  for (const [tag, value] of [
    ['rua', record.aggregateReportUris],
    ['ruf', record.failureReportUris],
  ] as const) {
    if (value.state !== 'valid') continue;
    for (const uri of value.value) {
      if (!uri.valid || !uri.domain) continue;
      const check = await checkOne(tag, uri.uri, uri.domain);
      checks.push(check);
      findings.push(...destinationFindings(check, policy));
    }
  }
  return { checks, findings };

  async function checkOne(
    tag: 'rua' | 'ruf',
    uri: string,
    destination: string,
  ): Promise<ReportDestinationCheck> {
    const mailbox = await mailboxState(lookups, destination);
    const [mine, theirs] = await Promise.all([organizationOf(policy), organizationOf(destination)]);
    const base = { tag, uri, destinationDomain: destination, mailbox };
    if (mine === null || theirs === null) return { ...base, status: 'lookup_problem' };
    if (mine === theirs) return { ...base, status: 'same_organization' };

    const checkedName = `${policy}._report._dmarc.${destination}`;
    const outcome = await txt(checkedName);
    if (isLookupProblem(outcome)) return { ...base, status: 'lookup_problem', checkedName };
    const authorized =
      outcome.status === 'ok' &&
      outcome.records.some((strings) => isDmarcRecordText(joinTxtStrings(strings)));
    return { ...base, status: authorized ? 'authorized' : 'not_authorized', checkedName };
  }
}

async function mailboxState(
  lookups: DnsLookups,
  domain: string,
): Promise<ReportDestinationCheck['mailbox']> {
  const outcome = await lookups.lookupMx(domain);
  if (outcome.status === 'ok') return 'mx';
  if (outcome.status === 'nxdomain') return 'nxdomain';
  if (outcome.status === 'nodata') return 'no_mx';
  return 'lookup_problem';
}

function destinationFindings(check: ReportDestinationCheck, policyDomain: string): Finding[] {
  const findings: Finding[] = [];
  if (check.status === 'not_authorized') {
    findings.push(
      finding(
        'dmarc_report_destination_unauthorized',
        'error',
        `Reports for ${policyDomain} to ${check.uri} are not sent: ${check.destinationDomain} publishes no "v=DMARC1" TXT record at ${check.checkedName}.`,
      ),
    );
  } else if (check.status === 'lookup_problem') {
    findings.push(
      finding(
        'dmarc_report_destination_unknown',
        'info',
        `Could not check whether ${check.destinationDomain} accepts reports for ${policyDomain}, because a lookup failed.`,
      ),
    );
  }
  if (check.mailbox === 'nxdomain') {
    findings.push(
      finding(
        'dmarc_report_mailbox_domain_missing',
        'error',
        `The report address ${check.uri} cannot receive mail: ${check.destinationDomain} does not exist.`,
      ),
    );
  } else if (check.mailbox === 'no_mx') {
    findings.push(
      finding(
        'dmarc_report_mailbox_no_mx',
        'warning',
        `${check.destinationDomain} has no MX record, so reports to ${check.uri} rely on its address records.`,
      ),
    );
  }
  return findings;
}
