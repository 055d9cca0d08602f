import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../config/config.ts';

const ACCOUNT = '3f0c8a52-6b1e-4c55-9d7a-0a3e51f2b9c4';

/** Return the problems that loadConfig lists for the environment, or [] when it is valid. */
function problemsOf(environment: Record<string, string>): string[] {
  try {
    loadConfig(environment);
    return [];
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
}

describe('receiver settings', () => {
  it('keep every receiver off by default', () => {
    const config = loadConfig({});
    assert.equal(config.smtp, null);
    assert.equal(config.imap, null);
    assert.equal(config.watch, null);
    assert.equal(config.receivingAddress, null);
    assert.equal(config.keepFailureMessages, false);
    assert.equal(config.rejectedKeepBytes, 1024 * 1024);
    assert.equal(config.maxMailBytes, 32 * 1024 * 1024);
  });

  it('read the SMTP receiver', () => {
    const config = loadConfig({
      DMARCDESK_SMTP_PORT: '2525',
      DMARCDESK_RECEIVING_DOMAIN: 'DMARC.Example.NET',
      DMARCDESK_SMTP_TLS_CERT: '/etc/dmarcdesk/cert.pem',
      DMARCDESK_SMTP_TLS_KEY: '/etc/dmarcdesk/key.pem',
    });
    assert.deepEqual(config.receivingAddress, {
      domain: 'dmarc.example.net',
      localPart: 'reports',
    });
    assert.deepEqual(config.smtp, {
      host: '127.0.0.1',
      port: 2525,
      tls: { certPath: '/etc/dmarcdesk/cert.pem', keyPath: '/etc/dmarcdesk/key.pem' },
    });
  });

  it('read an IMAP URL', () => {
    const config = loadConfig({
      DMARCDESK_IMAP_URL: 'imaps://dmarc%40example.net:p%40ss@imap.example.net/Reports%20In',
      DMARCDESK_IMAP_ACCOUNT_ID: ACCOUNT,
    });
    assert.equal(config.imap?.host, 'imap.example.net');
    assert.equal(config.imap?.port, 993);
    assert.equal(config.imap?.secure, true);
    assert.equal(config.imap?.user, 'dmarc@example.net');
    assert.equal(config.imap?.password, 'p@ss');
    assert.equal(config.imap?.mailbox, 'Reports In');
    assert.equal(config.imap?.accountId, ACCOUNT);
    assert.equal(config.imap?.requireTls, true);
    assert.equal(config.imap?.pollSeconds, 300);
  });

  it('default the IMAP port and mailbox', () => {
    const config = loadConfig({
      DMARCDESK_IMAP_URL: 'imap://user:secret@127.0.0.1',
      DMARCDESK_RECEIVING_DOMAIN: 'dmarc.example.net',
    });
    assert.equal(config.imap?.port, 143);
    assert.equal(config.imap?.secure, false);
    assert.equal(config.imap?.mailbox, 'INBOX');
    assert.equal(config.imap?.accountId, null);
  });

  it('name every invalid combination', () => {
    const problems = problemsOf({
      DMARCDESK_SMTP_PORT: '25',
      DMARCDESK_SMTP_TLS_CERT: '/etc/cert.pem',
      DMARCDESK_IMAP_URL: 'imap://user:secret@imap.example.net',
      DMARCDESK_WATCH_DIR: '/var/spool/dmarc',
    });
    assert.equal(problems.length, 4);
    assert.match(problems[0]!, /^DMARCDESK_RECEIVING_DOMAIN must be set when DMARCDESK_SMTP_PORT/);
    assert.match(problems[1]!, /^DMARCDESK_IMAP_ACCOUNT_ID or DMARCDESK_RECEIVING_DOMAIN/);
    assert.match(
      problems[2]!,
      /DMARCDESK_SMTP_TLS_CERT and DMARCDESK_SMTP_TLS_KEY must be set together/,
    );
    assert.match(problems[3]!, /^DMARCDESK_WATCH_ACCOUNT_ID must be set/);
  });

  it('reject a URL that is no IMAP URL', () => {
    const problems = problemsOf({ DMARCDESK_IMAP_URL: 'https://imap.example.net' });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^DMARCDESK_IMAP_URL must be an IMAP URL with user and password/);
  });

  it('reject an account id that is no UUID', () => {
    const problems = problemsOf({
      DMARCDESK_WATCH_DIR: '/var/spool/dmarc',
      DMARCDESK_WATCH_ACCOUNT_ID: 'northwind',
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^DMARCDESK_WATCH_ACCOUNT_ID must be the UUID of an MSSP account/);
  });
});
