import type { Database, Queryable } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import type { HaloPsaClient, HaloTicketType } from '../halopsa/index.ts';
import { toAppError } from './halopsa-errors.ts';
import { getMapping } from './mappings.ts';

/** Which of a customer's alerts become HaloPSA tickets, and how those tickets are filed. */
export interface TicketRule {
  customerId: string;
  ticketTypeId: number;
  ticketTypeName: string;
  siteId: number | null;
  siteName: string | null;
  userId: number | null;
  userName: string | null;
  dnsDomainIds: string[];
  thresholdDomainIds: string[];
  thresholdGroupIds: string[];
  forensicDomainIds: string[];
}

export interface TicketRuleInput {
  ticketTypeId: number;
  siteId?: number | null | undefined;
  userId?: number | null | undefined;
  dnsDomainIds: string[];
  thresholdDomainIds: string[];
  thresholdGroupIds: string[];
  forensicDomainIds: string[];
}

/** The ticket type a new rule starts with: the one named "Alert" when it exists, else the first. */
export function defaultTicketType(types: HaloTicketType[]): HaloTicketType | null {
  return types.find((type) => type.name.trim().toLowerCase() === 'alert') ?? types[0] ?? null;
}

export async function getTicketRule(
  db: Queryable,
  accountId: string,
  customerId: string,
): Promise<TicketRule | null> {
  const [row] = await db.query<{
    customer_id: string;
    ticket_type_id: number;
    ticket_type_name: string;
    site_id: number | null;
    site_name: string | null;
    user_id: number | null;
    user_name: string | null;
  }>('SELECT * FROM halopsa_ticket_rules WHERE account_id = $1 AND customer_id = $2', [
    accountId,
    customerId,
  ]);
  if (!row) return null;

  const targets = await db.query<{
    alert_kind: string;
    domain_id: string | null;
    group_id: string | null;
  }>(
    'SELECT alert_kind, domain_id, group_id FROM halopsa_ticket_rule_targets WHERE customer_id = $1 ORDER BY 1, 2, 3',
    [customerId],
  );
  const domainsOf = (kind: string) =>
    targets
      .filter((target) => target.alert_kind === kind && target.domain_id)
      .map((target) => target.domain_id!);
  return {
    customerId: row.customer_id,
    ticketTypeId: row.ticket_type_id,
    ticketTypeName: row.ticket_type_name,
    siteId: row.site_id,
    siteName: row.site_name,
    userId: row.user_id,
    userName: row.user_name,
    dnsDomainIds: domainsOf('dns'),
    thresholdDomainIds: domainsOf('threshold'),
    thresholdGroupIds: targets
      .filter((target) => target.group_id)
      .map((target) => target.group_id!),
    forensicDomainIds: domainsOf('forensic'),
  };
}

export async function listTicketRules(db: Queryable, accountId: string): Promise<TicketRule[]> {
  const rows = await db.query<{ customer_id: string }>(
    'SELECT customer_id FROM halopsa_ticket_rules WHERE account_id = $1',
    [accountId],
  );
  const rules = await Promise.all(rows.map((row) => getTicketRule(db, accountId, row.customer_id)));
  return rules.filter((rule): rule is TicketRule => rule !== null);
}

/**
 * Check a rule against the customer's mapping, its domains and groups, and HaloPSA (ticket
 * type, a site of the mapped client, a user of that site), then store it whole.
 */
