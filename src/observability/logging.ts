// Log hygiene: a push URL, message URL or monitor URL is a capability (whoever holds it can send
// or read), and payloads are the users'. Log sites name routes, codes and counts only; as a net
// under them, these fields are censored whatever logger the server was given.
import type { Logger } from 'pino';

export const REDACTED = '[redacted]';

/** Field paths censored in every log line of the server (fast-redact syntax). */
export const REDACT_PATHS = [
  'endpoint',
  'pushUrl',
  'location',
  'token',
  'uaid',
  'body',
  'payload',
  'subscription',
  'authorization',
  'req.url',
  'req.headers.authorization',
  'req.headers["crypto-key"]',
  'headers.authorization',
  'headers["crypto-key"]',
  '*.endpoint',
  '*.pushUrl',
  '*.location',
  '*.token',
  '*.body',
  '*.payload',
];

export function redacting(log: Logger): Logger {
  return log.child({}, { redact: { paths: REDACT_PATHS, censor: REDACTED } });
}
