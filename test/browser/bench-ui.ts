// Benchmarks of the web UI in Chromium with 5,000 customer accounts, 5,000 saved mappings and
// 5,000 HaloPSA customers: first render of steps 2 and 3, and the latency of each filter.
// Run with `npm run bench:ui`; it prints a Markdown table. Every server it starts listens on
// 127.0.0.1 and is stopped at the end.
import { cpus, totalmem } from 'node:os';
import type { Page } from 'playwright-core';
import { seedScaleAccount } from './scale-data.ts';
import {
  DEMO_CLIENT_ID,
  DEMO_SECRET,
  emulatorRecords,
  signInThroughPage,
  startBrowserStack,
} from './support.ts';

const CUSTOMERS = 5000;
const ROUNDS = 5;

interface Row {
  name: string;
  value: string;
}
const rows: Row[] = [];

function record(name: string, value: string): void {
  rows.push({ name, value });
  process.stderr.write(`${name}: ${value}\n`);
}

function summarise(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median ${median.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms (${values.length} runs)`;
}

/**
 * Type `query` into the input matched by `selector` from inside the page, and return the
 * milliseconds until the expression `done` is true in a frame. The page checks `done` on every
 * animation frame and keeps the time of the first frame where it held.
 */
async function inputLatency(
  page: Page,
  selector: string,
  query: string,
  done: string,
): Promise<number> {
  await page.evaluate(
    ({ selector, query }) => {
      const input = document.querySelector<HTMLInputElement>(selector)!;
      const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
      const timing = window as unknown as { benchStart: number; benchEnd: number | null };
      timing.benchEnd = null;
      timing.benchStart = performance.now();
      setValue.call(input, query);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
    { selector, query },
  );
  return waitForFrame(page, done);
}

/** Wait until `done` is true in an animation frame, and return the time since `benchStart`. */
async function waitForFrame(page: Page, done: string): Promise<number> {
  await page.waitForFunction(
    `(() => { if (!(${done})) return false; window.benchEnd ??= performance.now(); return true; })()`,
    undefined,
    { polling: 'raf', timeout: 20_000 },
  );
  return page.evaluate(() => {
    const timing = window as unknown as { benchStart: number; benchEnd: number };
    return timing.benchEnd - timing.benchStart;
  });
}

/** Return the milliseconds from the start of the page's navigation until `done` is true. */
async function sinceNavigation(page: Page, done: string): Promise<number> {
  await page.waitForFunction(done, undefined, { timeout: 60_000, polling: 'raf' });
  return page.evaluate(() => performance.now());
}

async function slowestApiCall(page: Page): Promise<string> {
  const entries = await page.evaluate(() =>
    performance
      .getEntriesByType('resource')
      .filter((entry) => entry.name.includes('/api/v1/'))
      .map((entry) => ({ name: new URL(entry.name).pathname, duration: entry.duration })),
  );
  const slowest = entries.sort((a, b) => b.duration - a.duration)[0];
  return slowest ? `${slowest.name} ${slowest.duration.toFixed(0)} ms` : 'none';
}

const stack = await startBrowserStack({ clients: CUSTOMERS });
try {
  const account = await seedScaleAccount(
    stack.service.app,
    stack.accountId,
    stack.emulator,
    CUSTOMERS,
  );
  await stack.api('PUT', '/integrations/halopsa/connection', {
    url: stack.emulator.url,
    clientId: DEMO_CLIENT_ID,
    clientSecret: DEMO_SECRET,
  });
  const clients = (await emulatorRecords(stack.emulator, 'Client'))
    .filter((client) => !client.inactive)
    .sort((a, b) => a.id - b.id);
  const items = (await stack.api('GET', '/integrations/halopsa/items')).body.items;
  const mapped = await stack.api('PUT', '/integrations/halopsa/mappings', {
    // One HaloPSA customer per mapping: the seed has a few inactive ones, so a few customer
    // accounts stay unmapped.
    mappings: account.customerIds.slice(0, clients.length).map((customerId, index) => ({
      customerId,
      haloClientId: clients[index]!.id,
      haloItemId: items[0].id,
    })),
  });
  if (mapped.status !== 200) throw new Error(`mapping failed: ${JSON.stringify(mapped.body)}`);
  const mappedCount: number = mapped.body.mappings.length;
  const listed: string[] = (await stack.api('GET', '/customers')).body.customers.map(
    (customer: { name: string }) => customer.name,
  );

  // Playwright's waitForFunction evaluates its predicate in the page, which the app's
  // Content-Security-Policy forbids; the policy does not change how fast the page renders.
  const page = await stack.newPage({ bypassCSP: true });
  page.setDefaultTimeout(60_000);
  await signInThroughPage(page, 'owner@northwind.example');

  // Step 2: the whole table, loaded from the saved mappings.
  const step2: number[] = [];
  let step2Api = '';
  for (let round = 0; round < ROUNDS; round += 1) {
    await page.goto('/integrations/halopsa/customers');
    step2.push(
      await sinceNavigation(
        page,
        `document.querySelector('table.mapping-table tbody tr[data-index]') !== null`,
      ),
    );
    step2Api = await slowestApiCall(page);
  }
  record(
    `step 2 first render, ${mappedCount} saved rows (navigation to first row)`,
    summarise(step2),
  );
  record('step 2 slowest API call of the last load', step2Api);

  const filterTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const name = listed[(round * 997 + 13) % listed.length]!;
    filterTimes.push(
      await inputLatency(
        page,
        'input[type=search]',
        name,
        `document.querySelectorAll('table.mapping-table tbody tr[data-index]').length >= 1 &&
         [...document.querySelectorAll('table.mapping-table tbody tr[data-index] td:nth-child(2) input')]
           .every((input) => input.value.toLowerCase().includes(${JSON.stringify(name.toLowerCase())}))`,
      ),
    );
    await inputLatency(
      page,
      'input[type=search]',
      '',
      `document.querySelectorAll('table.mapping-table tbody tr[data-index]').length > 5`,
    );
  }
  record('step 2 row filter, keystroke to painted result', summarise(filterTimes));

  const comboTimes: number[] = [];
  const combobox = page.getByRole('combobox', { name: 'HaloPSA customer, row 1', exact: true });
  for (let round = 0; round < ROUNDS; round += 1) {
    const name = (clients[(round * 1231 + 7) % clients.length]!.name as string).slice(0, 14);
    await combobox.click();
    comboTimes.push(
      await inputLatency(
        page,
        '[id$="-client"][role=combobox][aria-expanded=true]',
        name,
        `(() => { const first = document.querySelector('[role=listbox] [role=option] .combobox__label');
           return first !== null && first.textContent.toLowerCase().includes(${JSON.stringify(name.toLowerCase())}); })()`,
      ),
    );
    await page.keyboard.press('Escape');
  }
  record(`HaloPSA customer list filter, ${clients.length} options`, summarise(comboTimes));

  // Step 3: one collapsed panel per mapped customer.
  const step3: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    await page.goto('/integrations/halopsa/alerts');
    step3.push(await sinceNavigation(page, `document.querySelector('.panel__toggle') !== null`));
  }
  record(
    `step 3 first render, ${mappedCount} panels (navigation to first panel)`,
    summarise(step3),
  );
  record('step 3 slowest API call of the last load', await slowestApiCall(page));

  const searchTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const domain = `c${(round * 1009 + 17) % CUSTOMERS}.scale.example`;
    searchTimes.push(
      await inputLatency(
        page,
        'input[type=search]',
        domain,
        `document.getElementById('alerts-search-count').textContent.startsWith('1 of')
         || document.getElementById('alerts-search-count').textContent.startsWith('2 of')`,
      ),
    );
    await inputLatency(
      page,
      'input[type=search]',
      '',
      `!document.getElementById('alerts-search-count').textContent.includes(' of ')`,
    );
  }
  record('step 3 search by domain, keystroke to painted result', summarise(searchTimes));

  const expandTimes: number[] = [];
  const collapse = page.getByRole('button', { name: 'Collapse All' });
  for (let round = 0; round < ROUNDS; round += 1) {
    if (await collapse.isEnabled()) {
      await collapse.click();
      await page.waitForFunction(() => document.querySelectorAll('.panel__body').length === 0);
    }
    await page.evaluate(() => {
      const timing = window as unknown as { benchStart: number; benchEnd: number | null };
      const button = [...document.querySelectorAll('button')].find(
        (candidate) => candidate.textContent === 'Expand All',
      )!;
      timing.benchEnd = null;
      timing.benchStart = performance.now();
      button.click();
    });
    expandTimes.push(
      await waitForFrame(
        page,
        `document.querySelectorAll('.panel__toggle').length > 0 &&
         document.querySelectorAll('.panel__body').length ===
           document.querySelectorAll('.panel__toggle').length`,
      ),
    );
  }
  record(
    'step 3 Expand All, click to expanded panels on screen (before their rules load)',
    summarise(expandTimes),
  );

  const dom = await page.evaluate(() => document.getElementsByTagName('*').length);
  record('step 3 DOM elements after Expand All', String(dom));

  const cpu = cpus();
  process.stdout.write(
    [
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), ` +
        `${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}, Chromium ${stack.browser.version()}.`,
      '',
      '| benchmark | result |',
      '| --- | --- |',
      ...rows.map((row) => `| ${row.name} | ${row.value} |`),
      '',
    ].join('\n'),
  );
} finally {
  await stack.stop();
}
