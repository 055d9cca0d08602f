// Steps 2 and 3 with 5,000 customer accounts and 5,000 HaloPSA customers: every row and
// panel is reachable, while only the ones on screen are in the DOM.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { groupDigits, seedScaleAccount, type ScaleAccount } from './scale-data.ts';
import {
  DEMO_CLIENT_ID,
  DEMO_SECRET,
  emulatorRecords,
  sequentialSteps,
  signInThroughPage,
  startBrowserStack,
  type BrowserStack,
} from './support.ts';

const CUSTOMERS = 5000;
/** Far fewer than the 5,000 rows: what a screen shows plus the virtualiser's overscan. */
const MAX_RENDERED = 60;

describe('HaloPSA wizard with 5,000 customers', { timeout: 240_000 }, () => {
  let stack: BrowserStack;
  let page: Page;
  let account: ScaleAccount;
  /** Customer names in the order of the customer list, which is the order of the rows. */
  let listed: string[];
  const step = sequentialSteps();

  before(async () => {
    stack = await startBrowserStack({ clients: CUSTOMERS });
    account = await seedScaleAccount(stack.service.app, stack.accountId, stack.emulator, CUSTOMERS);
    const connected = await stack.api('PUT', '/integrations/halopsa/connection', {
      url: stack.emulator.url,
      clientId: DEMO_CLIENT_ID,
      clientSecret: DEMO_SECRET,
    });
    assert.equal(connected.status, 200);
    listed = (await stack.api('GET', '/customers')).body.customers.map(
      (customer: { name: string }) => customer.name,
    );
    page = await stack.newPage();
    await signInThroughPage(page, 'owner@northwind.example', undefined, '/integrations/halopsa');
    await page.getByRole('heading', { name: 'Step 2 of 3: Map customers and items' }).waitFor();
  });

  after(async () => {
    await stack?.stop();
  });

  const renderedRows = () => page.locator('table.mapping-table tbody tr:not(.spacer)').count();

  step('Add All Customers adds 5,000 rows', async () => {
    await page.getByText('No rows yet.').waitFor({ timeout: 30_000 });
    await page
      .getByLabel('Item for new rows')
      .selectOption({ label: 'DMARC Monitoring (per domain)' });
    await page.getByRole('button', { name: 'Add All Customers' }).click();
    await page
      .getByRole('status')
      .filter({
        hasText: `Added ${groupDigits(CUSTOMERS)} rows; ${groupDigits(account.matchable)} matched`,
      })
      .waitFor();
    assert.equal(
      await page.locator('table.mapping-table').getAttribute('aria-rowcount'),
      String(CUSTOMERS + 1),
    );
    const rendered = await renderedRows();
    assert.ok(rendered > 5, `only ${rendered} rows are in the DOM`);
    assert.ok(rendered < MAX_RENDERED, `${rendered} rows are in the DOM`);
  });

  step('matched rows are saved as one set', async () => {
    await page
      .locator('.save-state', { hasText: `${groupDigits(account.matchable)} complete rows saved.` })
      .waitFor({ timeout: 60_000 });
    const mappings = (await stack.api('GET', '/integrations/halopsa/mappings')).body.mappings;
    assert.equal(mappings.length, account.matchable);
  });

  step('last row is reachable by scrolling', async () => {
    await page.locator('.table-scroll').evaluate((element) => {
      element.scrollTop = element.scrollHeight;
    });
    const last = page.getByRole('combobox', {
      name: `Customer account, row ${CUSTOMERS}`,
      exact: true,
    });
    await last.waitFor();
    assert.equal(await last.inputValue(), listed.at(-1));
    assert.ok((await renderedRows()) < MAX_RENDERED);
  });

  step('combobox lists 5,000 options virtually', async () => {
    const combobox = page.getByRole('combobox', {
      name: `HaloPSA customer, row ${CUSTOMERS}`,
      exact: true,
    });
    await combobox.click();
    const options = page.getByRole('listbox').getByRole('option');
    await options.first().waitFor();
    // The list contains the active HaloPSA customers: the seed makes some of the 5,000 inactive.
    const active = (await emulatorRecords(stack.emulator, 'Client')).filter((c) => !c.inactive);
    assert.ok(active.length > CUSTOMERS * 0.9);
    assert.equal(await options.first().getAttribute('aria-setsize'), String(active.length));
    const rendered = await options.count();
    assert.ok(rendered < 30, `${rendered} options are in the DOM`);
    await combobox.fill(account.customerNames[1234]!);
    assert.equal(
      await options
        .first()
        .innerText()
        .then((text) => text.split('\n')[0]),
      account.customerNames[1234],
    );
    await page.keyboard.press('Escape');
  });

  step('row filter finds one customer', async () => {
    await page.getByLabel('Filter rows').fill(listed[4321]!);
    await page.waitForFunction(
      () => document.querySelectorAll('table.mapping-table tbody tr:not(.spacer)').length === 1,
    );
    assert.equal(
      await page.locator('table.mapping-table tbody tr:not(.spacer) td').first().innerText(),
      '4322',
    );
    await page.getByLabel('Filter rows').fill('');
  });

  step('step 3 shows 5,000 panels virtually', async () => {
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto('/integrations/halopsa/alerts');
    await page
      .locator('#alerts-search-count', {
        hasText: `${groupDigits(account.matchable)} mapped customers`,
      })
      .waitFor({ timeout: 30_000 });
    const panels = await page.locator('.panel').count();
    assert.ok(panels > 5, `only ${panels} panels are in the DOM`);
    assert.ok(panels < MAX_RENDERED, `${panels} panels are in the DOM`);
  });

  step('domain search finds one customer', async () => {
    await page.getByLabel('Search customers').fill('mail.c1.scale.example');
    await page.locator('#alerts-search-count', { hasText: /^1 of / }).waitFor();
    assert.deepEqual(await page.locator('.panel__name').allInnerTexts(), [
      account.customerNames[0],
    ]);
    await page.getByLabel('Search customers').fill('');
  });

  step('Expand All keeps the DOM small', async () => {
    await page.getByRole('button', { name: 'Expand All' }).click();
    await page.locator('.panel__body .alert-table').first().waitFor({ timeout: 30_000 });
    // Expanded panels are taller, so the virtual list drops panels while it measures them.
    // Both counts are read from one DOM snapshot once the list has settled.
    const counts = await page.waitForFunction(
      () => {
        const panels = document.querySelectorAll('.panel').length;
        const expanded = document.querySelectorAll('.panel__toggle[aria-expanded="true"]').length;
        return panels > 0 && panels === expanded ? { panels, expanded } : null;
      },
      undefined,
      { timeout: 30_000 },
    );
    const { panels } = (await counts.jsonValue())!;
    assert.ok(panels < MAX_RENDERED, `${panels} panels are in the DOM`);
  });
});
