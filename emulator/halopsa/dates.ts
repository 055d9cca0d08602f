// HaloPSA serialises dates the .NET way: seven fractional digits and a `Z` on set dates, and
// the sentinel 1900-01-01T00:00:00 (no `Z`) on dates that were never set. Both forms appear
// in captured HaloPSA ticket responses, so the emulator returns both.

/** The value HaloPSA returns for a date field that was never set. */
export const UNSET_DATE = '1900-01-01T00:00:00';

/** Formats epoch milliseconds as a .NET round-trip UTC date, e.g. 2026-12-03T10:15:30.1230000Z. */
export function toDotNetDate(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, -1)}0000Z`;
}
