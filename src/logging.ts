import pino, { type DestinationStream, type Logger } from 'pino';

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

/**
 * Create the service logger, which writes JSON lines with secrets redacted to `destination`
 * (standard output by default).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'dmarcdesk' },
  };
  return destination ? pino(options, destination) : pino(options);
}