export async function saveTicketRule(
  db: Database,
  client: HaloPsaClient,
  accountId: string,
  customerId: string,
  input: TicketRuleInput,
): Promise<TicketRule> {
  const mapping = await getMapping(db, accountId, customerId);
  if (!mapping) {
    throw new AppError(
      'validation_failed',
      `Customer account ${customerId} is not mapped to a HaloPSA customer; map it first (step 2).`,
      { field: 'customerId' },
    );
  }
  if (input.userId != null && input.siteId == null) {
    throw new AppError('validation_failed', 'Field "userId": choose a Site before an End User.', {
      field: 'userId',
    });
  }

  const names = await resolveHaloNames(client, mapping.haloClientId, input);
  await checkOwnership(db, accountId, customerId, input);

  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO halopsa_ticket_rules (customer_id, account_id, ticket_type_id, ticket_type_name,
                                         site_id, site_name, user_id, user_name, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
       ON CONFLICT (customer_id) DO UPDATE
         SET ticket_type_id = $3, ticket_type_name = $4, site_id = $5, site_name = $6,
             user_id = $7, user_name = $8, updated_at = now()`,
      [
        customerId,
        accountId,
        input.ticketTypeId,
        names.ticketTypeName,
        input.siteId ?? null,
        names.siteName,
        input.userId ?? null,
        names.userName,
      ],
    );
    await tx.query('DELETE FROM halopsa_ticket_rule_targets WHERE customer_id = $1', [customerId]);
    const targets: [string, string | null, string | null][] = [
      ...input.dnsDomainIds.map((id): [string, string, null] => ['dns', id, null]),
      ...input.thresholdDomainIds.map((id): [string, string, null] => ['threshold', id, null]),
      ...input.thresholdGroupIds.map((id): [string, null, string] => ['threshold', null, id]),
      ...input.forensicDomainIds.map((id): [string, string, null] => ['forensic', id, null]),
    ];
    for (const [kind, domainId, groupId] of targets) {
      await tx.query(
        `INSERT INTO halopsa_ticket_rule_targets (customer_id, alert_kind, domain_id, group_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [customerId, kind, domainId, groupId],
      );
    }
  });
  return (await getTicketRule(db, accountId, customerId))!;
}

async function resolveHaloNames(
  client: HaloPsaClient,
  haloClientId: number,
  input: TicketRuleInput,
): Promise<{ ticketTypeName: string; siteName: string | null; userName: string | null }> {
  try {
    const types = await client.listTicketTypes();
    const type = types.find((candidate) => candidate.id === input.ticketTypeId);
    if (!type) {
      throw new AppError(
        'validation_failed',
        `Field "ticketTypeId": HaloPSA has no ticket type with id ${input.ticketTypeId}; press Resync and choose again.`,
        {
          field: 'ticketTypeId',
        },
      );
    }

    let siteName: string | null = null;
    if (input.siteId != null) {
      const sites = await client.listSites({ clientId: haloClientId });
      const site = sites.find((candidate) => candidate.id === input.siteId);
      if (!site) {
        throw new AppError(
          'validation_failed',
          `Field "siteId": site ${input.siteId} is not a site of the mapped HaloPSA customer; choose one of its sites.`,
          {
            field: 'siteId',
          },
        );
      }
      siteName = site.name;
    }

    let userName: string | null = null;
    if (input.userId != null) {
      const users = await client.listUsers({ siteId: input.siteId! });
      const user = users.find((candidate) => candidate.id === input.userId);
      if (!user) {
        throw new AppError(
          'validation_failed',
          `Field "userId": user ${input.userId} is not an end user of site ${input.siteId}; choose one of its users.`,
          {
            field: 'userId',
          },
        );
      }
      userName = user.name;
    }
    return { ticketTypeName: type.name, siteName, userName };
  } catch (error) {
    throw toAppError(error);
  }
}

async function checkOwnership(
  db: Queryable,
  accountId: string,
  customerId: string,
  input: TicketRuleInput,
): Promise<void> {
  const domainRows = await db.query<{ id: string }>(
    'SELECT id FROM domains WHERE account_id = $1 AND customer_id = $2',
    [accountId, customerId],
  );
  const groupRows = await db.query<{ id: string }>(
    'SELECT id FROM domain_groups WHERE account_id = $1 AND customer_id = $2',
    [accountId, customerId],
  );
  const domainIds = new Set(domainRows.map((row) => row.id));
  const groupIds = new Set(groupRows.map((row) => row.id));

  const lists: [keyof TicketRuleInput, string[], Set<string>, string][] = [
    ['dnsDomainIds', input.dnsDomainIds, domainIds, 'domain'],
    ['thresholdDomainIds', input.thresholdDomainIds, domainIds, 'domain'],
    ['thresholdGroupIds', input.thresholdGroupIds, groupIds, 'domain group'],
    ['forensicDomainIds', input.forensicDomainIds, domainIds, 'domain'],
  ];
  for (const [field, ids, owned, what] of lists) {
    const index = ids.findIndex((id) => !owned.has(id));
    if (index >= 0) {
      throw new AppError(
        'validation_failed',
        `Field "${field}.${index}": ${what} ${ids[index]} does not belong to this customer account.`,
        {
          field: `${field}.${index}`,
        },
      );
    }
  }
}
