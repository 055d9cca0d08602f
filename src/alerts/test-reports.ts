// Builds small RFC 7489 aggregate reports for the threshold and incident tests, so that each
// test sets the period, the reporter and the failing volume it needs.

/** One row of a report: messages from one source, failing DMARC unless `passes` is set. */
export interface TestRecord {
  sourceIp: string;
  count: number;
  passes?: boolean;
}

export interface TestReport {
  domain: string;
  orgName: string;
  reportId: string;
  period: { begin: Date; end: Date };
  records: TestRecord[];
}

const FIRST_DAY = Date.UTC(2026, 2, 1);
const DAY_MS = 86_400_000;

/**
 * Return the period of day `n` (day 1 is 2026-03-01 UTC), ending one second before midnight as most
 * reporters' periods do.
 */
export function reportDay(n: number): { begin: Date; end: Date } {
  const begin = FIRST_DAY + (n - 1) * DAY_MS;
  return { begin: new Date(begin), end: new Date(begin + DAY_MS - 1000) };
}

/** Build the XML of an aggregate report, with one record per row. */
export function aggregateReportXml(report: TestReport): Buffer {
  const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
  const records = report.records.map((record) => {
    const result = record.passes ? 'pass' : 'fail';
    return `  <record>
    <row>
      <source_ip>${record.sourceIp}</source_ip>
      <count>${record.count}</count>
      <policy_evaluated><disposition>none</disposition><dkim>${result}</dkim><spf>${result}</spf></policy_evaluated>
    </row>
    <identifiers><header_from>${report.domain}</header_from></identifiers>
    <auth_results>
      <dkim><domain>${report.domain}</domain><result>${result}</result></dkim>
      <spf><domain>${report.domain}</domain><result>${result}</result></spf>
    </auth_results>
  </record>`;
  });
  return Buffer.from(`<?xml version="1.0"?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>${report.orgName}</org_name>
    <email>dmarc@${report.orgName.toLowerCase().replace(/[^a-z0-9.]/g, '')}.example</email>
    <report_id>${report.reportId}</report_id>
    <date_range><begin>${seconds(report.period.begin)}</begin><end>${seconds(report.period.end)}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>${report.domain}</domain>
    <p>none</p>
    <sp>none</sp>
    <pct>100</pct>
  </policy_published>
${records.join('\n')}
</feedback>
`);
}

/** Build rows with `failed` failing and `passed` passing messages, from two sources per kind. */
export function rows(failed: number, passed: number, prefix = '198.51.100'): TestRecord[] {
  const result: TestRecord[] = [];
  if (failed > 0) {
    const first = Math.ceil(failed / 2);
    result.push({ sourceIp: `${prefix}.10`, count: first });
    if (failed - first > 0) result.push({ sourceIp: `${prefix}.20`, count: failed - first });
  }
  if (passed > 0) result.push({ sourceIp: '192.0.2.25', count: passed, passes: true });
  return result;
}
