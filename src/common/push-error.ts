// Errors of the application-server API, in autopush's shape so existing libraries understand
// them: {code, errno, error, message, more_info}. errno values follow autopush where it has one.
import { STATUS_CODES } from 'node:http';

export const Errno = {
  invalidToken: 102,
  noUser: 103,
  payloadTooLarge: 104,
  noSubscription: 106,
  vapid: 109,
  invalidEncryption: 110,
  missingTtl: 111,
  invalidTopic: 113,
  invalidTtl: 114,
  invalidUrgency: 115,
  tooManyStored: 116,
  // RFC 8030 user agents and receipts (webpushd's own numbers; autopush has no such resources)
  invalidSet: 120,
  invalidReceipts: 121,
  invalidOptions: 122,
  http2Required: 123,
  rateLimited: 124,
  demoRequest: 125,
  /** Total storage quota used up, or the disk nearly full (507). */
  storeFull: 126,
  /** The user agent (set) holds --max-channels subscriptions (POST /subscribe, 429). */
  tooManySubscriptions: 127,
  /** Aggregates (POST /aggregate, /a/…): a body that is neither empty nor a batch (415). */
  aggregateBody: 140,
  /** The VAPID key holds --aggregate-max-per-key aggregates (429). */
  tooManyAggregates: 141,
  /** The change would pass --aggregate-max-members (409). */
  tooManyMembers: 142,
  /** A member document, merge patch or batch that is not what the aggregate API takes (400, 415). */
  invalidAggregateDocument: 143,
  /** The aggregate was deleted or expired (404). */
  noAggregate: 144,
  /** autopush's "503: use exponential back-off for retries". */
  storeUnavailable: 201,
  notFound: 404,
  methodNotAllowed: 405,
  internal: 999,
} as const;

export const MORE_INFO = 'https://github.com/webpushd/webpushd/blob/main/docs/ERRORS.md';

export class PushError extends Error {
  readonly status: number;
  readonly errno: number;
  readonly headers: Record<string, string>;

  constructor(status: number, errno: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.errno = errno;
    this.headers = headers;
  }

  body(): string {
    return JSON.stringify({
      code: this.status,
      errno: this.errno,
      error: STATUS_CODES[this.status] ?? 'Error',
      message: this.message,
      more_info: MORE_INFO,
    });
  }
}

/** 405 naming the methods the resource takes. */
export function methodNotAllowed(allow: string): PushError {
  return new PushError(405, Errno.methodNotAllowed, `Use ${allow} on this resource`, { allow });
}

/** Seconds a client is told to wait (Retry-After) when the store cannot be reached or written. */
export const STORE_RETRY_AFTER_S = 30;

/** The answer to StoreUnavailable: 503 with autopush's back-off errno and Retry-After. */
export function storeUnavailableError(): PushError {
  return new PushError(503, Errno.storeUnavailable, 'The service cannot store messages now; retry later', {
    'retry-after': String(STORE_RETRY_AFTER_S),
  });
}
