import type { Alert, ForensicEvidence } from '../alerts/alert-store.ts';

/** The summary and details of the HaloPSA ticket for an alert, readable without signing in. */
export function formatTicket(
  alert: Alert,
  publicUrl: string,
): { summary: string; details: string } {
  // NOTE: no page is served at /alerts/:id until the web UI exists; the alert's evidence is
  // readable today through GET /api/v1/alerts/:id.
  const link = `${publicUrl}/alerts/${alert.id}`;
  const evidence = alert.evidence;
  const lines: string[] = [];

  if (evidence.kind === 'threshold') {
    const rate =
      evidence.totalMessages > 0 ? (evidence.failedMessages / evidence.totalMessages) * 100 : 0;
    lines.push(
      `Domain: ${alert.domainName}`,
      `Alert: DMARC failure threshold exceeded`,
      `Failed DMARC: ${evidence.failedMessages} of ${evidence.totalMessages} messages (${rate.toFixed(1)} %)`,
      `Limit: more than ${evidence.maxFailedMessages} failed messages in one report period`,
      `Period: ${evidence.period.begin} to ${evidence.period.end} (UTC)`,
      `Reporter: ${evidence.reporter}, report ${evidence.reportId}`,
      '',
      'Top failing sources:',
      ...evidence.topSources.map(
        (source) => `  ${source.sourceIp}: ${source.failedMessages} messages`,
      ),
    );
  }
  if (evidence.kind === 'forensic') lines.push(...forensicLines(alert.domainName, evidence));
  lines.push('', `Evidence in dmarcdesk: ${link}`, `dmarcdesk alert id: ${alert.id}`);

  // HaloPSA's summary field is short on many tenants, so the summary keeps to the kind and domain.
  const summary = `DMARC ${alert.kind} alert: ${alert.domainName}`;
  return { summary: summary.slice(0, 200), details: lines.join('\n') };
}

/** Lists the failure report's facts, one per line, with the values it left out marked. */
function forensicLines(domainName: string, evidence: ForensicEvidence): string[] {
  const shown = (value: string | null) => value ?? '(not given)';
  const listed = (values: string[] | null) =>
    values && values.length > 0 ? values.join(', ') : '(not given)';
  const lines = [
    `Domain: ${domainName}`,
    'Alert: DMARC failure report received',
    `Reporter: ${evidence.reporter}`,
    `Source IP: ${shown(evidence.sourceIp)}`,
    `Arrival date: ${evidence.arrivalDate ? `${evidence.arrivalDate} (UTC)` : '(not given)'}`,
    `Auth failure: ${listed(evidence.authFailure)}`,
    `Identity alignment: ${listed(evidence.identityAlignment)}`,
    `Delivery result: ${shown(evidence.deliveryResult)}`,
    `Envelope from: ${shown(evidence.originalMailFrom)}`,
    `Envelope to: ${listed(evidence.originalRcptTo)}`,
    '',
    'Reported message headers:',
    `  From: ${shown(evidence.headers.from)}`,
    `  To: ${shown(evidence.headers.to)}`,
    `  Subject: ${shown(evidence.headers.subject)}`,
    `  Date: ${shown(evidence.headers.date)}`,
    `  Message-ID: ${shown(evidence.headers.messageId)}`,
    '',
    'Authentication results:',
  ];
  if (evidence.authenticationResults.length === 0) lines.push('  (none in the report)');
  // Ten results are plenty to judge a failure; some reporters copy every hop's results.
  for (const result of evidence.authenticationResults.slice(0, 10)) lines.push(`  ${result}`);
  return lines;
}
