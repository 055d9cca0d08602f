import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import type { Logger } from 'pino';
import { enforceAccess, identifyCaller, type RouteAccess } from '../auth/request-auth.ts';
import type { Queryable } from '../db/database.ts';
import { installErrorBoundary } from './error-boundary.ts';
import { installJsonBodyParser } from './json-body.ts';

export interface ServerOptions {
  db: Queryable;
  logger: Logger;
  /** Largest accepted request body in bytes (report uploads are the largest). */
  bodyLimit: number;
  /** The setting that raises bodyLimit, named in the 413 message. */
  bodyLimitSetting?: string;
  /** Feature route plugins, each registered under /api/v1 behind authentication. */
  apiRoutes: FastifyPluginAsync[];
  /**
   * Folder of the built web app (`npm run build:web`); null serves none. Defaults to web/dist
   * of this checkout.
   */
  webRoot?: string | null;
}

const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist/', import.meta.url));

// The web app loads only its own files and calls only its own API, so the policy can be strict.
const WEB_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

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
  installErrorBoundary(app, {
    bodyLimit: options.bodyLimit,
    bodyLimitSetting: options.bodyLimitSetting ?? 'DMARCDESK_MAX_UPLOAD_BYTES',
  });
  installJsonBodyParser(app);

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
  await serveWebApp(app, options.webRoot === undefined ? DEFAULT_WEB_ROOT : options.webRoot);
  return app;
}

/**
 * Serve the built web app: its files, and index.html for every other page path so that the
 * browser's router can show it. /api and /health keep their own routes and their JSON 404.
 */
async function serveWebApp(app: FastifyInstance, root: string | null): Promise<void> {
  const built = root !== null && existsSync(join(root, 'index.html'));
  if (built) {
    // Vite puts a content hash in every name under assets/, so those files never change.
    await app.register(fastifyStatic, {
      root,
      wildcard: false,
      cacheControl: false,
      setHeaders(reply, path) {
        const immutable = path.startsWith(join(root, 'assets') + sep);
        reply.headers({
          ...WEB_HEADERS,
          'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        });
      },
    });
  }

  app.get('/*', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const isPage =
      !/^\/(api|health)(\/|$)/.test(path) &&
      !/\.[^/]*$/.test(path) &&
      (request.headers.accept ?? '').includes('text/html');
    if (!isPage) return reply.callNotFound();
    if (!built) {
      return reply
        .code(404)
        .type('text/plain; charset=utf-8')
        .send('The web UI is not built. Run `npm run build:web` and restart dmarcdesk.');
    }
    return reply.headers({ ...WEB_HEADERS, 'cache-control': 'no-cache' }).sendFile('index.html');
  });
}
