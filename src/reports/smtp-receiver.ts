import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Queryable } from '../db/database.ts';
import { formatBytes } from './container-budget.ts';
import type { IngestResult, ReportIngestService } from './ingest.ts';
import {
  findAccountByToken,
  tokenOfAddress,
  type ReceivingAddressFormat,
} from './receiving-addresses.ts';
import { ReportInputError } from './report-input-error.ts';

export interface SmtpReceiverOptions {
  db: Queryable;
  ingest: ReportIngestService;
  logger: Logger;
  host: string;
  /** 0 picks a free port; read it back with address(). */
  port: number;
  addressFormat: ReceivingAddressFormat;
  /** PEM certificate and key offered with STARTTLS; without them STARTTLS is not offered. */
  tls: { cert: Buffer; key: Buffer } | null;
  /** Largest mail accepted, in bytes; a larger mail gets reply code 552 and is kept as rejected. */
  maxMessageBytes: number;
}

/** Creates an error that smtp-server sends as a reply with the given code (its responseCode). */
function smtpError(responseCode: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode });
}

/** Makes text safe for one SMTP reply line: printable ASCII only, and short. */
function replyText(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 400 ? `${printable.slice(0, 400)}...` : printable;
}

/** Reads the STARTTLS certificate and key, with an error that names the file that failed. */
export function readTlsFiles(paths: { certPath: string; keyPath: string }): {
  cert: Buffer;
  key: Buffer;
} {
  const read = (path: string, setting: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(
        `${setting} names ${path}, which could not be read (${(error as Error).message}); give the path of a PEM file.`,
        { cause: error },
      );
    }
  };
  return {
    cert: read(paths.certPath, 'DMARCDESK_SMTP_TLS_CERT'),
    key: read(paths.keyPath, 'DMARCDESK_SMTP_TLS_KEY'),
  };
}

/**
 * Receives aggregate and failure reports by SMTP, so that the rua and ruf addresses of
 * customers' DMARC records can point at dmarcdesk directly. Recipients are checked at RCPT
 * time against the accounts' receiving addresses, and mail for any other address is refused
 * with 550 before its data is sent. Each accepted mail is stored through the ingest service,
 * and a mail that contains no acceptable report is rejected with 554 and the reason, after it
 * was kept as rejected input.
 */
export class SmtpReceiver {
  private readonly server: SMTPServer;
  /** Accounts of the accepted recipients, per session, by lower-case address. */
  private readonly recipients = new Map<string, Map<string, string>>();

  constructor(private readonly options: SmtpReceiverOptions) {
    this.server = new SMTPServer({
      banner: 'dmarcdesk DMARC report receiver',
      logger: false,
      authOptional: true,
      // NOTE: STARTTLS is offered but not required, and there is no per-client rate limit yet,
      // so a sender that skips STARTTLS delivers in plain text.
      disabledCommands: options.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}),
      size: options.maxMessageBytes,
      maxClients: 50,
      closeTimeout: 5000,
      onRcptTo: (address, session, callback) => {
        this.acceptRecipient(address.address, session).then(
          () => callback(),
          (error: Error) => callback(error),
        );
      },
      onData: (stream, session, callback) => {
        this.receiveData(stream, session).then(
          (message) => callback(null, message),
          (error: Error) => callback(error),
        );
      },
      onClose: (session) => {
        this.recipients.delete(session.id);
      },
    });
    this.server.on('error', (error) =>
      options.logger.error({ err: error }, 'SMTP receiver connection failed'),
    );
  }

  /** Start listening; resolves once the port is bound. */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.server.off('error', onError);
        resolve();
      });
    });
    this.options.logger.info(
      { host: this.options.host, port: this.address().port, starttls: this.options.tls !== null },
      'SMTP receiver listening',
    );
  }

  address(): AddressInfo {
    return this.server.server.address() as AddressInfo;
  }

  /** Stop accepting connections and close the open ones. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async acceptRecipient(address: string, session: SMTPServerSession): Promise<void> {
    const token = tokenOfAddress(address, this.options.addressFormat);
    const accountId = token ? await findAccountByToken(this.options.db, token) : null;
    if (!accountId) {
      this.options.logger.info(
        { recipient: address, remoteAddress: session.remoteAddress },
        'SMTP recipient rejected',
      );
      throw smtpError(
        550,
        replyText(
          `5.1.1 <${address}>: no such receiving address; use the address that dmarcdesk shows for your account`,
        ),
      );
    }
    const byAddress = this.recipients.get(session.id) ?? new Map<string, string>();
    byAddress.set(address.toLowerCase(), accountId);
    this.recipients.set(session.id, byAddress);
  }

  private async receiveData(stream: SMTPServerDataStream, session: SMTPServerSession) {
    const { bytes, totalBytes } = await readLimited(stream, this.options.maxMessageBytes);
    const accounts = this.accountsOf(session);
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const source = {
      via: 'smtp' as const,
      origin: `SMTP from <${sender}> at ${session.remoteAddress}`,
    };

    if (stream.sizeExceeded) {
      const error = new ReportInputError(
        'too_large',
        `The mail is larger than the limit of ${formatBytes(this.options.maxMessageBytes)}; ` +
          'a DMARC report mail is far smaller.',
      );
      for (const accountId of accounts) {
        await this.options.ingest.storeRejection(accountId, bytes, source, error, totalBytes);
      }
      throw smtpError(552, replyText(`5.3.4 ${error.message}`));
    }

    const results: IngestResult[] = [];
    try {
      for (const accountId of accounts) {
        results.push(
          await this.options.ingest.receive(accountId, bytes, source, {
            maxInputBytes: this.options.maxMessageBytes,
          }),
        );
      }
    } catch (error) {
      this.options.logger.error({ err: error, origin: source.origin }, 'storing SMTP mail failed');
      throw smtpError(451, '4.3.0 The report could not be stored now; try again later.');
    }

    const rejection = results.map(rejectionOf).find((reason) => reason !== null);
    if (rejection && results.every((result) => result.stored + result.duplicates === 0)) {
      throw smtpError(554, replyText(`5.6.0 ${rejection}`));
    }
    const stored = results.reduce((sum, result) => sum + result.stored, 0);
    const duplicates = results.reduce((sum, result) => sum + result.duplicates, 0);
    return `Accepted: ${stored} reports stored, ${duplicates} already stored`;
  }

  private accountsOf(session: SMTPServerSession): string[] {
    const byAddress = this.recipients.get(session.id);
    const accounts = new Set<string>();
    for (const recipient of session.envelope.rcptTo) {
      const accountId = byAddress?.get(recipient.address.toLowerCase());
      if (accountId) accounts.add(accountId);
    }
    return [...accounts];
  }
}

function rejectionOf(result: IngestResult): string | null {
  if (result.inputRejection) return result.inputRejection.reason;
  const rejected = result.documents.find((document) => document.status === 'rejected');
  return rejected && rejected.status === 'rejected' ? rejected.reason : null;
}

/**
 * Reads the mail data, keeping at most maxBytes + 1 bytes. The stream is read to its end in
 * any case, since SMTP replies only after the final dot.
 */
async function readLimited(
  stream: SMTPServerDataStream,
  maxBytes: number,
): Promise<{ bytes: Buffer; totalBytes: number }> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let totalBytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    totalBytes += chunk.length;
    if (kept <= maxBytes) {
      chunks.push(chunk);
      kept += chunk.length;
    }
  }
  return { bytes: Buffer.concat(chunks), totalBytes };
}
