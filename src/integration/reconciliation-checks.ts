import type {
  HaloClient,
  HaloItem,
  HaloLicence,
  HaloSite,
  HaloTicketType,
  HaloUser,
} from '../halopsa/index.ts';
import type { CustomerMapping } from './mappings.ts';
import type { ProblemFinding, ProblemKind } from './problems.ts';
import type { TicketRule } from './ticket-rules.ts';

/** The kinds a check of the mapping against HaloPSA's records decides; see findMappingProblems. */
export const CHECKED_KINDS: readonly ProblemKind[] = [
  'client_missing',
  'client_inactive',
  'client_merged',
  'item_missing',
  'site_missing',
  'user_missing',
  'ticket_type_missing',
];

/** HaloPSA's records that one account's mappings refer to, read once per check. */
export interface HaloSnapshot {
  clients: Map<number, HaloClient>;
  items: Map<number, HaloItem>;
  ticketTypes: Map<number, HaloTicketType>;
  licences: Map<number, HaloLicence>;
  /** Sites per client id, read only for clients that a ticket rule names a site of. */
  sitesOf(clientId: number): Promise<HaloSite[]>;
  /** End users per site id, read only for sites that a ticket rule names a user of. */
  usersOf(siteId: number): Promise<HaloUser[]>;
}

const REMAP = 'in Integrations, then HaloPSA, step 2';
const RULE = 'in Integrations, then HaloPSA, step 3';

/**
 * Compare one mapping and its ticket rule with HaloPSA's records and list what no longer
 * exists. A client that is gone while the mapped licence now belongs to another client was
 * merged into that client. The site and user are checked only while the client exists.
 */
export async function findMappingProblems(
  mapping: CustomerMapping,
  rule: TicketRule | null,
  halo: HaloSnapshot,
): Promise<ProblemFinding[]> {
  const findings: ProblemFinding[] = [];
  const client = halo.clients.get(mapping.haloClientId);
  const customer = `"${mapping.customerName}"`;
  if (!client) {
    // NOTE: no HaloPSA field that records a merge is known, so it is inferred from the licence.
    // A customer merged before its licence was created is reported as missing instead.
    const licence = mapping.licenceId !== null ? halo.licences.get(mapping.licenceId) : undefined;
    const mergedInto =
      licence && licence.client_id !== mapping.haloClientId
        ? halo.clients.get(licence.client_id)
        : undefined;
    if (mergedInto) {
      findings.push({
        kind: 'client_merged',
        haloRecordType: 'client',
        haloRecordId: mapping.haloClientId,
        action: `HaloPSA customer "${mapping.haloClientName}" (id ${mapping.haloClientId}) was merged into "${mergedInto.name}" (id ${mergedInto.id}); map ${customer} to "${mergedInto.name}" ${REMAP}.`,
        detail: { mergedIntoClientId: mergedInto.id, mergedIntoClientName: mergedInto.name },
      });
    } else {
      findings.push({
        kind: 'client_missing',
        haloRecordType: 'client',
        haloRecordId: mapping.haloClientId,
        action: `HaloPSA customer "${mapping.haloClientName}" (id ${mapping.haloClientId}) no longer exists; map ${customer} to another HaloPSA customer ${REMAP}.`,
      });
    }
  } else if (client.inactive) {
    findings.push({
      kind: 'client_inactive',
      haloRecordType: 'client',
      haloRecordId: client.id,
      action: `HaloPSA customer "${client.name}" (id ${client.id}) is inactive; make it active in HaloPSA, or map ${customer} to an active customer ${REMAP}.`,
    });
  }

  if (!halo.items.has(mapping.haloItemId)) {
    findings.push({
      kind: 'item_missing',
      haloRecordType: 'item',
      haloRecordId: mapping.haloItemId,
      action: `HaloPSA item "${mapping.haloItemName}" (id ${mapping.haloItemId}) no longer exists, so the subscription of ${customer} cannot be kept; choose another item ${REMAP}.`,
    });
  }

  if (!rule) return findings;
  if (!halo.ticketTypes.has(rule.ticketTypeId)) {
    findings.push({
      kind: 'ticket_type_missing',
      haloRecordType: 'ticket_type',
      haloRecordId: rule.ticketTypeId,
      action: `HaloPSA ticket type "${rule.ticketTypeName}" (id ${rule.ticketTypeId}) no longer exists; choose another ticket type for ${customer} ${RULE}.`,
    });
  }
  if (!client || rule.siteId === null) return findings;

  const sites = await halo.sitesOf(client.id);
  if (!sites.some((site) => site.id === rule.siteId)) {
    findings.push({
      kind: 'site_missing',
      haloRecordType: 'site',
      haloRecordId: rule.siteId,
      action: `Site "${rule.siteName}" (id ${rule.siteId}) is no longer a site of HaloPSA customer "${client.name}"; choose another site for ${customer} ${RULE}.`,
    });
    return findings;
  }
  if (rule.userId === null) return findings;
  const users = await halo.usersOf(rule.siteId);
  if (!users.some((user) => user.id === rule.userId)) {
    findings.push({
      kind: 'user_missing',
      haloRecordType: 'user',
      haloRecordId: rule.userId,
      action: `End user "${rule.userName}" (id ${rule.userId}) is no longer a user of site "${rule.siteName}"; choose another end user for ${customer} ${RULE}.`,
    });
  }
  return findings;
}
