import type { EmulatorConfig } from '../config.ts';
import type { Query } from '../query.ts';
import type { DataStore } from '../store.ts';
import type { ApiResult, JsonRecord } from '../types.ts';

/** The data and settings a resource handler may read and change during one request. */
export interface RequestContext {
  data: DataStore;
  config: EmulatorConfig;
  /** Epoch ms on the emulator's clock. */
  now: number;
  /** Client ID of the application that made the call. */
  clientId: string;
}

/** One HaloPSA resource under /api, e.g. /api/Client. */
export interface ResourceDefinition {
  /** The spelling HaloPSA documents, e.g. SoftwareLicence. */
  name: string;
  /** Permission (scope name) needed for GET. */
  readPermission: string;
  /** Permission needed for POST and DELETE. */
  writePermission: string;
  list(context: RequestContext, query: Query): ApiResult;
  get(context: RequestContext, id: number, query: Query): ApiResult;
  /** Creates or updates from the elements of a posted JSON array. */
  save(context: RequestContext, elements: unknown[]): ApiResult;
  remove(context: RequestContext, id: number, query: Query): ApiResult;
  /** Every stored record, soft-deleted ones included, as the API would show them. */
  records(data: DataStore): JsonRecord[];
}
