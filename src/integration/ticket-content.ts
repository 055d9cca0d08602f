import type {
  Alert,
  DnsEvidence,
  DnsRecordSnapshot,
  ForensicEvidence,
  ThresholdEvidence,
} from '../alerts/alert-store.ts';
import type { Incident } from '../alerts/incident-store.ts';

/** The summary and details of the HaloPSA ticket for an alert, readable without signing in. */
export function formatTicket(
  alert: Alert,
  publicUrl: string,
): { summary: string; details: string } {
  // The web UI's alert page at this path shows the alert, its incident and the evidence.
  const link = `${publicUrl}/alerts/${alert.id}`;
  const evidence = alert.evidence;
  const lines: string[] = [];

  if (evidence.kind === 'threshold') lines.push(...thresholdLines(alert.domainName, evidence));
  if (evidence.kind === 'forensic') lines.push(...forensicLines(alert.domainName, evidence));
  if (evidence.kind === 'dns') lines.push(...dnsLines(alert.domainName, evidence));
  lines.push('', `Evidence in dmarcdesk: ${link}`, `dmarcdesk alert id: ${alert.id}`);

  // HaloPSA's summary field is short on many tenants, so the summary keeps to the kind and domain,
  // and for DNS the record, because each record of a domain has an incident of its own.
  const subject = alert.groupId ? `domain group ${alert.domainName}` : alert.domainName;
  const record =
    evidence.kind === 'dns'
      ? ` (${dnsRecordWords[evidence.recordKind]}${evidence.selector ? ` ${evidence.selector}` : ''})`
      : '';
  const summary = neutralise(`DMARC ${alert.kind} alert: ${subject}${record}`);
  return { summary: summary.slice(0, 200), details: lines.map(neutralise).join('\n') };
}

// Longest line of ticket text; a longer one comes from a hostile or broken report.
const MAX_LINE_LENGTH = 1000;

/**
 * Make one line of ticket text safe to show. Much of it comes from reports that anyone can send
 * (reporter names, report ids, reported headers, DNS records), so line breaks inside a value are
 * flattened (they could forge lines of their own), control characters removed, and `<` replaced
 * by a look-alike so that no HTML tag can open, since HaloPSA may render ticket details as HTML.
 */
export function neutralise(line: string): string {
  const flat = line
    .replace(/[\r\n\t\v\f]+/g, ' ')
    .replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, '')
    .replace(/</g, '\u2039');
  return flat.length > MAX_LINE_LENGTH ? `${flat.slice(0, MAX_LINE_LENGTH)}...` : flat;
}

/** Format the failure rate of some messages, such as "88.9 %". */
function percentOf(failed: number, total: number): string {
  return `${(total > 0 ? (failed / total) * 100 : 0).toFixed(1)} %`;
}

