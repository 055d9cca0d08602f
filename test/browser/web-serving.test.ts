// The service serves the built web app next to its API: the files, index.html for page paths,
// and never a page where /api or /health answer.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { pgliteDatabase } from '../support/databases.ts';
import { startService, type TestService } from '../support/service.ts';
import { ensureWebBuild } from './support.ts';

const HTML = { accept: 'text/html,application/xhtml+xml' };

describe('web app serving', () => {
  let service: TestService;

  before(async () => {
    await ensureWebBuild();
    service = await startService(pgliteDatabase());
  });

  after(async () => {
    await service?.stop();
  });

  test('page paths get index.html', async () => {
    for (const path of ['/', '/sign-in', '/integrations/halopsa/customers']) {
      const response = await fetch(`${service.url}${path}`, { headers: HTML });
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/, path);
      assert.match(await response.text(), /<div id="root"><\/div>/, path);
      assert.match(response.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.equal(response.headers.get('cache-control'), 'no-cache', path);
    }
  });

  test('built assets are served immutable', async () => {
    const script = readdirSync(new URL('../../web/dist/assets/', import.meta.url)).find((name) =>
      name.endsWith('.js'),
    );
    assert.ok(script, 'the build has a script');
    const response = await fetch(`${service.url}/assets/${script}`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /javascript/);
    assert.equal(response.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    // Read the body, or the server would wait on the unread bytes when it closes.
    assert.ok((await response.arrayBuffer()).byteLength > 1000);
  });

  test('API and health paths keep their answers', async () => {
    const health = await fetch(`${service.url}/health`, { headers: HTML });
    assert.deepEqual(await health.json(), { status: 'ok' });

    for (const path of ['/api/v1/no-such-route', '/api/nothing', '/api']) {
      const response = await fetch(`${service.url}${path}`, { headers: HTML });
      assert.equal(response.status, 404, path);
      const body = (await response.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'not_found', path);
    }
    const session = await fetch(`${service.url}/api/v1/auth/session`, { headers: HTML });
    assert.equal(session.status, 401);
  });

  test('missing files and JSON requests get a 404', async () => {
    const asset = await fetch(`${service.url}/assets/missing-0000.js`, { headers: HTML });
    assert.equal(asset.status, 404);
    assert.equal(((await asset.json()) as { error: { code: string } }).error.code, 'not_found');
    const json = await fetch(`${service.url}/integrations/halopsa`, {
      headers: { accept: 'application/json' },
    });
    assert.equal(json.status, 404);
    assert.equal(((await json.json()) as { error: { code: string } }).error.code, 'not_found');
  });
});
