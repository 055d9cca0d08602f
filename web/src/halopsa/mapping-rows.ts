// The rows of step 2 and the rules they follow, kept apart from React so that they can be
// tested alone: which rows are complete, which selections are no longer valid, and which set
// of mappings the server should hold.
import type {
  CustomerMappingView,
  HaloClientOption,
  HaloItemOption,
  MappingsRequest,
} from '../../../src/contract/halopsa.ts';
import type { CustomerView } from '../../../src/contract/platform.ts';

export type RowField = 'customerId' | 'haloClientId' | 'haloItemId';

/** One row of the mapping table, saved or not. */
export interface MappingRow {
  /** A stable identity for React and for matching server errors to rows. */
  key: string;
  customerId: string | null;
  /** The names stored with a saved mapping, shown when the record itself has gone. */
  customerName: string | null;
  haloClientId: number | null;
  haloClientName: string | null;
  haloItemId: number | null;
  haloItemName: string | null;
  /** The server's reason for rejecting this row in the last save. */
  serverError: { field: RowField | null; message: string } | null;
}

/** The records the table chooses from: platform customers, active HaloPSA customers, items. */
export interface Lookups {
  customers: ReadonlyMap<string, CustomerView>;
  clients: ReadonlyMap<number, HaloClientOption>;
  items: ReadonlyMap<number, HaloItemOption>;
}

export interface RowCheck {
  /** Selections that are no longer valid, each with the sentence to show. */
  problems: Partial<Record<RowField, string>>;
  /** Fields with nothing chosen. */
  missing: RowField[];
  /** Every field chosen and valid: the row can be saved. */
  complete: boolean;
  /** Nothing chosen at all. */
  blank: boolean;
}

let nextKey = 0;

/** Return a new row key, unique within this page. */
export function newRowKey(): string {
  nextKey += 1;
  return `row-${nextKey}`;
}

/** Return an empty row, optionally with an item already chosen. */
export function emptyRow(itemId: number | null = null): MappingRow {
  return {
    key: newRowKey(),
    customerId: null,
    customerName: null,
    haloClientId: null,
    haloClientName: null,
    haloItemId: itemId,
    haloItemName: null,
    serverError: null,
  };
}

/** Build the table rows of the mappings the server holds. */
export function rowsFromMappings(mappings: readonly CustomerMappingView[]): MappingRow[] {
  return mappings.map((mapping) => ({
    key: newRowKey(),
    customerId: mapping.customerId,
    customerName: mapping.customerName,
    haloClientId: mapping.haloClientId,
    haloClientName: mapping.haloClientName,
    haloItemId: mapping.haloItemId,
    haloItemName: mapping.haloItemName,
    serverError: null,
  }));
}

/** Check one row against the current lookups. */
export function checkRow(row: MappingRow, lookups: Lookups): RowCheck {
  const problems: Partial<Record<RowField, string>> = {};
  const missing: RowField[] = [];

  if (row.customerId === null) missing.push('customerId');
  else if (!lookups.customers.has(row.customerId)) {
    problems.customerId = `The customer account “${row.customerName ?? row.customerId}” no longer exists in dmarcdesk. Remove this row.`;
  }

  if (row.haloClientId === null) missing.push('haloClientId');
  else if (!lookups.clients.has(row.haloClientId)) {
    problems.haloClientId = `HaloPSA customer “${row.haloClientName ?? row.haloClientId}” (id ${row.haloClientId}) is no longer in HaloPSA, or is inactive. Choose another.`;
  }

  if (row.haloItemId === null) missing.push('haloItemId');
  else if (!lookups.items.has(row.haloItemId)) {
    problems.haloItemId = `HaloPSA item “${row.haloItemName ?? row.haloItemId}” (id ${row.haloItemId}) is no longer in HaloPSA. Choose another.`;
  }

  const invalid = Object.keys(problems).length > 0;
  return {
    problems,
    missing,
    complete: missing.length === 0 && !invalid,
    blank: missing.length === 3,
  };
}

/**
 * Check every row, and mark a row that bills the same HaloPSA customer with the same item as
 * an earlier row: the server accepts each such pair once, because two subscriptions of one
 * item for one HaloPSA customer could not be told apart.
 */
