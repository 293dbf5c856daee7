// Public types of the application-server SDK (names as in the `web-push` npm library).
import type { Agent, IncomingHttpHeaders } from 'node:http';

export type Urgency = 'very-low' | 'low' | 'normal' | 'high';
export type PushContentEncoding = 'aes128gcm' | 'aesgcm';

/** What the browser's `PushSubscription.toJSON()` gives; keys are base64url, padded or not. */
export interface PushSubscription {
  endpoint: string;
  keys?: { p256dh: string; auth: string };
  expirationTime?: number | null;
}

export interface VapidDetails {
  /** `mailto:` address or `https:` URL the push service can contact. */
  subject: string;
  /** base64url, 65-byte uncompressed P-256 point. */
  publicKey: string;
  /** base64url, 32-byte P-256 private scalar. */
  privateKey: string;
}

/** TLS settings for HTTPS push services, e.g. `{ ca }` to trust a test certificate. */
export interface PushTlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
}

/** Options of one request: `web-push`'s names and defaults, plus retries and transport settings. */
export interface RequestOptions {
  /** Seconds the push service keeps the message (default 2419200, four weeks, as web-push). */
  TTL?: number;
  /** Default `normal` (the header is always sent, as web-push does). */
  urgency?: Urgency;
  /** Replaces an undelivered message with the same topic: <= 32 base64url characters. */
  topic?: string;
  /** Default `aes128gcm` (RFC 8291); `aesgcm` is the legacy draft. */
  contentEncoding?: PushContentEncoding;
  /** Sign with VAPID (RFC 8292). `null` sends without. */
  vapidDetails?: VapidDetails | null;
  /** Extra request headers; they replace computed headers of the same name. */
  headers?: Record<string, string | number>;
  /** Milliseconds for each attempt (connecting and waiting for the answer). */
  timeout?: number;
  /** Retries after 429 or 5xx answers (default 2); other statuses fail at once. */
  retries?: number;
  /** Base of the exponential backoff in ms (default 500): ~base, ~2*base, ... with jitter. */
  retryDelay?: number;
  /** Longest `Retry-After` (ms) waited for (default 60000); a longer one fails at once. */
  maxRetryAfter?: number;
  /** Replaces the timer used between retries (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** TLS options for HTTPS endpoints (HTTP/2 and HTTP/1.1), e.g. `{ ca }`. */
  tls?: PushTlsOptions;
  /** A `node:http(s)` Agent: send over HTTP/1.1 through it (as web-push does). */
  agent?: Agent;
  /** Set false to never try HTTP/2 (default true: HTTPS endpoints offering h2 get it). */
  http2?: boolean;
  /**
   * Ask for a receipt (RFC 8030 5.1): `true` asks the push service for a new receipt
   * subscription (`Prefer: respond-async`, answered 202 with its URL as `receiptSubscription`);
   * a URL reuses that receipt subscription (a `Link` to it, with `Prefer: respond-async`).
   */
  receipt?: boolean | string;
}

/** What generateRequestDetails returns: everything needed to send the request yourself. */
export interface RequestDetails {
  method: 'POST';
  headers: Record<string, string>;
  /** The encrypted payload, or null without one. */
  body: Buffer | null;
  endpoint: string;
}

export interface SendResult {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The message's URL (`Location`), when the service gave one: DELETE it to cancel the message. */
  location?: string;
  /** The receipt subscription the receipt will go to, when one was asked and the service named it. */
  receiptSubscription?: string;
  /** The HTTP version the answer came over. */
  httpVersion: '1.1' | '2';
  /** How many requests were made (1 + retries used). */
  attempts: number;
}
