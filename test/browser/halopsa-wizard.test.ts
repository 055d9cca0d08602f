// The HaloPSA wizard in Chromium, step by step, against the emulator and the service on
// PGlite: connection failures, the mapping table, the ticket rules, submit and the summary,
// ending with the licences the emulator holds. The tests run in order on one page.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { eventually } from '../support/service.ts';
import {
  assertAccessible,
  sequentialSteps,
  DEMO_CLIENT_ID,
  DEMO_SECRET,
  deleteEmulatorClient,
  emulatorRecords,
  emulatorToken,
  saveScreenshot,
  signInThroughPage,
  startBrowserStack,
  type BrowserStack,
} from './support.ts';

const OWNER = 'owner@northwind.example';
const ITEM_NAME = 'DMARC Monitoring (per domain)';

/** Return the error text that a control links to in aria-describedby (an id ending "-error"). */
async function errorBeside(page: Page, control: ReturnType<Page['getByLabel']>): Promise<string> {
  const ids = ((await control.getAttribute('aria-describedby')) ?? '').split(' ');
  const errorId = ids.find((id) => id.endsWith('-error'));
  assert.ok(errorId, 'the control names its error text in aria-describedby');
  assert.equal(await control.getAttribute('aria-invalid'), 'true');
  return page.locator(`[id="${errorId}"]`).innerText();
}

/** Find the row of the mapping table with a given row number. */
function mappingRow(page: Page, number: number) {
  return page.locator('table.mapping-table tbody tr').filter({
    has: page.locator('td.mapping-table__number', { hasText: new RegExp(`^${number}$`) }),
  });
}

async function chooseInCombobox(page: Page, name: string, query: string, option: string) {
  const combobox = page.getByRole('combobox', { name, exact: true });
  await combobox.click();
  await combobox.fill(query);
  await page.getByRole('option', { name: option }).click();
  assert.equal(await combobox.inputValue(), option);
}

