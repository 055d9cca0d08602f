import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ensureDataDir } from '../db/data-dir.ts';

/**
 * The key for secrets at rest: DMARCDESK_SECRET_KEY when set, otherwise a key file in the data
 * folder, created on first start so that the embedded default works with no setup.
 */
export function resolveSecretKey(
  configured: Buffer | null,
  dataDir: string,
  logger: Logger,
): Buffer {
  if (configured) return configured;

  const path = join(dataDir, 'secret.key');
  if (existsSync(path)) {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length !== 32) {
      throw new Error(
        `The key file ${path} does not hold a 32-byte base64 key; restore it or set DMARCDESK_SECRET_KEY.`,
      );
    }
    return key;
  }

  ensureDataDir(dataDir);
  const key = randomBytes(32);
  writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  logger.warn(
    { path },
    'DMARCDESK_SECRET_KEY is not set; generated a key file. Back it up: without it stored HaloPSA secrets cannot be read.',
  );
  return key;
}
