import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../audit/audit-log.ts';
import { accountOf, actorOf } from '../auth/request-auth.ts';
import {
  clientsQuerySchema,
  connectRequestSchema,
  customerParamsSchema,
  callLogQuerySchema,
  historyQuerySchema,
  mappingsRequestSchema,
  sitesQuerySchema,
  ticketRuleRequestSchema,
  usersQuerySchema,
  type CallLogResponse,
  type ClientsResponse,
  type ConnectionResponse,
  type HistoryResponse,
  type IntegrationSummaryView,
  type ItemsResponse,
  type MappingsResponse,
  type ReconcileResponse,
  type SavedTicketRuleResponse,
  type SitesResponse,
  type SubmitResponse,
  type TicketRuleResponse,
  type TicketTypesResponse,
  type UsersResponse,
} from '../contract/halopsa.ts';
import type { Database } from '../db/database.ts';
import { AppError } from '../errors/app-error.ts';
import { parseInput } from '../errors/validation.ts';
import { getAccount } from '../platform/accounts.ts';
import { getCustomer } from '../platform/customers.ts';
import type { ConnectionService } from './connection.ts';
import { toAppError } from './halopsa-errors.ts';
import { listCalls } from './call-log.ts';
import { listEvents } from './history.ts';
import type { LicenceSync } from './licence-sync.ts';
import type { Reconciliation } from './reconciliation.ts';
import type { TicketDispatch } from './ticket-dispatch.ts';
import { listMappings, saveMappings } from './mappings.ts';
import { buildSummary } from './summary.ts';
import { startWaitingJobs } from './waiting-jobs.ts';
import { defaultTicketType, getTicketRule, saveTicketRule } from './ticket-rules.ts';

export interface IntegrationRoutesOptions {
  db: Database;
  connections: ConnectionService;
  licences: LicenceSync;
  tickets: TicketDispatch;
  reconciliation: Reconciliation;
}

const alertParamsSchema = z.object({ alertId: z.uuid({ error: 'must be a UUID' }) });

