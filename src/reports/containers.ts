import { ExtractionBudget, formatBytes } from './container-budget.ts';
import { detectContent } from './container-detect.ts';
import { gunzipCounted, inflateZlibCounted } from './container-inflate.ts';
import { readMailParts } from './container-mail.ts';
import { readZipMembers } from './container-zip.ts';
import { quoteForMessage, ReportInputError } from './report-input-error.ts';

export interface ContainerLimits {
  /** Largest accepted input, in bytes; default 25 MiB. */
  maxInputBytes: number;
  /**
   * Largest total of decompressed bytes, in bytes, counting every layer (a gzip inside a zip
   * counts both outputs); default 200 MiB.
   */
  maxExpandedBytes: number;
  /**
   * Largest expanded/compressed ratio of one layer; default 200, while a real DMARC XML gzips
   * about 10 to 30 times. Output under 1 MiB is never rejected for its ratio.
   */
  maxRatio: number;
  /** Most archive members across all archives (zip entries, extra gzip members, mail attachments); default 100. */
  maxFiles: number;
  /** Most containers nested in one another (mail, zip, gzip, zlib); default 3. */
  maxDepth: number;
}

export const DEFAULT_CONTAINER_LIMITS: ContainerLimits = {
  maxInputBytes: 25 * 1024 * 1024,
  maxExpandedBytes: 200 * 1024 * 1024,
  maxRatio: 200,
  maxFiles: 100,
  maxDepth: 3,
};

export interface ExtractedDocument {
  /** The name of the innermost archive member or attachment, or 'upload' for the input itself. */
  name: string;
  /** The layers found from the outside in, such as ['zip', 'gzip', 'xml']. */
  layers: string[];
  bytes: Buffer;
}

/**
 * A ReportInputError for content that contains no report, with what was found, so that an archive
 * or mail can list its skipped members briefly.
 */
class NoReportError extends ReportInputError {
  constructor(
    code: 'empty' | 'unsupported_format',
    message: string,
    readonly layers: string[],
    readonly contentDescription: string,
  ) {
    super(code, message);
  }
}

interface Item {
  name: string;
  /** The name messages use for this item, such as 'the upload' or 'zip member "a.xml"'. */
  label: string;
  layers: string[];
  bytes: Buffer;
}

/**
 * Unwraps raw XML, gzip (several members and trailing bytes too), zlib, zip (every member) and
 * mail messages (every attachment), nested up to maxDepth containers, detected by content (magic
 * bytes) and never by name. Decompression is streamed and counted, so bombs are stopped while
 * they expand. Inside an archive or a mail, members of unknown content are skipped, unless no
 * document is left.
 *
 * @throws ReportInputError with the code that names the reason.
 */
export async function extractDocuments(
  input: Buffer,
  limits: Partial<ContainerLimits> = {},
): Promise<ExtractedDocument[]> {
  const resolved: ContainerLimits = { ...DEFAULT_CONTAINER_LIMITS, ...limits };
  if (input.length === 0) {
    throw new ReportInputError('empty', 'The upload is empty; send the report file itself.');
  }
  if (input.length > resolved.maxInputBytes) {
    throw new ReportInputError(
      'too_large',
      `The upload is ${formatBytes(input.length)}, more than the limit of ` +
        `${formatBytes(resolved.maxInputBytes)}; a DMARC report is far smaller, so check the file.`,
    );
  }
  const budget = new ExtractionBudget(resolved);
  const root: Item = { name: 'upload', label: 'the upload', layers: [], bytes: input };
  return unwrap(root, budget, 0);
}

