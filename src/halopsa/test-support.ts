// Small HTTP servers for the HaloPSA client's tests. Each listens on 127.0.0.1, port 0.
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Writable } from 'node:stream';

import pino from 'pino';

import type { HaloCallRecord, HaloPsaClientOptions } from './client.ts';
import { HaloPsaClient } from './client.ts';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  /** Sent as is, instead of json. */
  text?: string;
  /** Destroys the socket without a response. */
  destroy?: boolean;
  /** Never responds. */
  hang?: boolean;
}

export type Handler = (request: RecordedRequest) => Reply | Promise<Reply>;

export interface TestServer {
  /** Base URL, for example http://127.0.0.1:40123. */
  url: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 that records every request and responds with `handler`. */
export async function startServer(handler: Handler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const parsed = new URL(incoming.url ?? '/', 'http://127.0.0.1');
      const recorded: RecordedRequest = {
        method: incoming.method ?? 'GET',
        url: incoming.url ?? '/',
        path: parsed.pathname,
        query: parsed.searchParams,
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      Promise.resolve(handler(recorded)).then(
        (reply) => sendReply(outgoing, reply),
        (error: unknown) => {
          outgoing.statusCode = 599;
          outgoing.end(String(error));
        },
      );
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function sendReply(outgoing: import('node:http').ServerResponse, reply: Reply): void {
  if (reply.hang) return;
  if (reply.destroy) {
    outgoing.socket?.destroy();
    return;
  }
  outgoing.statusCode = reply.status ?? 200;
  let body = '';
  if (reply.text !== undefined) {
    body = reply.text;
  } else if (reply.json !== undefined) {
    body = JSON.stringify(reply.json);
    outgoing.setHeader('content-type', 'application/json; charset=utf-8');
  }
  for (const [name, value] of Object.entries(reply.headers ?? {})) outgoing.setHeader(name, value);
  outgoing.end(body);
}

/** Returns a port on 127.0.0.1 that nothing listens on (a server was opened and closed there). */
export async function closedPort(): Promise<number> {
  const server = await startServer(() => ({}));
  await server.close();
  return server.port;
}

export const TEST_CLIENT_ID = 'test-client-id';
// Canary values: tests assert that they never appear in messages, records or logs.
export const TEST_SECRET = 'canary-secret-5d1e8f';
export const TEST_TOKEN_PREFIX = 'canary-token-';

/** State of a fake HaloPSA instance: issued tokens and per-route handlers. */
export interface FakeHalo {
  server: TestServer;
  tokensIssued: number;
  /** Requests to /api only. */
  apiRequests(): RecordedRequest[];
  tokenRequests(): RecordedRequest[];
}

export interface FakeHaloOptions {
  /** API handlers keyed by "METHOD /api/path" with the path in lower case, run after the token check. */
  routes: Record<string, Handler>;
  expiresIn?: number;
  /** Replaces the token endpoint's response. */
  tokenHandler?: Handler;
  /** When false, any bearer token is accepted; by default only the newest issued token is. */
  checkToken?: boolean;
}

/**
 * Starts a fake HaloPSA instance: POST /auth/token issues numbered tokens, and /api routes
 * require the newest one unless checkToken is false.
 */
export async function startFakeHalo(options: FakeHaloOptions): Promise<FakeHalo> {
  const state = { tokensIssued: 0 };
  const server = await startServer((request) => {
    if (request.method === 'POST' && request.path === '/auth/token') {
      if (options.tokenHandler) return options.tokenHandler(request);
      state.tokensIssued += 1;
      return {
        json: {
          access_token: `${TEST_TOKEN_PREFIX}${state.tokensIssued}`,
          token_type: 'Bearer',
          expires_in: options.expiresIn ?? 3600,
          scope: 'all',
        },
      };
    }
    const expected = `Bearer ${TEST_TOKEN_PREFIX}${state.tokensIssued}`;
    if (options.checkToken !== false && request.headers.authorization !== expected) {
      return { status: 401, json: { message: 'Unauthorized' } };
    }
    const route = options.routes[`${request.method} ${request.path.toLowerCase()}`];
    if (!route) return { status: 404, json: { message: `No route ${request.path}` } };
    return route(request);
  });
  return {
    server,
    get tokensIssued() {
      return state.tokensIssued;
    },
    apiRequests: () => server.requests.filter((request) => request.path.startsWith('/api/')),
    tokenRequests: () => server.requests.filter((request) => request.path === '/auth/token'),
  };
}

export interface TestClient {
  client: HaloPsaClient;
  calls: HaloCallRecord[];
  logLines: string[];
}

/** Creates a client for `baseUrl` with the test credentials, recording calls and log lines. */
export function createTestClient(
  baseUrl: string,
  options: Partial<HaloPsaClientOptions> = {},
): TestClient {
  const calls: HaloCallRecord[] = [];
  const logLines: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString('utf8'));
      callback();
    },
  });
  const client = new HaloPsaClient({
    baseUrl,
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_SECRET,
    logger: pino({ level: 'debug' }, logStream),
    onCall: (call) => calls.push(call),
    ...options,
  });
  return { client, calls, logLines };
}

/** Returns a wrapper page as HaloPSA sends it. */
export function listPage(
  key: string,
  rows: unknown[],
  recordCount = rows.length,
  pageNo = 1,
): unknown {
  return { page_no: pageNo, page_size: rows.length, record_count: recordCount, [key]: rows };
}
