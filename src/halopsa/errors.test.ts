import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { afterEach, describe, test } from 'node:test';

import { Agent } from 'undici';

import type { HaloPsaErrorCode } from './errors.ts';
import { HaloPsaError } from './errors.ts';
import { mapNetworkError } from './network-errors.ts';
import type { HaloPermission } from './permissions.ts';
import { permissionFor } from './permissions.ts';
import type { FakeHalo, Handler, TestServer } from './test-support.ts';
import {
  closedPort,
  createTestClient,
  listPage,
  startFakeHalo,
  startServer,
  TEST_SECRET,
  TEST_TOKEN_PREFIX,
} from './test-support.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function server(handler: Handler): Promise<TestServer> {
  const started = await startServer(handler);
  cleanups.push(() => started.close());
  return started;
}

async function fakeHalo(routes: Record<string, Handler>): Promise<FakeHalo> {
  const halo = await startFakeHalo({ routes });
  cleanups.push(() => halo.server.close());
  return halo;
}

async function failureOf(promise: Promise<unknown>): Promise<HaloPsaError> {
  const error = await promise.then(
    () => assert.fail('expected a failure'),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof HaloPsaError, `expected a HaloPsaError, got ${String(error)}`);
  return error;
}

/** Starts a fake HaloPSA that returns `reply` on every API route, after a normal token. */
async function haloReplying(reply: ReturnType<Handler>): Promise<FakeHalo> {
  const handler: Handler = () => reply;
  return fakeHalo({
    'GET /api/client': handler,
    'GET /api/site': handler,
    'GET /api/tickets': handler,
    'POST /api/tickets': handler,
  });
}

describe('network failures', () => {
  test('closed port is connection_failed', async () => {
    const port = await closedPort();
    const { client, calls } = createTestClient(`http://127.0.0.1:${port}`);

    const error = await failureOf(client.checkConnection());

    assert.equal(error.code, 'connection_failed');
    assert.equal(error.retryable, true);
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.match(error.message, /refused/);
    assert.ok(error.cause instanceof Error);
    assert.deepEqual(
      calls.map((call) => [call.method, call.path, call.status, call.errorCode]),
      [['POST', '/auth/token', null, 'connection_failed']],
    );
  });

  test('socket closed without an answer is connection_failed', async () => {
    const halo = await server(() => ({ destroy: true }));
    const { client } = createTestClient(halo.url);

    const error = await failureOf(client.getAccessToken());

    assert.equal(error.code, 'connection_failed');
    assert.match(error.message, /closed/);
  });

  test('https to a plain http server is tls_failed', async () => {
    const halo = await server(() => ({ json: {} }));
    const { client } = createTestClient(halo.url.replace('http:', 'https:'));

    const error = await failureOf(client.getAccessToken());

    assert.equal(error.code, 'tls_failed');
    assert.equal(error.retryable, false);
    assert.match(error.message, /TLS connection to 127\.0\.0\.1/);
  });

  test('DNS failure is host_not_found naming the host', async () => {
    // The lookup hook fails like getaddrinfo does, so no DNS query leaves this machine.
    const lookups: string[] = [];
    const agent = new Agent({
      connect: {
        lookup(
          hostname: string,
          _options: unknown,
          callback: (error: NodeJS.ErrnoException | null, address: LookupAddress[]) => void,
        ) {
          lookups.push(hostname);
          const error: NodeJS.ErrnoException & { hostname?: string } = new Error(
            `getaddrinfo ENOTFOUND ${hostname}`,
          );
          error.code = 'ENOTFOUND';
          error.hostname = hostname;
          callback(error, []);
        },
      },
    });
    cleanups.push(() => agent.close());
    const { client } = createTestClient('https://no-such-tenant.halopsa.test', {
      dispatcher: agent,
    });

    const error = await failureOf(client.getAccessToken());

    assert.deepEqual(lookups, ['no-such-tenant.halopsa.test']);
    assert.equal(error.code, 'host_not_found');
    assert.equal(error.retryable, false);
    assert.match(error.message, /host name no-such-tenant\.halopsa\.test could not be found/);
  });

  test('a hanging server is timeout', async () => {
    const halo = await server(() => ({ hang: true }));
    const { client, calls } = createTestClient(halo.url, { timeoutMs: 200 });

    const error = await failureOf(client.getAccessToken());

    assert.equal(error.code, 'timeout');
    assert.equal(error.retryable, true);
    assert.match(error.message, /POST \/auth\/token on 127\.0\.0\.1:\d+ timed out after 200 ms/);
    assert.equal(calls[0]?.errorCode, 'timeout');
  });
});

