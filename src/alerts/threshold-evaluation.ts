import type { Logger } from 'pino';
import type { Transaction } from '../db/database.ts';
import {
  listReportPeriodEnds,
  sumReportsInWindow,
  topFailingSourcesInWindow,
  type StoredAggregateReport,
} from '../reports/report-store.ts';
import type { AlertService } from './alert-service.ts';
import type { ThresholdEvidence } from './alert-store.ts';
import { isDomainPaused } from './paused-domains.ts';
import { listRulesCoveringDomain, type ThresholdRule } from './threshold-rules.ts';

const TOP_SOURCES = 10;
const HOUR_MS = 3600 * 1000;

// A late report is judged again in every window it falls into. Daily reports put few distinct
// period ends in one window, so this bound is reached only by odd reporters over long windows.
const MAX_WINDOWS_PER_REPORT = 100;

/** The domain or domain group a rule judges, with the domains whose reports are summed. */
interface RuleSubject {
  type: 'domain' | 'group';
  id: string;
  name: string;
  customerId: string;
  domainIds: string[];
  domainNames: string[];
}

/** The totals of one window, judged against one rule. */
interface WindowVerdict {
  window: { begin: Date; end: Date };
  reportCount: number;
  reporters: string[];
  totalMessages: number;
  failedMessages: number;
  exceeded: ThresholdEvidence['exceeded'];
}

/**
 * Judge the threshold rules of a newly stored aggregate report's domain and of the groups it
 * belongs to. A rule without a window judges the report alone. A rule with a window judges the
 * window of windowHours ending at each report period end that the report can affect: the
 * report's own end and, for a report that arrives late, every later end within windowHours of
 * it. Each window sums the stored reports whose period overlaps it. A window over the limit
 * raises a threshold alert; a window within it is a clear observation for the rule's incident.
 * The report of a paused domain is stored but judged by no rule, and a group's sums leave out
 * its paused members, so pausing a domain silences it in its groups too.
 */
export function evaluateThresholdForReport(alerts: AlertService, logger: Logger) {
  return async (tx: Transaction, report: StoredAggregateReport): Promise<void> => {
    if (!report.domainId) return;
    if (await isDomainPaused(tx, report.accountId, report.domainId)) {
      logger.debug(
        { reportId: report.id, domainId: report.domainId },
        'stored the report of a paused domain without judging threshold rules',
      );
      return;
    }
    const rules = await listRulesCoveringDomain(tx, report.accountId, report.domainId);
    for (const rule of rules) {
      const subject = await loadSubject(tx, report.accountId, rule);
      if (!subject || subject.domainIds.length === 0) continue;
      const verdicts =
        rule.windowHours === null
          ? [judgeReport(rule, report)]
          : await judgeWindows(tx, rule, rule.windowHours, subject, report, logger);
      for (const verdict of verdicts) {
        await applyVerdict(tx, alerts, logger, { rule, subject, report, verdict });
      }
    }
  };
}

async function loadSubject(
  tx: Transaction,
  accountId: string,
  rule: ThresholdRule,
): Promise<RuleSubject | null> {
  if (rule.domainId) {
    const [domain] = await tx.query<{ customer_id: string; name: string }>(
      `SELECT customer_id, name FROM domains
        WHERE account_id = $1 AND id = $2 AND status <> 'paused'`,
      [accountId, rule.domainId],
    );
    if (!domain) return null;
    return {
      type: 'domain',
      id: rule.domainId,
      name: domain.name,
      customerId: domain.customer_id,
      domainIds: [rule.domainId],
      domainNames: [domain.name],
    };
  }
  const [group] = await tx.query<{ customer_id: string; name: string }>(
    'SELECT customer_id, name FROM domain_groups WHERE account_id = $1 AND id = $2',
    [accountId, rule.groupId],
  );
  if (!group) return null;
  const members = await tx.query<{ id: string; name: string }>(
    `SELECT d.id, d.name FROM domain_group_members m JOIN domains d ON d.id = m.domain_id
      WHERE m.group_id = $1 AND d.account_id = $2 AND d.status <> 'paused' ORDER BY d.name`,
    [rule.groupId, accountId],
  );
  return {
    type: 'group',
    id: rule.groupId!,
    name: group.name,
    customerId: group.customer_id,
    domainIds: members.map((member) => member.id),
    domainNames: members.map((member) => member.name),
  };
}

