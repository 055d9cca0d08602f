// The alert page's types are the API contract's, so a renamed field breaks the type check.
export type {
  AlertEvidence,
  AlertKind,
  AlertView,
  DnsEvidence,
  DnsRecordSnapshot,
  ForensicEvidence,
  IncidentNoteView,
  IncidentResponse,
  IncidentView,
  ThresholdEvidence,
  TicketStatus,
} from '../../../src/contract/alerts.ts';
