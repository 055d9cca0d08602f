// Small helpers for DNS names: syntax checks and walking up the tree.
import { canonicalDnsName } from './resolver.ts';

/**
 * Return true for a name with at least two labels of letters, digits, "_" or "-" (at most 63
 * each, 253 in all) whose last label is not all digits. Underscores are allowed because
 * service names such as `_spf.example.com` are common in mail records.
 */
export function isPlausibleHostname(name: string): boolean {
  const canonical = canonicalDnsName(name);
  if (canonical.length === 0 || canonical.length > 253) return false;
  const labels = canonical.split('.');
  if (labels.length < 2) return false;
  const valid = labels.every((label) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label));
  return valid && !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/** Split a name into its labels, left to right, e.g. `["mail", "example", "com"]`. */
export function labelsOf(name: string): string[] {
  const canonical = canonicalDnsName(name);
  return canonical === '' ? [] : canonical.split('.');
}

/** Remove the left-most label, returning undefined for a single label. */
export function parentOf(name: string): string | undefined {
  const labels = labelsOf(name);
  return labels.length > 1 ? labels.slice(1).join('.') : undefined;
}

/** Keep the last `count` labels, e.g. `lastLabels("a.b.example.com", 2)` is `example.com`. */
export function lastLabels(name: string, count: number): string {
  return labelsOf(name).slice(-count).join('.');
}

/** True when `name` equals `ancestor` or lies below it. */
export function isAtOrBelow(name: string, ancestor: string): boolean {
  const child = canonicalDnsName(name);
  const parent = canonicalDnsName(ancestor);
  return child === parent || child.endsWith(`.${parent}`);
}
