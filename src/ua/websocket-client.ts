// The WebSocket push protocol (Firefox/autopush), client side: connect, hello (resuming a uaid),
// register, unregister, ack; reconnect with backoff when the connection drops.
//
// Timers: one for the reconnect delay, one per outstanding request (register/unregister), one
// coarse liveness check per connection. Nothing per message. The `ws` library answers the
// push service's keepalive Pings by itself.
import WebSocket from 'ws';
import { Close } from '../connect/protocol.ts';
import { FrameError, ackFrame, helloFrame, nackFrame, parseServerFrame, registerFrame, unregisterFrame } from './frames.ts';
import {
  DEFAULT_RECONNECT,
  reconnectDelay,
  silentLogger,
  type AckUpdate,
  type ReconnectOptions,
  type Transport,
  type TransportHandlers,
  type UaLogger,
} from './transport.ts';

export const SUBPROTOCOL = 'push-notification';

export interface WebSocketTransportOptions {
  /** ws:// or wss:// URL (see toWebSocketUrl). */
  url: string;
  /** Extra certificate authorities to trust (e.g. a self-signed test server's certificate). */
  ca?: Buffer | string;
  log?: UaLogger;
  reconnect?: Partial<ReconnectOptions>;
  /** Connecting plus the hello answer, and each register/unregister answer (Firefox: 10 s). */
  requestTimeoutMs?: number;
  /**
   * A connection silent for this long (no frame, no Ping from the service) is probed with a
   * WebSocket Ping; no answer within requestTimeoutMs and it is dropped and re-established.
   * webpushd pings idle connections every 5 minutes, so a live connection is never silent that long.
   */
  idleTimeoutMs?: number;
}

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

/** The WebSocket URL of a push service given as ws(s):// or http(s):// (any path is kept). */
export function toWebSocketUrl(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new TypeError(`not a URL: ${server}`);
  }
  const scheme = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }[url.protocol];
  if (!scheme) throw new TypeError(`expected a ws://, wss://, http:// or https:// URL, got ${url.protocol}//`);
  url.protocol = scheme;
  url.hash = '';
  return url.toString();
}

interface Pending {
  resolve(frame: { status: number; pushEndpoint?: string }): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | null;
}

type Phase = 'idle' | 'connecting' | 'hello' | 'ready' | 'closed';

const LIVENESS_CHECK_MS = 30_000;

export class WebSocketTransport implements Transport {
  readonly url: string;
  readonly #handlers: TransportHandlers;
  readonly #ca: Buffer | string | undefined;
  readonly #log: UaLogger;
  readonly #reconnect: ReconnectOptions;
  readonly #requestTimeoutMs: number;
  readonly #idleTimeoutMs: number;

  #phase: Phase = 'idle';
  #ws: WebSocket | null = null;
  /** Consecutive attempts that ended without a session. */
  #failures = 0;
  #lastError: string | undefined;
  #everReady = false;
  #retryForever = true;
  #retryTimer: NodeJS.Timeout | null = null;
  #helloTimer: NodeJS.Timeout | null = null;
  #livenessTimer: NodeJS.Timeout | null = null;
  #lastActivity = 0;
  #probeSentAt = 0;
  /** Requests awaiting their answer, by `messageType|channelID`. */
  readonly #pending = new Map<string, Pending>();
  /** Callers waiting for a session (start(), requests made while reconnecting). */
  readonly #waiters = new Set<Waiter>();

  constructor(handlers: TransportHandlers, o: WebSocketTransportOptions) {
    this.url = toWebSocketUrl(o.url);
    this.#handlers = handlers;
    this.#ca = o.ca;
    this.#log = o.log ?? silentLogger;
    this.#reconnect = { ...DEFAULT_RECONNECT, ...o.reconnect };
    this.#requestTimeoutMs = o.requestTimeoutMs ?? 10_000;
    this.#idleTimeoutMs = o.idleTimeoutMs ?? 10 * 60_000;
  }

  get ready(): boolean {
    return this.#phase === 'ready';
  }

