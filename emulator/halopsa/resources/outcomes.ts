// Outcome: the action outcomes (such as "Internal Note") an action must name. HaloPSA lists
// them as a bare array, like TicketType. The emulator's outcomes are fixed configuration, so
// the resource is read-only.
import { exceptionError, notFound } from '../errors.ts';
import type { Outcome } from '../store.ts';
import type { JsonRecord } from '../types.ts';
import type { ResourceDefinition } from './resource.ts';

// NOTE: HaloPSA's outcome record has more fields. `outcome` (the name) and `buttonname` (the
// label of the action button) are the ones public clients read, and both hold the name here.
function toRecord(outcome: Outcome): JsonRecord {
  return { id: outcome.id, outcome: outcome.name, buttonname: outcome.name };
}

export const outcomeResource: ResourceDefinition = {
  name: 'Outcome',
  // NOTE: the scope HaloPSA requires to read outcomes is not documented; the emulator takes
  // read:tickets, as for ticket types.
  readPermission: 'read:tickets',
  writePermission: 'admin',

  list(context) {
    return { status: 200, body: context.data.outcomes.map(toRecord) };
  },

  get(context, id) {
    const outcome = context.data.outcomes.find((entry) => entry.id === id);
    if (outcome === undefined) return notFound(`Outcome ${id} was not found`);
    return { status: 200, body: toRecord(outcome) };
  },

  save() {
    return exceptionError('Outcomes cannot be changed through this API: edit them in HaloPSA');
  },

  remove() {
    return exceptionError('Outcomes cannot be deleted through this API: edit them in HaloPSA');
  },

  records(data) {
    return data.outcomes.map(toRecord);
  },
};
