import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startDnsServer, type TestDnsServer } from '../../test/support/dns-server.ts';
import { DATABASE_ENGINES } from '../../test/support/databases.ts';
import { AppError } from '../errors/app-error.ts';
import { JobQueue } from '../jobs/queue.ts';
import { createAccount } from '../platform/accounts.ts';
import { createCustomer } from '../platform/customers.ts';
import { DnsMonitor } from './monitor.ts';
import {
  DNS_CHECK_QUEUE,
  DNS_QUEUES,
  DnsCheckScheduler,
  FIRST_CHECK_SPREAD_SECONDS,
} from './monitor-schedule.ts';
import { DEFAULT_CHECK_INTERVAL_MINUTES } from './monitor-settings.ts';
import type { MonitorTestDatabase } from './monitor-test-support.ts';
import { openMonitorDatabase, silentLogger, TestClock } from './monitor-test-support.ts';
import { DnsResolver } from './resolver.ts';
import { txt } from './test-dns.ts';

interface QueuedJob {
  data: { accountId: string; domainId: string; trigger: string };
  singleton_key: string;
}

for (const engine of DATABASE_ENGINES) {
  describe(`DNS check schedule on ${engine}`, () => {
    let fixture: MonitorTestDatabase;
    let queue: JobQueue;
    let server: TestDnsServer;

    before(async () => {
      fixture = await openMonitorDatabase(engine);
      queue = new JobQueue(fixture.db, silentLogger);
      await queue.start(DNS_QUEUES);
      server = await startDnsServer();
    });

    after(async () => {
      await server?.stop();
      await queue?.stop();
      await fixture?.close();
    });

    /** Jobs of the check queue not yet started, oldest first. */
    async function queuedJobs(): Promise<QueuedJob[]> {
      return fixture.db.query<QueuedJob>(
        `SELECT data, singleton_key FROM pgboss.job
          WHERE name = $1 AND state = 'created' ORDER BY created_on`,
        [DNS_CHECK_QUEUE],
      );
    }

    /** Empty the queue and the schedule, and pause the domains of earlier tests. */
    async function clearQueue(): Promise<void> {
      await fixture.db.query('DELETE FROM pgboss.job WHERE name = $1', [DNS_CHECK_QUEUE]);
      await fixture.db.query('DELETE FROM dns_check_schedule');
      await fixture.db.query(`UPDATE domains SET status = 'paused'`);
    }

    /** Create an account with one customer and the given domains, so tests do not share rows. */
    async function accountWith(names: string[], paused: string[] = []) {
      const account = await createAccount(fixture.db, { name: `Schedule ${names[0]}` });
      const customer = await createCustomer(fixture.db, account.id, 'Schedule Customer');
      const ids: Record<string, string> = {};
      for (const name of names) {
        const domain = await fixture.domains.add(account.id, customer.id, {
          name,
          status: paused.includes(name) ? 'paused' : 'active',
        });
        ids[name] = domain.id;
      }
      return { accountId: account.id, ids };
    }

    test('sweep queues each due domain once', async () => {
      await clearQueue();
      const clock = new TestClock();
      const scheduler = new DnsCheckScheduler({
        db: fixture.db,
        queue,
        logger: silentLogger,
        sweepSeconds: 60,
        now: clock.now,
      });
      const { ids } = await accountWith(
        ['one.example', 'two.example', 'paused.example'],
        ['paused.example'],
      );

      await scheduler.sweep();
      const rows = await fixture.db.query<{ domain_id: string; next_check_at: Date }>(
        'SELECT domain_id, next_check_at FROM dns_check_schedule',
      );
      clock.advanceSeconds(FIRST_CHECK_SPREAD_SECONDS);
      const due = await scheduler.sweep();
      const again = await scheduler.sweep();
      const jobs = await queuedJobs();

      assert.deepEqual(
        rows.map((row) => row.domain_id).sort(),
        [ids['one.example'], ids['two.example']].sort(),
      );
      for (const row of rows) {
        const offset =
          new Date(row.next_check_at).getTime() -
          (clock.now().getTime() - FIRST_CHECK_SPREAD_SECONDS * 1000);
        assert.ok(offset >= 0, `offset ${offset}`);
        assert.ok(offset <= FIRST_CHECK_SPREAD_SECONDS * 1000, `offset ${offset}`);
      }
      assert.deepEqual(due.sort(), [ids['one.example'], ids['two.example']].sort());
      assert.deepEqual(again, []);
      assert.equal(jobs.length, 2);
      assert.deepEqual(
        jobs.map((job) => job.singleton_key).sort(),
        due.map((id) => `dns-check/${id}`).sort(),
      );
      assert.ok(jobs.every((job) => job.data.trigger === 'scheduled'));
    });

    test('parallel sweeps queue each domain once', async () => {
      await clearQueue();
      const clock = new TestClock();
      const schedulers = [0, 1].map(
        () =>
          new DnsCheckScheduler({
            db: fixture.db,
            queue,
            logger: silentLogger,
            sweepSeconds: 60,
            now: clock.now,
          }),
      );
      const names = Array.from({ length: 20 }, (_, index) => `parallel${index}.example`);
      await accountWith(names);
      await schedulers[0]!.sweep();
      clock.advanceSeconds(FIRST_CHECK_SPREAD_SECONDS);

      const [first, second] = await Promise.all(schedulers.map((scheduler) => scheduler.sweep()));
      const both = [...first!, ...second!];

      assert.equal(both.length, 20);
      assert.equal(new Set(both).size, 20);
      assert.equal((await queuedJobs()).length, 20);
    });

    test('reclaimed domain gets no second job', async () => {
      await clearQueue();
      const clock = new TestClock();
      const scheduler = new DnsCheckScheduler({
        db: fixture.db,
        queue,
        logger: silentLogger,
        sweepSeconds: 60,
        now: clock.now,
      });
      await accountWith(['lease.example']);
      await scheduler.sweep();
      clock.advanceSeconds(FIRST_CHECK_SPREAD_SECONDS);
      const first = await scheduler.sweep();
      // The job never ran: after the lease the domain is due again.
      clock.advanceSeconds(31 * 60);
      const second = await scheduler.sweep();

      assert.equal(first.length, 1);
      assert.deepEqual(second, first);
      assert.equal((await queuedJobs()).length, 1);
    });

    test('check now queues a manual check once', async () => {
      await clearQueue();
      const scheduler = new DnsCheckScheduler({
        db: fixture.db,
        queue,
        logger: silentLogger,
        sweepSeconds: 60,
      });
      const { accountId, ids } = await accountWith(['manual.example']);
      const other = await accountWith(['other-manual.example']);

      const first = await scheduler.requestCheck(accountId, ids['manual.example']!);
      const second = await scheduler.requestCheck(accountId, ids['manual.example']!);
      const jobs = await queuedJobs();

      assert.equal(first, true);
      assert.equal(second, false);
      assert.equal(jobs.length, 1);
      assert.deepEqual(jobs[0]!.data, {
        accountId,
        domainId: ids['manual.example'],
        trigger: 'manual',
      });
      await assert.rejects(
        scheduler.requestCheck(accountId, other.ids['other-manual.example']!),
        (error: unknown) => error instanceof AppError && error.code === 'not_found',
      );
    });

    test('next check follows interval and jitter', async () => {
      await clearQueue();
      const domain = 'next.example';
      server.set(`_dmarc.${domain}`, txt('v=DMARC1; p=reject; rua=mailto:d@next.example'));
      server.set(domain, txt('v=spf1 -all'));
      const { accountId, ids } = await accountWith([domain]);
      const clock = new TestClock();
      const monitorWith = (random: number) =>
        new DnsMonitor({
          db: fixture.db,
          lookups: new DnsResolver({ servers: [server.address], timeoutMs: 250 }),
          logger: silentLogger,
          confirmDelaySeconds: 600,
          now: clock.now,
          random: () => random,
        });
      const interval = DEFAULT_CHECK_INTERVAL_MINUTES * 60_000;

      const early = await monitorWith(0).checkDomain(accountId, ids[domain]!, 'scheduled');
      const late = await monitorWith(1).checkDomain(accountId, ids[domain]!, 'scheduled');
      server.set(`_dmarc.${domain}`, txt('v=DMARC1; p=none; rua=mailto:d@next.example'));
      const changed = await monitorWith(0.5).checkDomain(accountId, ids[domain]!, 'scheduled');
      clock.advanceSeconds(600);
      const scheduler = new DnsCheckScheduler({
        db: fixture.db,
        queue,
        logger: silentLogger,
        sweepSeconds: 60,
        now: clock.now,
      });
      const queued = await scheduler.sweep();
      const jobs = await queuedJobs();

      assert.equal(early?.nextCheckAt.getTime(), clock.now().getTime() - 600_000 + interval * 0.9);
      assert.equal(late?.nextCheckAt.getTime(), clock.now().getTime() - 600_000 + interval * 1.1);
      assert.equal(early?.nextCheckReason, 'scheduled');
      assert.equal(changed?.nextCheckReason, 'confirmation');
      assert.equal(changed?.nextCheckAt.getTime(), clock.now().getTime());
      assert.deepEqual(queued, [ids[domain]]);
      assert.equal(jobs[0]?.data.trigger, 'confirmation');
    });
  });
}
