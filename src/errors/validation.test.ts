import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openTestDatabase, type TestDatabase } from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  startService,
  type TestService,
} from '../../test/support/service.ts';

interface ErrorResponse {
  error: {
    code: string;
    message: string;
    field?: string;
    details?: { problems: Array<{ field: string; message: string }> };
  };
}

// Input is checked before any database query, so one database engine covers these routes.
describe('validation messages through the API', () => {
  let database: TestDatabase;
  let service: TestService;
  let api: ReturnType<typeof apiClient>;
  let domainId = '';

  /** Send a body as raw JSON text, to keep numbers that JSON.stringify would rewrite. */
  async function sendRaw(method: string, path: string, text: string) {
    return api(method, path, Buffer.from(text));
  }

  function problemFields(body: ErrorResponse): string[] {
    return body.error.details!.problems.map((problem) => problem.field);
  }

  before(async () => {
    database = await openTestDatabase('pglite');
    service = await startService(database);
    api = apiClient(service.url, (await createTestAccount(service.app)).token);
    const customer = await api('POST', '/customers', { name: 'Contoso' });
    assert.equal(customer.status, 201);
    const domain = await api('POST', `/customers/${customer.body.id}/domains`, {
      name: 'contoso.example',
    });
    assert.equal(domain.status, 201);
    domainId = domain.body.id;
  });

  after(async () => {
    await service?.stop();
    await database?.drop();
  });

  test('query number that is text', async () => {
    const response = await api<ErrorResponse>('GET', '/integrations/halopsa/sites?clientId=abc');

    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'validation_failed');
    assert.equal(response.body.error.field, 'clientId');
    assert.equal(
      response.body.error.message,
      'Query parameter "clientId": must be a whole number (got "abc").',
    );
    assert.doesNotMatch(response.body.error.message, /NaN|Invalid input/);
  });

  test('query number that is missing', async () => {
    const response = await api<ErrorResponse>('GET', '/integrations/halopsa/sites');

    assert.equal(response.status, 400);
    assert.equal(response.body.error.field, 'clientId');
    assert.equal(response.body.error.message, 'Query parameter "clientId": is required.');
  });

  test('missing body fields are required', async () => {
    const customer = await api<ErrorResponse>('POST', '/customers', {});
    assert.equal(customer.status, 400);
    assert.equal(customer.body.error.message, 'Field "name": is required.');

    const signIn = await api<ErrorResponse>('POST', '/auth/sign-in', { email: 'a@example.com' });
    assert.equal(signIn.status, 400);
    assert.equal(signIn.body.error.message, 'Field "password": is required.');
    assert.doesNotMatch(signIn.body.error.message, /undefined/);
  });

  test('huge offset names one limit', async () => {
    for (const path of ['/reports', '/alerts']) {
      const response = await api<ErrorResponse>('GET', `${path}?offset=99999999999999999999`);

      assert.equal(response.status, 400, path);
      assert.equal(
        response.body.error.message,
        'Query parameter "offset": must be at most 10000000 (got 99999999999999999999).',
        path,
      );
      assert.deepEqual(problemFields(response.body), ['offset'], path);
      assert.doesNotMatch(response.body.error.message, /9007199254740991/, path);
    }
  });

  test('permissions given as one string', async () => {
    const response = await api<ErrorResponse>('POST', '/api-tokens', {
      name: 'reader',
      permissions: 'reports.read',
    });

    assert.equal(response.status, 400);
    assert.equal(
      response.body.error.message,
      'Field "permissions": must be a list of permission names (got "reports.read").',
    );
    assert.deepEqual(problemFields(response.body), ['permissions']);
  });

  test('wrong type is not called missing', async () => {
    const response = await api<ErrorResponse>('PUT', '/integrations/halopsa/connection', {
      url: 5,
      clientId: [],
      clientSecret: 'unused-secret',
    });

    assert.equal(response.status, 400);
    assert.equal(response.body.error.field, 'url');
    assert.equal(response.body.error.message, 'Field "url": must be a string (got the number 5).');
    assert.deepEqual(response.body.error.details!.problems, [
      { field: 'url', message: 'must be a string (got the number 5)' },
      { field: 'clientId', message: 'must be a string (got a list)' },
    ]);
  });

  test('secret fields are never echoed', async () => {
    const wrongType = await api<ErrorResponse>('PUT', '/integrations/halopsa/connection', {
      url: 'https://halo.example',
      clientId: 'dmarcdesk',
      clientSecret: 424242,
    });
    assert.equal(wrongType.status, 400);
    assert.equal(
      wrongType.body.error.message,
      'Field "clientSecret": must be a string (got a number).',
    );

    const tooLong = await api<ErrorResponse>('PUT', '/integrations/halopsa/connection', {
      url: 'https://halo.example',
      clientId: 'dmarcdesk',
      clientSecret: 'hunter2'.repeat(400),
    });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.body.error.message, /^Field "clientSecret": must be at most 2000 /);
    assert.doesNotMatch(JSON.stringify(tooLong.body), /hunter2/);

    const password = await api<ErrorResponse>('POST', '/auth/sign-in', {
      email: 'a@example.com',
      password: 'hunter2'.repeat(200),
    });
    assert.equal(password.status, 400);
    assert.doesNotMatch(JSON.stringify(password.body), /hunter2/);
  });

  test('long selector names its limit', async () => {
    const response = await api<ErrorResponse>('PUT', `/domains/${domainId}/dns/selectors`, {
      selectors: ['s'.repeat(300)],
    });

    assert.equal(response.status, 400);
    assert.equal(response.body.error.field, 'selectors.0');
    assert.equal(
      response.body.error.message,
      'Field "selectors.0": must be at most 200 characters long (got 300 characters).',
    );
  });

  test('huge threshold names its limit', async () => {
    const response = await sendRaw(
      'PUT',
      `/domains/${domainId}/threshold`,
      '{"maxFailedMessages":99999999999999999999}',
    );
    const body = response.body as ErrorResponse;

    assert.equal(response.status, 400);
    assert.equal(
      body.error.message,
      'Field "maxFailedMessages": must be at most 1000000000 (got 100000000000000000000).',
    );
    assert.deepEqual(problemFields(body), ['maxFailedMessages']);
  });

  test('fraction for whole number', async () => {
    const response = await api<ErrorResponse>('PUT', `/domains/${domainId}/threshold`, {
      maxFailedMessages: 2.5,
      maxFailurePercent: 1.234,
    });

    assert.equal(response.status, 400);
    assert.deepEqual(response.body.error.details!.problems, [
      { field: 'maxFailedMessages', message: 'must be a whole number (got the number 2.5)' },
      { field: 'maxFailurePercent', message: 'must have at most 2 decimal places (got 1.234)' },
    ]);
  });

  test('enum echoes the value given', async () => {
    const response = await api<ErrorResponse>('PATCH', `/domains/${domainId}`, { status: 'x' });

    assert.equal(response.status, 400);
    assert.equal(
      response.body.error.message,
      'Field "status": must be one of active, pending, paused (got "x").',
    );

    const query = await api<ErrorResponse>('GET', '/incidents?status=shut');
    assert.equal(query.status, 400);
    assert.match(
      query.body.error.message,
      /^Query parameter "status": must be one of .* \(got "shut"\)\.$/,
    );
  });

  test('long value is shortened', async () => {
    const response = await api<ErrorResponse>('PATCH', `/domains/${domainId}`, {
      status: 'q'.repeat(500),
    });

    assert.equal(response.status, 400);
    const echoed = /\(got "(q+)…"\)/.exec(response.body.error.message);
    assert.ok(echoed, response.body.error.message);
    assert.equal(echoed[1]!.length, 59);
  });

  test('unknown field lists known ones', async () => {
    const response = await api<ErrorResponse>('PATCH', `/domains/${domainId}`, {
      status: 'active',
      colour: 'red',
    });

    assert.equal(response.status, 400);
    assert.equal(response.body.error.field, 'colour');
    assert.equal(
      response.body.error.message,
      'Field "colour": is not a known field (known: status); remove it.',
    );
  });

  test('path parameter that is no UUID', async () => {
    const response = await api<ErrorResponse>('GET', '/domains/not-a-uuid');

    assert.equal(response.status, 400);
    assert.equal(
      response.body.error.message,
      'Path parameter "id": must be a UUID (got "not-a-uuid").',
    );
  });

  test('body that is no object', async () => {
    const response = await api<ErrorResponse>('POST', '/customers', ['Contoso']);

    assert.equal(response.status, 400);
    assert.equal(response.body.error.field, '(root)');
    assert.equal(response.body.error.message, 'The request body must be an object (got a list).');
  });
});
