import pino, { type Logger } from 'pino';

/** Paths whose values never reach a log line, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  'clientSecret',
  'client_secret',
  '*.clientSecret',
  '*.client_secret',
  'access_token',
  '*.access_token',
  'token',
  '*.token',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

/** Create the service logger, which writes JSON lines to stdout with secrets redacted. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'dmarcdesk' },
  });
}
