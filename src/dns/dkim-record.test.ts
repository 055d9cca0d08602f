import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';

import { checkDkimKey, dkimKeyName, parseDkimKey } from './dkim-record.ts';
import { longTxt, txt, useTestDns } from './test-dns.ts';

const startDns = useTestDns();

function rsaKey(bits: number, type: 'spki' | 'pkcs1' = 'spki'): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return publicKey.export({ type, format: 'der' }).toString('base64');
}

function ed25519Key(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  // The last 32 bytes of the SubjectPublicKeyInfo are the raw key RFC 8463 publishes.
  return publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
}

const rsa2048 = rsaKey(2048);
const rsa1024 = rsaKey(1024);
const rsa512 = rsaKey(512);

function codes(text: string): string[] {
  return parseDkimKey(text).findings.map((item) => item.code);
}

describe('DKIM key records', () => {
  test('accepts a 2048-bit RSA key', () => {
    const key = parseDkimKey(`v=DKIM1; k=rsa; p=${rsa2048}`);

    assert.equal(key.status, 'valid');
    assert.equal(key.keyType, 'rsa');
    assert.equal(key.keyBits, 2048);
    assert.equal(
      key.fingerprint,
      createHash('sha256').update(Buffer.from(rsa2048, 'base64')).digest('hex'),
    );
    assert.deepEqual(key.findings, []);
  });

  test('reads a revoked key as revoked, not malformed', () => {
    for (const text of ['v=DKIM1; p=', 'v=DKIM1; k=rsa; p= ;']) {
      const key = parseDkimKey(text);
      assert.equal(key.status, 'revoked', text);
      assert.deepEqual(
        key.findings.map((item) => item.code),
        ['dkim_revoked'],
        text,
      );
    }
  });

  test('accepts a record without v=', () => {
    const key = parseDkimKey(`k=rsa; t=s; p=${rsa2048}`);

    assert.equal(key.status, 'valid');
    assert.equal(key.strict, true);
    assert.equal(key.testing, false);
  });

  test('warns about test mode', () => {
    const key = parseDkimKey(`v=DKIM1; t=y; k=rsa; p=${rsa2048}`);

    assert.equal(key.status, 'valid');
    assert.equal(key.testing, true);
    assert.deepEqual(
      key.findings.map((item) => item.code),
      ['dkim_testing'],
    );
  });

  test('judges key type and strength', () => {
    const ed25519 = parseDkimKey(`v=DKIM1; k=ed25519; p=${ed25519Key()}`);
    const short = parseDkimKey(`v=DKIM1; p=${rsa1024}`);
    const weak = parseDkimKey(`v=DKIM1; p=${rsa512}`);
    const sha1 = parseDkimKey(`v=DKIM1; h=sha1; p=${rsa2048}`);
    const both = parseDkimKey(`v=DKIM1; h=sha1:sha256; p=${rsa2048}`);

    assert.equal(ed25519.status, 'valid');
    assert.equal(ed25519.keyBits, null);
    assert.equal(short.status, 'valid');
    assert.deepEqual(
      short.findings.map((item) => item.code),
      ['dkim_short_key'],
    );
    assert.equal(weak.status, 'unusable');
    assert.equal(weak.keyBits, 512);
    assert.deepEqual(
      weak.findings.map((item) => item.code),
      ['dkim_weak_key'],
    );
    assert.equal(sha1.status, 'unusable');
    assert.deepEqual(
      sha1.findings.map((item) => item.code),
      ['dkim_sha1_only'],
    );
    assert.equal(both.status, 'valid');
  });

  test('rejects an Ed25519 key of the wrong length', () => {
    const key = parseDkimKey(`v=DKIM1; k=ed25519; p=${rsa2048}`);

    assert.equal(key.status, 'invalid');
    assert.match(key.findings[0]?.message ?? '', /Ed25519 key is 294 bytes long instead of 32/);
  });

  test('accepts whitespace inside p= and a PKCS#1 key with a warning', () => {
    const spaced = rsa2048.replace(/(.{60})/g, '$1 ');
    const key = parseDkimKey(`v=DKIM1; p=${spaced}`);
    const pkcs1 = parseDkimKey(`v=DKIM1; p=${rsaKey(2048, 'pkcs1')}`);

    assert.equal(key.status, 'valid');
    assert.equal(key.keyBits, 2048);
    assert.equal(pkcs1.status, 'valid');
    assert.deepEqual(
      pkcs1.findings.map((item) => item.code),
      ['dkim_pkcs1_key'],
    );
  });

  test('rejects malformed records', () => {
    const cases: [string, RegExp][] = [
      [`k=rsa; v=DKIM1; p=${rsa2048}`, /v= tag is not the first tag/],
      [`v=DKIM2; p=${rsa2048}`, /version "DKIM2" is not DKIM1/],
      [`v=DKIM1; p=${rsa2048}; p=${rsa2048}`, /"p" appears more than once/],
      ['v=DKIM1; k=rsa', /no p= tag/],
      ['v=DKIM1; p=not*base64', /not valid base64/],
      ['v=DKIM1; p=AAAA', /not an RSA public key/],
      [`v=DKIM1;; p=${rsa2048}`, /empty tag/],
    ];
    for (const [text, pattern] of cases) {
      const key = parseDkimKey(text);
      assert.equal(key.status, 'invalid', text);
      assert.match(key.findings[0]?.message ?? '', pattern, text);
    }
  });

  test('keeps tag names case-sensitive', () => {
    const key = parseDkimKey(`v=DKIM1; P=${rsa2048}`);

    assert.equal(key.status, 'invalid');
    assert.match(key.findings[0]?.message ?? '', /no p= tag/);
  });

  test('marks unknown key types and other services unusable', () => {
    assert.deepEqual(codes(`v=DKIM1; k=dsa; p=${rsa2048}`), ['dkim_unknown_key_type']);
    assert.deepEqual(codes(`v=DKIM1; s=tlsrpt; p=${rsa2048}`), ['dkim_service_type']);
    assert.deepEqual(codes(`v=DKIM1; s=email:tlsrpt; p=${rsa2048}`), []);
  });
});

