// HaloPSA's list paging: it pages only when `pageinate=true` (Halo's spelling) AND an explicit
// `page_no` are both sent. Otherwise it ignores page_size and page_no and returns a default
// page (50 rows observed for an API agent), or `count` rows when `count` is sent. Some
// endpoints silently cap page_size (Tickets at 100). A page past the end is an empty list.
import { queryBoolean, queryInteger, type Query } from './query.ts';
import type { ApiResult, JsonRecord } from './types.ts';

/** Paging settings for one list call. */
export interface PagingLimits {
  defaultPageSize: number;
  /** Maximum page_size (also applied to `count`); null for no cap. */
  cap: number | null;
}

/** One page of rows with the numbers HaloPSA puts in a list wrapper. */
export interface Page {
  rows: JsonRecord[];
  page_no: number;
  page_size: number;
  record_count: number;
}

/** Returns the page of matching rows that the query requests, with the wrapper numbers. */
export function selectPage(rows: JsonRecord[], query: Query, limits: PagingLimits): Page {
  const pageNo = queryInteger(query, 'page_no');
  const pageSize = queryInteger(query, 'page_size');
  const count = queryInteger(query, 'count');
  const capped = (size: number): number =>
    limits.cap === null ? size : Math.min(size, limits.cap);

  if (queryBoolean(query, 'pageinate', false) && pageNo !== undefined) {
    const size = capped(pageSize !== undefined && pageSize > 0 ? pageSize : limits.defaultPageSize);
    const number = Math.max(1, pageNo);
    const start = (number - 1) * size;
    return {
      rows: rows.slice(start, start + size),
      page_no: number,
      page_size: size,
      record_count: rows.length,
    };
  }

  // NOTE: whether HaloPSA caps `count` like page_size is unknown; the emulator caps both.
  const size = capped(count !== undefined && count > 0 ? count : limits.defaultPageSize);
  return { rows: rows.slice(0, size), page_no: 1, page_size: size, record_count: rows.length };
}

/** Builds the list wrapper `{page_no, page_size, record_count, <listKey>: [...]}`. */
export function listWrapper(page: Page, listKey: string, extra: JsonRecord = {}): ApiResult {
  return {
    status: 200,
    body: {
      ...extra,
      page_no: page.page_no,
      page_size: page.page_size,
      record_count: page.record_count,
      [listKey]: page.rows,
    },
  };
}

/** Sorts rows by the `order` field (ascending, or descending with `orderdesc=true`), else by id. */
export function sortRows(rows: JsonRecord[], query: Query): JsonRecord[] {
  const field = query.get('order') ?? 'id';
  const direction = queryBoolean(query, 'orderdesc', false) ? -1 : 1;
  return [...rows].sort((a, b) => direction * compareValues(a[field], b[field]));
}

function compareValues(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (a === undefined || a === null) return b === undefined || b === null ? 0 : -1;
  if (b === undefined || b === null) return 1;
  return String(a).localeCompare(String(b));
}