async function unwrap(
  item: Item,
  budget: ExtractionBudget,
  depth: number,
): Promise<ExtractedDocument[]> {
  const detected = detectContent(item.bytes);
  switch (detected.kind) {
    case 'xml':
      return [{ name: item.name, layers: [...item.layers, 'xml'], bytes: item.bytes }];
    case 'empty':
      throw new NoReportError(
        'empty',
        `${item.label} contains ${detected.description}; send the DMARC aggregate report itself.`,
        item.layers,
        detected.description,
      );
    case 'unknown':
      throw new NoReportError(
        'unsupported_format',
        `${item.label} contains ${detected.description}, not XML, gzip, zip or a mail message; ` +
          'send the DMARC aggregate report as .xml, .xml.gz or .zip.',
        item.layers,
        detected.description,
      );
    default:
      break;
  }

  if (depth >= budget.limits.maxDepth) {
    throw new ReportInputError(
      'nesting_too_deep',
      `${item.label} contains ${detected.description} inside ${item.layers.join(' > ')}, more than ` +
        `${budget.limits.maxDepth} containers deep; send the report with at most one layer of compression.`,
    );
  }

  switch (detected.kind) {
    case 'gzip': {
      const bytes = await gunzipCounted(item.bytes, item.label, budget);
      return unwrap({ ...item, layers: [...item.layers, 'gzip'], bytes }, budget, depth + 1);
    }
    case 'zlib': {
      const bytes = await inflateZlibCounted(item.bytes, item.label, budget);
      return unwrap({ ...item, layers: [...item.layers, 'zlib'], bytes }, budget, depth + 1);
    }
    case 'zip': {
      const members = await readZipMembers(item.bytes, item.label, budget);
      const children = members.map((member) => ({
        name: member.name,
        label: `zip member ${quoteForMessage(member.name)}`,
        layers: [...item.layers, 'zip'],
        bytes: member.bytes,
      }));
      return unwrapMembers(item, 'zip archive', children, budget, depth + 1);
    }
    case 'mail': {
      const parts = await readMailParts(item.bytes, item.label);
      if (parts.some((part) => part.contentType === 'message/feedback-report')) {
        throw new ReportInputError(
          'unsupported_format',
          `${item.label} is a DMARC failure report (it has a message/feedback-report part), ` +
            'not an aggregate report, so it is not read as one.',
        );
      }
      const children = parts.map((part) => {
        const label = `mail attachment ${quoteForMessage(part.name)} (${part.contentType})`;
        budget.addFile(label);
        return { name: part.name, label, layers: [...item.layers, 'mail'], bytes: part.bytes };
      });
      return unwrapMembers(item, 'mail message', children, budget, depth + 1);
    }
  }
}

/**
 * Unwraps every member of an archive or mail. A member that contains no report (unknown content
 * or nothing) is skipped, because mails carry logos and text parts and archives carry read-me
 * files. Limits, corrupt data and nesting still reject the whole input.
 */
async function unwrapMembers(
  container: Item,
  kindName: 'zip archive' | 'mail message',
  children: Item[],
  budget: ExtractionBudget,
  depth: number,
): Promise<ExtractedDocument[]> {
  const documents: ExtractedDocument[] = [];
  const skipped: string[] = [];
  for (const child of children) {
    try {
      documents.push(...(await unwrap(child, budget, depth)));
    } catch (error) {
      if (!(error instanceof NoReportError)) throw error;
      const inner = error.layers.slice(child.layers.length);
      const wrapping = inner.length > 0 ? ` inside ${inner.join(' > ')}` : '';
      skipped.push(`${child.label} contains ${error.contentDescription}${wrapping}`);
    }
  }
  if (documents.length > 0) return documents;

  if (children.length === 0) {
    const code = kindName === 'zip archive' ? 'empty' : 'unsupported_format';
    const missing = kindName === 'zip archive' ? 'files' : 'attachments';
    throw new NoReportError(
      code,
      `${container.label} is a ${kindName} with no ${missing}; ` +
        'send the message or archive that carries the DMARC aggregate report.',
      container.layers,
      `a ${kindName} with no ${missing}`,
    );
  }
  const listed = skipped.slice(0, 3).join('; ');
  const more = skipped.length > 3 ? ` and ${skipped.length - 3} more` : '';
  throw new NoReportError(
    'unsupported_format',
    `${container.label} is a ${kindName} that carries no DMARC aggregate report ` +
      `(${listed}${more}); send the file or message that carries the XML report.`,
    container.layers,
    `a ${kindName} without a report`,
  );
}