  start(retry: boolean): Promise<void> {
    if (this.#phase !== 'idle') return Promise.reject(new Error('the transport was already started'));
    this.#retryForever = retry;
    const session = this.#whenReady(null);
    this.#connect();
    return session;
  }

  async register(channelID: string, vapidKey: string | undefined): Promise<string> {
    const reply = await this.#request('register', channelID, registerFrame(channelID, vapidKey));
    if (reply.status === 200 && reply.pushEndpoint) return reply.pushEndpoint;
    if (reply.status === 400 && vapidKey !== undefined) {
      throw new PushServiceError('the push service refused the VAPID key (status 400)', reply.status);
    }
    throw new PushServiceError(`the push service refused the subscription (status ${reply.status})`, reply.status);
  }

  async unregister(channelID: string): Promise<void> {
    const reply = await this.#request('unregister', channelID, unregisterFrame(channelID));
    if (reply.status !== 200) {
      throw new PushServiceError(`the push service refused to unsubscribe (status ${reply.status})`, reply.status);
    }
  }

  ack(updates: AckUpdate[]): boolean {
    if (updates.length === 0) return true;
    return this.#send(ackFrame(updates));
  }

  nack(version: string, code: number): boolean {
    return this.#send(nackFrame(version, code));
  }

  async close(): Promise<void> {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#failAll(new ConnectionError('the client was closed'));
    const ws = this.#ws;
    this.#ws = null;
    this.#stopTimers();
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.CONNECTING) {
        ws.terminate();
        return;
      }
      ws.close(Close.normal);
      // A service that never answers the close frame: give up on it.
      setTimeout(() => ws.terminate(), 1_000).unref();
    });
  }

  // --- connection lifecycle ---

  #connect(): void {
    this.#retryTimer = null;
    if (this.#phase === 'closed') return;
    this.#phase = 'connecting';
    this.#handlers.status({ type: 'connecting', url: this.url, attempt: this.#failures + 1 });
    const ws = new WebSocket(this.url, [SUBPROTOCOL], {
      handshakeTimeout: this.#requestTimeoutMs,
      ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
    });
    this.#ws = ws;
    this.#lastError = undefined;
    ws.on('open', () => {
      if (ws !== this.#ws) return;
      this.#phase = 'hello';
      this.#touch();
      ws.send(helloFrame(this.#handlers.uaid()));
      this.#helloTimer = setTimeout(() => {
        this.#lastError = `no hello answer within ${this.#requestTimeoutMs} ms`;
        ws.terminate();
      }, this.#requestTimeoutMs);
    });
    ws.on('message', (data, isBinary) => {
      if (ws !== this.#ws) return;
      this.#touch();
      if (isBinary) return this.#log.warn({}, 'push service sent a binary frame: ignored');
      this.#onFrame(ws, (data as Buffer).toString('utf8'));
    });
    ws.on('ping', () => this.#touch());
    ws.on('pong', () => this.#touch());
    ws.on('error', (err) => {
      if (ws === this.#ws) this.#lastError = err.message || String(err);
    });
    ws.on('close', (code, reason) => this.#onClose(ws, code, reason.toString()));
  }

  #onFrame(ws: WebSocket, text: string): void {
    let frame;
    try {
      frame = parseServerFrame(text);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.#log.warn({ err: err.message, frame: text.slice(0, 200) }, 'malformed frame from the push service: ignored');
      return;
    }
    switch (frame.messageType) {
      case 'hello':
        if (this.#phase !== 'hello') return;
        if (frame.status !== 200 || !frame.useWebpush || frame.uaid.length > 128) {
          this.#lastError = `the push service refused hello (status ${frame.status}${frame.useWebpush ? '' : ', no use_webpush'})`;
          ws.close(Close.normal);
          return;
        }
        if (this.#helloTimer) clearTimeout(this.#helloTimer);
        this.#helloTimer = null;
        this.#phase = 'ready';
        this.#failures = 0;
        this.#everReady = true;
        this.#startLiveness(ws);
        this.#handlers.session(frame.uaid);
        for (const w of this.#waiters) this.#settle(w, null);
        return;
      case 'register':
      case 'unregister': {
        const key = `${frame.messageType}|${frame.channelID}`;
        const p = this.#pending.get(key);
        if (!p) return this.#log.debug({ key }, 'unexpected answer: ignored');
        this.#pending.delete(key);
        clearTimeout(p.timer);
        p.resolve(frame.messageType === 'register' ? { status: frame.status, pushEndpoint: frame.pushEndpoint } : frame);
        return;
      }
      case 'notification':
        if (this.#phase === 'ready') this.#handlers.notification(frame.notification);
        return;
      case 'ping':
      case 'broadcast':
        return;
      case 'other':
        this.#log.debug({ messageType: frame.type }, 'unknown frame from the push service: ignored');
        return;
    }
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#stopTimers();
    const error = code === 1006 ? (this.#lastError ?? 'connection lost') : this.#lastError;
    this.#failAll(new ConnectionError(`connection to ${this.url} closed (${error ?? `code ${code}${reason ? `: ${reason}` : ''}`})`), true);
    if (this.#phase === 'closed') return;
    this.#failures++;
    const giveUp = !this.#everReady && !this.#retryForever;
    const retryInMs = giveUp ? null : reconnectDelay(this.#failures, code === Close.backoff, this.#reconnect);
    this.#phase = giveUp ? 'closed' : 'idle';
    this.#handlers.status({ type: 'disconnected', url: this.url, code, reason, ...(error ? { error } : {}), retryInMs });
    if (giveUp) {
      this.#failAll(new ConnectionError(`could not connect to ${this.url}: ${error ?? `closed with code ${code}`}`));
      return;
    }
    this.#retryTimer = setTimeout(() => this.#connect(), retryInMs!);
  }

  // --- requests ---

  async #request(type: 'register' | 'unregister', channelID: string, frame: string): Promise<{ status: number; pushEndpoint?: string }> {
    const deadline = Date.now() + this.#requestTimeoutMs;
    await this.#whenReady(deadline);
    const key = `${type}|${channelID.toLowerCase()}`;
    if (this.#pending.has(key)) throw new Error(`a ${type} of ${channelID} is already under way`);
    const ws = this.#ws;
    if (this.#phase !== 'ready' || !ws) throw new ConnectionError(`connection to ${this.url} lost`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#pending.delete(key);
          reject(new ConnectionError(`no ${type} answer from ${this.url} within ${this.#requestTimeoutMs} ms`));
        },
        Math.max(0, deadline - Date.now()),
      );
      this.#pending.set(key, { resolve, reject, timer });
      ws.send(frame);
    });
  }

  /** Resolves when there is a session (at once if there is one); `deadline` null waits as long as it takes. */
  #whenReady(deadline: number | null): Promise<void> {
    if (this.#phase === 'ready') return Promise.resolve();
    if (this.#phase === 'closed') return Promise.reject(new ConnectionError('the client is closed'));
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: null };
      if (deadline !== null) {
        w.timer = setTimeout(
          () => {
            const last = this.#lastError ? ` (last error: ${this.#lastError})` : '';
            this.#settle(w, new ConnectionError(`not connected to ${this.url} within ${this.#requestTimeoutMs} ms${last}`));
          },
          Math.max(0, deadline - Date.now()),
        );
      }
      this.#waiters.add(w);
    });
  }

  #settle(w: Waiter, err: Error | null): void {
    if (!this.#waiters.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve();
  }

  /** Fails the requests in flight; and, unless `requestsOnly`, everyone waiting for a session. */
  #failAll(err: Error, requestsOnly = false): void {
    for (const [key, p] of this.#pending) {
      this.#pending.delete(key);
      clearTimeout(p.timer);
      p.reject(err);
    }
    if (!requestsOnly) for (const w of this.#waiters) this.#settle(w, err);
  }

  #send(text: string): boolean {
    if (this.#phase !== 'ready' || !this.#ws) return false;
    this.#ws.send(text);
    return true;
  }

  // --- liveness ---

  #touch(): void {
    this.#lastActivity = Date.now();
    this.#probeSentAt = 0;
  }

  #startLiveness(ws: WebSocket): void {
    const check = Math.min(LIVENESS_CHECK_MS, Math.max(10, this.#idleTimeoutMs / 2));
    this.#livenessTimer = setInterval(() => {
      const now = Date.now();
      if (this.#probeSentAt === 0) {
        if (now - this.#lastActivity < this.#idleTimeoutMs) return;
        this.#probeSentAt = now;
        ws.ping();
      } else if (now - this.#probeSentAt >= this.#requestTimeoutMs) {
        this.#lastError = 'the push service stopped answering';
        ws.terminate();
      }
    }, check);
    this.#livenessTimer.unref();
  }

  #stopTimers(): void {
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    if (this.#livenessTimer) clearInterval(this.#livenessTimer);
    this.#helloTimer = null;
    this.#livenessTimer = null;
  }
}
