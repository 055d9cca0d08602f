// Writes the benchmark corpus: deterministic synthetic aggregate reports as XML, gzip and mail,
// named as reporters name them (reporter!domain!begin!end), which dmarc-cat requires.
import { createWriteStream, mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';

import { syntheticReportParts } from '../../src/reports/synthetic-reports.ts';

/** One group of reports of the same size, in three forms. */
export interface CorpusSet {
  name: string;
  reports: number;
  recordsPerReport: number;
  xmlFiles: string[];
  gzipFiles: string[];
  mailFiles: string[];
  /** An mbox holding every mail of the set, for tools that read one. */
  mbox: string;
  xmlBytes: number;
}

export interface CorpusPlan {
  name: string;
  reports: number;
  recordsPerReport: number;
}

const DAY = 86_400;

/** Writes one report to disk piece by piece and returns its XML size. */
async function writeXml(path: string, parts: Iterable<string>): Promise<number> {
  const stream = createWriteStream(path);
  let bytes = 0;
  let pending: string[] = [];
  let pendingLength = 0;
  for (const part of parts) {
    pending.push(part);
    pendingLength += part.length;
    if (pendingLength < 1 << 20) continue;
    const chunk = pending.join('');
    bytes += Buffer.byteLength(chunk);
    if (!stream.write(chunk)) await once(stream, 'drain');
    pending = [];
    pendingLength = 0;
  }
  const rest = pending.join('');
  bytes += Buffer.byteLength(rest);
  stream.end(rest);
  await once(stream, 'finish');
  return bytes;
}

/** Builds the mail a reporter sends: a text part and the gzip report as a base64 attachment. */
function reportMail(fileName: string, gzip: Buffer, index: number): string {
  const base64 = gzip.toString('base64').replace(/.{76}/g, '$&\n');
  return [
    'From: noreply-dmarc@reporter.example',
    'To: dmarc@bench.example',
    `Subject: Report Domain: bench.example Submitter: reporter.example Report-ID: ${index}`,
    'Date: Tue, 14 Nov 2023 22:13:20 +0000',
    `Message-ID: <bench-${index}@reporter.example>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="dmarc-bench"',
    '',
    '--dmarc-bench',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'This is an aggregate report from reporter.example.',
    '--dmarc-bench',
    `Content-Type: application/gzip; name="${fileName}.gz"`,
    `Content-Disposition: attachment; filename="${fileName}.gz"`,
    'Content-Transfer-Encoding: base64',
    '',
    base64,
    '--dmarc-bench--',
    '',
  ].join('\n');
}

/**
 * Writes every set of the plan below `dir` and returns the file lists. Report n of a set has
 * seed n, so two runs write the same bytes.
 */
export async function writeCorpus(dir: string, plans: CorpusPlan[]): Promise<CorpusSet[]> {
  const sets: CorpusSet[] = [];
  for (const plan of plans) {
    const folder = join(dir, plan.name);
    for (const form of ['xml', 'gzip', 'mail']) mkdirSync(join(folder, form), { recursive: true });
    const set: CorpusSet = {
      ...plan,
      xmlFiles: [],
      gzipFiles: [],
      mailFiles: [],
      mbox: join(folder, 'all.mbox'),
      xmlBytes: 0,
    };
    const mbox = createWriteStream(set.mbox);
    for (let index = 0; index < plan.reports; index += 1) {
      const begin = 1_700_006_400 + index * DAY;
      const fileName = `reporter.example!bench.example!${begin}!${begin + DAY - 1}.xml`;
      const options = {
        records: plan.recordsPerReport,
        reportId: `${plan.name}-${index}`,
        orgName: 'reporter.example',
        domain: 'bench.example',
        begin,
        seed: index,
      };
      const xmlPath = join(folder, 'xml', fileName);
      set.xmlBytes += await writeXml(xmlPath, syntheticReportParts(options));

      const xml = Buffer.from([...syntheticReportParts(options)].join(''));
      const gzip = gzipSync(xml);
      const gzipPath = join(folder, 'gzip', `${fileName}.gz`);
      await writeFile(gzipPath, gzip);
      const mail = reportMail(fileName, gzip, index);
      const mailPath = join(folder, 'mail', `${fileName}.eml`);
      await writeFile(mailPath, mail);
      if (!mbox.write(`From noreply-dmarc@reporter.example Tue Nov 14 22:13:20 2023\n${mail}\n`)) {
        await once(mbox, 'drain');
      }
      set.xmlFiles.push(xmlPath);
      set.gzipFiles.push(gzipPath);
      set.mailFiles.push(mailPath);
    }
    mbox.end();
    await once(mbox, 'finish');
    sets.push(set);
  }
  return sets;
}
