// The evidence of one alert, in words and tables: the failing volume of a threshold alert, the
// records before and after a DNS change, or the message a failure report describes.
import type { ReactNode } from 'react';
import { count, formatNumber, formatTime } from '../format.ts';
import type {
  AlertEvidence,
  DnsEvidence,
  DnsRecordSnapshot,
  ForensicEvidence,
  ThresholdEvidence,
} from './alert-view.ts';

/** Render labelled facts as a description list, leaving out each fact whose value is null. */
export function Facts({ rows }: { rows: [label: string, value: ReactNode | null][] }) {
  return (
    <dl className="facts">
      {rows
        .filter(([, value]) => value !== null)
        .map(([label, value]) => (
          <div key={label} className="facts__row">
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
    </dl>
  );
}

export function Evidence({ evidence }: { evidence: AlertEvidence }) {
  if (evidence.kind === 'threshold') return <ThresholdDetails evidence={evidence} />;
  if (evidence.kind === 'dns') return <DnsDetails evidence={evidence} />;
  return <ForensicDetails evidence={evidence} />;
}

function percent(value: number): string {
  return `${value.toFixed(2)} %`;
}

function ThresholdDetails({ evidence }: { evidence: ThresholdEvidence }) {
  const limits: string[] = [];
  if (evidence.maxFailedMessages !== null) {
    limits.push(`more than ${count(evidence.maxFailedMessages, 'failing message')}`);
  }
  if (evidence.maxFailurePercent !== null) {
    limits.push(
      `more than ${percent(evidence.maxFailurePercent)} failing, judged from ${count(evidence.minMessages, 'message')}`,
    );
  }
  const exceeded = evidence.exceeded.map((limit) =>
    limit === 'failed_count' ? 'the count of failing messages' : 'the failure rate',
  );
  const window =
    evidence.windowHours === null
      ? 'Each report is judged alone.'
      : `The last ${count(evidence.windowHours, 'hour')} of reports.`;

  return (
    <>
      <Facts
        rows={[
          [
            'Failing DMARC',
            `${count(evidence.failedMessages, 'message')} of ${formatNumber(evidence.totalMessages)} (${percent(evidence.failurePercent)})`,
          ],
          ['Alert when', limits.length > 0 ? limits.join(', or ') : 'no limit is set'],
          ['Exceeded', exceeded.join(' and ')],
          ['Window', window],
          [
            'Period judged',
            `${formatTime(evidence.period.begin)} to ${formatTime(evidence.period.end)}`,
          ],
          [
            'Reports in the window',
            `${formatNumber(evidence.reportCount)}, from ${evidence.reporters.join(', ')}`,
          ],
          ['Report that triggered it', `${evidence.reportId} from ${evidence.reporter}`],
          [
            evidence.subject.type === 'group' ? 'Domains in the group' : 'Domain',
            evidence.subject.domains.join(', '),
          ],
        ]}
      />
      <h3>Top failing sources</h3>
      {evidence.topSources.length === 0 ? (
        <p>The reports name no failing source.</p>
      ) : (
        <table className="table table--compact">
          <caption className="visually-hidden">Top failing sources</caption>
          <thead>
            <tr>
              <th scope="col">Source IP address</th>
              <th scope="col">Failing messages</th>
            </tr>
          </thead>
          <tbody>
            {evidence.topSources.map((source) => (
              <tr key={source.sourceIp}>
                <td>{source.sourceIp}</td>
                <td>{formatNumber(source.failedMessages)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

const RECORD_KIND_NAMES: Record<DnsEvidence['recordKind'], string> = {
  dmarc: 'DMARC',
  spf: 'SPF',
  dkim: 'DKIM',
};

const CHANGE_NAMES: Record<string, string> = {
  meaning: 'The meaning of the record changed',
  removed: 'The record was removed',
  appeared: 'The record appeared',
  became_invalid: 'The record became invalid',
  weakened: 'The record was weakened',
  invalid_at_first_check: 'The record was invalid at the first check',
};

function DnsDetails({ evidence }: { evidence: DnsEvidence }) {
  return (
    <>
      <Facts
        rows={[
          ['Record', `${RECORD_KIND_NAMES[evidence.recordKind]} at ${evidence.name}`],
          ['DKIM selector', evidence.selector],
          ['Change', CHANGE_NAMES[evidence.change] ?? evidence.change],
          ['Severity', evidence.severity],
          ['Meaning for mail', evidence.meaning],
          ['First seen', formatTime(evidence.firstSeenAt)],
          ['Confirmed by a second lookup', formatTime(evidence.confirmedAt)],
        ]}
      />
      {evidence.details.length > 0 ? (
        <table className="table table--compact">
          <caption className="visually-hidden">What changed in the record</caption>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
              <th scope="col">Severity</th>
              <th scope="col">Meaning</th>
            </tr>
          </thead>
          <tbody>
            {evidence.details.map((detail, index) => (
              <tr key={index}>
                <td>{detail.field}</td>
                <td>{detail.before}</td>
                <td>{detail.after}</td>
                <td>{detail.severity}</td>
                <td>{detail.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="record-pair">
        <RecordSnapshot title="Before" snapshot={evidence.before} />
        <RecordSnapshot title="After" snapshot={evidence.after} />
      </div>
    </>
  );
}

const LOOKUP_NAMES: Record<string, string> = {
  ok: 'found',
  nxdomain: 'the name does not exist (NXDOMAIN)',
  nodata: 'the name has no TXT record (NODATA)',
};

function RecordSnapshot({
  title,
  snapshot,
}: {
  title: string;
  snapshot: DnsRecordSnapshot | null;
}) {
  return (
    <section className="card" aria-label={`${title} the change`}>
      <h3 className="card__title">{title}</h3>
      {snapshot === null ? (
        <p>The domain had not been checked before.</p>
      ) : (
        <>
          <Facts
            rows={[
              ['Looked up', formatTime(snapshot.observedAt)],
              ['Lookup', LOOKUP_NAMES[snapshot.lookupStatus] ?? snapshot.lookupStatus],
              [
                'CNAME chain',
                snapshot.cnameChain.length > 0 ? snapshot.cnameChain.join(' → ') : null,
              ],
              ['Verdict', snapshot.verdict],
            ]}
          />
          {snapshot.records.length === 0 ? (
            <p>No record.</p>
          ) : (
            snapshot.records.map((record, index) => (
              <pre key={index} className="record">
                {record}
              </pre>
            ))
          )}
          {snapshot.findings.length > 0 ? (
            <ul>
              {snapshot.findings.map((finding, index) => (
                <li key={index}>
                  {finding.severity}: {finding.message}
                </li>
              ))}
            </ul>
          ) : null}
        </>
      )}
    </section>
  );
}

function orNone(values: string[] | null): string | null {
  if (values === null) return null;
  return values.length > 0 ? values.join(', ') : 'none given';
}

function ForensicDetails({ evidence }: { evidence: ForensicEvidence }) {
  const { headers } = evidence;
  return (
    <>
      <Facts
        rows={[
          ['Reporter', evidence.reporter],
          [
            'Report format',
            evidence.format === 'arf'
              ? 'Abuse Reporting Format (RFC 6591)'
              : 'Plain text, without a machine-readable part',
          ],
          ['Received by the reporter', evidence.arrivalDate && formatTime(evidence.arrivalDate)],
          ['Sending IP address', evidence.sourceIp],
          ['Failed checks', orNone(evidence.authFailure)],
          ['Identity alignment', orNone(evidence.identityAlignment)],
          ['Delivery result', evidence.deliveryResult],
          ['Envelope sender', evidence.originalMailFrom],
          ['Envelope recipients', orNone(evidence.originalRcptTo)],
        ]}
      />
      <h3>Reported message headers</h3>
      <Facts
        rows={[
          ['From', headers.from ?? 'not given'],
          ['To', headers.to ?? 'not given'],
          ['Subject', headers.subject ?? 'not given'],
          ['Date', headers.date ?? 'not given'],
          ['Message-ID', headers.messageId ?? 'not given'],
        ]}
      />
      <h3>Authentication results</h3>
      {evidence.authenticationResults.length === 0 ? (
        <p>The report gives no Authentication-Results.</p>
      ) : (
        evidence.authenticationResults.map((result, index) => (
          <pre key={index} className="record">
            {result}
          </pre>
        ))
      )}
    </>
  );
}
