// The one HTTP/2 session that carries everything RFC 8030 asks of the user agent: TLS with ALPN
// h2 for https://, h2c by prior knowledge for http://. It is re-established with backoff when it
// drops (session-lifecycle.ts) and probed with a PING when it has been silent for long.
//
// Timers: the connect timeout, one per outstanding request, one coarse liveness check per
// session. Nothing per message.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { TLSSocket } from 'node:tls';
import { tracePushPromise, traceSession, traceStream, traceTls, type Trace } from '../sdk/trace.ts';
import { SessionLifecycle, startLivenessCheck } from './session-lifecycle.ts';
import { ConnectionError, PushServiceError, type ConnectionEvent, type TransportOptions } from './transport.ts';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/** Response bodies of requests (error texts) are kept up to this size. */
const MAX_RESPONSE_BYTES = 16 * 1024;

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A header's value, several fields of that name joined. */
export const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

export interface Http2ConnectionEvents {
  status(e: ConnectionEvent): void;
  /** A session is up. */
  ready(): void;
  /** The session is going away or gone (GOAWAY, dropped, close()): what lives on it ends too. */
  ending(): void;
  /** A PUSH_PROMISE on the live session. */
  pushPromise(pushed: ClientHttp2Stream, request: IncomingHttpHeaders): void;
}

export class Http2Connection {
  readonly url: string;
  readonly origin: string;
  readonly #ca: Buffer | string | undefined;
  readonly #idleTimeoutMs: number;
  readonly #events: Http2ConnectionEvents;
  readonly #life: SessionLifecycle;
  readonly #trace: Trace | undefined;
  #session: ClientHttp2Session | null = null;
  /** The GOAWAY error code the current session got, if any. */
  #goaway: number | null = null;
  #connectTimer: NodeJS.Timeout | null = null;
  #livenessTimer: NodeJS.Timeout | null = null;
  #lastActivity = 0;
  #probing = false;
  /** Requests in flight, cancelled by close(). */
  readonly #requests = new Set<ClientHttp2Stream>();

  /** `o.url`: http(s)://; its origin is connected to. */
  constructor(o: TransportOptions, events: Http2ConnectionEvents) {
    this.url = o.url;
    this.origin = new URL(o.url).origin;
    this.#ca = o.ca;
    this.#idleTimeoutMs = o.idleTimeoutMs ?? 10 * 60_000;
    this.#events = events;
    this.#trace = o.trace;
    this.#life = new SessionLifecycle({ ...o, status: (e) => events.status(e), connect: () => this.#connect() });
  }

  get ready(): boolean {
    return this.#life.ready;
  }

  get closed(): boolean {
    return this.#life.phase === 'closed';
  }

  /** The session while it is up, else null. */
  get session(): ClientHttp2Session | null {
    return this.#life.ready ? this.#session : null;
  }

  start(retry: boolean): Promise<void> {
    return this.#life.start(retry);
  }

  /** Notes that the push service was heard from, which puts off the liveness probe. */
  touch(): void {
    this.#lastActivity = Date.now();
  }

