// Offset paging of list routes: a page of at most `limit` rows from `offset` on, the total
// number of rows that match the filter, and the path of the next page.

/** The paging fields of a list response. */
export interface PageInfo {
  total: number;
  limit: number;
  offset: number;
  /** The request path and query of the next page, or null on the last page. */
  next: string | null;
}

/**
 * Build the paging fields of a list response from the request URL, which keeps the caller's
 * filters in the next page's link.
 * NOTE: rows stored or deleted between two requests shift the offsets, so a page can repeat a
 * row of the previous page (after a new row) or miss one (after a deleted row).
 */
export function pageInfo(
  requestUrl: string,
  page: { total: number; limit: number; offset: number },
): PageInfo {
  const { total, limit, offset } = page;
  if (offset + limit >= total) return { total, limit, offset, next: null };
  const next = new URL(requestUrl, 'http://localhost');
  next.searchParams.set('limit', String(limit));
  next.searchParams.set('offset', String(offset + limit));
  return { total, limit, offset, next: `${next.pathname}${next.search}` };
}
