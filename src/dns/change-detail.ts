// The detail records a comparison is made of, shared by the comparisons of each record kind.

/** The urgency of a detail. `critical` breaks mail authentication or opens the domain. */
export type ChangeSeverity = 'info' | 'warning' | 'critical';

export interface ChangeDetail {
  /** The changed item, e.g. `p`, `rfc9989.domain`, `spf.ending`, `dkim.fingerprint`, `ttl`. */
  field: string;
  before: string;
  after: string;
  severity: ChangeSeverity;
  message: string;
}

export function detail(
  field: string,
  before: string,
  after: string,
  severity: ChangeSeverity,
  message: string,
): ChangeDetail {
  return { field, before, after, severity, message };
}

/** Pick critical when `critical` holds, else warning when `worse` holds, else info. */
export function severityOf(critical: boolean, worse: boolean): ChangeSeverity {
  if (critical) return 'critical';
  return worse ? 'warning' : 'info';
}
