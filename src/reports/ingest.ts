import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database, Transaction } from '../db/database.ts';
import { findDomainByName } from '../platform/domains.ts';
import { parseAggregateReport } from './aggregate-parser.ts';
import { extractDocuments, type ContainerLimits } from './containers.ts';
import { ReportInputError } from './report-input-error.ts';
import { storeAggregateReport, type StoredAggregateReport } from './report-store.ts';

/** Called inside the transaction that stored a new aggregate report. */
export type AggregateReportStoredListener = (
  tx: Transaction,
  report: StoredAggregateReport,
) => Promise<void>;

export type DocumentOutcome =
  | {
      name: string;
      layers: string[];
      status: 'stored';
      reportId: string;
      domain: string;
      monitored: boolean;
    }
  | { name: string; layers: string[]; status: 'duplicate'; reportId: string; domain: string }
  | { name: string; layers: string[]; status: 'rejected'; code: string; reason: string };

export interface IngestResult {
  documents: DocumentOutcome[];
  stored: number;
  duplicates: number;
  rejected: number;
}

/**
 * Unwrap, parse and store aggregate reports. A file that cannot be unwrapped raises a
 * ReportInputError and stores nothing. Inside an archive, each report document succeeds or
 * fails alone, in its own transaction.
 */
export class ReportIngestService {
  private readonly listeners: AggregateReportStoredListener[] = [];

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly limits: Partial<ContainerLimits> = {},
  ) {}

  onAggregateReportStored(listener: AggregateReportStoredListener): void {
    this.listeners.push(listener);
  }

  async ingest(accountId: string, input: Buffer, receivedVia: string): Promise<IngestResult> {
    const documents = await extractDocuments(input, this.limits);
    const outcomes: DocumentOutcome[] = [];
    for (const document of documents) {
      outcomes.push(await this.ingestDocument(accountId, document, receivedVia));
    }
    const result: IngestResult = {
      documents: outcomes,
      stored: outcomes.filter((outcome) => outcome.status === 'stored').length,
      duplicates: outcomes.filter((outcome) => outcome.status === 'duplicate').length,
      rejected: outcomes.filter((outcome) => outcome.status === 'rejected').length,
    };
    this.logger.info(
      {
        accountId,
        receivedVia,
        stored: result.stored,
        duplicates: result.duplicates,
        rejected: result.rejected,
      },
      'ingested report upload',
    );
    return result;
  }

  private async ingestDocument(
    accountId: string,
    document: { name: string; layers: string[]; bytes: Buffer },
    receivedVia: string,
  ): Promise<DocumentOutcome> {
    const { name, layers } = document;
    let parsed;
    try {
      parsed = parseAggregateReport(document.bytes);
    } catch (error) {
      if (!(error instanceof ReportInputError)) throw error;
      this.logger.warn(
        { accountId, document: name, code: error.code, reason: error.message },
        'rejected report document',
      );
      return { name, layers, status: 'rejected', code: error.code, reason: error.message };
    }

    const contentSha256 = createHash('sha256').update(document.bytes).digest('hex');
    return this.db.transaction(async (tx) => {
      const domain = await findDomainByName(tx, accountId, parsed.policy.domain);
      const outcome = await storeAggregateReport(tx, {
        accountId,
        domainId: domain?.id ?? null,
        parsed,
        contentSha256,
        receivedVia,
      });
      if (outcome.status === 'duplicate') {
        return {
          name,
          layers,
          status: 'duplicate',
          reportId: outcome.existingId,
          domain: parsed.policy.domain,
        };
      }
      for (const listener of this.listeners) await listener(tx, outcome.report);
      return {
        name,
        layers,
        status: 'stored',
        reportId: outcome.report.id,
        domain: parsed.policy.domain,
        monitored: domain !== null,
      };
    });
  }
}
