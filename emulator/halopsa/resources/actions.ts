// Actions: the notes and updates on a ticket. Action ids are numbered per ticket (every
// ticket has action 1, 2, ...), so GET, DELETE and list calls all need `ticket_id`, and a
// new action needs an outcome, as on HaloPSA.
import { toDotNetDate } from '../dates.ts';
import { exceptionError, modelStateError, notFound } from '../errors.ts';
import { listWrapper, selectPage, sortRows } from '../paging.ts';
import { queryInteger, type Query } from '../query.ts';
import { RequestError } from '../request-error.ts';
import type { Outcome } from '../store.ts';
import { isJsonObject, type ApiResult, type JsonRecord } from '../types.ts';
import { idField, integerFieldErrors, isFilled, mergeUpdate, splitControlFlags } from './fields.ts';
import type { RequestContext, ResourceDefinition } from './resource.ts';

const INTEGER_FIELDS = ['id', 'ticket_id', 'outcome_id', 'new_status', 'who_agentid'] as const;

// HaloPSA's own wording, as captured from live instances.
const OUTCOME_REQUIRED = 'An Outcome must be entered for this Action';
const OUTCOME_FORBIDDEN = 'You do not have access to this Action at the moment';

function requiredTicketId(query: Query): number {
  const ticketId = queryInteger(query, 'ticket_id');
  if (ticketId === undefined) {
    throw new RequestError(modelStateError({ ticket_id: ['The ticket_id field is required.'] }));
  }
  return ticketId;
}

/** Returns the outcome an action names by `outcome_id` or by `outcome`, if it is configured. */
function resolveOutcome(record: JsonRecord, outcomes: readonly Outcome[]): Outcome | undefined {
  const outcomeId = idField(record, 'outcome_id');
  if (outcomeId !== undefined && outcomeId > 0) {
    return outcomes.find((outcome) => outcome.id === outcomeId);
  }
  if (!isFilled(record.outcome)) return undefined;
  const name = record.outcome.trim().toLowerCase();
  return outcomes.find((outcome) => outcome.name.toLowerCase() === name);
}

function prepareAction(
  context: RequestContext,
  element: JsonRecord,
): { record: JsonRecord & { ticket_id: number }; existing: JsonRecord | undefined } | ApiResult {
  const { data, config } = context;
  const { fields } = splitControlFlags(element);
  const ticketId = idField(fields, 'ticket_id');
  if (ticketId === undefined) {
    return exceptionError('Action ticket_id is required: send the id of the ticket');
  }
  const ticket = data.tables.tickets.get(ticketId);
  if (ticket === undefined || ticket.deleted === true) {
    return exceptionError(
      `Action ticket_id ${ticketId} does not exist: send an existing ticket id`,
    );
  }

  const { id, ...posted } = fields;
  let existing: JsonRecord | undefined;
  if (typeof id === 'number' && id > 0) {
    existing = data.getAction(ticketId, id);
    if (existing === undefined && config.unknownIdPolicy === 'reject') {
      return exceptionError(
        `Action ${id} does not exist on ticket ${ticketId}: post it without an id to create it`,
      );
    }
  }

  const merged = existing === undefined ? posted : mergeUpdate(existing, posted);
  const outcome = resolveOutcome(merged, data.outcomes);
  if (outcome === undefined) return exceptionError(OUTCOME_REQUIRED);
  if (config.forbiddenOutcomeIds.includes(outcome.id)) return exceptionError(OUTCOME_FORBIDDEN);

  const defaults: JsonRecord =
    existing === undefined
      ? {
          hiddenfromuser: false,
          datetime: toDotNetDate(context.now),
          actionby_application_id: context.clientId,
        }
      : {};
  const record = {
    ...defaults,
    ...merged,
    outcome: outcome.name,
    outcome_id: outcome.id,
    ticket_id: ticketId,
  };
  return { record, existing };
}

export const actionsResource: ResourceDefinition = {
  name: 'Actions',
  readPermission: 'read:tickets',
  writePermission: 'edit:tickets',

  list(context, query) {
    const ticketId = requiredTicketId(query);
    const rows = sortRows(context.data.actionsOf(ticketId), query);
    const cap = context.config.pageCaps.actions ?? null;
    const page = selectPage(rows, query, { defaultPageSize: context.config.defaultPageSize, cap });
    return listWrapper(page, 'actions', { ticket_id: ticketId });
  },

  get(context, id, query) {
    const ticketId = requiredTicketId(query);
    const action = context.data.getAction(ticketId, id);
    if (action === undefined) return notFound(`Action ${id} was not found on ticket ${ticketId}`);
    return { status: 200, body: { ...action } };
  },

  save(context, elements) {
    const typeErrors: Record<string, string[]> = {};
    for (const [index, element] of elements.entries()) {
      if (!isJsonObject(element)) {
        typeErrors[`[${index}]`] = [
          `The JSON value could not be converted to Actions. Path: $[${index}]`,
        ];
      } else {
        Object.assign(typeErrors, integerFieldErrors(element, INTEGER_FIELDS, index));
      }
    }
    if (Object.keys(typeErrors).length > 0) return modelStateError(typeErrors);

    // Every element is validated before any is stored, so a rejected batch changes nothing.
    const planned: Array<{ record: JsonRecord & { ticket_id: number }; existing?: JsonRecord }> =
      [];
    for (const element of elements as JsonRecord[]) {
      const prepared = prepareAction(context, element);
      if ('status' in prepared) return prepared;
      planned.push(prepared);
    }

    const { data } = context;
    const saved = planned.map(({ record, existing }) => {
      const newStatus = idField(record, 'new_status');
      const ticket = data.tables.tickets.get(record.ticket_id);
      if (newStatus !== undefined && ticket !== undefined) {
        data.tables.tickets.replace({ ...ticket, id: record.ticket_id, status_id: newStatus });
      }
      if (existing === undefined) return data.insertAction(record.ticket_id, record);
      return data.replaceAction({ ...record, id: existing.id as number });
    });
    return { status: 201, body: saved.length === 1 ? saved[0] : saved };
  },

  remove(context, id, query) {
    const ticketId = requiredTicketId(query);
    const action = context.data.getAction(ticketId, id);
    if (action === undefined) return notFound(`Action ${id} was not found on ticket ${ticketId}`);
    context.data.deleteAction(ticketId, id);
    return { status: 200, body: action };
  },

  records(data) {
    return data.allActions();
  },
};
