import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { formatBytes } from './container-budget.ts';
import { holdsReport } from './imap-poller.ts';
import type { ReportIngestService } from './ingest.ts';
import { ReportInputError } from './report-input-error.ts';

export interface FolderWatcherOptions {
  ingest: ReportIngestService;
  logger: Logger;
  path: string;
  accountId: string;
  pollSeconds: number;
  /** Largest file read, in bytes; a larger one is moved to failed/ with its first bytes kept. */
  maxFileBytes: number;
  keepBytes: number;
}

/** The counts of one scan, for logs and tests. */
export interface ScanSummary {
  processed: number;
  failed: number;
  /** Files left in place because storing them failed; the next scan tries again. */
  deferred: number;
}

export const PROCESSED_FOLDER = 'processed';
export const FAILED_FOLDER = 'failed';

/**
 * Watches a folder for report files (XML, gzip, zip or mail, as for an upload). Each file is
 * stored through the ingest service, then moved to processed/ or, when it held no acceptable
 * report, to failed/. A file is moved only after its reports are committed. Names starting with
 * a dot or ending in .tmp or .part are skipped, so a writer should write under such a name and
 * rename the file when it is complete.
 */
export class FolderWatcher {
  private timer: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: FolderWatcherOptions) {}

  /** Create processed/ and failed/, scan now, then on every change and every pollSeconds. */
  async start(): Promise<void> {
    await mkdir(join(this.options.path, PROCESSED_FOLDER), { recursive: true });
    await mkdir(join(this.options.path, FAILED_FOLDER), { recursive: true });
    const run = () => {
      this.scan().catch((error: unknown) =>
        this.options.logger.error({ err: error, path: this.options.path }, 'folder scan failed'),
      );
    };
    // fs.watch gives prompt scans where the platform supports it; the timer covers the rest
    // (network file systems, missed events).
    try {
      this.watcher = watch(this.options.path, { persistent: false }, () => run());
      this.watcher.on('error', (error) =>
        this.options.logger.warn({ err: error, path: this.options.path }, 'folder watch failed'),
      );
    } catch (error) {
      this.options.logger.warn({ err: error, path: this.options.path }, 'folder watch failed');
    }
    this.timer = setInterval(run, this.options.pollSeconds * 1000);
    this.timer.unref();
    run();
    this.options.logger.info({ path: this.options.path }, 'watching folder for reports');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    await this.chain.catch(() => undefined);
  }

  /** Run one scan after any scan already running, so that a file is never read twice at once. */
  scan(): Promise<ScanSummary> {
    const next = this.chain.catch(() => undefined).then(() => this.scanOnce());
    this.chain = next;
    return next;
  }

  private async scanOnce(): Promise<ScanSummary> {
    const summary: ScanSummary = { processed: 0, failed: 0, deferred: 0 };
    const entries = await readdir(this.options.path, { withFileTypes: true });
    const files = entries
      .filter((entry) => entry.isFile() && !skipped(entry.name))
      .map((entry) => entry.name)
      .sort();
    for (const name of files) {
      if (this.stopped) break;
      const outcome = await this.processFile(name);
      summary[outcome] += 1;
      if (outcome === 'deferred') break;
    }
    if (summary.processed + summary.failed + summary.deferred > 0) {
      this.options.logger.info({ path: this.options.path, ...summary }, 'folder scan finished');
    }
    return summary;
  }

  private async processFile(name: string): Promise<'processed' | 'failed' | 'deferred'> {
    const { ingest, accountId, maxFileBytes, keepBytes, logger } = this.options;
    const path = join(this.options.path, name);
    const source = { via: 'folder' as const, origin: `folder file ${name}` };
    let failed: boolean;
    try {
      const size = (await stat(path)).size;
      if (size > maxFileBytes) {
        const head = await readHead(path, keepBytes);
        const error = new ReportInputError(
          'too_large',
          `The file is ${formatBytes(size)}, more than the limit of ${formatBytes(maxFileBytes)}; ` +
            'a DMARC report is far smaller.',
        );
        await ingest.storeRejection(accountId, head, source, error, size);
        failed = true;
      } else {
        const bytes = await readFile(path);
        const result = await ingest.receive(accountId, bytes, source, {
          maxInputBytes: maxFileBytes,
        });
        failed = !holdsReport(result);
      }
    } catch (error) {
      logger.error(
        { err: error, path },
        'storing a watched file failed; it stays for the next scan',
      );
      return 'deferred';
    }
    await moveAside(path, join(this.options.path, failed ? FAILED_FOLDER : PROCESSED_FOLDER));
    return failed ? 'failed' : 'processed';
  }
}

function skipped(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.part');
}

async function readHead(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(maxBytes);
    let length = 0;
    while (length < maxBytes) {
      const { bytesRead } = await handle.read(buffer, length, maxBytes - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

/** Move a file into a folder, adding a time prefix when a file of that name is there already. */
async function moveAside(path: string, folder: string): Promise<void> {
  const name = basename(path);
  let target = join(folder, name);
  try {
    await stat(target);
    target = join(folder, `${new Date().toISOString().replace(/[:.]/g, '-')}-${name}`);
  } catch {
    // No file of that name yet.
  }
  await rename(path, target);
}
