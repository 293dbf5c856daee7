// The WebSocket push protocol (Firefox/autopush), client side: connect, hello (resuming a uaid),
// register, unregister, ack; reconnect with backoff when the connection drops.
//
// Timers: one for the reconnect delay, one per outstanding request (register/unregister), one
// coarse liveness check per connection. Nothing per message. The `ws` library answers the
// push service's keepalive Pings by itself.
import { TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { Close } from '../connect/protocol.ts';
import { traceTls, type Trace } from '../sdk/trace.ts';
import { FrameError, ackFrame, helloFrame, nackFrame, parseServerFrame, registerFrame, unregisterFrame } from './frames.ts';
import { toWebSocketUrl } from './server-url.ts';
import { SessionLifecycle, startLivenessCheck } from './session-lifecycle.ts';
import {
  ConnectionError,
  PushServiceError,
  silentLogger,
  type AckUpdate,
  type Registration,
  type Transport,
  type TransportHandlers,
  type TransportOptions,
  type UaLogger,
} from './transport.ts';

export const SUBPROTOCOL = 'push-notification';

export { ConnectionError, PushServiceError, toWebSocketUrl };

interface Pending {
  resolve(frame: { status: number; pushEndpoint?: string }): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class WebSocketTransport implements Transport {
  readonly url: string;
  readonly #handlers: TransportHandlers;
  readonly #ca: Buffer | string | undefined;
  readonly #log: UaLogger;
  readonly #idleTimeoutMs: number;
  readonly #life: SessionLifecycle;
  readonly #trace: Trace | undefined;

  #ws: WebSocket | null = null;
  #helloTimer: NodeJS.Timeout | null = null;
  #livenessTimer: NodeJS.Timeout | null = null;
  #lastActivity = 0;
  #probeSentAt = 0;
  /** Requests awaiting their answer, by `messageType|channelID`. */
  readonly #pending = new Map<string, Pending>();

  constructor(handlers: TransportHandlers, o: TransportOptions) {
    this.url = toWebSocketUrl(o.url);
    this.#handlers = handlers;
    this.#ca = o.ca;
    this.#log = o.log ?? silentLogger;
    this.#idleTimeoutMs = o.idleTimeoutMs ?? 10 * 60_000;
    this.#trace = o.trace;
    this.#life = new SessionLifecycle({ ...o, url: this.url, status: (e) => handlers.status(e), connect: () => this.#connect() });
  }

  get ready(): boolean {
    return this.#life.ready;
  }

  start(retry: boolean): Promise<void> {
    return this.#life.start(retry);
  }

  async register(channelID: string, vapidKey: string | undefined): Promise<Registration> {
    const reply = await this.#request('register', channelID, registerFrame(channelID, vapidKey));
    if (reply.status === 200 && reply.pushEndpoint) return { endpoint: reply.pushEndpoint };
    if (reply.status === 400 && vapidKey !== undefined) {
      throw new PushServiceError('the push service refused the VAPID key (status 400)', reply.status);
    }
    throw new PushServiceError(`the push service refused the subscription (status ${reply.status})`, reply.status);
  }

  async unregister({ channelID }: { channelID: string }): Promise<void> {
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

  /** Notifications come on every session anyway. */
  receive(): void {}

  subscriptionsChanged(): void {}

  async close(): Promise<void> {
    if (!this.#life.close()) return;
    this.#failRequests(new ConnectionError('the client was closed'));
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
    if (!this.#life.attempt()) return;
    const timeoutMs = this.#life.requestTimeoutMs;
    const ws = new WebSocket(this.url, [SUBPROTOCOL], {
      handshakeTimeout: timeoutMs,
      ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
    });
    this.#ws = ws;
    if (this.#trace) traceWebSocket(this.#trace, ws, this.url);
    ws.on('open', () => {
      if (ws !== this.#ws) return;
      this.#life.handshake();
      this.#touch();
      ws.send(helloFrame(this.#handlers.uaid()));
      this.#helloTimer = setTimeout(() => {
        this.#life.lastError = `no hello answer within ${timeoutMs} ms`;
        ws.terminate();
      }, timeoutMs);
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
      if (ws === this.#ws) this.#life.lastError = err.message || String(err);
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
        if (this.#life.phase !== 'handshake') return;
        if (frame.status !== 200 || !frame.useWebpush || frame.uaid.length > 128) {
          this.#life.lastError = `the push service refused hello (status ${frame.status}${frame.useWebpush ? '' : ', no use_webpush'})`;
          ws.close(Close.normal);
          return;
        }
        if (this.#helloTimer) clearTimeout(this.#helloTimer);
        this.#helloTimer = null;
        this.#life.established();
        this.#startLiveness(ws);
        this.#handlers.session(frame.uaid);
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
        if (this.#life.ready) this.#handlers.notification(frame.notification);
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
    const error = code === 1006 ? (this.#life.lastError ?? 'connection lost') : this.#life.lastError;
    this.#failRequests(new ConnectionError(`connection to ${this.url} closed (${error ?? `code ${code}${reason ? `: ${reason}` : ''}`})`));
    this.#life.dropped({ code, reason, error, backoff: code === Close.backoff, why: error ?? `closed with code ${code}` });
  }

  // --- requests ---

  async #request(type: 'register' | 'unregister', channelID: string, frame: string): Promise<{ status: number; pushEndpoint?: string }> {
    const timeoutMs = this.#life.requestTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    await this.#life.whenReady(deadline);
    const key = `${type}|${channelID.toLowerCase()}`;
    if (this.#pending.has(key)) throw new Error(`a ${type} of ${channelID} is already under way`);
    const ws = this.#ws;
    if (!this.#life.ready || !ws) throw new ConnectionError(`connection to ${this.url} lost`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#pending.delete(key);
          reject(new ConnectionError(`no ${type} answer from ${this.url} within ${timeoutMs} ms`));
        },
        Math.max(0, deadline - Date.now()),
      );
      this.#pending.set(key, { resolve, reject, timer });
      ws.send(frame);
    });
  }

  #failRequests(err: Error): void {
    for (const [key, p] of this.#pending) {
      this.#pending.delete(key);
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  #send(text: string): boolean {
    if (!this.#life.ready || !this.#ws) return false;
    this.#ws.send(text);
    return true;
  }

  // --- liveness ---

  #touch(): void {
    this.#lastActivity = Date.now();
    this.#probeSentAt = 0;
  }

  #startLiveness(ws: WebSocket): void {
    this.#livenessTimer = startLivenessCheck(this.#idleTimeoutMs, () => {
      const now = Date.now();
      if (this.#probeSentAt === 0) {
        if (now - this.#lastActivity < this.#idleTimeoutMs) return;
        this.#probeSentAt = now;
        ws.ping();
      } else if (now - this.#probeSentAt >= this.#life.requestTimeoutMs) {
        this.#life.lastError = 'the push service stopped answering';
        ws.terminate();
      }
    });
  }

  #stopTimers(): void {
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    if (this.#livenessTimer) clearInterval(this.#livenessTimer);
    this.#helloTimer = null;
    this.#livenessTimer = null;
  }
}

/** Every frame sent and received (text frames parsed as the JSON they are), pings, pongs, the close, and the TLS peer for wss. */
function traceWebSocket(trace: Trace, ws: WebSocket, url: string): void {
  const frame = (text: string): unknown => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  };
  ws.once('upgrade', (res) => {
    if (res.socket instanceof TLSSocket) traceTls(trace, res.socket, new URL(url).origin);
    trace({ event: 'response', httpVersion: res.httpVersion, status: res.statusCode, headers: res.headers });
  });
  const send = ws.send.bind(ws) as (data: string) => void;
  (ws as { send: (data: string) => void }).send = (data: string) => {
    trace({ event: 'frame', sent: frame(data) });
    send(data);
  };
  ws.on('message', (data, isBinary) => trace({ event: 'frame', received: isBinary ? { binary: (data as Buffer).length } : frame((data as Buffer).toString('utf8')) }));
  ws.on('ping', () => trace({ event: 'ping' }));
  ws.on('pong', () => trace({ event: 'pong' }));
  ws.on('close', (code, reason) => trace({ event: 'close', code, reason: reason.toString() }));
}