/** The HaloPSA integration: connection, lookups, mappings, ticket rules, submit and summary. */
export function integrationRoutes({
  db,
  connections,
  licences,
  tickets,
  reconciliation,
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
    app.get(
      '/integrations/halopsa',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<IntegrationSummaryView<Date>> =>
        buildSummary(db, connections, await enabledAccount(request)),
    );

    app.get(
      '/integrations/halopsa/connection',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<ConnectionResponse<Date>> => ({
        connection: await connections.get(await enabledAccount(request)),
      }),
    );

    app.put(
      '/integrations/halopsa/connection',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<ConnectionResponse<Date>> => {
        const accountId = await enabledAccount(request);
        const input = parseInput(connectRequestSchema, request.body);
        const before = await connections.get(accountId);
        const connection = await connections.connect(accountId, input);
        await audit(request, 'halopsa.connection.saved', 'halopsa_connection', {
          before,
          after: connection,
        });
        // Jobs deferred while the connection needed attention would otherwise wait for their
        // next look at it (DMARCDESK_HALOPSA_ATTENTION_RECHECK_SECONDS).
        if (before?.status === 'needs_attention') await startWaitingJobs(db, accountId);
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
      async (request): Promise<ClientsResponse> => {
        const accountId = await enabledAccount(request);
        const query = parseInput(clientsQuerySchema, request.query, 'query string');
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
      async (request): Promise<ItemsResponse> => {
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
      async (request): Promise<TicketTypesResponse> => {
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
      async (request): Promise<SitesResponse> => {
        const accountId = await enabledAccount(request);
        const query = parseInput(sitesQuerySchema, request.query, 'query string');
        const sites = await haloCall(accountId, (client) =>
          client.listSites({ clientId: query.clientId }),
        );
        return { sites: sites.map((site) => ({ id: site.id, name: site.name })) };
      },
    );

    app.get(
      '/integrations/halopsa/users',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<UsersResponse> => {
        const accountId = await enabledAccount(request);
        const query = parseInput(usersQuerySchema, request.query, 'query string');
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
      async (request): Promise<MappingsResponse<Date>> => ({
        mappings: await listMappings(db, await enabledAccount(request)),
      }),
    );

    // Replaces the whole set and returns it: each customer missing from the body is unmapped,
    // and a job sets its licence in HaloPSA to 0 (licences.enqueueReleaseInTransaction).
    app.put(
      '/integrations/halopsa/mappings',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<MappingsResponse<Date>> => {
        const accountId = await enabledAccount(request);
        const input = parseInput(mappingsRequestSchema, request.body);
        const client = await connections.clientFor(accountId);
        const before = await listMappings(db, accountId);
        const mappings = await saveMappings(db, client, accountId, input.mappings, (tx, released) =>
          licences.enqueueReleaseInTransaction(tx, released),
        );
        await audit(request, 'halopsa.mappings.saved', 'halopsa_mappings', {
          before,
          after: mappings,
        });
        // A remapping may fix open problems, and the check releases the tickets that wait for them.
        await reconciliation.enqueueIfProblems(accountId);
        return { mappings };
      },
    );

    app.get(
      '/integrations/halopsa/ticket-rules/:customerId',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<TicketRuleResponse> => {
        const accountId = await enabledAccount(request);
        const { customerId } = parseInput(customerParamsSchema, request.params, 'path');
        await getCustomer(db, accountId, customerId);
        return { rule: await getTicketRule(db, accountId, customerId) };
      },
    );

    app.put(
      '/integrations/halopsa/ticket-rules/:customerId',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<SavedTicketRuleResponse> => {
        const accountId = await enabledAccount(request);
        const { customerId } = parseInput(customerParamsSchema, request.params, 'path');
        const input = parseInput(ticketRuleRequestSchema, request.body);
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
        await reconciliation.enqueueIfProblems(accountId);
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
        const body: SubmitResponse<Date> = {
          queued: mappings.length,
          summary: await buildSummary(db, connections, accountId),
        };
        return reply.code(202).send(body);
      },
    );

    // Reconciliation writes to HaloPSA, so it runs as a job, and its result goes to the history.
    app.post(
      '/integrations/halopsa/reconcile',
      { config: { access: 'halopsa.access' } },
      async (request, reply) => {
        const accountId = await enabledAccount(request);
        await connections.clientFor(accountId);
        await reconciliation.enqueue(accountId);
        await audit(request, 'halopsa.reconcile.requested', 'halopsa_mappings', {});
        const body: ReconcileResponse = { queued: true };
        return reply.code(202).send(body);
      },
    );

    app.post(
      '/integrations/halopsa/alerts/:alertId/retry',
      { config: { access: 'halopsa.access' } },
      async (request, reply) => {
        const accountId = await enabledAccount(request);
        const { alertId } = parseInput(alertParamsSchema, request.params, 'path');
        if (!(await tickets.retry(accountId, alertId))) {
          throw new AppError('conflict', 'This alert has no failed ticket to retry.', {
            details: { alertId },
          });
        }
        await audit(request, 'halopsa.ticket.retried', 'alert', { targetId: alertId });
        return reply.code(202).send({ queued: true });
      },
    );

    app.get(
      '/integrations/halopsa/history',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<HistoryResponse<Date>> => {
        const accountId = await enabledAccount(request);
        const query = parseInput(historyQuerySchema, request.query, 'query string');
        return { events: await listEvents(db, accountId, query) };
      },
    );

    app.get(
      '/integrations/halopsa/history/calls',
      { config: { access: 'halopsa.access' } },
      async (request): Promise<CallLogResponse<Date>> => {
        const accountId = await enabledAccount(request);
        const query = parseInput(callLogQuerySchema, request.query, 'query string');
        return listCalls(db, accountId, query);
      },
    );
  };
}
