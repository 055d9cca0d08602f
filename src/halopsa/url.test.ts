import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { HaloPsaError } from './errors.ts';
import { buildApiUrl, buildTokenUrl, parseInstanceUrl } from './url.ts';

function invalid(input: string): HaloPsaError {
  try {
    parseInstanceUrl(input);
  } catch (error) {
    assert.ok(error instanceof HaloPsaError);
    assert.equal(error.code, 'invalid_url');
    return error;
  }
  assert.fail(`expected ${JSON.stringify(input)} to be rejected`);
}

describe('parseInstanceUrl', () => {
  const accepted: [string, string][] = [
    ['https://acme.halopsa.com', 'https://acme.halopsa.com/'],
    ['  https://acme.halopsa.com/  ', 'https://acme.halopsa.com/'],
    ['https://acme.halopsa.com/api', 'https://acme.halopsa.com/'],
    ['https://acme.halopsa.com/api/', 'https://acme.halopsa.com/'],
    ['https://acme.halopsa.com/API', 'https://acme.halopsa.com/'],
    ['https://acme.halopsa.com/auth//', 'https://acme.halopsa.com/'],
    ['HTTPS://ACME.HaloPSA.com', 'https://acme.halopsa.com/'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080/'],
    ['https://halo.example.org/helpdesk/api', 'https://halo.example.org/helpdesk'],
    ['https://halo.example.org/apis', 'https://halo.example.org/apis'],
    ['https://bücher.example/api', 'https://xn--bcher-kva.example/'],
  ];

  for (const [input, expected] of accepted) {
    test(`normalises ${JSON.stringify(input)}`, () => {
      assert.equal(parseInstanceUrl(input).href, expected);
    });
  }

  test('strips only one trailing segment', () => {
    assert.equal(
      parseInstanceUrl('https://acme.halopsa.com/api/auth').href,
      'https://acme.halopsa.com/api',
    );
  });

  test('rejects an empty value', () => {
    assert.match(invalid('   ').message, /is empty/);
  });

  test('rejects a missing scheme', () => {
    const error = invalid('acme.halopsa.com');
    assert.match(error.message, /"acme\.halopsa\.com" must start with https:\/\//);
    assert.match(error.message, /for example https:\/\/yourcompany\.halopsa\.com/);
  });

  test('rejects other schemes', () => {
    assert.match(
      invalid('ftp://acme.halopsa.com').message,
      /uses ftp:\/\/, but only https and http/,
    );
    assert.match(invalid('javascript://acme.halopsa.com').message, /only https and http/);
  });

  test('rejects credentials without echoing them', () => {
    const error = invalid('https://admin:hunter2@acme.halopsa.com');
    assert.match(error.message, /user name or password/);
    assert.doesNotMatch(error.message, /hunter2/);
    assert.doesNotMatch(invalid('admin:hunter2@acme.halopsa.com').message, /hunter2/);
  });

  test('rejects a query string', () => {
    const error = invalid('https://acme.halopsa.com/?key=abc');
    assert.match(error.message, /query string/);
    assert.doesNotMatch(error.message, /abc/);
    assert.match(invalid('https://acme.halopsa.com?').message, /query string/);
  });

  test('rejects a fragment', () => {
    assert.match(invalid('https://acme.halopsa.com/#login').message, /fragment/);
    assert.match(invalid('https://acme.halopsa.com#').message, /fragment/);
  });

  test('rejects malformed hosts', () => {
    assert.match(invalid('https://acme .halopsa.com').message, /not a valid URL/);
    assert.match(invalid('https://').message, /not a valid URL/);
  });
});

describe('buildTokenUrl', () => {
  const instance = parseInstanceUrl('https://acme.halopsa.com');

  test('defaults to /auth/token', () => {
    assert.equal(buildTokenUrl(instance).href, 'https://acme.halopsa.com/auth/token');
  });

  test('adds tenant as a query parameter', () => {
    assert.equal(
      buildTokenUrl(instance, undefined, 'acme').href,
      'https://acme.halopsa.com/auth/token?tenant=acme',
    );
  });

  test('appends /token to an authorisation server', () => {
    assert.equal(
      buildTokenUrl(instance, 'https://uk-trial.halopsa.com/', 'acme').href,
      'https://uk-trial.halopsa.com/token?tenant=acme',
    );
    assert.equal(
      buildTokenUrl(instance, 'https://acme.halopsa.com/auth/token').href,
      'https://acme.halopsa.com/auth/token',
    );
  });

  test('keeps a subpath of the instance', () => {
    const below = parseInstanceUrl('https://halo.example.org/helpdesk/');
    assert.equal(buildTokenUrl(below).href, 'https://halo.example.org/helpdesk/auth/token');
    assert.equal(
      buildApiUrl(below, 'Tickets/5').href,
      'https://halo.example.org/helpdesk/api/Tickets/5',
    );
  });

  test('rejects a bad authorisation server URL', () => {
    assert.throws(() => buildTokenUrl(instance, 'not a url'), { code: 'invalid_url' });
    assert.throws(() => buildTokenUrl(instance, 'https://user:pw@auth.example.com'), {
      code: 'invalid_url',
      message: /user name or password/,
    });
    assert.throws(() => buildTokenUrl(instance, 'file:///etc/passwd'), { code: 'invalid_url' });
  });
});

describe('buildApiUrl', () => {
  test('leaves out undefined parameters', () => {
    const url = buildApiUrl(parseInstanceUrl('https://acme.halopsa.com'), 'Client', {
      search: 'a&b',
      includeinactive: undefined,
      page_no: 2,
      pageinate: true,
    });
    assert.equal(
      url.href,
      'https://acme.halopsa.com/api/Client?search=a%26b&page_no=2&pageinate=true',
    );
  });
});
