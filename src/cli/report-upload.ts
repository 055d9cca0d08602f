import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ApiRequestError, CliError, type ApiClient } from './api-client.ts';

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

/**
 * Return the directory that relative paths on the command line are resolved against. `npm run`
 * starts scripts in the package root, but sets INIT_CWD to the directory npm was started in.
 */
export function commandLineDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.INIT_CWD || process.cwd();
}

/** Read a report file named on the command line, or throw a CliError naming the full path. */
export function readReportFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const relativeTo = `Relative paths are read from ${commandLineDirectory()}.`;
    switch (code) {
      case 'ENOENT':
        throw new CliError(`No file at ${path}. Check the path. ${relativeTo}`);
      case 'ENOTDIR':
        throw new CliError(
          `No file at ${path}, because a part of the path is a file. ${relativeTo}`,
        );
      case 'EISDIR':
        throw new CliError(`${path} is a folder. Name a report file.`);
      case 'EACCES':
      case 'EPERM':
        throw new CliError(`Permission denied reading ${path}. Check the file's permissions.`);
      default:
        throw new CliError(`Could not read ${path}: ${(error as Error).message}`);
    }
  }
}

/** Resolve each file named on the command line to an absolute path. */
export function resolveReportFiles(files: string[]): string[] {
  const directory = commandLineDirectory();
  return files.map((file) => resolve(directory, file));
}

/** Upload one report file, given by its absolute path, and return the service's result. */
export function uploadReport(api: ApiClient, path: string): Promise<unknown> {
  return api.upload('/reports', readReportFile(path));
}

/**
 * Upload each file, given by its absolute path, in turn and collect a result or an error per file. A failure that is not
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
