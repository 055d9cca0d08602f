import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Create the data folder and its missing parents one level at a time. Node's recursive mkdir
 * never returns for some paths (seen with Node 20 under /proc), so it is not used here.
 * Throws an error that names the folder and the setting to change.
 */
export function ensureDataDir(dataDir: string): void {
  const target = resolve(dataDir);
  const missing: string[] = [];
  for (let current = target; !existsSync(current); current = dirname(current)) {
    missing.unshift(current);
    if (dirname(current) === current) break;
  }
  try {
    for (const folder of missing) mkdirSync(folder);
    if (!statSync(target).isDirectory()) throw new Error('it is not a folder');
  } catch (error) {
    throw new Error(
      `Cannot use the data folder ${target}: ${(error as Error).message}. Set DMARCDESK_DATA_DIR to a folder this process can write.`,
      { cause: error },
    );
  }
}
