import type { FastifyInstance } from 'fastify';
import type { Job } from 'pg-boss';
import type { Logger } from 'pino';
import { raiseDnsAlertForChange } from './alerts/dns-evaluation.ts';
import { raiseForensicAlertForReport } from './alerts/forensic-evaluation.ts';
import { evaluateThresholdForReport } from './alerts/threshold-evaluation.ts';
import { AlertService } from './alerts/alert-service.ts';
import { IncidentMaintenance } from './alerts/incident-maintenance.ts';
import { alertRoutes } from './alerts/routes.ts';
import type { Config } from './config/config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { DnsMonitor } from './dns/monitor.ts';
import { purgeUnchangedObservations } from './dns/observation-store.ts';
import {
  DNS_CHECK_QUEUE,
  DNS_CHECK_WORKERS,
  DNS_QUEUES,
  DnsCheckScheduler,
  type DnsCheckJob,
  DNS_RETENTION_QUEUE,
} from './dns/monitor-schedule.ts';
import { DnsResolver } from './dns/resolver.ts';
import { dnsRoutes } from './dns/routes.ts';
import { buildServer } from './http/server.ts';
import { ConnectionService } from './integration/connection.ts';
import {
  INTEGRATION_QUEUES,
  LICENCE_RELEASE_QUEUE,
  LICENCE_SYNC_BATCH_SIZE,
  LICENCE_SYNC_QUEUE,
  type LicenceReleaseJob,
  TICKET_CREATE_BATCH_SIZE,
  TICKET_NOTE_BATCH_SIZE,
  TICKET_CREATE_QUEUE,
  type LicenceSyncJob,
  type TicketCreateJob,
} from './integration/jobs.ts';
import {
  HISTORY_RETENTION_QUEUE,
  HISTORY_RETENTION_QUEUE_DEFINITION,
  purgeIntegrationHistory,
} from './integration/call-log.ts';
import { LicenceSync } from './integration/licence-sync.ts';
import { IntegrationMetrics, metricsRoute } from './integration/metrics.ts';
import { RateBudget, runWithCallContext, type CallPriority } from './integration/rate-budget.ts';
import { createGuardedDispatcher } from './integration/outbound-guard.ts';
import {
  RECONCILE_QUEUE,
  RECONCILE_QUEUE_DEFINITION,
  Reconciliation,
  type ReconcileJob,
} from './integration/reconciliation.ts';
import { integrationRoutes } from './integration/routes.ts';
import { SecretBox } from './integration/secret-box.ts';
import { checkStoredSecrets } from './integration/secret-rotation.ts';
import { resolveSecretKey } from './integration/secret-key.ts';
import {
  TICKET_NOTE_QUEUE,
  TICKET_NOTE_QUEUE_DEFINITION,
  TicketDispatch,
  type TicketNoteJob,
} from './integration/ticket-dispatch.ts';
import { auditRoutes } from './audit/routes.ts';
import { oidcRoutes } from './auth/oidc-routes.ts';
import { authRoutes } from './auth/routes.ts';
import { SignInService } from './auth/sign-in.ts';
import { JobQueue } from './jobs/queue.ts';
import { DomainService } from './platform/domains.ts';
import { platformRoutes } from './platform/routes.ts';
import { ReportIngestService } from './reports/ingest.ts';
import { linkReportsToDomain } from './reports/report-domain-links.ts';
import { startReceivers, type Receivers } from './reports/receivers.ts';
import { reportRoutes } from './reports/routes.ts';

/** Batch workers per process for the ticket queue and for the note queue, each. */
const TICKET_BATCH_WORKERS = 2;
export interface App {
  config: Config;
  db: Database;
  queue: JobQueue;
  server: FastifyInstance;
  domains: DomainService;
  reports: ReportIngestService;
  /** The SMTP, IMAP and folder receivers that the configuration turns on. */
  receivers: Receivers;
  connections: ConnectionService;
  /** The request budget of each HaloPSA instance, shared through the database. */
  budget: RateBudget;
  alerts: AlertService;
  tickets: TicketDispatch;
  /** Repairs licence drift and finds broken mappings, on a schedule and on request. */
  reconciliation: Reconciliation;
  /** Resolves quiet incidents and queues held notes, every minute where workers run. */
  incidents: IncidentMaintenance;
  /** DNS checks of each domain's DMARC, SPF and DKIM records, and their schedule. */
  dnsMonitor: DnsMonitor;
  dnsScheduler: DnsCheckScheduler;
  /** Stop accepting requests, let running jobs finish, close the database. */
  close(): Promise<void>;
}

/**
 * Wire the service together: database and migrations, job queue and workers, feature services
 * and their listeners, and the HTTP server (not yet listening).
 */