describe('HaloPSA wizard in the browser', { timeout: 240_000 }, () => {
  let stack: BrowserStack;
  let page: Page;
  const ids: Record<string, string> = {};
  const halo = { clientA: { id: 0, name: '' }, clientB: { id: 0, name: '' } };
  const halo2 = { clientC: { id: 0, name: '' }, matched: { id: 0, name: '' }, item: 0, alert: 0 };
  const apiResponses: string[] = [];
  const step = sequentialSteps();

  before(async () => {
    stack = await startBrowserStack({ ownerEmail: OWNER });
    const { api } = stack;
    const clients = (await emulatorRecords(stack.emulator, 'Client'))
      .filter((client) => !client.inactive)
      .sort((a, b) => a.id - b.id) as { id: number; name: string }[];
    [halo.clientA, halo.clientB, halo2.clientC, halo2.matched] = clients.slice(0, 4) as [
      { id: number; name: string },
      { id: number; name: string },
      { id: number; name: string },
      { id: number; name: string },
    ];

    ids.acme = (await api('POST', '/customers', { name: 'Acme Dental' })).body.id;
    ids.stalwart = (await api('POST', '/customers', { name: 'Stalwart Labs' })).body.id;
    // Named like a HaloPSA customer, so that Add All Customers matches it by name.
    ids.matched = (await api('POST', '/customers', { name: halo2.matched.name })).body.id;
    const domain = async (customer: string, name: string, status?: string) =>
      (
        await api('POST', `/customers/${ids[customer]}/domains`, {
          name,
          ...(status ? { status } : {}),
        })
      ).body.id as string;
    ids.acmeDental = await domain('acme', 'acme-dental.example');
    ids.acmeStaging = await domain('acme', 'acme-staging.example', 'pending');
    ids.stalwArt = await domain('stalwart', 'stalw.art');
    ids.stalwartMail = await domain('stalwart', 'stalwart-mail.example');
    ids.matchedDomain = await domain('matched', 'matched-customer.example');
    const group = await api('POST', `/customers/${ids.acme}/groups`, {
      name: 'Acme production',
      domainIds: [ids.acmeDental],
    });
    assert.equal(group.status, 201);
    ids.acmeGroup = group.body.id;

    page = await stack.newPage();
    page.on('response', async (response) => {
      if (!response.url().includes('/api/')) return;
      apiResponses.push(await response.text().catch(() => ''));
    });
  });

  after(async () => {
    await stack?.stop();
  });

  step('sign-in page rejects a wrong password', async () => {
    await page.goto('/integrations/halopsa');
    await page.getByLabel('Email address').waitFor();
    assert.equal(new URL(page.url()).pathname, '/sign-in');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/integrations/halopsa');
    await page.getByLabel('Email address').fill(OWNER);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    assert.equal(
      await alert.innerText(),
      'Sign-in failed: the email address or the password is wrong.',
    );
    await assertAccessible(page, 'the sign-in page');
    await saveScreenshot(page, 'sign-in');
  });

  step('sign-in opens the requested page', async () => {
    await page.getByLabel('Password').fill('correct horse battery staple');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Step 1 of 3: Connection' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/integrations/halopsa/connection');
  });

  step('main menu leads to Integrations, then HaloPSA', async () => {
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Integrations' })
      .click();
    await page.getByRole('heading', { name: 'Integrations' }).waitFor();
    await page.getByRole('link', { name: 'HaloPSA' }).click();
    await page.getByRole('heading', { name: 'Step 1 of 3: Connection' }).waitFor();
    const steps = page.getByRole('navigation', { name: 'HaloPSA setup steps' });
    assert.equal(
      await steps.getByRole('link', { name: '1. Connection' }).getAttribute('aria-current'),
      'step',
    );
    assert.equal(await steps.getByRole('link').count(), 1, 'only step 1 is open before connecting');
  });

  step('connection shows missing fields beside each field', async () => {
    await page.getByRole('button', { name: 'Connect & Continue' }).click();
    assert.equal(
      await errorBeside(page, page.getByLabel('HaloPSA URL')),
      'Enter the address of your HaloPSA, for example https://yourcompany.halopsa.com.',
    );
    assert.equal(
      await errorBeside(page, page.getByLabel('Client ID')),
      'Enter the client ID that HaloPSA showed for the API application.',
    );
    assert.equal(
      await errorBeside(page, page.getByLabel('Client secret')),
      'Enter the client secret that HaloPSA showed for the API application.',
    );
    const focused = await page.evaluate(() => document.activeElement?.id);
    assert.equal(focused, 'halopsa-url', 'the first invalid field takes the focus');
    await assertAccessible(page, 'step 1 with its errors');
  });

  step('connection shows server failures beside their field', async () => {
    await page.getByLabel('HaloPSA URL').fill('not a url');
    await page.getByLabel('Client ID').fill(DEMO_CLIENT_ID);
    await page.getByLabel('Client secret').fill(DEMO_SECRET);
    await page.getByRole('button', { name: 'Connect & Continue' }).click();
    await page.locator('[id="halopsa-url-error"]').waitFor();
    assert.match(
      await errorBeside(page, page.getByLabel('HaloPSA URL')),
      /^The HaloPSA URL "not a url" must start with https:\/\/ \(or http:\/\/\)\. Enter the instance address/,
    );

    await page.getByLabel('HaloPSA URL').fill('http://127.0.0.1:9');
    await page.getByRole('button', { name: 'Connect & Continue' }).click();
    await page.locator('[id="halopsa-url-error"]', { hasText: 'https://' }).waitFor();
    assert.match(
      await errorBeside(page, page.getByLabel('HaloPSA URL')),
      /^The HaloPSA URL must start with https:\/\/ \(got http:\/\/\)\./,
    );

    await page.getByLabel('HaloPSA URL').fill(stack.emulator.url);
    await page.getByLabel('Client secret').fill('a wrong secret');
    await page.getByRole('button', { name: 'Connect & Continue' }).click();
    await page.locator('[id="halopsa-client-secret-error"]').waitFor();
    assert.match(
      await errorBeside(page, page.getByLabel('Client secret')),
      /^HaloPSA rejected the client ID or secret/,
    );
    assert.equal(await page.getByLabel('HaloPSA URL').getAttribute('aria-invalid'), null);
  });

  step('connection names a missing HaloPSA permission', async () => {
    const limited = await fetch(`${stack.emulator.url}/_emulator/applications/limited-app`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientSecret: 'limited-secret', permissions: ['read:customers'] }),
    });
    assert.equal(limited.status, 200);
    await page.getByLabel('Client ID').fill('limited-app');
    await page.getByLabel('Client secret').fill('limited-secret');
    await page.getByRole('button', { name: 'Connect & Continue' }).click();
    const notice = page.getByRole('alert').filter({ hasText: 'The connection was not saved' });
    await notice.waitFor();
    assert.match(await notice.innerText(), /the permission read:items is missing/);
    const stored = await stack.api('GET', '/integrations/halopsa/connection');
    assert.equal(stored.body.connection, null, 'a failed check saves nothing');
  });

  step('connection shows progress, then opens step 2', async () => {
    const fault = await fetch(`${stack.emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        faults: [{ match: { path: '/auth/token' }, kind: 'latency', delayMs: 1500, times: 1 }],
      }),
    });
    assert.equal(fault.status, 200);
    await page.getByLabel('Client ID').fill(DEMO_CLIENT_ID);
    await page.getByLabel('Client secret').fill(DEMO_SECRET);
    await saveScreenshot(page, 'step-1-connection');
    await page.getByRole('button', { name: 'Connect & Continue' }).click();
    await page.getByRole('status').filter({ hasText: 'Checking the connection' }).waitFor();
    await page.getByRole('heading', { name: 'Step 2 of 3: Map customers and items' }).waitFor();
    const stored = await stack.api('GET', '/integrations/halopsa/connection');
    assert.equal(stored.body.connection.url, stack.emulator.url);
    assert.equal(stored.body.connection.status, 'healthy');
  });

  step('Add New adds a row and focuses it', async () => {
    await page.getByText('No rows yet.').waitFor();
    await page.getByRole('button', { name: 'Add New' }).click();
    const combobox = page.getByRole('combobox', { name: 'Customer account, row 1', exact: true });
    await combobox.waitFor();
    await page.waitForFunction(() => document.activeElement?.getAttribute('role') === 'combobox');
    assert.equal(await combobox.evaluate((element) => element === document.activeElement), true);
  });

  step('combobox works by keyboard alone', async () => {
    await page.keyboard.type('acme');
    const options = page.getByRole('listbox').getByRole('option');
    assert.deepEqual(await options.allInnerTexts(), ['Acme Dental\n2 domains']);
    await page.keyboard.press('Enter');
    const customer = page.getByRole('combobox', { name: 'Customer account, row 1', exact: true });
    assert.equal(await customer.inputValue(), 'Acme Dental');
    assert.equal(await customer.getAttribute('aria-expanded'), 'false');

    await page.keyboard.press('Tab');
    await page.keyboard.type(halo.clientA.name.slice(0, 12));
    await page.getByRole('listbox').waitFor();
    await page.keyboard.press('Enter');
    const client = page.getByRole('combobox', { name: 'HaloPSA customer, row 1', exact: true });
    assert.equal(await client.inputValue(), halo.clientA.name);
    assert.equal(await mappingRow(page, 1).locator('.badge').innerText(), 'Incomplete');
  });

  step('incomplete row is never saved', async () => {
    const mappings = await stack.api('GET', '/integrations/halopsa/mappings');
    assert.deepEqual(mappings.body.mappings, []);
    assert.equal(
      await mappingRow(page, 1).locator('.row-detail').innerText(),
      'To save it, choose an item.',
    );
  });

  step('complete row is saved', async () => {
    await page.keyboard.press('Tab');
    const item = page.getByLabel('HaloPSA item, row 1', { exact: true });
    assert.equal(await item.evaluate((element) => element === document.activeElement), true);
    await item.selectOption({ label: ITEM_NAME });
    await mappingRow(page, 1).locator('.badge', { hasText: 'Saved' }).waitFor();
    const mappings = (await stack.api('GET', '/integrations/halopsa/mappings')).body.mappings;
    assert.equal(mappings.length, 1);
    assert.equal(mappings[0].customerId, ids.acme);
    assert.equal(mappings[0].haloClientId, halo.clientA.id);
    assert.equal(mappings[0].haloItemName, ITEM_NAME);
    halo2.item = mappings[0].haloItemId;
  });

  step('Add All Customers adds the unmapped ones', async () => {
    await page.getByLabel('Item for new rows').selectOption({ label: ITEM_NAME });
    await page.getByRole('button', { name: 'Add All Customers' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'Added 2 rows; 1 matched a HaloPSA customer of the same name.' })
      .waitFor();
    const customers = await page
      .locator('table.mapping-table tbody tr td:nth-child(2) input')
      .evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value));
    // Row 1 stays first; the added rows follow in the order of the customer list, by name.
    const added = ['Stalwart Labs', halo2.matched.name].sort((a, b) =>
      a.toLowerCase() < b.toLowerCase() ? -1 : 1,
    );
    assert.deepEqual(customers, ['Acme Dental', ...added]);
    const matchedNumber = customers.indexOf(halo2.matched.name) + 1;
    assert.equal(
      await page
        .getByRole('combobox', { name: `HaloPSA customer, row ${matchedNumber}`, exact: true })
        .inputValue(),
      halo2.matched.name,
    );
    await mappingRow(page, matchedNumber).locator('.badge', { hasText: 'Saved' }).waitFor();
    const stalwartNumber = customers.indexOf('Stalwart Labs') + 1;
    assert.equal(
      await mappingRow(page, stalwartNumber).locator('.badge').innerText(),
      'Incomplete',
    );
    ids.stalwartRow = String(stalwartNumber);
    ids.matchedRow = String(matchedNumber);
  });

  step('a customer account appears in one row only', async () => {
    await page.getByRole('button', { name: 'Add New' }).click();
    const combobox = page.getByRole('combobox', { name: 'Customer account, row 4', exact: true });
    await combobox.waitFor();
    await combobox.click();
    assert.equal(
      await page.getByRole('listbox').innerText(),
      'No customer account is left to choose.',
    );
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Remove row 4' }).click();
    assert.equal(await mappingRow(page, 4).count(), 0);
  });

  step('Next names the incomplete row', async () => {
    await page.getByRole('button', { name: 'Next' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.equal(
      await alert.innerText(),
      `Row ${ids.stalwartRow} is incomplete: choose a HaloPSA customer, or remove the row.`,
    );
    assert.equal(new URL(page.url()).pathname, '/integrations/halopsa/customers');
    await chooseInCombobox(
      page,
      `HaloPSA customer, row ${ids.stalwartRow}`,
      halo.clientB.name,
      halo.clientB.name,
    );
    await mappingRow(page, Number(ids.stalwartRow))
      .locator('.badge', { hasText: 'Saved' })
      .waitFor();
    assert.equal(
      (await stack.api('GET', '/integrations/halopsa/mappings')).body.mappings.length,
      3,
    );
  });

  step('Resync marks a customer removed from HaloPSA', async () => {
    await deleteEmulatorClient(stack.emulator, halo.clientB.id);
    await page.getByRole('button', { name: 'Resync' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'Resync finished: 1 row has a selection that is no longer valid' })
      .waitFor();
    const row = mappingRow(page, Number(ids.stalwartRow));
    assert.equal(await row.locator('.badge').innerText(), 'No longer valid');
    const client = page.getByRole('combobox', {
      name: `HaloPSA customer, row ${ids.stalwartRow}`,
      exact: true,
    });
    assert.equal(
      await client.inputValue(),
      halo.clientB.name,
      'the selection is kept, not dropped',
    );
    assert.equal(
      await errorBeside(page, client),
      `HaloPSA customer “${halo.clientB.name}” (id ${halo.clientB.id}) is no longer in HaloPSA, or is inactive. Choose another.`,
    );
    assert.match(
      await page.locator('.save-state').innerText(),
      /^Saving is paused: 1 saved row has a selection that is no longer valid\./,
    );
    const mappings = (await stack.api('GET', '/integrations/halopsa/mappings')).body.mappings;
    assert.equal(mappings.length, 3, 'the stored mapping is not deleted');
    for (const number of [1, Number(ids.matchedRow)]) {
      assert.equal(await mappingRow(page, number).locator('.badge').innerText(), 'Saved');
    }
    await assertAccessible(page, 'step 2 with a marked row');
  });

  step('choosing again saves the row', async () => {
    await chooseInCombobox(
      page,
      `HaloPSA customer, row ${ids.stalwartRow}`,
      halo2.clientC.name,
      halo2.clientC.name,
    );
    await mappingRow(page, Number(ids.stalwartRow))
      .locator('.badge', { hasText: 'Saved' })
      .waitFor();
    const mappings = (await stack.api('GET', '/integrations/halopsa/mappings')).body.mappings;
    const stalwart = mappings.find(
      (mapping: { customerId: string }) => mapping.customerId === ids.stalwart,
    );
    assert.equal(stalwart.haloClientId, halo2.clientC.id);
  });

  step('reload warns about unsaved rows and keeps saved ones', async () => {
    await page.getByRole('button', { name: `Remove row ${ids.matchedRow}` }).click();
    await page.locator('.save-state', { hasText: '2 complete rows saved.' }).waitFor();
    await page.getByRole('button', { name: 'Add New' }).click();
    await chooseInCombobox(page, 'Customer account, row 3', halo2.matched.name, halo2.matched.name);
    assert.equal(await mappingRow(page, 3).locator('.badge').innerText(), 'Incomplete');

    const dialog = page.waitForEvent('dialog');
    await page.evaluate(() => window.setTimeout(() => window.location.reload()));
    const prompt = await dialog;
    assert.equal(prompt.type(), 'beforeunload');
    await prompt.dismiss();
    assert.equal(
      await page.getByRole('combobox', { name: 'Customer account, row 3' }).inputValue(),
      halo2.matched.name,
    );

    page.once('dialog', (next) => void next.accept());
    await page.reload();
    await page.getByRole('combobox', { name: 'Customer account, row 2', exact: true }).waitFor();
    assert.equal(await page.getByRole('combobox', { name: 'Customer account, row 3' }).count(), 0);
    const customers = await page
      .locator('table.mapping-table tbody tr td:nth-child(2) input')
      .evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value));
    assert.deepEqual(customers, ['Acme Dental', 'Stalwart Labs']);
  });

  step('step 2 passes axe and is captured', async () => {
    await page.getByLabel('Item for new rows').selectOption({ label: ITEM_NAME });
    await page.getByRole('button', { name: 'Add All Customers' }).click();
    await mappingRow(page, 3).locator('.badge', { hasText: 'Saved' }).waitFor();
    await page.getByRole('combobox', { name: 'HaloPSA customer, row 2', exact: true }).click();
    await page.getByRole('listbox').waitFor();
    await assertAccessible(page, 'step 2 with the list open');
    await page.keyboard.press('Escape');
    await assertAccessible(page, 'step 2');
    await saveScreenshot(page, 'step-2-customers');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: 'Step 3 of 3: Map alerts to tickets' }).waitFor();
  });

  step('panels start collapsed, one per mapped customer', async () => {
    const toggles = page.locator('.panel__toggle');
    await toggles.first().waitFor();
    assert.equal(await toggles.count(), 3);
    for (const state of await toggles.evaluateAll((buttons) =>
      buttons.map((button) => button.getAttribute('aria-expanded')),
    )) {
      assert.equal(state, 'false');
    }
    assert.equal(await page.locator('#alerts-search-count').innerText(), '3 mapped customers');
  });

  step('search finds customers by name or domain', async () => {
    const search = page.getByLabel('Search customers');
    await search.fill('stalwart-mail');
    await page.locator('#alerts-search-count', { hasText: '1 of 3 mapped customers' }).waitFor();
    assert.deepEqual(await page.locator('.panel__name').allInnerTexts(), ['Stalwart Labs']);
    await search.fill('ACME');
    await page.locator('#alerts-search-count', { hasText: '1 of 3' }).waitFor();
    assert.deepEqual(await page.locator('.panel__name').allInnerTexts(), ['Acme Dental']);
    await search.fill('no-such-thing');
    await page
      .getByText('No mapped customer has a name or domain containing “no-such-thing”.')
      .waitFor();
    await search.fill('');
    await page.locator('#alerts-search-count', { hasText: '3 mapped customers' }).waitFor();
  });

  step('panel opens and closes by keyboard', async () => {
    const toggle = page.getByRole('button', { name: /^Acme Dental/ });
    await toggle.focus();
    await page.keyboard.press('Enter');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    const region = page.getByRole('region', { name: /^Acme Dental/ });
    await region.getByLabel('Ticket Type').waitFor();
    await page.keyboard.press('Space');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  });

  step('Expand All opens every panel', async () => {
    await page.getByRole('button', { name: 'Expand All' }).click();
    await page.waitForFunction(
      () => document.querySelectorAll('.panel__toggle[aria-expanded="true"]').length === 3,
    );
    await page.getByRole('button', { name: 'Collapse All' }).click();
    await page.waitForFunction(
      () => document.querySelectorAll('.panel__toggle[aria-expanded="true"]').length === 0,
    );
    await page.getByRole('button', { name: 'Expand All' }).click();
    for (const name of ['Acme Dental', 'Stalwart Labs', halo2.matched.name]) {
      await page
        .getByRole('region', { name: new RegExp(`^${name}`) })
        .getByLabel('Ticket Type')
        .waitFor();
    }
  });

  step('Ticket Type preselects the type named Alert', async () => {
    const types = (await stack.api('GET', '/integrations/halopsa/ticket-types')).body;
    halo2.alert = types.ticketTypes.find((type: { name: string }) => type.name === 'Alert').id;
    assert.equal(types.defaultTicketTypeId, halo2.alert);
    for (const name of ['Acme Dental', 'Stalwart Labs']) {
      const select = page
        .getByRole('region', { name: new RegExp(`^${name}`) })
        .getByLabel('Ticket Type');
      assert.equal(await select.inputValue(), String(halo2.alert));
      assert.equal(await select.getAttribute('required'), '');
    }
  });

  step('End User waits for a Site and lists its users', async () => {
    const region = page.getByRole('region', { name: /^Acme Dental/ });
    const user = region.getByLabel('End User');
    assert.equal(await user.isDisabled(), true);
    const sites = (await emulatorRecords(stack.emulator, 'Site')).filter(
      (site) => site.client_id === halo.clientA.id && !site.inactive,
    ) as { id: number; name: string }[];
    const siteOptions = await region.getByLabel('Site').locator('option').allInnerTexts();
    assert.deepEqual(siteOptions, ['None', ...sites.map((site) => site.name)]);

    const site = sites[0]!;
    await region.getByLabel('Site').selectOption(String(site.id));
    await page.waitForFunction(
      (id) => !(document.getElementById(`panel-${id}-user`) as HTMLSelectElement).disabled,
      ids.acme,
    );
    const users = (await emulatorRecords(stack.emulator, 'Users')).filter(
      (candidate) => candidate.site_id === site.id && !candidate.inactive,
    ) as { id: number; name: string }[];
    const userOptions = await user
      .locator('option')
      .evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
    assert.deepEqual(userOptions, ['', ...users.map((candidate) => String(candidate.id))]);
    await user.selectOption(String(users[0]!.id));
    ids.acmeSite = String(site.id);
    ids.acmeUser = String(users[0]!.id);
  });

  step('select-all covers domain and group rows', async () => {
    const region = page.getByRole('region', { name: /^Acme Dental/ });
    const all = region.getByRole('checkbox', { name: 'All threshold alerts of Acme Dental' });
    await all.check();
    for (const name of [
      'Threshold alerts for acme-dental.example',
      'Threshold alerts for acme-staging.example',
      'Threshold alerts for group Acme production',
    ]) {
      assert.equal(await region.getByRole('checkbox', { name }).isChecked(), true, name);
    }
    await region
      .getByRole('checkbox', { name: 'Threshold alerts for acme-staging.example' })
      .uncheck();
    assert.equal(await all.isChecked(), false);
    assert.equal(await all.evaluate((box) => (box as HTMLInputElement).indeterminate), true);
    await region.getByRole('checkbox', { name: 'DNS alerts for acme-dental.example' }).check();
    await region.getByRole('checkbox', { name: 'All forensic alerts of Acme Dental' }).check();
    assert.equal(
      await region
        .getByRole('checkbox', { name: 'Forensic alerts for acme-staging.example' })
        .isChecked(),
      true,
    );
    await region.locator('.save-state', { hasText: 'Saved.' }).waitFor();
    const rule = (await stack.api('GET', `/integrations/halopsa/ticket-rules/${ids.acme}`)).body
      .rule;
    assert.equal(rule.ticketTypeId, halo2.alert);
    assert.equal(rule.siteId, Number(ids.acmeSite));
    assert.equal(rule.userId, Number(ids.acmeUser));
    assert.deepEqual(rule.dnsDomainIds, [ids.acmeDental]);
    assert.deepEqual(rule.thresholdDomainIds, [ids.acmeDental]);
    assert.deepEqual(rule.thresholdGroupIds, [ids.acmeGroup]);
    assert.deepEqual([...rule.forensicDomainIds].sort(), [ids.acmeDental, ids.acmeStaging].sort());
  });

  step('per-customer Resync marks a removed site and domain', async () => {
    const region = page.getByRole('region', { name: /^Stalwart Labs/ });
    await region.getByRole('checkbox', { name: 'Threshold alerts for stalw.art' }).check();
    await region
      .getByRole('checkbox', { name: 'Forensic alerts for stalwart-mail.example' })
      .check();
    const sites = (await emulatorRecords(stack.emulator, 'Site')).filter(
      (site) => site.client_id === halo2.clientC.id && !site.inactive,
    ) as { id: number; name: string }[];
    const site = sites[0]!;
    await region.getByLabel('Site').selectOption(String(site.id));
    await region.locator('.save-state', { hasText: 'Saved.' }).waitFor();

    const removed = await fetch(`${stack.emulator.url}/api/Site/${site.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await emulatorToken(stack.emulator)}` },
    });
    assert.equal(removed.status, 200);
    assert.equal((await stack.api('DELETE', `/domains/${ids.stalwartMail}`)).status, 204);

    await region.getByRole('button', { name: 'Resync Stalwart Labs' }).click();
    const notes = region.locator('.panel__notes');
    await notes.waitFor();
    assert.deepEqual(await notes.locator('p').allInnerTexts(), [
      '1 selected alert row was for domains or groups that no longer exist, so it is no longer selected.',
      '1 choice is no longer valid and marked below.',
    ]);
    assert.equal(
      await errorBeside(page, region.getByLabel('Site')),
      `The site “${site.name}” is no longer a site of this HaloPSA customer. Choose another, or none.`,
    );
    assert.equal(
      await region
        .getByRole('checkbox', { name: 'Forensic alerts for stalwart-mail.example' })
        .count(),
      0,
    );
    await assertAccessible(page, 'step 3 with a marked site');

    await region.getByLabel('Site').selectOption('');
    await region.locator('.save-state', { hasText: 'Saved.' }).waitFor();
    const rule = (await stack.api('GET', `/integrations/halopsa/ticket-rules/${ids.stalwart}`)).body
      .rule;
    assert.equal(rule.siteId, null);
    assert.deepEqual(rule.thresholdDomainIds, [ids.stalwArt]);
    assert.deepEqual(rule.forensicDomainIds, []);
  });

  step('step 3 passes axe and is captured', async () => {
    await assertAccessible(page, 'step 3');
    await page.evaluate(() => window.scrollTo(0, 0));
    await saveScreenshot(page, 'step-3-alerts');
  });

  step('Submit to HaloPSA opens the summary', async () => {
    await page.getByRole('button', { name: 'Submit to HaloPSA' }).click();
    await page.getByRole('heading', { name: 'HaloPSA integration summary' }).waitFor();
    const notice = page
      .getByRole('status')
      .filter({ hasText: 'The configuration was submitted to HaloPSA' });
    assert.match(
      await notice.innerText(),
      /3 subscriptions are being created or updated in HaloPSA\./,
    );
  });

  step('summary cards show the counts', async () => {
    const cards = page.locator('.status-card');
    const connection = cards.filter({ has: page.getByRole('heading', { name: 'Connection' }) });
    assert.equal(await connection.locator('.status-card__value').innerText(), stack.emulator.url);
    assert.equal(await connection.locator('.badge').innerText(), 'Healthy');
    const customers = cards.filter({ has: page.getByRole('heading', { name: 'Customers' }) });
    assert.equal(await customers.locator('.status-card__value').innerText(), '3 mapped');
    await customers
      .getByText('Subscriptions: 3 up to date, 0 pending, 0 failed.')
      .waitFor({ timeout: 20_000 });
    const alerts = cards.filter({ has: page.getByRole('heading', { name: 'Alerts' }) });
    assert.equal(
      await alerts.locator('.status-card__value').innerText(),
      'DNS, Threshold, Forensic alerts raise tickets',
    );
    assert.deepEqual(await alerts.locator('.status-card__kinds li').allInnerTexts(), [
      'DNS: 1 customer, 1 alert row',
      'Threshold: 2 customers, 3 alert rows',
      'Forensic: 1 customer, 2 alert rows',
    ]);
    await assertAccessible(page, 'the summary');
    await saveScreenshot(page, 'summary');
  });

  step('emulator holds one licence per mapped customer', async () => {
    const licences = (await emulatorRecords(stack.emulator, 'SoftwareLicence')).filter(
      (licence) => licence.item_id === halo2.item && !licence.deleted,
    );
    const byClient = new Map(licences.map((licence) => [licence.client_id, licence]));
    // Active domains only: acme-staging.example is pending and stalwart-mail.example is gone.
    assert.equal(byClient.get(halo.clientA.id)?.count, 1);
    assert.equal(byClient.get(halo2.clientC.id)?.count, 1);
    assert.equal(byClient.get(halo2.matched.id)?.count, 1);
    assert.equal(byClient.has(halo.clientB.id), false);
    assert.equal(licences.filter((licence) => licence.client_id === halo.clientA.id).length, 1);
  });

  step('summary cards open their steps', async () => {
    await page.getByRole('link', { name: 'Open step 2: Map customers and items' }).click();
    await page.getByRole('heading', { name: 'Step 2 of 3: Map customers and items' }).waitFor();
    await page.goBack();
    await page.getByRole('link', { name: 'Open step 3: Map alerts to tickets' }).click();
    await page.getByRole('heading', { name: 'Step 3 of 3: Map alerts to tickets' }).waitFor();
    await page.goBack();
    await page.getByRole('link', { name: 'Open step 1: Connection' }).click();
    await page.getByRole('heading', { name: 'Step 1 of 3: Connection' }).waitFor();
  });

  step('client secret is never sent back', async () => {
    await page.getByText(`Connected to ${stack.emulator.url}`).waitFor();
    assert.equal(await page.getByLabel('Client secret').inputValue(), '');
    await page
      .getByText('A secret is stored. Leave this empty to keep it, or enter a new one.')
      .waitFor();
    assert.equal((await page.content()).includes(DEMO_SECRET), false);
    const leaked = apiResponses.filter((body) => body.includes(DEMO_SECRET));
    assert.deepEqual(leaked, [], 'no API response contains the secret');
    assert.ok(apiResponses.length > 20, 'the responses were recorded');
  });

  step('wizard opens at the summary once configured', async () => {
    await page.goto('/integrations/halopsa');
    await page.getByRole('heading', { name: 'HaloPSA integration summary' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/integrations/halopsa/summary');
  });

  step('summary lists a broken mapping', async () => {
    await deleteEmulatorClient(stack.emulator, halo2.clientC.id);
    const queued = await stack.api('POST', '/integrations/halopsa/reconcile');
    assert.equal(queued.status, 202);
    await eventually(
      async () =>
        (await stack.api('GET', '/integrations/halopsa')).body.problems.length > 0
          ? true
          : undefined,
      'the problem of the deleted client',
    );
    await page.reload();
    const problems = page.getByRole('region', { name: /Problems to fix \(1\)/ });
    await problems.waitFor();
    const text = await problems.locator('li').innerText();
    const expected = `HaloPSA customer "${halo2.clientC.name}" (id ${halo2.clientC.id}) no longer exists`;
    assert.ok(text.includes(expected), text);
    await assertAccessible(page, 'the summary with a problem');
  });
});
