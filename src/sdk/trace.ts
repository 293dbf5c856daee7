// What a client saw on the wire, for consoles (`webpushd … --trace`): one event per header
// block, DATA frame length, GOAWAY, RST_STREAM, PUSH_PROMISE and TLS handshake. Events carry
// URLs and headers whole; whoever prints them decides what to shorten.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';

export interface TraceEvent {
  /** `tls`, `request`, `response`, `data`, `push_promise`, `goaway`, `rst_stream`, … */
  event: string;
  [field: string]: unknown;
}

export type Trace = (event: TraceEvent) => void;

/** The ALPN answer and the certificate the peer showed. */
export function traceTls(trace: Trace | undefined, socket: TLSSocket, origin: string): void {
  if (!trace) return;
  const cert = socket.getPeerCertificate();
  trace({
    event: 'tls',
    origin,
    alpn: socket.alpnProtocol || null,
    protocol: socket.getProtocol(),
    peer: cert.subject ? { subject: cert.subject.CN ?? cert.subject, issuer: cert.issuer?.CN ?? cert.issuer, validTo: cert.valid_to } : null,
    authorized: socket.authorized,
  });
}

/** GOAWAY from the peer (RST_STREAM is told per stream, where the stream id is known). */
export function traceSession(trace: Trace, session: ClientHttp2Session): void {
  session.on('goaway', (code, lastStreamID) => trace({ event: 'goaway', code, lastStreamID }));
}

/**
 * Traces one HTTP/2 stream: the request (once the stream has its id), the bytes of the body
 * sent, the response header block (`push` for a promised stream), each DATA chunk's length
 * and a reset with its code.
 */
export function traceStream(trace: Trace, stream: ClientHttp2Stream, request: Record<string, unknown> | null, sentBytes = 0): void {
  if (request !== null) {
    const announce = () => {
      trace({ event: 'request', stream: stream.id, headers: request });
      if (sentBytes > 0) trace({ event: 'data', stream: stream.id, sent: sentBytes });
    };
    if (stream.id !== undefined) announce();
    else stream.once('ready', announce);
  }
  stream.on('response', (headers) => trace({ event: 'response', stream: stream.id, headers }));
  stream.on('push', (headers) => trace({ event: 'response', stream: stream.id, pushed: true, headers }));
  stream.on('data', (chunk: Buffer | string) => trace({ event: 'data', stream: stream.id, received: Buffer.byteLength(chunk) }));
  stream.on('close', () => {
    if (stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) trace({ event: 'rst_stream', stream: stream.id, code: stream.rstCode });
  });
}

/** A PUSH_PROMISE: the stream it came on, the promised stream and its request header block. */
export function tracePushPromise(trace: Trace, associated: number | undefined, pushed: ClientHttp2Stream, headers: IncomingHttpHeaders): void {
  trace({ event: 'push_promise', stream: associated, promised: pushed.id, headers });
  traceStream(trace, pushed, null);
}
