// HTTP/2 to push services over TLS: one session per origin (and TLS settings), reused by every
// send, closed after being idle, replaced after GOAWAY or an error. The TLS handshake offers
// h2 and http/1.1 (ALPN); origins that pick http/1.1 are remembered and left to Http1Pool.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { isIP } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { markUnprocessed } from './errors.ts';
import { AnswerBody, type TransportRequest, type TransportResponse } from './http1.ts';
import { traceSession, traceStream, traceTls } from './trace.ts';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Connection-specific headers HTTP/2 forbids (RFC 9113 8.2.2); Host becomes :authority. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

interface Entry {
  session: ClientHttp2Session;
  active: number;
  idleTimer: NodeJS.Timeout | undefined;
}

export interface Http2PoolOptions {
  /** Close a session after this many ms without streams. */
  idleTimeoutMs: number;
  /** For the TLS handshake when the request has no timeout of its own. */
  connectTimeoutMs: number;
}

export class Http2Pool {
  readonly #o: Http2PoolOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #connecting = new Map<string, Promise<Entry | null>>();
  /** Origins whose ALPN answer was http/1.1 (or none). */
  readonly #http1 = new Set<string>();
  #closed = false;

  constructor(options: Http2PoolOptions) {
    this.#o = options;
  }

  /** True when `key`'s origin is known to answer only HTTP/1.1. */
  knowsHttp1(key: string): boolean {
    return this.#http1.has(key);
  }

  /** The number of open sessions (for tests and diagnostics). */
  get sessionCount(): number {
    return this.#entries.size;
  }

  /** Sends over HTTP/2; resolves null when the origin turns out to speak only HTTP/1.1. */
  async request(key: string, req: TransportRequest, timeoutMs: number | undefined): Promise<TransportResponse | null> {
    const entry = await abortable(this.#entry(key, req, timeoutMs), req.signal);
    if (entry === null) return null;
    return this.#send(entry, req);
  }

  #entry(key: string, req: TransportRequest, timeoutMs: number | undefined): Promise<Entry | null> {
    const existing = this.#entries.get(key);
    if (existing && !existing.session.closed && !existing.session.destroyed) return Promise.resolve(existing);
    let pending = this.#connecting.get(key);
    if (!pending) {
      pending = this.#connect(key, req, timeoutMs ?? this.#o.connectTimeoutMs).finally(() => this.#connecting.delete(key));
      this.#connecting.set(key, pending);
    }
    return pending;
  }

  async #connect(key: string, req: TransportRequest, timeoutMs: number): Promise<Entry | null> {
    const socket = await tlsConnect(req.url, req.tls, timeoutMs);
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      this.#http1.add(key);
      return null;
    }
    if (this.#closed) {
      socket.destroy();
      throw new Error('the push client is closed');
    }
    traceTls(req.trace, socket, req.url.origin);
    const session = http2.connect(req.url.origin, { createConnection: () => socket });
    if (req.trace) traceSession(req.trace, session);
    const entry: Entry = { session, active: 0, idleTimer: undefined };
    const forget = () => {
      clearTimeout(entry.idleTimer);
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    };
    // After GOAWAY the session finishes its streams; new requests get a new session.
    session.on('goaway', forget);
    session.on('close', forget);
    session.on('error', forget);
    this.#entries.set(key, entry);
    this.#idle(entry);
    return entry;
  }

  #idle(entry: Entry): void {
    entry.session.unref();
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => entry.session.close(), this.#o.idleTimeoutMs);
    entry.idleTimer.unref();
  }

  #send(entry: Entry, req: TransportRequest): Promise<TransportResponse> {
    const headers: Record<string, string> = { ':method': req.method ?? 'POST', ':path': `${req.url.pathname}${req.url.search}` };
    for (const [name, value] of Object.entries(req.headers)) {
      const lower = name.toLowerCase();
      if (!HOP_BY_HOP.has(lower)) headers[lower] = value;
    }
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = entry.session.request(headers, { endStream: req.body === null });
      } catch (err) {
        // The session got GOAWAY or was destroyed since we took it: nothing was sent.
        reject(markUnprocessed(err as Error));
        return;
      }
      if (req.trace) traceStream(req.trace, stream, { ':authority': req.url.host, ...headers }, req.body?.length);
      entry.active += 1;
      clearTimeout(entry.idleTimer);
      entry.session.ref();

      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      const body = new AnswerBody(req.maxResponseBytes);
      let failure: Error | undefined;
      const abort = () => {
        failure = req.signal!.reason as Error;
        stream.close(NGHTTP2_CANCEL);
      };
      req.signal?.addEventListener('abort', abort, { once: true });
      stream.on('response', (h) => {
        status = Number(h[':status']);
        responseHeaders = {};
        for (const [name, value] of Object.entries(h)) if (!name.startsWith(':')) responseHeaders[name] = value;
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body.add(chunk);
        // past the bound nothing more is read: a service that never ends its answer cannot hold us
        if (body.truncated) stream.close(NGHTTP2_CANCEL);
      });
      stream.on('error', (err) => (failure ??= err));
      stream.on('close', () => {
        req.signal?.removeEventListener('abort', abort);
        entry.active -= 1;
        if (entry.active === 0 && !entry.session.closed) this.#idle(entry);
        if (failure === undefined && status > 0 && (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR || body.truncated)) {
          resolve({ statusCode: status, headers: responseHeaders, body: body.text, truncated: body.truncated, httpVersion: '2' });
          return;
        }
        const err = failure ?? new Error(`HTTP/2 stream closed without an answer (code ${stream.rstCode})`);
        if (status === 0 && stream.rstCode === NGHTTP2_REFUSED_STREAM) markUnprocessed(err);
        reject(err);
      });
      if (req.signal?.aborted) abort();
      if (req.body !== null) stream.end(req.body);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.#connecting.values());
    const closing = [...this.#entries.values()].map(
      (entry) =>
        new Promise<void>((resolve) => {
          clearTimeout(entry.idleTimer);
          if (entry.session.closed || entry.session.destroyed) return resolve();
          // An idle session is unref'd: ref it, or the process may exit before the close completes.
          entry.session.ref();
          entry.session.close(resolve);
        }),
    );
    this.#entries.clear();
    this.#http1.clear();
    await Promise.all(closing);
    this.#closed = false;
  }
}

function tlsConnect(url: URL, options: TransportRequest['tls'], timeoutMs: number): Promise<TLSSocket> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port: Number(url.port) || 443,
      ...(isIP(host) ? {} : { servername: host }),
      ...options,
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error('Socket timeout'), { code: 'ETIMEDOUT' })));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      socket.setTimeout(0);
      socket.removeListener('error', reject);
      // From here the HTTP/2 session (or our destroy()) reports the socket's errors.
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

/** The promise, or a rejection with the signal's reason when it aborts first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