describe('mapNetworkError', () => {
  const context = { host: 'acme.halopsa.com', method: 'GET', path: '/api/Client' };

  function coded(code: string, extra: Record<string, unknown> = {}): Error {
    return Object.assign(new Error(`failure ${code}`), { code, ...extra });
  }

  const cases: [string, Error, HaloPsaErrorCode, boolean][] = [
    ['ENOTFOUND', coded('ENOTFOUND', { hostname: 'acme.halopsa.com' }), 'host_not_found', false],
    ['EAI_AGAIN', coded('EAI_AGAIN'), 'host_not_found', true],
    ['ECONNREFUSED', coded('ECONNREFUSED'), 'connection_failed', true],
    ['ECONNRESET', coded('ECONNRESET'), 'connection_failed', true],
    ['UND_ERR_SOCKET', coded('UND_ERR_SOCKET'), 'connection_failed', true],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', coded('DEPTH_ZERO_SELF_SIGNED_CERT'), 'tls_failed', false],
    ['CERT_HAS_EXPIRED', coded('CERT_HAS_EXPIRED'), 'tls_failed', false],
    ['ERR_TLS_CERT_ALTNAME_INVALID', coded('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls_failed', false],
    [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      coded('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
      'tls_failed',
      false,
    ],
    ['UND_ERR_CONNECT_TIMEOUT', coded('UND_ERR_CONNECT_TIMEOUT'), 'timeout', true],
    ['UND_ERR_HEADERS_TIMEOUT', coded('UND_ERR_HEADERS_TIMEOUT'), 'timeout', true],
    [
      'fetch-style cause',
      new TypeError('fetch failed', { cause: coded('ENOTFOUND') }),
      'host_not_found',
      false,
    ],
    [
      'AggregateError',
      new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'all addresses failed'),
      'connection_failed',
      true,
    ],
    ['unknown', new Error('something else'), 'connection_failed', true],
  ];

  for (const [name, error, code, retryable] of cases) {
    test(`${name} maps to ${code}`, () => {
      const mapped = mapNetworkError(error, context);
      assert.equal(mapped.code, code);
      assert.equal(mapped.retryable, retryable);
      assert.equal(mapped.cause, error);
    });
  }

  test('certificate reasons are named', () => {
    assert.match(
      mapNetworkError(coded('CERT_HAS_EXPIRED'), context).message,
      /certificate has expired/,
    );
    assert.match(
      mapNetworkError(coded('ERR_TLS_CERT_ALTNAME_INVALID'), context).message,
      /does not cover this host name/,
    );
  });

  test('host_not_found names the host', () => {
    const mapped = mapNetworkError(coded('ENOTFOUND', { hostname: 'acme.halopsa.com' }), context);
    assert.match(mapped.message, /acme\.halopsa\.com could not be found/);
  });
});

describe('not HaloPSA', () => {
  test('an HTML web site is not_halopsa', async () => {
    const site = await server(() => ({
      headers: { 'content-type': 'text/html; charset=utf-8' },
      text: '<!DOCTYPE html><html><body>Welcome to our shop</body></html>',
    }));
    const { client } = createTestClient(site.url);

    const error = await failureOf(client.checkConnection());

    assert.equal(error.code, 'not_halopsa');
    assert.match(
      error.message,
      /^The server at 127\.0\.0\.1:\d+ does not look like a HaloPSA instance/,
    );
    assert.match(error.message, /Check the URL, for example https:\/\/yourcompany\.halopsa\.com\./);
  });

  test('HTML from an API route is not_halopsa', async () => {
    const halo = await haloReplying({
      headers: { 'content-type': 'text/html' },
      text: '<html></html>',
    });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());
    assert.equal(error.code, 'not_halopsa');
  });

  test('404 on a list route is not_halopsa', async () => {
    const halo = await fakeHalo({});
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.checkConnection());
    assert.equal(error.code, 'not_halopsa');
    assert.equal(error.status, 404);
  });

  test('501 to the token request is not_halopsa', async () => {
    // python3 -m http.server returns a page like this for every POST.
    const files = await server(() => ({
      status: 501,
      headers: { 'content-type': 'text/html;charset=utf-8' },
      text: '<html><body><h1>Error response</h1><p>Error code: 501</p></body></html>',
    }));
    const { client } = createTestClient(files.url);

    const error = await failureOf(client.checkConnection());

    assert.equal(error.code, 'not_halopsa');
    assert.equal(error.status, 501);
    assert.equal(error.retryable, false);
    assert.match(error.message, /does not look like a HaloPSA instance/);
    assert.match(
      error.message,
      /does not implement POST \/auth\/token \(HTTP 501 Not Implemented\)/,
    );
    assert.doesNotMatch(error.message, /try again later/i);
  });

  test('505 from an API route is not_halopsa', async () => {
    const halo = await haloReplying({ status: 505, text: 'HTTP Version Not Supported' });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());

    assert.equal(error.code, 'not_halopsa');
    assert.equal(error.status, 505);
    assert.equal(error.retryable, false);
    assert.match(error.message, /does not support the HTTP version of the request \(HTTP 505\)/);
  });

  test('a redirect is not followed', async () => {
    const halo = await haloReplying({
      status: 302,
      headers: { location: 'https://login.example.net/sso?token=abc' },
    });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());
    assert.equal(error.code, 'not_halopsa');
    assert.match(error.message, /redirect \(HTTP 302\) to login\.example\.net/);
    assert.doesNotMatch(error.message, /token=abc/);
    assert.equal(halo.apiRequests().length, 1);
  });
});

