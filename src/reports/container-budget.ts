import type { ContainerLimits } from './containers.ts';
import { ReportInputError } from './report-input-error.ts';

/**
 * Output below this size is never rejected by the ratio check. A tiny report can compress far
 * better than a real one (a 1 KiB gzip of repeated records), and a bomb must expand to much more
 * than this before it costs anything.
 */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

/** Formats a byte count for a message, such as "200 MiB" or "512 bytes". */
export function formatBytes(bytes: number): string {
  const mebibytes = bytes / (1024 * 1024);
  if (mebibytes >= 1)
    return `${Number.isInteger(mebibytes) ? mebibytes : mebibytes.toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/**
 * Counts what one extraction has produced so far: every decompressed byte of every layer
 * (intermediate layers included, since they are held in memory too) and every archive member.
 * One budget is shared by all layers of one input.
 */
export class ExtractionBudget {
  expandedBytes = 0;
  files = 0;
  /**
   * One sentence per zip member skipped because it carries no report, and per run of bytes
   * ignored after gzip data, in the order found, for the warnings of the input.
   */
  readonly inputWarnings: string[] = [];

  constructor(
    readonly limits: ContainerLimits,
    /** The name messages use for the whole input, such as "the upload". */
    readonly inputLabel = 'the upload',
  ) {}

  /** Counts one more archive member and rejects the input past maxFiles. */
  addFile(label: string): void {
    this.files += 1;
    if (this.files > this.limits.maxFiles) {
      throw new ReportInputError(
        'too_many_files',
        `${this.inputLabel} contains more than ${this.limits.maxFiles} files (reached at ${label}); ` +
          'send each report in its own file or archive.',
      );
    }
  }

  /** Starts counting the output of one decompression layer whose input is compressedBytes long. */
  startLayer(label: string, compressedBytes: number): LayerCounter {
    return new LayerCounter(this, label, compressedBytes);
  }

  /**
   * Returns how many bytes a new decompression layer can output while no limit can reject them:
   * its output stays at most RATIO_FLOOR_BYTES, where the ratio check starts, and the input's
   * total at most maxExpandedBytes. The result can be 0 or less.
   */
  layerBytesBelowLimits(): number {
    return Math.min(RATIO_FLOOR_BYTES, this.limits.maxExpandedBytes - this.expandedBytes);
  }

  /** Rejects a zip member before it is read when its declared size already breaks a limit. */
  checkDeclaredSize(label: string, declaredBytes: number, compressedBytes: number): void {
    checkRatio(label, declaredBytes, compressedBytes, this.limits.maxRatio);
    this.checkTotal(label, this.expandedBytes + declaredBytes);
  }

  checkTotal(label: string, totalBytes: number): void {
    if (totalBytes > this.limits.maxExpandedBytes) {
      throw new ReportInputError(
        'too_large',
        `${label} expands to more than ${formatBytes(this.limits.maxExpandedBytes)} in total, ` +
          'the limit for one upload; a DMARC report is far smaller, so the file was rejected.',
      );
    }
  }
}

function checkRatio(label: string, outputBytes: number, compressedBytes: number, maxRatio: number) {
  if (outputBytes <= RATIO_FLOOR_BYTES) return;
  if (outputBytes <= maxRatio * Math.max(compressedBytes, 1)) return;
  throw new ReportInputError(
    'compression_ratio',
    `${label} expands more than ${maxRatio} times (its first ${formatBytes(compressedBytes)} of ` +
      `compressed data made ${formatBytes(outputBytes)} when reading stopped), while a DMARC ` +
      'report compresses about 10 to 30 times; it was rejected as a decompression bomb.',
  );
}

/** Counts the output of one layer while it is being decompressed. */
export class LayerCounter {
  outputBytes = 0;

  constructor(
    private readonly budget: ExtractionBudget,
    readonly label: string,
    private readonly compressedBytes: number,
  ) {}

  /**
   * Adds a chunk of output and throws a ReportInputError as soon as a limit is passed.
   * consumedBytes is the part of the compressed input read so far. Checking the ratio against
   * it stops a bomb after about a mebibyte of output, where the whole input would let it run to
   * maxRatio times its size.
   */
  add(bytes: number, consumedBytes = this.compressedBytes): void {
    this.outputBytes += bytes;
    this.budget.expandedBytes += bytes;
    const ratioBase = Math.min(consumedBytes, this.compressedBytes);
    checkRatio(this.label, this.outputBytes, ratioBase, this.budget.limits.maxRatio);
    this.budget.checkTotal(this.label, this.budget.expandedBytes);
  }
}
