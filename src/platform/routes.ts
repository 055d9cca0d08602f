import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../audit/audit-log.ts';
import { accountOf, actorOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { parseInput } from '../errors/validation.ts';
import { getAccount, updateAccount } from './accounts.ts';
import { createCustomer, getCustomer, listCustomers, renameCustomer } from './customers.ts';
import {
  deleteDomainGroup,
  getDomainGroup,
  listDomainGroups,
  saveDomainGroup,
} from './domain-groups.ts';
import { DOMAIN_STATUSES, type DomainService } from './domains.ts';

const idParams = z.object({ id: z.uuid({ error: 'must be a UUID' }) });
const name = z
  .string()
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(200, { error: 'must be at most 200 characters' });
const status = z.enum(DOMAIN_STATUSES, { error: `must be one of ${DOMAIN_STATUSES.join(', ')}` });

const accountPatch = z.strictObject({
  name: name.optional(),
  halopsaIntegrationEnabled: z.boolean().optional(),
});
const customerBody = z.strictObject({ name });
const domainBody = z.strictObject({ name: z.string().max(300), status: status.optional() });
const domainPatch = z.strictObject({ status });
const groupBody = z.strictObject({
  name,
  domainIds: z.array(z.uuid({ error: 'must be a UUID' })).max(10_000),
});
const listQuery = z.strictObject({ search: z.string().max(200).optional() });
const domainListQuery = z.strictObject({
  customerId: z.uuid({ error: 'must be a UUID' }).optional(),
});

export interface PlatformRoutesOptions {
  db: Database;
  domains: DomainService;
}

/** The MSSP account, its customer accounts, their domains and domain groups. */
export function platformRoutes({ db, domains }: PlatformRoutesOptions): FastifyPluginAsync {
  const audit = (
    request: FastifyRequest,
    action: string,
    targetType: string,
    targetId: string,
    change: { customerId?: string; before?: unknown; after?: unknown },
  ) =>
    recordAudit(db, {
      accountId: accountOf(request),
      actor: actorOf(request),
      action,
      targetType,
      targetId,
      ...change,
    });

  return async (app) => {
    app.get('/account', { config: { access: 'account.read' } }, async (request) =>
      getAccount(db, accountOf(request)),
    );

    app.patch('/account', { config: { access: 'account.manage' } }, async (request) => {
      const changes = parseInput(accountPatch, request.body);
      const before = await getAccount(db, accountOf(request));
      const after = await updateAccount(db, before.id, changes);
      await audit(request, 'account.updated', 'account', before.id, { before, after });
      return after;
    });

    app.get('/customers', { config: { access: 'customers.read' } }, async (request) => {
      const query = parseInput(listQuery, request.query, 'query string');
      return { customers: await listCustomers(db, accountOf(request), query) };
    });

    app.post('/customers', { config: { access: 'customers.write' } }, async (request, reply) => {
      const input = parseInput(customerBody, request.body);
      const customer = await createCustomer(db, accountOf(request), input.name);
      return reply.code(201).send(customer);
    });

    app.get('/customers/:id', { config: { access: 'customers.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getCustomer(db, accountOf(request), id);
    });

    app.patch('/customers/:id', { config: { access: 'customers.write' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const input = parseInput(customerBody, request.body);
      return renameCustomer(db, accountOf(request), id, input.name);
    });

    app.delete(
      '/customers/:id',
      { config: { access: 'customers.write' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const accountId = accountOf(request);
        const before = await getCustomer(db, accountId, id);
        // Listeners release what the customer held elsewhere (its HaloPSA licence) in the
        // same transaction as the delete.
        await domains.removeCustomer(accountId, id);
        await audit(request, 'customer.deleted', 'customer', id, { customerId: id, before });
        return reply.code(204).send();
      },
    );

    app.get('/customers/:id/domains', { config: { access: 'customers.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const accountId = accountOf(request);
      await getCustomer(db, accountId, id);
      return { domains: await domains.list(accountId, { customerId: id }) };
    });

    app.post(
      '/customers/:id/domains',
      { config: { access: 'customers.write' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const input = parseInput(domainBody, request.body);
        const domain = await domains.add(accountOf(request), id, input);
        await audit(request, 'domain.added', 'domain', domain.id, {
          customerId: id,
          after: domain,
        });
        return reply.code(201).send(domain);
      },
    );

    app.get('/domains', { config: { access: 'customers.read' } }, async (request) => {
      const query = parseInput(domainListQuery, request.query, 'query string');
      return { domains: await domains.list(accountOf(request), query) };
    });

    app.get('/domains/:id', { config: { access: 'customers.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return domains.get(accountOf(request), id);
    });

    app.patch('/domains/:id', { config: { access: 'customers.write' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const input = parseInput(domainPatch, request.body);
      const before = await domains.get(accountOf(request), id);
      const after = await domains.setStatus(accountOf(request), id, input.status);
      await audit(request, 'domain.status_changed', 'domain', id, {
        customerId: after.customerId,
        before,
        after,
      });
      return after;
    });

    app.delete(
      '/domains/:id',
      { config: { access: 'customers.write' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const before = await domains.get(accountOf(request), id);
        await domains.remove(accountOf(request), id);
        await audit(request, 'domain.removed', 'domain', id, {
          customerId: before.customerId,
          before,
        });
        return reply.code(204).send();
      },
    );

    app.get('/customers/:id/groups', { config: { access: 'customers.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return { groups: await listDomainGroups(db, accountOf(request), { customerId: id }) };
    });

    app.post(
      '/customers/:id/groups',
      { config: { access: 'customers.write' } },
      async (request, reply) => {
        const { id } = parseInput(idParams, request.params, 'path');
        const input = parseInput(groupBody, request.body);
        const group = await saveDomainGroup(db, accountOf(request), { customerId: id, ...input });
        return reply.code(201).send(group);
      },
    );

    app.get('/groups/:id', { config: { access: 'customers.read' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      return getDomainGroup(db, accountOf(request), id);
    });

    app.put('/groups/:id', { config: { access: 'customers.write' } }, async (request) => {
      const { id } = parseInput(idParams, request.params, 'path');
      const input = parseInput(groupBody, request.body);
      const accountId = accountOf(request);
      const existing = await getDomainGroup(db, accountId, id);
      return saveDomainGroup(db, accountId, {
        groupId: id,
        customerId: existing.customerId,
        ...input,
      });
    });

    app.delete('/groups/:id', { config: { access: 'customers.write' } }, async (request, reply) => {
      const { id } = parseInput(idParams, request.params, 'path');
      await deleteDomainGroup(db, accountOf(request), id);
      return reply.code(204).send();
    });
  };
}
