import type { Logger } from 'pino';

import type { FailureContext } from './errors.ts';
import { createHaloPsaError } from './errors.ts';

/** One page of a list: its rows and the total number of matching records. */
export interface Page<Row> {
  rows: Row[];
  recordCount: number;
}

// 10,000 pages of 100 rows is a million records, more than any list this client reads. The
// bound only stops a server that never stops returning new rows.
const MAX_PAGES = 10_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads HaloPSA's list wrapper `{ record_count, <listKey>: [...] }` and parses each row.
 *
 * @throws HaloPsaError not_halopsa when the list key is missing, and unexpected_response for
 *   a bare array (whose page position cannot be trusted), an empty body or a missing
 *   record_count.
 */
export function readPage<Row>(
  body: unknown,
  listKey: string,
  parseRow: (row: unknown) => Row,
  context: FailureContext,
): Page<Row> {
  if (Array.isArray(body)) {
    throw createHaloPsaError('unexpected_response', {
      ...context,
      reason: `it returned a bare list where an object with "${listKey}" and "record_count" was expected`,
    });
  }
  if (!isRecord(body)) {
    throw createHaloPsaError('unexpected_response', {
      ...context,
      reason: 'the response body is empty or not an object',
    });
  }
  const rows = body[listKey];
  if (!Array.isArray(rows)) {
    throw createHaloPsaError('not_halopsa', {
      ...context,
      reason: `its response to ${context.path ?? 'a list request'} has no "${listKey}" list`,
    });
  }
  const recordCount = body.record_count;
  if (typeof recordCount !== 'number' || !Number.isSafeInteger(recordCount) || recordCount < 0) {
    throw createHaloPsaError('unexpected_response', {
      ...context,
      reason: 'the list has no valid record_count',
    });
  }
  return { rows: rows.map(parseRow), recordCount };
}

export interface CollectOptions {
  /** Rows per page to request first. */
  pageSize: number;
  /** Resource name, for log lines. */
  resource: string;
  logger?: Logger;
  context: FailureContext;
}

/**
 * Fetches every page of a list, from page 1, and returns the rows without duplicate ids.
 *
 * Fetching continues while fewer unique rows than `record_count` have arrived and the last
 * page added new rows. The requested page size is not trusted, because HaloPSA caps some
 * lists silently (Tickets at 100 rows). When the first page is shorter than requested and
 * more rows remain, the rows received become the page size, so that the next page starts
 * right after them whether the server counts pages by the requested or the capped size.
 * Duplicates are dropped by id because records created while paging shift later pages.
 */
export async function collectAllPages<Row extends { id: number }>(
  fetchPage: (pageNo: number, pageSize: number) => Promise<Page<Row>>,
  options: CollectOptions,
): Promise<Row[]> {
  const rowsById = new Map<number, Row>();
  let pageSize = options.pageSize;

  for (let pageNo = 1; pageNo <= MAX_PAGES; pageNo += 1) {
    const page = await fetchPage(pageNo, pageSize);
    const sizeBefore = rowsById.size;
    for (const row of page.rows) {
      if (!rowsById.has(row.id)) rowsById.set(row.id, row);
    }

    if (rowsById.size >= page.recordCount) return [...rowsById.values()];
    if (page.rows.length === 0 || rowsById.size === sizeBefore) {
      // record_count can be stale when records are deleted while paging, so this is not an error.
      options.logger?.warn(
        {
          resource: options.resource,
          pageNo,
          received: rowsById.size,
          recordCount: page.recordCount,
        },
        'HaloPSA list ended before record_count was reached',
      );
      return [...rowsById.values()];
    }
    if (pageNo === 1 && page.rows.length < pageSize) {
      options.logger?.debug(
        { resource: options.resource, requested: pageSize, received: page.rows.length },
        'HaloPSA capped the page size',
      );
      pageSize = page.rows.length;
    }
  }

  throw createHaloPsaError('unexpected_response', {
    ...options.context,
    reason: `the list did not end after ${MAX_PAGES} pages`,
  });
}
