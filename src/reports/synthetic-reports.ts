/** The shape of a made-up aggregate report; every field has a default. */
export interface SyntheticReportOptions {
  records: number;
  reportId?: string;
  orgName?: string;
  domain?: string;
  /** Seconds since 1970 of the period's begin; the period is one day. */
  begin?: number;
  /** Varies source addresses, counts and results between reports of the same size. */
  seed?: number;
}

/**
 * Yields the XML of a deterministic RFC 7489 aggregate report piece by piece, about 430 bytes
 * per record, so that a report of any size can be written to a file without holding it. About
 * one record in three fails DMARC; some have a reason and some a second DKIM signature, so the
 * parser's every record path is used.
 */
export function* syntheticReportParts(options: SyntheticReportOptions): Generator<string> {
  const domain = options.domain ?? 'example.com';
  const begin = options.begin ?? 1_700_000_000;
  const seed = options.seed ?? 0;
  yield '<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n  <version>1.0</version>\n';
  yield `  <report_metadata><org_name>${options.orgName ?? 'Synthetic Reporter'}</org_name>`;
  yield '<email>noreply-dmarc@reporter.example</email>';
  yield `<report_id>${options.reportId ?? `synthetic-${seed}-${options.records}`}</report_id>`;
  yield `<date_range><begin>${begin}</begin><end>${begin + 86_399}</end></date_range>`;
  yield '</report_metadata>\n';
  yield `  <policy_published><domain>${domain}</domain><adkim>r</adkim><aspf>r</aspf>`;
  yield '<p>quarantine</p><sp>none</sp><pct>100</pct></policy_published>\n';

  for (let index = 0; index < options.records; index += 1) {
    const mixed = (index * 2_654_435_761 + seed * 40_503) >>> 0;
    const dkim = mixed % 3 === 0 ? 'fail' : 'pass';
    const spf = mixed % 5 < 2 ? 'fail' : 'pass';
    const failing = dkim === 'fail' && spf === 'fail';
    const address =
      index % 4 === 3
        ? `2001:db8:${(mixed >>> 16).toString(16)}::${(mixed & 0xffff).toString(16)}`
        : `198.51.${(mixed >>> 8) & 255}.${mixed & 255}`;
    const reason = failing
      ? '<reason><type>forwarded</type><comment>known forwarder</comment></reason>'
      : '';
    const secondSignature =
      index % 7 === 0
        ? `<dkim><domain>esp.example</domain><selector>esp1</selector><result>pass</result></dkim>`
        : '';
    yield (
      `  <record><row><source_ip>${address}</source_ip><count>${(mixed % 17) + 1}</count>` +
      `<policy_evaluated><disposition>${failing ? 'quarantine' : 'none'}</disposition>` +
      `<dkim>${dkim}</dkim><spf>${spf}</spf>${reason}</policy_evaluated></row>` +
      `<identifiers><header_from>${domain}</header_from></identifiers><auth_results>` +
      `<dkim><domain>${domain}</domain><selector>s${mixed % 3}</selector>` +
      `<result>${dkim}</result></dkim>${secondSignature}` +
      `<spf><domain>${domain}</domain><scope>mfrom</scope><result>${spf === 'pass' ? 'pass' : 'softfail'}</result></spf>` +
      '</auth_results></record>\n'
    );
  }
  yield '</feedback>\n';
}

/** Returns a whole synthetic report as bytes; see syntheticReportParts. */
export function syntheticReport(options: SyntheticReportOptions): Buffer {
  return Buffer.from([...syntheticReportParts(options)].join(''));
}
