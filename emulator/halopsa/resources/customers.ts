// Client (HaloPSA's `Area`), Site and Users (end-user contacts, not agents). The
// read:customers / edit:customers scopes cover all three: that is dmarcdesk's reading, as
// HaloPSA does not document which scope covers sites and users.
import { exceptionError } from '../errors.ts';
import { toDotNetDate } from '../dates.ts';
import { queryBoolean, queryInteger, type Query } from '../query.ts';
import type { JsonRecord } from '../types.ts';
import { idField, isFilled, matchesSearch, recordName } from './fields.ts';
import { defineTableResource } from './table-resource.ts';

/** Applies HaloPSA's includeactive / includeinactive pair; inactive rows are hidden by default. */
function matchesActivity(record: JsonRecord, query: Query): boolean {
  const inactive = record.inactive === true;
  return inactive
    ? queryBoolean(query, 'includeinactive', false)
    : queryBoolean(query, 'includeactive', true);
}

function matchesQuerySearch(record: JsonRecord, query: Query, fields: readonly string[]): boolean {
  const search = query.get('search');
  return search === undefined || search === '' || matchesSearch(record, fields, search);
}

export const clientResource = defineTableResource({
  name: 'Client',
  table: 'client',
  listKey: 'clients',
  readPermission: 'read:customers',
  writePermission: 'edit:customers',
  integerFields: ['toplevel_id', 'main_site_id'],

  filter(record, query) {
    return matchesActivity(record, query) && matchesQuerySearch(record, query, ['name']);
  },

  applyDefaults(record, change, context) {
    if (change.existing !== undefined) return record;
    return { inactive: false, datecreated: toDotNetDate(context.now), ...record };
  },

  validate(record) {
    if (!isFilled(record.name))
      return exceptionError('Client name is required: send a non-empty name');
    return undefined;
  },
});

export const siteResource = defineTableResource({
  name: 'Site',
  table: 'site',
  listKey: 'sites',
  readPermission: 'read:customers',
  writePermission: 'edit:customers',
  integerFields: ['client_id', 'sla_id'],

  filter(record, query) {
    const clientId = queryInteger(query, 'client_id');
    return (
      (clientId === undefined || record.client_id === clientId) &&
      matchesActivity(record, query) &&
      matchesQuerySearch(record, query, ['name'])
    );
  },

  applyDefaults(record, change) {
    return change.existing === undefined ? { inactive: false, ...record } : record;
  },

  validate(record, _change, { data }) {
    if (!isFilled(record.name))
      return exceptionError('Site name is required: send a non-empty name');
    const clientId = idField(record, 'client_id');
    if (clientId === undefined) {
      return exceptionError(
        'Site client_id is required: send the id of the client the site belongs to',
      );
    }
    if (data.tables.client.get(clientId) === undefined) {
      return exceptionError(
        `Site client_id ${clientId} does not exist: send the id of an existing client`,
      );
    }
    return undefined;
  },

  decorate(record, data) {
    return { ...record, client_name: recordName(data, 'client', record.client_id) };
  },
});

export const usersResource = defineTableResource({
  name: 'Users',
  table: 'users',
  listKey: 'users',
  readPermission: 'read:customers',
  writePermission: 'edit:customers',
  integerFields: ['site_id', 'client_id'],

  filter(record, query) {
    const clientId = queryInteger(query, 'client_id');
    const siteId = queryInteger(query, 'site_id');
    return (
      (clientId === undefined || record.client_id === clientId) &&
      (siteId === undefined || record.site_id === siteId) &&
      matchesActivity(record, query) &&
      matchesQuerySearch(record, query, ['name', 'emailaddress', 'login'])
    );
  },

  applyDefaults(record, change, { data }) {
    // A user belongs to a site; HaloPSA derives the client from it.
    const site =
      typeof record.site_id === 'number' ? data.tables.site.get(record.site_id) : undefined;
    const derived = site === undefined ? record : { ...record, client_id: site.client_id };
    return change.existing === undefined ? { inactive: false, ...derived } : derived;
  },

  validate(record, _change, { data }) {
    if (!isFilled(record.name))
      return exceptionError('User name is required: send a non-empty name');
    const siteId = idField(record, 'site_id');
    if (siteId === undefined) {
      return exceptionError(
        'User site_id is required: send the id of the site the user belongs to',
      );
    }
    if (data.tables.site.get(siteId) === undefined) {
      return exceptionError(
        `User site_id ${siteId} does not exist: send the id of an existing site`,
      );
    }
    return undefined;
  },

  decorate(record, data) {
    return {
      ...record,
      site_id_int: record.site_id,
      site_name: recordName(data, 'site', record.site_id),
      client_name: recordName(data, 'client', record.client_id),
    };
  },
});
