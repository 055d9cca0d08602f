import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseMimeMessage } from './mime-entity.ts';
import { isFailureReportMail, parseFailureReport } from './parse-failure-report.ts';
import { ReportInputError } from './report-input-error.ts';

const fixture = (path: string) =>
  readFileSync(new URL(`../../test/fixtures/reports/${path}`, import.meta.url));

/** Build an ARF failure report mail with the given feedback fields and original part. */
function arfMail(options: {
  fields: string[];
  original?: { type: string; text: string } | null;
  messageId?: string;
  lineBreak?: string;
}): Buffer {
  const lineBreak = options.lineBreak ?? '\r\n';
  const original =
    options.original === null
      ? []
      : [
          '--b1',
          `Content-Type: ${options.original?.type ?? 'text/rfc822-headers'}`,
          '',
          ...(
            options.original?.text ??
            [
              'From: Billing <billing@customer.example>',
              'To: someone@receiver.example',
              'Subject: =?utf-8?B?UmVjaG51bmcgw7xiZXJmw6RsbGln?=',
              'Date: Tue, 2 Dec 2025 10:00:00 +0100',
              'Message-ID: <original-1@customer.example>',
              'Authentication-Results: receiver.example; dkim=fail header.d=customer.example; spf=softfail smtp.mailfrom=customer.example',
            ].join(lineBreak)
          ).split(/\r?\n/),
        ];
  const lines = [
    'From: DMARC Reporter <dmarc-reports@receiver.example>',
    'To: reports+abcdefgh2345@dmarc.example.net',
    'Subject: DMARC failure report for customer.example',
    'Date: Tue, 2 Dec 2025 10:05:00 +0000',
    ...(options.messageId ? [`Message-ID: ${options.messageId}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'This is an authentication failure report.',
    '--b1',
    'Content-Type: message/feedback-report',
    '',
    ...options.fields,
    ...original,
    '--b1--',
    '',
  ];
  return Buffer.from(lines.join(lineBreak));
}

const STANDARD_FIELDS = [
  'Feedback-Type: auth-failure',
  'User-Agent: ExampleReporter/2.1',
  'Version: 1',
  'Original-Mail-From: <bounce@customer.example>',
  'Original-Rcpt-To: <someone@receiver.example>',
  'Original-Rcpt-To: <other@receiver.example>',
  'Arrival-Date: Tue, 2 Dec 2025 09:59:58 +0100',
  'Source-IP: 2001:db8::25 (mail.attacker.example)',
  'Reported-Domain: customer.example',
  'Authentication-Results: receiver.example; dmarc=fail (p=reject) header.from=customer.example',
  'Auth-Failure: dmarc',
  'Identity-Alignment: none',
  'Delivery-Result: reject',
  'DKIM-Domain: customer.example',
  'DKIM-Identity: @customer.example',
  'DKIM-Selector: s2025',
  'SPF-DNS: txt : customer.example : "v=spf1 -all"',
  'Incidents: 3',
];

describe('parseFailureReport: real reports', () => {
  const cases = [
    {
      path: 'mail-auth/arf/004.eml',
      domain: 'interpublication.org',
      sourceIp: '148.163.85.135',
      authFailure: ['dmarc'],
      content: 'headers',
      subject: 'Wir kaufen dein Auto!',
    },
    {
      path: 'mail-auth/arf/003.eml',
      domain: 'example.net',
      sourceIp: '192.0.2.1',
      authFailure: ['bodyhash'],
      content: 'message',
      subject: 'This is a test',
    },
    {
      path: 'mail-auth/arf/005.eml',
      domain: 'a.sender.example',
      sourceIp: '192.0.2.1',
      authFailure: ['bodyhash'],
      content: 'headers',
      subject: 'You have a new bill from your bank',
    },
    {
      path: 'parsedmarc/failure/DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml',
      domain: 'domain.de',
      sourceIp: '10.10.10.10',
      authFailure: ['dmarc'],
      content: 'message',
      subject: 'Subject',
    },
    {
      path: 'parsedmarc/failure/[Netease DMARC Failure Report] Rent Reminder.eml',
      domain: 'cardinal.com',
      sourceIp: '167.89.69.24',
      authFailure: [],
      content: 'headers',
      subject: 'Rent Reminder',
    },
    {
      path: 'parsedmarc/failure/dmarc_ruf_report_linkedin.eml',
      domain: 'example.com',
      sourceIp: '10.10.10.10',
      authFailure: ['dmarc'],
      content: 'message',
      subject: 'Subject line, could be UTF8 encoded',
    },
    {
      path: 'parsedmarc/_history/f45ab94/forensic/subject.eml',
      domain: 'domain.de',
      sourceIp: '10.10.10.10',
      authFailure: ['dmarc'],
      content: 'message',
      subject: 'Subject',
    },
    {
      path: 'parsedmarc/failure/exim_plain_text_only_no_arf_part.eml',
      domain: 'example.com',
      sourceIp: '203.0.113.68',
      authFailure: ['dmarc'],
      content: 'headers',
      subject: 'Payment from your account.',
    },
  ] as const;

  for (const expected of cases) {
    it(`reads ${expected.path.split('/').pop()}`, () => {
      const report = parseFailureReport(fixture(expected.path));
      assert.equal(report.reportedDomain, expected.domain);
      assert.equal(report.sourceIp, expected.sourceIp);
      assert.deepEqual(report.authFailure, expected.authFailure);
      assert.equal(report.original.content, expected.content);
      assert.equal(report.original.headers.subject, expected.subject);
      assert.equal(report.feedbackType, 'auth-failure');
      assert.match(report.contentSha256, /^[0-9a-f]{64}$/);
    });
  }

  it('reads every field of the LinkedIn report', () => {
    const report = parseFailureReport(fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.eml'));
    assert.equal(report.format, 'arf');
    assert.equal(report.reporter, 'dmarc-noreply@linkedin.com');
    assert.equal(report.report.messageId, 'BB.91.26019.C3EA7CC5@mail516.prod.linkedin.com');
    assert.equal(report.arrivalDate?.toISOString(), '2019-04-30T02:09:00.000Z');
    assert.equal(report.deliveryResult, 'delivered');
    assert.equal(report.originalMailFrom, null);
    assert.deepEqual(report.originalRcptTo, ['recipient@linkedin.com']);
    assert.deepEqual(report.authenticationResults, [
      'dmarc=fail (p=none; dis=none) header.from=example.com',
    ]);
    assert.equal(report.authentication.dmarc, 'fail');
    // DKIM and SPF come from the copied Authentication-Results of the original message.
    assert.equal(report.authentication.dkim, 'none');
    assert.equal(report.authentication.spf, 'neutral');
    assert.equal(report.original.headers.from, 'Sender <sender@example.com>');
    assert.equal(
      report.original.headers.messageId,
      '<01010101010101010101010101010101@ABAB01MS0016.someserver.loc>',
    );
    assert.match(report.original.headerText ?? '', /^Return-Path: <>\n/);
  });

  it('converts a Unicode Reported-Domain to A-labels', () => {
    const report = parseFailureReport(
      arfMail({
        fields: [
          'Feedback-Type: auth-failure',
          'Version: 1',
          'Auth-Failure: dmarc',
          'Reported-Domain: Bücher.Example.',
        ],
      }),
    );
    assert.equal(report.reportedDomain, 'xn--bcher-kva.example');
  });

  it('reads the base64 ARF part of NetEase inside multipart/mixed', () => {
    const report = parseFailureReport(
      fixture('parsedmarc/failure/[Netease DMARC Failure Report] Rent Reminder.eml'),
    );
    assert.equal(report.userAgent, 'NtesDmarcReporter/1.0');
    assert.deepEqual(report.identityAlignment, ['spf', 'dkim']);
    assert.equal(report.dkim?.domain, 'entrata.com');
    assert.equal(report.originalEnvelopeId, 'N8CowEApcUPo6q1bnXlMAA--.44392S3');
    assert.equal(report.arrivalDate?.toISOString(), '2018-09-28T08:48:42.000Z');
  });

  it('decodes an encoded From of the Domino report', () => {
    const report = parseFailureReport(fixture('parsedmarc/_history/f45ab94/forensic/subject.eml'));
    assert.equal(
      report.original.headers.from,
      '"Interaktive Wettbewerber-Übersicht" <sharepoint@domain.de>',
    );
    assert.deepEqual(report.originalRcptTo, ['peter.pan@domain.de']);
    assert.equal(report.deliveryResult, 'smg-policy-action');
  });

  it('reads the facts of a text-only report', () => {
    const report = parseFailureReport(
      fixture('parsedmarc/failure/exim_plain_text_only_no_arf_part.eml'),
    );
    assert.equal(report.format, 'text');
    assert.deepEqual(report.identityAlignment, ['none']);
    assert.equal(report.textFields['DMARC Results'], 'None, Accept');
    assert.equal(report.arrivalDate?.toISOString(), '2025-04-07T21:16:09.000Z');
    assert.equal(report.authentication.spf, 'softfail');
    assert.equal(
      report.original.headers.messageId,
      '<134117F8-2145-AECE-9CCA-25FC98731341@example.com>',
    );
    assert.ok(report.warnings.some((warning) => /text-only/.test(warning)));
  });

  it('hashes CRLF and LF copies of one report alike', () => {
    const lf = parseFailureReport(fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.eml'));
    const crlf = parseFailureReport(
      fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.crlf.eml'),
    );
    assert.equal(lf.contentSha256, crlf.contentSha256);
  });

  it('hashes alike when a mailbox adds header fields', () => {
    const original = fixture('mail-auth/arf/004.eml');
    const delivered = Buffer.concat([
      Buffer.from('Delivered-To: reports+abcdefgh2345@dmarc.example.net\nReceived: by mx\n'),
      original,
    ]);
    assert.equal(
      parseFailureReport(delivered).contentSha256,
      parseFailureReport(original).contentSha256,
    );
  });
});

describe('parseFailureReport: fields', () => {
  it('reads the RFC 6591 and DMARC fields', () => {
    const report = parseFailureReport(arfMail({ fields: STANDARD_FIELDS, messageId: '<r1@x>' }));
    assert.equal(report.version, '1');
    assert.equal(report.userAgent, 'ExampleReporter/2.1');
    assert.equal(report.reporter, 'dmarc-reports@receiver.example');
    assert.equal(report.report.messageId, 'r1@x');
    assert.equal(report.sourceIp, '2001:db8::25');
    assert.equal(report.arrivalDate?.toISOString(), '2025-12-02T08:59:58.000Z');
    assert.equal(report.originalMailFrom, 'bounce@customer.example');
    assert.deepEqual(report.originalRcptTo, ['someone@receiver.example', 'other@receiver.example']);
    assert.deepEqual(report.identityAlignment, ['none']);
    assert.equal(report.deliveryResult, 'reject');
    assert.equal(report.incidents, 3);
    assert.deepEqual(report.dkim, {
      domain: 'customer.example',
      identity: '@customer.example',
      selector: 's2025',
      selectorDns: null,
      adspDns: null,
    });
    assert.equal(report.spfDns, 'txt : customer.example : "v=spf1 -all"');
    assert.equal(report.original.headers.subject, 'Rechnung überfällig');
    assert.equal(report.original.content, 'headers');
    assert.deepEqual(report.warnings, []);
  });

  it('takes the domain from header.from without Reported-Domain', () => {
    const fields = STANDARD_FIELDS.filter((field) => !field.startsWith('Reported-Domain'));
    const report = parseFailureReport(arfMail({ fields }));
    assert.equal(report.reportedDomain, 'customer.example');
    assert.deepEqual(report.reportedDomains, []);
    assert.ok(report.warnings.some((warning) => /Reported-Domain/.test(warning)));
  });

  it('rejects a report that names no domain', () => {
    const input = arfMail({
      fields: ['Feedback-Type: auth-failure', 'Source-IP: 192.0.2.9', 'Auth-Failure: dmarc'],
      original: null,
    });
    assert.throws(
      () => parseFailureReport(Buffer.from(input.toString().replace(/for customer\.example/, ''))),
      (error: unknown) => error instanceof ReportInputError && error.code === 'invalid_report',
    );
  });

  it('reads a report without the original message', () => {
    const report = parseFailureReport(arfMail({ fields: STANDARD_FIELDS, original: null }));
    assert.equal(report.original.content, 'none');
    assert.equal(report.original.headerText, null);
    assert.equal(report.original.headers.from, null);
    assert.ok(report.warnings.some((warning) => /no copy of the original/.test(warning)));
  });

  it('reads a redacted message copy', () => {
    const report = parseFailureReport(
      arfMail({
        fields: STANDARD_FIELDS,
        original: {
          type: 'message/rfc822',
          text: 'From: redacted@customer.example\r\nSubject: [redacted]\r\n\r\n[body removed by the reporter]',
        },
      }),
    );
    assert.equal(report.original.content, 'message');
    assert.equal(report.original.headers.from, 'redacted@customer.example');
    assert.equal(report.original.headers.to, null);
  });

  it('marks a Source-IP that is no address', () => {
    const fields = STANDARD_FIELDS.map((field) =>
      field.startsWith('Source-IP') ? 'Source-IP: mail.example.org' : field,
    );
    const report = parseFailureReport(arfMail({ fields }));
    assert.equal(report.sourceIp, null);
    assert.ok(report.warnings.some((warning) => /Source-IP/.test(warning)));
  });

  it('rejects an ARF abuse report', () => {
    assert.throws(
      () => parseFailureReport(fixture('mail-auth/arf/001.eml')),
      (error: unknown) =>
        error instanceof ReportInputError &&
        error.code === 'unsupported_format' &&
        /abuse/.test(error.message),
    );
  });

  it('does not take an aggregate report mail for one', () => {
    const root = parseMimeMessage(fixture('mail-auth/dmarc-feedback/100.eml'));
    assert.equal(isFailureReportMail(root), false);
    assert.throws(
      () => parseFailureReport(fixture('mail-auth/dmarc-feedback/100.eml')),
      (error: unknown) => error instanceof ReportInputError && error.code === 'unsupported_format',
    );
  });
});

describe('parseFailureReport: hostile mails', () => {
  it('rejects thousands of parts', () => {
    const parts = Array.from({ length: 5000 }, () => '--b\r\nContent-Type: text/plain\r\n\r\nx');
    const input = Buffer.from(
      `From: a@b.example\r\nSubject: DMARC failure report\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n${parts.join('\r\n')}\r\n--b--\r\n`,
    );
    assert.throws(
      () => parseFailureReport(input),
      (error: unknown) => error instanceof ReportInputError && error.code === 'too_many_files',
    );
  });

  it('rejects multipart nested a thousand deep', () => {
    let body = 'Content-Type: text/plain\r\n\r\nx';
    for (let level = 0; level < 1000; level += 1) {
      body = `Content-Type: multipart/mixed; boundary="l${level}"\r\n\r\n--l${level}\r\n${body}\r\n--l${level}--`;
    }
    const input = Buffer.from(`From: a@b.example\r\nSubject: DMARC failure report\r\n${body}\r\n`);
    assert.throws(
      () => parseFailureReport(input),
      (error: unknown) => error instanceof ReportInputError && error.code === 'nesting_too_deep',
    );
  });

  it('raises only ReportInputError on mutated reports', () => {
    // A fixed-seed generator (mulberry32), so that a failure can be replayed.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let value = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
      return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
    };
    const sources = [
      fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.eml'),
      fixture('parsedmarc/failure/[Netease DMARC Failure Report] Rent Reminder.eml'),
      fixture('parsedmarc/failure/exim_plain_text_only_no_arf_part.eml'),
      fixture('mail-auth/arf/005.eml'),
    ];
    for (const source of sources) {
      for (let round = 0; round < 250; round += 1) {
        const bytes = Buffer.from(source);
        for (let change = 0; change < 1 + Math.floor(random() * 8); change += 1) {
          bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
        }
        try {
          parseFailureReport(bytes);
        } catch (error) {
          assert.ok(error instanceof ReportInputError, `round ${round}: ${String(error)}`);
        }
      }
    }
  });

  it('raises only ReportInputError on cut reports', () => {
    const input = fixture('parsedmarc/failure/dmarc_ruf_report_linkedin.eml');
    for (let cut = 0; cut < input.length; cut += 97) {
      try {
        parseFailureReport(input.subarray(0, cut));
      } catch (error) {
        assert.ok(error instanceof ReportInputError, `cut at ${cut}: ${String(error)}`);
      }
    }
  });
});
