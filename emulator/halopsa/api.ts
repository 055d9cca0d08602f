// The /api router. HaloPSA routes case-insensitively, so the path is split and looked up by
// lower-case name here instead of through fastify's router. Checks run in ASP.NET's order:
// route (404, 405), authentication (401), permission (403), media type (415), then binding
// and validation (400).
import type { FastifyRequest } from 'fastify';

import { EMULATOR_TENANT, type TokenGrant } from './auth.ts';
import { modelStateError, notFound } from './errors.ts';
import { isInt32, normaliseQuery } from './query.ts';
import { findResource, type RequestContext, type ResourceDefinition } from './resources/index.ts';
import type { EmulatorState } from './state.ts';
import type { ApiResult } from './types.ts';

/**
 * The 403 body. HaloPSA's real body is not public. Like this one, it does not name the
 * missing permission, so a client has to infer it from the call it made.
 */
export const FORBIDDEN_BODY = { Message: 'You do not have permission to perform this action.' };

/** Handles one request under /api and returns the response to send. */
export function handleApiRequest(state: EmulatorState, request: FastifyRequest): ApiResult {
  const path = request.url.split('?')[0] ?? '';
  const segments = path
    .split('/')
    .filter((segment) => segment !== '')
    .slice(1)
    .map(decodeSegment);
  const [resourceName, idSegment, ...rest] = segments;
  const method = request.method.toUpperCase();

  // Unauthenticated discovery of the authorisation server, as HaloPSA serves it.
  if (resourceName?.toLowerCase() === 'authinfo' && idSegment === undefined && method === 'GET') {
    const origin = `${request.protocol}://${request.host}`;
    return { status: 200, body: { auth_url: `${origin}/auth`, tenant_id: EMULATOR_TENANT } };
  }

  const resource = resourceName === undefined ? undefined : findResource(resourceName);
  if (resource === undefined || rest.length > 0) {
    return notFound(`No API resource matches ${path}`);
  }
  const allowed = idSegment === undefined ? ['GET', 'POST'] : ['GET', 'DELETE'];
  if (!allowed.includes(method)) {
    // HaloPSA has no PUT or PATCH: updates are a POST of the record with its id.
    return { status: 405, headers: { allow: allowed.join(', ') } };
  }

  const grant = state.auth.authenticate(request.headers.authorization, state.now());
  if ('status' in grant) return grant;
  const permission = method === 'GET' ? resource.readPermission : resource.writePermission;
  if (!grant.permissions.has(permission)) return { status: 403, body: FORBIDDEN_BODY };

  const context = requestContext(state, grant);
  const query = normaliseQuery(request.query as Record<string, string | string[] | undefined>);
  if (idSegment === undefined) {
    return method === 'GET'
      ? resource.list(context, query)
      : postRecords(resource, context, request);
  }

  if (!/^-?\d+$/.test(idSegment) || !isInt32(Number(idSegment))) {
    return modelStateError({ id: [`The value '${idSegment}' is not valid.`] });
  }
  const id = Number(idSegment);
  return method === 'GET' ? resource.get(context, id, query) : resource.remove(context, id, query);
}

function postRecords(
  resource: ResourceDefinition,
  context: RequestContext,
  request: FastifyRequest,
): ApiResult {
  const mediaType = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (
    mediaType !== 'application/json' &&
    mediaType !== 'text/json' &&
    !mediaType.endsWith('+json')
  ) {
    return {
      status: 415,
      body: {
        type: 'https://tools.ietf.org/html/rfc7231#section-6.5.13',
        title: 'Unsupported Media Type',
        status: 415,
      },
    };
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof request.body === 'string' ? request.body : '');
  } catch {
    return modelStateError({ $: ['The request body is not valid JSON. Path: $'] });
  }
  // HaloPSA binds every POST body to a list: a bare object is rejected, not wrapped.
  if (!Array.isArray(parsed)) {
    return modelStateError({
      $: [
        `The JSON value could not be converted to System.Collections.Generic.List\`1[${resource.name}]. Path: $`,
      ],
    });
  }
  return resource.save(context, parsed);
}

function requestContext(state: EmulatorState, grant: TokenGrant): RequestContext {
  return { data: state.data, config: state.config, now: state.now(), clientId: grant.clientId };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
