import { loadConfig, ConfigError } from './config/config.ts';
import { createApp } from './app.ts';
import { createLogger } from './logging.ts';

/** Start the service with the configuration from the environment. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  const logger = createLogger(config.logLevel);
  const app = await createApp(config, logger);
  await app.server.listen({ host: config.host, port: config.port });
  logger.info(
    { url: `http://${config.host}:${config.port}`, database: app.db.kind, dataDir: config.dataDir },
    'dmarcdesk is running',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(
    `dmarcdesk failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
