// The HaloPSA integration's API contract: the request schemas the server validates with, and
// the response shapes it sends. The server's routes and the web app both import this file, so
// renaming a field on either side fails `npm run typecheck`.
import { z } from 'zod';

const haloId = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .positive({ error: 'must be a positive id' });
const uuid = z.uuid({ error: 'must be a UUID' });
const uuidList = z.array(uuid).max(10_000);

/** Body of PUT /integrations/halopsa/connection (step 1). */
export const connectRequestSchema = z.strictObject({
  url: z.string({ error: 'is required' }).min(1, { error: 'is required' }).max(2000),
  clientId: z.string({ error: 'is required' }).trim().min(1, { error: 'is required' }).max(500),
  clientSecret: z.string().min(1, { error: 'must not be empty' }).max(2000).optional(),
  tenant: z.string().trim().max(200).optional(),
});
export type ConnectRequest = z.input<typeof connectRequestSchema>;

/**
 * Body of PUT /integrations/halopsa/mappings (step 2): the whole set of mappings. It replaces
 * every mapping of the account, so a customer left out is unmapped and its HaloPSA licence is
 * set to a count of 0. An empty list unmaps every customer.
 */
export const mappingsRequestSchema = z.strictObject({
  mappings: z
    .array(z.strictObject({ customerId: uuid, haloClientId: haloId, haloItemId: haloId }))
    .max(20_000),
});
export type MappingsRequest = z.input<typeof mappingsRequestSchema>;

/** Body of PUT /integrations/halopsa/ticket-rules/:customerId (step 3). */
export const ticketRuleRequestSchema = z.strictObject({
  ticketTypeId: haloId,
  siteId: haloId.nullable().optional(),
  userId: haloId.nullable().optional(),
  dnsDomainIds: uuidList.default([]),
  thresholdDomainIds: uuidList.default([]),
  thresholdGroupIds: uuidList.default([]),
  forensicDomainIds: uuidList.default([]),
});
export type TicketRuleRequest = z.input<typeof ticketRuleRequestSchema>;

