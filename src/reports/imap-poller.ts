import { readFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { Queryable } from '../db/database.ts';
import { formatBytes } from './container-budget.ts';
import type { IngestResult, ReportIngestService } from './ingest.ts';
import {
  findAccountByToken,
  tokenOfAddress,
  type ReceivingAddressFormat,
} from './receiving-addresses.ts';
import { headerValues, parseHeaderFields, splitHeaderBlock } from './mime-entity.ts';
import { ReportInputError } from './report-input-error.ts';

/** One IMAP mailbox and the folders its mails are moved to. */
export interface ImapMailbox {
  host: string;
  port: number;
  /** true for implicit TLS, false for STARTTLS or plain text. */
  secure: boolean;
  /** Without implicit TLS, whether the connection fails when the server offers no STARTTLS. */
  requireTls: boolean;
  /** Path of a PEM CA certificate to trust, for a server with a private certificate. */
  caPath: string | null;
  user: string;
  password: string;
  mailbox: string;
  processedFolder: string;
  failedFolder: string;
  /** The account every mail belongs to; null ties each mail by its receiving address. */
  accountId: string | null;
  pollSeconds: number;
}

export interface ImapPollerOptions {
  db: Queryable;
  ingest: ReportIngestService;
  logger: Logger;
  mailbox: ImapMailbox;
  /** Ties a mail to an account by its recipient when the mailbox has no account of its own. */
  addressFormat: ReceivingAddressFormat | null;
  /** Largest mail read, in bytes; a larger one is moved to the failed folder unread. */
  maxMessageBytes: number;
  /** How many bytes of a mail over the limit are read to keep as rejected input. */
  keepBytes: number;
}

/** The counts of one poll, for logs and tests. */
export interface PollSummary {
  processed: number;
  failed: number;
  /** Mails left in the mailbox because storing them failed; the next poll tries again. */
  deferred: number;
}

// Headers that carry the address a mail was delivered to, most specific first.
const RECIPIENT_HEADERS = ['delivered-to', 'x-original-to', 'envelope-to', 'to', 'cc'];

/**
 * Polls an IMAP mailbox for report mails. Each mail is stored through the ingest service and
 * then moved to the processed folder, or to the failed folder when it held no acceptable
 * report. A mail is moved only after its reports are committed, and a mail whose storing
 * failed (the database is down) stays where it is for the next poll.
 */
// NOTE: one mailbox, set by DMARCDESK_IMAP_URL. Mailboxes configured per account and stored in
// the database are not built; such accounts share the global mailbox by receiving address.
export class ImapPoller {
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: ImapPollerOptions) {}

  /** Poll now, then every pollSeconds. Errors are logged, and the next poll tries again. */
  start(): void {
    const run = () => {
      this.poll().catch((error: unknown) =>
        this.options.logger.error(
          { err: error, host: this.options.mailbox.host, mailbox: this.options.mailbox.mailbox },
          'IMAP poll failed',
        ),
      );
    };
    run();
    this.timer = setInterval(run, this.options.mailbox.pollSeconds * 1000);
    this.timer.unref();
  }

  /** Stop polling and wait for a running poll to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.chain.catch(() => undefined);
  }

  /** Run one poll after any poll already running, so that two never read the mailbox at once. */
  poll(): Promise<PollSummary> {
    const next = this.chain.catch(() => undefined).then(() => this.pollOnce());
    this.chain = next;
    return next;
  }

  private async pollOnce(): Promise<PollSummary> {
    const summary: PollSummary = { processed: 0, failed: 0, deferred: 0 };
    if (this.stopped) return summary;
    const { mailbox } = this.options;
    const client = new ImapFlow({
      host: mailbox.host,
      port: mailbox.port,
      secure: mailbox.secure,
      ...(mailbox.secure ? {} : mailbox.requireTls ? { doSTARTTLS: true } : {}),
      ...(mailbox.caPath ? { tls: { ca: readFileSync(mailbox.caPath) } } : {}),
      auth: { user: mailbox.user, pass: mailbox.password },
      logger: false,
      connectionTimeout: 30_000,
    });
    await client.connect();
    try {
      for (const folder of [mailbox.processedFolder, mailbox.failedFolder]) {
        await client.mailboxCreate(folder);
      }
      const lock = await client.getMailboxLock(mailbox.mailbox);
      try {
        const uids = (await client.search({ all: true }, { uid: true })) || [];
        for (const uid of uids) {
          if (this.stopped) break;
          const outcome = await this.processMessage(client, uid);
          summary[outcome] += 1;
          if (outcome === 'deferred') break;
        }
      } finally {
        lock.release();
      }
    } finally {
      await client.logout().catch(() => client.close());
    }
    if (summary.processed + summary.failed + summary.deferred > 0) {
      this.options.logger.info({ mailbox: mailbox.mailbox, ...summary }, 'IMAP poll finished');
    }
    return summary;
  }

  private async processMessage(
    client: ImapFlow,
    uid: number,
  ): Promise<'processed' | 'failed' | 'deferred'> {
    const { mailbox, maxMessageBytes, keepBytes, ingest, logger } = this.options;
    const origin = `IMAP ${mailbox.user}@${mailbox.host} ${mailbox.mailbox} UID ${uid}`;
    const source = { via: 'imap' as const, origin };
    let failed: boolean;
    try {
      const sized = await client.fetchOne(String(uid), { size: true }, { uid: true });
      const size = sized ? (sized.size ?? 0) : 0;
      if (size > maxMessageBytes) {
        const head = await client.fetchOne(
          String(uid),
          { source: { start: 0, maxLength: keepBytes } },
          { uid: true },
        );
        const bytes = head && head.source ? head.source : Buffer.alloc(0);
        const accountId = await this.accountOf(bytes);
        const error = new ReportInputError(
          'too_large',
          `The mail is ${formatBytes(size)}, more than the limit of ${formatBytes(maxMessageBytes)}; ` +
            'a DMARC report mail is far smaller.',
        );
        await ingest.storeRejection(accountId, bytes, source, error, size);
        failed = true;
      } else {
        const message = await client.fetchOne(String(uid), { source: true }, { uid: true });
        const bytes = message && message.source ? message.source : Buffer.alloc(0);
        const accountId = await this.accountOf(bytes);
        const result = await ingest.receive(accountId, bytes, source, {
          maxInputBytes: maxMessageBytes,
        });
        failed = !holdsReport(result);
      }
    } catch (error) {
      logger.error({ err: error, origin }, 'storing IMAP mail failed; it stays for the next poll');
      return 'deferred';
    }
    await client.messageMove(String(uid), failed ? mailbox.failedFolder : mailbox.processedFolder, {
      uid: true,
    });
    return failed ? 'failed' : 'processed';
  }

  /** Finds the mailbox's own account, or the account of the first receiving address in the headers. */
  private async accountOf(bytes: Buffer): Promise<string | null> {
    if (this.options.mailbox.accountId) return this.options.mailbox.accountId;
    const format = this.options.addressFormat;
    if (!format) return null;
    const headers = parseHeaderFields(splitHeaderBlock(bytes.toString('latin1')).headerText);
    for (const name of RECIPIENT_HEADERS) {
      for (const value of headerValues(headers, name)) {
        for (const candidate of value.split(',')) {
          const address = /<([^<>]+)>/.exec(candidate)?.[1] ?? candidate.trim();
          const token = tokenOfAddress(address, format);
          const accountId = token ? await findAccountByToken(this.options.db, token) : null;
          if (accountId) return accountId;
        }
      }
    }
    return null;
  }
}

/** Tells whether an input contained a report: one was stored now or had been stored before. */
export function holdsReport(result: IngestResult): boolean {
  return result.stored + result.duplicates > 0;
}
