import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import type { TestDnsServer, Zone } from '../../test/support/dns-server.ts';
import { startDnsServer } from '../../test/support/dns-server.ts';
import { DATABASE_ENGINES } from '../../test/support/databases.ts';
import { raiseDnsAlertForChange } from '../alerts/dns-evaluation.ts';
import { AlertService } from '../alerts/alert-service.ts';
import type { Alert, DnsEvidence } from '../alerts/alert-store.ts';
import { listAlerts } from '../alerts/alert-store.ts';
import { DnsMonitor } from './monitor.ts';
import { setDkimSelectors } from './monitor-settings.ts';
import type { MonitorTestDatabase } from './monitor-test-support.ts';
import { openMonitorDatabase, silentLogger, TestClock } from './monitor-test-support.ts';
import type { StoredObservation } from './observation-store.ts';
import {
  listObservations,
  listRecordStates,
  purgeUnchangedObservations,
} from './observation-store.ts';
import { DnsResolver } from './resolver.ts';
import { longTxt, txt } from './test-dns.ts';

/** Confirmation delay of the monitors in these tests; the clock moves by it between rounds. */
const confirmDelaySeconds = 600;

function rsaKey(bits: number): string {
  return generateKeyPairSync('rsa', { modulusLength: bits })
    .publicKey.export({ type: 'spki', format: 'der' })
    .toString('base64');
}

const strongKey = rsaKey(2048);
const rotatedKey = rsaKey(2048);
const weakKey = rsaKey(1024);

/** Build the zone of a healthy domain: DMARC reject, SPF with one include, one DKIM key. */
function healthyZone(domain: string): Zone {
  return {
    [`_dmarc.${domain}`]: txt(`v=DMARC1; p=reject; rua=mailto:dmarc@${domain}`),
    [domain]: txt(`v=spf1 ip4:192.0.2.0/24 include:_spf.${domain} -all`),
    [`_spf.${domain}`]: txt('v=spf1 ip4:198.51.100.0/24 -all'),
    [`s1._domainkey.${domain}`]: longTxt(`v=DKIM1; k=rsa; p=${strongKey}`),
  };
}

