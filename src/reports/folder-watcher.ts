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
  /**
   * Milliseconds a file must stay unchanged before it is read; default SETTLE_MS. A file is
   * read once its mtime is this old, or once its size and mtime have not changed for this long.
   */
  settleMs?: number;
}

/** The counts of one scan, for logs and tests. */
export interface ScanSummary {
  processed: number;
  failed: number;
  /** Files left in place because storing them failed; the next scan tries again. */
  deferred: number;
  /** Files left in place because they changed too recently, so they may still be written. */
  unsettled: number;
}

export const PROCESSED_FOLDER = 'processed';
export const FAILED_FOLDER = 'failed';
/**
 * The default settle time. A plain `cp` creates the file empty and then writes it in pieces, and
 * a writer over a network file system can pause for seconds between writes.
 */
export const SETTLE_MS = 5000;

/** The size and mtime of a file when a scan first saw them, to tell whether it still changes. */
interface Observation {
  size: number;
  mtimeMs: number;
  since: number;
}

/**
 * Watches a folder for report files (XML, gzip, zip or mail, as for an upload). Each file is
 * stored through the ingest service, then moved to processed/ or, when it held no acceptable
 * report, to failed/. A file is moved only after its reports are committed. A file is read only
 * once it has settled (see settleMs), so a file copied in place is not read half written. Names
 * starting with a dot or ending in .tmp or .part are skipped, so the safest way to deliver a file
 * is to write it under such a name and rename it when it is complete.
 */
export class FolderWatcher {
  private timer: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private settleTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly observations = new Map<string, Observation>();
  private readonly settleMs: number;

  constructor(private readonly options: FolderWatcherOptions) {
    this.settleMs = options.settleMs ?? SETTLE_MS;
  }

  /** Create processed/ and failed/, scan now, then on every change and every pollSeconds. */
  async start(): Promise<void> {
    await mkdir(join(this.options.path, PROCESSED_FOLDER), { recursive: true });
    await mkdir(join(this.options.path, FAILED_FOLDER), { recursive: true });
    const run = () => this.runScan();
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
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.watcher?.close();
    await this.chain.catch(() => undefined);
  }

  /** Run one scan after any scan already running, so that a file is never read twice at once. */
  scan(): Promise<ScanSummary> {
    const next = this.chain.catch(() => undefined).then(() => this.scanOnce());
    this.chain = next;
    return next;
  }

  private runScan(): void {
    this.scan().catch((error: unknown) =>
      this.options.logger.error({ err: error, path: this.options.path }, 'folder scan failed'),
    );
  }

  private async scanOnce(): Promise<ScanSummary> {
    const summary: ScanSummary = { processed: 0, failed: 0, deferred: 0, unsettled: 0 };
    const entries = await readdir(this.options.path, { withFileTypes: true });
    const files = entries
      .filter((entry) => entry.isFile() && !skipped(entry.name))
      .map((entry) => entry.name)
      .sort();
    for (const name of this.observations.keys()) {
      if (!files.includes(name)) this.observations.delete(name);
    }
    for (const name of files) {
      if (this.stopped) break;
      const outcome = await this.processFile(name);
      summary[outcome] += 1;
      if (outcome === 'deferred') break;
    }
    if (summary.processed + summary.failed + summary.deferred > 0) {
      this.options.logger.info({ path: this.options.path, ...summary }, 'folder scan finished');
    }
    if (summary.unsettled > 0) this.scanAfterSettling();
    return summary;
  }

  /**
   * Scan again once the files still being written may have settled. The last write of a copy
   * may be the last change event, and the poll interval can be long.
   */
  private scanAfterSettling(): void {
    if (this.stopped || this.settleTimer) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      if (!this.stopped) this.runScan();
    }, this.settleMs + 100);
    this.settleTimer.unref();
  }

  /**
   * Tell whether a file has stopped changing: its mtime is at least settleMs old, or this
   * watcher has seen the same size and mtime for at least settleMs. The second rule covers a
   * file system whose clock is ahead of ours.
   */
  private settled(name: string, size: number, mtimeMs: number): boolean {
    const now = Date.now();
    const seen = this.observations.get(name);
    if (!seen || seen.size !== size || seen.mtimeMs !== mtimeMs) {
      this.observations.set(name, { size, mtimeMs, since: now });
      return now - mtimeMs >= this.settleMs;
    }
    return now - mtimeMs >= this.settleMs || now - seen.since >= this.settleMs;
  }

  private async processFile(
    name: string,
  ): Promise<'processed' | 'failed' | 'deferred' | 'unsettled'> {
    const { ingest, accountId, maxFileBytes, keepBytes, logger } = this.options;
    const path = join(this.options.path, name);
    const source = { via: 'folder' as const, origin: `folder file ${name}` };
    let failed: boolean;
    try {
      const before = await stat(path);
      const size = before.size;
      if (!this.settled(name, size, before.mtimeMs)) return 'unsettled';
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
        // A writer that paused longer than the settle time may have written again meanwhile.
        const after = await stat(path);
        if (after.size !== bytes.length || after.mtimeMs !== before.mtimeMs) {
          this.observations.set(name, {
            size: after.size,
            mtimeMs: after.mtimeMs,
            since: Date.now(),
          });
          return 'unsettled';
        }
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
    this.observations.delete(name);
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
