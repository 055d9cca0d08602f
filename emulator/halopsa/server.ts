// An emulator of HaloPSA's REST API for tests, demos and benchmarks. It is an independent
// reading of HaloPSA's public behaviour and shares no code with dmarcdesk's HaloPSA client.
import type { AddressInfo } from 'node:net';

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

import { handleApiRequest } from './api.ts';
import { defaultConfig, type RateLimitSetting } from './config.ts';
import { registerControlRoutes } from './control.ts';
import { serveEmulated } from './gateway.ts';
import { normaliseQuery } from './query.ts';
import type { SeedOptions } from './seed.ts';
import { EmulatorState } from './state.ts';

export type { SeedOptions } from './seed.ts';

/** Options of startEmulator. */
export interface EmulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** TCP port; default 0, a free port. */
  port?: number;
  /** Seed data: true (default) for 40 clients, false for an empty instance, or options. */
  seed?: boolean | SeedOptions;
  /** Lifetime of access tokens in seconds; default 3600. */
  tokenLifetimeSeconds?: number;
  /** Rolling-window limit over API and token calls; default 300 per 300 s; null turns it off. */
  rateLimit?: RateLimitSetting | null;
  /** Enables fastify's request logger; default false. */
  logger?: boolean;
}

/** A listening emulator. */
export interface RunningEmulator {
  /** The instance root, e.g. http://127.0.0.1:41234; the API is at `${url}/api`. */
  url: string;
  close(): Promise<void>;
}

/** Starts an emulator and resolves once it is listening. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const config = defaultConfig();
  if (options.tokenLifetimeSeconds !== undefined) {
    config.tokenLifetimeSeconds = options.tokenLifetimeSeconds;
  }
  if (options.rateLimit !== undefined) config.rateLimit = options.rateLimit;

  const state = new EmulatorState(options.seed ?? true, config);
  const app = buildEmulatorApp(state, options.logger ?? false);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 0 });

  const { port } = app.server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    close: async () => {
      await app.close();
    },
  };
}

/** Builds the fastify app that serves the API, the token endpoints and the control routes. */
export function buildEmulatorApp(state: EmulatorState, logger: boolean): FastifyInstance {
  // HaloPSA's paths are case-insensitive (/api/client, /api/Client and /API/CLIENT all work).
  const app = Fastify({ logger, routerOptions: { caseSensitive: false } });

  // Bodies are kept as text, so that each route decides which media types it accepts. The
  // token endpoint expects a form, and the API expects JSON and returns 415 for anything else.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  for (const [path, tenantRequired] of [
    ['/auth/token', false],
    // The shared authorisation host form, where the tenant query parameter picks the instance.
    ['/token', true],
  ] as const) {
    app.post(path, async (request, reply) =>
      serveEmulated(state, request, reply, () =>
        state.auth.issueToken({
          contentType: request.headers['content-type'],
          authorization: request.headers.authorization,
          body: typeof request.body === 'string' ? request.body : undefined,
          query: Object.fromEntries(
            normaliseQuery(request.query as Record<string, string | string[] | undefined>),
          ),
          tenantRequired,
          now: state.now(),
          tokenLifetimeSeconds: state.config.tokenLifetimeSeconds,
        }),
      ),
    );
  }

  const serveApi = async (request: FastifyRequest, reply: FastifyReply) =>
    serveEmulated(state, request, reply, () => handleApiRequest(state, request));
  app.all('/api', serveApi);
  app.all('/api/*', serveApi);

  registerControlRoutes(app, state);
  return app;
}