for (const engine of DATABASE_ENGINES) {
  describe(`DNS monitor on ${engine}`, () => {
    let fixture: MonitorTestDatabase;
    let server: TestDnsServer;
    let alerts: AlertService;

    before(async () => {
      fixture = await openMonitorDatabase(engine);
      server = await startDnsServer();
      alerts = new AlertService();
    });

    after(async () => {
      await server?.stop();
      await fixture?.close();
    });

    /**
     * Add a domain with selector s1 whose records the server serves from `zone`, and return a
     * function that moves the clock by the confirmation delay and checks the domain once.
     */
    async function monitored(domain: string, zone: Zone = healthyZone(domain)) {
      for (const [owner, entry] of Object.entries(zone)) server.set(owner, entry);
      const added = await fixture.domains.add(fixture.accountId, fixture.customerId, {
        name: domain,
      });
      await setDkimSelectors(fixture.db, fixture.accountId, added.id, ['s1']);
      const clock = new TestClock();
      const monitor = new DnsMonitor({
        db: fixture.db,
        lookups: new DnsResolver({ servers: [server.address], timeoutMs: 80, tries: 1 }),
        logger: silentLogger,
        confirmDelaySeconds,
        now: clock.now,
        random: () => 0.5,
      });
      monitor.onChangeConfirmed(raiseDnsAlertForChange(alerts, silentLogger));
      const check = async (advanceSeconds = confirmDelaySeconds) => {
        clock.advanceSeconds(advanceSeconds);
        const result = await monitor.checkDomain(fixture.accountId, added.id, 'scheduled');
        assert.ok(result, `the check of ${domain} found the domain`);
        return result;
      };
      const domainAlerts = async (): Promise<Alert[]> =>
        (await listAlerts(fixture.db, fixture.accountId, { kind: 'dns' })).filter(
          (alert) => alert.domainId === added.id,
        );
      return { domainId: added.id, clock, monitor, check, domainAlerts };
    }

    function outcomeOf(observations: StoredObservation[], name: string): string | undefined {
      return observations.find((item) => item.name === name)?.outcome;
    }

    test('first check sets a silent baseline', async () => {
      const { domainId, check, domainAlerts } = await monitored('baseline.example');

      const first = await check(0);
      await check();

      assert.deepEqual(
        first.observations.map((item) => [item.name, item.outcome]),
        [
          ['_dmarc.baseline.example', 'baseline'],
          ['baseline.example', 'baseline'],
          ['s1._domainkey.baseline.example', 'baseline'],
        ],
      );
      assert.equal((await domainAlerts()).length, 0);
      const states = await listRecordStates(fixture.db, fixture.accountId, domainId);
      assert.equal(states.length, 3);
      assert.ok(states.every((state) => state.currentObservationId && !state.pendingObservationId));
    });

    test('stores raw text, meaning and lookup', async () => {
      const domain = 'history.example';
      const { domainId, check } = await monitored(domain, {
        ...healthyZone(domain),
        [`_dmarc.${domain}`]: txt('v=DMARC1; p=reject; ', `rua=mailto:dmarc@${domain}`),
      });

      await check(0);
      const [dmarc] = await listObservations(fixture.db, fixture.accountId, domainId, {
        kind: 'dmarc',
      });

      assert.ok(dmarc);
      assert.deepEqual(dmarc.raw, [['v=DMARC1; p=reject; ', `rua=mailto:dmarc@${domain}`]]);
      assert.deepEqual(dmarc.normalised, [`v=DMARC1; p=reject; rua=mailto:dmarc@${domain}`]);
      assert.equal(dmarc.lookup.status, 'ok');
      assert.equal(dmarc.meaning?.kind, 'dmarc');
      assert.equal(dmarc.meaning?.kind === 'dmarc' && dmarc.meaning.tags.p, 'reject');
      assert.match(dmarc.meaningHash ?? '', /^[0-9a-f]{64}$/);
      assert.equal(dmarc.trigger, 'scheduled');
      assert.ok(Array.isArray(dmarc.findings));
      assert.equal(
        (await listObservations(fixture.db, fixture.accountId, domainId, { kind: 'dkim' }))[0]
          ?.selector,
        's1',
      );
    });

    test('cosmetic changes give no alert', async () => {
      const domain = 'cosmetic.example';
      const { check, domainAlerts } = await monitored(domain);
      await check(0);
      const edits: Zone[] = [
        // DMARC split in other places, and a second, unrelated TXT record first.
        {
          [`_dmarc.${domain}`]: [
            { type: 'TXT', data: 'site-verification=abc' },
            { type: 'TXT', data: ['v=DMARC1; p=re', `ject; rua=mailto:dmarc@${domain}`] },
          ],
        },
        // The same records in the other order.
        {
          [`_dmarc.${domain}`]: [
            { type: 'TXT', data: `v=DMARC1; p=reject; rua=mailto:dmarc@${domain}` },
            { type: 'TXT', data: 'site-verification=abc' },
          ],
        },
        // Tag names and keywords in upper case, spaces around the separators.
        {
          [`_dmarc.${domain}`]: txt(
            `v=DMARC1 ; P = Reject ; RUA=mailto:dmarc@${domain.toUpperCase()}`,
          ),
        },
        // SPF in upper case with doubled spaces, split mid-term.
        {
          [domain]: txt(`V=SPF1  IP4:192.0.2.0/24 INCL`, `UDE:_SPF.${domain.toUpperCase()}  -ALL`),
        },
        // The same DKIM key with spaces inside the base64 and another split.
        {
          [`s1._domainkey.${domain}`]: longTxt(
            `v=DKIM1; k=rsa; p=${strongKey.replace(/(.{60})/g, '$1 ')}`,
          ),
        },
      ];

      const outcomes: string[] = [];
      for (const edit of edits) {
        for (const [owner, entry] of Object.entries(edit)) server.set(owner, entry);
        // Two rounds: a real change would be confirmed by the second.
        for (let round = 0; round < 2; round += 1) {
          const result = await check();
          outcomes.push(...result.observations.map((item) => item.outcome));
        }
      }

      assert.deepEqual([...new Set(outcomes)], ['unchanged']);
      assert.equal((await domainAlerts()).length, 0);
    });

    test('100 SERVFAIL and timeout flaps give no alert', async () => {
      // Ten domains checked side by side for ten rounds, so that the timeouts overlap.
      const watched = await Promise.all(
        Array.from({ length: 10 }, async (_, index) => {
          const domain = `flaps${index}.example`;
          const names = [`_dmarc.${domain}`, domain, `_spf.${domain}`, `s1._domainkey.${domain}`];
          return { names, ...(await monitored(domain)) };
        }),
      );
      for (const item of watched) await item.check(0);

      let flaps = 0;
      let problems = 0;
      const outcomes = new Set<string>();
      for (let round = 0; round < 10; round += 1) {
        const failures = new Map<string, 'servfail' | 'timeout'>();
        for (const [index, item] of watched.entries()) {
          const failure = (round + index) % 2 === 0 ? 'servfail' : 'timeout';
          // The last round fails every name of a domain at once, the others one name each.
          const failing = round === 9 ? item.names : [item.names[(round + index) % 4]!];
          for (const name of failing) failures.set(name, failure);
          flaps += 1;
        }
        server.intercept((query) => failures.get(query.name));
        const results = await Promise.all(watched.map((item) => item.check()));
        server.intercept(undefined);
        for (const item of results.flatMap((result) => result.observations)) {
          outcomes.add(item.outcome);
          if (item.outcome === 'lookup_problem') problems += 1;
        }
      }
      const found = await Promise.all(watched.map((item) => item.domainAlerts()));
      const after = await Promise.all(watched.map((item) => item.check()));

      assert.equal(flaps, 100);
      assert.deepEqual(
        found.map((list) => list.length),
        Array.from({ length: 10 }, () => 0),
      );
      assert.deepEqual([...outcomes].sort(), ['lookup_problem', 'unchanged']);
      // Nine rounds fail one record per domain (the include fails SPF), the last fails three.
      assert.equal(problems, 10 * (9 + 3));
      for (const item of watched) {
        const states = await listRecordStates(fixture.db, fixture.accountId, item.domainId);
        assert.ok(states.every((state) => state.pendingObservationId === null));
      }
      assert.deepEqual(
        [...new Set(after.flatMap((result) => result.observations.map((item) => item.outcome)))],
        ['unchanged'],
      );
    });

    const changes: {
      name: string;
      record: (domain: string) => string;
      apply: (domain: string) => void;
      change: string;
    }[] = [
      {
        name: 'DMARC policy weakened',
        record: (domain) => `_dmarc.${domain}`,
        apply: (domain) =>
          server.set(`_dmarc.${domain}`, txt(`v=DMARC1; p=none; rua=mailto:dmarc@${domain}`)),
        change: 'weakened',
      },
      {
        name: 'DMARC record removed',
        record: (domain) => `_dmarc.${domain}`,
        apply: (domain) => server.remove(`_dmarc.${domain}`),
        change: 'removed',
      },
      {
        name: 'SPF opened with +all',
        record: (domain) => domain,
        apply: (domain) => server.set(domain, txt('v=spf1 ip4:192.0.2.0/24 +all')),
        change: 'weakened',
      },
      {
        name: 'DKIM key revoked',
        record: (domain) => `s1._domainkey.${domain}`,
        apply: (domain) => server.set(`s1._domainkey.${domain}`, txt('v=DKIM1; p=')),
        change: 'became_invalid',
      },
      {
        name: 'DKIM key rotated to a weak key',
        record: (domain) => `s1._domainkey.${domain}`,
        apply: (domain) =>
          server.set(`s1._domainkey.${domain}`, longTxt(`v=DKIM1; k=rsa; p=${weakKey}`)),
        change: 'weakened',
      },
    ];

    for (const [index, item] of changes.entries()) {
      test(`${item.name}: alerts once when confirmed`, async () => {
        const domain = `change${index}.example`;
        const record = item.record(domain);
        const { check, domainAlerts } = await monitored(domain);
        const baseline = await check(0);
        item.apply(domain);

        const first = await check();
        const alertsAfterFirst = (await domainAlerts()).length;
        const second = await check();
        const alertsAfterSecond = await domainAlerts();
        await check();
        await check();
        const alertsAtEnd = await domainAlerts();

        assert.equal(outcomeOf(first.observations, record), 'change_pending');
        assert.equal(alertsAfterFirst, 0);
        assert.equal(outcomeOf(second.observations, record), 'change_confirmed');
        assert.equal(alertsAfterSecond.length, 1);
        assert.equal(alertsAtEnd.length, 1);
        const alert = alertsAtEnd[0]!;
        const evidence = alert.evidence as DnsEvidence;
        assert.equal(alert.kind, 'dns');
        assert.equal(alert.domainName, domain);
        assert.equal(evidence.name, record);
        assert.equal(evidence.change, item.change);
        assert.equal(evidence.before?.observationId, outcomeIdOf(baseline.observations, record));
        assert.equal(evidence.after.observationId, outcomeIdOf(second.observations, record));
        assert.equal(evidence.firstSeenAt, first.observations[0]!.observedAt);
        assert.ok(evidence.meaning.length > 0);
        assert.ok(alert.fingerprint.endsWith(`/meaning/${evidence.meaningHash}`));
        assert.equal(alert.fingerprint.includes(record), true);
      });
    }

    function outcomeIdOf(observations: StoredObservation[], name: string): string | undefined {
      return observations.find((item) => item.name === name)?.id;
    }

    test('reverted change gives no alert', async () => {
      const domain = 'revert.example';
      const { check, domainAlerts } = await monitored(domain);
      const healthy = healthyZone(domain);
      await check(0);

      server.set(`_dmarc.${domain}`, txt(`v=DMARC1; p=none; rua=mailto:dmarc@${domain}`));
      const changed = await check();
      server.set(`_dmarc.${domain}`, healthy[`_dmarc.${domain}`]!);
      const reverted = await check();
      // A one-round NXDOMAIN (a zone reload gone wrong) is confirmed by nothing either.
      server.remove(`s1._domainkey.${domain}`);
      const missing = await check();
      server.set(`s1._domainkey.${domain}`, healthy[`s1._domainkey.${domain}`]!);
      const back = await check();
      await check();

      assert.equal(outcomeOf(changed.observations, `_dmarc.${domain}`), 'change_pending');
      assert.equal(outcomeOf(reverted.observations, `_dmarc.${domain}`), 'change_reverted');
      assert.equal(outcomeOf(missing.observations, `s1._domainkey.${domain}`), 'change_pending');
      assert.equal(outcomeOf(back.observations, `s1._domainkey.${domain}`), 'change_reverted');
      assert.equal((await domainAlerts()).length, 0);
    });

    test('early second lookup does not confirm', async () => {
      const domain = 'early.example';
      const { check, domainAlerts } = await monitored(domain);
      await check(0);
      server.set(`_dmarc.${domain}`, txt(`v=DMARC1; p=none; rua=mailto:dmarc@${domain}`));

      const first = await check();
      const early = await check(confirmDelaySeconds - 1);
      const alertsWhenEarly = (await domainAlerts()).length;
      const due = await check(1);

      assert.equal(first.nextCheckReason, 'confirmation');
      assert.equal(
        first.nextCheckAt.toISOString(),
        new Date(
          Date.parse(first.observations[0]!.observedAt) + confirmDelaySeconds * 1000,
        ).toISOString(),
      );
      assert.equal(outcomeOf(early.observations, `_dmarc.${domain}`), 'change_pending');
      assert.equal(alertsWhenEarly, 0);
      assert.equal(outcomeOf(due.observations, `_dmarc.${domain}`), 'change_confirmed');
      assert.equal((await domainAlerts()).length, 1);
    });

    test('repeated changes alert each time', async () => {
      const domain = 'again.example';
      const { check, domainAlerts } = await monitored(domain);
      const reject = txt(`v=DMARC1; p=reject; rua=mailto:dmarc@${domain}`);
      const none = txt(`v=DMARC1; p=none; rua=mailto:dmarc@${domain}`);
      await check(0);

      for (const entry of [none, reject, none]) {
        server.set(`_dmarc.${domain}`, entry);
        await check();
        await check();
      }
      const found = await domainAlerts();

      assert.equal(found.length, 3);
      assert.deepEqual(found.map((alert) => (alert.evidence as DnsEvidence).change).sort(), [
        'meaning',
        'weakened',
        'weakened',
      ]);
      const weakened = found.filter(
        (alert) => (alert.evidence as DnsEvidence).change === 'weakened',
      );
      assert.equal(weakened[0]!.fingerprint, weakened[1]!.fingerprint);
      assert.notEqual(weakened[0]!.dedupeKey, weakened[1]!.dedupeKey);
      // The change back resolved the first incident, and the same meaning again reopened it.
      assert.equal(weakened[0]!.incidentId, weakened[1]!.incidentId);
      const meaning = found.find((alert) => (alert.evidence as DnsEvidence).change === 'meaning');
      assert.notEqual(meaning!.incidentId, weakened[0]!.incidentId);
      const incidents = await fixture.db.query<{
        id: string;
        status: string;
        reopen_count: number;
      }>('SELECT id, status, reopen_count FROM alert_incidents WHERE id = ANY($1::uuid[])', [
        [meaning!.incidentId, weakened[0]!.incidentId],
      ]);
      const byId = new Map(incidents.map((row) => [row.id, row]));
      assert.equal(byId.get(weakened[0]!.incidentId!)?.status, 'open');
      assert.equal(byId.get(weakened[0]!.incidentId!)?.reopen_count, 1);
      assert.equal(byId.get(meaning!.incidentId!)?.status, 'resolved');
    });

    test('invalid first record alerts once', async () => {
      const domain = 'broken.example';
      const { check, domainAlerts } = await monitored(domain, {
        ...healthyZone(domain),
        [`_dmarc.${domain}`]: [
          { type: 'TXT', data: 'v=DMARC1; p=reject' },
          { type: 'TXT', data: 'v=DMARC1; p=none' },
        ],
      });

      const first = await check(0);
      const alertsAfterFirst = (await domainAlerts()).length;
      const second = await check();
      await check();
      const found = await domainAlerts();

      assert.equal(outcomeOf(first.observations, `_dmarc.${domain}`), 'change_pending');
      assert.equal(outcomeOf(first.observations, domain), 'baseline');
      assert.equal(alertsAfterFirst, 0);
      assert.equal(outcomeOf(second.observations, `_dmarc.${domain}`), 'change_confirmed');
      assert.equal(found.length, 1);
      const evidence = found[0]!.evidence as DnsEvidence;
      assert.equal(evidence.change, 'invalid_at_first_check');
      assert.equal(evidence.before, null);
      assert.deepEqual(evidence.after.records, ['v=DMARC1; p=none', 'v=DMARC1; p=reject']);
    });

    test('a removed selector stops being checked', async () => {
      const domain = 'selectors.example';
      const { domainId, check } = await monitored(domain);
      await check(0);
      await setDkimSelectors(fixture.db, fixture.accountId, domainId, []);

      const result = await check();
      const states = await listRecordStates(fixture.db, fixture.accountId, domainId);

      assert.deepEqual(
        result.observations.map((item) => item.kind),
        ['dmarc', 'spf'],
      );
      assert.deepEqual(
        states.map((state) => state.kind),
        ['dmarc', 'spf'],
      );
    });

    test('paused domain confirms without alerting', async () => {
      const domain = 'paused.example';
      const { domainId, clock, monitor, check, domainAlerts } = await monitored(domain);
      await check(0);
      await fixture.domains.setStatus(fixture.accountId, domainId, 'paused');
      server.set(`_dmarc.${domain}`, txt(`v=DMARC1; p=none; rua=mailto:dmarc@${domain}`));

      // A scheduled check queued before the pause does nothing.
      clock.advanceSeconds(confirmDelaySeconds);
      const skipped = await monitor.checkDomain(fixture.accountId, domainId, 'scheduled');
      // Manual checks still look, and their confirmed change becomes the record's state.
      const first = await monitor.checkDomain(fixture.accountId, domainId, 'manual');
      clock.advanceSeconds(confirmDelaySeconds);
      const second = await monitor.checkDomain(fixture.accountId, domainId, 'manual');

      assert.equal(skipped, null);
      assert.equal(outcomeOf(first!.observations, `_dmarc.${domain}`), 'change_pending');
      assert.equal(outcomeOf(second!.observations, `_dmarc.${domain}`), 'change_confirmed');
      assert.equal((await domainAlerts()).length, 0);

      // Once resumed, the domain alerts on its next change again.
      await fixture.domains.setStatus(fixture.accountId, domainId, 'active');
      server.set(`_dmarc.${domain}`, txt(`v=DMARC1; p=reject; rua=mailto:dmarc@${domain}`));
      await check();
      await check();
      assert.equal((await domainAlerts()).length, 1);
    });

    test('a removed domain is not checked', async () => {
      const { domainId, monitor } = await monitored('gone.example');
      await fixture.domains.remove(fixture.accountId, domainId);

      assert.equal(await monitor.checkDomain(fixture.accountId, domainId, 'scheduled'), null);
    });

    test('retention deletes only old unchanged observations', async () => {
      const domain = 'retention.example';
      const { domainId, check } = await monitored(domain);
      await check(0);
      await check();
      await check();
      server.set(`_dmarc.${domain}`, txt(`v=DMARC1; p=none; rua=mailto:dmarc@${domain}`));
      await check();
      await check();
      await check();
      const kept = async () =>
        (await listObservations(fixture.db, fixture.accountId, domainId, { limit: 500 }))
          .filter((item) => item.name === `_dmarc.${domain}`)
          .map((item) => item.outcome)
          .reverse();
      assert.deepEqual(await kept(), [
        'baseline',
        'unchanged',
        'unchanged',
        'change_pending',
        'change_confirmed',
        'unchanged',
      ]);

      // Nothing is old enough yet.
      assert.equal(await purgeUnchangedObservations(fixture.db, 90), 0);
      await fixture.db.query(
        `UPDATE dns_observations SET observed_at = observed_at - interval '100 days'
          WHERE domain_id = $1`,
        [domainId],
      );
      // The DMARC record loses 2, and the SPF and DKIM records 4 each of their 5. The last lookup
      // of each record is its state's last observation, so it stays.
      assert.equal(await purgeUnchangedObservations(fixture.db, 90), 2 + 4 + 4);
      assert.deepEqual(await kept(), [
        'baseline',
        'change_pending',
        'change_confirmed',
        'unchanged',
      ]);
    });
  });
}
