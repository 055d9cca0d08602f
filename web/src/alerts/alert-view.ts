// The JSON of GET /api/v1/alerts/:id and GET /api/v1/incidents/:id as the alert page reads it.
// The server's types are in src/alerts/alert-store.ts and incident-store.ts, where times are
// Date objects, so they are restated here with times as ISO 8601 strings.
// NOTE: these copies follow the server's types by hand; a change there must be repeated here.

export type AlertKind = 'dns' | 'threshold' | 'forensic';

export interface ThresholdEvidence {
  kind: 'threshold';
  ruleId: string;
  subject: { type: 'domain' | 'group'; id: string; name: string; domains: string[] };
  failedMessages: number;
  totalMessages: number;
  failurePercent: number;
  maxFailedMessages: number | null;
  maxFailurePercent: number | null;
  minMessages: number;
  windowHours: number | null;
  exceeded: ('failed_count' | 'failure_percent')[];
  period: { begin: string; end: string };
  reportCount: number;
  reporters: string[];
  reporter: string;
  reportId: string;
  topSources: { sourceIp: string; failedMessages: number }[];
}

export interface ForensicEvidence {
  kind: 'forensic';
  failureReportId: string;
  reporter: string;
  format: 'arf' | 'text';
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

export interface DnsRecordSnapshot {
  observationId: string;
  observedAt: string;
  lookupStatus: string;
  records: string[];
  cnameChain: string[];
  verdict: string;
  findings: { code: string; severity: string; message: string }[];
}

export interface DnsEvidence {
  kind: 'dns';
  recordKind: 'dmarc' | 'spf' | 'dkim';
  name: string;
  selector: string | null;
  change: string;
  severity: string | null;
  meaning: string;
  details: { field: string; before: string; after: string; severity: string; message: string }[];
  before: DnsRecordSnapshot | null;
  after: DnsRecordSnapshot;
  firstSeenAt: string;
  confirmedAt: string;
  meaningHash: string;
}

export type AlertEvidence = ThresholdEvidence | ForensicEvidence | DnsEvidence;

export type TicketStatus = 'not_routed' | 'pending' | 'created' | 'failed' | 'held' | 'noted';

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