describe('403 permission_missing', () => {
  const cases: [
    string,
    HaloPermission,
    (client: ReturnType<typeof createTestClient>['client']) => Promise<unknown>,
  ][] = [
    ['GET /api/client', 'read:customers', (client) => client.listClients()],
    ['GET /api/site', 'read:customers', (client) => client.listSites()],
    ['GET /api/users', 'read:customers', (client) => client.listUsers()],
    ['GET /api/item', 'read:items', (client) => client.listItems()],
    ['GET /api/softwarelicence', 'read:softwarelicensing', (client) => client.listLicences()],
    ['GET /api/softwarelicence/3', 'read:softwarelicensing', (client) => client.getLicence(3)],
    [
      'POST /api/softwarelicence',
      'edit:softwarelicensing',
      (client) => client.saveLicences([{ client_id: 1, count: 1 }]),
    ],
    ['GET /api/tickets', 'read:tickets', (client) => client.findTicketsByThirdPartyId('a')],
    ['GET /api/tickets/3', 'read:tickets', (client) => client.getTicket(3)],
    ['GET /api/tickettype', 'read:tickets', (client) => client.listTicketTypes()],
    [
      'POST /api/tickets',
      'edit:tickets',
      (client) => client.createTickets([{ summary: 's', tickettype_id: 1, client_id: 1 }]),
    ],
    [
      'POST /api/actions',
      'edit:tickets',
      (client) => client.addActions([{ ticket_id: 1, outcome_id: 7 }]),
    ],
  ];

  for (const [route, permission, call] of cases) {
    test(`${route} names ${permission}`, async () => {
      const halo = await fakeHalo({
        [route]: () => ({ status: 403, json: { message: 'Forbidden' } }),
      });
      const { client } = createTestClient(halo.server.url);

      const error = await failureOf(call(client));

      assert.equal(error.code, 'permission_missing');
      assert.equal(error.permission, permission);
      assert.equal(error.status, 403);
      assert.equal(error.retryable, false);
      assert.match(error.message, new RegExp(`the permission ${permission} is missing`));
      assert.match(error.message, /API application's permissions in HaloPSA/);
      assert.match(error.message, /role of the agent/);
    });
  }

  test('POST to Client, Site and Users needs edit:customers', () => {
    assert.equal(permissionFor('POST', 'Client'), 'edit:customers');
    assert.equal(permissionFor('POST', 'Site'), 'edit:customers');
    assert.equal(permissionFor('POST', 'users'), 'edit:customers');
    assert.equal(permissionFor('GET', 'Unknown'), undefined);
  });
});

describe('429 rate_limited', () => {
  const limitMessage = 'Rate Limit Reached - 300 Requests per rolling 5 minute window';

  test('honours Retry-After in seconds', async () => {
    const halo = await haloReplying({
      status: 429,
      headers: { 'retry-after': '42' },
      json: { Message: limitMessage },
    });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());

    assert.equal(error.code, 'rate_limited');
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterSeconds, 42);
    assert.equal(error.detail, limitMessage);
    assert.match(error.message, /Rate Limit Reached - 300 Requests/);
    assert.match(error.message, /Retry after 42 seconds/);
  });

  test('reads Retry-After as an HTTP date', async () => {
    const nowMs = Date.parse('2026-12-04T10:00:00Z');
    const halo = await haloReplying({
      status: 429,
      headers: { 'retry-after': 'Fri, 04 Dec 2026 10:01:30 GMT' },
      json: { Message: limitMessage },
    });
    const { client } = createTestClient(halo.server.url, { now: () => nowMs });

    const error = await failureOf(client.listClients());
    assert.equal(error.retryAfterSeconds, 90);
  });

  test('without Retry-After suggests the rolling window', async () => {
    const halo = await haloReplying({ status: 429, json: { Message: limitMessage } });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());

    assert.equal(error.code, 'rate_limited');
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterSeconds, undefined);
    assert.match(error.message, /rolling 5-minute window/);
  });
});

