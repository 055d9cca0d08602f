const numbers = new Intl.NumberFormat('en-GB');

/** Format a count with its noun, such as "1 customer" or "5,000 customers". */
export function count(value: number, singular: string, plural = `${singular}s`): string {
  return `${numbers.format(value)} ${value === 1 ? singular : plural}`;
}

/** Format a number with thousands separators. */
export function formatNumber(value: number): string {
  return numbers.format(value);
}

/** Format an ISO 8601 timestamp for people, in the browser's time zone. */
export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}
