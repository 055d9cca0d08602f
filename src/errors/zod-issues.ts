import { z } from 'zod';

/** One problem with an input, at most one per field. */
export interface InputProblem {
  /** The field's dotted path, such as `selectors.0`, or `''` for the input as a whole. */
  path: string;
  /**
   * The problem in words, written to follow the field's name, such as `is required` or
   * `must be at most 200 characters long (got 300 characters)`.
   */
  message: string;
}

export interface DescribeOptions {
  /** The word for a key of the input in messages about unknown keys (default "field"). */
  keyNoun?: string;
}

type Schema = z.core.$ZodType;
type Issue = z.core.$ZodIssue;

/** The parts of zod's schema definitions that lead from a schema to its fields. */
interface SchemaDef {
  type: string;
  innerType?: Schema;
  in?: Schema;
  out?: Schema;
  getter?: () => Schema;
  options?: readonly Schema[];
  shape?: Record<string, Schema>;
  element?: Schema;
  valueType?: Schema;
  items?: readonly Schema[];
  rest?: Schema | null;
  format?: string;
  checks?: readonly z.core.$ZodCheck[];
}

const MAX_ECHO_LENGTH = 60;
const MAX_LISTED_KEYS = 12;
const INTEGER_FORMATS = new Set(['safeint', 'int32', 'uint32']);
// A field whose name matches is never echoed, because its value may be a credential.
const SECRET_NAME = /secret|token|password|passphrase|key/i;

/**
 * Describe the issues of a failed zod parse in words, at most one problem per field, in the
 * order zod found them.
 *
 * Every message is built from the issue's code and data, not from zod's wording, so a message
 * that a schema sets for a type, size or option check is not used. Two kinds keep the schema's
 * own words: custom issues (from `refine`, `superRefine` or `addIssue`), and format issues whose
 * schema sets a message, such as a regex with `{ error: 'must be a domain such as example.com' }`.
 * A schema's `.describe()` text, when it has one, names what the field must be in type errors.
 *
 * The value given is echoed in double quotes (or bare, for numbers), shortened to 60
 * characters, and read from `input` rather than from the issue, so that a query parameter
 * shows as it was sent and not as the number it was coerced to. Values of fields whose names
 * contain secret, token, password, passphrase or key are never echoed, and the password of a
 * URL is replaced by `***`.
 */
export function describeIssues(
  schema: Schema,
  input: unknown,
  issues: readonly Issue[],
  options: DescribeOptions = {},
): InputProblem[] {
  const groups = new Map<string, Issue[]>();
  for (const issue of expandUnknownKeys(issues)) {
    const path = issue.path.map(String).join('.');
    const group = groups.get(path);
    if (group) group.push(issue);
    else groups.set(path, [issue]);
  }
  return [...groups].map(([path, group]) => ({
    path,
    message: describeIssue(schema, input, pickExplaining(group), options),
  }));
}

/** Split an issue about unknown keys into one issue per key, each with the key's path. */
function expandUnknownKeys(issues: readonly Issue[]): Issue[] {
  return issues.flatMap((issue): Issue[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ ...issue, keys: [key], path: [...issue.path, key] }))
      : [issue],
  );
}

/**
 * Pick the issue that best explains what is wrong with one field. A wrong type explains every
 * other problem. Among limits, the tightest wins: `z.number().int().max(100)` given 1e20 fails
 * both the safe-integer limit and the maximum of 100, and only 100 is worth reporting.
 */
function pickExplaining(group: Issue[]): Issue {
  const wrongType = group.find((issue) => issue.code === 'invalid_type');
  if (wrongType) return wrongType;
  const first = group[0]!;
  if (first.code === 'too_big') {
    const limits = group.filter((issue) => issue.code === 'too_big');
    return limits.reduce((best, issue) =>
      Number(issue.maximum) < Number(best.maximum) ? issue : best,
    );
  }
  if (first.code === 'too_small') {
    const limits = group.filter((issue) => issue.code === 'too_small');
    return limits.reduce((best, issue) =>
      Number(issue.minimum) > Number(best.minimum) ? issue : best,
    );
  }
  return first;
}