describe('DKIM key lookup', () => {
  test('fetches a key split over several strings', async () => {
    const { resolver } = await startDns({
      's1._domainkey.example.com': longTxt(`v=DKIM1; k=rsa; p=${rsa2048}`),
    });

    const evaluation = await checkDkimKey('s1', 'Example.com', resolver);

    assert.equal(evaluation.name, 's1._domainkey.example.com');
    assert.equal(evaluation.key?.status, 'valid');
    assert.equal(evaluation.key?.keyBits, 2048);
  });

  test('follows a CNAME to the provider', async () => {
    const { resolver } = await startDns({
      'selector1._domainkey.example.com': [
        { type: 'CNAME', target: 'selector1-example-com._domainkey.tenant.provider.net' },
      ],
      'selector1-example-com._domainkey.tenant.provider.net': txt(`v=DKIM1; k=rsa; p=${rsa1024}`),
    });

    const evaluation = await checkDkimKey('selector1', 'example.com', resolver);

    assert.equal(evaluation.key?.status, 'valid');
    assert.deepEqual(evaluation.outcome.cnameChain, [
      'selector1-example-com._domainkey.tenant.provider.net',
    ]);
    assert.deepEqual(
      evaluation.findings.map((item) => item.code),
      ['dkim_cname', 'dkim_short_key'],
    );
  });

  test('reports a missing key, unrelated TXT and several keys', async () => {
    const { resolver } = await startDns({
      'other._domainkey.example.com': txt('some-verification=1'),
      'two._domainkey.example.com': [
        ...longTxt(`v=DKIM1; p=${rsa2048}`),
        ...longTxt(`v=DKIM1; p=${rsa1024}`),
      ],
    });

    const missing = await checkDkimKey('gone', 'example.com', resolver);
    const unrelated = await checkDkimKey('other', 'example.com', resolver);
    const two = await checkDkimKey('two', 'example.com', resolver);

    assert.equal(missing.outcome.status, 'nxdomain');
    assert.equal(missing.key, null);
    assert.deepEqual(
      unrelated.findings.map((item) => item.code),
      ['dkim_no_key'],
    );
    assert.equal(two.keys.length, 2);
    assert.ok(two.findings.some((item) => item.code === 'dkim_multiple_keys'));
  });

  test('builds the key name', () => {
    assert.equal(dkimKeyName('S1', 'Example.COM.'), 's1._domainkey.example.com');
  });
});
