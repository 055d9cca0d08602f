import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import pino from 'pino';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  startService,
  type TestService,
} from '../../test/support/service.ts';
import { FolderWatcher } from './folder-watcher.ts';
import { makeCertificate, startDovecot, type RunningDovecot } from './receiver-test-support.ts';

const fixture = (path: string) =>
  readFileSync(new URL(`../../test/fixtures/reports/${path}`, import.meta.url));

// A real Fastmail aggregate report for stalw.art, report id 758848224.
const AGGREGATE = fixture('e2e-failing-report.xml');
// A real LinkedIn failure report about example.com, without the mbox "From " line that a mail
// on the wire never has.
const LINKEDIN = fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.eml');
const FAILURE = LINKEDIN.subarray(LINKEDIN.indexOf('\n') + 1);
// A real Google aggregate report mail, with the report zipped.
const AGGREGATE_MAIL = fixture('parsedmarc/aggregate/twilight.eml');
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489',
  'hex',
);
const MAX_MAIL_BYTES = 1024 * 1024;
const PROCESSED = 'dmarcdesk-processed';
const FAILED = 'dmarcdesk-failed';

/** Build a mail with one base64 attachment. */
function mailWithAttachment(options: {
  to: string;
  filename: string;
  contentType: string;
  content: Buffer;
  messageId: string;
}): Buffer {
  const base64 = options.content.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      'From: reporter@reporter.test',
      `To: ${options.to}`,
      `Subject: Report ${options.filename}`,
      `Message-ID: <${options.messageId}>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="part"',
      '',
      '--part',
      'Content-Type: text/plain',
      '',
      'A report is attached.',
      '--part',
      `Content-Type: ${options.contentType}; name="${options.filename}"`,
      `Content-Disposition: attachment; filename="${options.filename}"`,
      'Content-Transfer-Encoding: base64',
      '',
      base64,
      '--part--',
      '',
    ].join('\r\n'),
  );
}

/** Build a mail whose multipart bodies nest a thousand levels deep. */
function deeplyNestedMail(to: string): Buffer {
  let body = 'Content-Type: text/plain\r\n\r\nx';
  for (let level = 0; level < 1000; level += 1) {
    body = `Content-Type: multipart/mixed; boundary="l${level}"\r\n\r\n--l${level}\r\n${body}\r\n--l${level}--`;
  }
  return Buffer.from(`From: a@reporter.test\r\nTo: ${to}\r\nSubject: nested\r\n${body}\r\n`);
}

for (const engine of DATABASE_ENGINES) {
  describe(`report receivers on ${engine}`, () => {
    let database: TestDatabase;
    let dovecot: RunningDovecot;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let accountId: string;
    let address: string;
    let tlsFolder: string;
    let cert: Buffer;
    let imap: ImapFlow;

    before(async () => {
      tlsFolder = mkdtempSync(join(tmpdir(), 'dmarcdesk-tls-'));
      const certificate = makeCertificate(tlsFolder);
      cert = certificate.cert;
      dovecot = await startDovecot();
      database = await openTestDatabase(engine);
      service = await startService(database, {
        environment: {
          DMARCDESK_RECEIVING_DOMAIN: 'dmarc.test',
          DMARCDESK_SMTP_PORT: '0',
          DMARCDESK_SMTP_TLS_CERT: certificate.certPath,
          DMARCDESK_SMTP_TLS_KEY: certificate.keyPath,
          DMARCDESK_MAX_MAIL_BYTES: String(MAX_MAIL_BYTES),
          DMARCDESK_IMAP_URL: `imap://${encodeURIComponent(dovecot.user)}:${dovecot.password}@127.0.0.1:${dovecot.port}/INBOX`,
          DMARCDESK_IMAP_REQUIRE_TLS: 'false',
          DMARCDESK_IMAP_POLL_SECONDS: '3600',
        },
      });
      const account = await createTestAccount(service.app);
      accountId = account.accountId;
      api = apiClient(service.url, account.token);
      address = (await api('GET', '/receiving-address')).body.address;

      imap = new ImapFlow({
        host: '127.0.0.1',
        port: dovecot.port,
        secure: false,
        auth: { user: dovecot.user, pass: dovecot.password },
        logger: false,
      });
      await imap.connect();
    });

    after(async () => {
      try {
        await imap?.logout().catch(() => undefined);
        await service?.stop();
        await database?.drop();
      } finally {
        await dovecot?.stop();
        if (tlsFolder) rmSync(tlsFolder, { recursive: true, force: true });
      }
    });

    const smtpTransport = () =>
      nodemailer.createTransport({
        host: '127.0.0.1',
        port: service.app.receivers.smtp!.address().port,
        secure: false,
        requireTLS: true,
        tls: { ca: [cert], servername: 'localhost' },
      });

    const sendRaw = (raw: Buffer, to = address) =>
      smtpTransport().sendMail({ envelope: { from: 'reporter@reporter.test', to: [to] }, raw });

    const countIn = async (folder: string) => {
      const status = await imap.status(folder, { messages: true });
      return status ? (status.messages ?? 0) : 0;
    };

    const rejectedVia = async (via: string) =>
      (await api('GET', `/rejected-inputs?receivedVia=${via}`)).body.rejectedInputs as {
        reasonCode: string;
        origin: string;
        sizeBytes: number;
        contentTruncated: boolean;
      }[];

    test('receiving address carries a token', async () => {
      assert.match(address, /^reports\+[a-z0-9]{12}@dmarc\.test$/);
      const again = (await api('GET', '/receiving-address')).body;
      assert.equal(again.address, address);
    });

    test('SMTP over STARTTLS stores a report', async () => {
      const info = await smtpTransport().sendMail({
        from: 'noreply-dmarc@fastmail.test',
        to: address,
        subject: 'Report Domain: stalw.art',
        text: 'The report is attached.',
        attachments: [
          {
            filename: 'report.xml.gz',
            content: gzipSync(AGGREGATE),
            contentType: 'application/gzip',
          },
        ],
      });
      assert.match(info.response, /^250 .*1 reports stored/);
      const reports = (await api('GET', '/reports')).body.reports;
      assert.equal(reports.length, 1);
      assert.equal(reports[0].reportId, '758848224');
      assert.equal(reports[0].receivedVia, 'smtp');
    });

    test('SMTP rejects unknown recipients at RCPT', async () => {
      for (const recipient of ['reports+zzzzzzzzzzzz@dmarc.test', 'postmaster@elsewhere.test']) {
        await assert.rejects(sendRaw(AGGREGATE_MAIL, recipient), (error: any) => {
          assert.equal(error.responseCode, 550);
          assert.match(error.response, /no such receiving address/);
          return true;
        });
      }
      assert.equal((await rejectedVia('smtp')).length, 0);
    });

    test('failure report by SMTP and IMAP stored once', async () => {
      const sent = await sendRaw(FAILURE);
      assert.match(sent.response, /^250 .*1 reports stored/);

      // The mailbox copy has the header fields a delivering server adds in front.
      const delivered = Buffer.concat([
        Buffer.from(`Delivered-To: ${address}\r\nReceived: by mx.dmarc.test; Tue, 30 Apr 2019\r\n`),
        FAILURE,
      ]);
      await imap.append('INBOX', delivered);
      const summary = await service.app.receivers.imap!.poll();
      assert.deepEqual(summary, { processed: 1, failed: 0, deferred: 0 });
      assert.equal(await countIn('INBOX'), 0);
      assert.equal(await countIn(PROCESSED), 1);

      const reports = (await api('GET', '/failure-reports')).body.reports;
      assert.equal(reports.length, 1);
      assert.equal(reports[0].receivedVia, 'smtp');
      assert.equal(reports[0].reportedDomain, 'example.com');
    });

    test('IMAP stores an aggregate report mail', async () => {
      await imap.append(
        'INBOX',
        Buffer.concat([Buffer.from(`Delivered-To: ${address}\r\n`), AGGREGATE_MAIL]),
      );
      const summary = await service.app.receivers.imap!.poll();
      assert.deepEqual(summary, { processed: 1, failed: 0, deferred: 0 });
      const viaImap = (await api('GET', '/reports')).body.reports.filter(
        (report: { receivedVia: string }) => report.receivedVia === 'imap',
      );
      assert.equal(viaImap.length, 1);
      assert.equal(viaImap[0].orgName, 'google.com');
      assert.equal(await countIn(PROCESSED), 2);
    });

    test('IMAP moves rejected mail to failed', async () => {
      await imap.append(
        'INBOX',
        mailWithAttachment({
          to: address,
          filename: 'logo.png',
          contentType: 'image/png',
          content: PNG,
          messageId: 'png@reporter.test',
        }),
      );
      await imap.append(
        'INBOX',
        mailWithAttachment({
          to: 'someone@elsewhere.test',
          filename: 'report.xml.gz',
          contentType: 'application/gzip',
          content: gzipSync(AGGREGATE),
          messageId: 'stray@reporter.test',
        }),
      );
      await imap.append(
        'INBOX',
        Buffer.concat([
          Buffer.from(`Delivered-To: ${address}\r\n`),
          mailWithAttachment({
            to: address,
            filename: 'big.bin',
            contentType: 'application/octet-stream',
            content: Buffer.alloc(MAX_MAIL_BYTES, 7),
            messageId: 'big@reporter.test',
          }),
        ]),
      );
      const summary = await service.app.receivers.imap!.poll();
      assert.deepEqual(summary, { processed: 0, failed: 3, deferred: 0 });
      assert.equal(await countIn(FAILED), 3);
      assert.equal(await countIn('INBOX'), 0);

      const rejected = await rejectedVia('imap');
      const codes = rejected.map((entry) => entry.reasonCode).sort();
      assert.deepEqual(codes, ['too_large', 'unsupported_format']);
      const tooLarge = rejected.find((entry) => entry.reasonCode === 'too_large')!;
      assert.ok(tooLarge.sizeBytes > MAX_MAIL_BYTES, 'the full size is recorded');
      assert.equal(tooLarge.contentTruncated, true);
      assert.match(tooLarge.origin, /UID \d+/);

      // The mail for no known address belongs to no account, so only the database lists it.
      const stray = await service.app.db.query<{ reason: string }>(
        "SELECT reason FROM rejected_inputs WHERE account_id IS NULL AND received_via = 'imap'",
      );
      assert.equal(stray.length, 1);
      assert.match(stray[0]!.reason, /no receiving address/);
    });

    test('SMTP rejects hostile mail and stays up', async () => {
      const bomb = mailWithAttachment({
        to: address,
        filename: 'report.xml.gz',
        contentType: 'application/gzip',
        content: gzipSync(Buffer.alloc(30 * 1024 * 1024, 0)),
        messageId: 'bomb@reporter.test',
      });
      const huge = mailWithAttachment({
        to: address,
        filename: 'report.xml',
        contentType: 'text/xml',
        content: Buffer.alloc(MAX_MAIL_BYTES + 1024, 0x41),
        messageId: 'huge@reporter.test',
      });
      const cases = [
        { name: 'a gzip bomb', mail: bomb, code: 554, pattern: /decompression bomb/ },
        { name: 'deep nesting', mail: deeplyNestedMail(address), code: 554, pattern: /nests/ },
        { name: 'a huge mail', mail: huge, code: 552, pattern: /larger than the limit|size/i },
      ];
      for (const { name, mail, code, pattern } of cases) {
        await assert.rejects(sendRaw(mail), (error: any) => {
          assert.equal(error.responseCode, code, `${name}: ${error.response}`);
          assert.match(error.response, pattern, name);
          return true;
        });
      }
      const codes = (await rejectedVia('smtp')).map((entry) => entry.reasonCode);
      assert.ok(codes.includes('compression_ratio'), codes.join(', '));
      assert.ok(codes.includes('nesting_too_deep'), codes.join(', '));
      // nodemailer announces no SIZE for a raw mail, so the data arrives and is kept in part.
      assert.ok(codes.includes('too_large'), codes.join(', '));

      const stillUp = await sendRaw(fixture('mail-auth/arf/004.eml'));
      assert.match(stillUp.response, /^250 .*1 reports stored/);
    });

    test('SMTP names what a bare mail lacks', async () => {
      await assert.rejects(sendRaw(Buffer.from('Subject: weekly report\r\n\r\n')), (error: any) => {
        assert.equal(error.responseCode, 554);
        assert.match(error.response, /The mail received over SMTP is not a complete mail message/);
        assert.match(error.response, /only a Subject field and no From field or body/);
        assert.doesNotMatch(error.response, /upload/);
        return true;
      });
    });

    test('watched folder sorts files', async () => {
      const folder = mkdtempSync(join(tmpdir(), 'dmarcdesk-watch-'));
      const watcher = new FolderWatcher({
        ingest: service.app.reports,
        logger: pino({ level: 'silent' }),
        path: folder,
        accountId,
        pollSeconds: 3600,
        maxFileBytes: MAX_MAIL_BYTES,
        keepBytes: 1024,
        // Every file is complete before the first scan, so none needs to settle.
        settleMs: 0,
      });
      try {
        writeFileSync(
          join(folder, 'rfc9990.xml'),
          fixture('parsedmarc/aggregate/rfc9990-sample.xml'),
        );
        writeFileSync(join(folder, 'failure.eml'), fixture('mail-auth/arf/005.eml'));
        writeFileSync(join(folder, 'logo.png'), PNG);
        writeFileSync(join(folder, 'huge.xml'), Buffer.alloc(MAX_MAIL_BYTES + 1, 0x41));
        writeFileSync(join(folder, 'incoming.xml.part'), 'half written');
        await watcher.start();
        const summary = await watcher.scan();
        // The first scan that start() ran may have done the work already.
        assert.equal(summary.deferred, 0);

        assert.deepEqual(readdirSync(join(folder, 'processed')).sort(), [
          'failure.eml',
          'rfc9990.xml',
        ]);
        assert.deepEqual(readdirSync(join(folder, 'failed')).sort(), ['huge.xml', 'logo.png']);
        assert.equal(existsSync(join(folder, 'incoming.xml.part')), true);

        const rejected = await rejectedVia('folder');
        assert.deepEqual(rejected.map((entry) => entry.reasonCode).sort(), [
          'too_large',
          'unsupported_format',
        ]);
        const huge = rejected.find((entry) => entry.reasonCode === 'too_large')!;
        assert.equal(huge.sizeBytes, MAX_MAIL_BYTES + 1);
        assert.equal(huge.origin, 'folder file huge.xml');

        const failures = (await api('GET', '/failure-reports')).body.reports;
        assert.ok(
          failures.some((report: { receivedVia: string }) => report.receivedVia === 'folder'),
        );
      } finally {
        await watcher.stop();
        rmSync(folder, { recursive: true, force: true });
      }
    });
  });
}
