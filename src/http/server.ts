import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import type { Logger } from 'pino';
import type { Queryable } from '../db/database.ts';
import { authenticateApiToken } from '../auth/request-auth.ts';
import { installErrorBoundary } from './error-boundary.ts';

export interface ServerOptions {
  db: Queryable;
  logger: Logger;
  /** Largest accepted request body in bytes (report uploads are the largest). */
  bodyLimit: number;
  /** Feature route plugins, each registered under /api/v1 behind API-token authentication. */
  apiRoutes: FastifyPluginAsync[];
}

/** Build the HTTP server: health check, authenticated API, one error boundary. */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit,
    trustProxy: false,
  });
  app.decorateRequest('auth', null);
  installErrorBoundary(app);

  app.get('/health', async () => ({ status: 'ok' }));

  await app.register(
    async (api) => {
      api.addHook('onRequest', authenticateApiToken(options.db));
      for (const routes of options.apiRoutes) await api.register(routes);
    },
    { prefix: '/api/v1' },
  );
  return app;
}