/** Lists the window, its failing volume and rate, the rule's limits and the top sources. */
function thresholdLines(name: string, evidence: ThresholdEvidence): string[] {
  // Alerts stored before windows existed lack the newer fields.
  const subject = evidence.subject ?? { type: 'domain', name, domains: [name] };
  const windowHours = evidence.windowHours ?? null;
  const limits: string[] = [];
  if (evidence.maxFailedMessages !== null) {
    limits.push(`more than ${evidence.maxFailedMessages} failed messages`);
  }
  if (evidence.maxFailurePercent != null) {
    const from = evidence.minMessages > 0 ? `, judged from ${evidence.minMessages} messages` : '';
    limits.push(`more than ${evidence.maxFailurePercent} % of messages failing${from}`);
  }
  const reporters = evidence.reporters ?? [evidence.reporter];
  return [
    subject.type === 'group'
      ? `Domain group: ${subject.name} (${subject.domains.join(', ')})`
      : `Domain: ${subject.name}`,
    'Alert: DMARC failure threshold exceeded',
    `Failed DMARC: ${evidence.failedMessages} of ${evidence.totalMessages} messages (${percentOf(evidence.failedMessages, evidence.totalMessages)})`,
    `Limit: ${limits.join(' or ')}`,
    windowHours === null
      ? 'Window: one report period'
      : `Window: ${windowHours} hours, summing every report whose period overlaps it`,
    `Period: ${evidence.period.begin} to ${evidence.period.end} (UTC)`,
    `Reports: ${evidence.reportCount ?? 1} from ${reporters.join(', ')}`,
    `Judged when report ${evidence.reportId} from ${evidence.reporter} arrived`,
    '',
    'Top failing sources:',
    ...evidence.topSources.map(
      (source) => `  ${source.sourceIp}: ${source.failedMessages} messages`,
    ),
  ];
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

const dnsRecordWords: Record<DnsEvidence['recordKind'], string> = {
  dmarc: 'DMARC record',
  spf: 'SPF record',
  dkim: 'DKIM key',
};

const dnsChangeWords: Record<string, string> = {
  meaning: 'the meaning of the record changed',
  removed: 'the record was removed',
  appeared: 'a record appeared',
  became_invalid: 'the record became invalid',
  weakened: 'the record became weaker',
  invalid_at_first_check: 'the record was invalid when the domain was first checked',
};

/** Lists the record before and after a confirmed DNS change, the verdicts and what changed. */
function dnsLines(domainName: string, evidence: DnsEvidence): string[] {
  const selector = evidence.selector ? ` (selector ${evidence.selector})` : '';
  const lines = [
    `Domain: ${domainName}`,
    `Alert: ${dnsRecordWords[evidence.recordKind]}${selector} at ${evidence.name}: ${dnsChangeWords[evidence.change] ?? evidence.change}`,
    `Severity: ${evidence.severity ?? 'info'}`,
    `First seen: ${evidence.firstSeenAt} (UTC); confirmed by a second lookup at ${evidence.confirmedAt} (UTC)`,
    '',
    'What the change means:',
    `  ${evidence.meaning}`,
    '',
    ...dnsRecordLines('Before', evidence.before),
    '',
    ...dnsRecordLines('After', evidence.after),
  ];
  if (evidence.details.length > 0) {
    lines.push('', 'What changed:');
    for (const item of evidence.details) {
      lines.push(
        `  ${item.field}: ${item.before} -> ${item.after} (${item.severity})`,
        `    ${item.message}`,
      );
    }
  }
  const problems = evidence.after.findings.filter((item) => item.severity !== 'info');
  if (problems.length > 0) {
    lines.push('', 'Findings on the record now:');
    // Ten findings are plenty to act on, and a broken SPF tree can produce dozens.
    for (const item of problems.slice(0, 10)) lines.push(`  [${item.severity}] ${item.message}`);
  }
  return lines;
}

function dnsRecordLines(label: string, record: DnsRecordSnapshot | null): string[] {
  if (!record) return [`${label}: (not checked before)`];
  const lines = [`${label} (looked up ${record.observedAt} UTC, ${record.lookupStatus}):`];
  if (record.cnameChain.length > 0) lines.push(`  CNAME: ${record.cnameChain.join(' -> ')}`);
  if (record.records.length === 0) lines.push('  (no record)');
  for (const text of record.records) lines.push(`  ${text}`);
  lines.push(`  Verdict: ${record.verdict}`);
  return lines;
}

// A note lists at most this many firings one by one; HaloPSA notes are read by people.
const NOTE_FIRING_LINES = 20;

/** Format one line of a note about a firing: its time and its numbers. */
function firingLine(alert: Alert): string {
  const evidence = alert.evidence;
  if (evidence.kind === 'threshold') {
    const top = evidence.topSources
      .slice(0, 3)
      .map((source) => `${source.sourceIp} (${source.failedMessages})`)
      .join(', ');
    return (
      `- ${evidence.period.begin} to ${evidence.period.end}: ${evidence.failedMessages} of ` +
      `${evidence.totalMessages} messages failed DMARC (${percentOf(evidence.failedMessages, evidence.totalMessages)})` +
      (top ? `; top sources ${top}` : '')
    );
  }
  if (evidence.kind === 'forensic') {
    const source = evidence.sourceIp ? ` about mail from ${evidence.sourceIp}` : '';
    return `- ${alert.createdAt.toISOString()}: failure report from ${evidence.reporter}${source}`;
  }
  return `- ${alert.createdAt.toISOString()}: ${alert.summary}`;
}

/**
 * Format the text of a private note on an incident's ticket: the firings since the last note,
 * or the resolution when `closing` is set (with any firings that were still waiting for a
 * note).
 */
export function formatIncidentNote(input: {
  incident: Incident;
  firings: Alert[];
  closing: boolean;
  publicUrl: string;
}): string {
  const { incident, firings, closing } = input;
  const subject = incident.groupId ? `domain group ${incident.subjectName}` : incident.subjectName;
  const lines: string[] = [];
  if (closing) {
    lines.push(
      `dmarcdesk: the ${incident.kind} alert on ${subject} is resolved.`,
      incident.resolution ?? 'The condition is clear.',
    );
  } else {
    const reopened = incident.reopenCount > 0 ? ' (the incident was reopened)' : '';
    lines.push(
      `dmarcdesk: the ${incident.kind} alert on ${subject} fired again${reopened}: ` +
        `${firings.length} ${firings.length === 1 ? 'firing' : 'firings'} since the last update.`,
    );
  }
  if (firings.length > 0) {
    lines.push('', closing ? 'Firings since the last update:' : 'Firings:');
    for (const alert of firings.slice(0, NOTE_FIRING_LINES)) lines.push(firingLine(alert));
    if (firings.length > NOTE_FIRING_LINES) {
      lines.push(`- and ${firings.length - NOTE_FIRING_LINES} more`);
    }
  }
  // The alert page shows the incident with all its firings and notes, so the note links to the
  // page of its latest firing, or of the ticket's first alert for a closing note.
  const linkedAlertId = firings.at(-1)?.id ?? incident.ticketAlertId;
  lines.push(
    '',
    `Firings in this incident: ${incident.firingCount}, opened ${incident.openedAt.toISOString()}.`,
    ...(linkedAlertId ? [`Incident in dmarcdesk: ${input.publicUrl}/alerts/${linkedAlertId}`] : []),
    `dmarcdesk incident id: ${incident.id}`,
  );
  return lines.join('\n');
}
