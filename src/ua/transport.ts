// What the PushUserAgent needs from a connection to a push service. The WebSocket protocol of
// Firefox/autopush is one transport (websocket-client.ts), RFC 8030 over HTTP/2 the other
// (http2-client.ts): the same shape (a session, subscribe, receive, acknowledge), each with its
// own wire format.
import type { Trace } from '../sdk/trace.ts';
import type { StoredSubscription } from './state.ts';

/** The push service answered a request with an error status. */
export class PushServiceError extends Error {
  override name = 'PushServiceError';
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** Not connected, or a request got no answer in time. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
}

/** The headers a message was encrypted with (the HTTP Content-Encoding, Encryption, Crypto-Key). */
export interface EncodingHeaders {
  encoding: string;
  encryption?: string;
  cryptoKey?: string;
}

/** A message as the push service delivered it, still encrypted. */
export interface IncomingNotification {
  /** '' when the transport could not tell which subscription it is for (then it is acknowledged with 102). */
  channelID: string;
  /** The push URL the message was sent to, when the protocol says (RFC 8030: the promised response's Link). */
  endpoint?: string;
  /** Names the message; the user agent acknowledges it. WebSocket: the version; RFC 8030: the push message URL. */
  version: string;
  /** Empty when the message has no payload. */
  body: Buffer;
  /** null when the message has no payload. */
  headers: EncodingHeaders | null;
}

/** 100 delivered, 101 decryption failed, 102 not delivered (no such subscription). */
export type AckCode = 100 | 101 | 102;

export interface AckUpdate {
  channelID: string;
  version: string;
  code: AckCode;
}

export type ConnectionEvent =
  | { type: 'connecting'; url: string; attempt: number }
  | {
      type: 'disconnected';
      url: string;
      /**
       * The WebSocket close code (1006: the connection failed or dropped without a close frame).
       * Over HTTP/2 the same meanings: 1001 the service sent GOAWAY (NO_ERROR), 1011 GOAWAY with an
       * error code, 1006 the connection failed or dropped, 1000 closed by the client.
       */
      code: number;
      reason: string;
      /** Why the connection failed, when it did not close cleanly. */
      error?: string;
      /** When the next attempt starts; null when the client gives up (closed, or the first attempt failed). */
      retryInMs: number | null;
    };

/** Callbacks from a transport to its client; all are called synchronously, in wire order. */
export interface TransportHandlers {
  /** The uaid to resume the session with; null for a new user agent. */
  uaid(): string | null;
  /**
   * The push service accepted the session. Called before any notification of that session.
   * `uaid` is null for protocols without one (RFC 8030).
   */
  session(uaid: string | null): void;
  notification(n: IncomingNotification): void;
  status(e: ConnectionEvent): void;
  /** The subscriptions as the client knows them now (RFC 8030: what to monitor). */
  subscriptions(): readonly StoredSubscription[];
  /** The channelID of the subscription with this push endpoint, or null (RFC 8030). */
  channelFor(endpoint: string): string | null;
  /** The push service no longer has these subscriptions (RFC 8030: their set or subscription answered 404). */
  gone(channelIDs: string[], reason: string): void;
  /** RFC 8030 with `nowait`: every GET was answered and what they pushed was handed over. */
  drained(): void;
}

/** What subscribing gives: the push endpoint, plus over RFC 8030 the subscription and set URLs. */
export interface Registration {
  endpoint: string;
  subscriptionUrl?: string;
  setUrl?: string;
}

export interface Transport {
  readonly url: string;
  /** True between the push service's hello and the end of that connection. */
  readonly ready: boolean;
  /**
   * Starts connecting; resolves at the first session. With `retry` false a failed first attempt
   * rejects (and the transport stops); with true it keeps trying. Dropped sessions are always
   * re-established until close().
   */
  start(retry: boolean): Promise<void>;
  /** Creates a subscription (RFC 8030: in the set `setUrl` when given). */
  register(channelID: string, vapidKey: string | undefined, setUrl?: string): Promise<Registration>;
  unregister(subscription: StoredSubscription): Promise<void>;
  /** The client wants messages (a listener was added). WebSocket: they come anyway. */
  receive(): void;
  /** The client's subscriptions changed (added, removed, merged from the state file). */
  subscriptionsChanged(): void;
  /** False when there is no session to send them on. */
  ack(updates: AckUpdate[]): boolean;
  /** Reports that a delivered message could not be handled (301: the handler threw). */
  nack(version: string, code: number): boolean;
  /** Ends the session and stops reconnecting. */
  close(): Promise<void>;
}

/** What both transports are configured with. */
export interface TransportOptions {
  /** The push service's base URL, ws(s):// or http(s)://: each transport takes it in its own scheme. */
  url: string;
  /** Extra certificate authorities to trust (e.g. a self-signed test server's certificate). */
  ca?: Buffer | string;
  log?: UaLogger;
  reconnect?: Partial<ReconnectOptions>;
  /** Connecting (WebSocket: plus the hello answer), and each request's answer (Firefox: 10 s). */
  requestTimeoutMs?: number;
  /**
   * A connection silent for this long (no frame, no ping from the service) is probed with a
   * ping (WebSocket or HTTP/2); no answer within requestTimeoutMs and it is dropped and
   * re-established. webpushd pings idle WebSocket connections every 5 minutes, so a live one is
   * never silent that long. (10 min)
   */
  idleTimeoutMs?: number;
  /** Told what goes over the wire (frames; HTTP/2 header blocks, pushes, DATA lengths, GOAWAY, resets; TLS). */
  trace?: Trace;
}

/** Anything with pino's shape will do. */
export interface UaLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const silentLogger: UaLogger = { debug() {}, info() {}, warn() {} };

export interface ReconnectOptions {
  /** First delay after a failure (1 s); it doubles on each consecutive failure. */
  initialDelayMs: number;
  /** The delay stops doubling here (60 s). */
  maxDelayMs: number;
  /** After the push service asked to back off (close code 4774): at least this long (60 s). */
  backoffDelayMs: number;
  /** Each delay is randomly stretched or shrunk by up to this fraction (0.2) so clients spread out. */
  jitter: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  initialDelayMs: 1_000,
  maxDelayMs: 60_000,
  backoffDelayMs: 60_000,
  jitter: 0.2,
};

/** The delay before attempt number `failures + 1` (`failures` consecutive failed attempts so far). */
export function reconnectDelay(failures: number, backoffRequested: boolean, o: ReconnectOptions, random = Math.random): number {
  const exponential = Math.min(o.maxDelayMs, o.initialDelayMs * 2 ** Math.max(0, failures - 1));
  const base = backoffRequested ? Math.max(exponential, o.backoffDelayMs) : exponential;
  return Math.round(base * (1 + o.jitter * (2 * random() - 1)));
}