export const customerParamsSchema = z.object({ customerId: uuid });
export const clientsQuerySchema = z.strictObject({ search: z.string().max(200).optional() });
export const sitesQuerySchema = z.strictObject({ clientId: z.coerce.number().int().positive() });
export const usersQuerySchema = z.strictObject({ siteId: z.coerce.number().int().positive() });
export const historyQuerySchema = z.strictObject({
  customerId: uuid.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
export const callLogQuerySchema = z.strictObject({
  customerId: uuid.optional(),
  /** An HTTP status, or 0 for calls that got no response. */
  status: z.coerce.number().int().min(0).max(599).optional(),
  jobKind: z.string().min(1).max(100).optional(),
  purpose: z.enum(['token', 'api']).optional(),
  /** The `nextBefore` of the previous page. */
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

// Response shapes. `Time` is Date where the server builds a response and string (ISO 8601)
// where the browser reads it, because JSON serialisation turns every Date into such a string.

/** The stored connection as the API shows it. The client secret is never part of it. */
export interface HaloConnectionView<Time = string> {
  url: string;
  clientId: string;
  tenant: string | null;
  status: 'healthy' | 'needs_attention';
  statusDetail: string | null;
  lastCheckedAt: Time;
  hasClientSecret: true;
}

/** Response of GET and PUT /integrations/halopsa/connection. */
export interface ConnectionResponse<Time = string> {
  connection: HaloConnectionView<Time> | null;
}

/** One HaloPSA customer ("client" in HaloPSA's API). */
export interface HaloClientOption {
  id: number;
  name: string;
  inactive: boolean;
}

export interface ClientsResponse {
  clients: HaloClientOption[];
}

/** One HaloPSA item, the product a subscription is billed from. */
export interface HaloItemOption {
  id: number;
  name: string;
  recurring: boolean;
}

export interface ItemsResponse {
  items: HaloItemOption[];
}

export interface HaloTicketTypeOption {
  id: number;
  name: string;
}

export interface TicketTypesResponse {
  ticketTypes: HaloTicketTypeOption[];
  /** The type named "Alert" when HaloPSA has one, otherwise the first type, or null. */
  defaultTicketTypeId: number | null;
}

export interface HaloSiteOption {
  id: number;
  name: string;
}

export interface SitesResponse {
  sites: HaloSiteOption[];
}

export interface HaloUserOption {
  id: number;
  name: string;
  email: string | null;
}

export interface UsersResponse {
  users: HaloUserOption[];
}

/** A platform customer account mapped to a HaloPSA customer and the item billed for it. */
export interface CustomerMappingView<Time = string> {
  customerId: string;
  customerName: string;
  haloClientId: number;
  haloClientName: string;
  haloItemId: number;
  haloItemName: string;
  licenceId: number | null;
  syncedCount: number | null;
  syncedAt: Time | null;
  syncError: string | null;
  billableDomains: number;
}

/** Response of GET and PUT /integrations/halopsa/mappings: every mapping of the account. */
export interface MappingsResponse<Time = string> {
  mappings: CustomerMappingView<Time>[];
}

/** A customer's ticket rule: the alerts that become HaloPSA tickets, and how they are filed. */
export interface TicketRuleView {
  customerId: string;
  ticketTypeId: number;
  ticketTypeName: string;
  siteId: number | null;
  siteName: string | null;
  userId: number | null;
  userName: string | null;
  dnsDomainIds: string[];
  thresholdDomainIds: string[];
  thresholdGroupIds: string[];
  forensicDomainIds: string[];
}

/** Response of GET /integrations/halopsa/ticket-rules/:customerId. The rule is null until saved. */
export interface TicketRuleResponse {
  rule: TicketRuleView | null;
}

/** Response of PUT /integrations/halopsa/ticket-rules/:customerId. */
export interface SavedTicketRuleResponse {
  rule: TicketRuleView;
}

export type AlertKind = 'dns' | 'threshold' | 'forensic';

/** The three status cards of the summary: connection, customers and alerts. */
export interface IntegrationSummaryView<Time = string> {
  connection: HaloConnectionView<Time> | null;
  customers: { mapped: number; synced: number; pending: number; failed: number };
  alerts: {
    /** Alert kinds that at least one customer sends to HaloPSA. */
    enabledKinds: AlertKind[];
    /** Selected rows per alert kind. The threshold count adds domains and domain groups. */
    perCustomer: { customerId: string; dns: number; threshold: number; forensic: number }[];
  };
  /** Open problems of mappings whose HaloPSA records are gone or changed, oldest first. */
  problems: IntegrationProblemView<Time>[];
  /**
   * Instruction to fix the connection while it needs attention, or null. HaloPSA jobs wait until a
   * connection check succeeds.
   */
  attention: string | null;
}

/** A mapping that no longer works, until a later check passes. */
export interface IntegrationProblemView<Time = string> {
  id: string;
  customerId: string;
  customerName: string;
  kind:
    | 'client_missing'
    | 'client_inactive'
    | 'client_merged'
    | 'item_missing'
    | 'site_missing'
    | 'user_missing'
    | 'ticket_type_missing'
    | 'ticket_type_field_required';
  haloRecordType: 'client' | 'item' | 'site' | 'user' | 'ticket_type';
  haloRecordId: number;
  /** One sentence of what to do. */
  action: string;
  detail: Record<string, unknown>;
  openedAt: Time;
  checkedAt: Time;
}

/** Response of POST /integrations/halopsa/reconcile. */
export interface ReconcileResponse {
  queued: true;
}

/** Response of POST /integrations/halopsa/submit. */
export interface SubmitResponse<Time = string> {
  /** Licence syncs queued, one per mapped customer. */
  queued: number;
  summary: IntegrationSummaryView<Time>;
}

/** One entry of the integration history. */
export interface IntegrationEventView<Time = string> {
  id: number;
  customerId: string | null;
  event: string;
  outcome: 'succeeded' | 'failed';
  message: string;
  detail: Record<string, unknown>;
  createdAt: Time;
}

/** One HTTP call to HaloPSA: never headers, bodies or the query string. */
export interface HaloCallView<Time = string> {
  id: number;
  customerId: string | null;
  method: string;
  path: string;
  purpose: 'token' | 'api';
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  errorCode: string | null;
  durationMs: number;
  priority: string;
  /** The job queue that made the call, or null for a call from the API or the wizard. */
  jobKind: string | null;
  createdAt: Time;
}

/** Response of GET /integrations/halopsa/history/calls, newest first. */
export interface CallLogResponse<Time = string> {
  calls: HaloCallView<Time>[];
  /** Pass as `before` for the next page; null on the last page. */
  nextBefore: number | null;
}

export interface HistoryResponse<Time = string> {
  events: IntegrationEventView<Time>[];
}
