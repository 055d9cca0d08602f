// The alert page that every HaloPSA ticket links to. Real alerts of each kind are raised from an
// uploaded aggregate report, an uploaded failure report and a DNS change on a loopback DNS
// server, and the threshold alert is opened through the link in its HaloPSA ticket.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { aggregateReportXml, reportDay, rows } from '../../src/alerts/test-reports.ts';
import { txt } from '../../src/dns/test-dns.ts';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.ts';
import { eventually } from '../support/service.ts';
import {
  assertAccessible,
  DEMO_CLIENT_ID,
  DEMO_SECRET,
  PASSWORD,
  signInThroughPage,
  startBrowserStack,
  type BrowserStack,
} from './support.ts';

const THRESHOLD_DOMAIN = 'evidence.example';
const FORENSIC_DOMAIN = 'forensic.example';
const DNS_DOMAIN = 'records.example';
const STRICT = 'v=DMARC1; p=reject; rua=mailto:rua@records.example';
const LAX = 'v=DMARC1; p=none; rua=mailto:rua@records.example';

interface EmulatorTicket {
  id: number;
  details: string;
  third_party_id_string?: string;
}

/** Build an RFC 6591 failure report about one message from `domain`. */
function failureReport(domain: string): Buffer {
  const lines = [
    'From: ruf@reporter.example',
    'To: dmarc-ruf@msp.example',
    `Subject: DMARC failure report for ${domain}`,
    'Date: Fri, 04 Dec 2026 10:00:00 +0000',
    'Message-ID: <alert-page-ruf@reporter.example>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="page-boundary"',
    '',
    '--page-boundary',
    'Content-Type: text/plain',
    '',
    'An authentication failure report for a message from 203.0.113.77.',
    '',
    '--page-boundary',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: auth-failure',
    'Version: 1',
    'User-Agent: alert-page-test/1.0',
    'Auth-Failure: dmarc',
    `Authentication-Results: mx.reporter.example; dmarc=fail header.from=${domain}`,
    `Original-Mail-From: billing@${domain}`,
    'Source-IP: 203.0.113.77',
    `Reported-Domain: ${domain}`,
    '',
    '--page-boundary',
    'Content-Type: text/rfc822-headers',
    '',
    `From: billing@${domain}`,
    'To: someone@recipient.example',
    'Subject: Invoice 4471 overdue',
    `Message-ID: <invoice-4471@${domain}>`,
    '',
    '--page-boundary--',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

/** Return the text of the fact labelled `label` in the page's facts lists. */
async function fact(page: Page, label: string): Promise<string> {
  const term = page.locator('dt').getByText(label, { exact: true });
  const row = page.locator('.facts__row', { has: term });
  return row.first().locator('dd').innerText();
}

describe('alert page in the browser', { timeout: 180_000 }, () => {
  let stack: BrowserStack;
  let dns: TestDnsServer;
  let customerId = '';
  let dnsDomainId = '';

  before(async () => {
    dns = await startDnsServer({
      [`_dmarc.${DNS_DOMAIN}`]: txt(STRICT),
      [DNS_DOMAIN]: txt('v=spf1 -all'),
    });
    stack = await startBrowserStack({
      environment: {
        DMARCDESK_DNS_SERVERS: dns.address,
        DMARCDESK_DNS_TIMEOUT_MS: '250',
        DMARCDESK_DNS_CONFIRM_DELAY_SECONDS: '0',
        DMARCDESK_DNS_SWEEP_SECONDS: '1',
      },
    });
    const { api } = stack;
    const connected = await api('PUT', '/integrations/halopsa/connection', {
      url: stack.emulator.url,
      clientId: DEMO_CLIENT_ID,
      clientSecret: DEMO_SECRET,
    });
    assert.equal(connected.status, 200, JSON.stringify(connected.body));

    customerId = (await api('POST', '/customers', { name: 'Evidence Dental' })).body.id;
    const domainIds: Record<string, string> = {};
    for (const name of [THRESHOLD_DOMAIN, FORENSIC_DOMAIN, DNS_DOMAIN]) {
      const domain = await api('POST', `/customers/${customerId}/domains`, { name });
      assert.equal(domain.status, 201, JSON.stringify(domain.body));
      domainIds[name] = domain.body.id;
    }
    dnsDomainId = domainIds[DNS_DOMAIN]!;
    const rule = await api('PUT', `/domains/${domainIds[THRESHOLD_DOMAIN]}/threshold`, {
      maxFailedMessages: 3,
      windowHours: 24,
    });
    assert.equal(rule.status, 200, JSON.stringify(rule.body));

    const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients;
    const client = clients.find((entry: { inactive: boolean }) => !entry.inactive);
    const items = (await api('GET', '/integrations/halopsa/items')).body.items;
    const item = items.find(
      (entry: { name: string }) => entry.name === 'DMARC Monitoring (per domain)',
    );
    const mapped = await api('PUT', '/integrations/halopsa/mappings', {
      mappings: [{ customerId, haloClientId: client.id, haloItemId: item.id }],
    });
    assert.equal(mapped.status, 200, JSON.stringify(mapped.body));
    const types = (await api('GET', '/integrations/halopsa/ticket-types')).body;
    const ticketRule = await api('PUT', `/integrations/halopsa/ticket-rules/${customerId}`, {
      ticketTypeId: types.defaultTicketTypeId,
      thresholdDomainIds: [domainIds[THRESHOLD_DOMAIN]],
    });
    assert.equal(ticketRule.status, 200, JSON.stringify(ticketRule.body));
  });

  after(async () => {
    await stack?.stop();
    await dns?.stop();
  });

  test('ticket link opens alert after sign-in', async () => {
    const xml = aggregateReportXml({
      domain: THRESHOLD_DOMAIN,
      orgName: 'google.com',
      reportId: 'alert-page-1',
      period: reportDay(1),
      records: rows(7, 13),
    });
    const upload = await stack.api('POST', '/reports', xml, 'application/xml');
    assert.equal(upload.status, 201, JSON.stringify(upload.body));

    const ticket = await eventually(async () => {
      const response = await fetch(`${stack.emulator.url}/_emulator/records/Tickets`);
      const { records } = (await response.json()) as { records: EmulatorTicket[] };
      return records.find((record) => record.details.includes(THRESHOLD_DOMAIN));
    }, 'the HaloPSA ticket of the threshold alert');
    const link = /Evidence in dmarcdesk: (\S+)/.exec(ticket.details)?.[1];
    assert.ok(link, `the ticket details contain the evidence link: ${ticket.details}`);
    const path = new URL(link).pathname;
    assert.match(path, /^\/alerts\/[0-9a-f-]{36}$/);
    assert.equal(path, `/alerts/${ticket.third_party_id_string}`);
    // The ticket exists in HaloPSA a moment before dmarcdesk records its number.
    await eventually(async () => {
      const alert = (await stack.api('GET', path)).body;
      return alert.halopsaTicketId === ticket.id ? true : undefined;
    }, 'the ticket number recorded on the alert');

    const page = await stack.newPage();
    await page.goto(path);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email address').fill('owner@northwind.example');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.getByRole('heading', { name: `Threshold alert: ${THRESHOLD_DOMAIN}` }).waitFor();
    assert.equal(new URL(page.url()).pathname, path);
    assert.equal(await fact(page, 'Customer'), 'Evidence Dental');
    assert.equal(await fact(page, 'Domain'), THRESHOLD_DOMAIN);
    assert.equal(await fact(page, 'Failing DMARC'), '7 messages of 20 (35.00 %)');
    assert.equal(await fact(page, 'Window'), 'The last 24 hours of reports.');
    assert.equal(await fact(page, 'Exceeded'), 'the count of failing messages');
    assert.equal(await fact(page, 'Report that triggered it'), 'alert-page-1 from google.com');
    assert.equal(await fact(page, 'HaloPSA'), `This alert opened HaloPSA ticket ${ticket.id}.`);
    const incident = page.locator('section', { has: page.locator('#incident-title') });
    assert.match(await incident.innerText(), /Status\s+Open/);
    assert.match(await incident.innerText(), new RegExp(`HaloPSA ticket\\s+Ticket ${ticket.id}`));
    assert.match(await incident.innerText(), /No note has been added to the ticket\./);

    const sources = page.getByRole('table', { name: 'Top failing sources' });
    const cells = await sources.locator('tbody tr').allInnerTexts();
    assert.deepEqual(
      cells.map((row) => row.split('\t').map((cell) => cell.trim())),
      [
        ['198.51.100.10', '4'],
        ['198.51.100.20', '3'],
      ],
    );
    await assertAccessible(page, 'the alert page');
  });

  test('forensic alert shows reported headers', async () => {
    const upload = await stack.api(
      'POST',
      '/reports',
      failureReport(FORENSIC_DOMAIN),
      'message/rfc822',
    );
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const alert = await eventually(async () => {
      const found = (await stack.api('GET', '/alerts?kind=forensic')).body.alerts;
      return found.length === 1 ? found[0] : undefined;
    }, 'the forensic alert');

    const page = await stack.newPage();
    await signInThroughPage(page, 'owner@northwind.example', PASSWORD, `/alerts/${alert.id}`);
    await page.getByRole('heading', { name: `Forensic alert: ${FORENSIC_DOMAIN}` }).waitFor();
    assert.equal(await fact(page, 'Sending IP address'), '203.0.113.77');
    assert.equal(await fact(page, 'Failed checks'), 'dmarc');
    assert.equal(await fact(page, 'Subject'), 'Invoice 4471 overdue');
    assert.equal(await fact(page, 'From'), `billing@${FORENSIC_DOMAIN}`);
    assert.equal(await fact(page, 'Message-ID'), `<invoice-4471@${FORENSIC_DOMAIN}>`);
    const evidence = page.locator('section', { has: page.locator('#evidence-title') });
    assert.match(
      await evidence.innerText(),
      new RegExp(`dmarc=fail header\\.from=${FORENSIC_DOMAIN.replace('.', '\\.')}`),
    );
    assert.match(
      await fact(page, 'HaloPSA'),
      /^No ticket rule covers this alert, so it made no HaloPSA ticket\.$/,
    );
    await assertAccessible(page, 'the forensic alert page');
  });

  test('DNS alert shows records before and after', async () => {
    const { api } = stack;
    const checkNow = async () => {
      const since = (await api('GET', `/domains/${dnsDomainId}/dns`)).body.lastCheckedAt ?? '';
      assert.equal((await api('POST', `/domains/${dnsDomainId}/dns/check`)).status, 202);
      await eventually(async () => {
        const state = (await api('GET', `/domains/${dnsDomainId}/dns`)).body;
        return state.lastCheckedAt && state.lastCheckedAt > since ? true : undefined;
      }, 'a new DNS check');
    };
    await checkNow();
    dns.set(`_dmarc.${DNS_DOMAIN}`, txt(LAX));
    await checkNow();
    const alert = await eventually(async () => {
      const found = (await api('GET', '/alerts?kind=dns')).body.alerts;
      return found.find(
        (entry: { domainName: string; evidence: { recordKind: string } }) =>
          entry.domainName === DNS_DOMAIN && entry.evidence.recordKind === 'dmarc',
      );
    }, 'the confirmed DMARC change');

    const page = await stack.newPage();
    await signInThroughPage(page, 'owner@northwind.example', PASSWORD, `/alerts/${alert.id}`);
    await page.getByRole('heading', { name: `DNS alert: ${DNS_DOMAIN}` }).waitFor();
    assert.equal(await fact(page, 'Record'), `DMARC at _dmarc.${DNS_DOMAIN}`);
    assert.equal(await fact(page, 'Change'), 'The record was weakened');
    const before = page.getByRole('region', { name: 'Before the change' });
    const afterChange = page.getByRole('region', { name: 'After the change' });
    assert.equal(await before.locator('pre').innerText(), STRICT);
    assert.equal(await afterChange.locator('pre').innerText(), LAX);
    assert.match(await before.innerText(), /Verdict\s+\S/);
    assert.match(await afterChange.innerText(), /Verdict\s+\S/);
    await assertAccessible(page, 'the DNS alert page');
  });

  test('unknown alert id says not found', async () => {
    const page = await stack.newPage();
    const missing = '00000000-0000-4000-8000-000000000000';
    await signInThroughPage(page, 'owner@northwind.example', PASSWORD, `/alerts/${missing}`);
    await page.getByRole('heading', { name: 'Alert not shown' }).waitFor();
    assert.match(await page.getByRole('alert').innerText(), new RegExp(missing));
    assert.equal(await page.getByRole('heading', { name: 'Page not found' }).count(), 0);
  });
});
