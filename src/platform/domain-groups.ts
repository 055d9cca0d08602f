import type { Database, Queryable } from '../db/database.ts';
import { AppError, notFound } from '../errors/app-error.ts';

export interface DomainGroup {
  id: string;
  accountId: string;
  customerId: string;
  name: string;
  domainIds: string[];
}

interface GroupRow {
  id: string;
  account_id: string;
  customer_id: string;
  name: string;
  domain_ids: string[] | null;
}

function toGroup(row: GroupRow): DomainGroup {
  return {
    id: row.id,
    accountId: row.account_id,
    customerId: row.customer_id,
    name: row.name,
    domainIds: row.domain_ids ?? [],
  };
}

const SELECT_GROUP = `
  SELECT g.id, g.account_id, g.customer_id, g.name,
         (SELECT array_agg(m.domain_id::text ORDER BY m.domain_id)
            FROM domain_group_members m WHERE m.group_id = g.id) AS domain_ids
    FROM domain_groups g`;

export async function listDomainGroups(
  db: Queryable,
  accountId: string,
  filter: { customerId?: string | undefined } = {},
): Promise<DomainGroup[]> {
  const rows = await db.query<GroupRow>(
    `${SELECT_GROUP} WHERE g.account_id = $1 AND ($2::uuid IS NULL OR g.customer_id = $2)
      ORDER BY lower(g.name)`,
    [accountId, filter.customerId ?? null],
  );
  return rows.map(toGroup);
}

export async function getDomainGroup(
  db: Queryable,
  accountId: string,
  groupId: string,
): Promise<DomainGroup> {
  const [row] = await db.query<GroupRow>(`${SELECT_GROUP} WHERE g.account_id = $1 AND g.id = $2`, [
    accountId,
    groupId,
  ]);
  if (!row) throw notFound('domain group', groupId);
  return toGroup(row);
}

/** Create a group, or replace the name and members of an existing one when `groupId` is given. */
export async function saveDomainGroup(
  db: Database,
  accountId: string,
  input: { groupId?: string; customerId: string; name: string; domainIds: string[] },
): Promise<DomainGroup> {
  const groupId = await db.transaction(async (tx) => {
    const customers = await tx.query('SELECT 1 FROM customers WHERE account_id = $1 AND id = $2', [
      accountId,
      input.customerId,
    ]);
    if (customers.length === 0) throw notFound('customer account', input.customerId);

    const owned = await tx.query<{ id: string }>(
      'SELECT id FROM domains WHERE account_id = $1 AND customer_id = $2 AND id = ANY($3::uuid[])',
      [accountId, input.customerId, input.domainIds],
    );
    const ownedIds = new Set(owned.map((row) => row.id));
    const foreign = input.domainIds.findIndex((id) => !ownedIds.has(id));
    if (foreign >= 0) {
      throw new AppError(
        'validation_failed',
        `Field "domainIds.${foreign}": domain ${input.domainIds[foreign]} does not belong to this customer account.`,
        { field: `domainIds.${foreign}` },
      );
    }

    let id = input.groupId;
    try {
      if (id) {
        const rows = await tx.query(
          `UPDATE domain_groups SET name = $4
            WHERE account_id = $1 AND customer_id = $2 AND id = $3 RETURNING id`,
          [accountId, input.customerId, id, input.name],
        );
        if (rows.length === 0) throw notFound('domain group', id);
        await tx.query('DELETE FROM domain_group_members WHERE group_id = $1', [id]);
      } else {
        const [row] = await tx.query<{ id: string }>(
          'INSERT INTO domain_groups (account_id, customer_id, name) VALUES ($1, $2, $3) RETURNING id',
          [accountId, input.customerId, input.name],
        );
        id = row!.id;
      }
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new AppError(
          'conflict',
          `This customer already has a domain group named "${input.name}".`,
          {
            field: 'name',
            cause: error,
          },
        );
      }
      throw error;
    }

    await tx.query(
      `INSERT INTO domain_group_members (group_id, domain_id)
       SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`,
      [id, [...ownedIds]],
    );
    return id;
  });
  return getDomainGroup(db, accountId, groupId);
}

export async function deleteDomainGroup(
  db: Queryable,
  accountId: string,
  groupId: string,
): Promise<void> {
  const rows = await db.query(
    'DELETE FROM domain_groups WHERE account_id = $1 AND id = $2 RETURNING id',
    [accountId, groupId],
  );
  if (rows.length === 0) throw notFound('domain group', groupId);
}