  /** One request and its answer, over the session (waiting for one up to the request timeout). */
  async request(method: string, url: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Response> {
    const target = new URL(url);
    if (target.origin !== this.origin) {
      throw new PushServiceError(`the push service named a URL on another origin (${target.origin}), which this client does not follow`, 0);
    }
    const timeoutMs = this.#life.requestTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    await this.#life.whenReady(deadline);
    const session = this.session;
    if (!session) throw new ConnectionError(`connection to ${this.url} lost`);
    return new Promise<Response>((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = session.request(
          { ':method': method, ':path': `${target.pathname}${target.search}`, ...headers },
          { endStream: body === undefined },
        );
      } catch (err) {
        reject(new ConnectionError(`connection to ${this.url} lost (${(err as Error).message})`));
        return;
      }
      this.#requests.add(stream);
      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let size = 0;
      let failure: Error | null = null;
      const timer = setTimeout(
        () => {
          failure = new ConnectionError(`no answer to ${method} from ${this.url} within ${timeoutMs} ms`);
          stream.close(NGHTTP2_CANCEL);
        },
        Math.max(0, deadline - Date.now()),
      );
      stream.on('response', (h) => {
        status = Number(h[':status']);
        responseHeaders = h;
      });
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
      });
      stream.on('error', (err) => {
        failure ??= new ConnectionError(`${method} to ${this.url} failed: ${err.message}`);
      });
      stream.on('close', () => {
        clearTimeout(timer);
        this.#requests.delete(stream);
        if (!failure && status === 0) failure = new ConnectionError(`${method} to ${this.url} failed: no answer (stream code ${stream.rstCode})`);
        if (failure) return reject(failure);
        this.touch();
        resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks) });
      });
      if (body !== undefined) stream.end(body);
    });
  }

  async close(): Promise<void> {
    if (!this.#life.close()) return;
    for (const stream of this.#requests) if (!stream.closed) stream.close(NGHTTP2_CANCEL);
    this.#events.ending();
    this.#stopTimers();
    const session = this.#session;
    this.#session = null;
    if (!session || session.destroyed) return;
    await new Promise<void>((resolve) => {
      session.once('close', () => resolve());
      if (session.connecting) {
        session.destroy();
        return;
      }
      // acknowledgements in flight finish first; a service that does not let go is cut off
      session.close();
      setTimeout(() => session.destroy(), 1_000).unref();
    });
  }

  #connect(): void {
    if (!this.#life.attempt()) return;
    this.#goaway = null;
    const timeoutMs = this.#life.requestTimeoutMs;
    const session = http2.connect(this.origin, {
      ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
      settings: { enablePush: true },
    });
    this.#session = session;
    if (this.#trace) traceHttp2(this.#trace, session, this.origin);
    this.#connectTimer = setTimeout(() => {
      this.#life.lastError = `no HTTP/2 answer within ${timeoutMs} ms`;
      session.destroy();
    }, timeoutMs);
    session.once('connect', () => {
      if (session !== this.#session) return;
      const alpn = (session.socket as { alpnProtocol?: string | false } | null)?.alpnProtocol;
      if (this.url.startsWith('https:') && alpn !== 'h2') {
        this.#life.lastError = 'the push service does not offer HTTP/2 (ALPN h2)';
        session.destroy();
        return;
      }
      // A PING answered proves the other side speaks HTTP/2 (an HTTP/1.1 server would not).
      session.ping((err) => {
        if (session !== this.#session || this.#life.phase !== 'connecting') return;
        if (err) {
          this.#life.lastError ??= err.message;
          session.destroy();
          return;
        }
        this.#onReady(session);
      });
    });
    session.on('error', (err) => {
      if (session === this.#session) this.#life.lastError = err.message || String(err);
    });
    session.on('goaway', (errorCode) => {
      if (session !== this.#session) return;
      this.#goaway = errorCode;
      // The GETs would keep the session open forever: end them so that it can close. Requests in
      // flight (acknowledgements) finish on it; everything new goes to a new session. Waiting for
      // the old one's 'close' could take long: the peer may keep its end of the socket open.
      this.#events.ending();
      if (!session.closed) session.close();
      setTimeout(() => session.destroy(), 5_000).unref();
      this.#onClose(session);
    });
    session.on('stream', (pushed: ClientHttp2Stream, headers: IncomingHttpHeaders) => this.#onPushPromise(session, pushed, headers));
    session.on('ping', () => this.touch());
    session.on('close', () => this.#onClose(session));
  }

  #onReady(session: ClientHttp2Session): void {
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    this.#life.established();
    this.touch();
    this.#startLiveness(session);
    this.#events.ready();
  }

  #onClose(session: ClientHttp2Session): void {
    if (session !== this.#session) return;
    this.#session = null;
    this.#stopTimers();
    this.#events.ending();
    const goaway = this.#goaway;
    const code = goaway === null ? 1006 : goaway === NGHTTP2_NO_ERROR ? 1001 : 1011;
    const reason = goaway === null ? '' : `GOAWAY (HTTP/2 error code ${goaway})`;
    const error = goaway === null ? (this.#life.lastError ?? 'connection lost') : this.#life.lastError;
    this.#life.dropped({ code, reason, error, backoff: false, why: error ?? reason });
  }

  #onPushPromise(session: ClientHttp2Session, pushed: ClientHttp2Stream, request: IncomingHttpHeaders): void {
    if (session !== this.#session || !this.#life.ready) {
      pushed.close(NGHTTP2_CANCEL);
      return;
    }
    this.touch();
    this.#events.pushPromise(pushed, request);
  }

  #startLiveness(session: ClientHttp2Session): void {
    this.#livenessTimer = startLivenessCheck(this.#idleTimeoutMs, () => {
      if (this.#probing || Date.now() - this.#lastActivity < this.#idleTimeoutMs) return;
      this.#probing = true;
      const timeout = setTimeout(() => {
        this.#life.lastError = 'the push service stopped answering';
        session.destroy();
      }, this.#life.requestTimeoutMs);
      const sent = session.ping((err) => {
        clearTimeout(timeout);
        this.#probing = false;
        if (!err) this.touch();
      });
      if (!sent) {
        clearTimeout(timeout);
        this.#probing = false;
      }
    });
  }

  #stopTimers(): void {
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    if (this.#livenessTimer) clearInterval(this.#livenessTimer);
    this.#connectTimer = null;
    this.#livenessTimer = null;
    this.#probing = false;
  }
}

/** Every request of the session (wrapped at its one door, session.request), each push promise, GOAWAY, and the TLS handshake. */
function traceHttp2(trace: Trace, session: ClientHttp2Session, origin: string): void {
  session.once('connect', (_, socket) => {
    if (socket instanceof TLSSocket) traceTls(trace, socket, origin);
    else trace({ event: 'connect', origin, protocol: 'h2c' });
  });
  traceSession(trace, session);
  const request = session.request.bind(session);
  session.request = ((headers: http2.OutgoingHttpHeaders, options?: http2.ClientSessionRequestOptions) => {
    const stream = request(headers, options);
    traceStream(trace, stream, { ':authority': new URL(origin).host, ...headers });
    return stream;
  }) as typeof session.request;
  session.on('stream', (pushed: ClientHttp2Stream, headers: IncomingHttpHeaders) => {
    // the stream it was promised on is not told by Node; the :path names the message
    tracePushPromise(trace, undefined, pushed, headers);
  });
}
