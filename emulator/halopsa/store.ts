// In-memory HaloPSA data. Every resource except Actions lives in a Table keyed by a global
// id. Actions are numbered per ticket (every ticket has action 1, 2, ...), as on HaloPSA, so
// they are kept per ticket instead.
import type { JsonRecord } from './types.ts';

/** Lower-case names of the resources backed by a Table. */
export const TABLE_NAMES = [
  'client',
  'site',
  'users',
  'item',
  'tickettype',
  'softwarelicence',
  'tickets',
] as const;

export type TableName = (typeof TABLE_NAMES)[number];

// Each table numbers from its own start, so that a client which sends a site id where a
// client id belongs is more likely to hit a missing record than a wrong one.
const FIRST_IDS: Record<TableName, number> = {
  client: 12,
  site: 101,
  users: 2001,
  item: 31,
  tickettype: 1,
  softwarelicence: 501,
  tickets: 1001,
};

/** The records of one resource, in id order. */
export class Table {
  private readonly rows = new Map<number, JsonRecord>();
  private nextId: number;

  constructor(firstId: number) {
    this.nextId = firstId;
  }

  /** Stores a new record under the next id and returns it. A posted `id` is ignored. */
  insert(fields: JsonRecord): JsonRecord {
    const { id: _postedId, ...rest } = fields;
    const record = { id: this.nextId, ...rest };
    this.nextId += 1;
    this.rows.set(record.id, record);
    return record;
  }

  /** Replaces the stored record that has the same id. */
  replace(record: JsonRecord & { id: number }): JsonRecord {
    this.rows.set(record.id, record);
    return record;
  }

  get(id: number): JsonRecord | undefined {
    return this.rows.get(id);
  }

  delete(id: number): boolean {
    return this.rows.delete(id);
  }

  all(): JsonRecord[] {
    return [...this.rows.values()];
  }
}

/** An action outcome, such as "Internal Note". Outcomes are configuration, read-only in the API. */
export interface Outcome {
  id: number;
  name: string;
}

/** Every record of one emulated instance. */
export class DataStore {
  readonly tables: Record<TableName, Table>;
  /** Actions by ticket id, then by action id. */
  private readonly actionsByTicket = new Map<number, Map<number, JsonRecord>>();
  /** The last action id handed out per ticket, so that a deleted action's id is not reused. */
  private readonly lastActionIds = new Map<number, number>();
  readonly outcomes: Outcome[] = [];
  /** Ticket types that reject creation through the API, with the message HaloPSA returns. */
  readonly apiRejectingTicketTypes = new Map<number, string>();
  /** The type HaloPSA applies when a ticket is posted without a flat `tickettype_id`. */
  defaultTicketTypeId: number | null = null;
  /** Fields that a new ticket of a type must carry, set through the control routes. */
  readonly requiredTicketFields = new Map<number, string[]>();

  constructor() {
    const entries = TABLE_NAMES.map((name) => [name, new Table(FIRST_IDS[name])] as const);
    this.tables = Object.fromEntries(entries) as Record<TableName, Table>;
  }

  /**
   * Merges client `fromId` into `intoId`: its sites, users, licences and tickets move to the
   * target, and the source client is deleted. Returns false when either client is missing.
   */
  mergeClient(fromId: number, intoId: number): boolean {
    const clients = this.tables.client;
    if (fromId === intoId || !clients.get(fromId) || !clients.get(intoId)) return false;
    for (const name of ['site', 'users', 'softwarelicence', 'tickets'] as const) {
      for (const record of this.tables[name].all()) {
        if (record.client_id === fromId) {
          this.tables[name].replace({ ...record, id: record.id as number, client_id: intoId });
        }
      }
    }
    clients.delete(fromId);
    return true;
  }

  /** Stores a new action on a ticket under the ticket's next action id and returns it. */
  insertAction(ticketId: number, fields: JsonRecord): JsonRecord {
    const id = (this.lastActionIds.get(ticketId) ?? 0) + 1;
    this.lastActionIds.set(ticketId, id);
    const record = { ...fields, id, ticket_id: ticketId };
    this.ticketActions(ticketId).set(id, record);
    return record;
  }

  replaceAction(record: JsonRecord & { id: number; ticket_id: number }): JsonRecord {
    this.ticketActions(record.ticket_id).set(record.id, record);
    return record;
  }

  getAction(ticketId: number, actionId: number): JsonRecord | undefined {
    return this.actionsByTicket.get(ticketId)?.get(actionId);
  }

  deleteAction(ticketId: number, actionId: number): boolean {
    return this.actionsByTicket.get(ticketId)?.delete(actionId) ?? false;
  }

  actionsOf(ticketId: number): JsonRecord[] {
    return [...(this.actionsByTicket.get(ticketId)?.values() ?? [])];
  }

  allActions(): JsonRecord[] {
    return [...this.actionsByTicket.values()].flatMap((actions) => [...actions.values()]);
  }

  private ticketActions(ticketId: number): Map<number, JsonRecord> {
    let actions = this.actionsByTicket.get(ticketId);
    if (actions === undefined) {
      actions = new Map();
      this.actionsByTicket.set(ticketId, actions);
    }
    return actions;
  }
}
