import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import { createTestAccount, startService, type TestService } from '../../test/support/service.ts';

const MEBIBYTE = 1024 * 1024;

for (const engine of DATABASE_ENGINES) {
  describe(`error boundary on ${engine}`, () => {
    let database: TestDatabase;
    let service: TestService;
    let token = '';

    async function call(method: string, path: string, body?: Buffer, contentType?: string) {
      const response = await fetch(`${service.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(contentType ? { 'content-type': contentType } : {}),
        },
        ...(body ? { body: new Uint8Array(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, allow: response.headers.get('allow'), text };
    }

    before(async () => {
      database = await openTestDatabase(engine);
      service = await startService(database, {
        environment: { DMARCDESK_MAX_UPLOAD_BYTES: String(MEBIBYTE) },
      });
      token = (await createTestAccount(service.app)).token;
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
    });

    test('wrong method answers 405 with Allow', async () => {
      const cases: Array<{ method: string; path: string; allow: string }> = [
        { method: 'DELETE', path: '/api/v1/reports', allow: 'GET, HEAD, POST' },
        { method: 'PUT', path: '/api/v1/customers', allow: 'GET, HEAD, POST' },
        {
          method: 'POST',
          path: `/api/v1/domains/${crypto.randomUUID()}/threshold`,
          allow: 'GET, HEAD, PUT, DELETE',
        },
        { method: 'POST', path: '/health?probe=1', allow: 'GET, HEAD' },
      ];
      for (const item of cases) {
        const response = await call(item.method, item.path);
        const error = JSON.parse(response.text).error;
        assert.equal(response.status, 405, `${item.method} ${item.path}`);
        assert.equal(response.allow, item.allow, `${item.method} ${item.path}`);
        assert.equal(error.code, 'method_not_allowed');
        assert.match(error.message, new RegExp(`does not accept ${item.method}; use `));
      }
    });

    test('unknown path stays 404', async () => {
      for (const [method, path] of [
        ['GET', '/api/v1/no-such-route'],
        ['POST', '/api/v1/no-such-route'],
        ['DELETE', '/api/v1/customers/a/b/c'],
      ] as const) {
        const response = await call(method, path);
        assert.equal(response.status, 404, `${method} ${path}`);
        assert.equal(response.allow, null);
        assert.equal(JSON.parse(response.text).error.code, 'not_found');
      }
    });

    test('413 names the limit and setting', async () => {
      const body = Buffer.alloc(MEBIBYTE + 1, 0x41);
      const response = await call('POST', '/api/v1/reports', body, 'application/xml');
      const error = JSON.parse(response.text).error;

      assert.equal(response.status, 413);
      assert.equal(error.code, 'payload_too_large');
      assert.match(error.message, /limit of 1 MiB/);
      assert.match(error.message, /DMARCDESK_MAX_UPLOAD_BYTES/);
    });

    test('multipart upload asks for raw body', async () => {
      const form = Buffer.from(
        '------form\r\nContent-Disposition: form-data; name="file"; filename="report.xml"\r\n' +
          'Content-Type: application/xml\r\n\r\n<feedback/>\r\n------form--\r\n',
      );
      for (const contentType of ['multipart/form-data; boundary=----form', 'application/xml']) {
        const response = await call('POST', '/api/v1/reports', form, contentType);
        const error = JSON.parse(response.text).error;

        assert.equal(response.status, 415, contentType);
        assert.equal(error.code, 'unsupported_media_type');
        assert.match(error.message, /^Multipart form uploads .* are not accepted/);
        assert.match(error.message, /raw request body/);
        assert.match(error.message, /--data-binary/);
        assert.match(error.message, /application\/octet-stream/);
      }
    });

    test('repeated query parameter is named', async () => {
      const cases = [
        ['/api/v1/reports?limit=1&limit=2', 'limit'],
        ['/api/v1/reports?offset=1&offset=2', 'offset'],
        ['/api/v1/alerts?limit=1&limit=2', 'limit'],
        ['/api/v1/alerts?offset=0&offset=5', 'offset'],
        ['/api/v1/rejected-inputs?limit=1&limit=2', 'limit'],
        ['/api/v1/failure-reports?limit=1&limit=2', 'limit'],
        ['/api/v1/audit-log?limit=1&limit=2', 'limit'],
      ] as const;
      for (const [path, name] of cases) {
        const response = await call('GET', path);
        const error = JSON.parse(response.text).error;

        assert.equal(response.status, 400, path);
        assert.equal(error.code, 'validation_failed', path);
        assert.equal(error.field, name, path);
        assert.match(error.message, new RegExp(`^Query parameter "${name}" is given 2 times`));
        assert.doesNotMatch(error.message, /NaN/, path);
      }
    });

    test('JSON sent as text/plain names type', async () => {
      const json = Buffer.from(JSON.stringify({ name: 'Plain Text Ltd' }));
      const response = await call('POST', '/api/v1/customers', json, 'text/plain');
      const error = JSON.parse(response.text).error;

      assert.equal(response.status, 415);
      assert.equal(error.code, 'unsupported_media_type');
      assert.match(error.message, /"text\/plain"/);
      assert.match(error.message, /Content-Type: application\/json/);
    });
  });
}
