// Runs the service as a child process (`node --import tsx src/main.ts`), the way it runs in
// production, so that tests can kill it with SIGKILL mid-work and run several processes on one
// PostgreSQL database. Each process listens on 127.0.0.1 and has its own data folder.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Lines of output kept per process, for the message of a failed start or test.
const OUTPUT_LINES_KEPT = 200;

/** A running service process. */
export interface ServiceProcess {
  /** A name for messages, such as "worker-2". */
  name: string;
  /** http://127.0.0.1:PORT */
  url: string;
  pid: number;
  dataDir: string;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** The last lines the process wrote to stdout and stderr. */
  output(): string;
  /** Kill the process with SIGKILL, as a crash or an out-of-memory kill would. */
  kill(): Promise<void>;
  /** Stop the process with SIGTERM and wait for it to exit; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface ServiceProcessOptions {
  name: string;
  databaseUrl: string;
  /** The 32-byte key, base64, that every process sharing the database must use. */
  secretKey: string;
  /** host:port pairs allowed as HaloPSA instances (the emulator). */
  allowedHosts: string[];
  /** More DMARCDESK_* settings; they override the defaults below. */
  environment?: Record<string, string>;
  /** Receives every line the process writes to stdout or stderr (pino writes JSON lines). */
  onOutputLine?: (line: string) => void;
  /** How long to wait for GET /health to return 200, in milliseconds; default 60,000. */
  startTimeoutMs?: number;
}

/** Return a TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Start one service process on a free port with a fresh data folder and wait until GET /health
 * returns 200. Only PATH and the DMARCDESK_* settings given here reach the child's environment.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), `dmarcdesk-${options.name}-`));
  const port = await freePort();
  const environment: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    DMARCDESK_HOST: '127.0.0.1',
    DMARCDESK_PORT: String(port),
    DMARCDESK_DATA_DIR: dataDir,
    DMARCDESK_DATABASE_URL: options.databaseUrl,
    DMARCDESK_SECRET_KEY: options.secretKey,
    DMARCDESK_HALOPSA_ALLOWED_HOSTS: options.allowedHosts.join(','),
    DMARCDESK_PUBLIC_URL: 'http://dmarcdesk.test',
    // Nothing listens on port 9 (discard), so record checks fail at once and never reach a
    // real resolver.
    DMARCDESK_DNS_SERVERS: '127.0.0.1:9',
    DMARCDESK_LOG_LEVEL: process.env.DMARCDESK_TEST_LOG_LEVEL ?? 'warn',
    ...options.environment,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPOSITORY_ROOT,
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  // DMARCDESK_TEST_PROCESS_LOG_DIR keeps each process's whole output, to read after the run.
  const logDir = process.env.DMARCDESK_TEST_PROCESS_LOG_DIR;
  const logFile = logDir ? join(logDir, `${options.name}.log`) : null;
  const keep = (line: string) => {
    if (line.length === 0) return;
    if (logFile) appendFileSync(logFile, `${line}\n`);
    options.onOutputLine?.(line);
    lines.push(line);
    if (lines.length > OUTPUT_LINES_KEPT) lines.shift();
  };
  // readline splits at line ends, so a line written across two chunks arrives whole.
  createInterface({ input: child.stdout! }).on('line', keep);
  createInterface({ input: child.stderr! }).on('line', keep);
  // 'close' comes after the output streams end, so every line has been seen by then.
  const exit = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const url = `http://127.0.0.1:${port}`;
  const running: ServiceProcess = {
    name: options.name,
    url,
    pid: child.pid!,
    dataDir,
    get exited() {
      return child.exitCode !== null || child.signalCode !== null;
    },
    output: () => lines.join('\n'),
    async kill() {
      if (!running.exited) child.kill('SIGKILL');
      await exit;
      rmSync(dataDir, { recursive: true, force: true });
    },
    async stop(timeoutMs = 15_000) {
      if (!running.exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exit;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (running.exited) {
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(
        `Service process ${options.name} exited with ${child.exitCode ?? child.signalCode} before GET /health returned 200. Its output:\n${running.output()}`,
      );
    }
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) return running;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await running.kill();
  throw new Error(
    `Service process ${options.name} did not return 200 on GET ${url}/health within ${options.startTimeoutMs ?? 60_000} ms. Its output:\n${running.output()}`,
  );
}
