import type { Logger } from 'pino';
import type { Queryable } from '../db/database.ts';
import { getAccount } from '../platform/accounts.ts';
import { FolderWatcher } from './folder-watcher.ts';
import { ImapPoller, type ImapMailbox } from './imap-poller.ts';
import type { ReportIngestService } from './ingest.ts';
import type { ReceivingAddressFormat } from './receiving-addresses.ts';
import { readTlsFiles, SmtpReceiver } from './smtp-receiver.ts';

export interface ReceiverSettings {
  receivingAddress: ReceivingAddressFormat | null;
  smtp: { host: string; port: number; tls: { certPath: string; keyPath: string } | null } | null;
  imap: ImapMailbox | null;
  watch: { path: string; accountId: string; pollSeconds: number } | null;
  maxMailBytes: number;
  rejectedKeepBytes: number;
}

/** The running receivers; each is null when it is not configured. */
export interface Receivers {
  smtp: SmtpReceiver | null;
  imap: ImapPoller | null;
  folder: FolderWatcher | null;
  stop(): Promise<void>;
}

/**
 * Start the receivers that the settings turn on: the SMTP server, the IMAP poller and the
 * folder watcher. Each hands what it receives to the same ingest service as the HTTP upload.
 * A receiver that cannot start (a port in use, an unreadable certificate, an unknown account)
 * stops the others and fails the start with the reason.
 */
export async function startReceivers(
  settings: ReceiverSettings,
  deps: { db: Queryable; ingest: ReportIngestService; logger: Logger },
): Promise<Receivers> {
  const receivers: Receivers = {
    smtp: null,
    imap: null,
    folder: null,
    async stop() {
      await receivers.smtp?.stop();
      await receivers.imap?.stop();
      await receivers.folder?.stop();
    },
  };
  try {
    if (settings.smtp && settings.receivingAddress) {
      receivers.smtp = new SmtpReceiver({
        db: deps.db,
        ingest: deps.ingest,
        logger: deps.logger.child({ receiver: 'smtp' }),
        host: settings.smtp.host,
        port: settings.smtp.port,
        addressFormat: settings.receivingAddress,
        tls: settings.smtp.tls ? readTlsFiles(settings.smtp.tls) : null,
        maxMessageBytes: settings.maxMailBytes,
      });
      await receivers.smtp.start();
    }
    if (settings.imap) {
      if (settings.imap.accountId) {
        await requireAccount(deps.db, settings.imap.accountId, 'DMARCDESK_IMAP_ACCOUNT_ID');
      }
      receivers.imap = new ImapPoller({
        db: deps.db,
        ingest: deps.ingest,
        logger: deps.logger.child({ receiver: 'imap' }),
        mailbox: settings.imap,
        addressFormat: settings.receivingAddress,
        maxMessageBytes: settings.maxMailBytes,
        keepBytes: settings.rejectedKeepBytes,
      });
      receivers.imap.start();
    }
    if (settings.watch) {
      await requireAccount(deps.db, settings.watch.accountId, 'DMARCDESK_WATCH_ACCOUNT_ID');
      receivers.folder = new FolderWatcher({
        ingest: deps.ingest,
        logger: deps.logger.child({ receiver: 'folder' }),
        path: settings.watch.path,
        accountId: settings.watch.accountId,
        pollSeconds: settings.watch.pollSeconds,
        maxFileBytes: settings.maxMailBytes,
        keepBytes: settings.rejectedKeepBytes,
      });
      await receivers.folder.start();
    }
  } catch (error) {
    await receivers.stop();
    throw error;
  }
  return receivers;
}

async function requireAccount(db: Queryable, accountId: string, setting: string): Promise<void> {
  try {
    await getAccount(db, accountId);
  } catch (error) {
    throw new Error(
      `${setting} is ${accountId}, which is no MSSP account; list the accounts with "dmarcdesk account list".`,
      { cause: error },
    );
  }
}