export async function createApp(
  config: Config,
  logger: Logger,
  options: { inMemoryDatabase?: boolean } = {},
): Promise<App> {
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    logger,
    ...(options.inMemoryDatabase ? { inMemory: true } : {}),
  });
  try {
    await migrate(db, logger);
    const queue = new JobQueue(db, logger.child({ component: 'jobs' }));
    await queue.start([
      ...INTEGRATION_QUEUES,
      TICKET_NOTE_QUEUE_DEFINITION,
      RECONCILE_QUEUE_DEFINITION,
      HISTORY_RETENTION_QUEUE_DEFINITION,
      ...DNS_QUEUES,
    ]);
    const budget = new RateBudget(
      db,
      config.halopsaRateBudget,
      logger.child({ component: 'halopsa-budget' }),
    );
    const metrics = new IntegrationMetrics({ queue, budget });
    queue.onOutcome((name, outcome) => metrics.countJob(name, outcome));

    const secrets = new SecretBox(
      resolveSecretKey(config.secretKey, config.dataDir, logger),
      config.previousSecretKeys,
    );
    await checkStoredSecrets(db, secrets);
    const connections = new ConnectionService({
      db,
      secrets,
      logger: logger.child({ component: 'halopsa' }),
      allowedHosts: config.halopsaAllowedHosts,
      timeoutMs: config.halopsaTimeoutMs,
      noteOutcomeId: config.halopsaTickets.noteOutcomeId,
      budget,
      metrics,
      attentionRecheckSeconds: config.halopsaAttentionRecheckSeconds,
    });
    const licences = new LicenceSync(
      db,
      queue,
      connections,
      logger.child({ component: 'licence-sync' }),
      { writeSettleSeconds: config.halopsaWriteSettleSeconds },
    );
    const reconciliation = new Reconciliation(
      db,
      queue,
      connections,
      logger.child({ component: 'reconciliation' }),
    );
    const tickets = new TicketDispatch(
      db,
      queue,
      connections,
      config.publicUrl,
      logger.child({ component: 'tickets' }),
      {
        ...config.halopsaTickets,
        noteIntervalSeconds: config.incidents.noteIntervalSeconds,
        writeSettleSeconds: config.halopsaWriteSettleSeconds,
      },
      reconciliation,
    );

    const domains = new DomainService(db);
    domains.onBillableDomainsChanged((tx, change) =>
      licences.enqueueInTransaction(tx, change.accountId, change.customerId),
    );
    // Reports stored before the domain was added are attached to it but not judged by threshold
    // rules, since a domain just added has no rules and belongs to no group yet.
    domains.onDomainAdded(async (tx, added) => {
      const linked = await linkReportsToDomain(tx, added);
      if (linked.aggregateReports + linked.failureReports > 0) {
        logger.info(
          { accountId: added.accountId, domainId: added.domainId, ...linked },
          'attached reports received before the domain was added',
        );
      }
    });
    domains.onCustomerRemoving((tx, removing) =>
      licences.releaseCustomerInTransaction(tx, removing.accountId, removing.customerId),
    );

    const alerts = new AlertService({ reopenWithinSeconds: config.incidents.reopenWithinSeconds });
    alerts.onAlertCreated((tx, alert, change) => tickets.route(tx, alert, change));
    alerts.onIncidentResolved((tx, incident) => tickets.incidentResolved(tx, incident));
    const incidents = new IncidentMaintenance({
      db,
      alerts,
      flushNotes: () => tickets.flushHeldNotes(),
      logger: logger.child({ component: 'alerts' }),
      intervalSeconds: 60,
    });

    const reports = new ReportIngestService(db, logger.child({ component: 'reports' }), {
      limits: { maxInputBytes: config.maxUploadBytes },
      keepFailureMessages: config.keepFailureMessages,
      rejectedKeepBytes: config.rejectedKeepBytes,
    });
    reports.onAggregateReportStored(
      evaluateThresholdForReport(alerts, logger.child({ component: 'alerts' })),
    );
    reports.onFailureReportStored(
      raiseForensicAlertForReport(alerts, logger.child({ component: 'alerts' }), {
        clearAfterSeconds: config.incidents.forensicClearSeconds,
      }),
    );

    const dnsMonitor = new DnsMonitor({
      db,
      lookups: new DnsResolver({
        ...(config.dnsServers ? { servers: config.dnsServers } : {}),
        timeoutMs: config.dnsTimeoutMs,
      }),
      logger: logger.child({ component: 'dns' }),
      confirmDelaySeconds: config.dnsConfirmDelaySeconds,
    });
    dnsMonitor.onChangeConfirmed(
      raiseDnsAlertForChange(alerts, logger.child({ component: 'alerts' })),
    );
    const dnsScheduler = new DnsCheckScheduler({
      db,
      queue,
      logger: logger.child({ component: 'dns' }),
      sweepSeconds: config.dnsSweepSeconds,
    });

    if (config.runWorkers) {
      for (let worker = 0; worker < DNS_CHECK_WORKERS; worker += 1) {
        await queue.work<DnsCheckJob>(DNS_CHECK_QUEUE, async (data) => {
          await dnsMonitor.checkDomain(data.accountId, data.domainId, data.trigger);
        });
      }
      dnsScheduler.start();
      // Each job's HaloPSA calls take budget slots at the job's priority.
      const asCalls =
        <Data extends object>(
          queueName: string,
          priority: CallPriority,
          run: (data: Data, job: Job<Data>) => Promise<void>,
        ) =>
        (data: Data, job: Job<Data>) => {
          const customerId = 'customerId' in data ? data.customerId : undefined;
          return runWithCallContext(
            {
              priority,
              jobKind: queueName,
              customerId: typeof customerId === 'string' ? customerId : null,
            },
            () => run(data, job),
          );
        };
      // Licence counts go out in batches, so that one POST carries many customers' counts.
      await queue.workBatch<LicenceSyncJob>(
        LICENCE_SYNC_QUEUE,
        (jobs) =>
          runWithCallContext(
            { priority: 'standard', jobKind: LICENCE_SYNC_QUEUE, customerId: null },
            () => licences.runBatch(jobs),
          ),
        { batchSize: LICENCE_SYNC_BATCH_SIZE },
      );
      await queue.work<LicenceReleaseJob>(
        LICENCE_RELEASE_QUEUE,
        asCalls(LICENCE_RELEASE_QUEUE, 'standard', (data) => licences.release(data)),
      );
      // Tickets go out in batches, so that one POST carries the tickets of many alerts. A batch
      // looks its alerts up one after another, so two workers keep a slow lookup from holding
      // back every ticket of the process.
      for (let worker = 0; worker < TICKET_BATCH_WORKERS; worker += 1) {
        await queue.workBatch<TicketCreateJob>(
          TICKET_CREATE_QUEUE,
          (jobs) =>
            runWithCallContext(
              { priority: 'urgent', jobKind: TICKET_CREATE_QUEUE, customerId: null },
              () => tickets.runBatch(jobs),
            ),
          { batchSize: TICKET_CREATE_BATCH_SIZE },
        );
      }
      // Notes go out in batches too, one POST per account and batch. A note that an earlier
      // attempt may have sent is looked up on its ticket and sent alone.
      for (let worker = 0; worker < TICKET_BATCH_WORKERS; worker += 1) {
        await queue.workBatch<TicketNoteJob>(
          TICKET_NOTE_QUEUE,
          (jobs) =>
            runWithCallContext(
              { priority: 'urgent', jobKind: TICKET_NOTE_QUEUE, customerId: null },
              () => tickets.runNoteBatch(jobs),
            ),
          { batchSize: TICKET_NOTE_BATCH_SIZE },
        );
      }
      await queue.work<ReconcileJob>(
        RECONCILE_QUEUE,
        asCalls(RECONCILE_QUEUE, 'background', (data) => reconciliation.run(data)),
      );
      await queue.work(HISTORY_RETENTION_QUEUE, async () => {
        const deleted = await purgeIntegrationHistory(db, config.integrationHistoryDays);
        logger.info(
          { ...deleted, days: config.integrationHistoryDays },
          'deleted integration history past its retention',
        );
      });
      await queue.schedule(HISTORY_RETENTION_QUEUE, '23 3 * * *', {});
      // The schedule stays in the database, so the job runs, and does nothing, at 0 days.
      await queue.work(DNS_RETENTION_QUEUE, async () => {
        if (config.dnsUnchangedDays === 0) return;
        const deleted = await purgeUnchangedObservations(db, config.dnsUnchangedDays);
        logger.info(
          { deleted, days: config.dnsUnchangedDays },
          'deleted old DNS observations of unchanged records',
        );
      });
      await queue.schedule(DNS_RETENTION_QUEUE, '41 3 * * *', {});
      await reconciliation.schedule(config.reconcileIntervalMinutes);
      incidents.start();
    }

    const server = await buildServer({
      db,
      logger,
      bodyLimit: config.maxUploadBytes,
      apiRoutes: [
        authRoutes({ db, signIn: new SignInService(db) }),
        oidcRoutes({
          db,
          secrets,
          // The HaloPSA SSRF guard applies to identity providers too, with their own allow-list.
          dispatcher: createGuardedDispatcher({ allowedHosts: config.oidcAllowedHosts }),
          allowedHosts: config.oidcAllowedHosts,
          publicUrl: config.publicUrl,
        }),
        auditRoutes({ db }),
        platformRoutes({ db, domains }),
        reportRoutes({ db, ingest: reports, receivingAddress: config.receivingAddress }),
        alertRoutes({ db }),
        dnsRoutes({ db, scheduler: dnsScheduler }),
        integrationRoutes({ db, connections, licences, tickets, reconciliation }),
      ],
    });
    if (config.metricsToken !== null) {
      await server.register(metricsRoute(metrics, config.metricsToken));
    }

    let receivers: Receivers;
    try {
      receivers = await startReceivers(config, {
        db,
        ingest: reports,
        logger: logger.child({ component: 'receivers' }),
      });
    } catch (error) {
      await dnsScheduler.stop();
      await incidents.stop();
      await queue.stop();
      throw error;
    }

    return {
      config,
      db,
      queue,
      server,
      domains,
      reports,
      receivers,
      connections,
      budget,
      alerts,
      tickets,
      reconciliation,
      incidents,
      dnsMonitor,
      dnsScheduler,
      async close() {
        await receivers.stop();
        await server.close();
        await dnsScheduler.stop();
        await incidents.stop();
        await queue.stop();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
