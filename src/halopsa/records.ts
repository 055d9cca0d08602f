import { z } from 'zod';

import type { FailureContext } from './errors.ts';
import { createHaloPsaError, HaloPsaError } from './errors.ts';

// Field names follow HaloPSA's own JSON (snake_case and run-together lower case). Every
// record keeps the fields it does not declare, so a caller can read them without a release
// of this library. HaloPSA sends null for many unset fields; optional fields read null as
// absent.

/** A HaloPSA id: a safe integer. JSON such as 95.0 parses to the integer 95. */
const haloId = z.number().int();
const optionalId = haloId.nullish().transform((value) => value ?? undefined);
const optionalString = z
  .string()
  .nullish()
  .transform((value) => value ?? undefined);
const optionalBoolean = z
  .boolean()
  .nullish()
  .transform((value) => value ?? undefined);
const optionalNumber = z
  .number()
  .nullish()
  .transform((value) => value ?? undefined);

/** A customer (HaloPSA's schema name: Area). */
export interface HaloClient {
  id: number;
  name: string;
  inactive?: boolean;
  toplevel_id?: number;
  toplevel_name?: string;
  [field: string]: unknown;
}

/** A customer's site. HaloPSA declares client_id as a double; it is read as an integer here. */
export interface HaloSite {
  id: number;
  name: string;
  client_id: number;
  client_name?: string;
  inactive?: boolean;
  [field: string]: unknown;
}

/** An end-user contact of a customer (not an agent). site_id is a double in HaloPSA's schema. */
export interface HaloUser {
  id: number;
  name: string;
  site_id: number;
  site_name?: string;
  client_id?: number;
  client_name?: string;
  emailaddress?: string;
  firstname?: string;
  surname?: string;
  inactive?: boolean;
  [field: string]: unknown;
}

/** A product, for example the billing item a subscription is created from. */
export interface HaloItem {
  id: number;
  name: string;
  description?: string;
  isrecurringitem?: boolean;
  baseprice?: number;
  recurringprice?: number;
  [field: string]: unknown;
}

/** A ticket type (HaloPSA's schema name: RequestType). */
export interface HaloTicketType {
  id: number;
  name: string;
  use?: string;
  visible?: boolean;
  agentscanselect?: boolean;
  [field: string]: unknown;
}

/** A software licence or subscription (schema Licence_List). `count` is the seat quantity. */
export interface HaloLicence {
  id: number;
  client_id: number;
  client_name?: string;
  /** The item the licence bills from. Only newer HaloPSA versions have it. */
  item_id?: number;
  name?: string;
  count: number;
  site_id?: number;
  start_date?: string;
  end_date?: string;
  is_active?: boolean;
  [field: string]: unknown;
}

/** A ticket (HaloPSA's schema name: Faults). */
export interface HaloTicket {
  id: number;
  summary: string;
  details?: string;
  tickettype_id: number;
  client_id: number;
  site_id?: number;
  user_id?: number;
  status_id?: number;
  third_party_id_string?: string;
  dateoccurred?: string;
  [field: string]: unknown;
}

/** A note or update on a ticket. Action ids count from 1 per ticket, so the key is (ticket_id, id). */
export interface HaloAction {
  id: number;
  ticket_id: number;
  note?: string;
  outcome?: string;
  outcome_id?: number;
  [field: string]: unknown;
}

export const clientSchema = z.looseObject({
  id: haloId,
  name: z.string(),
  inactive: optionalBoolean,
  toplevel_id: optionalId,
  toplevel_name: optionalString,
});

export const siteSchema = z.looseObject({
  id: haloId,
  name: z.string(),
  client_id: haloId,
  client_name: optionalString,
  inactive: optionalBoolean,
});

export const userSchema = z.looseObject({
  id: haloId,
  name: z.string(),
  site_id: haloId,
  site_name: optionalString,
  client_id: optionalId,
  client_name: optionalString,
  emailaddress: optionalString,
  firstname: optionalString,
  surname: optionalString,
  inactive: optionalBoolean,
});

export const itemSchema = z.looseObject({
  id: haloId,
  name: z.string(),
  description: optionalString,
  isrecurringitem: optionalBoolean,
  baseprice: optionalNumber,
  recurringprice: optionalNumber,
});

export const ticketTypeSchema = z.looseObject({
  id: haloId,
  name: z.string(),
  use: optionalString,
  visible: optionalBoolean,
  agentscanselect: optionalBoolean,
});

export const licenceSchema = z.looseObject({
  id: haloId,
  client_id: haloId,
  client_name: optionalString,
  item_id: optionalId,
  name: optionalString,
  // HaloPSA's newer schema declares count as a double, so it is not forced to an integer.
  count: z.number(),
  site_id: optionalId,
  start_date: optionalString,
  end_date: optionalString,
  is_active: optionalBoolean,
});

export const ticketSchema = z.looseObject({
  id: haloId,
  summary: z.string(),
  details: optionalString,
  tickettype_id: haloId,
  client_id: haloId,
  site_id: optionalId,
  user_id: optionalId,
  status_id: optionalId,
  third_party_id_string: optionalString,
  dateoccurred: optionalString,
});

export const actionSchema = z.looseObject({
  id: haloId,
  ticket_id: haloId,
  note: optionalString,
  outcome: optionalString,
  outcome_id: optionalId,
});