export function checkRows(rows: readonly MappingRow[], lookups: Lookups): Map<string, RowCheck> {
  const checks = new Map<string, RowCheck>();
  const firstRowOfPair = new Map<string, number>();
  rows.forEach((row, index) => {
    const check = checkRow(row, lookups);
    if (row.haloClientId !== null && row.haloItemId !== null && !check.problems.haloClientId) {
      const pair = `${row.haloClientId}:${row.haloItemId}`;
      const first = firstRowOfPair.get(pair);
      if (first === undefined) {
        firstRowOfPair.set(pair, index);
      } else {
        const name = lookups.clients.get(row.haloClientId)?.name ?? row.haloClientName;
        check.problems.haloClientId = `Row ${first + 1} already bills HaloPSA customer “${name}” with this item. Choose another HaloPSA customer or item.`;
        check.complete = false;
      }
    }
    checks.set(row.key, check);
  });
  return checks;
}

/** Return the mappings the server should hold: every complete row, in table order. */
export function completeMappings(
  rows: readonly MappingRow[],
  lookups: Lookups,
): { rowKeys: string[]; body: MappingsRequest } {
  const checks = checkRows(rows, lookups);
  const rowKeys: string[] = [];
  const mappings: MappingsRequest['mappings'] = [];
  for (const row of rows) {
    if (!checks.get(row.key)!.complete) continue;
    rowKeys.push(row.key);
    mappings.push({
      customerId: row.customerId!,
      haloClientId: row.haloClientId!,
      haloItemId: row.haloItemId!,
    });
  }
  return { rowKeys, body: { mappings } };
}

/** Return a key that is equal for two sets of mappings exactly when they hold the same rows. */
export function mappingSetKey(
  mappings: readonly { customerId: string; haloClientId: number; haloItemId: number }[],
): string {
  return mappings
    .map((mapping) => `${mapping.customerId}:${mapping.haloClientId}:${mapping.haloItemId}`)
    .sort()
    .join('|');
}

const nameKey = (name: string) => name.trim().toLowerCase();

/**
 * Build a row for every platform customer account that has none. A row gets the active
 * HaloPSA customer of the same name (ignoring case and outer spaces) when there is exactly one
 * and no other row uses it yet, and the given item.
 */
export function rowsForUnmappedCustomers(
  rows: readonly MappingRow[],
  customers: readonly CustomerView[],
  clients: readonly HaloClientOption[],
  itemId: number | null,
): { added: MappingRow[]; matched: number } {
  const used = new Set(rows.map((row) => row.customerId).filter((id) => id !== null));
  const usedClients = new Set(rows.map((row) => row.haloClientId).filter((id) => id !== null));
  const clientsByName = new Map<string, HaloClientOption | null>();
  for (const client of clients) {
    const key = nameKey(client.name);
    // Two HaloPSA customers with one name match neither, so that nothing is guessed.
    clientsByName.set(key, clientsByName.has(key) ? null : client);
  }

  let matched = 0;
  const added: MappingRow[] = [];
  for (const customer of customers) {
    if (used.has(customer.id)) continue;
    let client = clientsByName.get(nameKey(customer.name)) ?? null;
    if (client && usedClients.has(client.id)) client = null;
    if (client) {
      usedClients.add(client.id);
      matched += 1;
    }
    added.push({
      ...emptyRow(itemId),
      customerId: customer.id,
      customerName: customer.name,
      haloClientId: client?.id ?? null,
      haloClientName: client?.name ?? null,
    });
  }
  return { added, matched };
}

const FIELD_NAMES: Record<RowField, string> = {
  customerId: 'a customer account',
  haloClientId: 'a HaloPSA customer',
  haloItemId: 'an item',
};

/** Say what a row still needs, such as "choose a HaloPSA customer and an item". */
export function missingText(missing: readonly RowField[]): string {
  const names = missing.map((field) => FIELD_NAMES[field]);
  if (names.length <= 1) return `choose ${names[0] ?? ''}`;
  return `choose ${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/**
 * Return why the table cannot move on to step 3, or null when it can: every row that is not
 * blank must be complete, and at least one row must exist.
 */
export function blockerForNext(rows: readonly MappingRow[], lookups: Lookups): string | null {
  const checks = checkRows(rows, lookups);
  let complete = 0;
  for (const [index, row] of rows.entries()) {
    const check = checks.get(row.key)!;
    if (check.blank) continue;
    const invalid = Object.values(check.problems)[0];
    if (invalid) return `Row ${index + 1}: ${invalid}`;
    if (check.missing.length > 0) {
      return `Row ${index + 1} is incomplete: ${missingText(check.missing)}, or remove the row.`;
    }
    complete += 1;
  }
  if (complete === 0) return 'Map at least one customer account before going on to step 3.';
  return null;
}
