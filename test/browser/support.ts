// What the browser tests share: the web build, the HaloPSA emulator, the service on PGlite and
// Debian's Chromium, all on 127.0.0.1, and helpers to sign in, check accessibility and save
// screenshots.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AxeBuilder } from '@axe-core/playwright';
import { test, type TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startEmulator, type RunningEmulator } from '../../emulator/halopsa/server.ts';
import { pgliteDatabase } from '../support/databases.ts';
import {
  apiClient,
  createTestAccount,
  startService,
  type TestService,
} from '../support/service.ts';
import { createTestUser } from '../support/sessions.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB_DIR = join(ROOT, 'web');
const WEB_INDEX = join(WEB_DIR, 'dist', 'index.html');
export const SCREENSHOT_DIR = join(ROOT, 'docs', 'screenshots');

/** Debian's Chromium; the tests never download a browser. */
export const CHROMIUM_PATH = process.env.DMARCDESK_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const DEMO_CLIENT_ID = 'dmarcdesk-demo';
export const DEMO_SECRET = 'demo-secret-change-me';
export const PASSWORD = 'correct horse battery staple';

function newestChange(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(
    stat.mtimeMs,
    ...readdirSync(path).map((entry) => newestChange(join(path, entry))),
  );
}

/**
 * Build the web app unless web/dist is newer than every source it is built from, so that the
 * tests never run an old build.
 */
export async function ensureWebBuild(): Promise<void> {
  const sources = [
    join(WEB_DIR, 'src'),
    join(WEB_DIR, 'index.html'),
    join(WEB_DIR, 'vite.config.ts'),
    join(ROOT, 'src', 'contract'),
  ];
  let built = 0;
  try {
    built = statSync(WEB_INDEX).mtimeMs;
  } catch {
    built = 0;
  }
  if (built > Math.max(...sources.map(newestChange))) return;

  // Build beside web/dist and swap it in, so that a service another test run is serving from
  // web/dist never sees a half-written build.
  const { build } = await import('vite');
  const fresh = join(WEB_DIR, `.dist-${process.pid}`);
  const old = join(WEB_DIR, `.dist-old-${process.pid}`);
  await build({
    root: WEB_DIR,
    logLevel: 'warn',
    configFile: join(WEB_DIR, 'vite.config.ts'),
    build: { outDir: fresh, emptyOutDir: true },
  });
  if (existsSync(join(WEB_DIR, 'dist'))) renameSync(join(WEB_DIR, 'dist'), old);
  renameSync(fresh, join(WEB_DIR, 'dist'));
  rmSync(old, { recursive: true, force: true });
}

/** Launch Chromium headless, with a fresh temporary profile. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

export interface BrowserStack {
  emulator: RunningEmulator;
  service: TestService;
  browser: Browser;
  accountId: string;
  /** The service's API with an API token of the account. */
  api: ReturnType<typeof apiClient>;
  /** A new browser context (its own cookies) with a page, stopped by stop(). */
  newPage(options?: { bypassCSP?: boolean }): Promise<Page>;
  stop(): Promise<void>;
}

/**
 * Start the emulator, the service on PGlite with an MSSP account (HaloPSA Integration on) and
 * an owner user, and Chromium.
 */
export async function startBrowserStack(
  options: { clients?: number; ownerEmail?: string; environment?: Record<string, string> } = {},
): Promise<BrowserStack> {
  await ensureWebBuild();
  const emulator = await startEmulator({
    seed: options.clients ? { clients: options.clients } : true,
    rateLimit: null,
  });
  const service = await startService(pgliteDatabase(), {
    allowedHosts: [new URL(emulator.url).host],
    ...(options.environment ? { environment: options.environment } : {}),
  });
  const { accountId, token } = await createTestAccount(service.app);
  await createTestUser(
    service.app,
    accountId,
    options.ownerEmail ?? 'owner@northwind.example',
    'mssp_owner',
    PASSWORD,
  );
  const browser = await launchChromium();
  const contexts: BrowserContext[] = [];
  return {
    emulator,
    service,
    browser,
    accountId,
    api: apiClient(service.url, token),
    async newPage(pageOptions = {}) {
      const context = await browser.newContext({
        baseURL: service.url,
        viewport: { width: 1280, height: 900 },
        ...pageOptions,
      });
      contexts.push(context);
      // A broken page fails its test in seconds rather than after Playwright's 30 s default.
      context.setDefaultTimeout(10_000);
      // Only the service on 127.0.0.1 may be reached from the page.
      await context.route(
        (url) => url.hostname !== '127.0.0.1',
        (route) => route.abort(),
      );
      return context.newPage();
    },
    async stop() {
      for (const context of contexts) await context.close().catch(() => undefined);
      await browser.close();
      await service.stop();
      await emulator.close();
    },
  };
}

/** Sign in through the sign-in page and wait for the page that follows. */
export async function signInThroughPage(
  page: Page,
  email: string,
  password = PASSWORD,
  path = '/',
): Promise<void> {
  await page.goto(path);
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Run axe-core on the page and fail on any serious or critical violation. */
export async function assertAccessible(page: Page, pageName: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const severe = results.violations.filter(
    (violation) => violation.impact === 'serious' || violation.impact === 'critical',
  );
  const described = severe.map(
    (violation) =>
      `${violation.id} (${violation.impact}): ${violation.help} at ${violation.nodes
        .slice(0, 3)
        .map((node) => node.target.join(' '))
        .join(', ')}`,
  );
  assert.deepEqual(described, [], `axe-core found serious problems on ${pageName}`);
}

/** Save a full-page screenshot under docs/screenshots. */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** Obtain an emulator access token for the seeded application, for calls made by the test. */
export async function emulatorToken(emulator: RunningEmulator): Promise<string> {
  const response = await fetch(`${emulator.url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: DEMO_CLIENT_ID,
      client_secret: DEMO_SECRET,
      scope: 'all',
    }),
  });
  assert.equal(response.status, 200, 'the emulator issues a token to the seeded application');
  return ((await response.json()) as { access_token: string }).access_token;
}

/** Delete a HaloPSA customer in the emulator through its API, as an administrator would. */
export async function deleteEmulatorClient(emulator: RunningEmulator, id: number): Promise<void> {
  const response = await fetch(`${emulator.url}/api/Client/${id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${await emulatorToken(emulator)}` },
  });
  assert.equal(response.status, 200, `the emulator deletes client ${id}`);
}

/** Return every stored record of one emulator resource. */
export async function emulatorRecords(
  emulator: RunningEmulator,
  resource: string,
): Promise<{ id: number; [field: string]: unknown }[]> {
  const response = await fetch(`${emulator.url}/_emulator/records/${resource}`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { records: { id: number }[] }).records;
}

/**
 * Return a `test` for steps that build on each other on one page: once a step fails, the
 * following ones are skipped rather than each waiting for elements that will never appear.
 */
export function sequentialSteps() {
  let failed: string | null = null;
  return (name: string, body: (context: TestContext) => Promise<void>) =>
    test(name, async (context) => {
      if (failed) {
        context.skip(`an earlier step failed: ${failed}`);
        return;
      }
      try {
        await body(context);
      } catch (error) {
        failed = name;
        throw error;
      }
    });
}
