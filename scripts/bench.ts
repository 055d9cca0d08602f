// Benchmarks of the report pipeline and the HaloPSA sync, printed as a Markdown table.
// Run with `npm run bench`; needs PostgreSQL at DMARCDESK_TEST_DATABASE_URL (or the default)
// for the PostgreSQL rows, which DMARCDESK_BENCH_SKIP_POSTGRES=1 leaves out. Every server it starts listens on 127.0.0.1 and is stopped at the end.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { startEmulator } from '../emulator/halopsa/server.ts';
import { parseAggregateReport } from '../src/reports/aggregate-parser.ts';
import { extractDocuments } from '../src/reports/containers.ts';
import { openTestDatabase } from '../test/support/databases.ts';
import { apiClient, createTestAccount, eventually, startService } from '../test/support/service.ts';

interface Row {
  name: string;
  value: string;
}
const rows: Row[] = [];

function record(name: string, value: string): void {
  rows.push({ name, value });
  process.stderr.write(`${name}: ${value}\n`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function fixtureReports(): Buffer[] {
  const root = new URL('../test/fixtures/reports/', import.meta.url).pathname;
  const files: Buffer[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.xml')) files.push(readFileSync(path));
    }
  };
  walk(root);
  return files.filter((bytes) => {
    try {
      parseAggregateReport(bytes);
      return true;
    } catch {
      return false;
    }
  });
}

/** Build a report with `records` rows for `domain`, half of them failing DMARC. */
function syntheticReport(domain: string, reportId: string, records: number): Buffer {
  const parts = [
    `<?xml version="1.0" encoding="UTF-8"?><feedback><report_metadata><org_name>bench.example</org_name>`,
    `<email>noreply@bench.example</email><report_id>${reportId}</report_id>`,
    `<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>`,
    `<policy_published><domain>${domain}</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><pct>100</pct></policy_published>`,
  ];
  for (let index = 0; index < records; index += 1) {
    const verdict = index % 2 === 0 ? 'pass' : 'fail';
    parts.push(
      `<record><row><source_ip>198.51.${(index >> 8) & 255}.${index & 255}</source_ip><count>${(index % 7) + 1}</count>`,
      `<policy_evaluated><disposition>none</disposition><dkim>${verdict}</dkim><spf>${verdict}</spf></policy_evaluated></row>`,
      `<identifiers><header_from>${domain}</header_from></identifiers><auth_results>`,
      `<dkim><domain>${domain}</domain><selector>s1</selector><result>${verdict}</result></dkim>`,
      `<spf><domain>${domain}</domain><result>${verdict}</result></spf></auth_results></record>`,
    );
  }
  parts.push('</feedback>');
  return Buffer.from(parts.join(''));
}

async function benchParsing(): Promise<void> {
  const reports = fixtureReports();
  const rounds = 20;
  const started = performance.now();
  for (let round = 0; round < rounds; round += 1)
    for (const bytes of reports) parseAggregateReport(bytes);
  const seconds = (performance.now() - started) / 1000;
  record(
    `parse ${reports.length} real fixture reports x ${rounds}`,
    `${Math.round((reports.length * rounds) / seconds)} reports/s`,
  );

  const large = syntheticReport('bench.example', 'large', 100_000);
  const gzipped = gzipSync(large);
  const before = process.memoryUsage().rss;
  const parseStart = performance.now();
  const [document] = await extractDocuments(gzipped, { maxRatio: 1000 });
  const parsed = parseAggregateReport(document!.bytes);
  const parseSeconds = (performance.now() - parseStart) / 1000;
  const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
  record(
    `gunzip and parse one report of ${parsed.records.length.toLocaleString('en')} records (${(large.length / 1024 / 1024).toFixed(1)} MiB XML)`,
    `${parseSeconds.toFixed(2)} s, ${(large.length / 1024 / 1024 / parseSeconds).toFixed(1)} MiB/s, RSS +${grown.toFixed(0)} MiB`,
  );
}

async function benchService(engine: 'pglite' | 'postgres'): Promise<void> {
  const database = await openTestDatabase(engine);
  const emulator = await startEmulator({ rateLimit: null });
  const service = await startService(database, { allowedHosts: [new URL(emulator.url).host] });
  try {
    const api = apiClient(service.url, (await createTestAccount(service.app)).token);
    const customer = (await api('POST', '/customers', { name: 'Bench Customer' })).body;
    await api('POST', `/customers/${customer.id}/domains`, { name: 'bench.example' });

    const uploads = 200;
    const reports = Array.from({ length: uploads }, (_, index) =>
      gzipSync(syntheticReport('bench.example', `r${index}`, 20)),
    );
    const started = performance.now();
    for (const [index, report] of reports.entries()) {
      const response = await api('POST', '/reports', report, 'application/gzip');
      if (response.status !== 201)
        throw new Error(
          `Upload of report ${index} failed with ${response.status}: ${JSON.stringify(response.body)}`,
        );
    }
    const seconds = (performance.now() - started) / 1000;
    record(
      `${engine}: upload ${uploads} gzip reports of 20 records, one at a time over HTTP`,
      `${Math.round(uploads / seconds)} reports/s`,
    );

    await api('PUT', '/integrations/halopsa/connection', {
      url: emulator.url,
      clientId: 'dmarcdesk-demo',
      clientSecret: 'demo-secret-change-me',
    });
    const clients = (await api('GET', '/integrations/halopsa/clients')).body.clients;
    const items = (await api('GET', '/integrations/halopsa/items')).body.items;
    await api('PUT', '/integrations/halopsa/mappings', {
      mappings: [{ customerId: customer.id, haloClientId: clients[0].id, haloItemId: items[0].id }],
    });
    await api('POST', '/integrations/halopsa/submit');
    const licenceCount = async () => {
      const mappings = (await api('GET', '/integrations/halopsa/mappings')).body.mappings;
      return mappings[0].syncedCount as number | null;
    };
    await eventually(async () => ((await licenceCount()) === 1 ? true : undefined), 'first sync');

    const latencies: number[] = [];
    for (let index = 0; index < 10; index += 1) {
      const changeStart = performance.now();
      await api('POST', `/customers/${customer.id}/domains`, {
        name: `extra${index}.bench.example`,
      });
      await eventually(
        async () => ((await licenceCount()) === index + 2 ? true : undefined),
        'licence count',
        30_000,
      );
      latencies.push(performance.now() - changeStart);
    }
    record(
      `${engine}: domain added until HaloPSA licence count updated (median of 10)`,
      `${Math.round(median(latencies))} ms`,
    );
  } finally {
    await service.stop();
    await emulator.close();
    await database.drop();
  }
}

await benchParsing();
await benchService('pglite');
if (process.env.DMARCDESK_BENCH_SKIP_POSTGRES !== '1') await benchService('postgres');

process.stdout.write('\n| benchmark | result |\n| --- | --- |\n');
for (const row of rows) process.stdout.write(`| ${row.name} | ${row.value} |\n`);
