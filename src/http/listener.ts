// One port for every door: HTTP/1.1 (application servers, WebSocket upgrades for user agents)
// and HTTP/2 (RFC 8030 user agents, HTTP/2 application servers). With TLS, ALPN picks h2 or
// http/1.1. Without TLS, a connection that opens with the HTTP/2 preface is h2c (prior
// knowledge); anything else is HTTP/1.1.
import { createServer as createHttpServer, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import {
  createSecureServer,
  createServer as createH2cServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
} from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ConnectionLimiter } from '../limits/connection-limiter.ts';
import { Http1Connections } from './http1-connections.ts';
import { SocketDeadlines } from './socket-deadlines.ts';

export type AnyRequest = IncomingMessage | Http2ServerRequest;

/** What the handlers use of a response: common to HTTP/1.1 and HTTP/2's compatibility API. */
export interface AnyResponse {
  readonly headersSent: boolean;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  end(): unknown;
  end(chunk: string | Buffer): unknown;
  /** HTTP/1.1: the socket is closed. */
  destroy?(): unknown;
  /** HTTP/2: the stream to reset. */
  stream?: { close(code?: number): void };
}

/** Gives up on a response whose headers are already out (an error in mid-answer). */
export function abortResponse(res: AnyResponse): void {
  if (res.stream) res.stream.close(2 /* INTERNAL_ERROR */);
  else res.destroy?.();
}

export interface ListenerHandlers {
  request(req: AnyRequest, res: AnyResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface Listener {
  readonly port: number;
  /** Stops accepting; resolves when open connections have ended. */
  close(): Promise<void>;
  /** Ends HTTP/1.1 keep-alive connections: idle ones now, busy ones after their response. */
  closeIdleConnections(): void;
  /** Cuts every connection still open (HTTP/1.1, HTTP/2, not yet spoken): the end of a shutdown's grace. */
  destroyConnections(): void;
  /** TLS only: new connections use this certificate (a renewal); throws when the pair is unusable. */
  setCertificate(tls: { cert: Buffer; key: Buffer }): void;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Sizes and timeouts that keep slow or greedy clients from holding resources (see Config). */
export type ListenerLimits = Pick<
  Config,
  | 'maxHeaderBytes'
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'http2IdleTimeoutMs'
  | 'http2MaxSessionMemory'
  | 'http2MaxConcurrentStreams'
  | 'tlsHandshakeTimeoutMs'
> & {
  /** HTTP/2 sessions per client address (WebSocket connections are counted by their server). */
  connections?: ConnectionLimiter;
  log?: Logger;
};

export async function listen(
  options: { host: string; port: number; reusePort?: boolean; tls?: { cert: Buffer; key: Buffer }; limits: ListenerLimits },
  handlers: ListenerHandlers,
): Promise<Listener> {
  const { limits } = options;
  const h1Options = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // how often the two timeouts above are checked
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
  const h2Options = {
    maxSessionMemory: limits.http2MaxSessionMemory,
    // nghttp2 refuses a stream beyond it (RST_STREAM REFUSED_STREAM before the client has
    // acknowledged the setting, a PROTOCOL_ERROR GOAWAY after): each monitor holds one open
    settings: { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: limits.http2MaxConcurrentStreams },
  };
  const connections = new Http1Connections();
  const h1 = createHttpServer(h1Options, handlers.request);
  h1.on('upgrade', handlers.upgrade);
  h1.on('connection', (socket: Socket) => connections.add(socket));
  h1.on('request', (req, res) => connections.request(req, res));
  h1.on('upgrade', (_req, socket: Duplex) => connections.upgraded(socket));
  let front: Server;
  let h2: Http2Server | Http2SecureServer;
  let silent: SocketDeadlines | undefined;
  let secureServer: Http2SecureServer | undefined;
  // The sockets under HTTP/2 sessions. A session closed gracefully (GOAWAY: idle, silent, or at
  // shutdown) ends its socket's writable side, then waits for the peer to hang up, even once
  // destroyed: a peer that never does gets as long as an idle keep-alive connection, then is cut.
  const h2Sockets = new SocketDeadlines(limits.keepAliveTimeoutMs, (socket) => socket.writableEnded);
  const trackH2Socket = (socket: Duplex) => h2Sockets.watch(socket, false);
  if (options.tls) {
    const secure = createSecureServer(
      { ...options.tls, ...h2Options, ...h1Options, allowHTTP1: true, handshakeTimeout: limits.tlsHandshakeTimeoutMs },
      handlers.request,
    );
    // HTTP/1.1 over TLS: the secure server checks these itself (it listens)
    Object.assign(secure, { headersTimeout: h1Options.headersTimeout, requestTimeout: h1Options.requestTimeout });
    secure.on('upgrade', handlers.upgrade);
    secure.on('secureConnection', (socket: TLSSocket) => (socket.alpnProtocol === 'h2' ? trackH2Socket(socket) : connections.add(socket)));
    secure.on('request', (req, res) => req.httpVersionMajor === 1 && connections.request(req, res));
    secure.on('upgrade', (_req, socket: Duplex) => connections.upgraded(socket));
    h2 = secure;
    front = secure;
    secureServer = secure;
  } else {
    h2 = createH2cServer(h2Options, handlers.request);
    // a connection that has not sent a byte yet is cut after the headers timeout, like one
    // that sends its head too slowly
    const watcher = new SocketDeadlines(limits.headersTimeoutMs);
    silent = watcher;
    front = createNetServer((socket) => routeCleartext(socket, h1, h2 as Http2Server, watcher, trackH2Socket));
    // h1 never listens itself: start its headers/request timeout checks as listening would
    h1.emit('listening');
  }
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen({ port: options.port, host: options.host, reusePort: options.reusePort === true }, () => resolve());
  });
  const sessions = trackSessions(h2, limits);
  front.once('close', () => {
    h2Sockets.stop();
    silent?.stop();
  });
  return {
    port: (front.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        front.close(() => resolve());
        // HTTP/2 sessions hold no request of their own: ask them to finish (GOAWAY).
        for (const s of sessions) s.close();
      }),
    closeIdleConnections: () => {
      connections.closeAll();
      // stops h1's timeout checks (it is not listening: the callback's error is expected)
      if (!options.tls) h1.close(() => {});
    },
    destroyConnections: () => {
      connections.destroyAll();
      h2Sockets.destroyAll();
      silent?.destroyAll();
    },
    setCertificate: (tls) => {
      if (!secureServer) throw new Error('not serving TLS');
      secureServer.setSecureContext(tls);
    },
  };
}

