import { gzipSync } from 'node:zlib';

import {
  parseAggregateReport,
  parseAggregateStream,
  type AggregateRecord,
  type ParsedAggregateReport,
} from './aggregate-parser.ts';
import { streamDocuments } from './containers.ts';
import { ReportInputError } from './report-input-error.ts';

/** Mulberry32: a small seeded generator, so that a fuzz run can be repeated from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Fragments that break XML in the ways real generators and attackers do. */
const FRAGMENTS = [
  '<',
  '&',
  '>',
  ']]>',
  '</record>',
  '<record>',
  '<!DOCTYPE feedback [<!ENTITY a "aaaa">]>',
  '&a;',
  '&#0;',
  '&#x110000;',
  '<![CDATA[x]]>',
  '<!-- c -->',
  '<?pi x?>',
  '\u0000',
  '\uffff',
  '\ud800',
  '<x:ext xmlns:x="urn:x">1</x:ext>',
  '<count>99999999999999999999</count>',
  '<source_ip>not-an-ip</source_ip>',
  '<feedback>',
  '</feedback>',
  '\r\n',
  ' a="1" a="2"',
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** Returns a copy of `input` with one to four random edits: flips, inserts, cuts and repeats. */
export function mutate(input: Buffer, random: () => number): Buffer {
  let bytes = Buffer.from(input);
  const edits = 1 + Math.floor(random() * 4);
  for (let edit = 0; edit < edits; edit += 1) {
    const at = Math.floor(random() * (bytes.length + 1));
    const kind = Math.floor(random() * 6);
    if (kind === 0 && bytes.length > 0) {
      const index = Math.min(at, bytes.length - 1);
      bytes[index] = (bytes[index] as number) ^ (1 << Math.floor(random() * 8));
    } else if (kind === 1) {
      const fragment = Buffer.from(pick(random, FRAGMENTS));
      bytes = Buffer.concat([bytes.subarray(0, at), fragment, bytes.subarray(at)]);
    } else if (kind === 2) {
      bytes = bytes.subarray(0, at);
    } else if (kind === 3) {
      const length = Math.floor(random() * 64);
      bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + length)]);
    } else if (kind === 4) {
      const length = Math.floor(random() * 200);
      const piece = bytes.subarray(at, at + length);
      bytes = Buffer.concat([bytes.subarray(0, at), piece, piece, bytes.subarray(at)]);
    } else {
      bytes = Buffer.from(bytes.toString('latin1').replace(/></, '>\u00e9<'), 'latin1');
    }
  }
  return bytes;
}

/** Cuts bytes into random slices, so the streaming parser meets every boundary. */
function* randomSlices(bytes: Buffer, random: () => number): Generator<Buffer> {
  let offset = 0;
  while (offset < bytes.length) {
    const size = 1 + Math.floor(random() * 300);
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

type Outcome = { ok: true; report: ParsedAggregateReport } | { ok: false; code: string };

function outcomeOf(run: () => ParsedAggregateReport): Outcome {
  try {
    return { ok: true, report: run() };
  } catch (error) {
    if (error instanceof ReportInputError) return { ok: false, code: error.code };
    throw error;
  }
}

async function streamOutcome(bytes: Buffer, random: () => number): Promise<Outcome> {
  const records: AggregateRecord[] = [];
  try {
    const summary = await parseAggregateStream(randomSlices(bytes, random), {
      header: () => {},
      records: (batch) => void records.push(...batch),
    });
    const { recordCount: _count, messageCount: _messages, ...fields } = summary;
    return { ok: true, report: { ...fields, records } };
  } catch (error) {
    if (error instanceof ReportInputError) return { ok: false, code: error.code };
    throw error;
  }
}

/** The problem one case found, with its input, or null when the parsers behaved. */
export type FuzzFinding = { input: Buffer; problem: string } | null;

function describe(outcome: Outcome): string {
  return outcome.ok ? `parsed ${outcome.report.records.length} records` : outcome.code;
}

/**
 * Runs one mutated input through every parser path and checks what must hold for any input.
 * Only ReportInputError is thrown, and the whole-document and streaming parsers agree. The one
 * exception is a document the whole-document parser repaired, which the streaming one does not.
 */
export async function fuzzOnce(seedInput: Buffer, random: () => number): Promise<FuzzFinding> {
  const input = mutate(seedInput, random);
  let whole: Outcome;
  let streamed: Outcome;
  try {
    whole = outcomeOf(() => parseAggregateReport(input));
    streamed = await streamOutcome(input, random);
  } catch (error) {
    return { input, problem: `a parser threw ${String(error)}` };
  }
  const repaired =
    whole.ok &&
    whole.report.warnings.some((warning) =>
      warning.startsWith('The XML is not well-formed as sent'),
    );
  if (!repaired) {
    const same = whole.ok
      ? streamed.ok && JSON.stringify(streamed.report) === JSON.stringify(whole.report)
      : !streamed.ok && streamed.code === whole.code;
    if (!same) {
      return { input, problem: `whole parse ${describe(whole)}, streaming ${describe(streamed)}` };
    }
  }

  // The same bytes, gzipped with a damaged byte, through the container layer.
  const gzip = mutate(gzipSync(input), random);
  try {
    for await (const document of streamDocuments(gzip)) {
      for await (const _chunk of document.chunks) {
        // Read to the end, so that every check of the container runs.
      }
    }
  } catch (error) {
    if (!(error instanceof ReportInputError)) {
      return { input: gzip, problem: `the container layer threw ${String(error)}` };
    }
  }
  return null;
}
