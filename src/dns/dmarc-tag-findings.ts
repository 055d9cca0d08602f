// Findings about the tag values of a parsed DMARC record, given once per dialect where the
// dialects differ.
import type { DmarcPolicy, DmarcRecord, DmarcTagValue, DmarcUri } from './dmarc-record.ts';
import type { Finding } from './findings.ts';
import { finding, quote } from './findings.ts';

/** Findings about tag values, given once per dialect where the dialects differ. */
export function tagFindings(record: DmarcRecord): Finding[] {
  const findings: Finding[] = [];
  const policyTag = (tag: string, value: DmarcTagValue<DmarcPolicy>, label: string) => {
    if (value.state === 'invalid') {
      findings.push(
        finding(
          `dmarc_invalid_${tag}`,
          'error',
          `The ${label} ${quote(value.raw)} is not none, quarantine or reject. Receivers then ignore the whole policy (see the verdicts).`,
        ),
      );
    }
  };
  policyTag('p', record.policy, 'policy p=');
  policyTag('sp', record.subdomainPolicy, 'subdomain policy sp=');
  if (record.nonexistentSubdomainPolicy.state === 'invalid') {
    findings.push(
      finding(
        'dmarc_invalid_np',
        'error',
        `The non-existent subdomain policy np=${quote(record.nonexistentSubdomainPolicy.raw)} is not none, quarantine or reject; RFC 9989 receivers then ignore the whole policy.`,
        'rfc9989',
      ),
    );
  }

  if (record.policy.state === 'absent') {
    findings.push(
      finding(
        'dmarc_missing_p',
        'warning',
        'The record has no p tag; RFC 9989 receivers treat it as p=none.',
        'rfc9989',
      ),
      finding(
        'dmarc_missing_p',
        'error',
        'The record has no p tag, which RFC 7489 requires. Those receivers act as p=none only if rua has a valid URI, and otherwise apply no DMARC at all.',
        'rfc7489',
      ),
    );
  } else if (record.policyNotSecond) {
    findings.push(
      finding(
        'dmarc_p_not_second',
        'warning',
        'The p tag is not the second tag; RFC 7489 requires v first and p second, and strict receivers may not find p.',
        'rfc7489',
      ),
    );
  }

  if (record.policy.state === 'valid' && record.policy.value === 'none') {
    findings.push(
      finding(
        'dmarc_policy_none',
        'warning',
        'The policy is p=none: receivers only monitor and do not act on failing mail.',
      ),
    );
  }
  if (record.subdomainPolicy.state === 'valid' && record.subdomainPolicy.value === 'none') {
    const main = record.policy.state === 'valid' ? record.policy.value : undefined;
    if (main && main !== 'none') {
      findings.push(
        finding(
          'dmarc_subdomain_policy_none',
          'warning',
          'The subdomain policy is sp=none: mail from subdomains is only monitored.',
        ),
      );
    }
  }

  if (record.publicSuffix.state === 'invalid') {
    findings.push(
      finding(
        'dmarc_invalid_psd',
        'warning',
        `The psd value ${quote(record.publicSuffix.raw)} is not y, n or u; RFC 9989 receivers ignore it.`,
        'rfc9989',
      ),
    );
  } else if (record.publicSuffix.state === 'valid' && record.publicSuffix.value === 'y') {
    findings.push(
      finding(
        'dmarc_public_suffix',
        'info',
        'The record declares a public suffix domain (psd=y).',
        'rfc9989',
      ),
    );
  }

  if (record.testing.state === 'invalid') {
    findings.push(
      finding(
        'dmarc_invalid_t',
        'warning',
        `The t value ${quote(record.testing.raw)} is not y or n; RFC 9989 receivers ignore it.`,
        'rfc9989',
      ),
    );
  } else if (record.testing.state === 'valid' && record.testing.value === 'y') {
    findings.push(
      finding(
        'dmarc_testing',
        'warning',
        'The record is in test mode (t=y): RFC 9989 receivers apply one level less than the policy, and RFC 7489 receivers ignore t.',
        'rfc9989',
      ),
    );
  }

  if (record.percentage.state !== 'absent') {
    findings.push(
      finding(
        'dmarc_pct_removed',
        'info',
        'RFC 9989 removed pct. Its receivers apply the policy to all failing mail. Use t=y for a trial.',
        'rfc9989',
      ),
    );
    if (record.percentage.state === 'invalid') {
      findings.push(
        finding(
          'dmarc_invalid_pct',
          'error',
          `The pct value ${quote(record.percentage.raw)} is not a whole number from 0 to 100; RFC 7489 receivers use 100.`,
          'rfc7489',
        ),
      );
    } else if (record.percentage.value < 100) {
      findings.push(
        finding(
          'dmarc_partial_pct',
          'warning',
          `pct=${record.percentage.value}: RFC 7489 receivers apply the policy to ${record.percentage.value} % of failing mail and one level less to the rest.`,
          'rfc7489',
        ),
      );
    }
  }
  if (record.reportFormat.state !== 'absent') {
    findings.push(
      finding(
        'dmarc_rf_removed',
        'info',
        'RFC 9989 removed rf. Its receivers ignore it.',
        'rfc9989',
      ),
    );
    if (
      record.reportFormat.state === 'valid' &&
      record.reportFormat.value.some((format) => format !== 'afrf')
    ) {
      findings.push(
        finding(
          'dmarc_unknown_rf',
          'warning',
          `rf=${record.reportFormat.value.join(':')} names a format other than afrf, the only one defined.`,
          'rfc7489',
        ),
      );
    }
  }
  if (record.reportInterval.state !== 'absent') {
    findings.push(
      finding(
        'dmarc_ri_removed',
        'info',
        'RFC 9989 removed ri. Its receivers send daily reports.',
        'rfc9989',
      ),
    );
    if (record.reportInterval.state === 'invalid') {
      findings.push(
        finding(
          'dmarc_invalid_ri',
          'warning',
          `The ri value ${quote(record.reportInterval.raw)} is not a number of seconds. Receivers use 86400.`,
          'rfc7489',
        ),
      );
    }
  }

  for (const [tag, value] of [
    ['adkim', record.dkimAlignment],
    ['aspf', record.spfAlignment],
  ] as const) {
    if (value.state === 'invalid') {
      findings.push(
        finding(
          `dmarc_invalid_${tag}`,
          'warning',
          `The ${tag} value ${quote(value.raw)} is not r or s. Receivers use relaxed alignment.`,
        ),
      );
    }
  }
  if (record.failureOptions.state === 'invalid') {
    findings.push(
      finding(
        'dmarc_invalid_fo',
        'warning',
        `The fo value ${quote(record.failureOptions.raw)} is not a list of 0 or 1, d and s. Receivers use fo=0.`,
      ),
    );
  } else if (
    record.failureOptions.state === 'valid' &&
    record.failureReportUris.state === 'absent'
  ) {
    findings.push(
      finding(
        'dmarc_fo_without_ruf',
        'info',
        'fo has no effect because the record has no ruf tag.',
      ),
    );
  }

  uriFindings('rua', record.aggregateReportUris, findings);
  uriFindings('ruf', record.failureReportUris, findings);
  if (record.aggregateReportUris.state === 'absent') {
    findings.push(
      finding(
        'dmarc_no_rua',
        'warning',
        'The record has no rua tag, so nobody receives aggregate reports for this domain.',
      ),
    );
  }

  for (const name of record.unknownTags) {
    findings.push(
      finding(
        'dmarc_unknown_tag',
        'warning',
        `The tag "${name}" is not a DMARC tag. Receivers ignore it.`,
      ),
    );
  }
  return findings;
}

