// Start the HaloPSA emulator and dmarcdesk together with demo data, for a first look.
// The demo keeps its state in ./data/demo, wiped at every start, so each run begins the same.
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startEmulator } from '../emulator/halopsa/server.ts';
import { createApp } from '../src/app.ts';
import { createApiToken } from '../src/auth/api-tokens.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/logging.ts';
import { createAccount } from '../src/platform/accounts.ts';
import { createCustomer } from '../src/platform/customers.ts';
import { setThresholdRule } from '../src/alerts/threshold-rules.ts';

// The policy domain of test/fixtures/reports/e2e-failing-report.xml.
const DEMO_REPORT_DOMAIN = 'stalw.art';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    'emulator-port': { type: 'string', default: '8090' },
    'data-dir': { type: 'string', default: './data/demo' },
  },
  strict: true,
});

const port = Number(values.port);
const emulatorPort = Number(values['emulator-port']);
const dataDir = values['data-dir']!;
rmSync(dataDir, { recursive: true, force: true });

const emulator = await startEmulator({ host: '127.0.0.1', port: emulatorPort });
const config = loadConfig({
  ...process.env,
  DMARCDESK_DATA_DIR: dataDir,
  DMARCDESK_PORT: String(port),
  DMARCDESK_HALOPSA_ALLOWED_HOSTS: `127.0.0.1:${emulatorPort}`,
  DMARCDESK_LOG_LEVEL: process.env.DMARCDESK_LOG_LEVEL ?? 'warn',
});
const logger = createLogger(config.logLevel);
const app = await createApp(config, logger);

// Demo data: an MSSP account with three customers, the domains of the bundled sample report,
// and a threshold that the sample report exceeds.
const account = await createAccount(app.db, { name: 'Demo MSP', halopsaIntegrationEnabled: true });
const { token } = await createApiToken(app.db, account.id, 'demo');
const customers = [
  { name: 'Acme Dental', domains: ['acme-dental.example', 'acmedental-mail.example'] },
  { name: 'Bergen Logistics', domains: ['bergen-logistics.example'] },
  { name: 'Sample Reports Ltd', domains: [DEMO_REPORT_DOMAIN] },
];
for (const entry of customers) {
  const customer = await createCustomer(app.db, account.id, entry.name);
  for (const name of entry.domains) {
    const domain = await app.domains.add(account.id, customer.id, { name });
    await setThresholdRule(app.db, account.id, domain.id, 0);
  }
}

await app.server.listen({ host: '127.0.0.1', port });
process.stdout.write(`
dmarcdesk demo is running.

  dmarcdesk           http://127.0.0.1:${port}   (PGlite in ${dataDir})
  HaloPSA emulator    ${emulator.url}   (client ID dmarcdesk-demo, secret demo-secret-change-me)

  export DMARCDESK_URL=http://127.0.0.1:${port}
  export DMARCDESK_TOKEN=${token}

Follow "A first run" in README.md from step 2. Stop with Ctrl+C.
`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await app.close();
  await emulator.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
