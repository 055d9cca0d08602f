import type { Logger } from 'pino';
import type { Transaction } from '../db/database.ts';
import type { StoredAggregateReport } from '../reports/report-store.ts';
import type { AlertService } from './alert-service.ts';
import type { ThresholdEvidence } from './alert-store.ts';
import { getThresholdRule } from './threshold-rules.ts';

const TOP_SOURCES = 10;

/**
 * Raise a threshold alert when more messages failed DMARC in one report than the domain's
 * rule allows. The fingerprint names the domain and the report, so the same report arriving
 * again, by any path, never raises a second alert.
 */
export function evaluateThresholdForReport(alerts: AlertService, logger: Logger) {
  return async (tx: Transaction, report: StoredAggregateReport): Promise<void> => {
    if (!report.domainId) return;
    const rule = await getThresholdRule(tx, report.accountId, report.domainId);
    if (!rule || report.failedCount <= rule.maxFailedMessages) return;

    const [domain] = await tx.query<{ customer_id: string; name: string }>(
      'SELECT customer_id, name FROM domains WHERE id = $1',
      [report.domainId],
    );
    if (!domain) return;

    const evidence: ThresholdEvidence = {
      kind: 'threshold',
      failedMessages: report.failedCount,
      totalMessages: report.messageCount,
      maxFailedMessages: rule.maxFailedMessages,
      period: { begin: report.periodBegin.toISOString(), end: report.periodEnd.toISOString() },
      reporter: report.orgName,
      reportId: report.reportId,
      topSources: topFailingSources(report),
    };
    const alert = await alerts.raise(tx, {
      accountId: report.accountId,
      customerId: domain.customer_id,
      domainId: report.domainId,
      domainName: domain.name,
      kind: 'threshold',
      fingerprint: `threshold/domain/${report.domainId}/report/${report.orgName}/${report.reportId}`,
      summary: `DMARC threshold alert: ${domain.name}: ${report.failedCount} messages failed DMARC (limit ${rule.maxFailedMessages})`,
      evidence,
      aggregateReportId: report.id,
    });
    if (alert) {
      logger.info(
        { alertId: alert.id, domain: domain.name, failed: report.failedCount },
        'raised threshold alert',
      );
    }
  };
}

function topFailingSources(report: StoredAggregateReport): ThresholdEvidence['topSources'] {
  // The store lists the top failing sources, since the records are not held in memory.
  return report.topFailingSources.slice(0, TOP_SOURCES);
}
