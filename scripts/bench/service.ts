// The HTTP upload and HaloPSA sync benchmarks: the service runs on 127.0.0.1 with the HaloPSA
// emulator, its rate limit off, once per storage engine.
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';

import { startEmulator } from '../../emulator/halopsa/server.ts';
import { syntheticReport } from '../../src/reports/synthetic-reports.ts';
import { openTestDatabase } from '../../test/support/databases.ts';
import {
  apiClient,
  createTestAccount,
  eventually,
  startService,
} from '../../test/support/service.ts';

export interface ServiceRow {
  name: string;
  value: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Uploads reports one at a time over HTTP and times licence updates in HaloPSA. */
export async function benchService(
  engine: 'pglite' | 'postgres',
  record: (name: string, value: string) => void,
): Promise<void> {
  const database = await openTestDatabase(engine);
  const emulator = await startEmulator({ rateLimit: null });
  const service = await startService(database, { allowedHosts: [new URL(emulator.url).host] });
  try {
    const api = apiClient(service.url, (await createTestAccount(service.app)).token);
    const customer = (await api('POST', '/customers', { name: 'Bench Customer' })).body;
    await api('POST', `/customers/${customer.id}/domains`, { name: 'bench.example' });

    const uploads = 200;
    const reports = Array.from({ length: uploads }, (_, index) =>
      gzipSync(
        syntheticReport({
          records: 20,
          reportId: `r${index}`,
          domain: 'bench.example',
          seed: index,
        }),
      ),
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
