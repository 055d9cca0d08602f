// Who sees the HaloPSA integration in the browser: only users whose role holds
// halopsa.access, on an account whose HaloPSA Integration setting is on. Everyone else gets
// a page that says why, and 403 from the integration's API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { saveCustomRole } from '../../src/auth/roles.ts';
import { createAccount } from '../../src/platform/accounts.ts';
import { createTestUser } from '../support/sessions.ts';
import {
  assertAccessible,
  PASSWORD,
  signInThroughPage,
  startBrowserStack,
  type BrowserStack,
} from './support.ts';

const INTEGRATION_GETS = [
  '/integrations/halopsa',
  '/integrations/halopsa/connection',
  '/integrations/halopsa/clients',
  '/integrations/halopsa/items',
  '/integrations/halopsa/ticket-types',
  '/integrations/halopsa/mappings',
  '/integrations/halopsa/history',
];

/** Call the API from inside the page, with the page's session cookie and CSRF token. */
async function callFromPage(
  page: Page,
  method: string,
  path: string,
  body?: unknown,
): Promise<{
  status: number;
  body: { error?: { code: string; details?: { permission?: string } } };
}> {
  return page.evaluate(
    async ({ method, path, body }) => {
      const session = await (await fetch('/api/v1/auth/session')).json();
      const response = await fetch(`/api/v1${path}`, {
        method,
        headers: {
          'x-csrf-token': session.csrfToken,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: await response.json() };
    },
    { method, path, body },
  );
}

function mainMenu(page: Page) {
  return page.getByRole('navigation', { name: 'Main' });
}

describe('HaloPSA integration access in the browser', { timeout: 120_000 }, () => {
  let stack: BrowserStack;

  before(async () => {
    stack = await startBrowserStack();
    const app = stack.service.app;
    await createTestUser(
      app,
      stack.accountId,
      'analyst@northwind.example',
      'mssp_analyst',
      PASSWORD,
    );
    // A custom role that may use the integration but not read the account settings.
    const role = await saveCustomRole(app.db, stack.accountId, {
      name: 'Integrator',
      permissions: ['halopsa.access', 'customers.read'],
    });
    await createTestUser(app, stack.accountId, 'integrator@northwind.example', role.id, PASSWORD);
    const disabled = await createAccount(app.db, { name: 'Contoso MSP' });
    await createTestUser(app, disabled.id, 'owner@contoso.example', 'mssp_owner', PASSWORD);
  });

  after(async () => {
    await stack?.stop();
  });

  test('owner sees Integrations in the menu', async () => {
    const page = await stack.newPage();
    await signInThroughPage(page, 'owner@northwind.example');
    await mainMenu(page).getByRole('link', { name: 'Integrations' }).click();
    await page.getByRole('link', { name: 'HaloPSA' }).click();
    await page.getByRole('heading', { name: 'Step 1 of 3: Connection' }).waitFor();
  });

  test('analyst sees no Integrations link', async () => {
    const page = await stack.newPage();
    await signInThroughPage(page, 'analyst@northwind.example');
    await page.getByRole('heading', { name: /^Welcome/ }).waitFor();
    assert.deepEqual(await mainMenu(page).getByRole('link').allInnerTexts(), ['Home']);
    assert.equal(await page.getByRole('link', { name: /HaloPSA/ }).count(), 0);
  });

  test('analyst gets a page saying why', async () => {
    const page = await stack.newPage();
    await signInThroughPage(page, 'analyst@northwind.example', PASSWORD, '/integrations/halopsa');
    await page.getByRole('heading', { name: 'No access to the HaloPSA integration' }).waitFor();
    assert.match(
      await page.locator('main').innerText(),
      /Your role does not hold the permission "Access HaloPSA Integration"\./,
    );
    assert.equal(await page.getByRole('navigation', { name: 'HaloPSA setup steps' }).count(), 0);
    assert.equal(await page.getByLabel('HaloPSA URL').count(), 0);
    await assertAccessible(page, 'the no-access page');
  });

  test('analyst gets 403 from every integration route', async () => {
    const page = await stack.newPage();
    await signInThroughPage(page, 'analyst@northwind.example');
    for (const path of INTEGRATION_GETS) {
      const response = await callFromPage(page, 'GET', path);
      assert.equal(response.status, 403, `GET ${path}`);
      assert.equal(response.body.error?.code, 'forbidden', `GET ${path}`);
      assert.equal(response.body.error?.details?.permission, 'halopsa.access', `GET ${path}`);
    }
    const put = await callFromPage(page, 'PUT', '/integrations/halopsa/connection', {
      url: stack.emulator.url,
      clientId: 'dmarcdesk-demo',
      clientSecret: 'demo-secret-change-me',
    });
    assert.equal(put.status, 403);
    const submit = await callFromPage(page, 'POST', '/integrations/halopsa/submit');
    assert.equal(submit.status, 403);
    const stored = await stack.api('GET', '/integrations/halopsa/connection');
    assert.equal(stored.body.connection, null, 'the refused PUT stored nothing');
  });

  test('setting off hides it from the owner', async () => {
    const page = await stack.newPage();
    await signInThroughPage(page, 'owner@contoso.example', PASSWORD, '/integrations/halopsa');
    await page.getByRole('heading', { name: 'No access to the HaloPSA integration' }).waitFor();
    assert.match(
      await page.locator('main').innerText(),
      /The HaloPSA Integration setting is off for this MSSP account\./,
    );
    assert.deepEqual(await mainMenu(page).getByRole('link').allInnerTexts(), ['Home']);
    const response = await callFromPage(page, 'GET', '/integrations/halopsa');
    assert.equal(response.status, 403);
    assert.equal(response.body.error?.code, 'integration_disabled');
  });

  test('role without account.read still gets in', async () => {
    const page = await stack.newPage();
    await signInThroughPage(page, 'integrator@northwind.example');
    await mainMenu(page).getByRole('link', { name: 'Integrations' }).click();
    await page.getByRole('link', { name: 'HaloPSA' }).click();
    await page.getByRole('heading', { name: 'Step 1 of 3: Connection' }).waitFor();
  });

  test('sign-out ends the session', async () => {
    const page = await stack.newPage();
    await signInThroughPage(page, 'owner@northwind.example');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You have signed out.').waitFor();
    const session = await page.evaluate(async () => (await fetch('/api/v1/auth/session')).status);
    assert.equal(session, 401);
    await page.goto('/integrations/halopsa');
    await page.getByLabel('Email address').waitFor();
    assert.equal(new URL(page.url()).pathname, '/sign-in');
  });
});
