// SoftwareLicence (British spelling, singular): the "Licences/Subscriptions" of a client.
// dmarcdesk keeps one per mapped customer, with `count` as the billed seat quantity.
import { exceptionError } from '../errors.ts';
import { queryInteger } from '../query.ts';
import { idField, matchesSearch, recordName } from './fields.ts';
import { defineTableResource } from './table-resource.ts';

export const softwareLicenceResource = defineTableResource({
  name: 'SoftwareLicence',
  table: 'softwarelicence',
  listKey: 'licences',
  readPermission: 'read:softwarelicensing',
  writePermission: 'edit:softwarelicensing',
  integerFields: ['client_id', 'site_id', 'item_id', 'count', 'tenant_id', 'supplier_id'],

  filter(record, query) {
    const clientId = queryInteger(query, 'client_id');
    const siteId = queryInteger(query, 'site_id');
    const search = query.get('search');
    return (
      (clientId === undefined || record.client_id === clientId) &&
      (siteId === undefined || record.site_id === siteId) &&
      (search === undefined || search === '' || matchesSearch(record, ['name'], search))
    );
  },

  applyDefaults(record, change) {
    // NOTE: whether HaloPSA rejects a licence without a count is unknown; it gets 0 here.
    return change.existing === undefined ? { count: 0, ...record } : record;
  },

  validate(record, _change, { data }) {
    const clientId = idField(record, 'client_id');
    if (clientId === undefined) {
      return exceptionError(
        'Licence client_id is required: send the id of the client it belongs to',
      );
    }
    if (data.tables.client.get(clientId) === undefined) {
      return exceptionError(
        `Licence client_id ${clientId} does not exist: send an existing client id`,
      );
    }

    const itemId = idField(record, 'item_id');
    if (itemId !== undefined && data.tables.item.get(itemId) === undefined) {
      return exceptionError(`Licence item_id ${itemId} does not exist: send an existing item id`);
    }

    // site_id -1 is HaloPSA's "no site".
    const siteId = idField(record, 'site_id');
    if (siteId !== undefined && siteId !== -1) {
      const site = data.tables.site.get(siteId);
      if (site === undefined || site.client_id !== clientId) {
        return exceptionError(
          `Licence site_id ${siteId} is not a site of client ${clientId}: send one of its sites or -1`,
        );
      }
    }

    const count = record.count;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
      return exceptionError(
        `Licence count ${String(count)} is invalid: send a whole number of 0 or more`,
      );
    }
    return undefined;
  },

  decorate(record, data) {
    return {
      ...record,
      client_name: recordName(data, 'client', record.client_id),
      site_name: recordName(data, 'site', record.site_id),
    };
  },
});
