// Control routes under /_emulator, a prefix HaloPSA does not have. They need no token, are
// not rate-limited or logged, and let a test reset the instance, inspect what was stored and
// requested, inject faults, register applications and change settings.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';

import { faultListSchema } from './faults.ts';
import { sendResult } from './gateway.ts';
import { findResource, RESOURCE_NAMES } from './resources/index.ts';
import type { EmulatorState } from './state.ts';

const seedOptionsSchema = z
  .object({
    clients: z.number().int().min(0).max(100_000).optional(),
    randomSeed: z.number().int().optional(),
  })
  .strict();

const resetSchema = z
  .object({ seed: z.union([z.boolean(), seedOptionsSchema]).optional() })
  .strict();

const applicationSchema = z
  .object({
    clientSecret: z.string().min(1),
    permissions: z.array(z.string().min(1)),
  })
  .strict();

const rateLimitSchema = z
  .object({ limit: z.number().int().min(1), windowSeconds: z.number().int().min(1) })
  .strict();

const configSchema = z
  .object({
    tokenLifetimeSeconds: z.number().int().min(0).optional(),
    rateLimit: rateLimitSchema.nullable().optional(),
    retryAfter: z.boolean().optional(),
    defaultPageSize: z.number().int().min(1).optional(),
    pageCaps: z.record(z.string(), z.number().int().min(1).nullable()).optional(),
    forbiddenOutcomeIds: z.array(z.number().int()).optional(),
    unknownIdPolicy: z.enum(['reject', 'create']).optional(),
  })
  .strict();

const mergeSchema = z.object({ into: z.number().int() }).strict();

const requiredFieldsSchema = z.object({ fields: z.array(z.string().min(1)) }).strict();

const clockSchema = z.object({ advanceSeconds: z.number().min(0) }).strict();

/** Parses a control body, or sends a 400 naming each invalid field and returns undefined. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown, reply: FastifyReply): T | undefined {
  let value: unknown = body ?? {};
  if (typeof value === 'string') {
    try {
      value = value.trim() === '' ? {} : JSON.parse(value);
    } catch {
      sendResult(reply, { status: 400, body: { error: 'The request body is not valid JSON' } });
      return undefined;
    }
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`,
  );
  sendResult(reply, { status: 400, body: { error: 'Invalid control request', problems } });
  return undefined;
}

/** Registers the /_emulator routes on the app. */
export function registerControlRoutes(app: FastifyInstance, state: EmulatorState): void {
  app.post('/_emulator/reset', async (request, reply) => {
    const body = parseBody(resetSchema, request.body, reply);
    if (body === undefined) return reply;
    state.reset(body.seed);
    return sendResult(reply, { status: 200, body: { reset: true } });
  });

  app.get<{ Params: { resource: string } }>(
    '/_emulator/records/:resource',
    async (request, reply) => {
      const resource = findResource(request.params.resource);
      if (resource === undefined) {
        return sendResult(reply, {
          status: 404,
          body: {
            error: `Unknown resource ${request.params.resource}: use one of ${RESOURCE_NAMES.join(', ')}`,
          },
        });
      }
      return sendResult(reply, { status: 200, body: { records: resource.records(state.data) } });
    },
  );

  app.get('/_emulator/requests', async (_request, reply) =>
    sendResult(reply, { status: 200, body: state.requests.list() }),
  );
  app.get('/_emulator/requests/counts', async (_request, reply) =>
    sendResult(reply, { status: 200, body: state.requests.counts() }),
  );
  app.delete('/_emulator/requests', async (_request, reply) => {
    state.requests.clear();
    return sendResult(reply, { status: 200, body: { cleared: true } });
  });

  app.post('/_emulator/faults', async (request, reply) => {
    const body = parseBody(faultListSchema, request.body, reply);
    if (body === undefined) return reply;
    state.faults.add(body.faults);
    return sendResult(reply, { status: 200, body: { active: state.faults.size } });
  });
  app.delete('/_emulator/faults', async (_request, reply) => {
    state.faults.clear();
    return sendResult(reply, { status: 200, body: { active: 0 } });
  });

  app.put<{ Params: { clientId: string } }>(
    '/_emulator/applications/:clientId',
    async (request, reply) => {
      const body = parseBody(applicationSchema, request.body, reply);
      if (body === undefined) return reply;
      const application = { clientId: request.params.clientId, ...body };
      state.auth.putApplication(application);
      return sendResult(reply, {
        status: 200,
        body: { clientId: application.clientId, permissions: application.permissions },
      });
    },
  );

  app.post('/_emulator/config', async (request, reply) => {
    const body = parseBody(configSchema, request.body, reply);
    if (body === undefined) return reply;
    const { pageCaps, ...settings } = body;
    const unknownNames = Object.keys(pageCaps ?? {}).filter((name) => !findResource(name));
    if (unknownNames.length > 0) {
      return sendResult(reply, {
        status: 400,
        body: {
          error: `Unknown resource in pageCaps: ${unknownNames.join(', ')}. Use one of ${RESOURCE_NAMES.join(', ')}`,
        },
      });
    }
    Object.assign(
      state.config,
      Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)),
    );
    for (const [name, cap] of Object.entries(pageCaps ?? {})) {
      state.config.pageCaps[name.toLowerCase()] = cap;
    }
    return sendResult(reply, { status: 200, body: state.config });
  });

  app.post<{ Params: { id: string } }>('/_emulator/clients/:id/merge', async (request, reply) => {
    const body = parseBody(mergeSchema, request.body, reply);
    if (body === undefined) return reply;
    const fromId = Number(request.params.id);
    if (!Number.isInteger(fromId) || !state.data.mergeClient(fromId, body.into)) {
      return sendResult(reply, {
        status: 404,
        body: {
          error: `Cannot merge client ${request.params.id} into ${body.into}: both must exist and differ`,
        },
      });
    }
    return sendResult(reply, { status: 200, body: { merged: fromId, into: body.into } });
  });

  app.post<{ Params: { id: string } }>(
    '/_emulator/ticket-types/:id/required-fields',
    async (request, reply) => {
      const body = parseBody(requiredFieldsSchema, request.body, reply);
      if (body === undefined) return reply;
      const typeId = Number(request.params.id);
      if (!Number.isInteger(typeId) || !state.data.tables.tickettype.get(typeId)) {
        return sendResult(reply, {
          status: 404,
          body: { error: `Ticket type ${request.params.id} does not exist` },
        });
      }
      state.data.requiredTicketFields.set(typeId, body.fields);
      return sendResult(reply, { status: 200, body: { id: typeId, fields: body.fields } });
    },
  );

  app.post('/_emulator/clock', async (request, reply) => {
    const body = parseBody(clockSchema, request.body, reply);
    if (body === undefined) return reply;
    state.advanceClock(body.advanceSeconds);
    return sendResult(reply, { status: 200, body: { now: new Date(state.now()).toISOString() } });
  });
}
