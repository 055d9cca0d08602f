import { normaliseDomain, parseMailDate, parseSourceIp } from './failure-report-fields.ts';
import {
  decodeText,
  parseHeaderFields,
  splitHeaderBlock,
  type HeaderField,
  type MimeEntity,
} from './mime-entity.ts';

/** The facts that the text of a failure report without a machine-readable part contains. */
export interface TextOnlyReport {
  reportedDomain: string | null;
  sourceIp: string | null;
  arrivalDate: Date | null;
  identityAlignment: string[] | null;
  /** Every "Key: Value" line of the text before the copied headers, keys as written. */
  fields: Record<string, string>;
  /** Headers of the original message copied into the text, when there are any. */
  embeddedHeaders: { headers: HeaderField[]; headerText: string } | null;
}

// Keys seen in plain-text reports (Exim and cPanel gateways, among others), in lower case.
const DOMAIN_KEYS = new Set(['sender domain', 'reported domain', 'domain', 'from domain']);
const IP_KEYS = new Set(['sender ip address', 'sender ip', 'source ip', 'source ip address']);
const DATE_KEYS = new Set(['received date', 'arrival date', 'date received']);

/** Names of header fields that start the copy of the original headers inside the text. */
const HEADER_START =
  /^(received|return-path|authentication-results|from|date|message-id|dkim-signature):/i;
const MAX_FIELDS = 50;

/**
 * Reads a plain-text failure report: "Key: Value" lines such as "Sender Domain: example.com"
 * and "SPF Alignment: no", then the original headers that the text copies after them.
 */
export function readTextOnlyReport(entities: MimeEntity[]): TextOnlyReport {
  const text = entities
    .filter((entity) => entity.parts.length === 0 && entity.mediaType === 'text/plain')
    .map((entity) => decodeText(entity))
    .join('\n');
  const lines = text.split(/\r?\n/);

  const headerStart = lines.findIndex((line) => HEADER_START.test(line));
  const factLines = headerStart >= 0 ? lines.slice(0, headerStart) : lines;
  const fields: Record<string, string> = {};
  for (const line of factLines) {
    const match = /^\s*([A-Za-z][A-Za-z0-9 ._-]{1,40}?)\s*:\s*(\S.*)$/.exec(line);
    if (!match || Object.keys(fields).length >= MAX_FIELDS) continue;
    fields[match[1]!] = match[2]!.trim().slice(0, 500);
  }

  const valueOf = (keys: Set<string>) =>
    Object.entries(fields).find(([key]) => keys.has(key.toLowerCase()))?.[1] ?? null;
  return {
    reportedDomain: normaliseDomain(valueOf(DOMAIN_KEYS)),
    sourceIp: parseSourceIp(valueOf(IP_KEYS)),
    arrivalDate: parseMailDate(valueOf(DATE_KEYS)),
    identityAlignment: readAlignment(fields),
    fields,
    embeddedHeaders: headerStart >= 0 ? readEmbeddedHeaders(lines.slice(headerStart)) : null,
  };
}

function readAlignment(fields: Record<string, string>): string[] | null {
  const entries = Object.entries(fields).map(([key, value]) => [key.toLowerCase(), value] as const);
  const spf = entries.find(([key]) => key === 'spf alignment')?.[1];
  const dkim = entries.find(([key]) => key === 'dkim alignment')?.[1];
  if (spf === undefined && dkim === undefined) return null;
  const aligned = [
    ...(dkim !== undefined && /^(yes|pass|true)/i.test(dkim) ? ['dkim'] : []),
    ...(spf !== undefined && /^(yes|pass|true)/i.test(spf) ? ['spf'] : []),
  ];
  return aligned.length > 0 ? aligned : ['none'];
}

function readEmbeddedHeaders(lines: string[]): { headers: HeaderField[]; headerText: string } {
  const { headerText } = splitHeaderBlock(lines.join('\n'));
  // The text was decoded already, while header text elsewhere is kept as latin1 bytes.
  const latin1 = Buffer.from(headerText, 'utf8').toString('latin1');
  return { headers: parseHeaderFields(latin1), headerText: latin1 };
}