/** An action outcome, such as "Internal Note", that actions name by `outcome_id`. */
export interface HaloOutcome {
  id: number;
  /** The outcome's name. */
  outcome?: string;
  /** The label of the outcome's action button. */
  buttonname?: string;
  [field: string]: unknown;
}

export const outcomeSchema = z.looseObject({
  id: haloId,
  outcome: optionalString,
  buttonname: optionalString,
});

// Compile-time checks that each schema produces its declared record type.
type Produces<Schema extends z.ZodType, Record> = z.output<Schema> extends Record ? true : never;
const schemaTypeChecks: [
  Produces<typeof clientSchema, HaloClient>,
  Produces<typeof siteSchema, HaloSite>,
  Produces<typeof userSchema, HaloUser>,
  Produces<typeof itemSchema, HaloItem>,
  Produces<typeof ticketTypeSchema, HaloTicketType>,
  Produces<typeof licenceSchema, HaloLicence>,
  Produces<typeof ticketSchema, HaloTicket>,
  Produces<typeof actionSchema, HaloAction>,
  Produces<typeof outcomeSchema, HaloOutcome>,
] = [true, true, true, true, true, true, true, true, true];
void schemaTypeChecks;

/** Removes keys whose value is undefined, so records compare and serialise cleanly. */
function withoutUndefined<T extends Record<string, unknown>>(record: T): T {
  for (const key of Object.keys(record)) {
    if (record[key] === undefined) delete record[key];
  }
  return record;
}

/** Describes zod issues by path and expectation, never by value, since a value may be anything. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map(
      (issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'the record'}: ${issue.message}`,
    )
    .join('; ');
}

/**
 * Parses one record with `schema`.
 *
 * @throws HaloPsaError unexpected_response naming the first invalid fields, with the
 *   ZodError as cause.
 */
export function parseRecord<Schema extends z.ZodType<Record<string, unknown>>>(
  schema: Schema,
  value: unknown,
  context: FailureContext,
  label: string,
): z.output<Schema> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw createHaloPsaError(
      'unexpected_response',
      { ...context, reason: `a ${label} record is invalid (${describeIssues(result.error)})` },
      result.error,
    );
  }
  return withoutUndefined(result.data);
}

/** A custom field value to write. HaloPSA replaces a record's custom fields wholesale on update. */
export interface HaloCustomFieldInput {
  id?: number;
  name?: string;
  value: unknown;
}

/** Writable fields of a licence. HaloPSA leaves omitted scalar fields unchanged on update. */
export interface HaloLicenceFields {
  client_id?: number;
  item_id?: number;
  name?: string;
  /** Seat quantity. */
  count?: number;
  /** -1 means no site. */
  site_id?: number;
  start_date?: string;
  end_date?: string;
  notes?: string;
  is_active?: boolean;
}

/**
 * A licence to save. Without `id` it is a new licence, which needs client_id and count. With
 * `id` it updates that licence and may carry only the fields that change.
 */
export type HaloLicenceInput =
  | (HaloLicenceFields & { id?: undefined; client_id: number; count: number })
  | (HaloLicenceFields & { id: number });

/** Writable fields of a ticket. HaloPSA ignores a nested tickettype object, so tickettype_id is flat. */
export interface HaloTicketInput {
  summary: string;
  details?: string;
  details_html?: string;
  tickettype_id: number;
  client_id: number;
  /** Needed by HaloPSA when `user_id` is set. */
  site_id?: number;
  user_id?: number;
  agent_id?: number;
  team?: string;
  status_id?: number;
  priority_id?: number;
  category_1?: string;
  third_party_id_string?: string;
  customfields?: HaloCustomFieldInput[];
  /** Skip HaloPSA's ticket rules on creation. */
  dont_do_rules?: boolean;
}

/** Writable fields of an action. HaloPSA requires an outcome (`outcome` or `outcome_id`). */
export interface HaloActionInput {
  ticket_id: number;
  outcome?: string;
  outcome_id?: number;
  note?: string;
  note_html?: string;
  hiddenfromuser?: boolean;
  sendemail?: boolean;
  new_status?: number;
  timetaken?: number;
}

function isIdField(key: string): boolean {
  return key === 'id' || key.endsWith('_id') || key === 'new_status';
}

/**
 * Checks that every id in `value` (fields named id, *_id and new_status, at any depth) is a
 * safe integer. HaloPSA rejects ids written as decimals, such as 95.0 sent back from its own
 * double-typed fields. A JavaScript integer serialises without a fraction, so only values
 * such as 95.5, NaN or 2^53 fail here.
 *
 * @throws HaloPsaError validation_failed naming the field and the value.
 */
export function assertIntegralIds(value: unknown, path: string): void {
  if (Array.isArray(value)) {
    value.forEach((element, index) => assertIntegralIds(element, `${path}[${index}]`));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [key, field] of Object.entries(value)) {
    const fieldPath = path === '' ? key : `${path}.${key}`;
    if (isIdField(key) && typeof field === 'number' && !Number.isSafeInteger(field)) {
      throw new HaloPsaError(
        'validation_failed',
        `${fieldPath} must be a whole number, but it is ${field}. ` +
          'HaloPSA rejects ids that are not integers.',
      );
    }
    if (typeof field === 'object' && field !== null) assertIntegralIds(field, fieldPath);
  }
}
