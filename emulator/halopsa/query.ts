// Query-string helpers. ASP.NET binds query parameters case-insensitively, so the API layer
// lower-cases every name before a resource reads it. A repeated name keeps its first value.
import { modelStateError } from './errors.ts';
import { RequestError } from './request-error.ts';

/** Query parameters of one request, names lower-cased. */
export type Query = ReadonlyMap<string, string>;

/** Builds a Query from fastify's parsed query object. */
export function normaliseQuery(raw: Record<string, string | string[] | undefined>): Query {
  const query = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) {
    const first = Array.isArray(value) ? value[0] : value;
    const key = name.toLowerCase();
    if (first !== undefined && !query.has(key)) query.set(key, first);
  }
  return query;
}

/** Returns a boolean parameter: "true" (any case) is true, other values are false. */
export function queryBoolean(query: Query, name: string, fallback: boolean): boolean {
  const value = query.get(name);
  if (value === undefined || value === '') return fallback;
  return value.toLowerCase() === 'true';
}

/**
 * Returns an integer parameter, or undefined when it is absent or empty.
 * Throws a RequestError (400, model-state style) when the value is not an integer.
 */
export function queryInteger(query: Query, name: string): number | undefined {
  const value = query.get(name);
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d+$/.test(value) || !isInt32(Number(value))) {
    throw new RequestError(modelStateError({ [name]: [`The value '${value}' is not valid.`] }));
  }
  return Number(value);
}

/** Returns whether a number fits .NET's Int32, the type of HaloPSA's ids. */
export function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= -2147483648 && value <= 2147483647;
}
