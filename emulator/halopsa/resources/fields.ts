// Field helpers shared by the resources: JSON type checks in HaloPSA's model-state style,
// the scalar-merge rule for updates, and control flags.
import { isInt32 } from '../query.ts';
import type { DataStore, TableName } from '../store.ts';
import type { JsonRecord } from '../types.ts';

/**
 * Returns model-state errors for fields that must be integers (HaloPSA's ids are Int32).
 * null counts as absent.
 */
export function integerFieldErrors(
  element: JsonRecord,
  fields: readonly string[],
  index: number,
): Record<string, string[]> {
  const errors: Record<string, string[]> = {};
  for (const field of fields) {
    const value = element[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !isInt32(value)) {
      errors[`[${index}].${field}`] = [
        `The JSON value could not be converted to System.Int32. Path: $[${index}].${field}`,
      ];
    }
  }
  return errors;
}

/**
 * Splits a posted element into stored fields and control flags. Names that start with an
 * underscore (`_recover`, `_novalidate`, ...) steer the write and are never stored.
 */
export function splitControlFlags(element: JsonRecord): { fields: JsonRecord; flags: JsonRecord } {
  const fields: JsonRecord = {};
  const flags: JsonRecord = {};
  for (const [name, value] of Object.entries(element)) {
    if (name.startsWith('_')) flags[name] = value;
    else fields[name] = value;
  }
  return { fields, flags };
}

/**
 * Applies an update the way HaloPSA does: posted scalars replace stored ones, omitted fields
 * stay, and a posted array (custom fields, tags) replaces the stored array wholesale.
 */
export function mergeUpdate(existing: JsonRecord, posted: JsonRecord): JsonRecord {
  return { ...existing, ...posted, id: existing.id };
}

/** Returns whether a value is a non-empty string after trimming. */
export function isFilled(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** Returns a field as an integer id, or undefined when it is absent or not an integer. */
export function idField(record: JsonRecord, field: string): number | undefined {
  const value = record[field];
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}

/** Returns whether any of the given string fields contains the search text, ignoring case. */
export function matchesSearch(
  record: JsonRecord,
  fields: readonly string[],
  search: string,
): boolean {
  const needle = search.toLowerCase();
  return fields.some((field) => {
    const value = record[field];
    return typeof value === 'string' && value.toLowerCase().includes(needle);
  });
}

/** Returns the `name` of a stored record, or '' when the id matches none. */
export function recordName(data: DataStore, table: TableName, id: unknown): string {
  const record = typeof id === 'number' ? data.tables[table].get(id) : undefined;
  return typeof record?.name === 'string' ? record.name : '';
}