/** Compare totals with the rule's limits; the rate counts only from minMessages messages up. */
function exceededLimits(
  rule: ThresholdRule,
  totalMessages: number,
  failedMessages: number,
): ThresholdEvidence['exceeded'] {
  const exceeded: ThresholdEvidence['exceeded'] = [];
  if (rule.maxFailedMessages !== null && failedMessages > rule.maxFailedMessages) {
    exceeded.push('failed_count');
  }
  if (
    rule.maxFailurePercent !== null &&
    totalMessages > 0 &&
    totalMessages >= rule.minMessages &&
    (failedMessages / totalMessages) * 100 > rule.maxFailurePercent
  ) {
    exceeded.push('failure_percent');
  }
  return exceeded;
}

function judgeReport(rule: ThresholdRule, report: StoredAggregateReport): WindowVerdict {
  return {
    window: { begin: report.periodBegin, end: report.periodEnd },
    reportCount: 1,
    reporters: [report.orgName],
    totalMessages: report.messageCount,
    failedMessages: report.failedCount,
    exceeded: exceededLimits(rule, report.messageCount, report.failedCount),
  };
}

async function judgeWindows(
  tx: Transaction,
  rule: ThresholdRule,
  windowHours: number,
  subject: RuleSubject,
  report: StoredAggregateReport,
  logger: Logger,
): Promise<WindowVerdict[]> {
  const windowMs = windowHours * HOUR_MS;
  // The window ending at `end` overlaps the report exactly when the report begins before `end`
  // and ends after `end - window`. The report's own period end is always one of them.
  const ends = await listReportPeriodEnds(
    tx,
    report.accountId,
    subject.domainIds,
    { after: report.periodBegin, before: new Date(report.periodEnd.getTime() + windowMs) },
    MAX_WINDOWS_PER_REPORT,
  );
  if (ends.length === MAX_WINDOWS_PER_REPORT) {
    logger.warn(
      { ruleId: rule.id, reportId: report.id, windows: ends.length },
      'a report falls into more windows than are judged at once; only the newest were judged',
    );
  }
  const verdicts: WindowVerdict[] = [];
  for (const end of ends) {
    const window = { begin: new Date(end.getTime() - windowMs), end };
    const totals = await sumReportsInWindow(tx, report.accountId, subject.domainIds, window);
    verdicts.push({
      window,
      reportCount: totals.reportCount,
      reporters: totals.reporters,
      totalMessages: totals.messageCount,
      failedMessages: totals.failedCount,
      exceeded: exceededLimits(rule, totals.messageCount, totals.failedCount),
    });
  }
  return verdicts;
}

/** Build the fingerprint of a rule's condition from account, customer, subject and rule. */
export function thresholdFingerprint(
  accountId: string,
  subject: Pick<RuleSubject, 'type' | 'id' | 'customerId'>,
  ruleId: string,
): string {
  return `threshold/account/${accountId}/customer/${subject.customerId}/${subject.type}/${subject.id}/rule/${ruleId}`;
}

