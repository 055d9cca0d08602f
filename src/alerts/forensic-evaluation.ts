import type { Logger } from 'pino';
import type { Transaction } from '../db/database.ts';
import type { StoredFailureReport } from '../reports/failure-report-store.ts';
import type { AlertService } from './alert-service.ts';
import type { ForensicEvidence } from './alert-store.ts';
import { isDomainPaused } from './paused-domains.ts';

/**
 * Raise one forensic alert for each failure report stored for a monitored domain. The
 * fingerprint names the account, the customer and the domain, so the reports of one domain
 * share an incident until none has arrived for `clearAfterSeconds`. The dedupe key adds the
 * report's body hash, never its text, so the same report arriving again by any path never
 * raises a second alert. A paused domain's failure reports are stored without an alert.
 */
export function raiseForensicAlertForReport(
  alerts: AlertService,
  logger: Logger,
  options: { clearAfterSeconds: number },
) {
  return async (tx: Transaction, report: StoredFailureReport): Promise<void> => {
    if (!report.domainId) return;
    if (await isDomainPaused(tx, report.accountId, report.domainId)) {
      logger.debug(
        { failureReportId: report.id, domainId: report.domainId },
        'stored the failure report of a paused domain without a forensic alert',
      );
      return;
    }
    const [domain] = await tx.query<{ customer_id: string; name: string }>(
      'SELECT customer_id, name FROM domains WHERE id = $1 AND account_id = $2',
      [report.domainId, report.accountId],
    );
    if (!domain) return;

    const evidence: ForensicEvidence = {
      kind: 'forensic',
      failureReportId: report.id,
      reporter: report.reporter,
      format: report.format,
      arrivalDate: report.arrivalDate?.toISOString() ?? null,
      sourceIp: report.sourceIp,
      authFailure: report.authFailure,
      identityAlignment: report.identityAlignment,
      deliveryResult: report.deliveryResult,
      authenticationResults: report.authenticationResults,
      originalMailFrom: report.originalMailFrom,
      originalRcptTo: report.originalRcptTo,
      headers: report.originalHeaders,
    };
    const source = report.sourceIp ? ` from ${report.sourceIp}` : '';
    const alert = await alerts.raise(
      tx,
      {
        accountId: report.accountId,
        customerId: domain.customer_id,
        domainId: report.domainId,
        domainName: domain.name,
        kind: 'forensic',
        fingerprint: `forensic/account/${report.accountId}/customer/${domain.customer_id}/domain/${report.domainId}`,
        // The fingerprint of forensic alerts before incidents, kept so old rows still match.
        dedupeKey: `forensic/account/${report.accountId}/domain/${report.domainId}/report/${report.contentSha256}`,
        summary: `DMARC forensic alert: ${domain.name}: failure report from ${report.reporter}${source}`,
        evidence,
      },
      { clearMode: 'idle', clearAfterSeconds: options.clearAfterSeconds },
    );
    if (alert) {
      logger.info(
        {
          alertId: alert.id,
          incidentId: alert.incidentId,
          domain: domain.name,
          failureReportId: report.id,
        },
        'raised forensic alert',
      );
    }
  };
}
