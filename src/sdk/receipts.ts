// Receiving receipts (RFC 8030 6.3): a GET of the receipt subscription over HTTP/2 (h2 by ALPN
// for https:, prior knowledge for http:), held open or, with `nowait`, answered once what is
// queued was pushed. Each receipt is a PUSH_PROMISE for the message's URL whose promised
// response is 204 (acknowledged) or 410 (expired, replaced, unsubscribed).
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { TLSSocket } from 'node:tls';
import { WebPushError } from './errors.ts';
import { tracePushPromise, traceSession, traceStream, traceTls } from './trace.ts';
import type { Trace } from './trace.ts';
import type { PushTlsOptions } from './types.ts';

export interface Receipt {
  /** 204: the user agent acknowledged the message; 410: it never will (expired, replaced by Topic, unsubscribed). */
  status: number;
  delivered: boolean;
  /** The message's URL: the `location` its send was answered with. */
  message: string;
}

export interface ListenReceiptsOptions {
  /** Told each receipt as its promised response arrives. */
  onReceipt: (receipt: Receipt) => void;
  /** `Prefer: wait=0`: end once the queued receipts were pushed, instead of holding the GET open. */
  nowait?: boolean;
  /** Ends the GET (the promise resolves). */
  signal?: AbortSignal;
  tls?: PushTlsOptions;
  /** Milliseconds to connect (default 30000); a held-open GET may then wait for receipts as long as it likes. */
  connectTimeout?: number;
  trace?: Trace;
}

export interface ListenReceiptsResult {
  receipts: number;
  /** How the GET ended: `answered` (nowait: 200/204), `aborted` (the signal), `closed` (by the service: GOAWAY, reset). */
  ended: 'answered' | 'aborted' | 'closed';
}

/**
 * Listens for receipts on a receipt subscription (`SendResult.receiptSubscription`). Resolves
 * when the GET ends; rejects with WebPushError when the service refuses it (404: unknown or
 * expired receipt subscription) or a network error.
 */
export function listenReceipts(url: string, options: ListenReceiptsOptions): Promise<ListenReceiptsResult> {
  const target = new URL(url);
  const { trace } = options;
  return new Promise((resolve, reject) => {
    let receipts = 0;
    let settled = false;
    const session: ClientHttp2Session = http2.connect(target.origin, { ...options.tls, ALPNProtocols: ['h2'] });
    const headers: Record<string, string> = { ':method': 'GET', ':path': `${target.pathname}${target.search}` };
    if (options.nowait) headers.prefer = 'wait=0';
    // sent once the session is up
    const get = session.request(headers, { endStream: true });
    const finish = (err: Error | null, ended: ListenReceiptsResult['ended'] = 'closed') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // a held-open GET would keep a graceful close waiting for ever
      if (!get.closed) get.close(http2.constants.NGHTTP2_CANCEL);
      session.close();
      // a peer that never closes its end must not keep us waiting
      setTimeout(() => session.destroy(), 1_000).unref();
      if (err) reject(err);
      else resolve({ receipts, ended });
    };
    const onAbort = () => finish(null, 'aborted');
    const timer = setTimeout(
      () => finish(Object.assign(new Error('Socket timeout'), { code: 'ETIMEDOUT' })),
      options.connectTimeout ?? 30_000,
    );
    session.once('connect', () => clearTimeout(timer));
    session.on('error', (err) => finish(err));
    session.on('close', () => finish(null));
    if (trace) {
      session.once('connect', (s, socket) => {
        if (socket instanceof TLSSocket) traceTls(trace, socket, target.origin);
        else trace({ event: 'connect', origin: target.origin, protocol: 'h2c' });
      });
      traceSession(trace, session);
    }
    session.on('stream', (pushed: ClientHttp2Stream, request: IncomingHttpHeaders) => {
      const message = new URL(String(request[':path']), target.origin).href;
      if (trace) tracePushPromise(trace, get.id, pushed, request);
      pushed.on('push', (h: IncomingHttpHeaders) => {
        const status = Number(h[':status']);
        receipts += 1;
        options.onReceipt({ status, delivered: status === 204, message });
      });
      pushed.on('error', () => {});
      pushed.resume();
    });
    if (trace) traceStream(trace, get, { ':authority': target.host, ...headers });
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let status = 0;
    let body = '';
    let responseHeaders: IncomingHttpHeaders = {};
    get.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    get.setEncoding('utf8');
    get.on('data', (chunk: string) => {
      body += chunk;
    });
    get.on('error', () => {});
    get.on('close', () => {
      if (status === 200 || status === 204) return finish(null, 'answered');
      if (status > 0) return finish(new WebPushError(`Received unexpected response code ${status}`, status, responseHeaders, body, url));
      finish(null);
    });
  });
}