/** A session's client address; an h2c session's socket wraps our replay stream (its `stream`). */
export function remoteAddressOf(socket: { remoteAddress?: string | undefined } | undefined): string | undefined {
  return socket?.remoteAddress ?? (socket as { stream?: { remoteAddress?: string } } | undefined)?.stream?.remoteAddress;
}

function trackSessions(h2: Http2Server | Http2SecureServer, limits: ListenerLimits) {
  const sessions = new Set<{ close(): void }>();
  h2.on('session', (session) => {
    const address = remoteAddressOf(session.socket);
    if (limits.connections && !limits.connections.acquire(address)) {
      limits.log?.warn({ address, max: limits.connections.max }, 'HTTP/2 session refused: too many connections from this address');
      session.goaway(11 /* ENHANCE_YOUR_CALM */);
      session.destroy();
      return;
    }
    sessions.add(session);
    session.once('close', () => {
      sessions.delete(session);
      limits.connections?.release(address);
    });
    // silent: no stream at all within the headers timeout, like an HTTP/1.1 client with no request
    const silent = setTimeout(() => session.close(), limits.headersTimeoutMs);
    silent.unref();
    session.once('close', () => clearTimeout(silent));
    // idle: no open stream (no monitor, no request in flight) and no traffic for the timeout
    let open = 0;
    session.on('stream', (stream) => {
      if (open++ === 0) clearTimeout(silent);
      stream.once('close', () => open--);
    });
    session.setTimeout(limits.http2IdleTimeoutMs, () => {
      if (open === 0) session.close();
    });
  });
  return sessions;
}

/** Reads the first bytes: the HTTP/2 preface means h2c, anything else HTTP/1.1. */
function routeCleartext(
  socket: Socket,
  h1: ReturnType<typeof createHttpServer>,
  h2: Http2Server,
  silent: SocketDeadlines,
  onHttp2: (socket: Socket) => void,
): void {
  // A plain net server leaves Nagle on (the http module turns it off for its own sockets): small
  // HTTP/2 frames would then wait for the peer's delayed ACK, some 40 ms per request.
  socket.setNoDelay(true);
  silent.watch(socket);
  socket.once('data', (first: Buffer) => {
    silent.forget(socket);
    socket.pause();
    const n = Math.min(first.length, PREFACE.length);
    if (!first.subarray(0, n).equals(PREFACE.subarray(0, n))) {
      socket.unshift(first);
      h1.emit('connection', socket);
      socket.resume();
      return;
    }
    // The HTTP/2 session reads the socket's native handle directly, past any unshifted bytes:
    // hand it a stream that starts with the bytes already read.
    onHttp2(socket);
    h2.emit('connection', replay(socket, first));
  });
  socket.on('error', () => socket.destroy());
}

function replay(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, _enc, cb) => void socket.write(chunk, cb),
    final: (cb) => void socket.end(cb),
    destroy: (err, cb) => {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  duplex.push(first);
  // the client address, for the per-address limits and logs (HTTP/2 reads it off its socket)
  Object.defineProperty(duplex, 'remoteAddress', { value: socket.remoteAddress, enumerable: true });
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  socket.on('error', (err) => duplex.destroy(err));
  socket.resume();
  return duplex;
}