describe('400 validation_failed', () => {
  const styles: [string, unknown, string][] = [
    [
      'model-state dictionary',
      { '[0].tickettype_id': ['The tickettype_id field is required.'] },
      '[0].tickettype_id: The tickettype_id field is required.',
    ],
    [
      '.NET exception',
      {
        ClassName: 'System.Exception',
        Message: 'An Outcome must be entered for this Action',
        StackTrace: null,
      },
      'An Outcome must be entered for this Action',
    ],
    [
      'resultCode and errorMessage',
      { resultCode: 1, errorMessage: 'CODE:APP03/2 Please select the CAB members to approve' },
      'CODE:APP03/2 Please select the CAB members to approve',
    ],
    [
      'ProblemDetails errors',
      {
        title: 'One or more validation errors occurred.',
        errors: { '[0].site_id': ['Invalid site.'] },
      },
      '[0].site_id: Invalid site.',
    ],
  ];

  for (const [style, body, expected] of styles) {
    test(`extracts the message from a ${style}`, async () => {
      const halo = await haloReplying({ status: 400, json: body });
      const { client } = createTestClient(halo.server.url);

      const error = await failureOf(
        client.createTickets([{ summary: 's', tickettype_id: 1, client_id: 1 }]),
      );

      assert.equal(error.code, 'validation_failed');
      assert.equal(error.status, 400);
      assert.equal(error.retryable, false);
      assert.equal(error.detail, expected);
      const sentence = expected.endsWith('.') ? expected : `${expected}.`;
      assert.equal(error.message, `HaloPSA rejected POST /api/Tickets as invalid: ${sentence}`);
    });
  }

  test('extracts a plain string body', async () => {
    const halo = await haloReplying({ status: 400, text: 'Invalid advanced search parameter' });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.findTicketsByThirdPartyId('a'));
    assert.equal(error.code, 'validation_failed');
    assert.equal(error.detail, 'Invalid advanced search parameter');
  });

  test('extracts a JSON string body', async () => {
    const halo = await haloReplying({
      status: 400,
      json: 'You do not have access to this Action at the moment',
    });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());
    assert.equal(error.detail, 'You do not have access to this Action at the moment');
  });

  test('an empty body still says what was rejected', async () => {
    const halo = await haloReplying({ status: 400, text: '' });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listSites());
    assert.equal(error.detail, undefined);
    assert.match(error.message, /HaloPSA rejected GET \/api\/Site as invalid with HTTP 400/);
  });
});