function describeIssue(
  schema: Schema,
  input: unknown,
  issue: Issue,
  options: DescribeOptions,
): string {
  const sent = valueAt(input, issue.path);
  const value = sent.found ? sent.value : issue.input;
  const secret = issue.path.some((key) => typeof key === 'string' && SECRET_NAME.test(key));
  const got = (text: string | null) => (text === null || secret ? '' : ` (got ${text})`);
  const missing = !sent.found || value === undefined;

  switch (issue.code) {
    case 'invalid_type': {
      if (missing) return 'is required';
      const expected = expectedNoun(schemasAt(schema, issue.path), issue.expected);
      return `must be ${expected} (got ${describeReceived(value, secret)})`;
    }
    case 'invalid_value': {
      if (missing) return 'is required';
      const allowed = issue.values.map((allowedValue) => formatPrimitive(allowedValue));
      const rule =
        allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of ${allowed.join(', ')}`;
      return `${rule}${got(describeValue(value))}`;
    }
    case 'too_big':
      return describeLimit('at most', issue.maximum, issue.inclusive, issue.origin, value, got);
    case 'too_small':
      return describeLimit('at least', issue.minimum, issue.inclusive, issue.origin, value, got);
    case 'invalid_format':
      return `${formatRule(issue)}${got(describeValue(value))}`;
    case 'not_multiple_of':
      return `${multipleRule(Number(issue.divisor))}${got(describeNumber(value))}`;
    case 'unrecognized_keys': {
      const noun = options.keyNoun ?? 'field';
      const known = knownKeys(schemasAt(schema, issue.path.slice(0, -1)));
      if (known.length === 0) return `is not a known ${noun}; remove it`;
      const listed = known.slice(0, MAX_LISTED_KEYS).join(', ');
      const more = known.length > MAX_LISTED_KEYS ? ', …' : '';
      return `is not a known ${noun} (known: ${listed}${more}); remove it`;
    }
    case 'invalid_union':
      return `does not match any accepted form${got(describeValue(value))}`;
    case 'invalid_key':
      return 'has a key that is not accepted';
    case 'invalid_element':
      return 'has an item that is not accepted';
    case 'custom':
      return issue.message;
  }
}

type GotSuffix = (text: string | null) => string;

/** Describe a size or value limit, such as `must be at most 200 characters long (got 300 characters)`. */
function describeLimit(
  bound: 'at most' | 'at least',
  limit: number | bigint,
  inclusive: boolean | undefined,
  origin: string,
  value: unknown,
  got: GotSuffix,
): string {
  const size = sizeOf(value);
  switch (origin) {
    case 'string':
      if (bound === 'at least' && Number(limit) === 1) return 'must not be empty';
      return `must be ${bound} ${limit} ${plural(limit, 'character')} long${sizeSuffix(size, 'character')}`;
    case 'array':
    case 'set':
      if (bound === 'at least' && Number(limit) === 1) return 'must list at least one item';
      return `must list ${bound} ${limit} ${plural(limit, 'item')}${sizeSuffix(size, 'item')}`;
    case 'file':
      return `must be ${bound} ${limit} bytes${sizeSuffix(size, 'byte')}`;
    case 'date': {
      const when = new Date(Number(limit)).toISOString();
      const word = bound === 'at most' ? 'later' : 'earlier';
      return `must be no ${word} than ${when}${got(describeValue(value))}`;
    }
    default: {
      const strict = bound === 'at most' ? 'less than' : 'greater than';
      return `must be ${inclusive === false ? strict : bound} ${limit}${got(describeNumber(value))}`;
    }
  }
}

function sizeSuffix(size: number | null, unit: string): string {
  return size === null ? '' : ` (got ${size} ${plural(size, unit)})`;
}

function plural(count: number | bigint, unit: string): string {
  return Number(count) === 1 ? unit : `${unit}s`;
}

function sizeOf(value: unknown): number | null {
  if (typeof value === 'string' || Array.isArray(value)) return value.length;
  if (value instanceof Set) return value.size;
  return null;
}

/** Word the rule of a string format, in the schema's own words when it sets a message. */
function formatRule(issue: z.core.$ZodIssueInvalidStringFormat): string {
  if (issue.message !== defaultMessage(issue)) return issue.message;
  switch (issue.format) {
    case 'uuid':
    case 'guid':
      return 'must be a UUID';
    case 'email':
      return 'must be an email address';
    case 'url':
      return 'must be a URL such as https://example.com';
    case 'datetime':
      return 'must be an ISO 8601 date and time such as 2026-01-31T12:00:00Z';
    case 'date':
      return 'must be a date such as 2026-01-31';
    case 'time':
      return 'must be a time such as 12:00:00';
    case 'starts_with':
      return `must start with ${JSON.stringify(readString(issue, 'prefix'))}`;
    case 'ends_with':
      return `must end with ${JSON.stringify(readString(issue, 'suffix'))}`;
    case 'includes':
      return `must contain ${JSON.stringify(readString(issue, 'includes'))}`;
    case 'regex':
      return `must match the pattern ${issue.pattern ?? ''}`.trimEnd();
    case 'lowercase':
      return 'must be in lower case';
    case 'uppercase':
      return 'must be in upper case';
    default:
      return `must be a valid ${issue.format}`;
  }
}

function readString(issue: object, key: string): string {
  const value = (issue as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : '';
}

/** Return zod's own message for an issue, to tell it from a message that a schema set. */
function defaultMessage(issue: Issue): string | undefined {
  const localeError = z.config().localeError;
  const result = localeError?.(issue as unknown as z.core.$ZodRawIssue);
  return typeof result === 'string' ? result : (result?.message ?? undefined);
}

/** Word the rule of `multipleOf`, so that 0.01 reads as "at most 2 decimal places". */
function multipleRule(divisor: number): string {
  if (divisor > 0 && divisor < 1) {
    const places = Math.round(Math.log10(1 / divisor));
    if (Math.abs(10 ** places * divisor - 1) < 1e-9) {
      return `must have at most ${places} decimal ${plural(places, 'place')}`;
    }
  }
  return `must be a multiple of ${divisor}`;
}

/** Name the type a field expects, such as "a whole number" or the schema's own description. */
function expectedNoun(schemas: Schema[], expected: string): string {
  for (const schema of schemas) {
    const description = z.globalRegistry.get(schema)?.description;
    if (description) return description;
  }
  switch (expected) {
    case 'number':
      return schemas.some(isInteger) ? 'a whole number' : 'a number';
    case 'int':
    case 'bigint':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
    case 'record':
      return 'an object';
    case 'null':
      return 'null';
    default:
      return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
  }
}

function isInteger(schema: Schema): boolean {
  const def = defOf(schema);
  if (def.type !== 'number') return false;
  if (def.format && INTEGER_FORMATS.has(def.format)) return true;
  return (def.checks ?? []).some((check) => {
    const checkDef = check._zod.def as { check: string; format?: string };
    return checkDef.check === 'number_format' && INTEGER_FORMATS.has(checkDef.format ?? '');
  });
}

function knownKeys(schemas: Schema[]): string[] {
  return [...new Set(schemas.flatMap((schema) => Object.keys(defOf(schema).shape ?? {})))];
}

function defOf(schema: Schema): SchemaDef {
  return schema._zod.def as unknown as SchemaDef;
}

/** The schemas that validate the value at `path`, with every wrapper around them. */
function schemasAt(schema: Schema, path: readonly PropertyKey[]): Schema[] {
  let current = unwrap([schema]);
  for (const key of path) {
    const children = current.flatMap((parent) => {
      const def = defOf(parent);
      if (def.shape) return def.shape[String(key)] ?? [];
      if (def.element) return def.element;
      if (def.valueType) return def.valueType;
      if (def.items) return def.items[Number(key)] ?? def.rest ?? [];
      return [];
    });
    current = unwrap(children);
  }
  return current;
}

/** Add every schema that `schemas` wrap: optional, default, pipe, lazy, union and the like. */
function unwrap(schemas: Schema[]): Schema[] {
  const found: Schema[] = [];
  const pending = [...schemas];
  while (pending.length > 0) {
    const schema = pending.shift()!;
    if (found.includes(schema)) continue;
    found.push(schema);
    const def = defOf(schema);
    if (def.innerType) pending.push(def.innerType);
    if (def.type === 'pipe' && def.in && def.out) pending.push(def.in, def.out);
    if (def.type === 'lazy' && def.getter) pending.push(def.getter());
    if (def.type === 'union' && def.options) pending.push(...def.options);
  }
  return found;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let current = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) {
      return { found: false, value: undefined };
    }
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return { found: current !== undefined, value: current };
}

/** Describe a value of the wrong type, naming its type when the value alone would not. */
function describeReceived(value: unknown, secret: boolean): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return secret ? 'a string' : quote(value);
    case 'number':
      if (Number.isNaN(value)) return 'a value that is not a number';
      return secret ? 'a number' : `the number ${value}`;
    case 'boolean':
      return secret ? 'true or false' : String(value);
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

/** Echo a value: strings in double quotes, numbers, booleans and null bare. */
function describeValue(value: unknown): string | null {
  if (typeof value === 'string') return quote(value);
  if (value === null || ['number', 'bigint', 'boolean'].includes(typeof value)) {
    return String(value);
  }
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return null;
}

/** Echo a number as it was sent: a query parameter's text bare, without quotes. */
function describeNumber(value: unknown): string | null {
  if (typeof value === 'string') {
    return value.trim() === '' ? 'an empty value' : shorten(hidePasswords(value));
  }
  return describeValue(value);
}

function formatPrimitive(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

function quote(text: string): string {
  return JSON.stringify(shorten(hidePasswords(text)));
}

function shorten(text: string): string {
  return text.length > MAX_ECHO_LENGTH ? `${text.slice(0, MAX_ECHO_LENGTH - 1)}…` : text;
}

/** Replace the password of every URL in `text`, such as imaps://user:pass@host, by ***. */
function hidePasswords(text: string): string {
  return text.replace(/(\/\/[^/?#@:\s]*:)[^/?#@\s]*@/g, '$1***@');
}
