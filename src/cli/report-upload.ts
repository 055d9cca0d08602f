import { readFileSync } from 'node:fs';
import { ApiRequestError, type ApiClient } from './api-client.ts';

/** The counts that POST /reports returns for one upload. */
interface UploadCounts {
  stored?: number;
  duplicates?: number;
  rejected?: number;
}

/** The outcome of one file of `report upload` with several files. */
type FileOutcome = { file: string; result: unknown } | { file: string; error: string };

/** The output of `report upload` for several files. */
export interface UploadSummary {
  files: FileOutcome[];
  stored: number;
  duplicates: number;
  rejected: number;
  failed: number;
  /** Files not sent, because an earlier failure would repeat for every file. */
  notUploaded: string[];
}

/** Upload one report file and return the service's result. */
export function uploadReport(api: ApiClient, file: string): Promise<unknown> {
  return api.upload('/reports', readFileSync(file));
}

/**
 * Upload each file in turn and collect a result or an error per file. A failure that is not
 * about the file (no connection, or a token the service rejects) stops the run, and the
 * remaining files are listed in `notUploaded`.
 */
export async function uploadReports(api: ApiClient, files: string[]): Promise<UploadSummary> {
  const summary: UploadSummary = {
    files: [],
    stored: 0,
    duplicates: 0,
    rejected: 0,
    failed: 0,
    notUploaded: [],
  };
  for (const [index, file] of files.entries()) {
    try {
      const result = await uploadReport(api, file);
      const counts = (result ?? {}) as UploadCounts;
      summary.stored += counts.stored ?? 0;
      summary.duplicates += counts.duplicates ?? 0;
      summary.rejected += counts.rejected ?? 0;
      summary.files.push({ file, result });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      summary.failed += 1;
      summary.files.push({ file, error: message });
      if (failsEveryUpload(error)) {
        summary.notUploaded = files.slice(index + 1);
        break;
      }
    }
  }
  return summary;
}

function failsEveryUpload(error: unknown): boolean {
  if (!(error instanceof ApiRequestError)) return false;
  return error.status === null || error.status === 401 || error.status === 403;
}
