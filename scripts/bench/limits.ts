import type { AggregateParseLimits } from '../../src/reports/aggregate-parser.ts';
import type { ContainerLimits } from '../../src/reports/containers.ts';

// The report of 500,000 records is about 215 MB of XML, past the default limits of 200 MiB for
// one document and for all decompressed bytes of one input, so the benchmark raises both.
export const BENCH_CONTAINER_LIMITS: Partial<ContainerLimits> = {
  maxInputBytes: 64 * 1024 * 1024,
  maxExpandedBytes: 1024 * 1024 * 1024,
};

export const BENCH_PARSE_LIMITS: Partial<AggregateParseLimits> = {
  maxDocumentBytes: 1024 * 1024 * 1024,
};
