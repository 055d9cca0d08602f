// Alert and incident types that the server stores and the web app shows. The evidence is kept
// as JSON, so its types are the same on both sides. The views are the JSON of
// GET /api/v1/alerts/:id and GET /api/v1/incidents/:id, with times as ISO 8601 strings.

export const ALERT_KINDS = ['dns', 'threshold', 'forensic'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
/**
 * The ticket state of one firing. not_routed: no ticket rule covers it. pending: a ticket or
 * note job is queued. created: it opened its incident's ticket. held: it waits for the next
 * note, because the minimum interval between notes has not passed. noted: a note on its
 * incident's ticket covered it. failed: the ticket or the note failed.
 */
export type TicketStatus = 'not_routed' | 'pending' | 'created' | 'failed' | 'held' | 'noted';

/** The numbers behind a threshold alert, for one rule over one window of reports. */
export interface ThresholdEvidence {
  kind: 'threshold';
  ruleId: string;
  /** The domain, or the domain group whose member domains are summed. */
  subject: { type: 'domain' | 'group'; id: string; name: string; domains: string[] };
  failedMessages: number;
  totalMessages: number;
  /** Percentage of messages failing DMARC, rounded to two decimals. */
  failurePercent: number;
  /** The limits of the rule; null when the rule has no such limit. */
  maxFailedMessages: number | null;
  maxFailurePercent: number | null;
  /** Below this many messages the rate is not judged. */
  minMessages: number;
  /** The rolling window in hours; null when each report is judged alone. */
  windowHours: number | null;
  /** The limits the window exceeded. */
  exceeded: ('failed_count' | 'failure_percent')[];
  /** The window judged: the report's own period, or windowHours up to a report period end. */
  period: { begin: string; end: string };
  /** How many aggregate reports overlap the window, and from which reporters. */
  reportCount: number;
  reporters: string[];
  /** The report whose arrival led to this evaluation. */
  reporter: string;
  reportId: string;
  topSources: { sourceIp: string; failedMessages: number }[];
}

/** The facts of a failure report that a forensic alert and its ticket show. */
export interface ForensicEvidence {
  kind: 'forensic';
  failureReportId: string;
  reporter: string;
  format: 'arf' | 'text';
  /** When the reporter received the original message, ISO 8601 in UTC; null when not given. */
  arrivalDate: string | null;
  sourceIp: string | null;
  authFailure: string[];
  identityAlignment: string[] | null;
  deliveryResult: string | null;
  authenticationResults: string[];
  originalMailFrom: string | null;
  originalRcptTo: string[];
  headers: {
    from: string | null;
    to: string | null;
    subject: string | null;
    date: string | null;
    messageId: string | null;
  };
}

/** A DNS record as one lookup saw it, as a DNS alert and its ticket show it. */
export interface DnsRecordSnapshot {
  observationId: string;
  /** ISO 8601 time of the lookup. */
  observedAt: string;
  /** ok, nxdomain or nodata. */
  lookupStatus: string;
  /** Each TXT record with its strings joined, sorted; empty when there is none. */
  records: string[];
  /** CNAME targets followed from the name, in order. */
  cnameChain: string[];
  /** The validator's verdict in one or two sentences. */
  verdict: string;
  findings: { code: string; severity: string; message: string }[];
}

/** The facts of a confirmed change of a DMARC, SPF or DKIM record. */
export interface DnsEvidence {
  kind: 'dns';
  recordKind: 'dmarc' | 'spf' | 'dkim';
  /** The DNS name looked up, such as _dmarc.example.com. */
  name: string;
  /** The DKIM selector, or null for DMARC and SPF. */
  selector: string | null;
  /**
   * meaning, removed, appeared, became_invalid or weakened; invalid_at_first_check for a
   * record that was invalid when the domain was first checked.
   */
  change: string;
  /** The highest severity of the details (info, warning, critical), or null without details. */
  severity: string | null;
  /** The meaning of the change for mail, in sentences. */
  meaning: string;
  details: { field: string; before: string; after: string; severity: string; message: string }[];
  /** The record before the change; null when the domain had not been checked before. */
  before: DnsRecordSnapshot | null;
  after: DnsRecordSnapshot;
  /** When a lookup first showed the change, and when a second lookup confirmed it. */
  firstSeenAt: string;
  confirmedAt: string;
  /** SHA-256 of the new meaning, the part of the fingerprint that distinguishes changes. */
  meaningHash: string;
}

export type AlertEvidence = ThresholdEvidence | ForensicEvidence | DnsEvidence;

export interface AlertView {
  id: string;
  customerId: string;
  domainId: string | null;
  domainName: string;
  groupId: string | null;
  kind: AlertKind;
  incidentId: string | null;
  summary: string;
  evidence: AlertEvidence;
  createdAt: string;
  ticketStatus: TicketStatus;
  halopsaTicketId: number | null;
  ticketError: string | null;
}

export interface IncidentView {
  id: string;
  status: 'open' | 'resolved';
  openedAt: string;
  lastFiredAt: string;
  firingCount: number;
  reopenCount: number;
  resolvedAt: string | null;
  resolution: string | null;
  ticketStatus: 'not_routed' | 'pending' | 'created' | 'failed';
  halopsaTicketId: number | null;
}

export interface IncidentNoteView {
  id: string;
  kind: 'firing' | 'closing';
  status: 'sent' | 'failed';
  alertIds: string[];
  halopsaTicketId: number;
  halopsaActionId: number | null;
  error: string | null;
  createdAt: string;
}

export interface IncidentResponse {
  incident: IncidentView;
  alerts: AlertView[];
  notes: IncidentNoteView[];
}
