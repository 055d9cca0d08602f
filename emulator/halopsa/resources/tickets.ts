// Tickets (HaloPSA's `Faults`). A ticket stores every field posted, gets server-side dates in
// .NET form, and is soft-deleted: DELETE sets `deleted`, `GET /Tickets?deleted=true` lists
// deleted tickets, and posting the id with `_recover: true` restores one.
import { exceptionError, resultCodeError } from '../errors.ts';
import { UNSET_DATE, toDotNetDate } from '../dates.ts';
import { queryBoolean, queryInteger } from '../query.ts';
import type { DataStore } from '../store.ts';
import type { JsonRecord } from '../types.ts';
import { idField, isFilled, matchesSearch, recordName } from './fields.ts';
import { defineTableResource } from './table-resource.ts';

/** Status id of a new ticket. Stock HaloPSA numbers "New" as 1. */
const NEW_STATUS_ID = 1;

export const ticketsResource = defineTableResource({
  name: 'Tickets',
  table: 'tickets',
  listKey: 'tickets',
  readPermission: 'read:tickets',
  writePermission: 'edit:tickets',
  integerFields: [
    'tickettype_id',
    'client_id',
    'site_id',
    'user_id',
    'agent_id',
    'status_id',
    'priority_id',
    'sla_id',
    'team_id',
    'third_party_id',
  ],

  filter(record, query) {
    // NOTE: whether deleted=true lists only deleted tickets or all tickets is unknown; here
    // it lists only the deleted ones, the set a client looks in to recover a ticket.
    if ((record.deleted === true) !== queryBoolean(query, 'deleted', false)) return false;
    const integerFilters: Array<[string, string]> = [
      ['client_id', 'client_id'],
      ['site_id', 'site_id'],
      ['user_id', 'user_id'],
      ['requesttype_id', 'tickettype_id'],
      ['third_party_id', 'third_party_id'],
    ];
    for (const [parameter, field] of integerFilters) {
      const expected = queryInteger(query, parameter);
      if (expected !== undefined && record[field] !== expected) return false;
    }
    const thirdPartyIdString = query.get('third_party_id_string');
    if (thirdPartyIdString !== undefined && record.third_party_id_string !== thirdPartyIdString) {
      return false;
    }
    const search = query.get('search');
    return (
      search === undefined || search === '' || matchesSearch(record, ['summary', 'details'], search)
    );
  },

  applyDefaults(record, change, { data, now }) {
    if (change.existing !== undefined) {
      if (change.flags._recover !== true) return record;
      return { ...record, deleted: false, deleted_date: UNSET_DATE };
    }
    // HaloPSA ignores a nested `tickettype: {id}` and applies the default type, so only the
    // flat tickettype_id counts.
    const tickettypeId = record.tickettype_id ?? data.defaultTicketTypeId ?? undefined;
    return {
      status_id: NEW_STATUS_ID,
      dateoccurred: toDotNetDate(now),
      ...record,
      tickettype_id: tickettypeId,
      deleted: false,
      deleted_date: UNSET_DATE,
      hasbeenclosed: false,
      dateclosed: UNSET_DATE,
    };
  },

  validate(record, change, { data }) {
    const tickettypeId = idField(record, 'tickettype_id');
    if (tickettypeId === undefined) {
      return exceptionError('Ticket tickettype_id is required: send the flat id of a ticket type');
    }
    if (data.tables.tickettype.get(tickettypeId) === undefined) {
      return exceptionError(
        `Ticket tickettype_id ${tickettypeId} does not exist: send an existing type`,
      );
    }
    const rejection = data.apiRejectingTicketTypes.get(tickettypeId);
    if (change.existing === undefined && rejection !== undefined) return resultCodeError(rejection);
    if (change.existing === undefined) {
      const missing = (data.requiredTicketFields.get(tickettypeId) ?? []).find(
        (field) => !isFilled(record[field]),
      );
      if (missing !== undefined) {
        // NOTE: HaloPSA's wording for a tenant's mandatory ticket field is not public.
        return exceptionError(
          `Ticket field ${missing} is required for ticket type ${tickettypeId}: send a value for ${missing}`,
        );
      }
    }

    const clientId = idField(record, 'client_id');
    if (clientId === undefined) {
      return exceptionError('Ticket client_id is required: send the id of the customer');
    }
    if (data.tables.client.get(clientId) === undefined) {
      return exceptionError(
        `Ticket client_id ${clientId} does not exist: send an existing client id`,
      );
    }

    const siteId = idField(record, 'site_id');
    if (siteId !== undefined && data.tables.site.get(siteId)?.client_id !== clientId) {
      return exceptionError(`Ticket site_id ${siteId} is not a site of client ${clientId}`);
    }

    const userId = idField(record, 'user_id');
    if (userId !== undefined) {
      if (siteId === undefined) {
        return exceptionError(`Ticket user_id ${userId} needs a site_id: send the user's site too`);
      }
      if (data.tables.users.get(userId)?.site_id !== siteId) {
        return exceptionError(`Ticket user_id ${userId} is not a user of site ${siteId}`);
      }
    }

    if (!isFilled(record.summary)) {
      return exceptionError('Ticket summary is required: send a non-empty summary');
    }
    return undefined;
  },

  afterInsert(record, { data, clientId, now }) {
    // HaloPSA logs a first action on every new ticket, so the first action a client adds is 2.
    data.insertAction(record.id as number, {
      outcome: 'Logged',
      note: typeof record.details === 'string' ? record.details : '',
      datetime: toDotNetDate(now),
      actionby_application_id: clientId,
      hiddenfromuser: false,
    });
  },

  isVisible(record, flags) {
    return record.deleted !== true || flags._recover === true;
  },

  remove(record, { data, now }) {
    // NOTE: HaloPSA takes a `reason` query parameter here. The field that stores it is not
    // public, so the emulator keeps the reason only in the request log.
    const deleted: JsonRecord = { ...record, deleted: true, deleted_date: toDotNetDate(now) };
    data.tables.tickets.replace({ ...deleted, id: record.id as number });
    return { status: 200, body: decorateTicket(deleted, data) };
  },

  decorate: (record, data) => decorateTicket(record, data),
});

function decorateTicket(record: JsonRecord, data: DataStore): JsonRecord {
  return {
    ...record,
    tickettype_name: recordName(data, 'tickettype', record.tickettype_id),
    client_name: recordName(data, 'client', record.client_id),
    site_name: recordName(data, 'site', record.site_id),
    user_name: recordName(data, 'users', record.user_id),
  };
}
