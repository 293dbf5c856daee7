// The errors of the application-server SDK. Field names follow the `web-push` npm library's
// WebPushError so code written for it keeps working.
import type { IncomingHttpHeaders } from 'node:http';

/** The push service answered with a status outside 2xx (after any retries). */
export class WebPushError extends Error {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /** The response body as text (autopush-style services send JSON: see docs/ERRORS.md). */
  readonly body: string;
  /** The subscription's push URL the request went to. */
  readonly endpoint: string;
  /** How many requests were made (1 + retries used). */
  readonly attempts: number;
  /** The delay the service asked for (`Retry-After`, in ms) when it sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    statusCode: number,
    headers: IncomingHttpHeaders,
    body: string,
    endpoint: string,
    extra: { attempts?: number; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'WebPushError';
    this.statusCode = statusCode;
    this.headers = headers;
    this.body = body;
    this.endpoint = endpoint;
    this.attempts = extra.attempts ?? 1;
    this.retryAfterMs = extra.retryAfterMs;
  }
}

/**
 * 404 or 410: the subscription no longer exists (unsubscribed, expired, or a push URL the
 * service does not recognise). Delete it and stop sending to it.
 */
export class SubscriptionGoneError extends WebPushError {
  constructor(...args: ConstructorParameters<typeof WebPushError>) {
    super(...args);
    this.name = 'SubscriptionGoneError';
  }
}

/**
 * The subscription, payload or options are invalid: nothing was sent. The messages are the
 * ones `web-push` uses where it has one. `field` names what was wrong, e.g. `TTL`,
 * `subscription.keys.p256dh` or `vapidDetails.privateKey`.
 */
export class WebPushValidationError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.name = 'WebPushValidationError';
    this.field = field;
  }
}

/**
 * A request that failed before the push service could have processed it (a refused HTTP/2
 * stream, a GOAWAY, a stale keep-alive socket): safe to send again on a new connection.
 */
export function markUnprocessed<E extends Error>(err: E): E {
  (err as E & { unprocessed?: boolean }).unprocessed = true;
  return err;
}

export function isUnprocessed(err: unknown): boolean {
  return err instanceof Error && (err as Error & { unprocessed?: boolean }).unprocessed === true;
}
