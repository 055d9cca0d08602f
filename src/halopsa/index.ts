// HaloPSA REST API client: tokens, paging, typed records and errors a technician can act on.
export type { HaloCallRecord, HaloPsaClientOptions, HaloRequestInfo } from './client.ts';
export { HaloPsaClient } from './client.ts';
export type { HaloPsaErrorCode, HaloPsaErrorOptions } from './errors.ts';
export { HALO_PSA_ERROR_CODES, HaloPsaError, isHaloPsaError } from './errors.ts';
export type { HaloPermission } from './permissions.ts';
export { HALO_PERMISSIONS, permissionFor } from './permissions.ts';
export type {
  HaloAction,
  HaloActionInput,
  HaloClient,
  HaloCustomFieldInput,
  HaloItem,
  HaloLicence,
  HaloLicenceFields,
  HaloLicenceInput,
  HaloSite,
  HaloTicket,
  HaloTicketInput,
  HaloTicketType,
  HaloUser,
} from './records.ts';
export { parseInstanceUrl } from './url.ts';
