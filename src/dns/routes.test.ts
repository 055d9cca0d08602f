import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { TestDnsServer } from '../../test/support/dns-server.ts';
import { startDnsServer } from '../../test/support/dns-server.ts';
import {
  DATABASE_ENGINES,
  openTestDatabase,
  type TestDatabase,
} from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
  type TestService,
} from '../../test/support/service.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { txt } from './test-dns.ts';

const domain = 'routes.example';

describe('DNS monitor settings in the configuration', () => {
  const base = { DMARCDESK_DATA_DIR: '/tmp/unused' };

  test('defaults to the system resolvers', () => {
    const config = loadConfig(base);

    assert.equal(config.dnsServers, null);
    assert.equal(config.dnsTimeoutMs, 2000);
    assert.equal(config.dnsConfirmDelaySeconds, 600);
    assert.equal(config.dnsSweepSeconds, 60);
  });

  test('reads servers with and without ports', () => {
    const config = loadConfig({
      ...base,
      DMARCDESK_DNS_SERVERS: '127.0.0.1:5353, 192.0.2.53,[::1]:53,2001:db8::53',
    });

    assert.deepEqual(config.dnsServers, [
      '127.0.0.1:5353',
      '192.0.2.53',
      '[::1]:53',
      '2001:db8::53',
    ]);
  });

  test('rejects names, bad ports and bad numbers', () => {
    assert.throws(
      () => loadConfig({ ...base, DMARCDESK_DNS_SERVERS: 'dns.example.net' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.some((problem) => problem.includes('"dns.example.net" is not a DNS server')),
    );
    assert.throws(
      () => loadConfig({ ...base, DMARCDESK_DNS_SERVERS: '192.0.2.53:70000' }),
      /is not a DNS server address/,
    );
    assert.throws(
      () => loadConfig({ ...base, DMARCDESK_DNS_SWEEP_SECONDS: '0' }),
      /DMARCDESK_DNS_SWEEP_SECONDS must be at least 1/,
    );
    assert.throws(
      () => loadConfig({ ...base, DMARCDESK_DNS_CONFIRM_DELAY_SECONDS: 'soon' }),
      /DMARCDESK_DNS_CONFIRM_DELAY_SECONDS must be a whole number/,
    );
  });
});

for (const engine of DATABASE_ENGINES) {
  describe(`DNS monitor routes on ${engine}`, () => {
    let database: TestDatabase;
    let dns: TestDnsServer;
    let service: TestService;
    let api: ReturnType<typeof apiClient>;
    let domainId = '';

    before(async () => {
      dns = await startDnsServer({
        [`_dmarc.${domain}`]: txt(`v=DMARC1; p=reject; rua=mailto:dmarc@${domain}`),
        [domain]: txt('v=spf1 ip4:192.0.2.0/24 -all'),
        [`s1._domainkey.${domain}`]: txt('v=DKIM1; p='),
      });
      database = await openTestDatabase(engine);
      service = await startService(database, {
        environment: {
          DMARCDESK_DNS_SERVERS: dns.address,
          DMARCDESK_DNS_TIMEOUT_MS: '250',
        },
      });
      api = apiClient(service.url, (await createTestAccount(service.app)).token);
      const customer = (await api('POST', '/customers', { name: 'Routes Customer' })).body;
      domainId = (await api('POST', `/customers/${customer.id}/domains`, { name: domain })).body.id;
    });

    after(async () => {
      await service?.stop();
      await database?.drop();
      await dns?.stop();
    });

    test('selectors are validated, normalised and audited', async () => {
      const saved = await api('PUT', `/domains/${domainId}/dns/selectors`, {
        selectors: ['S1'],
      });
      const invalid = await api('PUT', `/domains/${domainId}/dns/selectors`, {
        selectors: ['s1', 's1._domainkey'],
      });
      const audit = (await api('GET', '/audit-log?action=dns.selectors.updated')).body.entries;

      assert.equal(saved.status, 200);
      assert.deepEqual(saved.body, { selectors: ['s1'] });
      assert.equal(invalid.status, 400);
      assert.equal(invalid.body.error.field, 'selectors.1');
      assert.equal(audit.length, 1);
      assert.deepEqual(audit[0].after, { selectors: ['s1'] });
      assert.deepEqual(audit[0].before, { selectors: [] });
    });

    test('the interval has a default and bounds', async () => {
      const initial = await api('GET', '/dns/settings');
      const low = await api('PUT', '/dns/settings', { checkIntervalMinutes: 14 });
      const high = await api('PUT', '/dns/settings', { checkIntervalMinutes: 10_081 });
      const saved = await api('PUT', '/dns/settings', { checkIntervalMinutes: 120 });

      assert.deepEqual(initial.body, { checkIntervalMinutes: 360, custom: false });
      assert.equal(low.status, 400);
      assert.equal(low.body.error.field, 'checkIntervalMinutes');
      assert.equal(high.status, 400);
      assert.equal(saved.status, 200);
      assert.deepEqual((await api('GET', '/dns/settings')).body, {
        checkIntervalMinutes: 120,
        custom: true,
      });
    });

    test('state lists records before checks', async () => {
      const state = (await api('GET', `/domains/${domainId}/dns`)).body;

      assert.equal(state.domainName, domain);
      assert.equal(state.monitored, true);
      assert.deepEqual(state.dkimSelectors, ['s1']);
      assert.deepEqual(
        state.records.map((record: { name: string }) => record.name),
        [`_dmarc.${domain}`, domain, `s1._domainkey.${domain}`],
      );
      assert.ok(
        state.records.every(
          (record: { status: string; current: unknown }) =>
            record.status === 'not_checked' && record.current === null,
        ),
      );
    });

    test('check now records a baseline', async () => {
      const requested = await api('POST', `/domains/${domainId}/dns/check`);
      assert.equal(requested.status, 202);

      const state = await eventually(async () => {
        const body = (await api('GET', `/domains/${domainId}/dns`)).body;
        return body.records.every((record: { status: string }) => record.status === 'checked')
          ? body
          : undefined;
      }, 'every record checked');
      const [dmarc, spf, dkim] = state.records;

      assert.deepEqual(dmarc.current.normalised, [
        `v=DMARC1; p=reject; rua=mailto:dmarc@${domain}`,
      ]);
      assert.equal(dmarc.current.outcome, 'baseline');
      assert.equal(dmarc.current.trigger, 'manual');
      assert.equal(spf.current.meaning.ending, '-');
      assert.equal(dkim.current.meaning.keys[0].status, 'revoked');
      assert.equal(state.checkIntervalMinutes, 120);
      assert.ok(state.lastCheckedAt);
      assert.ok(Date.parse(state.nextCheckAt) > Date.parse(state.lastCheckedAt));
      assert.equal(state.nextCheckReason, 'scheduled');
    });

    test('history filters by record and pages back', async () => {
      const all = (await api('GET', `/domains/${domainId}/dns/history`)).body.observations;
      const dkim = (await api('GET', `/domains/${domainId}/dns/history?kind=dkim`)).body
        .observations;
      const one = (await api('GET', `/domains/${domainId}/dns/history?limit=1`)).body.observations;
      const older = (
        await api(
          'GET',
          `/domains/${domainId}/dns/history?before=${encodeURIComponent(all[0].observedAt)}`,
        )
      ).body.observations;
      const bad = await api('GET', `/domains/${domainId}/dns/history?kind=mx`);

      assert.ok(all.length >= 3);
      assert.ok(dkim.length >= 1);
      assert.ok(
        dkim.every(
          (item: { kind: string; selector: string }) =>
            item.kind === 'dkim' && item.selector === 's1',
        ),
      );
      assert.equal(one.length, 1);
      assert.ok(older.every((item: { observedAt: string }) => item.observedAt < all[0].observedAt));
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.field, 'kind');
    });

    test('another account sees none of it', async () => {
      const other = apiClient(
        service.url,
        (await createTestAccount(service.app, 'Other MSP')).token,
      );

      assert.equal((await other('GET', `/domains/${domainId}/dns`)).status, 404);
      assert.equal((await other('GET', `/domains/${domainId}/dns/history`)).status, 404);
      assert.equal((await other('POST', `/domains/${domainId}/dns/check`)).status, 404);
      assert.equal(
        (await other('PUT', `/domains/${domainId}/dns/selectors`, { selectors: [] })).status,
        404,
      );
      assert.deepEqual((await other('GET', '/dns/settings')).body, {
        checkIntervalMinutes: 360,
        custom: false,
      });
    });
  });
}
