import type { Alert } from '../alerts/alert-store.ts';

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
  lines.push('', `Evidence in dmarcdesk: ${link}`, `dmarcdesk alert id: ${alert.id}`);

  // HaloPSA's summary field is short on many tenants, so the summary keeps to the kind and domain.
  const summary = `DMARC ${alert.kind} alert: ${alert.domainName}`;
  return { summary: summary.slice(0, 200), details: lines.join('\n') };
}
