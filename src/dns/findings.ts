// Findings are what the record checks report: one code a program can match on, one severity,
// and one sentence a technician can act on.

/**
 * `error`: receivers ignore the record or part of it, or it lets anyone send.
 * `warning`: it works, but it is fragile, weak or deprecated.
 * `info`: worth knowing, nothing to fix.
 */
export type FindingSeverity = 'error' | 'warning' | 'info';

/** The DMARC specifications whose receivers read a record differently. */
export type DmarcDialect = 'rfc7489' | 'rfc9989';

export interface Finding {
  /** Stable snake_case identifier, e.g. `spf_lookup_limit`. */
  code: string;
  severity: FindingSeverity;
  message: string;
  /** Set when the finding holds only for receivers of one DMARC specification. */
  dialect?: DmarcDialect;
}

/** Build a finding. A small helper so that call sites read as one line each. */
export function finding(
  code: string,
  severity: FindingSeverity,
  message: string,
  dialect?: DmarcDialect,
): Finding {
  return dialect ? { code, severity, message, dialect } : { code, severity, message };
}

/**
 * Join the strings of one TXT record with nothing in between, as RFC 7208 section 3.3,
 * RFC 7489 section 6.3 and RFC 6376 section 3.6.2.2 require.
 */
export function joinTxtStrings(strings: readonly string[]): string {
  return strings.join('');
}

/** Quote a value for a message, shortened so that a huge record does not flood the text. */
export function quote(value: string, max = 80): string {
  const shown = value.length > max ? `${value.slice(0, max - 3)}...` : value;
  return `"${shown}"`;
}
