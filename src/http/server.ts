import cookie from '@fastify/cookie';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import type { Logger } from 'pino';
import { enforceAccess, identifyCaller, type RouteAccess } from '../auth/request-auth.ts';
import type { Queryable } from '../db/database.ts';
import { installErrorBoundary } from './error-boundary.ts';

export interface ServerOptions {
  db: Queryable;
  logger: Logger;
  /** Largest accepted request body in bytes (report uploads are the largest). */
  bodyLimit: number;
  /** Feature route plugins, each registered under /api/v1 behind authentication. */
  apiRoutes: FastifyPluginAsync[];
}

/** One API route and the access rule it declares. */
export interface RouteEntry {
  method: string;
  url: string;
  access: RouteAccess | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every /api/v1 route with its access rule, for the permission matrix test. */
    apiRouteTable: RouteEntry[];
  }
}

/** Build the HTTP server: health check, the authenticated API, one error boundary. */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit,
    trustProxy: false,
  });
  await app.register(cookie);
  app.decorateRequest('auth', null);
  app.decorateRequest('authProblem', null);
  app.decorate('apiRouteTable', [] as RouteEntry[]);
  installErrorBoundary(app);

  app.get('/health', async () => ({ status: 'ok' }));

  await app.register(
    async (api) => {
      api.addHook('onRoute', (route) => {
        const methods = Array.isArray(route.method) ? route.method : [route.method];
        for (const method of methods) {
          if (method === 'HEAD') continue;
          app.apiRouteTable.push({ method, url: route.url, access: route.config?.access });
        }
      });
      api.addHook('onRequest', identifyCaller(options.db));
      // Access is decided from headers alone, before a body (an upload) is read.
      api.addHook('onRequest', enforceAccess);
      for (const routes of options.apiRoutes) await api.register(routes);
    },
    { prefix: '/api/v1' },
  );
  return app;
}
