/** Distinct warnings kept per report; a report with a million bad records stays small. */
const MAX_DISTINCT_WARNINGS = 100;

interface WarningEntry {
  message: string;
  /** Records the warning applies to, 1-based; empty for report-level warnings. */
  firstRecord: number | null;
  count: number;
}

/**
 * Collects the warnings of one parse. Warnings with the same key are merged into one sentence
 * that names the first record and how many more had the same problem.
 */
export class WarningLog {
  private readonly entries = new Map<string, WarningEntry>();
  private dropped = 0;

  /** Adds a report-level warning, once per distinct message. */
  report(message: string): void {
    this.add(message, message, null);
  }

  /** Adds a warning about one record; key groups the same problem across records. */
  record(key: string, message: string, recordNumber: number): void {
    this.add(key, message, recordNumber);
  }

  private add(key: string, message: string, recordNumber: number | null): void {
    const existing = this.entries.get(key);
    if (existing) {
      existing.count += 1;
      return;
    }
    if (this.entries.size >= MAX_DISTINCT_WARNINGS) {
      this.dropped += 1;
      return;
    }
    this.entries.set(key, { message, firstRecord: recordNumber, count: 1 });
  }

  /**
   * Returns the warnings as sentences, in the order they first occurred, after `leading`
   * (warnings about the whole document, which come first however the document was sliced).
   */
  toSentences(leading: string[] = []): string[] {
    const recorded = [...this.entries.values()].map((entry) => {
      if (entry.firstRecord === null) return entry.message;
      const more = entry.count > 1 ? ` and ${entry.count - 1} more` : '';
      return `Record ${entry.firstRecord}${more}: ${entry.message}`;
    });
    const sentences = [...new Set(leading), ...recorded];
    if (this.dropped > 0) {
      sentences.push(`${this.dropped} further warnings of other kinds were not listed.`);
    }
    return sentences;
  }
}