function uriFindings(
  tag: 'rua' | 'ruf',
  value: DmarcTagValue<DmarcUri[]>,
  findings: Finding[],
): void {
  if (value.state !== 'valid') return;
  for (const uri of value.value) {
    if (!uri.valid) {
      findings.push(
        finding(
          `dmarc_invalid_${tag}_uri`,
          'error',
          `The ${tag} address ${quote(uri.uri)} ${uri.problem ?? 'is invalid'}. Receivers ignore it.`,
        ),
      );
      continue;
    }
    if (uri.sizeLimit) {
      findings.push(
        finding(
          'dmarc_size_suffix',
          'info',
          `The size limit !${uri.sizeLimit} on ${quote(uri.uri)} is obsolete; RFC 9989 receivers ignore it.`,
          'rfc9989',
        ),
      );
    }
    if (uri.scheme !== 'mailto') {
      findings.push(
        finding(
          'dmarc_uri_scheme',
          'warning',
          `The ${tag} address ${quote(uri.uri)} is not a mailto: URI. Receivers only have to support mailto:.`,
        ),
      );
    }
  }
  if (value.value.length > 0 && value.value.every((uri) => !uri.valid)) {
    findings.push(
      finding(
        `dmarc_no_valid_${tag}`,
        'error',
        `No ${tag} address is valid, so no ${tag === 'rua' ? 'aggregate' : 'failure'} reports are sent.`,
      ),
    );
  }
}
