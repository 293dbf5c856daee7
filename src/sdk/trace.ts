// What a client saw on the wire, for consoles (`webpushd … --trace`): one event per header
// block, DATA frame length, GOAWAY, RST_STREAM, PUSH_PROMISE and TLS handshake. Events carry
// URLs and headers whole; whoever prints them decides what to shorten.
import type { ClientHttp2Session } from 'node:http2';
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