async function applyVerdict(
  tx: Transaction,
  alerts: AlertService,
  logger: Logger,
  input: {
    rule: ThresholdRule;
    subject: RuleSubject;
    report: StoredAggregateReport;
    verdict: WindowVerdict;
  },
): Promise<void> {
  const { rule, subject, report, verdict } = input;
  const fingerprint = thresholdFingerprint(report.accountId, subject, rule.id);
  if (verdict.exceeded.length === 0) {
    const resolved = await alerts.observeClear(tx, {
      accountId: report.accountId,
      fingerprint,
      observedAt: verdict.window.end,
    });
    if (resolved) {
      logger.info(
        { incidentId: resolved.id, subject: subject.name },
        'resolved threshold incident',
      );
    }
    return;
  }

  const topSources =
    rule.windowHours === null
      ? topFailingSourcesOfReport(report)
      : await topFailingSourcesInWindow(
          tx,
          report.accountId,
          subject.domainIds,
          verdict.window,
          TOP_SOURCES,
        );
  const failurePercent =
    verdict.totalMessages > 0
      ? Math.round((verdict.failedMessages / verdict.totalMessages) * 10_000) / 100
      : 0;
  const evidence: ThresholdEvidence = {
    kind: 'threshold',
    ruleId: rule.id,
    subject: {
      type: subject.type,
      id: subject.id,
      name: subject.name,
      domains: subject.domainNames,
    },
    failedMessages: verdict.failedMessages,
    totalMessages: verdict.totalMessages,
    failurePercent,
    maxFailedMessages: rule.maxFailedMessages,
    maxFailurePercent: rule.maxFailurePercent,
    minMessages: rule.minMessages,
    windowHours: rule.windowHours,
    exceeded: verdict.exceeded,
    period: { begin: verdict.window.begin.toISOString(), end: verdict.window.end.toISOString() },
    reportCount: verdict.reportCount,
    reporters: verdict.reporters,
    reporter: report.orgName,
    reportId: report.reportId,
    topSources,
  };
  // A window is one firing however often late reports change its totals; a rule without a
  // window fires once per report.
  const dedupeKey =
    rule.windowHours === null
      ? `${fingerprint}/report/${report.id}`
      : `${fingerprint}/window/${rule.windowHours}h/${verdict.window.end.toISOString()}`;
  const alert = await alerts.raise(
    tx,
    {
      accountId: report.accountId,
      customerId: subject.customerId,
      domainId: subject.type === 'domain' ? subject.id : null,
      domainName: subject.name,
      ...(subject.type === 'group' ? { groupId: subject.id } : {}),
      kind: 'threshold',
      fingerprint,
      dedupeKey,
      summary: thresholdSummary(subject, rule, verdict, failurePercent),
      evidence,
      aggregateReportId: report.id,
    },
    {
      observedAt: verdict.window.end,
      clearMode: 'observed',
      clearAfterSeconds: rule.effectiveClearAfterHours * 3600,
      ruleId: rule.id,
    },
  );
  if (alert) {
    logger.info(
      {
        alertId: alert.id,
        incidentId: alert.incidentId,
        subject: subject.name,
        failed: verdict.failedMessages,
        windowEnd: verdict.window.end,
      },
      'raised threshold alert',
    );
  }
}

function thresholdSummary(
  subject: RuleSubject,
  rule: ThresholdRule,
  verdict: WindowVerdict,
  failurePercent: number,
): string {
  const name = subject.type === 'group' ? `domain group ${subject.name}` : subject.name;
  const span = rule.windowHours === null ? 'one report' : `${rule.windowHours} hours`;
  const limits = [
    rule.maxFailedMessages !== null ? `limit ${rule.maxFailedMessages} messages` : null,
    rule.maxFailurePercent !== null ? `limit ${rule.maxFailurePercent} %` : null,
  ].filter((limit) => limit !== null);
  return (
    `DMARC threshold alert: ${name}: ${verdict.failedMessages} of ${verdict.totalMessages} ` +
    `messages failed DMARC (${failurePercent} %) in ${span} (${limits.join(', ')})`
  );
}

function topFailingSourcesOfReport(report: StoredAggregateReport): ThresholdEvidence['topSources'] {
  // The store lists the top failing sources, since the records are not held in memory.
  return report.topFailingSources.slice(0, TOP_SOURCES);
}
