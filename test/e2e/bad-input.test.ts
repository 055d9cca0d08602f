import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import { DATABASE_ENGINES, openTestDatabase, type TestDatabase } from '../support/databases.ts';
import {
  apiClient,
  createTestAccount,
  startService,
  type TestService,
} from '../support/service.ts';

const fixture = (path: string) =>
  readFileSync(new URL(`../fixtures/reports/${path}`, import.meta.url));
const VALID_REPORT = fixture('e2e-failing-report.xml');

/** Start a web server on loopback that returns an HTML page for every request, as a wrong URL would. */
async function startHtmlServer(): Promise<{ server: Server; host: string }> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end('<!doctype html><html><body>Welcome to our website</body></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Find a loopback port with nothing listening, by binding it and closing it again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

for (const engine of DATABASE_ENGINES) {
  describe(`bad input on ${engine}`, () => {
    let database: TestDatabase;
    let emulator: RunningEmulator;
    let html: { server: Server; host: string };
    let deadPort: number;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;

    before(async () => {
      database = await openTestDatabase(engine);
      emulator = await startEmulator();
      html = await startHtmlServer();
      deadPort = await closedPort();
      service = await startService(database, {
        allowedHosts: [new URL(emulator.url).host, html.host, `127.0.0.1:${deadPort}`],
      });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);

      const connected = await api('PUT', '/integrations/halopsa/connection', {
        url: emulator.url,
        clientId: 'dmarcdesk-demo',
        clientSecret: 'demo-secret-change-me',
      });
      assert.equal(connected.status, 200);
      const stored = await api('POST', '/reports', VALID_REPORT);
      assert.equal(stored.status, 201);
    });

    after(async () => {
      await service?.stop();
      await emulator?.close();
      await new Promise((resolve) => html?.server.close(resolve));
      await database?.drop();
    });

    async function assertConnectionUnchanged(): Promise<void> {
      const { connection } = (await api('GET', '/integrations/halopsa/connection')).body;
      assert.equal(connection.url, emulator.url);
      assert.equal(connection.clientId, 'dmarcdesk-demo');
      assert.equal(connection.status, 'healthy');
    }

    async function connect(body: Record<string, string>) {
      return api('PUT', '/integrations/halopsa/connection', {
        clientId: 'dmarcdesk-demo',
        clientSecret: 'x',
        ...body,
      });
    }

    test('wrong client secret is named and nothing is saved', async () => {
      const response = await connect({ url: emulator.url, clientSecret: 'not-the-secret' });
      assert.equal(response.status, 422);
      assert.equal(response.body.error.code, 'halopsa_connection_failed');
      assert.equal(response.body.error.field, 'clientSecret');
      assert.equal(response.body.error.details.halopsaError, 'invalid_credentials');
      assert.match(response.body.error.message, /client ID or secret/i);
      assert.equal(JSON.stringify(response.body).includes('not-the-secret'), false);
      await assertConnectionUnchanged();
    });

    test('unreachable URL is reported as a connection failure', async () => {
      const response = await connect({ url: `http://127.0.0.1:${deadPort}` });
      assert.equal(response.status, 422);
      assert.equal(response.body.error.field, 'url');
      assert.equal(response.body.error.details.halopsaError, 'connection_failed');
      await assertConnectionUnchanged();
    });

    test('a web site that is not HaloPSA is recognised', async () => {
      const response = await connect({ url: `http://${html.host}` });
      assert.equal(response.status, 422);
      assert.equal(response.body.error.details.halopsaError, 'not_halopsa');
      assert.match(response.body.error.message, /HaloPSA/);
      await assertConnectionUnchanged();
    });

    test('malformed and plain-http URLs are rejected before any call', async () => {
      const malformed = await connect({ url: 'not a url' });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.error.field, 'url');

      const plain = await connect({ url: 'http://halo.example.com' });
      assert.equal(plain.status, 400);
      assert.match(plain.body.error.message, /https/);

      const privateAddress = await connect({ url: 'https://10.0.0.5' });
      assert.equal(privateAddress.status, 400);
      assert.match(privateAddress.body.error.message, /private/);
      await assertConnectionUnchanged();
    });

    test('a missing permission is named', async () => {
      const created = await fetch(`${emulator.url}/_emulator/applications/limited-app`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          clientSecret: 'limited-secret',
          permissions: [
            'read:customers',
            'edit:customers',
            'read:items',
            'read:tickets',
            'edit:tickets',
          ],
        }),
      });
      assert.equal(created.ok, true);

      const response = await connect({
        url: emulator.url,
        clientId: 'limited-app',
        clientSecret: 'limited-secret',
      });
      assert.equal(response.status, 422);
      assert.equal(response.body.error.details.halopsaError, 'permission_missing');
      assert.equal(response.body.error.details.permission, 'read:softwarelicensing');
      assert.match(response.body.error.message, /read:softwarelicensing/);
      await assertConnectionUnchanged();
    });

    test('changing the URL requires the secret again', async () => {
      const response = await api('PUT', '/integrations/halopsa/connection', {
        url: `http://${html.host}`,
        clientId: 'dmarcdesk-demo',
      });
      assert.equal(response.status, 400);
      assert.equal(response.body.error.field, 'clientSecret');
      await assertConnectionUnchanged();
    });

    async function reportCount(): Promise<number> {
      return (await api('GET', '/reports')).body.reports.length;
    }

    for (const [name, body, reason] of [
      [
        'corrupt gzip',
        Buffer.concat([gzipSync(VALID_REPORT).subarray(0, 200), Buffer.alloc(50, 7)]),
        'corrupt_gzip',
      ],
      ['truncated gzip', gzipSync(VALID_REPORT).subarray(0, 300), 'corrupt_gzip'],
      ['malformed XML', fixture('dmarc_report_reader/malformed.xml'), 'not_well_formed'],
      ['truncated XML', fixture('dmarc/tests/fixtures/malformed.xml'), 'not_well_formed'],
      [
        'XML that is no DMARC report',
        fixture('dmarc_report_reader/non-dmarc.xml'),
        'not_a_dmarc_report',
      ],
      [
        'entity expansion',
        Buffer.from(
          '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><feedback>&lol2;</feedback>',
        ),
        'doctype_forbidden',
      ],
      ['a PNG image', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), 'unsupported_format'],
    ] as const) {
      test(`${name} is rejected with its reason and stores nothing`, async () => {
        const before = await reportCount();
        const response = await api('POST', '/reports', body, 'application/octet-stream');
        assert.equal(response.status, 422);
        assert.equal(response.body.error.code, 'report_rejected');
        assert.equal(response.body.error.details.reason, reason);
        assert.ok(response.body.error.message.length > 20, 'the message says what is wrong');
        assert.equal(await reportCount(), before);
      });
    }

    test('an empty upload is rejected', async () => {
      const response = await api('POST', '/reports', Buffer.alloc(0), 'application/octet-stream');
      assert.equal(response.status, 400);
      assert.match(response.body.error.message, /empty/);
    });
  });
}
