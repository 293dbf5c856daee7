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
import { Http1Connections } from './http1-connections.ts';

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
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export async function listen(
  options: { host: string; port: number; tls?: { cert: Buffer; key: Buffer } },
  handlers: ListenerHandlers,
): Promise<Listener> {
  const connections = new Http1Connections();
  const h1 = createHttpServer(handlers.request);
  h1.on('upgrade', handlers.upgrade);
  h1.on('connection', (socket: Socket) => connections.add(socket));
  h1.on('request', (req, res) => connections.request(req, res));
  h1.on('upgrade', (_req, socket: Duplex) => connections.upgraded(socket));
  let front: Server;
  let h2: Http2Server | Http2SecureServer;
  if (options.tls) {
    const secure = createSecureServer({ ...options.tls, allowHTTP1: true }, handlers.request);
    secure.on('upgrade', handlers.upgrade);
    secure.on('secureConnection', (socket: TLSSocket) => socket.alpnProtocol !== 'h2' && connections.add(socket));
    secure.on('request', (req, res) => req.httpVersionMajor === 1 && connections.request(req, res));
    secure.on('upgrade', (_req, socket: Duplex) => connections.upgraded(socket));
    h2 = secure;
    front = secure;
  } else {
    h2 = createH2cServer(handlers.request);
    front = createNetServer((socket) => routeCleartext(socket, h1, h2 as Http2Server));
  }
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port, options.host, () => resolve());
  });
  const sessions = trackSessions(h2);
  return {
    port: (front.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        front.close(() => resolve());
        // HTTP/2 sessions hold no request of their own: ask them to finish (GOAWAY).
        for (const s of sessions) s.close();
      }),
    closeIdleConnections: () => connections.closeAll(),
  };
}

function trackSessions(h2: Http2Server | Http2SecureServer) {
  const sessions = new Set<{ close(): void }>();
  h2.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return sessions;
}

/** Reads the first bytes: the HTTP/2 preface means h2c, anything else HTTP/1.1. */
function routeCleartext(socket: Socket, h1: ReturnType<typeof createHttpServer>, h2: Http2Server): void {
  // A plain net server leaves Nagle on (the http module turns it off for its own sockets): small
  // HTTP/2 frames would then wait for the peer's delayed ACK, some 40 ms per request.
  socket.setNoDelay(true);
  socket.once('data', (first: Buffer) => {
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
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  socket.on('error', (err) => duplex.destroy(err));
  socket.resume();
  return duplex;
}
