// Item (billing products) and TicketType (HaloPSA's `RequestType`), the instance-wide lists
// that customers and tickets refer to.
import { exceptionError } from '../errors.ts';
import { queryBoolean } from '../query.ts';
import { isFilled, matchesSearch } from './fields.ts';
import { defineTableResource } from './table-resource.ts';

export const itemResource = defineTableResource({
  name: 'Item',
  table: 'item',
  listKey: 'items',
  readPermission: 'read:items',
  // dmarcdesk's application is never given edit:items, so writes to Item always return 403.
  writePermission: 'edit:items',
  integerFields: ['assetgroup_id', 'supplier_id'],

  filter(record, query) {
    // NOTE: HaloPSA has an includeinactive filter on Item, but the name of the item's
    // inactive field is unknown, so the emulator has no inactive items.
    const recurring = record.isrecurringitem === true;
    if (queryBoolean(query, 'recurringonly', false) && !recurring) return false;
    if (queryBoolean(query, 'excluderecurring', false) && recurring) return false;
    const search = query.get('search');
    return search === undefined || search === '' || matchesSearch(record, ['name'], search);
  },

  applyDefaults(record, change) {
    return change.existing === undefined ? { isrecurringitem: false, ...record } : record;
  },

  validate(record) {
    if (!isFilled(record.name))
      return exceptionError('Item name is required: send a non-empty name');
    return undefined;
  },
});

export const ticketTypeResource = defineTableResource({
  name: 'TicketType',
  table: 'tickettype',
  // HaloPSA returns ticket types as a bare array, without a wrapper or paging.
  listKey: null,
  readPermission: 'read:tickets',
  // NOTE: the scope for editing ticket types is not documented; the emulator requires
  // `admin`, which dmarcdesk's application never has.
  writePermission: 'admin',
  integerFields: ['group_id', 'workflow_id', 'default_sla', 'initial_status'],

  filter() {
    return true;
  },

  validate(record) {
    if (!isFilled(record.name)) {
      return exceptionError('Ticket type name is required: send a non-empty name');
    }
    return undefined;
  },
});
