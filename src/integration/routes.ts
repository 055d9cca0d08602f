import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../audit/audit-log.ts';
import { accountOf, actorOf } from '../auth/request-auth.ts';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { parseInput } from '../errors/validation.ts';
import { getAccount } from '../platform/accounts.ts';
import { getCustomer } from '../platform/customers.ts';
import type { ConnectionService } from './connection.ts';
import { toAppError } from './halopsa-errors.ts';
import { listEvents } from './history.ts';
import type { LicenceSync } from './licence-sync.ts';
import { listMappings, saveMappings } from './mappings.ts';
import { buildSummary } from './summary.ts';
import { defaultTicketType, getTicketRule, saveTicketRule } from './ticket-rules.ts';

const haloId = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .positive({ error: 'must be a positive id' });
const uuid = z.uuid({ error: 'must be a UUID' });
const uuidList = z.array(uuid).max(10_000);

const connectBody = z.strictObject({
  url: z.string({ error: 'is required' }).min(1, { error: 'is required' }).max(2000),
  clientId: z.string({ error: 'is required' }).trim().min(1, { error: 'is required' }).max(500),
  clientSecret: z.string().min(1, { error: 'must not be empty' }).max(2000).optional(),
  tenant: z.string().trim().max(200).optional(),
});
const mappingsBody = z.strictObject({
  mappings: z
    .array(z.strictObject({ customerId: uuid, haloClientId: haloId, haloItemId: haloId }))
    .max(20_000),
});
const ticketRuleBody = z.strictObject({
  ticketTypeId: haloId,
  siteId: haloId.nullable().optional(),
  userId: haloId.nullable().optional(),
  dnsDomainIds: uuidList.default([]),
  thresholdDomainIds: uuidList.default([]),
  thresholdGroupIds: uuidList.default([]),
  forensicDomainIds: uuidList.default([]),
});
const customerParams = z.object({ customerId: uuid });
const clientQuery = z.strictObject({ search: z.string().max(200).optional() });
const sitesQuery = z.strictObject({ clientId: z.coerce.number().int().positive() });
const usersQuery = z.strictObject({ siteId: z.coerce.number().int().positive() });
const historyQuery = z.strictObject({
  customerId: uuid.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export interface IntegrationRoutesOptions {
  db: Database;
  connections: ConnectionService;
  licences: LicenceSync;
}

/** The HaloPSA integration: connection, lookups, mappings, ticket rules, submit and summary. */
export function integrationRoutes({
  db,
  connections,
  licences,
}: IntegrationRoutesOptions): FastifyPluginAsync {
  const audit = (
    request: FastifyRequest,
    action: string,
    targetType: string,
    change: { customerId?: string; targetId?: string; before?: unknown; after?: unknown },
  ) =>
    recordAudit(db, {
      accountId: accountOf(request),
      actor: actorOf(request),
      action,
      targetType,
      ...change,
    });

  async function enabledAccount(request: FastifyRequest): Promise<string> {
    const account = await getAccount(db, accountOf(request));
    if (!account.halopsaIntegrationEnabled) {
      throw new AppError(
        'integration_disabled',
        'The HaloPSA Integration setting is off for this account; turn it on with PATCH /api/v1/account {"halopsaIntegrationEnabled": true}.',
      );
    }
    return account.id;
  }

  async function haloCall<T>(
    accountId: string,
    call: (client: Awaited<ReturnType<ConnectionService['clientFor']>>) => Promise<T>,
  ): Promise<T> {
    const client = await connections.clientFor(accountId);
    try {
      return await call(client);
    } catch (error) {
      throw toAppError(error);
    }
  }

  return async (app) => {
    app.get('/integrations/halopsa', { config: { access: 'halopsa.access' } }, async (request) =>
      buildSummary(db, connections, await enabledAccount(request)),
    );

    app.get(
      '/integrations/halopsa/connection',
      { config: { access: 'halopsa.access' } },
      async (request) => ({
        connection: await connections.get(await enabledAccount(request)),
      }),
    );

    app.put(
      '/integrations/halopsa/connection',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const input = parseInput(connectBody, request.body);
        const before = await connections.get(accountId);
        const connection = await connections.connect(accountId, input);
        await audit(request, 'halopsa.connection.saved', 'halopsa_connection', {
          before,
          after: connection,
        });
        return { connection };
      },
    );

    app.delete(
      '/integrations/halopsa/connection',
      { config: { access: 'halopsa.access' } },
      async (request, reply) => {
        const accountId = await enabledAccount(request);
        const before = await connections.get(accountId);
        await connections.disconnect(accountId);
        await audit(request, 'halopsa.connection.removed', 'halopsa_connection', { before });
        return reply.code(204).send();
      },
    );

    app.get(
      '/integrations/halopsa/clients',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const query = parseInput(clientQuery, request.query, 'query string');
        const clients = await haloCall(accountId, (client) =>
          client.listClients(query.search ? { search: query.search } : {}),
        );
        return {
          clients: clients.map((haloClient) => ({
            id: haloClient.id,
            name: haloClient.name,
            inactive: haloClient.inactive ?? false,
          })),
        };
      },
    );

    app.get(
      '/integrations/halopsa/items',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const items = await haloCall(accountId, (client) => client.listItems());
        return {
          items: items.map((item) => ({
            id: item.id,
            name: item.name,
            recurring: item.isrecurringitem ?? false,
          })),
        };
      },
    );

    app.get(
      '/integrations/halopsa/ticket-types',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const types = await haloCall(accountId, (client) => client.listTicketTypes());
        return {
          ticketTypes: types.map((type) => ({ id: type.id, name: type.name })),
          defaultTicketTypeId: defaultTicketType(types)?.id ?? null,
        };
      },
    );

    app.get(
      '/integrations/halopsa/sites',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const query = parseInput(sitesQuery, request.query, 'query string');
        const sites = await haloCall(accountId, (client) =>
          client.listSites({ clientId: query.clientId }),
        );
        return { sites: sites.map((site) => ({ id: site.id, name: site.name })) };
      },
    );

    app.get(
      '/integrations/halopsa/users',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const query = parseInput(usersQuery, request.query, 'query string');
        const users = await haloCall(accountId, (client) =>
          client.listUsers({ siteId: query.siteId }),
        );
        return {
          users: users.map((user) => ({
            id: user.id,
            name: user.name,
            email: user.emailaddress ?? null,
          })),
        };
      },
    );

    app.get(
      '/integrations/halopsa/mappings',
      { config: { access: 'halopsa.access' } },
      async (request) => ({
        mappings: await listMappings(db, await enabledAccount(request)),
      }),
    );

    app.put(
      '/integrations/halopsa/mappings',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const input = parseInput(mappingsBody, request.body);
        const client = await connections.clientFor(accountId);
        const before = await listMappings(db, accountId);
        const mappings = await saveMappings(db, client, accountId, input.mappings);
        await audit(request, 'halopsa.mappings.saved', 'halopsa_mappings', {
          before,
          after: mappings,
        });
        return { mappings };
      },
    );

    app.get(
      '/integrations/halopsa/ticket-rules/:customerId',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const { customerId } = parseInput(customerParams, request.params, 'path');
        await getCustomer(db, accountId, customerId);
        return { rule: await getTicketRule(db, accountId, customerId) };
      },
    );

    app.put(
      '/integrations/halopsa/ticket-rules/:customerId',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const { customerId } = parseInput(customerParams, request.params, 'path');
        const input = parseInput(ticketRuleBody, request.body);
        await getCustomer(db, accountId, customerId);
        const client = await connections.clientFor(accountId);
        const before = await getTicketRule(db, accountId, customerId);
        const rule = await saveTicketRule(db, client, accountId, customerId, input);
        await audit(request, 'halopsa.ticket_rule.saved', 'halopsa_ticket_rule', {
          customerId,
          targetId: customerId,
          before,
          after: rule,
        });
        return { rule };
      },
    );

    // Submit queues one licence sync per mapped customer; the summary shows each one's state.
    app.post(
      '/integrations/halopsa/submit',
      { config: { access: 'halopsa.access' } },
      async (request, reply) => {
        const accountId = await enabledAccount(request);
        await connections.clientFor(accountId);
        const mappings = await listMappings(db, accountId);
        for (const mapping of mappings) await licences.enqueue(accountId, mapping.customerId);
        await audit(request, 'halopsa.submitted', 'halopsa_mappings', {
          after: { queued: mappings.length },
        });
        return reply.code(202).send({
          queued: mappings.length,
          summary: await buildSummary(db, connections, accountId),
        });
      },
    );

    app.get(
      '/integrations/halopsa/history',
      { config: { access: 'halopsa.access' } },
      async (request) => {
        const accountId = await enabledAccount(request);
        const query = parseInput(historyQuery, request.query, 'query string');
        return { events: await listEvents(db, accountId, query) };
      },
    );
  };
}