describe('other statuses', () => {
  for (const status of [500, 502, 503, 504]) {
    test(`${status} is a retryable server_error`, async () => {
      const halo = await haloReplying({ status, text: 'Gateway Timeout' });
      const { client } = createTestClient(halo.server.url);

      const error = await failureOf(client.listClients());

      assert.equal(error.code, 'server_error');
      assert.equal(error.status, status);
      assert.equal(error.retryable, true);
      assert.match(error.message, new RegExp(`HTTP ${status}`));
    });
  }

  test('404 on an update target is not_found', async () => {
    const halo = await fakeHalo({
      'POST /api/softwarelicence': () => ({
        status: 404,
        json: { message: 'Licence 3 not found' },
      }),
    });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.saveLicences([{ id: 3, count: 1 }]));

    assert.equal(error.code, 'not_found');
    assert.equal(error.status, 404);
    assert.equal(error.detail, 'Licence 3 not found');
    assert.match(error.message, /HaloPSA has no record for POST \/api\/SoftwareLicence/);
  });

  test('415 is unexpected_response with the status', async () => {
    const halo = await haloReplying({ status: 415, json: { message: 'Unsupported Media Type' } });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());
    assert.equal(error.code, 'unexpected_response');
    assert.equal(error.status, 415);
    assert.match(error.message, /HTTP 415/);
  });

  test('a record missing a required field is unexpected_response', async () => {
    const halo = await haloReplying({ json: listPage('clients', [{ id: 1 }]) });
    const { client } = createTestClient(halo.server.url);

    const error = await failureOf(client.listClients());
    assert.equal(error.code, 'unexpected_response');
    assert.match(error.message, /client record is invalid \(name:/);
  });
});

describe('secrets', () => {
  test('never appear in messages, records or logs', async () => {
    // Each route echoes everything it received, as a careless server might.
    const echo: Handler = (request) => ({
      status: 400,
      json: { Message: `Bad request with ${request.headers.authorization} ${request.body}` },
    });
    const halo = await fakeHalo({
      'GET /api/client': echo,
      'POST /api/tickets': echo,
      'GET /api/site': (request) => ({
        status: 429,
        json: { Message: String(request.headers.authorization) },
      }),
      'GET /api/users': (request) => ({ status: 500, text: String(request.headers.authorization) }),
    });
    const { client, calls, logLines } = createTestClient(halo.server.url);

    const errors = [
      await failureOf(client.listClients()),
      await failureOf(
        client.createTickets([{ summary: TEST_SECRET, tickettype_id: 1, client_id: 1 }]),
      ),
      await failureOf(client.listSites()),
      await failureOf(client.listUsers()),
    ];

    const token = `${TEST_TOKEN_PREFIX}1`;
    assert.equal(await client.getAccessToken(), token);
    for (const error of errors) {
      assert.ok(!error.message.includes(TEST_SECRET), error.message);
      assert.ok(!error.message.includes(token), error.message);
      assert.ok(!(error.detail ?? '').includes(token));
      assert.ok(!(error.detail ?? '').includes(TEST_SECRET));
    }
    assert.match(errors[0]?.detail ?? '', /\[redacted\]/);
    const recorded = JSON.stringify(calls);
    assert.ok(!recorded.includes(TEST_SECRET));
    assert.ok(!recorded.includes(token));
    assert.ok(calls.some((call) => call.path === '/auth/token'));
    const logged = logLines.join('');
    assert.ok(logLines.length > 0);
    assert.ok(!logged.includes(TEST_SECRET));
    assert.ok(!logged.includes(token));
  });

  test('a token endpoint echo is redacted', async () => {
    const halo = await server((request) => ({
      status: 401,
      json: { error: 'invalid_client', error_description: `Unknown client ${request.body}` },
    }));
    const { client, calls } = createTestClient(halo.url);

    const error = await failureOf(client.getAccessToken());

    assert.equal(error.code, 'invalid_credentials');
    assert.ok(!error.message.includes(TEST_SECRET));
    assert.ok(!(error.detail ?? '').includes(TEST_SECRET));
    assert.match(error.detail ?? '', /\[redacted\]/);
    assert.ok(!JSON.stringify(calls).includes(TEST_SECRET));
  });
});
