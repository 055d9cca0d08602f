// The shared list/get/save/delete behaviour of every resource stored in a Table. Each
// resource supplies its filters, defaults, validation and display fields.
import { exceptionError, modelStateError, notFound } from '../errors.ts';
import { listWrapper, selectPage, sortRows } from '../paging.ts';
import type { Query } from '../query.ts';
import type { DataStore, TableName } from '../store.ts';
import { isJsonObject, type ApiResult, type JsonRecord } from '../types.ts';
import { integerFieldErrors, mergeUpdate, splitControlFlags } from './fields.ts';
import type { RequestContext, ResourceDefinition } from './resource.ts';

/** One posted element on its way to being stored. */
export interface Change {
  /** The stored record an element with an `id` updates; undefined on create. */
  existing: JsonRecord | undefined;
  /** Underscore-prefixed control flags posted with the element. */
  flags: JsonRecord;
  /** Position of the element in the posted array, for error paths. */
  index: number;
}

/** The parts that differ between Table-backed resources. */
export interface TableResourceSpec {
  name: string;
  table: TableName;
  /** Key of the list in the list wrapper, or null when the list is a bare array. */
  listKey: string | null;
  readPermission: string;
  writePermission: string;
  /** Fields besides `id` that must be JSON integers when posted. */
  integerFields: readonly string[];
  /** Returns whether a stored record belongs in a list that has this query. */
  filter(record: JsonRecord, query: Query, data: DataStore): boolean;
  /** Returns the record with server-side defaults filled in, before validation. */
  applyDefaults?(record: JsonRecord, change: Change, context: RequestContext): JsonRecord;
  /** Returns the 400 to send when the record may not be stored, else undefined. */
  validate(record: JsonRecord, change: Change, context: RequestContext): ApiResult | undefined;
  /** Adds display fields (client_name, ...) that HaloPSA derives when it returns a record. */
  decorate?(record: JsonRecord, data: DataStore): JsonRecord;
  afterInsert?(record: JsonRecord, context: RequestContext): void;
  /**
   * Returns whether GET, DELETE and updates can see a stored record. Soft-deleted tickets
   * are hidden, except from an update that posts `_recover: true`.
   */
  isVisible?(record: JsonRecord, flags: JsonRecord): boolean;
  /** Deletes a visible record and returns the result. By default the record is removed for good. */
  remove?(record: JsonRecord, context: RequestContext, query: Query): ApiResult;
}

/** Builds the ResourceDefinition of a Table-backed resource. */
export function defineTableResource(spec: TableResourceSpec): ResourceDefinition {
  const show = (record: JsonRecord, data: DataStore): JsonRecord =>
    spec.decorate === undefined ? { ...record } : spec.decorate(record, data);
  const isVisible = (record: JsonRecord, flags: JsonRecord = {}): boolean =>
    spec.isVisible === undefined || spec.isVisible(record, flags);

  return {
    name: spec.name,
    readPermission: spec.readPermission,
    writePermission: spec.writePermission,

    list(context, query) {
      const { data, config } = context;
      const matching = data.tables[spec.table]
        .all()
        .filter((record) => spec.filter(record, query, data))
        .map((record) => show(record, data));
      const sorted = sortRows(matching, query);
      if (spec.listKey === null) return { status: 200, body: sorted };

      const cap = config.pageCaps[spec.table] ?? null;
      const page = selectPage(sorted, query, { defaultPageSize: config.defaultPageSize, cap });
      return listWrapper(page, spec.listKey);
    },

    get(context, id) {
      const record = context.data.tables[spec.table].get(id);
      if (record === undefined || !isVisible(record)) {
        return notFound(`${spec.name} ${id} was not found`);
      }
      return { status: 200, body: show(record, context.data) };
    },

    save(context, elements) {
      const typeErrors = elementTypeErrors(elements, spec);
      if (Object.keys(typeErrors).length > 0) return modelStateError(typeErrors);

      // Every element is validated before any is stored, so a rejected batch changes nothing.
      // NOTE: whether HaloPSA stores the valid elements of a partly invalid batch is unknown.
      const table = context.data.tables[spec.table];
      const planned: Array<{ record: JsonRecord; change: Change }> = [];
      for (const [index, element] of (elements as JsonRecord[]).entries()) {
        const { fields, flags } = splitControlFlags(element);
        const { id, ...posted } = fields;
        let existing: JsonRecord | undefined;

        // An id of 0 or below is the .NET default of an unset id and creates a record.
        if (typeof id === 'number' && id > 0) {
          existing = table.get(id);
          if (existing !== undefined && !isVisible(existing, flags)) existing = undefined;
          if (existing === undefined && context.config.unknownIdPolicy === 'reject') {
            return exceptionError(
              `${spec.name} ${id} does not exist: post the element without an id to create a record`,
            );
          }
        }

        const change: Change = { existing, flags, index };
        const merged = existing === undefined ? posted : mergeUpdate(existing, posted);
        const record = spec.applyDefaults?.(merged, change, context) ?? merged;
        const error = spec.validate(record, change, context);
        if (error !== undefined) return error;
        planned.push({ record, change });
      }

      const saved = planned.map(({ record, change }) => {
        if (change.existing !== undefined) {
          return table.replace({ ...record, id: change.existing.id as number });
        }
        const inserted = table.insert(record);
        spec.afterInsert?.(inserted, context);
        return inserted;
      });
      const savedRecords = saved.map((record) => show(record, context.data));
      return {
        status: 201,
        body: savedRecords.length === 1 ? savedRecords[0] : savedRecords,
      };
    },

    remove(context, id, query) {
      const table = context.data.tables[spec.table];
      const record = table.get(id);
      // NOTE: HaloPSA's response to deleting a missing id is unknown; 404 is a guess.
      if (record === undefined || !isVisible(record)) {
        return notFound(`${spec.name} ${id} was not found`);
      }
      if (spec.remove !== undefined) return spec.remove(record, context, query);

      table.delete(id);
      return { status: 200, body: show(record, context.data) };
    },

    records(data) {
      return data.tables[spec.table].all().map((record) => show(record, data));
    },
  };
}

function elementTypeErrors(elements: unknown[], spec: TableResourceSpec): Record<string, string[]> {
  const errors: Record<string, string[]> = {};
  for (const [index, element] of elements.entries()) {
    if (!isJsonObject(element)) {
      errors[`[${index}]`] = [
        `The JSON value could not be converted to ${spec.name}. Path: $[${index}]`,
      ];
      continue;
    }
    Object.assign(errors, integerFieldErrors(element, ['id', ...spec.integerFields], index));
  }
  return errors;
}
