// The path every API and token request takes: injected faults first, then the rate limit,
// then the handler, then the request log. Control routes under /_emulator bypass it.
import { setTimeout as sleep } from 'node:timers/promises';

import type { FastifyReply, FastifyRequest } from 'fastify';

import { RequestError } from './request-error.ts';
import type { EmulatorState } from './state.ts';
import type { ApiResult } from './types.ts';

/** Serves one emulated request with `handle`, applying faults, the rate limit and logging. */
export async function serveEmulated(
  state: EmulatorState,
  request: FastifyRequest,
  reply: FastifyReply,
  handle: () => ApiResult,
): Promise<FastifyReply> {
  const path = request.url.split('?')[0] ?? '/';
  const log = (status: number | null, fault?: string): void => {
    state.requests.add({
      method: request.method,
      path,
      query: request.query as Record<string, string | string[]>,
      status,
      at: new Date(state.now()).toISOString(),
      ...(fault === undefined ? {} : { fault }),
    });
  };

  state.requests.inFlight += 1;
  try {
    return await serveWithFaults(state, request, reply, handle, path, log);
  } finally {
    state.requests.inFlight -= 1;
  }
}

async function serveWithFaults(
  state: EmulatorState,
  request: FastifyRequest,
  reply: FastifyReply,
  handle: () => ApiResult,
  path: string,
  log: (status: number | null, fault?: string) => void,
): Promise<FastifyReply> {
  const fault = state.faults.take(request.method, path);
  if (fault?.delayMs !== undefined && fault.delayMs > 0) await sleep(fault.delayMs);
  if (fault?.kind === 'reset') {
    log(null, fault.kind);
    return destroyConnection(request, reply);
  }
  if (fault?.kind === 'status' && fault.status !== undefined) {
    log(fault.status, fault.kind);
    return sendResult(reply, { status: fault.status, body: fault.body });
  }

  const result = admitAndHandle(state, request, handle);
  if (fault?.kind === 'drop-response') {
    log(result.status, fault.kind);
    return destroyConnection(request, reply);
  }
  log(result.status, fault?.kind);
  return sendResult(reply, result);
}

function admitAndHandle(
  state: EmulatorState,
  request: FastifyRequest,
  handle: () => ApiResult,
): ApiResult {
  const decision = state.limiter.tryAdmit(state.now(), state.config.rateLimit);
  if (!decision.allowed) {
    // NOTE: whether HaloPSA sends Retry-After is unknown, so it is off unless configured.
    const headers: Record<string, string> = state.config.retryAfter
      ? { 'retry-after': String(decision.retryAfterSeconds) }
      : {};
    return { status: 429, headers, body: { Message: decision.message } };
  }

  try {
    return handle();
  } catch (error) {
    if (error instanceof RequestError) return error.result;
    request.log.error({ err: error, url: request.url }, 'emulated request failed');
    return { status: 500, body: { Message: 'An error has occurred.' } };
  }
}

/** Sends an ApiResult: JSON for values, text/plain for strings, nothing for undefined. */
export function sendResult(reply: FastifyReply, result: ApiResult): FastifyReply {
  reply.code(result.status);
  for (const [name, value] of Object.entries(result.headers ?? {})) reply.header(name, value);
  if (result.body === undefined) return reply.send();
  if (typeof result.body === 'string') {
    return reply.type('text/plain; charset=utf-8').send(result.body);
  }
  return reply.type('application/json; charset=utf-8').send(JSON.stringify(result.body));
}

function destroyConnection(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.hijack();
  request.raw.socket.destroy();
  return reply;
}
