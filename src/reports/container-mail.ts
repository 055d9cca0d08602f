import { ReportInputError } from './report-input-error.ts';

export interface MailPart {
  name: string;
  contentType: string;
  bytes: Buffer;
}

/**
 * Returns the decoded attachments of a mail message (RFC 5322 with MIME). Reporters label their
 * attachments inconsistently (application/octet-stream for gzip, text/plain for XML), so every
 * attachment is returned and the caller detects each by content. A text/xml part without an
 * attachment disposition is returned too, since some reporters send the XML inline.
 */
export async function readMailParts(input: Buffer, label: string): Promise<MailPart[]> {
  // Loaded on first use: mailparser costs about a tenth of a second to load, which every
  // process that only reads XML or gzip would otherwise pay at start.
  const { simpleParser } = await import('mailparser');
  let mail;
  try {
    mail = await simpleParser(input, {
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      skipTextLinks: true,
    });
  } catch (error) {
    throw new ReportInputError(
      'unsupported_format',
      `${label} looks like a mail message but could not be read as MIME ` +
        `(${error instanceof Error ? error.message : String(error)}); upload the attachment itself.`,
      { cause: error },
    );
  }

  return mail.attachments.map((attachment, index) => ({
    name: attachment.filename ?? `attachment ${index + 1}`,
    contentType: attachment.contentType,
    bytes: Buffer.isBuffer(attachment.content)
      ? attachment.content
      : Buffer.from(String(attachment.content)),
  }));
}
